/* policy.h - the rules a policy sets (SPEC §2, §3): consistency, the expiry of a new key,
 * the overlap of a roll, the expiry warning window; and the operation that saves a policy
 * (a lifecycle operation, lifecycle.h). The record, kw_policy_t, is in model.h. */
#ifndef KW_POLICY_H
#define KW_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "model.h"

typedef enum { KW_EXP_DEFAULT = 0, KW_EXP_LIFETIME, KW_EXP_NEVER, KW_EXP_AT } kw_exp_kind_t;

typedef struct kw_expiry_in {
    kw_exp_kind_t kind;
    int64_t value; /* seconds for LIFETIME, unix time for AT */
} kw_expiry_in_t;

/* Check a policy's internal consistency: lifetimes > 0, default <= max, thresholds > 0
 * and strictly descending, overlap > 0. Returns 0 or KW_EINVAL naming the field. */
int kw_policy_validate(const kw_policy_t *p, kw_err_t *err);

/* The expiry a new key gets under p at now (exp NULL = the policy's default lifetime):
 * *out = 0 for "never". KW_EPOLICY (field lifetime / expires_at) beyond what p allows,
 * KW_EINVAL for an expires_at not in the future. */
int kw_policy_expiry(const kw_policy_t *p, const kw_expiry_in_t *exp, int64_t now, int64_t *out,
                     kw_err_t *err);

/* The overlap of a roll: asked, or (asked = 0) min(24h, max_roll_overlap); KW_EPOLICY
 * (field overlap) above max_roll_overlap. */
int kw_policy_roll_overlap(const kw_policy_t *p, int64_t asked, int64_t *out, kw_err_t *err);

/* How long before expiry a key counts as "expiring" (the first alert threshold; 0 when
 * the policy has none). */
int64_t kw_policy_warn_window(const kw_policy_t *p);

/* The policy named name among p[0..n), or NULL. */
const kw_policy_t *kw_policy_find(const kw_policy_t *p, size_t n, const char *name);

struct kw_lc;
/* Create (create=1, KW_ECONFLICT if the name exists) or replace a policy. p must already
 * be valid (kw_policy_validate). Keys already issued keep their expiry. */
int kw_lc_policy_put(struct kw_lc *lc, const char *actor, const kw_policy_t *p, int create,
                     kw_err_t *err);

#endif
