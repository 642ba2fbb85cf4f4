/* follow.c - the feed follower thread of a node on a shared store (follow.h): waits for a
 * NOTIFY (or --sync-interval), reads feed rows after the last applied one, re-reads what
 * each names and publishes it to the verification index under the lifecycle lock. */
#include "follow.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../core/util.h"
#include "../store/store_cluster.h"
#include "api.h"
#include "bgthread.h"
#include "log.h"

#define FOLLOW_BATCH 500
#define FEED_KEEP (24LL * 3600) /* feed rows older than this are pruned... */
#define FEED_PRUNE_EVERY 600    /* ...every this many seconds */

struct kw_follow {
    kw_bg_t bg; /* first (bgthread.h); bg.srv */
    _Atomic int healthy;
    int64_t last;       /* newest feed seq applied */
    int64_t last_prune; /* unix seconds */
    /* the thread's own */
    int was_healthy;
    int64_t gap_at; /* when the feed's bounds were last compared with last */
};
_Static_assert(offsetof(struct kw_follow, bg) == 0, "bgthread.h: the kw_bg_t comes first");

static int64_t warn_window(kw_server_t *srv, const char *policy)
{
    kw_policy_t p;
    if (kw_store_policy_get(srv->store, policy, &p, NULL) == 0)
        return p.nthresholds ? p.thresholds[0] : 0;
    return 30LL * 86400;
}

static int apply_cred(kw_server_t *srv, const char *id, kw_err_t *err)
{
    kw_cred_t c;
    int rc = kw_store_cred_get_any(srv->store, id, &c, err);
    if (rc == KW_ENOTFOUND)
        return 0; /* rolled back after all, or never there */
    if (rc)
        return rc;
    rc = kw_index_put_cred(srv->index, &c, warn_window(srv, c.policy));
    kw_cred_clear(&c);
    return rc;
}

static int apply_row(kw_server_t *srv, const kw_feed_row_t *r, kw_err_t *err)
{
    if (strcmp(r->kind, "cred") == 0)
        return apply_cred(srv, r->id, err);
    if (strcmp(r->kind, "policy") == 0) {
        kw_policy_t p;
        int rc = kw_store_policy_get(srv->store, r->id, &p, err);
        if (rc == KW_ENOTFOUND)
            return 0;
        return rc ? rc
                  : kw_index_put_policy(srv->index, p.name, p.nthresholds ? p.thresholds[0] : 0);
    }
    if (strcmp(r->kind, "key") == 0) {
        kw_keyrec_t k;
        int rc = kw_store_key_get(srv->store, r->id, &k, err);
        if (rc == KW_ENOTFOUND)
            return 0;
        if (rc)
            return rc;
        rc = kw_index_put_key(srv->index, &k);
        if (rc == KW_ENOTFOUND) { /* its credential is not in the index yet */
            rc = apply_cred(srv, k.cred_id, err);
            if (rc == 0)
                rc = kw_index_put_key(srv->index, &k);
        }
        return rc;
    }
    return 0; /* a kind from a newer keyward: its own reload will cover it */
}

/* Read and apply everything after f->last. 0 or KW_E*. */
static int catch_up(kw_follow_t *f, kw_err_t *err)
{
    kw_server_t *srv = f->bg.srv;
    for (;;) {
        kw_feed_row_t *rows = NULL;
        size_t n = 0;
        int rc = kw_store_feed_read(srv->store, f->last, FOLLOW_BATCH, &rows, &n, err);
        if (rc)
            return rc;
        /* Under the lifecycle lock: a local write's index update (its `post`, made under
         * the same lock right after its commit) and a feed row's re-read never interleave,
         * so an older state is never published over a newer one. */
        pthread_mutex_lock(&srv->lc.mu);
        for (size_t i = 0; i < n && rc == 0; i++) {
            /* this node's own commit: its index update was made right after it */
            if (!kw_store_feed_own(srv->store, rows[i].seq))
                rc = apply_row(srv, &rows[i], err);
            if (rc == 0)
                f->last = rows[i].seq;
        }
        pthread_mutex_unlock(&srv->lc.mu);
        free(rows);
        if (rc)
            return rc;
        if (n < FOLLOW_BATCH)
            return 0;
    }
}

/* The feed was pruned past what this node applied (it was away longer than FEED_KEEP):
 * reload the whole index instead. */
static int check_gap(kw_follow_t *f, kw_err_t *err)
{
    int64_t oldest = 0, newest = 0;
    kw_server_t *srv = f->bg.srv;
    int rc = kw_store_feed_bounds(srv->store, &oldest, &newest, err);
    if (rc || oldest == 0 || oldest <= f->last + 1)
        return rc;
    kw_log(KW_LOG_WARN, "change feed pruned past this node: reloading the index", NULL);
    pthread_mutex_lock(&srv->lc.mu);
    rc = kw_lc_load_index(&srv->lc, kw_now() - srv->cfg.retention, err);
    pthread_mutex_unlock(&srv->lc.mu);
    if (rc == 0)
        f->last = newest;
    return rc;
}

/* Wait for the feed (up to --sync-interval), catch up; after a failure, wait 200 ms more
 * before trying again. */
static int64_t follow_pass(void *owner, int i)
{
    kw_follow_t *f = owner;
    kw_server_t *srv = f->bg.srv;
    kw_err_t e = {0};
    int w = kw_store_feed_wait(srv->store, (int)(srv->cfg.sync_interval * 1000), &e);
    /* The feed can be pruned past this node only while it is away (FEED_KEEP is a day):
     * the bounds are compared at the start, after a failure and every FEED_PRUNE_EVERY,
     * not on every wake-up (one round trip fewer between a NOTIFY and the index). */
    int rc = w < 0 ? w : 0;
    if (rc == 0 && (!f->was_healthy || kw_now() - f->gap_at >= FEED_PRUNE_EVERY)) {
        rc = check_gap(f, &e);
        f->gap_at = rc == 0 ? kw_now() : 0;
    }
    if (rc == 0)
        rc = catch_up(f, &e);
    int64_t now = kw_now();
    if (rc == 0 && now - f->last_prune >= FEED_PRUNE_EVERY) {
        f->last_prune = now;
        (void)kw_store_feed_prune(srv->store, now - FEED_KEEP, NULL);
    }
    f->healthy = rc == 0;
    if (rc && f->was_healthy)
        kw_log(KW_LOG_WARN,
               "store unreachable: verification answers from memory, writes "
               "fail with 503 until it returns",
               "{s:s}", "error", e.msg);
    else if (rc == 0 && !f->was_healthy)
        kw_log(KW_LOG_INFO, "store reachable again: change feed caught up", "{s:I}", "seq",
               (json_int_t)f->last);
    f->was_healthy = rc == 0;
    return rc ? 200 : 0; /* store down: wait before trying again */
}

int kw_follow_start(kw_server_t *srv, int64_t from, kw_follow_t **out, kw_err_t *err)
{
    kw_follow_t *f = kw_bg_alloc(sizeof(*f), srv, err);
    if (f == NULL)
        return KW_ENOMEM;
    f->last = from;
    f->healthy = f->was_healthy = 1;
    f->last_prune = kw_now();
    *out = kw_bg_launch(f, 1, follow_pass, "the change feed thread", err);
    return *out ? 0 : KW_EINTERNAL;
}

void kw_follow_stop(kw_follow_t *f)
{
    kw_bg_free(f); /* feed_wait returns within --sync-interval */
}

int kw_follow_healthy(kw_follow_t *f)
{
    return f == NULL || f->healthy;
}
