/* outbox.c - delivery workers (SPEC §6). An event row in the outbox is fanned out, in one
 * transaction, into one deliveries row per channel (the credential's contacts plus the
 * global --sink list); workers then claim due rows transactionally (state sending, a
 * lease), send outside any transaction, and record the outcome: delivered, a retry time
 * (exponential backoff from --delivery-retry-min doubling to 1 h, with jitter), failed
 * after --delivery-max-age, or disabled (410). A crash between send and record re-sends
 * with the same webhook-id; a delivered row is never sent again.
 * Must not: hold a store transaction while talking to the network; log a secret. */
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "bgthread.h"
#include "core/util.h"
#include "log.h"
#include "metrics.h"
#include "notify_abort.h"
#include "notify_send.h"
#include "outbox.h"
#include "reload.h"
#include "store/store_cluster.h"
#include "store/store_notify.h"
#include "store/store_watched.h"

#define WORKERS 2
#define CLAIM_BATCH 8
#define FANOUT_BATCH 64
#define LEASE_S 300 /* a claimed row is retried after this if its worker vanished */
#define BACKOFF_MAX_S 3600
#define MAX_CHANNELS 40
#define POLL_MS 500

struct kw_outbox {
    kw_bg_t bg; /* first (bgthread.h): WORKERS threads, bg.srv */
};
_Static_assert(offsetof(struct kw_outbox, bg) == 0, "bgthread.h: the kw_bg_t comes first");

/* ---- channels of an event ---- */

typedef struct chanset {
    kw_chan_t ch[MAX_CHANNELS];
    size_t n;
    size_t used; /* entries ever written (all may hold secrets): what the wipe covers */
} chanset_t;

static chanset_t *chanset_new(void)
{
    chanset_t *cs = malloc(sizeof(*cs));
    if (cs)
        cs->n = cs->used = 0;
    return cs;
}

/* speed: wipes the entries written, not the whole 87 KiB (~55 k instructions a fan-out) */
static void chanset_free(chanset_t *cs)
{
    if (cs)
        kw_wipe(cs->ch, cs->used * sizeof(cs->ch[0]));
    free(cs);
}

static void chanset_add(chanset_t *cs, const kw_chan_t *c)
{
    char a[KW_CHAN_NAME_MAX], b[KW_CHAN_NAME_MAX];
    kw_chan_name(c, a);
    for (size_t i = 0; i < cs->n; i++) {
        kw_chan_name(&cs->ch[i], b);
        if (strcmp(a, b) == 0) {
            if (!cs->ch[i].secret[0] && c->secret[0]) /* keep a secret if one has it */
                memcpy(cs->ch[i].secret, c->secret, sizeof(c->secret));
            return;
        }
    }
    if (cs->n < MAX_CHANNELS)
        cs->ch[cs->n++] = *c;
    if (cs->n > cs->used)
        cs->used = cs->n;
}

static int add_sink(void *cs, const kw_chan_t *c)
{
    chanset_add(cs, c);
    return 0;
}

/* The global sinks (already validated by the config parser). */
static void add_sinks(kw_server_t *srv, chanset_t *cs)
{
    kw_cfg_rdlock(); /* SIGHUP may replace the list */
    kw_sink_each(srv->cfg.sinks, add_sink, cs);
    kw_cfg_unlock();
}

/* A credential's contacts JSON into channels (contacts were validated when written). */
static void add_contacts(const char *json, chanset_t *cs)
{
    json_t *a = json_loads(json ? json : "[]", 0, NULL);
    size_t i;
    json_t *o;
    json_array_foreach(a, i, o)
    {
        const char *type = json_string_value(json_object_get(o, "type"));
        kw_chan_t c;
        memset(&c, 0, sizeof(c));
        if (type == NULL)
            continue;
        if (strcmp(type, "webhook") == 0) {
            const char *url = json_string_value(json_object_get(o, "url"));
            const char *sec = json_string_value(json_object_get(o, "secret"));
            if (url == NULL || strlen(url) > KW_URL_MAX)
                continue;
            c.type = KW_CHAN_WEBHOOK;
            snprintf(c.target, sizeof(c.target), "%s", url);
            if (sec && strlen(sec) <= KW_WHSEC_MAX)
                snprintf(c.secret, sizeof(c.secret), "%s", sec);
        } else if (strcmp(type, "email") == 0) {
            const char *to = json_string_value(json_object_get(o, "to"));
            if (to == NULL || strlen(to) > KW_ADDR_MAX)
                continue;
            c.type = KW_CHAN_EMAIL;
            snprintf(c.target, sizeof(c.target), "%s", to);
        } else if (strcmp(type, "log") == 0) {
            c.type = KW_CHAN_LOG;
        } else {
            continue;
        }
        chanset_add(cs, &c);
        kw_wipe(&c, sizeof(c));
    }
    json_decref(a);
}

/* 1 when a credential's scopes (JSON array) give it a say on renewals. */
static int decides(const char *scopes_json, int admins_too)
{
    json_t *a = json_loads(scopes_json ? scopes_json : "[]", 0, NULL);
    size_t i;
    json_t *o;
    int yes = 0;
    json_array_foreach(a, i, o)
    {
        const char *sc = json_string_value(o);
        if (sc && (strcmp(sc, "keyward:approver") == 0 ||
                   (admins_too && strcmp(sc, "keyward:admin") == 0)))
            yes = 1;
    }
    json_decref(a);
    return yes;
}

/* renewal.requested goes to whoever may decide it (SPEC §6): the contacts of enabled
 * credentials holding keyward:approver (and keyward:admin with --renewal-notify-admins),
 * not the requester's own - a requester cannot decide. */
static int add_deciders(kw_server_t *srv, const char *requester, chanset_t *cs, kw_err_t *err)
{
    kw_cred_filter_t f = {.limit = 256};
    for (;;) {
        kw_cred_t *a = NULL;
        size_t n = 0;
        int rc = kw_store_cred_list(srv->store, &f, &a, &n, err);
        if (rc)
            return rc;
        for (size_t i = 0; i < n; i++)
            if (!a[i].disabled && strcmp(a[i].id, requester ? requester : "") != 0 &&
                decides(a[i].scopes_json, srv->cfg.renewal_notify_admins))
                add_contacts(a[i].contacts_json, cs);
        if (n)
            f.after_seq = a[n - 1].seq;
        kw_cred_array_free(a, n);
        if (n < f.limit)
            return 0;
    }
}

/* Every channel an event goes to: the contacts of its credential (of the deciders for
 * renewal.requested; of a deleted or unknown credential: none) plus the sinks. A
 * key.renewed that a renewal.approved accompanies goes to no e-mail channel: the
 * approval's message already tells that reader the new expiry. */
static int scan_cred(const char *p, char out[KW_ID_MAX]);

static int channels_for(kw_server_t *srv, const char *type, const char *payload, chanset_t *cs,
                        kw_err_t *err)
{
    char cid[KW_ID_MAX];
    json_t *j = NULL;
    const char *cred_id = cid;
    /* speed: only renewal.requested and key.renewed read more than the credential id */
    int whole =
        type && (strcmp(type, "renewal.requested") == 0 || strcmp(type, "key.renewed") == 0);
    if (whole || payload == NULL || scan_cred(payload, cid) != 0) {
        j = json_loads(payload ? payload : "{}", 0, NULL);
        cred_id = json_string_value(json_object_get(j, "credential_id"));
    }
    int rc = 0;
    cs->n = 0;
    if (type && strcmp(type, "renewal.requested") == 0) {
        rc = add_deciders(srv, json_string_value(json_object_get(j, "requested_by")), cs, err);
    } else if (cred_id && strncmp(cred_id, "wat_", 4) == 0) { /* watched credential (§12) */
        kw_watched_t w = {0};
        kw_err_t e = {0};
        if (kw_store_watched_get(srv->store, cred_id, &w, &e) == 0)
            add_contacts(w.contacts_json, cs);
        kw_watched_clear(&w);
    } else if (cred_id && *cred_id) {
        kw_cred_t c = {0};
        kw_err_t e = {0};
        if (kw_store_cred_get(srv->store, cred_id, &c, &e) == 0)
            add_contacts(c.contacts_json, cs);
        kw_cred_clear(&c);
    }
    add_sinks(srv, cs);
    if (type && strcmp(type, "key.renewed") == 0 &&
        json_is_string(json_object_get(j, "renewal_id"))) {
        size_t k = 0;
        for (size_t i = 0; i < cs->n; i++)
            if (cs->ch[i].type != KW_CHAN_EMAIL)
                cs->ch[k++] = cs->ch[i];
        cs->n = k;
    }
    json_decref(j);
    return rc;
}

/* speed: the end of the JSON string whose opening quote is at p (the closing quote), or
 * NULL; *esc is set when it holds an escape. */
static const char *str_end(const char *p, int *esc)
{
    for (p++; *p; p++) {
        if (*p == '\\') {
            *esc = 1;
            if (*++p == '\0')
                return NULL;
        } else if (*p == '"') {
            return p;
        }
    }
    return NULL;
}

static const char *skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    return p;
}

/* speed: the top-level "credential_id" of a payload by scanning its text (members skipped,
 * nested values by depth), as json_loads + json_object_get would find it (the last of
 * duplicates) at a tenth of the cost. -1: not understood (escapes, odd text): ask jansson. */
static int scan_cred(const char *p, char out[KW_ID_MAX])
{
    int esc = 0;
    out[0] = '\0';
    if (*(p = skip_ws(p)) != '{')
        return -1;
    for (p = skip_ws(p + 1); *p != '}';) {
        const char *k = p, *ke = *p == '"' ? str_end(p, &esc) : NULL;
        if (ke == NULL || esc || *(p = skip_ws(ke + 1)) != ':')
            return -1;
        int want = ke - k - 1 == 13 && memcmp(k + 1, "credential_id", 13) == 0;
        p = skip_ws(p + 1);
        if (*p == '"') {
            const char *e = str_end(p, &esc);
            if (e == NULL || (want && esc))
                return -1;
            if (want && e - p - 1 >= KW_ID_MAX)
                return -1; /* longer than any id: jansson's text, not a cut one */
            if (want)
                snprintf(out, KW_ID_MAX, "%.*s", (int)(e - p - 1), p + 1);
            p = e + 1;
        } else {
            if (want)
                out[0] = '\0';
            int depth = 0;
            for (; *p && (depth > 0 || (*p != ',' && *p != '}')); p++) {
                if (*p == '"') {
                    if ((p = str_end(p, &esc)) == NULL)
                        return -1;
                } else if (*p == '{' || *p == '[') {
                    depth++;
                } else if (*p == '}' || *p == ']') {
                    depth--;
                }
            }
            if (*p == '\0')
                return -1;
        }
        p = skip_ws(p);
        if (*p == ',')
            p = skip_ws(p + 1);
        else if (*p != '}')
            return -1;
    }
    return *skip_ws(p + 1) == '\0' ? 0 : -1;
}

static void payload_cred(const char *payload, char out[KW_ID_MAX])
{
    if (payload && scan_cred(payload, out) == 0 && out[0])
        return; /* else: none there (watched.* events name their watched credential) */
    json_t *j = json_loads(payload, 0, NULL);
    const char *c = json_string_value(json_object_get(j, "credential_id"));
    if (c == NULL) /* watched.* events name their watched credential */
        c = json_string_value(json_object_get(j, "watched_id"));
    snprintf(out, KW_ID_MAX, "%s", c && strlen(c) < KW_ID_MAX ? c : "");
    json_decref(j);
}

/* ---- fan-out ---- */

typedef struct fanout_tx {
    kw_server_t *srv;
    int64_t now;
    size_t n; /* output */
} fanout_tx_t;

static int fanout_run(kw_store_t *st, void *ud, kw_err_t *err)
{
    fanout_tx_t *t = ud;
    kw_event_t *ev = NULL;
    t->n = 0;
    int rc = kw_store_event_unfanned(st, FANOUT_BATCH, &ev, &t->n, err);
    chanset_t *cs = chanset_new();
    if (rc == 0 && cs == NULL)
        rc = kw_err_set(err, KW_ENOMEM, NULL, "out of memory");
    for (size_t i = 0; rc == 0 && i < t->n; i++) {
        char cred[KW_ID_MAX], name[KW_CHAN_NAME_MAX];
        payload_cred(ev[i].payload, cred);
        rc = channels_for(t->srv, ev[i].type, ev[i].payload, cs, err);
        if (rc == 0 && cs->n == 0 && strcmp(ev[i].type, "renewal.requested") == 0)
            kw_log(KW_LOG_WARN,
                   "nobody is told of a renewal request: no credential holding "
                   "keyward:approver has contacts, and no sink is set",
                   "{s:s}", "event", ev[i].id);
        for (size_t k = 0; rc == 0 && k < cs->n; k++) {
            kw_chan_name(&cs->ch[k], name);
            rc = kw_store_delivery_add(st, ev[i].id, name, t->now, err);
        }
        if (rc == 0)
            rc = kw_store_event_fanned(st, ev[i].id, cred, t->now, err);
    }
    chanset_free(cs);
    kw_event_array_free(ev, t->n);
    return rc;
}

/* Fan out one batch of new events to their channels. Returns events fanned or KW_E*. */
static int fanout(kw_server_t *srv, int64_t now, kw_err_t *err)
{
    fanout_tx_t t = {.srv = srv, .now = now};
    int rc = kw_lc_tx(&srv->lc, fanout_run, NULL, &t, err);
    return rc ? rc : (int)t.n;
}

/* ---- delivery ---- */

static const char *kind_name(kw_chan_type_t t)
{
    return t == KW_CHAN_WEBHOOK ? "webhook" : t == KW_CHAN_EMAIL ? "email" : "log";
}

/* The secret of a webhook channel, from the event's credential contacts or the sinks. */
static void find_secret(kw_server_t *srv, const char *type, const char *payload, kw_chan_t *ch)
{
    char want[KW_CHAN_NAME_MAX], have[KW_CHAN_NAME_MAX];
    kw_err_t e = {0};
    chanset_t *cs = chanset_new();
    if (cs == NULL)
        return;
    channels_for(srv, type, payload, cs, &e);
    kw_chan_name(ch, want);
    for (size_t i = 0; i < cs->n; i++) {
        kw_chan_name(&cs->ch[i], have);
        if (strcmp(want, have) == 0)
            memcpy(ch->secret, cs->ch[i].secret, sizeof(ch->secret));
    }
    chanset_free(cs);
}

static int64_t backoff(kw_server_t *srv, int64_t attempts)
{
    int64_t d = srv->cfg.delivery_retry_min;
    for (int64_t i = 1; i < attempts && d < BACKOFF_MAX_S; i++)
        d *= 2;
    if (d > BACKOFF_MAX_S)
        d = BACKOFF_MAX_S;
    uint32_t r = 0;
    kw_random(&r, sizeof(r));
    return d + (int64_t)(r % (uint32_t)(d / 4 + 1)); /* jitter: up to +25 % */
}

/* Send one claimed delivery and fill d with the outcome to record. */
static void deliver(kw_server_t *srv, kw_delivery_t *d)
{
    kw_chan_t ch;
    int64_t now = kw_now();
    kw_send_ctx_t c = {
        .srv = srv, .event_id = d->event_id, .type = d->type, .payload = d->payload, .now = now};
    kw_send_t r;
    int disabled = 0;
    kw_err_t e = {0};

    if (kw_chan_from_name(d->channel, &ch) != 0) {
        r = KW_SEND_FAIL;
        snprintf(c.error, sizeof(c.error), "unknown channel");
    } else if (ch.type == KW_CHAN_WEBHOOK &&
               kw_store_channel_disabled(srv->store, d->channel, &disabled, &e) == 0 && disabled) {
        r = KW_SEND_GONE;
        snprintf(c.error, sizeof(c.error), "webhook disabled after an earlier 410 Gone");
    } else {
        if (ch.type == KW_CHAN_WEBHOOK)
            find_secret(srv, d->type, d->payload, &ch);
        r = ch.type == KW_CHAN_WEBHOOK ? kw_notify_webhook(&c, &ch)
            : ch.type == KW_CHAN_EMAIL ? kw_notify_email(&c, &ch)
                                       : kw_notify_log(&c, &ch);
    }
    kw_wipe(ch.secret, sizeof(ch.secret));
    snprintf(d->last_error, sizeof(d->last_error), "%s", r == KW_SEND_OK ? "" : c.error);
    const char *kind = kind_name(ch.type), *result = "retry";
    switch (r) {
    case KW_SEND_OK:
        snprintf(d->state, sizeof(d->state), "delivered");
        d->delivered_at = now;
        d->next_attempt_at = 0;
        result = "delivered";
        break;
    case KW_SEND_GONE:
        snprintf(d->state, sizeof(d->state), "disabled");
        d->next_attempt_at = 0;
        result = "disabled";
        break;
    case KW_SEND_FAIL:
        snprintf(d->state, sizeof(d->state), "failed");
        d->next_attempt_at = 0;
        result = "failed";
        break;
    case KW_SEND_LATER:
        snprintf(d->state, sizeof(d->state), "pending");
        d->next_attempt_at = c.later_at > now ? c.later_at : now + 60;
        result = "deferred";
        break;
    case KW_SEND_ABORTED: /* the shutdown: neither failed nor delivered, due at once */
        snprintf(d->state, sizeof(d->state), "pending");
        d->next_attempt_at = now;
        result = "abandoned";
        break;
    case KW_SEND_RETRY: {
        int64_t next = now + backoff(srv, d->attempts);
        if (next > d->occurred_at + srv->cfg.delivery_max_age) {
            snprintf(d->state, sizeof(d->state), "failed");
            d->next_attempt_at = 0;
            result = "failed";
        } else {
            snprintf(d->state, sizeof(d->state), "pending");
            d->next_attempt_at = next;
        }
        break;
    }
    }
    kw_metrics_delivery(kind, result);
    if (r != KW_SEND_OK)
        kw_log(
            strcmp(result, "retry") == 0 || strcmp(result, "deferred") == 0 || r == KW_SEND_ABORTED
                ? KW_LOG_INFO
                : KW_LOG_WARN,
            "alert delivery not done", "{s:s, s:s, s:s, s:s, s:I}", "event", d->event_id, "channel",
            kind, "result", result, "error", d->last_error, "attempts", (json_int_t)d->attempts);
}

static int record_run(kw_store_t *st, void *ud, kw_err_t *err)
{
    const kw_delivery_t *d = ud;
    int rc = kw_store_delivery_finish(st, d, err);
    if (rc == 0 && strcmp(d->state, "disabled") == 0)
        rc = kw_store_channel_disable(st, d->channel, d->event_id, kw_now(), err);
    return rc;
}

static int record(kw_server_t *srv, kw_delivery_t *d, kw_err_t *err)
{
    return kw_lc_tx(&srv->lc, record_run, NULL, d, err);
}

typedef struct claim_tx {
    int64_t now;
    kw_delivery_t *d; /* outputs, reset by every run */
    size_t n;
} claim_tx_t;

static int claim_run(kw_store_t *st, void *ud, kw_err_t *err)
{
    claim_tx_t *t = ud;
    kw_delivery_array_free(t->d, t->n);
    t->d = NULL;
    t->n = 0;
    return kw_store_delivery_claim(st, t->now, t->now + LEASE_S, CLAIM_BATCH, &t->d, &t->n, err);
}

/* One round: fan out, claim, send, record. Returns work done (> 0) or 0. */
static int round_once(kw_server_t *srv)
{
    kw_err_t e = {0};
    kw_delivery_t *d = NULL;
    size_t n = 0;
    int64_t now = kw_now();
    int work = 0, rc;
    if (kw_notify_aborted()) /* stopping: claim nothing more */
        return 0;
    if ((rc = fanout(srv, now, &e)) < 0)
        kw_log(KW_LOG_WARN, "outbox fan-out failed; will retry", "{s:s}", "error", e.msg);
    else
        work += rc;
    claim_tx_t ct = {.now = now};
    rc = kw_lc_tx(&srv->lc, claim_run, NULL, &ct, &e);
    d = ct.d;
    n = ct.n;
    if (rc) {
        kw_log(KW_LOG_WARN, "outbox claim failed; will retry", "{s:s}", "error", e.msg);
        kw_delivery_array_free(d, n);
        return work;
    }
    for (size_t i = 0; i < n; i++) {
        if (kw_notify_aborted()) { /* the shutdown: the rest of the batch stays queued */
            snprintf(d[i].state, sizeof(d[i].state), "pending");
            d[i].next_attempt_at = now;
        } else {
            deliver(srv, &d[i]);
        }
        if (record(srv, &d[i], &e) != 0)
            /* the lease makes the row due again: it will be sent again (same webhook-id) */
            kw_log(KW_LOG_WARN, "recording a delivery failed", "{s:s, s:s}", "event", d[i].event_id,
                   "error", e.msg);
    }
    kw_delivery_array_free(d, n);
    return work + (int)n;
}

/* A worker's round; when it found nothing to do, it sleeps POLL_MS or until woken. */
static int64_t worker_pass(void *owner, int i)
{
    return round_once(((kw_outbox_t *)owner)->bg.srv) > 0 ? 0 : POLL_MS;
}

void kw_outbox_wake(kw_outbox_t *o)
{
    if (o)
        kw_bg_wake(&o->bg);
}

static int release_run(kw_store_t *st, void *ud, kw_err_t *err)
{
    size_t *released = ud;
    *released = 0;
    return kw_store_delivery_release(st, kw_now(), released, err);
}

int kw_outbox_start(kw_server_t *srv, kw_outbox_t **out, kw_err_t *err)
{
    size_t released = 0;
    /* One node (SQLite): rows left "sending" by a previous process are due again now.
     * Several nodes: another node may be sending them; their lease runs out instead. */
    int shared = kw_store_shared(srv->store);
    int rc = shared ? 0 : kw_lc_tx(&srv->lc, release_run, NULL, &released, err);
    if (rc)
        return rc;
    if (released)
        kw_log(KW_LOG_INFO, "deliveries interrupted by the last stop are due again", "{s:I}",
               "deliveries", (json_int_t)released);
    *out = kw_bg_launch(kw_bg_alloc(sizeof(kw_outbox_t), srv, err), WORKERS, worker_pass,
                        "the delivery workers", err);
    return *out ? 0 : KW_EINTERNAL;
}

void kw_outbox_stop(kw_outbox_t *o)
{
    kw_bg_free(o);
}
