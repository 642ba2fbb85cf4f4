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

#endif
