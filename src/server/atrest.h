/* atrest.h - files at rest: default paths, mode warnings, the store directory and the
 * secrets key file (atrest.c). Called by serve.c at start-up, after the listening socket is
 * bound and before the store is used. */
#ifndef KW_ATREST_H
#define KW_ATREST_H

#include <stddef.h>

#include "api.h"

/* A path beside the SQLite file of c->store: keyward.db -> keyward<suffix>; "" for a
 * PostgreSQL store. */
void kw_atrest_beside_db(const kw_config_t *c, const char *suffix, char *out, size_t n);
/* One warning line for each of the store files, keypath and secpath that group or others
 * may read or write (files are not changed behind the operator's back). */
void kw_atrest_warn_modes(const kw_config_t *c, const char *keypath, const char *secpath);
/* The SQLite file's directory, created 0700 when it does not exist (one level). */
void kw_atrest_make_db_dir(const kw_config_t *c);
/* Open (or on first start create, 0600) the secrets key file at path into s->seal, give
 * it to the store and seal what the store holds in clear. A missing key file for a store
 * that holds sealed secrets is KW_EINVAL; path "" (PostgreSQL without the setting) too. */
int kw_atrest_open_secrets(kw_server_t *s, const char *path, kw_err_t *err);

#endif
