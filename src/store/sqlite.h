/* sqlite.h - the two SQLite-only calls outside the backend may make: a test hook and the
 * scrub after secrets were sealed in place (store_seal.c). Both take any store. */
#ifndef KW_STORE_SQLITE_H
#define KW_STORE_SQLITE_H

#include "store.h"

/* Test hook (fault injection): run sql on the SQLite writer connection. The calling thread
 * must hold the transaction (kw_store_begin). Returns 0, KW_EINVAL for a non-SQLite store,
 * KW_EINTERNAL outside the transaction, or KW_ESTORE. Not for production callers. */
int kw_store_sqlite_exec(kw_store_t *s, const char *sql, kw_err_t *err);
/* VACUUM with secure_delete and truncate the WAL (no-op for other backends). */
int kw_store_sqlite_scrub(kw_store_t *s, kw_err_t *err);

#endif
