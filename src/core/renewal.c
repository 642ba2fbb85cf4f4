/* renewal.c - renewing keys and the approval workflow (SPEC §2, §5): the arithmetic and
 * its caps, pending requests, decisions, and the lazy cancellation of requests whose key
 * lapsed first. Each call is one operation of the group-commit engine (lifecycle.h): run
 * reads and writes inside the batch's transaction, post updates the index after the
 * commit. Must not: change a key without its audit record, or let anyone decide their own
 * request. */
#include "renewal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "duration.h"
#include "events.h"
#include "jdump.h"
#include "util.h"

static json_t *jstr_or_null(const char *s)
{
    return s && *s ? json_string(s) : json_null();
}

/* Why key k cannot be renewed at all, or NULL if it is usable and expires. */
static const char *unusable(const kw_keyrec_t *k, int64_t now)
{
    if (k->revoked_at)
        return "has been invalidated";
    if (k->expires_at == 0)
        return "never expires";
    if (k->expires_at <= now || !k->live)
        return "has already expired";
    return NULL;
}

/* The expiry a renewal of k under p gives at now (see lifecycle.h). */
static int renew_target(const kw_policy_t *p, const kw_keyrec_t *k, int64_t extend_by,
                        int64_t expires_at, int64_t now, int64_t *out, int *capped, kw_err_t *err)
{
    char a[KW_TIME_STR_MAX], d[KW_DURATION_STR_MAX];
    const char *why = unusable(k, now);
    *capped = 0;
    if (why)
        return kw_err_set(err, KW_ECONFLICT, NULL, "key %s %s and cannot be renewed%s", k->id, why,
                          k->expires_at == 0 && !k->revoked_at ? "" : "; issue a new key");
    if (!p->renewable)
        return kw_err_set(err, KW_ECONFLICT, NULL, "policy '%s' does not allow renewal", p->name);
    int64_t cap = now + p->max_lifetime, t;
    kw_duration_format(p->max_lifetime, d);
    if (extend_by > 0) {
        t = (k->expires_at > now ? k->expires_at : now) + extend_by;
        if (t > cap) {
            t = cap;
            *capped = 1;
        }
        if (t <= k->expires_at) {
            kw_time_format(k->expires_at, a);
            return kw_err_set(err, KW_ECONFLICT, "extend_by",
                              "key %s already expires at %s, the latest that policy '%s' "
                              "allows (now + max_lifetime %s)",
                              k->id, a, p->name, d);
        }
    } else {
        if (expires_at <= now)
            return kw_err_set(err, KW_EINVAL, "expires_at", "expires_at must be in the future");
        if (expires_at > cap)
            return kw_err_set(err, KW_EPOLICY, "expires_at",
                              "expires_at is more than %s ahead, the maximum set by policy '%s'", d,
                              p->name);
        if (expires_at <= k->expires_at) {
            kw_time_format(k->expires_at, a);
            return kw_err_set(err, KW_ECONFLICT, "expires_at",
                              "expires_at must be later than the key's current expiry %s", a);
        }
        t = expires_at;
    }
    *out = t;
    return 0;
}

/* Key, credential policy: read inside the transaction. */
static int load_key_policy(kw_lc_t *lc, const char *key_id, kw_keyrec_t *k, kw_policy_t *p,
                           kw_err_t *err)
{
    kw_cred_t c = {0};
    int rc = kw_store_key_get(lc->store, key_id, k, err);
    if (rc)
        return rc;
    rc = kw_store_cred_get(lc->store, k->cred_id, &c, err);
    if (rc == KW_ENOTFOUND) {
        /* a deleted credential: its keys are all revoked, which renew_target reports */
        kw_err_clear(err);
        kw_policy_defaults(p, "default");
        return 0;
    }
    if (rc == 0)
        rc = kw_store_policy_get(lc->store, c.policy, p, err);
    kw_cred_clear(&c);
    return rc;
}

/* Move k's expiry to t: store, key.renewed event, key.renew audit record. */
static int apply(kw_lc_t *lc, const char *actor, kw_keyrec_t *k, int64_t t, int capped,
                 const kw_renewal_t *ren, const char *reason, int64_t now, kw_err_t *err)
{
    int64_t from = k->expires_at;
    k->expires_at = t;
    int rc = kw_store_key_update(lc->store, k, err);
    if (rc == 0)
        rc = kw_event_raise(lc->store, "key.renewed", k, now,
                            json_pack("{s:o, s:o, s:o}", "expires_at", kw_json_time(t),
                                      "previous_expires_at", kw_json_time(from), "renewal_id",
                                      jstr_or_null(ren ? ren->id : NULL)),
                            NULL, err);
    if (rc == 0)
        rc = kw_audit_append(
            lc->store, actor, "key.renew", k->id, "ok",
            json_pack("{s:s, s:o, s:o, s:b, s:o, s:o}", "credential_id", k->cred_id, "from",
                      kw_json_time(from), "to", kw_json_time(t), "capped", capped, "renewal_id",
                      jstr_or_null(ren ? ren->id : NULL), "reason", jstr_or_null(reason)),
            now, err);
    return rc;
}

static json_t *request_detail(const kw_renewal_t *r)
{
    return json_pack("{s:s, s:s, s:o, s:o, s:o}", "key_id", r->key_id, "requested_by",
                     r->requested_by, "extend_by_s",
                     r->extend_by ? json_integer(r->extend_by) : json_null(), "expires_at",
                     kw_json_time(r->expires_at), "reason", jstr_or_null(r->reason));
}

/* What the renew and decide ops give back, reset by every run (the engine may run an op
 * again): the key and the renewal request, and what happened to them. */
typedef struct ren_out {
    kw_keyrec_t k;
    kw_renewal_t r;
    int applied;   /* k's expiry moved */
    int queued;    /* renew: a request awaits approval instead */
    int capped;    /* renew: the policy's maximum lifetime cut the new expiry */
    int cancelled; /* decide: the request was cancelled, its key unusable */
} ren_out_t;

/* The head of both ops; the post of both. */
typedef struct ren_op {
    kw__lc_op_t op;
    const char *actor;
    ren_out_t out;
} ren_op_t;

/* The index learns k after the commit when the op renewed it. */
static int ren_post(kw_lc_t *lc, kw__lc_op_t *op)
{
    const ren_out_t *o = &((ren_op_t *)op)->out;
    if (o->applied && kw_index_put_key(lc->index, &o->k) != 0)
        return kw_err_set(op->err, KW_ENOMEM, NULL, "renewed, but the index update failed");
    return 0;
}

/* Run the op whose head is h through the engine (lifecycle.c). 0 or KW_E*. */
static int ren_submit(kw_lc_t *lc, ren_op_t *h, int (*run)(kw_lc_t *lc, kw__lc_op_t *op),
                      const char *actor, kw_err_t *err)
{
    h->op.run = run;
    h->op.post = ren_post;
    h->op.err = err;
    h->actor = actor;
    return kw__lc_submit(lc, &h->op);
}

/* ---- renew ---- */

typedef struct renew_op {
    ren_op_t ren;
    const char *key_id;
    const kw_renew_in_t *in;
} renew_op_t;

static int renew_run(kw_lc_t *lc, kw__lc_op_t *op)
{
    renew_op_t *a = (renew_op_t *)op;
    ren_out_t *o = &a->ren.out;
    const char *actor = a->ren.actor;
    const kw_renew_in_t *in = a->in;
    kw_keyrec_t *k = &o->k;
    kw_renewal_t *r = &o->r;
    kw_err_t *err = op->err;
    kw_policy_t p;
    kw_renewal_t *open = NULL;
    size_t nopen = 0;
    int64_t now = kw_now(), t = 0;
    int rc;
    memset(o, 0, sizeof(*o));
    if ((rc = load_key_policy(lc, a->key_id, k, &p, err)) != 0)
        return rc;
    if ((rc = renew_target(&p, k, in->extend_by, in->expires_at, now, &t, &o->capped, err)) != 0)
        return rc;
    if (!p.renewal_requires_approval) {
        o->applied = 1;
        return apply(lc, actor, k, t, o->capped, NULL, in->reason, now, err);
    }
    o->queued = 1;
    kw_renewal_filter_t f = {.state = "pending", .key_id = k->id, .limit = 1};
    if ((rc = kw_store_renewal_list(lc->store, &f, &open, &nopen, err)) != 0)
        return rc;
    if (nopen) {
        rc = kw_err_set(err, KW_ECONFLICT, NULL,
                        "renewal request %s for key %s is already pending a decision", open[0].id,
                        k->id);
        free(open);
        return rc;
    }
    free(open);
    if (kw_id_new("ren", r->id))
        return kw_err_set(err, KW_EINTERNAL, NULL, "could not read the system random source");
    snprintf(r->key_id, sizeof(r->key_id), "%s", k->id);
    snprintf(r->requested_by, sizeof(r->requested_by), "%s", actor ? actor : "system");
    r->extend_by = in->extend_by;
    r->expires_at = in->expires_at;
    snprintf(r->reason, sizeof(r->reason), "%s", in->reason ? in->reason : "");
    snprintf(r->state, sizeof(r->state), "pending");
    r->created_at = now;
    if ((rc = kw_store_renewal_insert(lc->store, r, err)) != 0)
        return rc;
    json_t *ev = request_detail(r);
    if (ev)
        json_object_set_new(ev, "renewal_id", json_string(r->id));
    if ((rc = kw_event_raise(lc->store, "renewal.requested", k, now, ev, NULL, err)) != 0)
        return rc;
    return kw_audit_append(lc->store, actor, "renewal.request", r->id, "ok", request_detail(r), now,
                           err);
}

int kw_lc_key_renew(kw_lc_t *lc, const char *actor, const char *key_id, const kw_renew_in_t *in,
                    kw_keyrec_t *key_out, kw_renewal_t *ren_out, int *pending, int *capped,
                    kw_err_t *err)
{
    if ((in->extend_by > 0) == (in->expires_at > 0))
        return kw_err_set(err, KW_EINVAL, "extend_by",
                          "give extend_by or expires_at (one of them)");
    renew_op_t a = {.key_id = key_id, .in = in};
    const ren_out_t *o = &a.ren.out;
    int rc = ren_submit(lc, &a.ren, renew_run, actor, err);
    if (rc == 0) {
        *pending = o->queued;
        *capped = o->capped;
        if (o->queued)
            *ren_out = o->r;
        else
            *key_out = o->k;
    }
    return rc;
}

/* Mark r cancelled because its key k can no longer be renewed (inside a transaction). */
static int cancel(kw_store_t *st, kw_renewal_t *r, const kw_keyrec_t *k, int64_t now, kw_err_t *err)
{
    snprintf(r->state, sizeof(r->state), "cancelled");
    snprintf(r->decided_by, sizeof(r->decided_by), "system");
    r->decided_at = now;
    snprintf(r->note, sizeof(r->note), "key %s before a decision was made",
             k && k->revoked_at ? "was invalidated" : "expired");
    int rc = kw_store_renewal_update(st, r, err);
    if (rc == 0)
        rc = kw_audit_append(st, "system", "renewal.cancel", r->id, "ok",
                             json_pack("{s:s, s:s}", "key_id", r->key_id, "note", r->note), now,
                             err);
    return rc;
}

/* ---- decide ---- */

typedef struct decide_op {
    ren_op_t ren;
    const char *id, *note;
    int approve;
} decide_op_t;

static int decide_run(kw_lc_t *lc, kw__lc_op_t *op)
{
    decide_op_t *a = (decide_op_t *)op;
    ren_out_t *o = &a->ren.out;
    const char *actor = a->ren.actor;
    kw_renewal_t *r = &o->r;
    kw_keyrec_t *k = &o->k;
    kw_err_t *err = op->err;
    kw_policy_t p;
    int64_t now = kw_now(), t = 0;
    int rc;
    char ts[KW_TIME_STR_MAX];
    memset(o, 0, sizeof(*o));
    if ((rc = kw_store_renewal_get(lc->store, a->id, r, err)) != 0)
        return rc;
    if (strcmp(r->state, "pending") != 0) {
        kw_time_format(r->decided_at, ts);
        return kw_err_set(err, KW_ECONFLICT, NULL, "renewal %s was already %s by %s at %s%s%s",
                          r->id, r->state, r->decided_by, ts, r->note[0] ? ": " : "", r->note);
    }
    if (actor && strcmp(actor, r->requested_by) == 0)
        return kw_err_set(err, KW_EFORBIDDEN, NULL,
                          "%s requested renewal %s and so cannot decide it; another approver "
                          "must",
                          actor, r->id);
    if ((rc = load_key_policy(lc, r->key_id, k, &p, err)) != 0)
        return rc;
    if (unusable(k, now)) {
        /* Final: the key lapsed first. Commit the cancellation; the caller then reports
         * the conflict. */
        if ((rc = cancel(lc->store, r, k, now, err)) == 0)
            o->cancelled = 1;
        return rc;
    }
    if (a->approve) {
        rc = renew_target(&p, k, r->extend_by, r->expires_at, now, &t, &o->capped, err);
        if (rc == 0)
            rc = apply(lc, actor, k, t, o->capped, r, r->reason, now, err);
        if (rc)
            return rc;
        o->applied = 1;
    }
    snprintf(r->state, sizeof(r->state), "%s", a->approve ? "approved" : "rejected");
    snprintf(r->decided_by, sizeof(r->decided_by), "%s", actor ? actor : "system");
    r->decided_at = now;
    snprintf(r->note, sizeof(r->note), "%s", a->note ? a->note : "");
    if ((rc = kw_store_renewal_update(lc->store, r, err)) != 0)
        return rc;
    json_t *ev = request_detail(r);
    if (ev) {
        json_object_set_new(ev, "renewal_id", json_string(r->id));
        json_object_set_new(ev, "decided_by", json_string(r->decided_by));
        json_object_set_new(ev, "note", jstr_or_null(r->note));
        if (o->applied)
            json_object_set_new(ev, "expires_at", kw_json_time(k->expires_at));
    }
    if ((rc = kw_event_raise(lc->store, a->approve ? "renewal.approved" : "renewal.rejected", k,
                             now, ev, NULL, err)) != 0)
        return rc;
    return kw_audit_append(
        lc->store, actor, a->approve ? "renewal.approve" : "renewal.reject", r->id, "ok",
        json_pack("{s:s, s:o, s:o}", "key_id", r->key_id, "note", jstr_or_null(r->note),
                  "expires_at", o->applied ? kw_json_time(k->expires_at) : json_null()),
        now, err);
}

int kw_lc_renewal_decide(kw_lc_t *lc, const char *actor, const char *id, int approve,
                         const char *note, kw_renewal_t *out, kw_keyrec_t *key_out, kw_err_t *err)
{
    decide_op_t a = {.id = id, .note = note, .approve = approve};
    const ren_out_t *o = &a.ren.out;
    int rc = ren_submit(lc, &a.ren, decide_run, actor, err);
    if (rc == 0 && o->cancelled)
        return kw_err_set(err, KW_ECONFLICT, NULL, "renewal %s cannot be %s: its %s", o->r.id,
                          approve ? "approved" : "rejected", o->r.note);
    if (rc == 0) {
        if (out)
            *out = o->r;
        if (key_out && o->applied)
            *key_out = o->k;
    }
    return rc;
}

/* ---- sweep ---- */

typedef struct sweep_tx {
    const kw_renewal_t *stale;
    size_t n;
    int64_t now;
} sweep_tx_t;

static int sweep_run(kw_store_t *st, void *ud, kw_err_t *err)
{
    const sweep_tx_t *t = ud;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < t->n; i++) {
        kw_renewal_t r;
        kw_keyrec_t k;
        /* re-read inside the transaction: someone may have decided it meanwhile */
        if ((rc = kw_store_renewal_get(st, t->stale[i].id, &r, err)) != 0)
            break;
        if (strcmp(r.state, "pending") != 0)
            continue;
        if ((rc = kw_store_key_get(st, r.key_id, &k, err)) != 0)
            break;
        if (unusable(&k, t->now))
            rc = cancel(st, &r, &k, t->now, err);
    }
    return rc;
}

int kw_lc_renewal_sweep(kw_lc_t *lc, int64_t now, kw_err_t *err)
{
    kw_renewal_t *stale = NULL;
    size_t n = 0;
    int rc = kw_store_renewal_stale(lc->store, now, 256, &stale, &n, err);
    if (rc == 0 && n) {
        sweep_tx_t t = {.stale = stale, .n = n, .now = now};
        rc = kw_lc_tx(lc, sweep_run, NULL, &t, err);
    }
    free(stale);
    return rc;
}

int kw_lc_renewal_get(kw_lc_t *lc, const char *id, kw_renewal_t *out, kw_err_t *err)
{
    kw_renewal_t r;
    kw_keyrec_t k;
    int64_t now = kw_now();
    int rc = kw_store_renewal_get(lc->store, id, &r, err);
    if (rc)
        return rc;
    if (strcmp(r.state, "pending") == 0 && kw_store_key_get(lc->store, r.key_id, &k, NULL) == 0 &&
        unusable(&k, now)) {
        if ((rc = kw_lc_renewal_sweep(lc, now, err)) != 0)
            return rc;
        if ((rc = kw_store_renewal_get(lc->store, id, &r, err)) != 0)
            return rc;
    }
    *out = r;
    return 0;
}
