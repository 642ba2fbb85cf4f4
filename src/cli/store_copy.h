/* store_copy.h - `keyward store copy FROM_URL TO_URL`: copy everything keyward stores from
 * one store to another (SQLite <-> PostgreSQL), the upgrade path from one node to several. */
#ifndef KW_STORE_COPY_H
#define KW_STORE_COPY_H

/* argv[0] is "store". Returns the process exit status. */
int kw_store_cmd_main(int argc, char **argv);

#endif
