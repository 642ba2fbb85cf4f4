/* store.c - the public kw_store_* API: picks a backend by URL scheme and dispatches through
 * its kw_store_ops_t. Argument checks common to every backend live here; no SQL, no I/O. */
#include "store_impl.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/key.h"
#include "store_cluster.h"

#define KW__NEED(cond, field) KW_STORE_NEED(cond, field)

static _Atomic uint64_t next_thread_id = 1;
static _Thread_local uint64_t thread_id;

uint64_t kw_store_thread_id(void)
{
    if (thread_id == 0)
        thread_id = atomic_fetch_add(&next_thread_id, 1);
    return thread_id;
}

int kw_store_open(const char *url, kw_store_t **out, kw_err_t *err)
{
    KW__NEED(url != NULL, "store");
    KW__NEED(out != NULL, NULL);
    const char *rest;
    switch (kw_store_scheme(url, &rest)) {
    case KW_STORE_SQLITE:
        return kw_store_sqlite_ops.open(rest, out, err);
    case KW_STORE_POSTGRESQL:
#ifdef KW_HAVE_LIBPQ
        return kw_store_postgres_ops.open(rest, out, err);
#else
        return kw_err_set(err, KW_EINVAL, "store", "PostgreSQL backend not built (no libpq)");
#endif
    case KW_STORE_UNKNOWN:
        break;
    }
    return kw_err_set(err, KW_EINVAL, "store",
                      "unknown store URL (use sqlite:PATH or postgresql://...)");
}

void kw_store_close(kw_store_t *s)
{
    if (s)
        s->ops->close(s);
}

const char *kw_store_file(const kw_store_t *s)
{
    return s ? s->ops->file(s) : NULL;
}

void kw_store_file_beside(const kw_store_t *s, const char *configured, const char *suffix,
                          char *out, size_t n)
{
    const char *db = configured[0] ? NULL : kw_store_file(s);
    size_t l = db ? strlen(db) : 0;
    if (configured[0])
        snprintf(out, n, "%s", configured);
    else if (db == NULL)
        snprintf(out, n, "keyward.%s", suffix);
    else if (l > 3 && strcmp(db + l - 3, ".db") == 0)
        snprintf(out, n, "%.*s.%s", (int)(l - 3), db, suffix);
    else
        snprintf(out, n, "%s.%s", db, suffix);
}

int kw_store_begin(kw_store_t *s, kw_err_t *err)
{
    KW__NEED(s != NULL, NULL);
    return s->ops->begin(s, err);
}

int kw_store_commit(kw_store_t *s, kw_err_t *err)
{
    KW__NEED(s != NULL, NULL);
    return s->ops->commit(s, err);
}

void kw_store_rollback(kw_store_t *s)
{
    if (s)
        s->ops->rollback(s);
}

int kw_store_savepoint(kw_store_t *s, kw_err_t *err)
{
    KW__NEED(s != NULL, NULL);
    return s->ops->savepoint(s, err);
}

int kw_store_savepoint_end(kw_store_t *s, int keep, kw_err_t *err)
{
    KW__NEED(s != NULL, NULL);
    return s->ops->savepoint_end(s, keep, err);
}

void kw_store_defer_writes(kw_store_t *s, int on)
{
    if (s && s->ops->defer_writes)
        s->ops->defer_writes(s, on);
}

int kw_store_sync(kw_store_t *s, kw_err_t *err)
{
    KW__NEED(s != NULL, NULL);
    return s->ops->sync ? s->ops->sync(s, err) : 0;
}

int kw_store_meta_get(kw_store_t *s, const char *key, char **value_out, kw_err_t *err)
{
    KW__NEED(s != NULL, NULL);
    KW__NEED(key != NULL, "key");
    KW__NEED(value_out != NULL, NULL);
    return s->ops->meta_get(s, key, value_out, err);
}

int kw_store_meta_set(kw_store_t *s, const char *key, const char *value, kw_err_t *err)
{
    KW__NEED(s != NULL, NULL);
    KW__NEED(key != NULL, "key");
    KW__NEED(value != NULL, "value");
    return s->ops->meta_set(s, key, value, err);
}

int kw_store_policy_get(kw_store_t *s, const char *name, kw_policy_t *out, kw_err_t *err)
{
    KW__NEED(s != NULL, NULL);
    KW__NEED(name != NULL, "name");
    KW__NEED(out != NULL, NULL);
    return s->ops->policy_get(s, name, out, err);
}

int kw_store_policy_put(kw_store_t *s, const kw_policy_t *p, int create, kw_err_t *err)
{
    KW__NEED(s != NULL, NULL);
    KW__NEED(p != NULL, NULL);
    KW__NEED(p->name[0] != '\0', "name");
    KW__NEED(p->nthresholds <= KW_MAX_THRESHOLDS, "thresholds");
    return s->ops->policy_put(s, p, create, err);
}

int kw_store_policy_list(kw_store_t *s, kw_policy_t **out, size_t *n, kw_err_t *err)
{
    KW__NEED(s != NULL, NULL);
    KW__NEED(out != NULL && n != NULL, NULL);
    return s->ops->policy_list(s, out, n, err);
}

int kw_store_cred_insert(kw_store_t *s, kw_cred_t *c, kw_err_t *err)
{
    KW__NEED(s != NULL, NULL);
    KW__NEED(c != NULL, NULL);
    KW__NEED(c->name != NULL, "name");
    char *sealed = NULL; /* security: contacts' secrets sealed before the backend sees them */
    int rc = kw_store_contacts_xform(s, c->id, c->contacts_json, 1, &sealed, err);
    if (rc)
        return rc;
    char *clear = c->contacts_json;
    if (sealed)
        c->contacts_json = sealed;
    rc = s->ops->cred_insert(s, c, err);
    c->contacts_json = clear;
    free(sealed);
    return rc;
}

/* security: open the contacts' secrets of a credential a backend read */
static int cred_open(kw_store_t *s, kw_cred_t *c, kw_err_t *err)
{
    char *clear = NULL;
    int rc = kw_store_contacts_xform(s, c->id, c->contacts_json, 0, &clear, err);
    if (rc == 0 && clear) {
        kw_wipe(c->contacts_json, strlen(c->contacts_json));
        free(c->contacts_json);
        c->contacts_json = clear;
    }
    return rc;
}

int kw_store_cred_update(kw_store_t *s, const kw_cred_t *c, kw_err_t *err)
{
    KW__NEED(s != NULL, NULL);
    KW__NEED(c != NULL, NULL);
    KW__NEED(c->name != NULL, "name");
    char *sealed = NULL; /* security: as in insert */
    int rc = kw_store_contacts_xform(s, c->id, c->contacts_json, 1, &sealed, err);
    if (rc)
        return rc;
    kw_cred_t t = *c;
    if (sealed)
        t.contacts_json = sealed;
    rc = s->ops->cred_update(s, &t, err);
    free(sealed);
    return rc;
}

int kw_store_cred_get(kw_store_t *s, const char *id, kw_cred_t *out, kw_err_t *err)
{
    KW__NEED(s != NULL, NULL);
    KW__NEED(id != NULL, "id");
    KW__NEED(out != NULL, NULL);
    int rc = s->ops->cred_get(s, id, out, err);
    if (rc == 0 && (rc = cred_open(s, out, err)) != 0)
        kw_cred_clear(out);
    return rc;
}

int kw_store_cred_list(kw_store_t *s, const kw_cred_filter_t *f, kw_cred_t **out, size_t *n,
                       kw_err_t *err)
{
    KW__NEED(s != NULL, NULL);
    KW__NEED(f != NULL, NULL);
    KW__NEED(f->limit >= 1, "limit");
    KW__NEED(out != NULL && n != NULL, NULL);
    int rc = s->ops->cred_list(s, f, out, n, err);
    for (size_t i = 0; rc == 0 && i < *n; i++)
        rc = cred_open(s, &(*out)[i], err);
    if (rc && *out) {
        kw_cred_array_free(*out, *n);
        *out = NULL;
        *n = 0;
    }
    return rc;
}

int kw_store_key_insert(kw_store_t *s, kw_keyrec_t *k, kw_err_t *err)
{
    KW__NEED(s != NULL, NULL);
    KW__NEED(k != NULL, NULL);
    return s->ops->key_insert(s, k, err);
}

int kw_store_key_update(kw_store_t *s, const kw_keyrec_t *k, kw_err_t *err)
{
    KW__NEED(s != NULL, NULL);
    KW__NEED(k != NULL, NULL);
    return s->ops->key_update(s, k, err);
}

int kw_store_key_get(kw_store_t *s, const char *id, kw_keyrec_t *out, kw_err_t *err)
{
    KW__NEED(s != NULL, NULL);
    KW__NEED(id != NULL, "id");
    KW__NEED(out != NULL, NULL);
    return s->ops->key_get(s, id, out, err);
}

int kw_store_key_list_cred(kw_store_t *s, const char *cred_id, kw_keyrec_t **out, size_t *n,
                           kw_err_t *err)
{
    KW__NEED(s != NULL, NULL);
    KW__NEED(cred_id != NULL, "cred_id");
    KW__NEED(out != NULL && n != NULL, NULL);
    return s->ops->key_list_cred(s, cred_id, out, n, err);
}

int kw_store_key_expiring(kw_store_t *s, int64_t now, int64_t until, int64_t after_exp,
                          int64_t after_seq, size_t limit, kw_keyrec_t **out, size_t *n,
                          kw_err_t *err)
{
    KW__NEED(s != NULL, NULL);
    KW__NEED(limit >= 1, "limit");
    KW__NEED(out != NULL && n != NULL, NULL);
    return s->ops->key_expiring(s, now, until, after_exp, after_seq, limit, out, n, err);
}

int kw_store_usage_apply(kw_store_t *s, const kw_usage_t *u, size_t n, kw_err_t *err)
{
    KW__NEED(s != NULL, NULL);
    if (n == 0)
        return 0;
    KW__NEED(u != NULL, NULL);
    return s->ops->usage_apply(s, u, n, err);
}

int kw_store_event_insert(kw_store_t *s, const char *id, const char *type, int64_t occurred_at,
                          const char *payload_json, kw_err_t *err)
{
    KW__NEED(s != NULL, NULL);
    KW__NEED(id != NULL, "id");
    KW__NEED(type != NULL, "type");
    KW__NEED(payload_json != NULL, "payload");
    return s->ops->event_insert(s, id, type, occurred_at, payload_json, err);
}

int kw_store_counts(kw_store_t *s, int64_t *creds, int64_t *keys, kw_err_t *err)
{
    KW__NEED(s != NULL, NULL);
    KW__NEED(creds != NULL && keys != NULL, NULL);
    return s->ops->counts(s, creds, keys, err);
}

/* security: load_all's callback sees opened contacts */
typedef struct load_open {
    kw_store_t *s;
    kw_store_load_cb cb;
    void *ud;
} load_open_t;

static int load_open_cb(void *ud, const kw_cred_t *c, const kw_keyrec_t *keys, size_t nkeys)
{
    load_open_t *lo = ud;
    char *clear = NULL;
    if (c == NULL ||
        kw_store_contacts_xform(lo->s, c->id, c->contacts_json, 0, &clear, NULL) != 0 ||
        clear == NULL)
        return lo->cb(lo->ud, c, keys, nkeys);
    kw_cred_t t = *c;
    t.contacts_json = clear;
    int rc = lo->cb(lo->ud, &t, keys, nkeys);
    kw_wipe(clear, strlen(clear));
    free(clear);
    return rc;
}

int kw_store_load_all(kw_store_t *s, int64_t retain_since, kw_store_load_cb cb, void *ud,
                      kw_err_t *err)
{
    KW__NEED(s != NULL, NULL);
    KW__NEED(cb != NULL, NULL);
    if (s->seal == NULL)
        return s->ops->load_all(s, retain_since, 0, cb, ud, err);
    load_open_t lo = {s, cb, ud};
    return s->ops->load_all(s, retain_since, 0, load_open_cb, &lo, err);
}

int kw_store_load_index(kw_store_t *s, int64_t retain_since, kw_store_load_cb cb, void *ud,
                        kw_err_t *err)
{
    KW__NEED(s != NULL, NULL);
    KW__NEED(cb != NULL, NULL);
    return s->ops->load_all(s, retain_since, 1, cb, ud, err); /* no contacts: nothing to open */
}

/* ---- audit trail and renewal requests ---- */

int kw_store_audit_insert(kw_store_t *s, const kw_audit_rec_t *r, kw_err_t *err)
{
    KW__NEED(s != NULL, NULL);
    KW__NEED(r != NULL && r->seq >= 1, "seq");
    return s->ops->audit_insert(s, r, err);
}

int kw_store_audit_head(kw_store_t *s, int64_t *seq, uint8_t hash[KW_AUDIT_HASH_LEN], kw_err_t *err)
{
    KW__NEED(s != NULL, NULL);
    KW__NEED(seq != NULL && hash != NULL, NULL);
    return s->ops->audit_head(s, seq, hash, err);
}

int kw_store_audit_list(kw_store_t *s, const kw_audit_filter_t *f, kw_audit_rec_t **out, size_t *n,
                        kw_err_t *err)
{
    KW__NEED(s != NULL, NULL);
    KW__NEED(f != NULL && f->limit >= 1, "limit");
    KW__NEED(out != NULL && n != NULL, NULL);
    return s->ops->audit_list(s, f, out, n, err);
}

int kw_store_audit_scan(kw_store_t *s, kw_store_audit_cb cb, void *ud, const char *meta_key,
                        char **meta_out, kw_err_t *err)
{
    KW__NEED(s != NULL, NULL);
    KW__NEED(cb != NULL, NULL);
    KW__NEED(meta_key != NULL && meta_out != NULL, NULL);
    return s->ops->audit_scan(s, cb, ud, meta_key, meta_out, err);
}

int kw_store_renewal_insert(kw_store_t *s, const kw_renewal_t *r, kw_err_t *err)
{
    KW__NEED(s != NULL, NULL);
    KW__NEED(r != NULL, NULL);
    return s->ops->renewal_insert(s, r, err);
}

int kw_store_renewal_update(kw_store_t *s, const kw_renewal_t *r, kw_err_t *err)
{
    KW__NEED(s != NULL, NULL);
    KW__NEED(r != NULL, NULL);
    return s->ops->renewal_update(s, r, err);
}

int kw_store_renewal_get(kw_store_t *s, const char *id, kw_renewal_t *out, kw_err_t *err)
{
    KW__NEED(s != NULL, NULL);
    KW__NEED(id != NULL, "id");
    KW__NEED(out != NULL, NULL);
    return s->ops->renewal_get(s, id, out, err);
}

int kw_store_renewal_list(kw_store_t *s, const kw_renewal_filter_t *f, kw_renewal_t **out,
                          size_t *n, kw_err_t *err)
{
    KW__NEED(s != NULL, NULL);
    KW__NEED(f != NULL && f->limit >= 1, "limit");
    KW__NEED(out != NULL && n != NULL, NULL);
    return s->ops->renewal_list(s, f, out, n, err);
}

int kw_store_renewal_stale(kw_store_t *s, int64_t now, size_t limit, kw_renewal_t **out, size_t *n,
                           kw_err_t *err)
{
    KW__NEED(s != NULL, NULL);
    KW__NEED(limit >= 1, "limit");
    KW__NEED(out != NULL && n != NULL, NULL);
    return s->ops->renewal_stale(s, now, limit, out, n, err);
}

/* ---- several nodes (store_cluster.h) ---- */

#define KW__CLUSTER(s)                                                                             \
    do {                                                                                           \
        if ((s) == NULL || (s)->cluster == NULL)                                                   \
            return kw_err_set(err, KW_EINVAL, NULL, "store: not shared by several nodes");         \
    } while (0)

int kw_store_shared(const kw_store_t *s)
{
    return s && s->cluster != NULL;
}

int kw_store_feed_bounds(kw_store_t *s, int64_t *oldest, int64_t *newest, kw_err_t *err)
{
    KW__CLUSTER(s);
    KW__NEED(oldest != NULL && newest != NULL, NULL);
    return s->cluster->feed_bounds(s, oldest, newest, err);
}

int kw_store_feed_read(kw_store_t *s, int64_t after, size_t limit, kw_feed_row_t **out, size_t *n,
                       kw_err_t *err)
{
    KW__CLUSTER(s);
    KW__NEED(limit >= 1, "limit");
    KW__NEED(out != NULL && n != NULL, NULL);
    return s->cluster->feed_read(s, after, limit, out, n, err);
}

int kw_store_feed_wait(kw_store_t *s, int timeout_ms, kw_err_t *err)
{
    KW__CLUSTER(s);
    return s->cluster->feed_wait(s, timeout_ms, err);
}

int kw_store_feed_own(kw_store_t *s, int64_t seq)
{
    return s && s->cluster ? s->cluster->feed_own(s, seq) : 0;
}

int kw_store_feed_prune(kw_store_t *s, int64_t before, kw_err_t *err)
{
    KW__CLUSTER(s);
    return s->cluster->feed_prune(s, before, err);
}

int kw_store_cred_get_any(kw_store_t *s, const char *id, kw_cred_t *out, kw_err_t *err)
{
    KW__CLUSTER(s);
    KW__NEED(id != NULL, "id");
    KW__NEED(out != NULL, NULL);
    return s->cluster->cred_get_any(s, id, out, err);
}

int kw_store_leader(kw_store_t *s, int *leader, kw_err_t *err)
{
    KW__CLUSTER(s);
    KW__NEED(leader != NULL, NULL);
    return s->cluster->leader(s, leader, err);
}

int kw_store_cluster_lock(kw_store_t *s, const char *name, kw_err_t *err)
{
    KW__CLUSTER(s);
    KW__NEED(name != NULL, "name");
    return s->cluster->lock(s, name, err);
}

void kw_store_cluster_unlock(kw_store_t *s, const char *name)
{
    if (s && s->cluster && name)
        s->cluster->unlock(s, name);
}
