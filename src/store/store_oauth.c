/* store_oauth.c - the public kw_store_token_* calls (store_oauth.h): argument checks, then
 * dispatch through the backend's kw_store_oauth_ops_t (sqlite_oauth.c, postgres_ext.c).
 * No SQL, no I/O. */
#include "store_oauth.h"

#include "store_impl.h"

#define NEED(cond) KW_STORE_NEED(cond, NULL)

int kw_store_token_revoke(kw_store_t *s, const char *token_id, const char *cred_id, int64_t exp,
                          int64_t now, kw_err_t *err)
{
    if (s == NULL || s->oauth == NULL)
        return kw_err_set(err, KW_ESTORE, NULL, "this store cannot record revoked tokens");
    NEED(token_id && cred_id);
    return s->oauth->revoke(s, token_id, cred_id, exp, now, err);
}

int kw_store_token_revoked(kw_store_t *s, int64_t now, kw_store_token_cb cb, void *ud,
                           kw_err_t *err)
{
    if (s == NULL || s->oauth == NULL)
        return 0;
    NEED(cb);
    return s->oauth->revoked(s, now, cb, ud, err);
}
