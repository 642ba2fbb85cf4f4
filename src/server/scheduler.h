/* scheduler.h - the thread that raises key.expiring / key.expired (scheduler.c, SPEC §6).
 * Started and stopped by serve.c. Design: docs/internals/alerts.md. */
#ifndef KW_SCHEDULER_H
#define KW_SCHEDULER_H

#include <stdint.h>

#include "api.h"

typedef struct kw_sched kw_sched_t;

/* Start the scheduler: every cfg.scheduler_interval it handles every key that is due. */
int kw_sched_start(kw_server_t *srv, kw_sched_t **out, kw_err_t *err);
void kw_sched_stop(kw_sched_t *s); /* NULL allowed; joins the thread */
/* One pass now (tests, and the thread's body): returns alerts raised, or a KW_E*. */
int kw_sched_run_once(kw_server_t *srv, int64_t now, kw_err_t *err);

/* One alert pass in batches, shared by the key alerts (above) and the watched credentials'
 * (watched_alerts.c). batch is a kw_lc_tx operation given the pass as ud: it claims at most
 * max due rows and handles each, setting n (rows claimed), raised and expired. */
typedef struct kw_alert_pass {
    kw_server_t *srv;
    const kw_policy_t *pols;
    size_t npols;
    int64_t now;
    size_t n, raised, expired; /* outputs: batch resets them on every run */
} kw_alert_pass_t;

/* Loads the policies once, then runs batch in one write after another until a batch claims
 * fewer than max rows. With metrics set, the alerts of a batch are counted on /metrics once
 * it committed. Returns the alerts raised, or a KW_E* (the batches committed stand). */
int kw_alert_pass(kw_server_t *srv, int64_t now, size_t max, kw_lc_tx_fn batch, int metrics,
                  kw_err_t *err);

#endif
