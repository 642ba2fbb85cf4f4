/* outbox.h - the delivery workers (outbox.c, SPEC §6): fan each event out to its channels
 * and deliver it with retries. Started and stopped by serve.c. Design:
 * docs/internals/alerts.md. */
#ifndef KW_OUTBOX_H
#define KW_OUTBOX_H

#include "api.h"

typedef struct kw_outbox kw_outbox_t;

/* Start the delivery workers; sending rows left by a previous process are released. */
int kw_outbox_start(kw_server_t *srv, kw_outbox_t **out, kw_err_t *err);
void kw_outbox_stop(kw_outbox_t *o); /* NULL allowed; waits for in-flight sends */
void kw_outbox_wake(kw_outbox_t *o);

#endif
