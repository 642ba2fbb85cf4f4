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
#include "policy.h"
#include "store/store.h"

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

/* The key as the store has it, with usage not yet flushed added in. */
int kw_lc_key_get(kw_lc_t *lc, const char *key_id, kw_keyrec_t *out, kw_err_t *err);
void kw_lc_key_merge_usage(kw_lc_t *lc, kw_keyrec_t *k);

/* ---- every other write: one operation of the engine above ----
 * kw_lc_tx queues run as an operation of the group-commit engine, like the calls above:
 * it runs inside the batch's transaction, in a savepoint of its own (on failure only its
 * own changes are undone), and returns once committed. post (may be NULL) runs after the
 * commit, in commit order, with lc->mu held (the index, in-memory sets). This is the one
 * way code outside lifecycle writes to the store. run may run more than once: when the
 * backend loses the whole transaction it runs again, from scratch, in a new one; so it
 * resets its outputs first and builds what it consumes (audit details) inside. run and
 * post must not call into lifecycle (they run in the leader with lc->mu held). */
typedef int (*kw_lc_tx_fn)(kw_store_t *st, void *ud, kw_err_t *err);
int kw_lc_tx(kw_lc_t *lc, kw_lc_tx_fn run, kw_lc_tx_fn post, void *ud, kw_err_t *err);

/* ---- internal to src/core: the operation type of the engine (renewal.c) ---- */
typedef struct kw__lc_op kw__lc_op_t;
struct kw__lc_op {
    int (*run)(kw_lc_t *lc, kw__lc_op_t *op);  /* errors into op->err; the store undoes them */
    int (*post)(kw_lc_t *lc, kw__lc_op_t *op); /* NULL = nothing to do after the commit */
    kw_err_t *err;                             /* the caller's (may be NULL) */
    int rc;
    int state; /* under lc->qmu */
    pthread_cond_t cv;
    kw__lc_op_t *next;
};
/* Queue op and return once it is committed (and post has run) or has failed: op->rc. */
int kw__lc_submit(kw_lc_t *lc, kw__lc_op_t *op);

#endif
