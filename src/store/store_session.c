/* store_session.c - the public kw_store_session_* calls: argument checks, then dispatch
 * through the backend's kw_store_session_ops_t. No SQL, no I/O. */
#include "store_session.h"

#include "store_impl.h"

#define NEED(cond) KW_STORE_NEED(cond, NULL)
#define HAVE(s)                                                                                    \
    do {                                                                                           \
        if ((s) == NULL || (s)->session == NULL)                                                   \
            return kw_err_set(err, KW_EINTERNAL, NULL, "store: backend has no sessions");          \
    } while (0)

int kw_store_session_insert(kw_store_t *s, const kw_session_t *x, kw_err_t *err)
{
    HAVE(s);
    NEED(x && x->cred_id[0] && x->key_id[0]);
    return s->session->insert(s, x, err);
}

int kw_store_session_get(kw_store_t *s, const uint8_t digest[KW_SESSION_DIGEST_LEN],
                         kw_session_t *out, kw_err_t *err)
{
    HAVE(s);
    NEED(digest && out);
    return s->session->get(s, digest, out, err);
}

int kw_store_session_touch(kw_store_t *s, const uint8_t digest[KW_SESSION_DIGEST_LEN], int64_t at,
                           kw_err_t *err)
{
    HAVE(s);
    NEED(digest);
    return s->session->touch(s, digest, at, err);
}

int kw_store_session_delete(kw_store_t *s, const uint8_t digest[KW_SESSION_DIGEST_LEN],
                            kw_err_t *err)
{
    HAVE(s);
    NEED(digest);
    return s->session->del(s, digest, err);
}

int kw_store_session_purge(kw_store_t *s, int64_t idle_before, int64_t now, int64_t *removed,
                           kw_err_t *err)
{
    HAVE(s);
    return s->session->purge(s, idle_before, now, removed, err);
}
