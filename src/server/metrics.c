/* metrics.c - GET /metrics in the Prometheus text format (SPEC §9): process counters kept
 * here with relaxed atomics (verifications by code, a verify latency histogram, deliveries
 * by channel and result, alerts raised), gauges read from the store at scrape time with
 * indexed queries (outbox depth and age, renewals pending, alerts due), and the expiry
 * figures of metrics_expiry.c's background snapshot (keys by state, policy and time to
 * expiry, capped per-credential series). The verify path only does relaxed atomic adds:
 * no lock, no allocation. Never a secret, never a key hint: ids and names only. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/duration.h"
#include "core/index.h"
#include "gate.h"
#include "metrics.h"
#include "metrics_expiry.h"
#include "oauth.h"
#include "textbuf.h"
#include "store/store_notify.h"
#include "watched.h"

#define NCODES (KW_V_VALID + 1)
/* latency buckets, upper bounds in nanoseconds */
static const int64_t lat_le_ns[] = {5000,   10000,   25000,   50000,    100000,
                                    250000, 1000000, 5000000, 25000000, 100000000};
#define NLAT (sizeof(lat_le_ns) / sizeof(lat_le_ns[0]))

static _Atomic uint64_t verify_n[NCODES];
static _Atomic uint64_t lat_bucket[NLAT + 1]; /* last: +Inf */
static _Atomic uint64_t lat_sum_ns;

static const char *const dkinds[] = {"webhook", "email", "log"};
static const char *const dresults[] = {"delivered", "retry", "failed", "disabled", "deferred"};
#define NDK 3
#define NDR 5
static _Atomic uint64_t dlv[NDK][NDR];
static _Atomic uint64_t alerts[2];
static _Atomic uint64_t conns[KW_CONN_KINDS];
static _Atomic uint64_t oauth_n[KW_OAUTH_KINDS]; /* oauth: SPEC §13 */

void kw_metrics_oauth(int kind)
{
    if (kind >= 0 && kind < KW_OAUTH_KINDS)
        atomic_fetch_add_explicit(&oauth_n[kind], 1, memory_order_relaxed);
}

int64_t kw_metrics_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void kw_metrics_verify(int code, int64_t ns)
{
    if (code >= 0 && code < NCODES)
        atomic_fetch_add_explicit(&verify_n[code], 1, memory_order_relaxed);
    size_t b = 0;
    while (b < NLAT && ns > lat_le_ns[b])
        b++;
    atomic_fetch_add_explicit(&lat_bucket[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&lat_sum_ns, (uint64_t)(ns > 0 ? ns : 0), memory_order_relaxed);
}

void kw_metrics_conn(int kind)
{
    if (kind >= 0 && kind < KW_CONN_KINDS)
        atomic_fetch_add_explicit(&conns[kind], 1, memory_order_relaxed);
}

void kw_metrics_delivery(const char *kind, const char *result)
{
    for (int k = 0; k < NDK; k++)
        for (int r = 0; r < NDR; r++)
            if (strcmp(kind, dkinds[k]) == 0 && strcmp(result, dresults[r]) == 0)
                atomic_fetch_add_explicit(&dlv[k][r], 1, memory_order_relaxed);
}

void kw_metrics_alert(int expired)
{
    atomic_fetch_add_explicit(&alerts[expired ? 1 : 0], 1, memory_order_relaxed);
}

/* ---- text building ---- */

static void head(kw_textbuf_t *b, const char *name, const char *type, const char *help)
{
    kw_textbuf_put(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void put_raw(void *ud, const char *text, size_t len)
{
    kw_textbuf_t *b = ud;
    kw_textbuf_put(b, "%.*s", (int)len, text);
}

void kw_h_metrics(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs)
{
    kw_textbuf_t b = {0};
    kw_notify_stats_t st;
    kw_err_t e = {0};
    int64_t now = rq->now;
    memset(&st, 0, sizeof(st));

    int have = kw_store_notify_stats(s->store, now, &st, &e) == 0;

    head(&b, "keyward_up", "gauge",
         "1 while the service answers; 0 if the store could not be read.");
    kw_textbuf_put(&b, "keyward_up %d\n", have);
    if (have) {
        head(&b, "keyward_outbox_pending", "gauge",
             "Deliveries waiting to be sent or being sent, plus events not yet fanned out.");
        kw_textbuf_put(&b, "keyward_outbox_pending %lld\n",
                       (long long)(st.deliveries_pending + st.outbox_unfanned));
        head(&b, "keyward_outbox_oldest_pending_age_seconds", "gauge",
             "Age of the oldest event with an undelivered delivery (0 when none).");
        kw_textbuf_put(&b, "keyward_outbox_oldest_pending_age_seconds %lld\n",
                       (long long)(st.oldest_pending_at ? now - st.oldest_pending_at : 0));
        head(&b, "keyward_deliveries_given_up", "gauge",
             "Deliveries in state failed or disabled (kept in the store; retry with keyward events "
             "retry).");
        kw_textbuf_put(&b, "keyward_deliveries_given_up %lld\n", (long long)st.deliveries_failed);
        head(&b, "keyward_alerts_due", "gauge", "Keys whose next expiry alert is due now.");
        kw_textbuf_put(&b, "keyward_alerts_due %lld\n", (long long)st.alerts_due);
        head(&b, "keyward_renewals_pending", "gauge", "Renewal requests waiting for a decision.");
        kw_textbuf_put(&b, "keyward_renewals_pending %lld\n", (long long)st.renewals_pending);
    }
    /* keys by state, policy and expiry, and the credentials that need attention: a snapshot
     * the background thread keeps (metrics_expiry.c), never a walk of the keys per scrape */
    kw_metrics_expiry_render(now, put_raw, &b);
    head(&b, "keyward_verifications_total", "counter", "Key verifications by outcome code.");
    for (int c = 0; c < NCODES; c++)
        kw_textbuf_put(
            &b, "keyward_verifications_total{code=\"%s\"} %llu\n",
            kw_verify_code_name((kw_verify_code_t)c),
            (unsigned long long)atomic_load_explicit(&verify_n[c], memory_order_relaxed));
    head(&b, "keyward_verify_duration_seconds", "histogram",
         "Time to answer a verification (POST /v1/keys/verify, GET /v1/auth), in the server.");
    uint64_t cum = 0;
    for (size_t i = 0; i <= NLAT; i++) {
        cum += atomic_load_explicit(&lat_bucket[i], memory_order_relaxed);
        if (i < NLAT)
            kw_textbuf_put(&b, "keyward_verify_duration_seconds_bucket{le=\"%g\"} %llu\n",
                           (double)lat_le_ns[i] / 1e9, (unsigned long long)cum);
        else
            kw_textbuf_put(&b, "keyward_verify_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
                           (unsigned long long)cum);
    }
    kw_textbuf_put(&b, "keyward_verify_duration_seconds_sum %.9f\n",
                   (double)atomic_load_explicit(&lat_sum_ns, memory_order_relaxed) / 1e9);
    kw_textbuf_put(&b, "keyward_verify_duration_seconds_count %llu\n", (unsigned long long)cum);
    head(&b, "keyward_deliveries_total", "counter",
         "Alert delivery attempts by channel type and result.");
    for (int k = 0; k < NDK; k++)
        for (int r = 0; r < NDR; r++)
            kw_textbuf_put(
                &b, "keyward_deliveries_total{channel=\"%s\",result=\"%s\"} %llu\n", dkinds[k],
                dresults[r],
                (unsigned long long)atomic_load_explicit(&dlv[k][r], memory_order_relaxed));
    head(&b, "keyward_alerts_total", "counter", "Expiry alerts raised by the scheduler.");
    kw_textbuf_put(&b, "keyward_alerts_total{type=\"key.expiring\"} %llu\n",
                   (unsigned long long)atomic_load_explicit(&alerts[0], memory_order_relaxed));
    kw_textbuf_put(&b, "keyward_alerts_total{type=\"key.expired\"} %llu\n",
                   (unsigned long long)atomic_load_explicit(&alerts[1], memory_order_relaxed));

    static const char *const conn_names[KW_CONN_KINDS] = {"accepted", "handed", "relayed",
                                                          "refused"};
    head(&b, "keyward_http_connections_total", "counter",
         "Client connections: accepted by the gateway loop, handed to the general HTTP "
         "server at their first request (other routes), relayed to it after verification "
         "requests, refused at --max-connections.");
    for (int k = 0; k < KW_CONN_KINDS; k++)
        kw_textbuf_put(&b, "keyward_http_connections_total{event=\"%s\"} %llu\n", conn_names[k],
                       (unsigned long long)atomic_load_explicit(&conns[k], memory_order_relaxed));

    static const char *const oauth_m[KW_OAUTH_KINDS][2] = {
        {"keyward_oauth_tokens_issued_total", "OAuth2 access tokens issued."},
        {"keyward_oauth_token_requests_refused_total",
         "Token, revocation or introspection requests refused for failed client authentication."},
        {"keyward_oauth_tokens_revoked_total", "Access tokens revoked one by one (RFC 7009)."},
        {"keyward_oauth_introspections_total", "Token introspection requests (RFC 7662)."}};
    for (int k = 0; k < KW_OAUTH_KINDS; k++) {
        head(&b, oauth_m[k][0], "counter", oauth_m[k][1]);
        kw_textbuf_put(&b, "%s %llu\n", oauth_m[k][0],
                       (unsigned long long)atomic_load_explicit(&oauth_n[k], memory_order_relaxed));
    }
    char *wt = kw_metrics_watched_text(s, now); /* watched credentials (SPEC §12) */
    if (wt)
        kw_textbuf_put(&b, "%s", wt);
    free(wt);

    if (b.oom) {
        free(b.p);
        kw_resp_error(rs, KW_ENOMEM, NULL, "out of memory");
        return;
    }
    rs->status = 200;
    rs->body = b.p;
    rs->len = b.len;
    rs->ctype = "text/plain; version=0.0.4; charset=utf-8";
}
