/* policy.c - the rules a policy sets (SPEC §2, §3): whether a policy is consistent, the
 * expiry a new key gets, the overlap of a roll, the warning window the index keeps, and
 * the operation that creates or replaces a policy (a lifecycle operation, with its audit
 * record). Must not: change a key already issued. */
#include "policy.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "audit.h"
#include "duration.h"
#include "lifecycle.h"
#include "util.h"

#define DEFAULT_ROLL_OVERLAP (24LL * 3600)

int64_t kw_policy_warn_window(const kw_policy_t *p)
{
    return p->nthresholds ? p->thresholds[0] : 0;
}

int kw_policy_expiry(const kw_policy_t *p, const kw_expiry_in_t *exp, int64_t now, int64_t *out,
                     kw_err_t *err)
{
    char a[KW_DURATION_STR_MAX], b[KW_DURATION_STR_MAX];
    kw_expiry_in_t dflt = {KW_EXP_DEFAULT, 0};
    if (exp == NULL)
        exp = &dflt;
    switch (exp->kind) {
    case KW_EXP_DEFAULT:
        *out =
            now + (p->default_lifetime < p->max_lifetime ? p->default_lifetime : p->max_lifetime);
        return 0;
    case KW_EXP_NEVER:
        if (!p->allow_never_expire)
            return kw_err_set(err, KW_EPOLICY, "lifetime",
                              "policy '%s' does not allow keys that never expire", p->name);
        *out = 0;
        return 0;
    case KW_EXP_LIFETIME:
        if (exp->value > p->max_lifetime) {
            kw_duration_format(exp->value, a);
            kw_duration_format(p->max_lifetime, b);
            return kw_err_set(err, KW_EPOLICY, "lifetime",
                              "lifetime %s exceeds the maximum of %s set by policy '%s'", a, b,
                              p->name);
        }
        *out = now + exp->value;
        return 0;
    case KW_EXP_AT:
        if (exp->value <= now)
            return kw_err_set(err, KW_EINVAL, "expires_at", "expires_at must be in the future");
        if (exp->value - now > p->max_lifetime) {
            kw_duration_format(p->max_lifetime, b);
            return kw_err_set(err, KW_EPOLICY, "expires_at",
                              "expires_at is more than %s ahead, the maximum set by policy '%s'", b,
                              p->name);
        }
        *out = exp->value;
        return 0;
    }
    return kw_err_set(err, KW_EINVAL, "lifetime", "unknown expiry kind");
}

const kw_policy_t *kw_policy_find(const kw_policy_t *p, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(p[i].name, name) == 0)
            return &p[i];
    return NULL;
}

int kw_policy_roll_overlap(const kw_policy_t *p, int64_t asked, int64_t *out, kw_err_t *err)
{
    char d1[KW_DURATION_STR_MAX], d2[KW_DURATION_STR_MAX];
    int64_t overlap = asked;
    if (overlap == 0)
        overlap =
            DEFAULT_ROLL_OVERLAP < p->max_roll_overlap ? DEFAULT_ROLL_OVERLAP : p->max_roll_overlap;
    if (overlap > p->max_roll_overlap) {
        kw_duration_format(overlap, d1);
        kw_duration_format(p->max_roll_overlap, d2);
        return kw_err_set(err, KW_EPOLICY, "overlap",
                          "overlap %s exceeds the maximum of %s set by policy '%s'", d1, d2,
                          p->name);
    }
    *out = overlap;
    return 0;
}

int kw_policy_validate(const kw_policy_t *p, kw_err_t *err)
{
    if (p->default_lifetime <= 0)
        return kw_err_set(err, KW_EINVAL, "default_lifetime", "default_lifetime must be > 0");
    if (p->max_lifetime <= 0)
        return kw_err_set(err, KW_EINVAL, "max_lifetime", "max_lifetime must be > 0");
    if (p->default_lifetime > p->max_lifetime)
        return kw_err_set(err, KW_EINVAL, "default_lifetime",
                          "default_lifetime must not exceed max_lifetime");
    if (p->max_roll_overlap <= 0)
        return kw_err_set(err, KW_EINVAL, "max_roll_overlap", "max_roll_overlap must be > 0");
    if (p->token_lifetime <= 0 || p->token_lifetime > 86400)
        return kw_err_set(err, KW_EINVAL, "token_lifetime",
                          "token_lifetime must be > 0 and at most 24h");
    if (p->nthresholds > KW_MAX_THRESHOLDS)
        return kw_err_set(err, KW_EINVAL, "alert_thresholds", "at most %d alert thresholds",
                          KW_MAX_THRESHOLDS);
    for (size_t i = 0; i < p->nthresholds; i++) {
        if (p->thresholds[i] <= 0 || (i > 0 && p->thresholds[i] >= p->thresholds[i - 1]))
            return kw_err_set(err, KW_EINVAL, "alert_thresholds",
                              "alert_thresholds must be positive and strictly decreasing, "
                              "e.g. [\"30d\", \"14d\", \"7d\", \"1d\"]");
    }
    return 0;
}

/* A policy as the audit trail records it (durations in seconds). */
static json_t *detail(const kw_policy_t *p)
{
    json_t *th = json_array();
    for (size_t i = 0; th && i < p->nthresholds; i++)
        json_array_append_new(th, json_integer(p->thresholds[i]));
    return json_pack("{s:I, s:I, s:b, s:b, s:b, s:o, s:I, s:I}", "default_lifetime_s",
                     (json_int_t)p->default_lifetime, "max_lifetime_s", (json_int_t)p->max_lifetime,
                     "allow_never_expire", p->allow_never_expire, "renewable", p->renewable,
                     "renewal_requires_approval", p->renewal_requires_approval,
                     "alert_thresholds_s", th ? th : json_array(), "max_roll_overlap_s",
                     (json_int_t)p->max_roll_overlap, "token_lifetime_s",
                     (json_int_t)p->token_lifetime);
}

typedef struct policy_op {
    kw__lc_op_t op;
    const char *actor;
    const kw_policy_t *p;
    int create;
} policy_op_t;

static int policy_run(kw_lc_t *lc, kw__lc_op_t *op)
{
    policy_op_t *a = (policy_op_t *)op;
    int rc = kw_store_policy_put(lc->store, a->p, a->create, op->err);
    if (rc == KW_ECONFLICT)
        kw_err_set(op->err, KW_ECONFLICT, "name", "policy '%s' already exists", a->p->name);
    if (rc == 0)
        rc = kw_audit_append(lc->store, a->actor, a->create ? "policy.create" : "policy.update",
                             a->p->name, "ok", detail(a->p), kw_now(), op->err);
    return rc;
}

static int policy_post(kw_lc_t *lc, kw__lc_op_t *op)
{
    policy_op_t *a = (policy_op_t *)op;
    if (kw_index_put_policy(lc->index, a->p->name, kw_policy_warn_window(a->p)) != 0 ||
        kw_index_put_token_lifetime(lc->index, a->p->name, a->p->token_lifetime) != 0)
        return kw_err_set(op->err, KW_ENOMEM, NULL, "saved, but the index update failed");
    return 0;
}

int kw_lc_policy_put(kw_lc_t *lc, const char *actor, const kw_policy_t *p, int create,
                     kw_err_t *err)
{
    int rc = kw_policy_validate(p, err);
    if (rc)
        return rc;
    policy_op_t a = {.op = {.run = policy_run, .post = policy_post, .err = err},
                     .actor = actor,
                     .p = p,
                     .create = create};
    return kw__lc_submit(lc, &a.op);
}
