/* renewal.h - renewing keys and the approval workflow (SPEC §2, §5): the arithmetic and
 * its caps, pending requests, decisions, and the lazy cancellation of requests whose key
 * lapsed first. Each call is an operation of the lifecycle's group-commit engine
 * (lifecycle.h): its change, events and audit records commit together, and the index
 * learns a renewed key before the call returns. The records (kw_renewal_t, kw_renew_in_t)
 * are plain data in model.h. */
#ifndef KW_RENEWAL_H
#define KW_RENEWAL_H

#include <stdint.h>

#include "err.h"
#include "lifecycle.h"
#include "model.h"

/* A renewal moves a usable key's expiry later: extend_by gives
 * max(expires_at, now) + extend_by, capped at now + the policy's max_lifetime (*capped = 1
 * when the cap applied); expires_at asks for that exact time, which must lie after the
 * current expiry and within now + max_lifetime (else KW_EPOLICY, field expires_at).
 * KW_ECONFLICT: the key is revoked, expired or never expires, its policy is not renewable,
 * the result would not extend it, or a request for it is already pending. */

/* Renew now, or, when the key's policy has renewal_requires_approval, record a pending
 * request by actor (*pending = 1, *ren_out set, key unchanged). Otherwise *pending = 0 and
 * *key_out is the renewed key. Events key.renewed / renewal.requested and the audit record
 * are written in the same transaction. */
int kw_lc_key_renew(kw_lc_t *lc, const char *actor, const char *key_id, const kw_renew_in_t *in,
                    kw_keyrec_t *key_out, kw_renewal_t *ren_out, int *pending, int *capped,
                    kw_err_t *err);

/* Approve (approve = 1) or reject a pending request. KW_ENOTFOUND for an unknown id;
 * KW_EFORBIDDEN when actor made the request; KW_ECONFLICT when it is already decided, or
 * when its key is no longer usable (the request is then cancelled, and stays so), or the
 * policy as it is now refuses the renewal (the request stays pending). On approval
 * *key_out (may be NULL) is the renewed key. */
int kw_lc_renewal_decide(kw_lc_t *lc, const char *actor, const char *id, int approve,
                         const char *note, kw_renewal_t *out, kw_keyrec_t *key_out, kw_err_t *err);

/* Cancel pending requests whose key has expired or was revoked (state "cancelled",
 * decided_by "system", with a note). Called lazily before renewals are read. */
int kw_lc_renewal_sweep(kw_lc_t *lc, int64_t now, kw_err_t *err);

/* One request, swept first if its key is no longer usable. */
int kw_lc_renewal_get(kw_lc_t *lc, const char *id, kw_renewal_t *out, kw_err_t *err);

#endif
