/* watched_alerts.c - watched.expiring / watched.expired for watched credentials (SPEC §12),
 * raised by the scheduler through the same outbox as key alerts: the decision is
 * kw_alert_plan's, the state (which thresholds a row had at which expiry, when to look
 * again) is store_watched.h's, and both are committed with the event in one transaction,
 * so each alert is raised once, across restarts and downtime. Events carry ids, names,
 * hints and times, never a secret. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/alerts.h"
#include "core/duration.h"
#include "core/events.h"
#include "core/jdump.h"
#include "core/policy.h"
#include "core/util.h"
#include "log.h"
#include "scheduler.h"
#include "watched.h"

#define ALERT_BATCH 128
#define EXPIRED_GRACE (24 * 3600)

int kw_watched_event(kw_server_t *srv, const char *type, const kw_watched_t *w, int64_t now,
                     json_t *extra, char evid[KW_ID_MAX], kw_err_t *err)
{
    json_t *subject = json_pack(
        "{s:s, s:s, s:o, s:o, s:s, s:s}", "watched_id", w->id, "name", w->name, "provider",
        w->provider ? json_string(w->provider) : json_null(), "owner",
        w->owner ? json_string(w->owner) : json_null(), "kind", w->kind, "policy", w->policy);
    if (subject == NULL) {
        json_decref(extra);
        return kw_err_set(err, KW_ENOMEM, NULL, "out of memory");
    }
    return kw_event_insert(srv->store, type, now, subject, extra, evid, err);
}

/* Raise (or skip) what w owes now, inside the open transaction. Returns 0/1 raised or KW_E*. */
static int handle(kw_server_t *srv, const kw_watched_t *w, int armed, const kw_policy_t *pol,
                  int64_t now, kw_err_t *err)
{
    int64_t exp = kw_watched_alert_expiry(w), done[KW_MAX_THRESHOLDS + 4];
    size_t ndone = 0;
    kw_alert_plan_t plan;
    char evid[KW_ID_MAX], d[KW_DURATION_STR_MAX];
    int rc, raised = 0;
    if (exp == 0)
        return kw_store_watched_alert_set_next(srv->store, w->id, 0, err);
    if ((rc = kw_store_watched_alert_done(srv->store, w->id, exp, done,
                                          sizeof(done) / sizeof(done[0]), &ndone, err)))
        return rc;
    kw_alert_plan(pol ? pol->thresholds : NULL, pol ? pol->nthresholds : 0, exp, now, done, ndone,
                  armed, EXPIRED_GRACE, &plan);
    if (plan.raise != KW_ALERT_NONE) {
        int expired = plan.raise == KW_ALERT_EXPIRED;
        /* what lapses: the credential's own expiry, or the refresh grant's */
        const char *subject = exp == w->expires_at
                                  ? (strcmp(w->kind, "oauth2") == 0 ? "client_secret" : "secret")
                                  : "refresh_token";
        const char *hint =
            exp == w->expires_at
                ? (strcmp(w->kind, "oauth2") == 0 ? w->client_secret_hint : w->secret_hint)
                : w->refresh_token_hint;
        json_t *x =
            json_pack("{s:s, s:o, s:I, s:s}", "subject", subject, "expires_at", kw_json_time(exp),
                      "expires_in_s", (json_int_t)(exp - now), "hint", hint);
        if (x && !expired) {
            kw_duration_format(plan.raise, d);
            json_object_set_new(x, "threshold", json_string(d));
            json_object_set_new(x, "threshold_s", json_integer(plan.raise));
        }
        if (x && plan.nskip) {
            json_t *sk = json_array();
            for (size_t i = 0; sk && i < plan.nskip; i++)
                if (plan.skip[i] != KW_ALERT_EXPIRED) {
                    kw_duration_format(plan.skip[i], d);
                    json_array_append_new(sk, json_string(d));
                }
            json_object_set_new(x, "skipped_thresholds", sk ? sk : json_array());
        }
        rc = kw_watched_event(srv, expired ? "watched.expired" : "watched.expiring", w, now, x,
                              evid, err);
        if (rc == 0)
            rc = kw_store_watched_alert_record(srv->store, w->id, exp, plan.raise, evid, now, err);
        if (rc)
            return rc;
        raised = 1;
    }
    for (size_t i = 0; i < plan.nskip; i++)
        if ((rc = kw_store_watched_alert_record(srv->store, w->id, exp, plan.skip[i], NULL, now,
                                                err)))
            return rc;
    rc = kw_store_watched_alert_set_next(srv->store, w->id, plan.next_at, err);
    return rc ? rc : raised;
}

/* One batch, inside one write (a kw_lc_tx operation for kw_alert_pass): claim the due ones,
 * handle each. */
static int batch_run(kw_store_t *st, void *ud, kw_err_t *err)
{
    kw_alert_pass_t *b = ud;
    kw_watched_t *due = NULL;
    int *armed = NULL;
    b->n = b->raised = 0;
    int rc = kw_store_watched_alert_due(st, b->now, ALERT_BATCH, &due, &armed, &b->n, err);
    for (size_t i = 0; rc == 0 && i < b->n; i++) {
        int r = handle(b->srv, &due[i], armed[i], kw_policy_find(b->pols, b->npols, due[i].policy),
                       b->now, err);
        if (r < 0)
            rc = r;
        else
            b->raised += (size_t)r;
    }
    kw_watched_array_free(due, b->n);
    free(armed);
    return rc;
}

int kw_watched_alerts_run(kw_server_t *srv, int64_t now, kw_err_t *err)
{
    return kw_alert_pass(srv, now, ALERT_BATCH, batch_run, 0, err);
}
