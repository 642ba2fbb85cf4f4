/* index.c - the in-memory verification index: open addressing on the key digest, a
 * reader/writer lock, and reference-counted credential snapshots.
 *
 * Must not: touch the store, allocate on the verify path (beyond nothing), or hold the
 * lock while doing anything slower than a table probe. */
#include "index.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "key.h"

/* A credential's stable holder: entries point here, writers swap `cur`. */
typedef struct kw_iholder {
    char id[KW_ID_MAX];
    kw_icred_t *cur;
} kw_iholder_t;

typedef struct kw_ientry {
    uint8_t digest[KW_DIGEST_LEN];
    char key_id[KW_ID_MAX];
    kw_iholder_t *holder;
    int slot;
    int64_t expires_at;
    int64_t revoked_at;
    _Atomic int64_t uses;          /* not yet drained */
    _Atomic int64_t last_used;
    atomic_int dirty;              /* 1 while on the dirty stack */
    struct kw_ientry *next_dirty;
} kw_ientry_t;

/* Open-addressing table of pointers with linear probing. */
typedef struct kw_ptab {
    void **slots;
    size_t cap; /* power of two */
    size_t len;
} kw_ptab_t;

struct kw_index {
    pthread_rwlock_t lock;
    kw_ptab_t keys;   /* kw_ientry_t*, hashed by digest */
    kw_ptab_t creds;  /* kw_iholder_t*, hashed by id */
    _Atomic(kw_ientry_t *) dirty_head;
    kw_ipolicy_t *policies; /* short list; touched by writers only, under the write lock */
};

/* ---- verify codes ---- */

const char *kw_verify_code_name(kw_verify_code_t c)
{
    switch (c) {
#define KW__N(name, http, msg) \
    case KW_V_##name:          \
        return #name;
        KW_VERIFY_CODES(KW__N)
#undef KW__N
    }
    return "UNKNOWN";
}

int kw_verify_http_status(kw_verify_code_t c)
{
    switch (c) {
#define KW__H(name, http, msg) \
    case KW_V_##name:          \
        return http;
        KW_VERIFY_CODES(KW__H)
#undef KW__H
    }
    return 500;
}

static const char *const verify_msgs[] = {
#define KW__M(name, http, msg) msg,
    KW_VERIFY_CODES(KW__M)
#undef KW__M
};

const char *kw_verify_message(kw_verify_code_t c, const char *scope, char *out, size_t n)
{
    if (n == 0)
        return out;
    if (c == KW_V_FORBIDDEN_SCOPE)
        snprintf(out, n, "Forbidden: API key lacks scope '%s'", scope ? scope : "");
    else if ((size_t)c < sizeof(verify_msgs) / sizeof(verify_msgs[0]))
        snprintf(out, n, "%s", verify_msgs[c]);
    else
        snprintf(out, n, "Authentication failed");
    return out;
}

/* ---- hashing ---- */

static uint64_t hash_digest(const uint8_t *d)
{
    uint64_t h;
    memcpy(&h, d, sizeof(h)); /* a SHA-256 digest is already uniform */
    return h;
}

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

static uint64_t entry_hash(const void *p)
{
    return hash_digest(((const kw_ientry_t *)p)->digest);
}

static uint64_t holder_hash(const void *p)
{
    return hash_str(((const kw_iholder_t *)p)->id);
}

static int ptab_init(kw_ptab_t *t, size_t expected)
{
    size_t cap = 16;
    while (cap < expected * 2)
        cap <<= 1;
    t->slots = calloc(cap, sizeof(void *));
    if (t->slots == NULL)
        return KW_ENOMEM;
    t->cap = cap;
    t->len = 0;
    return 0;
}

static int ptab_grow(kw_ptab_t *t, uint64_t (*hash)(const void *))
{
    size_t ncap = t->cap * 2;
    void **ns = calloc(ncap, sizeof(void *));
    if (ns == NULL)
        return KW_ENOMEM;
    for (size_t i = 0; i < t->cap; i++) {
        if (t->slots[i] == NULL)
            continue;
        size_t j = hash(t->slots[i]) & (ncap - 1);
        while (ns[j])
            j = (j + 1) & (ncap - 1);
        ns[j] = t->slots[i];
    }
    free(t->slots);
    t->slots = ns;
    t->cap = ncap;
    return 0;
}

/* Insert p (not present). Keeps load <= 1/2. */
static int ptab_insert(kw_ptab_t *t, void *p, uint64_t (*hash)(const void *))
{
    if ((t->len + 1) * 2 > t->cap) {
        int rc = ptab_grow(t, hash);
        if (rc)
            return rc;
    }
    size_t j = hash(p) & (t->cap - 1);
    while (t->slots[j])
        j = (j + 1) & (t->cap - 1);
    t->slots[j] = p;
    t->len++;
    return 0;
}

/* Remove the element at slot i with backward-shift deletion (no tombstones). */
static void ptab_remove_at(kw_ptab_t *t, size_t i, uint64_t (*hash)(const void *))
{
    size_t mask = t->cap - 1;
    size_t j = i;
    t->slots[i] = NULL;
    for (;;) {
        j = (j + 1) & mask;
        if (t->slots[j] == NULL)
            break;
        size_t home = hash(t->slots[j]) & mask;
        /* move slots[j] into the hole at i if its home is not in (i, j] cyclically */
        if ((j > i && (home <= i || home > j)) || (j < i && (home <= i && home > j))) {
            t->slots[i] = t->slots[j];
            t->slots[j] = NULL;
            i = j;
        }
    }
    t->len--;
}

static kw_ientry_t *find_entry(const kw_index_t *ix, const uint8_t *d)
{
    size_t mask = ix->keys.cap - 1;
    size_t j = hash_digest(d) & mask;
    for (;;) {
        kw_ientry_t *e = ix->keys.slots[j];
        if (e == NULL)
            return NULL;
        if (kw_ct_equal(e->digest, d, KW_DIGEST_LEN))
            return e;
        j = (j + 1) & mask;
    }
}

static kw_iholder_t *find_holder(const kw_index_t *ix, const char *id)
{
    size_t mask = ix->creds.cap - 1;
    size_t j = hash_str(id) & mask;
    for (;;) {
        kw_iholder_t *h = ix->creds.slots[j];
        if (h == NULL)
            return NULL;
        if (strcmp(h->id, id) == 0)
            return h;
        j = (j + 1) & mask;
    }
}

/* ---- credential snapshots ---- */

static void icred_free(kw_icred_t *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->nscopes; i++)
        free(c->scopes[i]);
    free(c->scopes);
    free(c->scopes_json);
    free(c->scopes_hdr);
    free(c->cidrs);
    free(c);
}

void kw_icred_release(kw_icred_t *c)
{
    if (c && atomic_fetch_sub(&c->refs, 1) == 1)
        icred_free(c);
}

static int icred_build(const kw_cred_t *src, int64_t warn_window, kw_icred_t **out)
{
    int rc = KW_ENOMEM;
    json_t *scopes = NULL, *cidrs = NULL;
    kw_icred_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return KW_ENOMEM;
    atomic_init(&c->refs, 1);
    snprintf(c->id, sizeof(c->id), "%s", src->id);
    c->disabled = src->disabled;
    c->deleted = src->deleted_at != 0;

    scopes = json_loads(src->scopes_json ? src->scopes_json : "[]", 0, NULL);
    cidrs = json_loads(src->cidrs_json ? src->cidrs_json : "[]", 0, NULL);
    if (!json_is_array(scopes) || !json_is_array(cidrs)) {
        rc = KW_EINVAL;
        goto out;
    }
    size_t ns = json_array_size(scopes), hdr_len = 1;
    c->scopes = calloc(ns ? ns : 1, sizeof(char *));
    if (c->scopes == NULL)
        goto out;
    for (size_t i = 0; i < ns; i++) {
        const char *s = json_string_value(json_array_get(scopes, i));
        if (s == NULL) {
            rc = KW_EINVAL;
            goto out;
        }
        if ((c->scopes[i] = strdup(s)) == NULL)
            goto out;
        c->nscopes++;
        hdr_len += strlen(s) + 1;
    }
    c->scopes_json = json_dumps(scopes, JSON_COMPACT);
    c->scopes_hdr = malloc(hdr_len);
    if (c->scopes_json == NULL || c->scopes_hdr == NULL)
        goto out;
    c->scopes_hdr[0] = '\0';
    for (size_t i = 0, off = 0; i < c->nscopes; i++)
        off += (size_t)sprintf(c->scopes_hdr + off, "%s%s", i ? " " : "", c->scopes[i]);

    size_t nc = json_array_size(cidrs);
    c->cidrs = calloc(nc ? nc : 1, sizeof(kw_cidr_t));
    if (c->cidrs == NULL)
        goto out;
    for (size_t i = 0; i < nc; i++) {
        const char *s = json_string_value(json_array_get(cidrs, i));
        if (s == NULL || kw_cidr_parse(s, strlen(s), &c->cidrs[i]) != 0) {
            rc = KW_EINVAL;
            goto out;
        }
        c->ncidrs++;
    }
    *out = c;
    c = NULL;
    rc = 0;
out:
    json_decref(scopes);
    json_decref(cidrs);
    icred_free(c);
    return rc;
}

/* ---- lifecycle ---- */

kw_index_t *kw_index_new(size_t expected)
{
    kw_index_t *ix = calloc(1, sizeof(*ix));
    if (ix == NULL)
        return NULL;
    if (ptab_init(&ix->keys, expected) || ptab_init(&ix->creds, expected / 2 + 8)) {
        free(ix->keys.slots);
        free(ix);
        return NULL;
    }
    pthread_rwlock_init(&ix->lock, NULL);
    atomic_init(&ix->dirty_head, NULL);
    return ix;
}

void kw_index_free(kw_index_t *ix)
{
    if (ix == NULL)
        return;
    for (size_t i = 0; i < ix->keys.cap; i++)
        free(ix->keys.slots[i]);
    for (size_t i = 0; i < ix->creds.cap; i++) {
        kw_iholder_t *h = ix->creds.slots[i];
        if (h) {
            kw_icred_release(h->cur);
            free(h);
        }
    }
    free(ix->keys.slots);
    free(ix->creds.slots);
    while (ix->policies) {
        kw_ipolicy_t *p = ix->policies;
        ix->policies = p->next;
        free(p);
    }
    pthread_rwlock_destroy(&ix->lock);
    free(ix);
}

/* Find or create the policy holder (caller holds the write lock). */
static kw_ipolicy_t *policy_holder(kw_index_t *ix, const char *name)
{
    for (kw_ipolicy_t *p = ix->policies; p; p = p->next)
        if (strcmp(p->name, name) == 0)
            return p;
    kw_ipolicy_t *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    snprintf(p->name, sizeof(p->name), "%s", name);
    atomic_init(&p->warn_window, 0);
    p->next = ix->policies;
    ix->policies = p;
    return p;
}

int kw_index_put_policy(kw_index_t *ix, const char *name, int64_t warn_window)
{
    pthread_rwlock_wrlock(&ix->lock);
    kw_ipolicy_t *p = policy_holder(ix, name);
    if (p)
        atomic_store(&p->warn_window, warn_window);
    pthread_rwlock_unlock(&ix->lock);
    return p ? 0 : KW_ENOMEM;
}

int kw_index_put_cred(kw_index_t *ix, const kw_cred_t *c, int64_t warn_window)
{
    kw_icred_t *snap = NULL;
    int rc = icred_build(c, warn_window, &snap);
    if (rc)
        return rc;
    pthread_rwlock_wrlock(&ix->lock);
    snap->policy = policy_holder(ix, c->policy[0] ? c->policy : "default");
    if (snap->policy == NULL) {
        rc = KW_ENOMEM;
        goto out;
    }
    atomic_store(&snap->policy->warn_window, warn_window);
    kw_iholder_t *h = find_holder(ix, c->id);
    if (h == NULL) {
        h = calloc(1, sizeof(*h));
        if (h == NULL) {
            rc = KW_ENOMEM;
            goto out;
        }
        snprintf(h->id, sizeof(h->id), "%s", c->id);
        if ((rc = ptab_insert(&ix->creds, h, holder_hash)) != 0) {
            free(h);
            goto out;
        }
    }
    kw_icred_t *old = h->cur;
    h->cur = snap;
    snap = NULL;
    kw_icred_release(old);
out:
    pthread_rwlock_unlock(&ix->lock);
    kw_icred_release(snap);
    return rc;
}

int kw_index_put_key(kw_index_t *ix, const kw_keyrec_t *k)
{
    int rc = 0;
    pthread_rwlock_wrlock(&ix->lock);
    kw_ientry_t *e = find_entry(ix, k->digest);
    if (e == NULL) {
        kw_iholder_t *h = find_holder(ix, k->cred_id);
        if (h == NULL) {
            rc = KW_ENOTFOUND;
            goto out;
        }
        if ((e = calloc(1, sizeof(*e))) == NULL) {
            rc = KW_ENOMEM;
            goto out;
        }
        memcpy(e->digest, k->digest, KW_DIGEST_LEN);
        snprintf(e->key_id, sizeof(e->key_id), "%s", k->id);
        e->holder = h;
        atomic_init(&e->uses, 0);
        atomic_init(&e->last_used, k->last_used_at);
        atomic_init(&e->dirty, 0);
        if ((rc = ptab_insert(&ix->keys, e, entry_hash)) != 0) {
            free(e);
            goto out;
        }
    }
    e->slot = k->slot;
    e->expires_at = k->expires_at;
    e->revoked_at = k->revoked_at;
out:
    pthread_rwlock_unlock(&ix->lock);
    return rc;
}

/* ---- verify ---- */

static void count_use(kw_index_t *ix, kw_ientry_t *e, int64_t now)
{
    atomic_fetch_add_explicit(&e->uses, 1, memory_order_relaxed);
    atomic_store_explicit(&e->last_used, now, memory_order_relaxed);
    if (atomic_exchange(&e->dirty, 1) == 0) {
        kw_ientry_t *old = atomic_load(&ix->dirty_head);
        do {
            e->next_dirty = old;
        } while (!atomic_compare_exchange_weak(&ix->dirty_head, &old, e));
    }
}

void kw_index_verify(kw_index_t *ix, const kw_verify_req_t *rq, kw_verify_res_t *res)
{
    uint8_t d[KW_DIGEST_LEN];
    memset(res, 0, sizeof(*res));

    if (kw_key_check(rq->key, rq->key_len, NULL) != 0 ||
        kw_key_digest(rq->key, rq->key_len, d) != 0) {
        res->code = KW_V_MALFORMED;
        return;
    }

    pthread_rwlock_rdlock(&ix->lock);
    kw_ientry_t *e = find_entry(ix, d);
    if (e == NULL) {
        pthread_rwlock_unlock(&ix->lock);
        res->code = KW_V_NOT_FOUND;
        return;
    }
    memcpy(res->key_id, e->key_id, sizeof(res->key_id));
    res->slot = e->slot;
    res->expires_at = e->expires_at;
    kw_icred_t *c = e->holder->cur;
    atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
    res->cred = c;
    int revoked = e->revoked_at != 0;
    int expired = e->expires_at != 0 && e->expires_at <= rq->now;
    if (!revoked && !expired)
        count_use(ix, e, rq->now);
    pthread_rwlock_unlock(&ix->lock);

    if (revoked) {
        res->code = KW_V_REVOKED;
        return;
    }
    if (expired) {
        res->code = KW_V_EXPIRED;
        return;
    }
    int64_t ww = atomic_load_explicit(&c->policy->warn_window, memory_order_relaxed);
    res->warn = res->expires_at != 0 && ww > 0 && res->expires_at - rq->now <= ww;
    if (c->disabled) {
        res->code = KW_V_DISABLED;
        return;
    }
    if (c->ncidrs > 0) {
        int ok = 0;
        for (size_t i = 0; rq->ip && i < c->ncidrs && !ok; i++)
            ok = kw_cidr_match(&c->cidrs[i], rq->ip);
        if (!ok) {
            res->code = KW_V_FORBIDDEN_IP;
            return;
        }
    }
    if (rq->scope && rq->scope_len > 0) {
        int ok = 0;
        for (size_t i = 0; i < c->nscopes && !ok; i++)
            ok = strlen(c->scopes[i]) == rq->scope_len &&
                 memcmp(c->scopes[i], rq->scope, rq->scope_len) == 0;
        if (!ok) {
            res->code = KW_V_FORBIDDEN_SCOPE;
            return;
        }
    }
    res->code = KW_V_VALID;
}

void kw_verify_res_release(kw_verify_res_t *res)
{
    if (res && res->cred) {
        kw_icred_release(res->cred);
        res->cred = NULL;
    }
}

/* ---- usage ---- */

void kw_index_pending_usage(kw_index_t *ix, const uint8_t digest[KW_DIGEST_LEN],
                            int64_t *pending, int64_t *last_used)
{
    *pending = 0;
    *last_used = 0;
    pthread_rwlock_rdlock(&ix->lock);
    kw_ientry_t *e = find_entry(ix, digest);
    if (e) {
        *pending = atomic_load(&e->uses);
        *last_used = atomic_load(&e->last_used);
    }
    pthread_rwlock_unlock(&ix->lock);
}

int kw_index_drain_usage(kw_index_t *ix, kw_usage_t **out, size_t *n)
{
    size_t cap = 64, len = 0;
    kw_usage_t *u = malloc(cap * sizeof(*u));
    if (u == NULL)
        return KW_ENOMEM;

    pthread_rwlock_rdlock(&ix->lock);
    kw_ientry_t *e = atomic_exchange(&ix->dirty_head, NULL);
    while (e) {
        kw_ientry_t *next = e->next_dirty; /* read before clearing: a verifier may re-push */
        atomic_store(&e->dirty, 0);
        int64_t uses = atomic_exchange(&e->uses, 0);
        if (uses > 0) {
            if (len == cap) {
                kw_usage_t *nu = realloc(u, cap * 2 * sizeof(*u));
                if (nu == NULL) {
                    /* keep the count in the index; it is drained next time */
                    atomic_fetch_add(&e->uses, uses);
                    if (atomic_exchange(&e->dirty, 1) == 0) {
                        kw_ientry_t *old = atomic_load(&ix->dirty_head);
                        do {
                            e->next_dirty = old;
                        } while (!atomic_compare_exchange_weak(&ix->dirty_head, &old, e));
                    }
                    e = next;
                    continue;
                }
                u = nu;
                cap *= 2;
            }
            memcpy(u[len].key_id, e->key_id, sizeof(u[len].key_id));
            memcpy(u[len].digest, e->digest, KW_DIGEST_LEN);
            u[len].delta = uses;
            u[len].last_used = atomic_load(&e->last_used);
            len++;
        }
        e = next;
    }
    pthread_rwlock_unlock(&ix->lock);
    *out = u;
    *n = len;
    return 0;
}

void kw_index_restore_usage(kw_index_t *ix, const kw_usage_t *u, size_t n)
{
    pthread_rwlock_rdlock(&ix->lock);
    for (size_t i = 0; i < n; i++) {
        kw_ientry_t *e = find_entry(ix, u[i].digest);
        if (e == NULL)
            continue;
        atomic_fetch_add(&e->uses, u[i].delta);
        if (atomic_exchange(&e->dirty, 1) == 0) {
            kw_ientry_t *old = atomic_load(&ix->dirty_head);
            do {
                e->next_dirty = old;
            } while (!atomic_compare_exchange_weak(&ix->dirty_head, &old, e));
        }
    }
    pthread_rwlock_unlock(&ix->lock);
}

size_t kw_index_purge(kw_index_t *ix, int64_t retain_since)
{
    size_t dropped = 0;
    pthread_rwlock_wrlock(&ix->lock);
    for (size_t i = 0; i < ix->keys.cap;) {
        kw_ientry_t *e = ix->keys.slots[i];
        int old = e && ((e->revoked_at && e->revoked_at < retain_since) ||
                        (e->expires_at && e->expires_at < retain_since));
        if (old && atomic_load(&e->dirty) == 0) {
            ptab_remove_at(&ix->keys, i, entry_hash);
            free(e);
            dropped++;
            continue; /* slot i now holds a shifted entry (or NULL): look again */
        }
        i++;
    }
    pthread_rwlock_unlock(&ix->lock);
    return dropped;
}

size_t kw_index_count(kw_index_t *ix)
{
    pthread_rwlock_rdlock(&ix->lock);
    size_t n = ix->keys.len;
    pthread_rwlock_unlock(&ix->lock);
    return n;
}
