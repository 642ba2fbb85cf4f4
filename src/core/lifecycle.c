/* lifecycle.c - the rules of credentials and key slots, on top of the store interface.
 *
 * Every mutation: take lc->mu, begin a store transaction, read and check, write the change
 * and its outbox event, commit, then update the index. Must not: let a secret reach an
 * event, an error message or the store (only digests and hints go there). */
#include "lifecycle.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit.h"
#include "duration.h"
#include "key.h"
#include "util.h"

#define DEFAULT_ROLL_OVERLAP (24LL * 3600)

int kw_lc_init(kw_lc_t *lc, kw_store_t *store, kw_index_t *index)
{
    lc->store = store;
    lc->index = index;
    return pthread_mutex_init(&lc->mu, NULL) ? KW_EINTERNAL : 0;
}

void kw_lc_destroy(kw_lc_t *lc)
{
    pthread_mutex_destroy(&lc->mu);
}

static int64_t warn_window(const kw_policy_t *p)
{
    return p->nthresholds ? p->thresholds[0] : 0;
}

/* ---- index loading ---- */

typedef struct load_ctx {
    kw_lc_t *lc;
    kw_policy_t *policies;
    size_t npolicies;
    size_t keys;
} load_ctx_t;

/* One credential (c) or one key (keys[0..nkeys), c NULL): see kw_store_load_all. */
static int load_one(void *ud, const kw_cred_t *c, const kw_keyrec_t *keys, size_t nkeys)
{
    load_ctx_t *lx = ud;
    int rc = 0;
    if (c) {
        int64_t ww = 30LL * 86400;
        for (size_t i = 0; i < lx->npolicies; i++)
            if (strcmp(lx->policies[i].name, c->policy) == 0)
                ww = warn_window(&lx->policies[i]);
        rc = kw_index_put_cred(lx->lc->index, c, ww);
    }
    for (size_t i = 0; rc == 0 && i < nkeys; i++) {
        rc = kw_index_put_key(lx->lc->index, &keys[i]);
        if (rc == KW_ENOTFOUND) /* no credential row (cannot happen with foreign keys on) */
            rc = 0;
        else if (rc == 0)
            lx->keys++;
    }
    return rc;
}

int kw_lc_load_index(kw_lc_t *lc, int64_t retain_since, kw_err_t *err)
{
    load_ctx_t lx = {.lc = lc};
    int rc = kw_store_policy_list(lc->store, &lx.policies, &lx.npolicies, err);
    if (rc)
        return rc;
    rc = kw_store_load_all(lc->store, retain_since, load_one, &lx, err);
    if (rc && err && err->msg[0] == '\0')
        kw_err_set(err, rc, NULL, "loading the verification index failed");
    free(lx.policies);
    /* the load's transient allocations (SQLite's, the table arrays outgrown) go back to
     * the system instead of staying in the heap for the life of the process */
    malloc_trim(0);
    return rc;
}

/* ---- helpers ---- */

static int compute_expiry(const kw_policy_t *p, const kw_expiry_in_t *exp, int64_t now,
                          int64_t *out, kw_err_t *err)
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

/* Build a key record with a fresh secret. */
static int make_key(const char *cred_id, const char *prefix, int slot, int64_t now,
                    int64_t expires_at, kw_keyrec_t *k, char secret[KW_KEY_MAX + 1], kw_err_t *err)
{
    memset(k, 0, sizeof(*k));
    if (kw_id_new("key", k->id) || kw_key_generate(prefix, secret))
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

/* Append an event about key k to the outbox, inside the open transaction. extra (may be
 * NULL) is merged into the event object and consumed. Never carries a secret. */
static int emit(kw_lc_t *lc, const char *type, const kw_keyrec_t *k, int64_t now, json_t *extra,
                kw_err_t *err)
{
    char id[KW_ID_MAX], ts[KW_TIME_STR_MAX];
    int rc = KW_ENOMEM;
    char *text = NULL;
    json_t *ev = NULL;
    if (kw_id_new("evt", id)) {
        rc = kw_err_set(err, KW_EINTERNAL, NULL, "could not read the system random source");
        goto out;
    }
    kw_time_format(now, ts);
    ev = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:i}", "id", id, "type", type, "occurred_at", ts,
                   "credential_id", k->cred_id, "key_id", k->id, "hint", k->hint, "slot", k->slot);
    if (ev == NULL)
        goto out;
    if (extra && json_object_update(ev, extra))
        goto out;
    if ((text = json_dumps(ev, JSON_COMPACT)) == NULL)
        goto out;
    rc = kw_store_event_insert(lc->store, id, type, now, text, err);
out:
    if (rc == KW_ENOMEM)
        kw_err_set(err, KW_ENOMEM, NULL, "out of memory");
    json_decref(extra);
    json_decref(ev);
    free(text);
    return rc;
}

static json_t *time_or_null(int64_t t)
{
    char ts[KW_TIME_STR_MAX];
    if (t == 0)
        return json_null();
    kw_time_format(t, ts);
    return json_string(ts);
}

/* Update the index after a commit. Failure here (out of memory) leaves the index stale for
 * this key until restart, so it is reported loudly by the caller's log. */
static int index_cred_and_keys(kw_lc_t *lc, const kw_cred_t *c, const kw_policy_t *p,
                               const kw_keyrec_t *keys, size_t n)
{
    int rc = kw_index_put_cred(lc->index, c, warn_window(p));
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = kw_index_put_key(lc->index, &keys[i]);
    return rc;
}

static int begin(kw_lc_t *lc, kw_err_t *err)
{
    pthread_mutex_lock(&lc->mu);
    int rc = kw_store_begin(lc->store, err);
    if (rc)
        pthread_mutex_unlock(&lc->mu);
    return rc;
}

static int finish(kw_lc_t *lc, int rc, kw_err_t *err)
{
    if (rc == 0)
        rc = kw_store_commit(lc->store, err);
    else
        kw_store_rollback(lc->store);
    return rc; /* lc->mu still held: callers update the index, then unlock */
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

int kw_lc_cred_create(kw_lc_t *lc, const char *actor, const kw_cred_in_t *in,
                      const kw_expiry_in_t *exp, kw_cred_t *cred_out, kw_keyrec_t *key_out,
                      char secret[KW_KEY_MAX + 1], kw_err_t *err)
{
    kw_cred_t c = {0};
    kw_keyrec_t k;
    kw_policy_t p;
    int64_t now = kw_now(), expires_at;
    const char *prefix = in->prefix ? in->prefix : KW_DEFAULT_PREFIX;
    int rc;

    if (in->name == NULL)
        return kw_err_set(err, KW_EINVAL, "name", "name is required");
    if (!kw_key_prefix_valid(prefix, strlen(prefix)))
        return kw_err_set(err, KW_EINVAL, "prefix", "prefix must match [a-z][a-z0-9]{0,15}");
    if ((rc = begin(lc, err)) != 0)
        return rc;
    const char *pname = in->policy ? in->policy : "default";
    if ((rc = kw_store_policy_get(lc->store, pname, &p, err)) != 0) {
        if (rc == KW_ENOTFOUND)
            rc = kw_err_set(err, KW_EINVAL, "policy", "unknown policy '%s'", pname);
        goto out;
    }
    if ((rc = compute_expiry(&p, exp, now, &expires_at, err)) != 0)
        goto out;
    if (kw_id_new("cred", c.id)) {
        rc = kw_err_set(err, KW_EINTERNAL, NULL, "could not read the system random source");
        goto out;
    }
    c.scopes_json = strdup("[]");
    c.cidrs_json = strdup("[]");
    c.metadata_json = strdup("{}");
    c.contacts_json = strdup("[]");
    if (!c.scopes_json || !c.cidrs_json || !c.metadata_json || !c.contacts_json) {
        rc = kw_err_set(err, KW_ENOMEM, NULL, "out of memory");
        goto out;
    }
    if ((rc = apply_cred_in(&c, in, err)) != 0)
        goto out;
    snprintf(c.policy, sizeof(c.policy), "%s", p.name);
    snprintf(c.prefix, sizeof(c.prefix), "%s", prefix);
    c.created_at = c.updated_at = now;
    if ((rc = kw_store_cred_insert(lc->store, &c, err)) != 0)
        goto out;
    if ((rc = make_key(c.id, c.prefix, 1, now, expires_at, &k, secret, err)) != 0)
        goto out;
    if ((rc = kw_store_key_insert(lc->store, &k, err)) != 0)
        goto out;
    rc = emit(lc, "key.created", &k, now,
              json_pack("{s:o}", "expires_at", time_or_null(expires_at)), err);
    if (rc == 0)
        rc = kw_audit_append(lc->store, actor, "credential.create", c.id, "ok",
                             json_pack("{s:s, s:s, s:s, s:s, s:i, s:o}", "name", c.name, "policy",
                                       c.policy, "key_id", k.id, "hint", k.hint, "slot", k.slot,
                                       "expires_at", time_or_null(expires_at)),
                             now, err);
out:
    rc = finish(lc, rc, err);
    if (rc == 0) {
        if (index_cred_and_keys(lc, &c, &p, &k, 1) != 0)
            rc = kw_err_set(err, KW_ENOMEM, NULL, "created, but the index update failed");
    }
    pthread_mutex_unlock(&lc->mu);
    if (rc == 0) {
        *cred_out = c;
        *key_out = k;
    } else {
        kw_wipe(secret, KW_KEY_MAX + 1);
        kw_cred_clear(&c);
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

int kw_lc_cred_update(kw_lc_t *lc, const char *actor, const char *id, const kw_cred_in_t *in,
                      kw_err_t *err)
{
    kw_cred_t c = {0};
    kw_policy_t p;
    int rc;
    if ((rc = begin(lc, err)) != 0)
        return rc;
    if ((rc = kw_store_cred_get(lc->store, id, &c, err)) != 0)
        goto out;
    if (in->prefix && strcmp(in->prefix, c.prefix) != 0) {
        rc = kw_err_set(err, KW_EINVAL, "prefix", "prefix cannot be changed after creation");
        goto out;
    }
    if (in->policy)
        snprintf(c.policy, sizeof(c.policy), "%s", in->policy);
    if ((rc = kw_store_policy_get(lc->store, c.policy, &p, err)) != 0) {
        if (rc == KW_ENOTFOUND)
            rc = kw_err_set(err, KW_EINVAL, "policy", "unknown policy '%s'", c.policy);
        goto out;
    }
    if ((rc = apply_cred_in(&c, in, err)) != 0)
        goto out;
    c.updated_at = kw_now();
    rc = kw_store_cred_update(lc->store, &c, err);
    if (rc == 0) {
        json_t *d = json_pack("{s:o}", "fields", cred_fields(in));
        if (d && in->has_disabled)
            json_object_set_new(d, "disabled", json_boolean(c.disabled));
        if (d && in->scopes_json) /* scopes carry the admin roles: worth seeing in full */
            json_object_set_new(d, "scopes", json_loads(c.scopes_json, 0, NULL));
        rc = kw_audit_append(lc->store, actor, "credential.update", c.id, "ok", d, c.updated_at,
                             err);
    }
out:
    rc = finish(lc, rc, err);
    if (rc == 0 && kw_index_put_cred(lc->index, &c, warn_window(&p)) != 0)
        rc = kw_err_set(err, KW_ENOMEM, NULL, "updated, but the index update failed");
    pthread_mutex_unlock(&lc->mu);
    kw_cred_clear(&c);
    return rc;
}

int kw_lc_cred_delete(kw_lc_t *lc, const char *actor, const char *id, kw_err_t *err)
{
    kw_cred_t c = {0};
    kw_keyrec_t *keys = NULL;
    kw_policy_t p;
    size_t n = 0;
    int64_t now = kw_now();
    int rc;
    if ((rc = begin(lc, err)) != 0)
        return rc;
    if ((rc = kw_store_cred_get(lc->store, id, &c, err)) != 0)
        goto out;
    if ((rc = kw_store_policy_get(lc->store, c.policy, &p, err)) != 0)
        goto out;
    if ((rc = kw_store_key_list_cred(lc->store, id, &keys, &n, err)) != 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        if (keys[i].revoked_at)
            continue;
        keys[i].revoked_at = now;
        keys[i].live = 0;
        snprintf(keys[i].revoke_reason, sizeof(keys[i].revoke_reason), "credential deleted");
        if ((rc = kw_store_key_update(lc->store, &keys[i], err)) != 0)
            goto out;
        rc = emit(lc, "key.invalidated", &keys[i], now,
                  json_pack("{s:s}", "reason", "credential deleted"), err);
        if (rc)
            goto out;
    }
    c.deleted_at = now;
    c.updated_at = now;
    rc = kw_store_cred_update(lc->store, &c, err);
    if (rc == 0) {
        json_t *ids = json_array();
        for (size_t i = 0; ids && i < n; i++)
            if (keys[i].revoked_at == now)
                json_array_append_new(ids, json_string(keys[i].id));
        rc =
            kw_audit_append(lc->store, actor, "credential.delete", c.id, "ok",
                            json_pack("{s:s, s:o}", "name", c.name, "revoked_keys", ids), now, err);
    }
out:
    rc = finish(lc, rc, err);
    if (rc == 0 && index_cred_and_keys(lc, &c, &p, keys, n) != 0)
        rc = kw_err_set(err, KW_ENOMEM, NULL, "deleted, but the index update failed");
    pthread_mutex_unlock(&lc->mu);
    kw_cred_clear(&c);
    free(keys);
    return rc;
}

/* ---- keys ---- */

int kw_lc_key_new(kw_lc_t *lc, const char *actor, const char *cred_id, const kw_expiry_in_t *exp,
                  kw_keyrec_t *out, char secret[KW_KEY_MAX + 1], kw_err_t *err)
{
    kw_cred_t c = {0};
    kw_keyrec_t *keys = NULL, *vacated = NULL, k;
    kw_policy_t p;
    size_t n = 0;
    int64_t now = kw_now(), expires_at;
    int rc, slot;
    if ((rc = begin(lc, err)) != 0)
        return rc;
    if ((rc = kw_store_cred_get(lc->store, cred_id, &c, err)) != 0)
        goto out;
    if ((rc = kw_store_policy_get(lc->store, c.policy, &p, err)) != 0)
        goto out;
    if ((rc = compute_expiry(&p, exp, now, &expires_at, err)) != 0)
        goto out;
    if ((rc = kw_store_key_list_cred(lc->store, cred_id, &keys, &n, err)) != 0)
        goto out;
    if ((slot = pick_slot(lc, keys, n, now, 0, &vacated, err)) < 0) {
        rc = slot;
        goto out;
    }
    if ((rc = make_key(c.id, c.prefix, slot, now, expires_at, &k, secret, err)) != 0)
        goto out;
    if ((rc = kw_store_key_insert(lc->store, &k, err)) != 0)
        goto out;
    rc = emit(lc, "key.created", &k, now,
              json_pack("{s:o}", "expires_at", time_or_null(expires_at)), err);
    if (rc == 0)
        rc =
            kw_audit_append(lc->store, actor, "key.create", k.id, "ok",
                            json_pack("{s:s, s:i, s:s, s:o}", "credential_id", c.id, "slot", k.slot,
                                      "hint", k.hint, "expires_at", time_or_null(expires_at)),
                            now, err);
out:
    rc = finish(lc, rc, err);
    if (rc == 0 && (kw_index_put_key(lc->index, &k) != 0 ||
                    (vacated && kw_index_put_key(lc->index, vacated) != 0)))
        rc = kw_err_set(err, KW_ENOMEM, NULL, "created, but the index update failed");
    pthread_mutex_unlock(&lc->mu);
    if (rc == 0)
        *out = k;
    else
        kw_wipe(secret, KW_KEY_MAX + 1);
    kw_cred_clear(&c);
    free(keys);
    return rc;
}

int kw_lc_key_roll(kw_lc_t *lc, const char *actor, const char *key_id, int64_t overlap,
                   const kw_expiry_in_t *exp, kw_keyrec_t *new_out, kw_keyrec_t *prev_out,
                   char secret[KW_KEY_MAX + 1], kw_err_t *err)
{
    kw_cred_t c = {0};
    kw_keyrec_t old, *keys = NULL, *vacated = NULL, k;
    kw_policy_t p;
    size_t n = 0;
    int64_t now = kw_now(), expires_at;
    int rc, slot;
    char a[KW_DURATION_STR_MAX], b[KW_DURATION_STR_MAX];
    if ((rc = begin(lc, err)) != 0)
        return rc;
    if ((rc = kw_store_key_get(lc->store, key_id, &old, err)) != 0)
        goto out;
    kw_key_state_t st = kw_keyrec_state(&old, now);
    if (st != KW_KEY_ACTIVE) {
        rc = kw_err_set(err, KW_ECONFLICT, NULL, "key %s is %s and cannot be rolled", old.id,
                        kw_key_state_name(st));
        goto out;
    }
    if ((rc = kw_store_cred_get(lc->store, old.cred_id, &c, err)) != 0)
        goto out;
    if ((rc = kw_store_policy_get(lc->store, c.policy, &p, err)) != 0)
        goto out;
    if (overlap == 0)
        overlap =
            DEFAULT_ROLL_OVERLAP < p.max_roll_overlap ? DEFAULT_ROLL_OVERLAP : p.max_roll_overlap;
    if (overlap > p.max_roll_overlap) {
        kw_duration_format(overlap, a);
        kw_duration_format(p.max_roll_overlap, b);
        rc = kw_err_set(err, KW_EPOLICY, "overlap",
                        "overlap %s exceeds the maximum of %s set by policy '%s'", a, b, p.name);
        goto out;
    }
    if ((rc = compute_expiry(&p, exp, now, &expires_at, err)) != 0)
        goto out;
    if ((rc = kw_store_key_list_cred(lc->store, c.id, &keys, &n, err)) != 0)
        goto out;
    if ((slot = pick_slot(lc, keys, n, now, old.slot == 1 ? 2 : 1, &vacated, err)) < 0) {
        rc = slot;
        goto out;
    }
    if (old.expires_at == 0 || old.expires_at > now + overlap)
        old.expires_at = now + overlap;
    if ((rc = kw_store_key_update(lc->store, &old, err)) != 0)
        goto out;
    if ((rc = make_key(c.id, c.prefix, slot, now, expires_at, &k, secret, err)) != 0)
        goto out;
    if ((rc = kw_store_key_insert(lc->store, &k, err)) != 0)
        goto out;
    rc = emit(lc, "key.rolled", &k, now,
              json_pack("{s:o, s:s, s:s, s:o}", "expires_at", time_or_null(expires_at),
                        "previous_key_id", old.id, "previous_hint", old.hint, "previous_expires_at",
                        time_or_null(old.expires_at)),
              err);
    if (rc == 0)
        rc = kw_audit_append(lc->store, actor, "key.roll", old.id, "ok",
                             json_pack("{s:s, s:s, s:s, s:i, s:o, s:o, s:I}", "credential_id", c.id,
                                       "new_key_id", k.id, "new_hint", k.hint, "slot", k.slot,
                                       "expires_at", time_or_null(expires_at),
                                       "previous_expires_at", time_or_null(old.expires_at),
                                       "overlap_s", (json_int_t)overlap),
                             now, err);
out:
    rc = finish(lc, rc, err);
    if (rc == 0 && (kw_index_put_key(lc->index, &k) != 0 || kw_index_put_key(lc->index, &old) ||
                    (vacated && kw_index_put_key(lc->index, vacated) != 0)))
        rc = kw_err_set(err, KW_ENOMEM, NULL, "rolled, but the index update failed");
    pthread_mutex_unlock(&lc->mu);
    if (rc == 0) {
        *new_out = k;
        *prev_out = old;
    } else {
        kw_wipe(secret, KW_KEY_MAX + 1);
    }
    kw_cred_clear(&c);
    free(keys);
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

int kw_lc_key_invalidate(kw_lc_t *lc, const char *actor, const char *key_id, const char *reason,
                         int64_t unused_for, kw_keyrec_t *out, kw_err_t *err)
{
    kw_keyrec_t k;
    int64_t now = kw_now();
    int rc;
    char a[KW_DURATION_STR_MAX], ts[KW_TIME_STR_MAX];
    if ((rc = begin(lc, err)) != 0)
        return rc;
    if ((rc = kw_store_key_get(lc->store, key_id, &k, err)) != 0)
        goto out;
    if (k.revoked_at) {
        rc = kw_err_set(err, KW_ECONFLICT, NULL, "key %s is already invalidated", k.id);
        goto out;
    }
    kw_lc_key_merge_usage(lc, &k);
    if (unused_for > 0 && k.last_used_at && k.last_used_at > now - unused_for) {
        kw_duration_format(unused_for, a);
        kw_time_format(k.last_used_at, ts);
        rc = kw_err_set(err, KW_ECONFLICT, "unused_for",
                        "key %s was used at %s, within the last %s; not invalidated", k.id, ts, a);
        goto out;
    }
    k.revoked_at = now;
    k.live = 0;
    snprintf(k.revoke_reason, sizeof(k.revoke_reason), "%s", reason ? reason : "");
    if ((rc = kw_store_key_update(lc->store, &k, err)) != 0)
        goto out;
    rc = emit(lc, "key.invalidated", &k, now, json_pack("{s:s}", "reason", k.revoke_reason), err);
    if (rc == 0)
        rc = kw_audit_append(lc->store, actor, "key.invalidate", k.id, "ok",
                             json_pack("{s:s, s:s, s:s, s:I}", "credential_id", k.cred_id, "hint",
                                       k.hint, "reason", k.revoke_reason, "unused_for_s",
                                       (json_int_t)unused_for),
                             now, err);
out:
    rc = finish(lc, rc, err);
    if (rc == 0 && kw_index_put_key(lc->index, &k) != 0)
        rc = kw_err_set(err, KW_ENOMEM, NULL, "invalidated, but the index update failed");
    pthread_mutex_unlock(&lc->mu);
    if (rc == 0)
        *out = k;
    return rc;
}

/* ---- first start ---- */

int kw_lc_bootstrap_admin(kw_lc_t *lc, const char *path, int *created, kw_err_t *err)
{
    char *flag = NULL;
    char secret[KW_KEY_MAX + 2];
    kw_cred_t c = {0};
    kw_keyrec_t k;
    int rc, fd = -1;
    *created = 0;
    rc = kw_store_meta_get(lc->store, "admin_bootstrapped", &flag, err);
    free(flag);
    if (rc == 0)
        return 0;
    if (rc != KW_ENOTFOUND)
        return rc;
    kw_err_clear(err);

    /* Claim the file first: O_EXCL never overwrites, and if it exists we stop before
     * creating a key nobody could read. */
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return kw_err_set(err, errno == EEXIST ? KW_ECONFLICT : KW_EIO, "admin-key-file",
                          "cannot create admin key file %s: %s%s", path, strerror(errno),
                          errno == EEXIST ? " (remove it, or point --admin-key-file elsewhere)"
                                          : "");
    kw_cred_in_t in = {
        .name = "admin", .scopes_json = "[\"keyward:admin\"]", .has_owner = 1, .owner = "keyward"};
    rc = kw_lc_cred_create(lc, "system", &in, NULL, &c, &k, secret, err);
    if (rc)
        goto out;
    size_t len = strlen(secret);
    secret[len] = '\n';
    if (write(fd, secret, len + 1) != (ssize_t)(len + 1) || fsync(fd) != 0) {
        rc = kw_err_set(err, KW_EIO, "admin-key-file", "cannot write admin key file %s: %s", path,
                        strerror(errno));
        goto out;
    }
    if ((rc = kw_store_begin(lc->store, err)) != 0)
        goto out;
    if ((rc = kw_store_meta_set(lc->store, "admin_bootstrapped", c.id, err)) != 0) {
        kw_store_rollback(lc->store);
        goto out;
    }
    rc = kw_store_commit(lc->store, err);
out:
    kw_wipe(secret, sizeof(secret));
    if (fd >= 0)
        close(fd);
    if (rc)
        unlink(path);
    else
        *created = 1;
    kw_cred_clear(&c);
    return rc;
}

/* ---- policies ---- */

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
static json_t *policy_detail(const kw_policy_t *p)
{
    json_t *th = json_array();
    for (size_t i = 0; th && i < p->nthresholds; i++)
        json_array_append_new(th, json_integer(p->thresholds[i]));
    return json_pack("{s:I, s:I, s:b, s:b, s:b, s:o, s:I}", "default_lifetime_s",
                     (json_int_t)p->default_lifetime, "max_lifetime_s", (json_int_t)p->max_lifetime,
                     "allow_never_expire", p->allow_never_expire, "renewable", p->renewable,
                     "renewal_requires_approval", p->renewal_requires_approval,
                     "alert_thresholds_s", th ? th : json_array(), "max_roll_overlap_s",
                     (json_int_t)p->max_roll_overlap);
}

int kw_lc_policy_put(kw_lc_t *lc, const char *actor, const kw_policy_t *p, int create,
                     kw_err_t *err)
{
    int rc = kw_policy_validate(p, err);
    if (rc)
        return rc;
    if ((rc = begin(lc, err)) != 0)
        return rc;
    rc = kw_store_policy_put(lc->store, p, create, err);
    if (rc == KW_ECONFLICT)
        kw_err_set(err, KW_ECONFLICT, "name", "policy '%s' already exists", p->name);
    if (rc == 0)
        rc = kw_audit_append(lc->store, actor, create ? "policy.create" : "policy.update", p->name,
                             "ok", policy_detail(p), kw_now(), err);
    rc = finish(lc, rc, err);
    if (rc == 0 && kw_index_put_policy(lc->index, p->name, warn_window(p)) != 0)
        rc = kw_err_set(err, KW_ENOMEM, NULL, "saved, but the index update failed");
    pthread_mutex_unlock(&lc->mu);
    return rc;
}

/* ---- for the other lifecycle files (renewal.c) ---- */

int kw__lc_begin(kw_lc_t *lc, kw_err_t *err)
{
    return begin(lc, err);
}

int kw__lc_finish(kw_lc_t *lc, int rc, kw_err_t *err)
{
    return finish(lc, rc, err);
}

int kw__lc_emit(kw_lc_t *lc, const char *type, const kw_keyrec_t *k, int64_t now, json_t *extra,
                kw_err_t *err)
{
    return emit(lc, type, k, now, extra, err);
}
