/* h_events.c - the outbox as the admin API shows it (SPEC §6): GET /v1/events (newest
 * first; filters type and credential_id; limit/cursor), GET /v1/events/{id} and
 * POST /v1/events/{id}/retry, each event with its per-channel delivery status.
 * Events never hold a secret; channel names never hold webhook secrets. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/jdump.h"
#include "core/util.h"
#include "log.h"
#include "outbox.h"
#include "store/store_notify.h"

#define DEFAULT_LIMIT 50
#define MAX_LIMIT 500

/* Re-queue the event's failed, disabled or cancelled deliveries (none changed: n = 0). */
typedef struct retry_tx {
    const char *id;
    int64_t now;
    size_t n; /* output */
} retry_tx_t;

static int retry_run(kw_store_t *st, void *ud, kw_err_t *err)
{
    retry_tx_t *t = ud;
    t->n = 0;
    return kw_store_event_retry(st, t->id, t->now, &t->n, err);
}

static json_t *delivery_json(const kw_delivery_t *d)
{
    return json_pack("{s:s, s:s, s:I, s:o, s:o, s:o}", "channel", d->channel, "state", d->state,
                     "attempts", (json_int_t)d->attempts, "next_attempt_at",
                     strcmp(d->state, "pending") == 0 || strcmp(d->state, "sending") == 0
                         ? kw_json_time(d->next_attempt_at)
                         : json_null(),
                     "last_error", d->last_error[0] ? json_string(d->last_error) : json_null(),
                     "delivered_at", kw_json_time(d->delivered_at));
}

/* The event object with "deliveries"; NULL (and e set) on failure. */
static json_t *event_json(kw_server_t *s, const kw_event_t *ev, kw_err_t *e)
{
    kw_delivery_t *d = NULL;
    size_t n = 0;
    json_t *j = json_loads(ev->payload, 0, NULL);
    if (!json_is_object(j)) {
        json_decref(j);
        j = json_pack("{s:s, s:s, s:o}", "id", ev->id, "type", ev->type, "occurred_at",
                      kw_json_time(ev->occurred_at));
    }
    if (j == NULL || kw_store_delivery_list(s->store, ev->id, &d, &n, e) != 0) {
        json_decref(j);
        if (e->code == 0)
            kw_err_set(e, KW_ENOMEM, NULL, "out of memory");
        return NULL;
    }
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        json_array_append_new(a, delivery_json(&d[i]));
    kw_delivery_array_free(d, n);
    json_object_set_new(j, "deliveries", a ? a : json_array());
    return j;
}

static void fail_store(kw_resp_t *rs, kw_err_t *e, const char *id)
{
    if (e->code == KW_ENOTFOUND) {
        kw_resp_error(rs, KW_ENOTFOUND, NULL, "unknown event %.60s", id);
        return;
    }
    kw_log(KW_LOG_ERROR, "events request failed", "{s:s}", "error", e->msg);
    kw_resp_problem(rs, e);
}

void kw_h_event_list(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs)
{
    kw_event_filter_t f = {.type = kw_req_query(rq, "type"),
                           .cred_id = kw_req_query(rq, "credential_id"),
                           .limit = DEFAULT_LIMIT};
    const char *cur = kw_req_query(rq, "cursor");
    kw_event_t *ev = NULL;
    size_t n = 0;
    kw_err_t e = {0};
    if (kw_api_query_limit(rq, rs, DEFAULT_LIMIT, MAX_LIMIT, &f.limit))
        return;
    if (cur) {
        char *end;
        long long v = strtoll(cur, &end, 10);
        if (*cur < '1' || *cur > '9' || *end != '\0' || v < 1) {
            kw_resp_error(rs, KW_EINVAL, "cursor", "cursor must be a value from a previous 'next'");
            return;
        }
        f.before_seq = v;
    }
    if (f.type && (f.type[0] == '\0' || strlen(f.type) > 47 ||
                   strspn(f.type, "abcdefghijklmnopqrstuvwxyz._") != strlen(f.type))) {
        kw_resp_error(rs, KW_EINVAL, "type", "type must be an event type like key.expiring");
        return;
    }
    if (f.cred_id && !kw_id_valid("cred", f.cred_id) &&
        !kw_id_valid("wat", f.cred_id)) { /* watched credentials' events too (§12) */
        kw_resp_error(rs, KW_EINVAL, "credential_id",
                      "credential_id must be a credential id (cred_...)");
        return;
    }
    if (kw_store_event_list(s->store, &f, &ev, &n, &e) != 0) {
        fail_store(rs, &e, "");
        return;
    }
    json_t *items = json_array();
    for (size_t i = 0; items && i < n; i++) {
        json_t *j = event_json(s, &ev[i], &e);
        if (j == NULL) {
            json_decref(items);
            kw_event_array_free(ev, n);
            fail_store(rs, &e, ev[i].id);
            return;
        }
        json_array_append_new(items, j);
    }
    int more = n == f.limit && n > 0;
    int64_t last = more ? ev[n - 1].seq : 0;
    kw_event_array_free(ev, n);
    kw_api_page_seq(rs, items, more, last);
}

static int load_event(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs, kw_event_t *ev)
{
    kw_err_t e = {0};
    if (!kw_id_valid("evt", rq->caps[0])) {
        char echo[72]; /* never echo a key pasted where an id belongs */
        kw_resp_error(rs, KW_ENOTFOUND, NULL, "unknown event %s",
                      kw_api_echo(rq->caps[0], echo, sizeof(echo)));
        return -1;
    }
    if (kw_store_event_get(s->store, rq->caps[0], ev, &e) != 0) {
        fail_store(rs, &e, rq->caps[0]);
        return -1;
    }
    return 0;
}

void kw_h_event_get(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs)
{
    kw_event_t ev;
    kw_err_t e = {0};
    if (load_event(s, rq, rs, &ev))
        return;
    json_t *j = event_json(s, &ev, &e);
    if (j)
        kw_resp_json(rs, 200, j);
    else
        fail_store(rs, &e, ev.id);
    free(ev.payload);
}

void kw_h_event_retry(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs)
{
    kw_event_t ev;
    kw_err_t e = {0};
    size_t n = 0;
    static const char *const allowed[] = {NULL};
    json_t *b = kw_api_body(rq, rs, allowed);
    if (b == NULL)
        return;
    json_decref(b);
    if (load_event(s, rq, rs, &ev))
        return;
    retry_tx_t t = {.id = ev.id, .now = rq->now};
    int rc = kw_lc_tx(&s->lc, retry_run, NULL, &t, &e);
    n = t.n;
    if (rc) {
        fail_store(rs, &e, ev.id);
    } else if (n == 0) {
        kw_resp_error(rs, KW_ECONFLICT, NULL,
                      "nothing to retry: no delivery of %s is failed, disabled or cancelled "
                      "(delivered ones are never sent again)",
                      ev.id);
    } else {
        kw_log(KW_LOG_INFO, "event deliveries re-queued", "{s:s, s:s, s:I}", "event", ev.id, "by",
               rq->principal, "deliveries", (json_int_t)n);
        kw_outbox_wake(s->outbox);
        json_t *j = event_json(s, &ev, &e);
        if (j) {
            json_object_set_new(j, "requeued", json_integer((json_int_t)n));
            kw_resp_json(rs, 200, j);
        } else {
            fail_store(rs, &e, ev.id);
        }
    }
    free(ev.payload);
}
