/* lifecycle.h - credentials and their two key slots (SPEC §2, §5): create, update, delete,
 * new key, roll, invalidate. Each operation's changes (with its outbox event and audit
 * record) are committed before the call returns, and the verification index is updated
 * after the commit and before the return, so a key is verifiable as soon as its creation
 * is acknowledged. Concurrent operations are group-committed: the calls waiting at the
 * same time run in one store transaction, each inside a savepoint of its own (a failing
 * one is undone alone and fails alone), with one commit, i.e. one fsync, for all.
 *
 * Inputs are already type-checked by the caller (the HTTP layer); this module checks
 * meaning: policies, lifetimes, slots, states. Secrets are written only to the caller's
 * secret buffer, which the caller wipes. */
#ifndef KW_LIFECYCLE_H
#define KW_LIFECYCLE_H

#include <jansson.h>
#include <pthread.h>
#include <stdint.h>

#include "err.h"
#include "index.h"
#include "model.h"
#include "store/store.h"

typedef enum { KW_EXP_DEFAULT = 0, KW_EXP_LIFETIME, KW_EXP_NEVER, KW_EXP_AT } kw_exp_kind_t;

typedef struct kw_expiry_in {
    kw_exp_kind_t kind;
    int64_t value; /* seconds for LIFETIME, unix time for AT */
} kw_expiry_in_t;

/* Credential fields from a request; a NULL pointer / has_ = 0 means "not given". */
typedef struct kw_cred_in {
    const char *name;
    int has_owner;
    const char *owner;         /* NULL with has_owner = clear */
    const char *scopes_json;   /* JSON array of strings (validated by the caller) */
    const char *cidrs_json;    /* JSON array of canonical CIDR strings */
    const char *metadata_json; /* JSON object */
    const char *contacts_json; /* JSON array of contact objects */
    const char *policy;
    const char *prefix;
    int has_disabled;
    int disabled;
} kw_cred_in_t;

/* Every mutation below takes `actor`: the principal's credential id (or "system"), written
 * to the audit trail (core/audit.h) in the same transaction as the change. If the audit
 * record cannot be written the change is not made and the call fails with KW_ESTORE. */

struct kw__lc_op;
typedef struct kw_lc {
    kw_store_t *store;
    kw_index_t *index;
    pthread_mutex_t mu; /* one transaction at a time: store commit and index update in order */
    /* group commit (lifecycle.c): operations queue here; one caller at a time leads */
    pthread_mutex_t qmu;
    struct kw__lc_op *qhead, *qtail;
    size_t queued; /* ops queued, not yet taken by a leader (under qmu) */
    int leading;   /* a caller is leading (under qmu) */
    /* figures, under mu: transactions run for queued operations, operations they held,
     * and the size of the last one */
    uint64_t batches, batched_ops;
    size_t last_batch;
} kw_lc_t;

int kw_lc_init(kw_lc_t *lc, kw_store_t *store, kw_index_t *index);
void kw_lc_destroy(kw_lc_t *lc);

/* Operations waiting for a transaction (not yet taken by a leader); for tests. */
size_t kw_lc_queued(kw_lc_t *lc);

/* Fill the index from the store (keys retired before retain_since are skipped). */
int kw_lc_load_index(kw_lc_t *lc, int64_t retain_since, kw_err_t *err);

int kw_lc_cred_create(kw_lc_t *lc, const char *actor, const kw_cred_in_t *in,
                      const kw_expiry_in_t *exp, kw_cred_t *cred_out, kw_keyrec_t *key_out,
                      char secret[KW_KEY_MAX + 1], kw_err_t *err);
int kw_lc_cred_update(kw_lc_t *lc, const char *actor, const char *id, const kw_cred_in_t *in,
                      kw_err_t *err);
/* Revokes every key ("credential deleted") and hides the credential. */
int kw_lc_cred_delete(kw_lc_t *lc, const char *actor, const char *id, kw_err_t *err);

/* New key in the free slot; KW_ECONFLICT when both slots hold usable keys. */
int kw_lc_key_new(kw_lc_t *lc, const char *actor, const char *cred_id, const kw_expiry_in_t *exp,
                  kw_keyrec_t *out, char secret[KW_KEY_MAX + 1], kw_err_t *err);

/* New key in the other slot; the old key's expiry becomes min(current, now + overlap).
 * overlap 0 = min(24h, policy max_roll_overlap); above max_roll_overlap is KW_EPOLICY. */
int kw_lc_key_roll(kw_lc_t *lc, const char *actor, const char *key_id, int64_t overlap,
                   const kw_expiry_in_t *exp, kw_keyrec_t *new_out, kw_keyrec_t *prev_out,
                   char secret[KW_KEY_MAX + 1], kw_err_t *err);

/* Revoke now. unused_for > 0: KW_ECONFLICT if the key was used within that time. */
int kw_lc_key_invalidate(kw_lc_t *lc, const char *actor, const char *key_id, const char *reason,
                         int64_t unused_for, kw_keyrec_t *out, kw_err_t *err);

/* Create (create=1, KW_ECONFLICT if the name exists) or replace a policy. p must already
 * be valid (kw_policy_validate). Keys already issued keep their expiry. */
int kw_lc_policy_put(kw_lc_t *lc, const char *actor, const kw_policy_t *p, int create,
                     kw_err_t *err);

/* Check a policy's internal consistency: lifetimes > 0, default <= max, thresholds > 0
 * and strictly descending, overlap > 0. Returns 0 or KW_EINVAL naming the field. */
int kw_policy_validate(const kw_policy_t *p, kw_err_t *err);

/* The key as the store has it, with usage not yet flushed added in. */
int kw_lc_key_get(kw_lc_t *lc, const char *key_id, kw_keyrec_t *out, kw_err_t *err);
void kw_lc_key_merge_usage(kw_lc_t *lc, kw_keyrec_t *k);

/* ---- renewals (renewal.c; SPEC §2, §5) ----
 * A renewal moves a usable key's expiry later: extend_by gives
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

/* ---- internal to src/core: the transaction and event helpers of lifecycle.c ---- */
int kw__lc_begin(kw_lc_t *lc, kw_err_t *err);          /* locks lc->mu on success */
int kw__lc_finish(kw_lc_t *lc, int rc, kw_err_t *err); /* commit or roll back; mu held */
int kw__lc_emit(kw_lc_t *lc, const char *type, const kw_keyrec_t *k, int64_t now, json_t *extra,
                kw_err_t *err);

#endif
