/* lifecycle.c - the rules of credentials and key slots, on top of the store interface.
 *
 * Every mutation is an op (see "group commit"): inside a transaction shared with the ops
 * queued beside it, in a savepoint of its own, it reads and checks, writes the change, its
 * outbox event and audit record; after the one commit the index is updated, in commit
 * order. Must not: let a secret reach an event, an error message or the store (only
 * digests and hints go there). */
#include "lifecycle.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "duration.h"
#include "events.h"
#include "jdump.h"
#include "key.h"
#include "util.h"

int kw_lc_init(kw_lc_t *lc, kw_store_t *store, kw_index_t *index)
{
    memset(lc, 0, sizeof(*lc));
    lc->store = store;
    lc->index = index;
    kw_store_defer_writes(store, 1); /* run_batch syncs every op before its savepoint_end */
    if (pthread_mutex_init(&lc->mu, NULL))
        return KW_EINTERNAL;
    if (pthread_mutex_init(&lc->qmu, NULL)) {
        pthread_mutex_destroy(&lc->mu);
        return KW_EINTERNAL;
    }
    return 0;
}

void kw_lc_destroy(kw_lc_t *lc)
{
    pthread_mutex_destroy(&lc->qmu);
    pthread_mutex_destroy(&lc->mu);
}

/* ---- index loading ---- */

#define LOAD_BATCH 32 /* keys handed to the index together (kw_index_put_keys) */

typedef struct load_ctx {
    kw_lc_t *lc;
    kw_policy_t *policies;
    size_t npolicies;
    size_t keys;
    size_t nbatch;
    kw_keyrec_t batch[LOAD_BATCH];
} load_ctx_t;

/* The keys batched so far into the index; a key without its credential row (cannot happen
 * with foreign keys on) is skipped. */
static int load_flush(load_ctx_t *lx)
{
    size_t added = 0;
    int rc = kw_index_put_keys(lx->lc->index, lx->batch, lx->nbatch, &added);
    lx->keys += added;
    lx->nbatch = 0;
    return rc;
}

/* One credential (c) or one key (keys[0..nkeys), c NULL): see kw_store_load_index. Keys
 * wait in lx->batch: their credentials come first, so a credential flushes them first. */
static int load_one(void *ud, const kw_cred_t *c, const kw_keyrec_t *keys, size_t nkeys)
{
    load_ctx_t *lx = ud;
    int rc = 0;
    if (c) {
        const kw_policy_t *p = kw_policy_find(lx->policies, lx->npolicies, c->policy);
        int64_t ww = p ? kw_policy_warn_window(p) : 30LL * 86400;
        rc = lx->nbatch ? load_flush(lx) : 0;
        if (rc == 0)
            rc = kw_index_put_cred(lx->lc->index, c, ww);
    }
    for (size_t i = 0; rc == 0 && i < nkeys; i++) {
        lx->batch[lx->nbatch++] = keys[i];
        if (lx->nbatch == LOAD_BATCH)
            rc = load_flush(lx);
    }
    return rc;
}

static int load_index(kw_lc_t *lc, load_ctx_t *lx, int64_t retain_since, kw_err_t *err)
{
    *lx = (load_ctx_t){.lc = lc};
    int rc = kw_store_policy_list(lc->store, &lx->policies, &lx->npolicies, err);
    if (rc)
        return rc;
    for (size_t i = 0; rc == 0 && i < lx->npolicies; i++) /* SPEC §13 token lifetimes */
        rc = kw_index_put_token_lifetime(lc->index, lx->policies[i].name,
                                         lx->policies[i].token_lifetime);
    if (rc) {
        free(lx->policies);
        return kw_err_set(err, rc, NULL, "out of memory");
    }
    int64_t ncreds = 0, nkeys = 0;
    /* size the index once (a failure here only means it grows by doubling) */
    if (kw_store_counts(lc->store, &ncreds, &nkeys, NULL) == 0)
        (void)kw_index_reserve(lc->index, (size_t)nkeys, (size_t)ncreds);
    rc = kw_store_load_index(lc->store, retain_since, load_one, lx, err);
    if (rc == 0 && lx->nbatch)
        rc = load_flush(lx);
    if (rc && err && err->msg[0] == '\0')
        kw_err_set(err, rc, NULL, "loading the verification index failed");
    free(lx->policies);
    return rc;
}

int kw_lc_load_index(kw_lc_t *lc, int64_t retain_since, kw_err_t *err)
{
    load_ctx_t *lx = malloc(sizeof(*lx)); /* LOAD_BATCH keys: off the stack */
    if (lx == NULL)
        return kw_err_set(err, KW_ENOMEM, NULL, "out of memory");
    int rc = load_index(lc, lx, retain_since, err);
    free(lx);
    /* the load's transient allocations (SQLite's, the table arrays outgrown) go back to
     * the system instead of staying in the heap for the life of the process */
    malloc_trim(0);
    return rc;
}

/* ---- helpers ---- */

/* Build a key record with a fresh secret. */
static int make_key(const char *cred_id, const char *prefix, int slot, int64_t now,
                    int64_t expires_at, kw_keyrec_t *k, char secret[KW_KEY_MAX + 1], kw_err_t *err)
{
    memset(k, 0, sizeof(*k));
    if (kw_id_new_ordered("key", k->id) || kw_key_generate(prefix, secret))
        return kw_err_set(err, KW_EINTERNAL, NULL, "could not read the system random source");
    size_t len = strlen(secret);
    if (kw_key_digest(secret, len, k->digest))
        return kw_err_set(err, KW_EINTERNAL, NULL, "digest failed");
    kw_key_hint(secret, len, k->hint);
    snprintf(k->cred_id, sizeof(k->cred_id), "%s", cred_id);
    k->slot = slot;
    k->live = 1;
    k->created_at = now;
    k->expires_at = expires_at;
    return 0;
}

/* Update the index after a commit. Failure here (out of memory) leaves the index stale for
 * this key until restart, so it is reported loudly by the caller's log. */
static int index_cred_and_keys(kw_lc_t *lc, const kw_cred_t *c, const kw_policy_t *p,
                               const kw_keyrec_t *keys, size_t n)
{
    int rc = kw_index_put_cred(lc->index, c, kw_policy_warn_window(p));
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = kw_index_put_key(lc->index, &keys[i]);
    return rc;
}

/* ---- group commit ----
 * Each mutation is an op: run (inside the batch's transaction, between a savepoint and its
 * release) and post (after the commit, lc->mu held: the index). A caller queues its op;
 * the caller that finds nobody leading leads: it takes lc->mu and every queued op (up to
 * LC_BATCH_MAX), runs them in one transaction, commits once (one fsync for all of them),
 * updates the index in commit order, wakes the others and hands the lead to the first op
 * queued meanwhile. A failing op is rolled back to its savepoint alone. If the backend
 * aborts the whole transaction, the op that was running fails and the ops before it run
 * again, from scratch, in a new transaction: every run resets its outputs first. */

enum { OP_QUEUED, OP_LEAD, OP_DONE };
#define LC_BATCH_MAX 64

typedef kw__lc_op_t op_t;

static void op_fail(op_t *op, int rc, const kw_err_t *e)
{
    op->rc = rc;
    if (op->err)
        *op->err = *e;
}

/* Run ops[0..n) to completion (op->rc set for each). lc->mu held. */
static void run_batch(kw_lc_t *lc, op_t **ops, size_t n)
{
    unsigned char fin[LC_BATCH_MAX] = {0};
    for (;;) {
        kw_err_t e = {0};
        size_t lost = n;
        int rc = kw_store_begin(lc->store, &e);
        if (rc) {
            for (size_t i = 0; i < n; i++)
                if (!fin[i])
                    op_fail(ops[i], rc, &e);
            return;
        }
        for (size_t i = 0; i < n && lost == n; i++) {
            if (fin[i])
                continue;
            if (kw_store_savepoint(lc->store, &e) != 0) {
                lost = i;
                break;
            }
            int orc = ops[i]->run(lc, ops[i]);
            kw_err_t se = {0};
            /* the op's deferred writes (kw_store_defer_writes) answer here; a refused one is
             * the op's root cause even when a later read of the op failed on it first */
            int src = kw_store_sync(lc->store, &se);
            if (src != 0) {
                orc = src;
                if (ops[i]->err)
                    *ops[i]->err = se;
            }
            if (kw_store_savepoint_end(lc->store, orc == 0, &e) != 0) {
                lost = i;
                /* the op's own error says more than "transaction aborted" */
                if (orc != 0) {
                    ops[i]->rc = orc;
                    fin[i] = 1;
                }
            } else if (orc != 0) {
                ops[i]->rc = orc;
                fin[i] = 1;
            }
        }
        if (lost < n) {
            /* Whole transaction gone: ops[lost] fails, the others run again. */
            kw_store_rollback(lc->store);
            if (!fin[lost])
                op_fail(ops[lost], KW_ESTORE, &e);
            fin[lost] = 1;
            continue;
        }
        rc = kw_store_commit(lc->store, &e);
        for (size_t i = 0; i < n; i++) {
            if (fin[i])
                continue;
            if (rc)
                op_fail(ops[i], rc, &e);
            else
                ops[i]->rc = ops[i]->post ? ops[i]->post(lc, ops[i]) : 0;
        }
        return;
    }
}

/* Lead one batch: the queue's head is the leader's own op (it became leader either with
 * an empty queue or by hand-over to the head), so one batch finishes it. */
static void lead(kw_lc_t *lc, op_t *self)
{
    op_t *ops[LC_BATCH_MAX];
    size_t n = 0;
    pthread_mutex_lock(&lc->mu);
    pthread_mutex_lock(&lc->qmu);
    while (lc->qhead && n < LC_BATCH_MAX) {
        ops[n++] = lc->qhead;
        lc->qhead = lc->qhead->next;
    }
    if (lc->qhead == NULL)
        lc->qtail = NULL;
    lc->queued -= n;
    pthread_mutex_unlock(&lc->qmu);
    run_batch(lc, ops, n);
    lc->batches++;
    lc->batched_ops += n;
    lc->last_batch = n;
    pthread_mutex_unlock(&lc->mu);

    pthread_mutex_lock(&lc->qmu);
    for (size_t i = 0; i < n; i++) {
        ops[i]->state = OP_DONE;
        if (ops[i] != self)
            pthread_cond_signal(&ops[i]->cv); /* under qmu: it cannot return before */
    }
    if (lc->qhead) {
        lc->qhead->state = OP_LEAD;
        pthread_cond_signal(&lc->qhead->cv);
    } else {
        lc->leading = 0;
    }
    pthread_mutex_unlock(&lc->qmu);
}

int kw__lc_submit(kw_lc_t *lc, op_t *op)
{
    op->rc = 0;
    op->next = NULL;
    op->state = OP_QUEUED;
    pthread_cond_init(&op->cv, NULL);
    pthread_mutex_lock(&lc->qmu);
    if (lc->qtail)
        lc->qtail->next = op;
    else
        lc->qhead = op;
    lc->qtail = op;
    lc->queued++;
    if (!lc->leading) {
        lc->leading = 1;
        op->state = OP_LEAD;
    }
    for (;;) {
        while (op->state == OP_QUEUED)
            pthread_cond_wait(&op->cv, &lc->qmu);
        if (op->state == OP_DONE)
            break;
        pthread_mutex_unlock(&lc->qmu);
        lead(lc, op);
        pthread_mutex_lock(&lc->qmu);
    }
    pthread_mutex_unlock(&lc->qmu);
    pthread_cond_destroy(&op->cv);
    return op->rc;
}

size_t kw_lc_queued(kw_lc_t *lc)
{
    pthread_mutex_lock(&lc->qmu);
    size_t n = lc->queued;
    pthread_mutex_unlock(&lc->qmu);
    return n;
}

/* Find the slot for a new key among keys (newest first). Vacates an expired occupant
 * (marks it not live, in the store). Returns the slot, or a KW_E* code. prefer: a slot to
 * try first (0 = slot 1 first); only: if non-zero, the only acceptable slot. */
static int pick_slot(kw_lc_t *lc, kw_keyrec_t *keys, size_t n, int64_t now, int only,
                     kw_keyrec_t **vacated, kw_err_t *err)
{
    kw_keyrec_t *occ[3] = {NULL, NULL, NULL};
    *vacated = NULL;
    for (size_t i = 0; i < n; i++)
        if (keys[i].live && keys[i].slot >= 1 && keys[i].slot <= 2 && !occ[keys[i].slot])
            occ[keys[i].slot] = &keys[i];
    for (int s = 1; s <= 2; s++) {
        if (only && s != only)
            continue;
        if (occ[s] == NULL)
            return s;
        if (kw_keyrec_state(occ[s], now) != KW_KEY_ACTIVE) {
            occ[s]->live = 0;
            int rc = kw_store_key_update(lc->store, occ[s], err);
            if (rc)
                return rc;
            *vacated = occ[s];
            return s;
        }
    }
    if (only)
        return kw_err_set(err, KW_ECONFLICT, NULL,
                          "slot %d already holds a usable key (%s); invalidate it first", only,
                          occ[only]->id);
    return kw_err_set(err, KW_ECONFLICT, NULL,
                      "credential already has two usable keys (up to two valid keys at a "
                      "time); invalidate one first");
}

/* ---- credentials ---- */

static int apply_cred_in(kw_cred_t *c, const kw_cred_in_t *in, kw_err_t *err)
{
#define SET_STR(field, val)                                                                        \
    do {                                                                                           \
        char *dup_ = (val) ? strdup(val) : NULL;                                                   \
        if ((val) && dup_ == NULL)                                                                 \
            return kw_err_set(err, KW_ENOMEM, NULL, "out of memory");                              \
        free(c->field);                                                                            \
        c->field = dup_;                                                                           \
    } while (0)
    if (in->name)
        SET_STR(name, in->name);
    if (in->has_owner)
        SET_STR(owner, in->owner);
    if (in->scopes_json)
        SET_STR(scopes_json, in->scopes_json);
    if (in->cidrs_json)
        SET_STR(cidrs_json, in->cidrs_json);
    if (in->metadata_json)
        SET_STR(metadata_json, in->metadata_json);
    if (in->contacts_json)
        SET_STR(contacts_json, in->contacts_json);
    if (in->has_disabled)
        c->disabled = in->disabled ? 1 : 0;
#undef SET_STR
    return 0;
}

typedef struct create_op {
    op_t op;
    const char *actor;
    const kw_cred_in_t *in;
    const kw_expiry_in_t *exp;
    const char *prefix;
    char *secret;
    kw_cred_t c;
    kw_keyrec_t k;
    kw_policy_t p;
} create_op_t;

static int create_run(kw_lc_t *lc, op_t *op)
{
    create_op_t *a = (create_op_t *)op;
    kw_err_t *err = op->err;
    kw_cred_t *c = &a->c;
    int64_t now = kw_now(), expires_at;
    int rc;
    kw_cred_clear(c);
    const char *pname = a->in->policy ? a->in->policy : "default";
    if ((rc = kw_store_policy_get(lc->store, pname, &a->p, err)) != 0) {
        if (rc == KW_ENOTFOUND)
            rc = kw_err_set(err, KW_EINVAL, "policy", "unknown policy '%s'", pname);
        return rc;
    }
    if ((rc = kw_policy_expiry(&a->p, a->exp, now, &expires_at, err)) != 0)
        return rc;
    if (kw_id_new_ordered("cred", c->id))
        return kw_err_set(err, KW_EINTERNAL, NULL, "could not read the system random source");
    c->scopes_json = strdup("[]");
    c->cidrs_json = strdup("[]");
    c->metadata_json = strdup("{}");
    c->contacts_json = strdup("[]");
    if (!c->scopes_json || !c->cidrs_json || !c->metadata_json || !c->contacts_json)
        return kw_err_set(err, KW_ENOMEM, NULL, "out of memory");
    if ((rc = apply_cred_in(c, a->in, err)) != 0)
        return rc;
    snprintf(c->policy, sizeof(c->policy), "%s", a->p.name);
    snprintf(c->prefix, sizeof(c->prefix), "%s", a->prefix);
    c->created_at = c->updated_at = now;
    if ((rc = kw_store_cred_insert(lc->store, c, err)) != 0)
        return rc;
    if ((rc = make_key(c->id, c->prefix, 1, now, expires_at, &a->k, a->secret, err)) != 0)
        return rc;
    if ((rc = kw_store_key_insert(lc->store, &a->k, err)) != 0)
        return rc;
    rc = kw_event_raise(lc->store, "key.created", &a->k, now,
                        json_pack("{s:o, s:s}", "expires_at", kw_json_time(expires_at),
                                  "credential_name", c->name ? c->name : ""),
                        NULL, err);
    if (rc == 0)
        rc = kw_audit_append(lc->store, a->actor, "credential.create", c->id, "ok",
                             json_pack("{s:s, s:s, s:s, s:s, s:i, s:o}", "name", c->name, "policy",
                                       c->policy, "key_id", a->k.id, "hint", a->k.hint, "slot",
                                       a->k.slot, "expires_at", kw_json_time(expires_at)),
                             now, err);
    return rc;
}

static int create_post(kw_lc_t *lc, op_t *op)
{
    create_op_t *a = (create_op_t *)op;
    if (index_cred_and_keys(lc, &a->c, &a->p, &a->k, 1) != 0)
        return kw_err_set(op->err, KW_ENOMEM, NULL, "created, but the index update failed");
    return 0;
}

int kw_lc_cred_create(kw_lc_t *lc, const char *actor, const kw_cred_in_t *in,
                      const kw_expiry_in_t *exp, kw_cred_t *cred_out, kw_keyrec_t *key_out,
                      char secret[KW_KEY_MAX + 1], kw_err_t *err)
{
    const char *prefix = in->prefix ? in->prefix : KW_DEFAULT_PREFIX;
    if (in->name == NULL)
        return kw_err_set(err, KW_EINVAL, "name", "name is required");
    if (!kw_key_prefix_valid(prefix, strlen(prefix)))
        return kw_err_set(err, KW_EINVAL, "prefix", "prefix must match [a-z][a-z0-9]{0,15}");
    create_op_t a = {.op = {.run = create_run, .post = create_post, .err = err},
                     .actor = actor,
                     .in = in,
                     .exp = exp,
                     .prefix = prefix,
                     .secret = secret};
    int rc = kw__lc_submit(lc, &a.op);
    if (rc == 0) {
        *cred_out = a.c;
        *key_out = a.k;
    } else {
        kw_wipe(secret, KW_KEY_MAX + 1);
        kw_cred_clear(&a.c);
    }
    return rc;
}

/* The names of the fields a request sets, for the audit record (values may be long or
 * personal; the record says what changed, the credential says to what). */
static json_t *cred_fields(const kw_cred_in_t *in)
{
    json_t *a = json_array();
    const struct {
        int set;
        const char *name;
    } f[] = {{in->name != NULL, "name"},
             {in->has_owner, "owner"},
             {in->scopes_json != NULL, "scopes"},
             {in->cidrs_json != NULL, "allowed_cidrs"},
             {in->metadata_json != NULL, "metadata"},
             {in->contacts_json != NULL, "contacts"},
             {in->policy != NULL, "policy"},
             {in->has_disabled, "disabled"}};
    for (size_t i = 0; a && i < sizeof(f) / sizeof(f[0]); i++)
        if (f[i].set)
            json_array_append_new(a, json_string(f[i].name));
    return a;
}

typedef struct update_op {
    op_t op;
    const char *actor, *id;
    const kw_cred_in_t *in;
    kw_cred_t c;
    kw_policy_t p;
} update_op_t;

static int update_run(kw_lc_t *lc, op_t *op)
{
    update_op_t *a = (update_op_t *)op;
    const kw_cred_in_t *in = a->in;
    kw_err_t *err = op->err;
    kw_cred_t *c = &a->c;
    int rc;
    kw_cred_clear(c);
    if ((rc = kw_store_cred_get(lc->store, a->id, c, err)) != 0)
        return rc;
    if (in->prefix && strcmp(in->prefix, c->prefix) != 0)
        return kw_err_set(err, KW_EINVAL, "prefix", "prefix cannot be changed after creation");
    if (in->policy)
        snprintf(c->policy, sizeof(c->policy), "%s", in->policy);
    if ((rc = kw_store_policy_get(lc->store, c->policy, &a->p, err)) != 0) {
        if (rc == KW_ENOTFOUND)
            rc = kw_err_set(err, KW_EINVAL, "policy", "unknown policy '%s'", c->policy);
        return rc;
    }
    if ((rc = apply_cred_in(c, in, err)) != 0)
        return rc;
    c->updated_at = kw_now();
    if ((rc = kw_store_cred_update(lc->store, c, err)) != 0)
        return rc;
    json_t *d = json_pack("{s:o}", "fields", cred_fields(in));
    if (d && in->has_disabled)
        json_object_set_new(d, "disabled", json_boolean(c->disabled));
    if (d && in->scopes_json) /* scopes carry the admin roles: worth seeing in full */
        json_object_set_new(d, "scopes", json_loads(c->scopes_json, 0, NULL));
    return kw_audit_append(lc->store, a->actor, "credential.update", c->id, "ok", d, c->updated_at,
                           err);
}

static int update_post(kw_lc_t *lc, op_t *op)
{
    update_op_t *a = (update_op_t *)op;
    if (kw_index_put_cred(lc->index, &a->c, kw_policy_warn_window(&a->p)) != 0)
        return kw_err_set(op->err, KW_ENOMEM, NULL, "updated, but the index update failed");
    return 0;
}

int kw_lc_cred_update(kw_lc_t *lc, const char *actor, const char *id, const kw_cred_in_t *in,
                      kw_err_t *err)
{
    update_op_t a = {.op = {.run = update_run, .post = update_post, .err = err},
                     .actor = actor,
                     .id = id,
                     .in = in};
    int rc = kw__lc_submit(lc, &a.op);
    kw_cred_clear(&a.c);
    return rc;
}

typedef struct delete_op {
    op_t op;
    const char *actor, *id;
    kw_cred_t c;
    kw_policy_t p;
    kw_keyrec_t *keys;
    size_t n;
} delete_op_t;

static int delete_run(kw_lc_t *lc, op_t *op)
{
    delete_op_t *a = (delete_op_t *)op;
    kw_err_t *err = op->err;
    kw_cred_t *c = &a->c;
    int64_t now = kw_now();
    int rc;
    kw_cred_clear(c);
    free(a->keys);
    a->keys = NULL;
    a->n = 0;
    if ((rc = kw_store_cred_get(lc->store, a->id, c, err)) != 0)
        return rc;
    if ((rc = kw_store_policy_get(lc->store, c->policy, &a->p, err)) != 0)
        return rc;
    if ((rc = kw_store_key_list_cred(lc->store, a->id, &a->keys, &a->n, err)) != 0)
        return rc;
    kw_keyrec_t *keys = a->keys;
    for (size_t i = 0; i < a->n; i++) {
        if (keys[i].revoked_at)
            continue;
        keys[i].revoked_at = now;
        keys[i].live = 0;
        snprintf(keys[i].revoke_reason, sizeof(keys[i].revoke_reason), "credential deleted");
        if ((rc = kw_store_key_update(lc->store, &keys[i], err)) != 0)
            return rc;
        rc = kw_event_raise(lc->store, "key.invalidated", &keys[i], now,
                            json_pack("{s:s}", "reason", "credential deleted"), NULL, err);
        if (rc)
            return rc;
    }
    c->deleted_at = now;
    c->updated_at = now;
    if ((rc = kw_store_cred_update(lc->store, c, err)) != 0)
        return rc;
    json_t *ids = json_array();
    for (size_t i = 0; ids && i < a->n; i++)
        if (keys[i].revoked_at == now)
            json_array_append_new(ids, json_string(keys[i].id));
    return kw_audit_append(lc->store, a->actor, "credential.delete", c->id, "ok",
                           json_pack("{s:s, s:o}", "name", c->name, "revoked_keys", ids), now, err);
}

static int delete_post(kw_lc_t *lc, op_t *op)
{
    delete_op_t *a = (delete_op_t *)op;
    if (index_cred_and_keys(lc, &a->c, &a->p, a->keys, a->n) != 0)
        return kw_err_set(op->err, KW_ENOMEM, NULL, "deleted, but the index update failed");
    return 0;
}

int kw_lc_cred_delete(kw_lc_t *lc, const char *actor, const char *id, kw_err_t *err)
{
    delete_op_t a = {
        .op = {.run = delete_run, .post = delete_post, .err = err}, .actor = actor, .id = id};
    int rc = kw__lc_submit(lc, &a.op);
    kw_cred_clear(&a.c);
    free(a.keys);
    return rc;
}

/* ---- keys ---- */

/* key_new and key_roll: the credential and its keys as read in the transaction. */
typedef struct newkey_op {
    op_t op;
    const char *actor, *id; /* credential id (new) or the key to roll */
    const kw_expiry_in_t *exp;
    int64_t overlap; /* roll only */
    char *secret;
    kw_cred_t c;
    kw_policy_t p;
    kw_keyrec_t *keys, *vacated, k, old;
    size_t n;
} newkey_op_t;

static void newkey_reset(newkey_op_t *a)
{
    kw_cred_clear(&a->c);
    free(a->keys);
    a->keys = a->vacated = NULL;
    a->n = 0;
}

static int key_new_run(kw_lc_t *lc, op_t *op)
{
    newkey_op_t *a = (newkey_op_t *)op;
    kw_err_t *err = op->err;
    int64_t now = kw_now(), expires_at;
    int rc, slot;
    newkey_reset(a);
    if ((rc = kw_store_cred_get(lc->store, a->id, &a->c, err)) != 0)
        return rc;
    if ((rc = kw_store_policy_get(lc->store, a->c.policy, &a->p, err)) != 0)
        return rc;
    if ((rc = kw_policy_expiry(&a->p, a->exp, now, &expires_at, err)) != 0)
        return rc;
    if ((rc = kw_store_key_list_cred(lc->store, a->id, &a->keys, &a->n, err)) != 0)
        return rc;
    if ((slot = pick_slot(lc, a->keys, a->n, now, 0, &a->vacated, err)) < 0)
        return slot;
    kw_keyrec_t *k = &a->k;
    if ((rc = make_key(a->c.id, a->c.prefix, slot, now, expires_at, k, a->secret, err)) != 0)
        return rc;
    if ((rc = kw_store_key_insert(lc->store, k, err)) != 0)
        return rc;
    rc = kw_event_raise(lc->store, "key.created", k, now,
                        json_pack("{s:o, s:s}", "expires_at", kw_json_time(expires_at),
                                  "credential_name", a->c.name ? a->c.name : ""),
                        NULL, err);
    if (rc == 0)
        rc = kw_audit_append(lc->store, a->actor, "key.create", k->id, "ok",
                             json_pack("{s:s, s:i, s:s, s:o}", "credential_id", a->c.id, "slot",
                                       k->slot, "hint", k->hint, "expires_at",
                                       kw_json_time(expires_at)),
                             now, err);
    return rc;
}

static int key_new_post(kw_lc_t *lc, op_t *op)
{
    newkey_op_t *a = (newkey_op_t *)op;
    if (kw_index_put_key(lc->index, &a->k) != 0 ||
        (a->vacated && kw_index_put_key(lc->index, a->vacated) != 0))
        return kw_err_set(op->err, KW_ENOMEM, NULL, "created, but the index update failed");
    return 0;
}

int kw_lc_key_new(kw_lc_t *lc, const char *actor, const char *cred_id, const kw_expiry_in_t *exp,
                  kw_keyrec_t *out, char secret[KW_KEY_MAX + 1], kw_err_t *err)
{
    newkey_op_t a = {.op = {.run = key_new_run, .post = key_new_post, .err = err},
                     .actor = actor,
                     .id = cred_id,
                     .exp = exp,
                     .secret = secret};
    int rc = kw__lc_submit(lc, &a.op);
    if (rc == 0)
        *out = a.k;
    else
        kw_wipe(secret, KW_KEY_MAX + 1);
    newkey_reset(&a);
    return rc;
}

static int key_roll_run(kw_lc_t *lc, op_t *op)
{
    newkey_op_t *a = (newkey_op_t *)op;
    kw_err_t *err = op->err;
    kw_keyrec_t *old = &a->old, *k = &a->k;
    int64_t now = kw_now(), expires_at, overlap = a->overlap;
    int rc, slot;
    newkey_reset(a);
    if ((rc = kw_store_key_get(lc->store, a->id, old, err)) != 0)
        return rc;
    kw_key_state_t st = kw_keyrec_state(old, now);
    if (st != KW_KEY_ACTIVE)
        return kw_err_set(err, KW_ECONFLICT, NULL, "key %s is %s and cannot be rolled", old->id,
                          kw_key_state_name(st));
    if ((rc = kw_store_cred_get(lc->store, old->cred_id, &a->c, err)) != 0)
        return rc;
    kw_policy_t *p = &a->p;
    if ((rc = kw_store_policy_get(lc->store, a->c.policy, p, err)) != 0)
        return rc;
    if ((rc = kw_policy_roll_overlap(p, overlap, &overlap, err)) != 0)
        return rc;
    if ((rc = kw_policy_expiry(p, a->exp, now, &expires_at, err)) != 0)
        return rc;
    if ((rc = kw_store_key_list_cred(lc->store, a->c.id, &a->keys, &a->n, err)) != 0)
        return rc;
    if ((slot = pick_slot(lc, a->keys, a->n, now, old->slot == 1 ? 2 : 1, &a->vacated, err)) < 0)
        return slot;
    if (old->expires_at == 0 || old->expires_at > now + overlap)
        old->expires_at = now + overlap;
    if ((rc = kw_store_key_update(lc->store, old, err)) != 0)
        return rc;
    if ((rc = make_key(a->c.id, a->c.prefix, slot, now, expires_at, k, a->secret, err)) != 0)
        return rc;
    if ((rc = kw_store_key_insert(lc->store, k, err)) != 0)
        return rc;
    rc = kw_event_raise(lc->store, "key.rolled", k, now,
                        json_pack("{s:o, s:s, s:s, s:o}", "expires_at", kw_json_time(expires_at),
                                  "previous_key_id", old->id, "previous_hint", old->hint,
                                  "previous_expires_at", kw_json_time(old->expires_at)),
                        NULL, err);
    if (rc == 0)
        rc = kw_audit_append(lc->store, a->actor, "key.roll", old->id, "ok",
                             json_pack("{s:s, s:s, s:s, s:i, s:o, s:o, s:I}", "credential_id",
                                       a->c.id, "new_key_id", k->id, "new_hint", k->hint, "slot",
                                       k->slot, "expires_at", kw_json_time(expires_at),
                                       "previous_expires_at", kw_json_time(old->expires_at),
                                       "overlap_s", (json_int_t)overlap),
                             now, err);
    return rc;
}

static int key_roll_post(kw_lc_t *lc, op_t *op)
{
    newkey_op_t *a = (newkey_op_t *)op;
    if (kw_index_put_key(lc->index, &a->k) != 0 || kw_index_put_key(lc->index, &a->old) != 0 ||
        (a->vacated && kw_index_put_key(lc->index, a->vacated) != 0))
        return kw_err_set(op->err, KW_ENOMEM, NULL, "rolled, but the index update failed");
    return 0;
}

int kw_lc_key_roll(kw_lc_t *lc, const char *actor, const char *key_id, int64_t overlap,
                   const kw_expiry_in_t *exp, kw_keyrec_t *new_out, kw_keyrec_t *prev_out,
                   char secret[KW_KEY_MAX + 1], kw_err_t *err)
{
    newkey_op_t a = {.op = {.run = key_roll_run, .post = key_roll_post, .err = err},
                     .actor = actor,
                     .id = key_id,
                     .exp = exp,
                     .overlap = overlap,
                     .secret = secret};
    int rc = kw__lc_submit(lc, &a.op);
    if (rc == 0) {
        *new_out = a.k;
        *prev_out = a.old;
    } else {
        kw_wipe(secret, KW_KEY_MAX + 1);
    }
    newkey_reset(&a);
    return rc;
}

void kw_lc_key_merge_usage(kw_lc_t *lc, kw_keyrec_t *k)
{
    int64_t pending, last;
    kw_index_pending_usage(lc->index, k->digest, &pending, &last);
    k->use_count += pending;
    if (last > k->last_used_at)
        k->last_used_at = last;
}

int kw_lc_key_get(kw_lc_t *lc, const char *key_id, kw_keyrec_t *out, kw_err_t *err)
{
    int rc = kw_store_key_get(lc->store, key_id, out, err);
    if (rc == 0)
        kw_lc_key_merge_usage(lc, out);
    return rc;
}

typedef struct invalidate_op {
    op_t op;
    const char *actor, *id, *reason;
    int64_t unused_for;
    kw_keyrec_t k;
} invalidate_op_t;

static int invalidate_run(kw_lc_t *lc, op_t *op)
{
    invalidate_op_t *a = (invalidate_op_t *)op;
    kw_err_t *err = op->err;
    kw_keyrec_t *k = &a->k;
    int64_t now = kw_now();
    int rc;
    char d[KW_DURATION_STR_MAX], ts[KW_TIME_STR_MAX];
    if ((rc = kw_store_key_get(lc->store, a->id, k, err)) != 0)
        return rc;
    if (k->revoked_at)
        return kw_err_set(err, KW_ECONFLICT, NULL, "key %s is already invalidated", k->id);
    kw_lc_key_merge_usage(lc, k);
    if (a->unused_for > 0 && k->last_used_at && k->last_used_at > now - a->unused_for) {
        kw_duration_format(a->unused_for, d);
        kw_time_format(k->last_used_at, ts);
        return kw_err_set(err, KW_ECONFLICT, "unused_for",
                          "key %s was used at %s, within the last %s; not invalidated", k->id, ts,
                          d);
    }
    k->revoked_at = now;
    k->live = 0;
    snprintf(k->revoke_reason, sizeof(k->revoke_reason), "%s", a->reason ? a->reason : "");
    if ((rc = kw_store_key_update(lc->store, k, err)) != 0)
        return rc;
    rc = kw_event_raise(lc->store, "key.invalidated", k, now,
                        json_pack("{s:s}", "reason", k->revoke_reason), NULL, err);
    if (rc == 0)
        rc = kw_audit_append(lc->store, a->actor, "key.invalidate", k->id, "ok",
                             json_pack("{s:s, s:s, s:s, s:I}", "credential_id", k->cred_id, "hint",
                                       k->hint, "reason", k->revoke_reason, "unused_for_s",
                                       (json_int_t)a->unused_for),
                             now, err);
    return rc;
}

static int invalidate_post(kw_lc_t *lc, op_t *op)
{
    invalidate_op_t *a = (invalidate_op_t *)op;
    if (kw_index_put_key(lc->index, &a->k) != 0)
        return kw_err_set(op->err, KW_ENOMEM, NULL, "invalidated, but the index update failed");
    return 0;
}

int kw_lc_key_invalidate(kw_lc_t *lc, const char *actor, const char *key_id, const char *reason,
                         int64_t unused_for, kw_keyrec_t *out, kw_err_t *err)
{
    invalidate_op_t a = {.op = {.run = invalidate_run, .post = invalidate_post, .err = err},
                         .actor = actor,
                         .id = key_id,
                         .reason = reason,
                         .unused_for = unused_for};
    int rc = kw__lc_submit(lc, &a.op);
    if (rc == 0)
        *out = a.k;
    return rc;
}

/* ---- every other write ---- */

typedef struct tx_op {
    op_t op;
    kw_lc_tx_fn run, post;
    void *ud;
} tx_op_t;

static int tx_run(kw_lc_t *lc, op_t *op)
{
    tx_op_t *a = (tx_op_t *)op;
    return a->run(lc->store, a->ud, op->err);
}

static int tx_post(kw_lc_t *lc, op_t *op)
{
    tx_op_t *a = (tx_op_t *)op;
    return a->post(lc->store, a->ud, op->err);
}

int kw_lc_tx(kw_lc_t *lc, kw_lc_tx_fn run, kw_lc_tx_fn post, void *ud, kw_err_t *err)
{
    tx_op_t a = {.op = {.run = tx_run, .post = post ? tx_post : NULL, .err = err},
                 .run = run,
                 .post = post,
                 .ud = ud};
    return kw__lc_submit(lc, &a.op);
}
