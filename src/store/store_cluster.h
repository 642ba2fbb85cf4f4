/* store_cluster.h - what a store shared by several nodes (PostgreSQL) adds to store.h: the
 * change feed that keeps every node's verification index current (SPEC §10), a scheduler
 * leader lock, and a cluster-wide lock for one-time work (the admin key bootstrap).
 * A single-node store (SQLite) has none of it: kw_store_shared() is 0 and the rest answer
 * KW_EINVAL. Same conventions as store.h. Design: docs/internals/store.md. */
#ifndef KW_STORE_CLUSTER_H
#define KW_STORE_CLUSTER_H

#include "store.h"

/* 1 when other nodes may write the same store (so the index must follow the feed). */
int kw_store_shared(const kw_store_t *s);

/* One feed row: something the verification index must re-read. kind "key" (id = key id),
 * "cred" (id = credential id: the credential row, deleted or not) or "policy" (id = name). */
typedef struct kw_feed_row {
    int64_t seq;
    char kind[8];
    char id[KW_ID_MAX > KW_NAME_MAX ? KW_ID_MAX : KW_NAME_MAX];
} kw_feed_row_t;

/* The newest committed feed seq (0 when empty) and the oldest one still kept (0 when
 * empty). Rows become visible strictly in seq order (see docs), so a reader that has
 * applied everything up to N never misses a row by reading seq > N later. */
int kw_store_feed_bounds(kw_store_t *s, int64_t *oldest, int64_t *newest, kw_err_t *err);
/* Rows with seq > after, in seq order, at most limit; *out malloc'd (free()). */
int kw_store_feed_read(kw_store_t *s, int64_t after, size_t limit, kw_feed_row_t **out, size_t *n,
                       kw_err_t *err);
/* Wait up to timeout_ms for a NOTIFY of new feed rows on the store's listening connection
 * (connecting it if needed). 1 = notified, 0 = timed out, KW_ESTORE = connection lost (the
 * caller polls, and the next call reconnects). One thread only. */
int kw_store_feed_wait(kw_store_t *s, int timeout_ms, kw_err_t *err);
/* 1 when seq was handed out by a commit of this very store handle (recently): its index
 * update was made by the committing thread, the follower may skip it. */
int kw_store_feed_own(kw_store_t *s, int64_t seq);
/* Drop feed rows older than before (unix seconds). Needs no transaction. */
int kw_store_feed_prune(kw_store_t *s, int64_t before, kw_err_t *err);
/* A credential by id, deleted ones included (the feed must publish deletions). */
int kw_store_cred_get_any(kw_store_t *s, const char *id, kw_cred_t *out, kw_err_t *err);

/* Try to become (or stay) the scheduler leader: a session-level advisory lock on a
 * connection of its own. *leader = 1 while held; losing the connection loses it (and
 * another node takes over). One thread only. */
int kw_store_leader(kw_store_t *s, int *leader, kw_err_t *err);

/* A cluster-wide mutex for one-time work (e.g. "admin_bootstrap"): blocks until held. Held
 * on the leader's connection; unlock releases it. */
int kw_store_cluster_lock(kw_store_t *s, const char *name, kw_err_t *err);
void kw_store_cluster_unlock(kw_store_t *s, const char *name);

typedef struct kw_store_cluster_ops {
    int (*feed_own)(kw_store_t *, int64_t);
    int (*feed_bounds)(kw_store_t *, int64_t *, int64_t *, kw_err_t *);
    int (*feed_read)(kw_store_t *, int64_t, size_t, kw_feed_row_t **, size_t *, kw_err_t *);
    int (*feed_wait)(kw_store_t *, int, kw_err_t *);
    int (*feed_prune)(kw_store_t *, int64_t, kw_err_t *);
    int (*cred_get_any)(kw_store_t *, const char *, kw_cred_t *, kw_err_t *);
    int (*leader)(kw_store_t *, int *, kw_err_t *);
    int (*lock)(kw_store_t *, const char *, kw_err_t *);
    void (*unlock)(kw_store_t *, const char *);
} kw_store_cluster_ops_t;

/* The ops above by name, for a backend's table: {KW_STORE_CLUSTER_OPS(KW_STORE_OP_INIT, p)}
 * fills each from the function p<op> (store_impl.h). */
/* clang-format off */
#define KW_STORE_CLUSTER_OPS(X, p)                                                                 \
    X(p, feed_own)                                                                                 \
    X(p, feed_bounds)                                                                              \
    X(p, feed_read)                                                                                \
    X(p, feed_wait)                                                                                \
    X(p, feed_prune)                                                                               \
    X(p, cred_get_any)                                                                             \
    X(p, leader)                                                                                   \
    X(p, lock)                                                                                     \
    X(p, unlock)
/* clang-format on */

#endif
