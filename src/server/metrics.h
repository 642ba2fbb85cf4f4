/* metrics.h - the process counters /metrics exports, and GET /metrics (metrics.c). */
#ifndef KW_METRICS_H
#define KW_METRICS_H

#include <stdint.h>

#include "api.h"

/* Verification outcome counter and latency (called on the hot path: relaxed atomics). */
void kw_metrics_verify(int code, int64_t ns);
/* Delivery outcome counter. kind: "webhook", "email", "log"; result: "delivered",
 * "retry", "failed", "disabled". */
void kw_metrics_delivery(const char *kind, const char *result);
void kw_metrics_alert(int expired);
/* Connections by what served them: the gate's counter hook (kw_conn_count_fn, gate.h). */
void kw_metrics_conn(int kind);
/* GET /metrics */
void kw_h_metrics(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs);
/* Monotonic nanoseconds, for latency. */
int64_t kw_metrics_now_ns(void);

#endif
