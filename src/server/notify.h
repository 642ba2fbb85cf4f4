/* notify.h - alerts and their delivery (SPEC §6): the scheduler thread that raises
 * key.expiring / key.expired, the outbox workers that fan events out to channels and
 * deliver them with retries, the three channels, and the counters /metrics exports.
 * Design: docs/internals/alerts.md. */
#ifndef KW_NOTIFY_H
#define KW_NOTIFY_H

#include <stdint.h>

#include "api.h"
#include "core/sink.h"

/* ---- threads (started and stopped by serve.c) ---- */

typedef struct kw_sched kw_sched_t;
typedef struct kw_outbox kw_outbox_t;

/* Start the scheduler: every cfg.scheduler_interval it handles every key that is due. */
int kw_sched_start(kw_server_t *srv, kw_sched_t **out, kw_err_t *err);
void kw_sched_stop(kw_sched_t *s); /* NULL allowed; joins the thread */
/* One pass now (tests, and the thread's body): returns alerts raised, or a KW_E*. */
int kw_sched_run_once(kw_server_t *srv, int64_t now, kw_err_t *err);

/* Start the delivery workers; sending rows left by a previous process are released. */
int kw_outbox_start(kw_server_t *srv, kw_outbox_t **out, kw_err_t *err);
void kw_outbox_stop(kw_outbox_t *o); /* NULL allowed; waits for in-flight sends */
void kw_outbox_wake(kw_outbox_t *o);

/* ---- channels ---- */

/* The outcome of one attempt. */
typedef enum {
    KW_SEND_OK = 0,  /* delivered */
    KW_SEND_RETRY,   /* try again later (timeout, 5xx, refused connection, ...) */
    KW_SEND_GONE,    /* 410: disable this webhook */
    KW_SEND_FAIL,    /* permanent: give up now */
    KW_SEND_LATER,   /* not now (e-mail quota): retry at *later_at, attempt not counted */
    KW_SEND_ABORTED, /* abandoned by the shutdown (kw_notify_abort): stays queued, due now */
} kw_send_t;

/* Shutdown: after kw_notify_abort() every transfer armed with kw_notify_abortable() stops
 * at once (its sockets are shut down; libcurl's progress callback, called about once a
 * second, catches the rest), and no new one starts: a transfer that did not end in
 * CURLE_OK while kw_notify_aborted() holds is abandoned, not failed, and the channel
 * answers KW_SEND_ABORTED and the outbox leaves the delivery queued - never failed, never
 * delivered - so the next process sends it with the same webhook-id. */
void kw_notify_abort(void);
int kw_notify_aborted(void);
void kw_notify_abortable(void *curl); /* a CURL * easy handle */

typedef struct kw_send_ctx {
    kw_server_t *srv;
    const char *event_id, *type, *payload; /* payload: the event JSON */
    int64_t now;
    char error[256];  /* why, on anything but OK (never a secret) */
    int64_t later_at; /* KW_SEND_LATER */
} kw_send_ctx_t;

kw_send_t kw_notify_webhook(kw_send_ctx_t *c, const kw_chan_t *ch);
kw_send_t kw_notify_email(kw_send_ctx_t *c, const kw_chan_t *ch);
kw_send_t kw_notify_log(kw_send_ctx_t *c, const kw_chan_t *ch);

/* SSRF guard: 0 when url's host resolves only to public addresses (or allow_private);
 * -2 when the host does not resolve; else -1 with a reason in why. addr (may be NULL) receives the
 * first address as text, port the port, for pinning the connection to what was checked. */
int kw_webhook_url_allowed(const char *url, int allow_private, char *why, size_t whylen, char *addr,
                           size_t addrlen, int *port, char *host, size_t hostlen);

/* Standard Webhooks signature "v1,<base64>" of id.ts.body with the whsec_ secret. */
int kw_webhook_sign(const char *secret, const char *id, int64_t ts, const char *body, char *out,
                    size_t outlen);

/* Credential contacts from a request (a JSON array already shape-checked by h_creds.c):
 * webhook URLs pass the SSRF guard, a given secret must be whsec_<base64 of 16..64 bytes>,
 * a webhook without one keeps the secret of the existing contact with the same URL
 * (existing_json, may be NULL) or gets a new one, listed in *generated (a JSON array of
 * {"url", "signing_secret"}, NULL if none; caller decrefs). *text is replaced. Returns 0 or
 * -1 with rs filled (400 naming contacts). */
int kw_contacts_prepare(kw_server_t *srv, char **text, const char *existing_json,
                        json_t **generated, kw_resp_t *rs);
/* Add "signing_secrets" to a 2xx JSON answer already in rs (consumes generated). */
void kw_contacts_attach(kw_resp_t *rs, json_t *generated);

/* ---- metrics ---- */

/* Verification outcome counter and latency (called on the hot path: relaxed atomics). */
void kw_metrics_verify(int code, int64_t ns);
/* Delivery outcome counter. kind: "webhook", "email", "log"; result: "delivered",
 * "retry", "failed", "disabled". */
void kw_metrics_delivery(const char *kind, const char *result);
void kw_metrics_alert(int expired);
/* Connections by what served them (gate.c): accepted by the gate, handed to the general
 * server at their first request, relayed to it later, refused at --max-connections. */
enum { KW_CONN_ACCEPTED, KW_CONN_HANDED, KW_CONN_RELAYED, KW_CONN_REFUSED, KW_CONN_KINDS };
void kw_metrics_conn(int kind);
/* GET /metrics */
void kw_h_metrics(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs);
/* Monotonic nanoseconds, for latency. */
int64_t kw_metrics_now_ns(void);

/* ---- events API (h_events.c) ---- */
void kw_h_event_list(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs);
void kw_h_event_get(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs);
void kw_h_event_retry(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs);

#endif
