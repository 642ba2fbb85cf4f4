/* store_oauth.h - durable state of OAuth2 access tokens (SPEC §13): the tokens revoked one
 * by one (RFC 7009), kept until their own expiry. Tokens themselves are never stored (they
 * are self-contained, core/token.h); the server's token key is a sealed meta row.
 * The public calls are in store_oauth.c; backends implement kw_store_oauth_ops_t and set
 * struct kw_store.oauth at open. SQLite: sqlite_oauth.c (migration kw_sqlite_oauth_migration);
 * PostgreSQL: postgres_ext.c (same table and column). A backend without them (oauth NULL):
 * revoke is KW_ESTORE, the list empty. */
#ifndef KW_STORE_OAUTH_H
#define KW_STORE_OAUTH_H

#include <stdint.h>

#include "store.h"

/* Record a revoked token id (24 hex characters) inside the caller's transaction; revoking
 * an id again is a no-op. Rows whose expiry is before now are dropped on the way. */
int kw_store_token_revoke(kw_store_t *s, const char *token_id, const char *cred_id, int64_t exp,
                          int64_t now, kw_err_t *err);

/* cb(ud, token_id, exp) for every revoked token not expired at now; a non-zero return stops
 * and is returned. cb must not call the store. */
typedef int (*kw_store_token_cb)(void *ud, const char *token_id, int64_t exp);
int kw_store_token_revoked(kw_store_t *s, int64_t now, kw_store_token_cb cb, void *ud,
                           kw_err_t *err);

/* Backend side. */
typedef struct kw_store_oauth_ops {
    int (*revoke)(kw_store_t *s, const char *token_id, const char *cred_id, int64_t exp,
                  int64_t now, kw_err_t *err);
    int (*revoked)(kw_store_t *s, int64_t now, kw_store_token_cb cb, void *ud, kw_err_t *err);
} kw_store_oauth_ops_t;

/* The ops by name, in the order above: see KW_STORE_NOTIFY_OPS (store_notify.h). */
#define KW_STORE_OAUTH_OPS(X, p) X(p, revoke) X(p, revoked)

#endif
