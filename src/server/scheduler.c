/* scheduler.c - the thread that raises key.expiring and key.expired (SPEC §6). Each tick
 * claims the keys whose next_alert_at is due, in one write transaction per batch: the
 * alert records, the outbox events and the next look are committed together, so an alert
 * is raised once and never lost, whatever crashes. Work per tick is proportional to what
 * is due, not to the number of keys. Must not: touch the verification index. */
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "bgthread.h"
#include "core/alerts.h"
#include "core/duration.h"
#include "core/events.h"
#include "core/jdump.h"
#include "core/policy.h"
#include "core/util.h"
#include "log.h"
#include "metrics.h"
#include "outbox.h"
#include "scheduler.h"
#include "store/store_cluster.h"
#include "store/store_notify.h"
#include "watched.h"

#define ALERT_BATCH 256
#define EXPIRED_GRACE (24 * 3600) /* see kw_alert_plan: a re-armed key long expired is quiet */

struct kw_sched {
    kw_bg_t bg; /* first (bgthread.h); bg.srv */
};
_Static_assert(offsetof(struct kw_sched, bg) == 0, "bgthread.h: the kw_bg_t comes first");

/* Insert one key.expiring / key.expired event for ak (events.c builds it); writes its id
 * into evid. */
static int raise_event(kw_store_t *st, const kw_alert_key_t *ak, int64_t threshold,
                       const int64_t *skipped, size_t nskip, int64_t now, char evid[KW_ID_MAX],
                       kw_err_t *err)
{
    const kw_keyrec_t *k = &ak->key;
    char d[KW_DURATION_STR_MAX];
    const char *type = threshold == KW_ALERT_EXPIRED ? "key.expired" : "key.expiring";
    /* the fields in the order docs/alerts.md shows them (events.c adds id, type, occurred_at) */
    json_t *ex = json_pack("{s:s, s:s, s:s, s:i, s:o, s:I, s:s}", "credential_id", k->cred_id,
                           "credential_name", ak->cred_name, "key_id", k->id, "slot", k->slot,
                           "expires_at", kw_json_time(k->expires_at), "expires_in_s",
                           (json_int_t)(k->expires_at - now), "hint", k->hint);
    if (ex == NULL)
        return kw_err_set(err, KW_ENOMEM, NULL, "out of memory");
    if (threshold != KW_ALERT_EXPIRED) {
        kw_duration_format(threshold, d);
        json_object_set_new(ex, "threshold", json_string(d));
        json_object_set_new(ex, "threshold_s", json_integer(threshold));
    }
    if (nskip) {
        json_t *sk = json_array();
        for (size_t i = 0; sk && i < nskip; i++) {
            if (skipped[i] == KW_ALERT_EXPIRED)
                continue;
            kw_duration_format(skipped[i], d);
            json_array_append_new(sk, json_string(d));
        }
        if (sk && json_array_size(sk))
            json_object_set_new(ex, "skipped_thresholds", sk);
        else
            json_decref(sk);
    }
    return kw_event_insert(st, type, now, ex, NULL, evid, err);
}

/* Handle one due key inside the open transaction. Returns alerts raised (0/1) or KW_E*. */
static int handle_key(kw_store_t *st, const kw_alert_key_t *ak, const kw_policy_t *pol, int64_t now,
                      size_t *expired, kw_err_t *err)
{
    const kw_keyrec_t *k = &ak->key;
    int64_t done[KW_MAX_THRESHOLDS + 4];
    size_t ndone = 0;
    kw_alert_plan_t plan;
    char evid[KW_ID_MAX];
    int rc, raised = 0;

    if (k->revoked_at || k->expires_at == 0) /* revoked keys raise nothing */
        return kw_store_alert_set_next(st, k->id, 0, err);
    rc = kw_store_alert_done(st, k->id, k->expires_at, done, sizeof(done) / sizeof(done[0]), &ndone,
                             err);
    if (rc)
        return rc;
    if (ak->next_alert_at < 0) /* security: armed at a known time (a new key's creation) */
        kw_alert_plan_since(pol ? pol->thresholds : NULL, pol ? pol->nthresholds : 0, k->expires_at,
                            now, done, ndone, -ak->next_alert_at, EXPIRED_GRACE, &plan);
    else
        kw_alert_plan(pol ? pol->thresholds : NULL, pol ? pol->nthresholds : 0, k->expires_at, now,
                      done, ndone, ak->next_alert_at == 0, EXPIRED_GRACE, &plan);
    if (plan.raise != KW_ALERT_NONE) {
        rc = raise_event(st, ak, plan.raise, plan.skip, plan.nskip, now, evid, err);
        if (rc == 0)
            rc = kw_store_alert_record(st, k->id, k->expires_at, plan.raise, evid, now, err);
        if (rc)
            return rc;
        raised = 1;
        *expired += plan.raise == KW_ALERT_EXPIRED;
    }
    for (size_t i = 0; i < plan.nskip; i++)
        if ((rc = kw_store_alert_record(st, k->id, k->expires_at, plan.skip[i], NULL, now, err)))
            return rc;
    rc = kw_store_alert_set_next(st, k->id, plan.next_at, err);
    return rc ? rc : raised;
}

/* One batch, inside one write: claim the due keys, handle each. */
static int batch_run(kw_store_t *st, void *ud, kw_err_t *err)
{
    kw_alert_pass_t *b = ud;
    kw_alert_key_t *due = NULL;
    b->n = b->raised = b->expired = 0;
    /* Claimed inside the write transaction: another scheduler (a second node on a shared
     * store) cannot handle the same keys (PostgreSQL: FOR UPDATE SKIP LOCKED). */
    int rc = kw_store_alert_due(st, b->now, ALERT_BATCH, &due, &b->n, err);
    for (size_t i = 0; rc == 0 && i < b->n; i++) {
        int r = handle_key(st, &due[i], kw_policy_find(b->pols, b->npols, due[i].policy), b->now,
                           &b->expired, err);
        if (r < 0)
            rc = r;
        else
            b->raised += (size_t)r;
    }
    free(due);
    return rc;
}

int kw_sched_run_once(kw_server_t *srv, int64_t now, kw_err_t *err)
{
    return kw_alert_pass(srv, now, ALERT_BATCH, batch_run, 1, err);
}

int kw_alert_pass(kw_server_t *srv, int64_t now, size_t max, kw_lc_tx_fn batch, int metrics,
                  kw_err_t *err)
{
    kw_policy_t *pols = NULL;
    size_t npols = 0;
    int total = 0, rc;
    if ((rc = kw_store_policy_list(srv->store, &pols, &npols, err)))
        return rc;
    for (;;) {
        kw_alert_pass_t b = {.srv = srv, .pols = pols, .npols = npols, .now = now};
        if ((rc = kw_lc_tx(&srv->lc, batch, NULL, &b, err)))
            break;
        for (size_t i = 0; metrics && i < b.raised; i++) /* counted once committed */
            kw_metrics_alert(i < b.expired);
        total += (int)b.raised;
        if (b.n < max)
            break;
    }
    free(pols);
    return rc ? rc : total;
}

/* security: retention. History older than --retention goes in batches of PRUNE_BATCH, one
 * short write transaction each, at most PRUNE_MAX_BATCHES per pass (the next pass goes on). */
#define PRUNE_BATCH 500
#define PRUNE_MAX_BATCHES 20

typedef struct prune_tx {
    int64_t before;
    size_t n; /* output, set by every run (kw_store_prune) */
} prune_tx_t;

static int prune_run(kw_store_t *st, void *ud, kw_err_t *err)
{
    prune_tx_t *p = ud;
    return kw_store_prune(st, p->before, PRUNE_BATCH, &p->n, err);
}

static void prune_history(kw_server_t *srv, int64_t now)
{
    size_t total = 0;
    for (int i = 0; i < PRUNE_MAX_BATCHES; i++) {
        kw_err_t e = {0};
        size_t n = 0;
        prune_tx_t p = {.before = now - srv->cfg.retention};
        int rc = kw_lc_tx(&srv->lc, prune_run, NULL, &p, &e);
        n = p.n;
        if (rc) {
            kw_log(KW_LOG_WARN, "history pruning failed; will retry", "{s:s}", "error", e.msg);
            break;
        }
        total += n;
        if (n == 0)
            break;
    }
    if (total)
        kw_log(KW_LOG_INFO, "history older than --retention pruned", "{s:I}", "rows",
               (json_int_t)total);
}

/* One tick: alerts (the leader's, on several nodes), watched alerts, the outbox woken,
 * history pruned; then --scheduler-interval of sleep. */
static int64_t sched_pass(void *owner, int i)
{
    kw_server_t *srv = ((kw_sched_t *)owner)->bg.srv;
    kw_err_t e = {0};
    /* several nodes (PostgreSQL): only the leader runs the pass (store_cluster.h) */
    int lead = 1;
    if (kw_store_shared(srv->store) && kw_store_leader(srv->store, &lead, &e) != 0)
        lead = 0;
    int r = lead ? kw_sched_run_once(srv, kw_now(), &e) : 0;
    if (r < 0)
        kw_log(KW_LOG_WARN, "scheduler pass failed; will retry", "{s:s}", "error", e.msg);
    else if (r > 0)
        kw_log(KW_LOG_INFO, "expiry alerts raised", "{s:i}", "alerts", r);
    r = kw_watched_alerts_run(srv, kw_now(), &e); /* watched credentials (§12) */
    if (r < 0)
        kw_log(KW_LOG_WARN, "watched alert pass failed; will retry", "{s:s}", "error", e.msg);
    else if (r > 0)
        kw_log(KW_LOG_INFO, "watched expiry alerts raised", "{s:i}", "alerts", r);
    kw_outbox_wake(srv->outbox);
    prune_history(srv, kw_now());
    return (int64_t)srv->cfg.scheduler_interval * 1000;
}

int kw_sched_start(kw_server_t *srv, kw_sched_t **out, kw_err_t *err)
{
    *out = kw_bg_launch(kw_bg_alloc(sizeof(kw_sched_t), srv, err), 1, sched_pass,
                        "the scheduler thread", err);
    return *out ? 0 : KW_EINTERNAL;
}

void kw_sched_stop(kw_sched_t *s)
{
    kw_bg_free(s);
}
