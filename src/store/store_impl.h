/* store_impl.h - what a store backend implements: the contract. Backend-private helpers
 * belong in the backend's own header (sqlite_int.h, postgres_int.h). Only the backends
 * (sqlite*.c, postgres*.c) and the public calls (store*.c) include this; callers use store.h
 * alone.
 *
 * A backend allocates its own struct whose first member is `struct kw_store base` with
 * base.ops pointing at its kw_store_ops_t, and returns &base from open. store.c has already
 * validated the arguments it documents (non-NULL pointers, limit >= 1) before it calls in. */
#ifndef KW_STORE_IMPL_H
#define KW_STORE_IMPL_H

#include "store.h"

/* One designated initializer of an ops table: .op = <p>op, for the KW_STORE_*_OPS lists of
 * store_notify.h, store_watched.h, store_session.h, store_oauth.h and below. */
#define KW_STORE_OP_INIT(p, op) .op = p##op,

/* The public calls' argument check (store*.c, and the watched calls): KW_EINVAL naming the
 * condition that failed, with field (may be NULL) as the error's field. */
#define KW_STORE_NEED(cond, field)                                                                 \
    do {                                                                                           \
        if (!(cond))                                                                               \
            return kw_err_set(err, KW_EINVAL, field, "store: invalid argument: %s", #cond);        \
    } while (0)

struct kw_store_ops {
    const char *scheme; /* "sqlite" */
    /* rest: the URL after "scheme:" */
    int (*open)(const char *rest, kw_store_t **out, kw_err_t *err);
    void (*close)(kw_store_t *s);
    const char *(*file)(const kw_store_t *s);

    int (*begin)(kw_store_t *s, kw_err_t *err);
    int (*commit)(kw_store_t *s, kw_err_t *err);
    void (*rollback)(kw_store_t *s);
    int (*savepoint)(kw_store_t *s, kw_err_t *err);
    int (*savepoint_end)(kw_store_t *s, int keep, kw_err_t *err);
    int (*defer_writes)(kw_store_t *s, int on); /* NULL: writes answer at once */
    int (*sync)(kw_store_t *s, kw_err_t *err);  /* NULL: nothing deferred */

    int (*meta_get)(kw_store_t *s, const char *key, char **value_out, kw_err_t *err);
    int (*meta_set)(kw_store_t *s, const char *key, const char *value, kw_err_t *err);

    int (*policy_get)(kw_store_t *s, const char *name, kw_policy_t *out, kw_err_t *err);
    int (*policy_put)(kw_store_t *s, const kw_policy_t *p, int create, kw_err_t *err);
    int (*policy_list)(kw_store_t *s, kw_policy_t **out, size_t *n, kw_err_t *err);

    int (*cred_insert)(kw_store_t *s, kw_cred_t *c, kw_err_t *err);
    int (*cred_update)(kw_store_t *s, const kw_cred_t *c, kw_err_t *err);
    int (*cred_get)(kw_store_t *s, const char *id, kw_cred_t *out, kw_err_t *err);
    int (*cred_list)(kw_store_t *s, const kw_cred_filter_t *f, kw_cred_t **out, size_t *n,
                     kw_err_t *err);

    int (*key_insert)(kw_store_t *s, kw_keyrec_t *k, kw_err_t *err);
    int (*key_update)(kw_store_t *s, const kw_keyrec_t *k, kw_err_t *err);
    int (*key_get)(kw_store_t *s, const char *id, kw_keyrec_t *out, kw_err_t *err);
    int (*key_list_cred)(kw_store_t *s, const char *cred_id, kw_keyrec_t **out, size_t *n,
                         kw_err_t *err);
    int (*key_expiring)(kw_store_t *s, int64_t now, int64_t until, int64_t after_exp,
                        int64_t after_seq, size_t limit, kw_keyrec_t **out, size_t *n,
                        kw_err_t *err);

    int (*usage_apply)(kw_store_t *s, const kw_usage_t *u, size_t n, kw_err_t *err);
    int (*event_insert)(kw_store_t *s, const char *id, const char *type, int64_t occurred_at,
                        const char *payload_json, kw_err_t *err);
    /* slim: kw_store_load_index (KW_COLS_CRED_INDEX, KW_COLS_KEY_INDEX: store_cols.h) */
    int (*load_all)(kw_store_t *s, int64_t retain_since, int slim, kw_store_load_cb cb, void *ud,
                    kw_err_t *err);
    /* load_all's credentials pass alone, and only over the rows whose contacts contain
     * the text "secret" in quotes (store_seal.c's scans: the start-up does not read every
     * credential twice) */
    int (*secret_scan)(kw_store_t *s, kw_store_load_cb cb, void *ud, kw_err_t *err);
    int (*counts)(kw_store_t *s, int64_t *creds, int64_t *keys, kw_err_t *err);

    /* audit trail and renewal requests */
    int (*audit_insert)(kw_store_t *s, const kw_audit_rec_t *r, kw_err_t *err);
    int (*audit_head)(kw_store_t *s, int64_t *seq, uint8_t *hash, kw_err_t *err);
    int (*audit_list)(kw_store_t *s, const kw_audit_filter_t *f, kw_audit_rec_t **out, size_t *n,
                      kw_err_t *err);
    int (*audit_scan)(kw_store_t *s, kw_store_audit_cb cb, void *ud, const char *meta_key,
                      char **meta_out, kw_err_t *err);
    int (*renewal_insert)(kw_store_t *s, const kw_renewal_t *r, kw_err_t *err);
    int (*renewal_update)(kw_store_t *s, const kw_renewal_t *r, kw_err_t *err);
    int (*renewal_get)(kw_store_t *s, const char *id, kw_renewal_t *out, kw_err_t *err);
    int (*renewal_list)(kw_store_t *s, const kw_renewal_filter_t *f, kw_renewal_t **out, size_t *n,
                        kw_err_t *err);
    int (*renewal_stale)(kw_store_t *s, int64_t now, size_t limit, kw_renewal_t **out, size_t *n,
                         kw_err_t *err);
};

/* Retention: the backend side of kw_store_prune and kw_store_audit_cut (store.h), whose
 * public calls are in store_retention.c. Set in struct kw_store.retention at open. */
typedef struct kw_store_retention_ops {
    /* *deleted is 0 on entry; add the events, alert records and quotas removed */
    int (*prune)(kw_store_t *s, int64_t before, size_t batch, size_t *deleted, kw_err_t *err);
    int (*audit_cut)(kw_store_t *s, int64_t upto, kw_err_t *err);
} kw_store_retention_ops_t;

/* The ops by name, in the order above: see KW_STORE_NOTIFY_OPS (store_notify.h). */
#define KW_STORE_RETENTION_OPS(X, p) X(p, prune) X(p, audit_cut)

/* The base every backend's store struct starts with. */
struct kw_store {
    const kw_store_ops_t *ops;
    /* Seals secrets in credential contacts at rest (store_seal.c); NULL = clear text (a
     * store opened without a key file: tools, tests). Set by kw_store_set_seal. */
    const struct kw_seal *seal;
    /* alerts, outbox deliveries, metrics figures (store_notify.h); set by the backend */
    const struct kw_store_notify_ops *notify;
    /* console sessions (store_session.h); set by the backend, NULL = none */
    const struct kw_store_session_ops *session;
    /* change feed and locks of a store shared by several nodes (store_cluster.h); NULL
     * for a single-node backend */
    const struct kw_store_cluster_ops *cluster;
    /* watched credentials (store_watched.h); set by the backend */
    const struct kw_store_watched_ops *watched;
    /* revoked OAuth2 tokens (store_oauth.h); NULL = none: revoke fails, the list is empty */
    const struct kw_store_oauth_ops *oauth;
    /* history retention and the audit cut (above); NULL = prune does nothing, the cut fails */
    const kw_store_retention_ops_t *retention;
};

extern const kw_store_ops_t kw_store_sqlite_ops;
#ifdef KW_HAVE_LIBPQ
extern const kw_store_ops_t kw_store_postgres_ops;
/* Test hook: run sql (no parameters) on the PostgreSQL writer inside the caller's
 * transaction; same contract as kw_store_sqlite_exec (sqlite.h). */
int kw_store_postgres_exec(kw_store_t *s, const char *sql, kw_err_t *err);
#endif

/* store_seal.c: contacts JSON with every webhook "secret" sealed (seal = 1) or opened
 * (seal = 0) under s->seal with the credential id as associated data. *out = NULL when
 * nothing changed, else malloc'd text the caller wipes and frees. A secret that does not
 * open (another key file) is dropped (""). Errors: KW_ENOMEM, KW_EINTERNAL. */
int kw_store_contacts_xform(const kw_store_t *s, const char *cred_id, const char *json, int seal,
                            char **out, kw_err_t *err);

/* store.c: a small process-unique id of the calling thread (1, 2, ...), never 0. pthread_t
 * cannot be compared atomically, and a backend's "does this thread own the writer" test runs
 * on threads that do not hold the writer's lock (sqlite_conn.c, postgres.c). */
uint64_t kw_store_thread_id(void);

#endif
