/* serve.h - `keyward serve`: the daemon's start, run and graceful stop. */
#ifndef KW_SERVE_H
#define KW_SERVE_H

#include <stdio.h>

#include "app/config.h"

/* argv[0] is "serve". Returns the process exit status (0 after a clean SIGTERM). */
int kw_serve_main(int argc, char **argv);

/* --check-config (checkconf.c): check what the start would use of c (pepper file readable,
 * store and admin key directories present and writable) without creating anything; print
 * "configuration OK" to out or one line per problem to err. Returns the exit status. */
int kw_serve_check_config(const kw_config_t *c, FILE *out, FILE *err);

#endif
