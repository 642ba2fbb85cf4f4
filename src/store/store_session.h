/* store_session.h - console sessions (SPEC §11) in the shared store, so a session signed in
 * on one node works on every node and signing out ends it everywhere. Only a digest of the
 * session id is stored (SHA-256 of the cookie value): a copy of the table signs nobody in.
 * Same rules as store.h: writes need the caller's transaction (kw_store_begin); reads from
 * another thread see committed data; out-params only on success. Backends implement
 * kw_store_session_ops_t and set struct kw_store.session at open (NULL = no sessions:
 * every call answers KW_EINTERNAL). */
#ifndef KW_STORE_SESSION_H
#define KW_STORE_SESSION_H

#include "store.h"

#define KW_SESSION_DIGEST_LEN 32

typedef struct kw_session {
    uint8_t digest[KW_SESSION_DIGEST_LEN]; /* SHA-256 of the session id */
    char cred_id[KW_ID_MAX];               /* the principal */
    char key_id[KW_ID_MAX];                /* the key that signed in */
    int64_t created_at;
    int64_t last_seen_at; /* idle timeout counts from here */
    int64_t expires_at;   /* absolute end */
} kw_session_t;

/* Insert a new session (KW_ECONFLICT if the digest exists). Needs a transaction. */
int kw_store_session_insert(kw_store_t *s, const kw_session_t *x, kw_err_t *err);
/* The session with this digest; KW_ENOTFOUND when none. */
int kw_store_session_get(kw_store_t *s, const uint8_t digest[KW_SESSION_DIGEST_LEN],
                         kw_session_t *out, kw_err_t *err);
/* Set last_seen_at (no-op for an unknown digest). Needs a transaction. */
int kw_store_session_touch(kw_store_t *s, const uint8_t digest[KW_SESSION_DIGEST_LEN], int64_t at,
                           kw_err_t *err);
/* Remove one session (no-op when absent). Needs a transaction. */
int kw_store_session_delete(kw_store_t *s, const uint8_t digest[KW_SESSION_DIGEST_LEN],
                            kw_err_t *err);
/* Remove sessions ended by now: idle since before idle_before, or expires_at <= now.
 * *removed (may be NULL) gets the count. Needs a transaction. */
int kw_store_session_purge(kw_store_t *s, int64_t idle_before, int64_t now, int64_t *removed,
                           kw_err_t *err);

/* Backend side. */
typedef struct kw_store_session_ops {
    int (*insert)(kw_store_t *s, const kw_session_t *x, kw_err_t *err);
    int (*get)(kw_store_t *s, const uint8_t *digest, kw_session_t *out, kw_err_t *err);
    int (*touch)(kw_store_t *s, const uint8_t *digest, int64_t at, kw_err_t *err);
    int (*del)(kw_store_t *s, const uint8_t *digest, kw_err_t *err);
    int (*purge)(kw_store_t *s, int64_t idle_before, int64_t now, int64_t *removed, kw_err_t *err);
} kw_store_session_ops_t;

/* The ops by name, in the order above: see KW_STORE_NOTIFY_OPS (store_notify.h). */
#define KW_STORE_SESSION_OPS(X, p) X(p, insert) X(p, get) X(p, touch) X(p, del) X(p, purge)

#endif
