/* index.c - the in-memory verification index: open addressing on the key digest,
 * immutable credential snapshots, and a read path that never waits for writers. This file:
 * entries, the key table, the index's life, put_key and verify (the rest: index_impl.h).
 *
 * Layout: the table's slots are 64-bit words, (32-bit digest tag << 32) | entry ref, so a
 * probe that misses or collides never touches an entry. Entries live in slabs of
 * KW_SLAB entries (one allocation each) and are named by a 32-bit ref (index + 1). Each
 * entry points straight at its credential's current snapshot; a writer replacing a
 * snapshot walks the credential's entry list and repoints them, and copies into each the
 * facts a verify needs (disabled, has-CIDRs, policy index). A verify therefore reads the
 * slot and the entry (two adjacent lines); the snapshot only for CIDRs or a scope.
 *
 * Concurrency: writers (lifecycle, load, purge, usage drain) are serialized by one mutex.
 * Verifiers take no lock: they announce themselves in a striped counter of the current
 * epoch parity, read the published table with acquire loads, and leave when the caller
 * releases the result. Anything a writer unpublishes (a grown table array, a replaced
 * credential snapshot, a purged entry) is freed or recycled only after a grace period: the
 * writer flips the epoch and waits until no verifier of the old parity is left (see
 * docs/internals/verification.md).
 *
 * Must not: touch the store, allocate on the verify path, or make a verifier wait. */
#include "index.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "index_impl.h"
#include "key.h"

/* ---- verify codes ---- */

const char *kw_verify_code_name(kw_verify_code_t c)
{
    switch (c) {
#define KW__N(name, http, msg)                                                                     \
    case KW_V_##name:                                                                              \
        return #name;
        KW_VERIFY_CODES(KW__N)
#undef KW__N
    }
    return "UNKNOWN";
}

int kw_verify_http_status(kw_verify_code_t c)
{
    switch (c) {
#define KW__H(name, http, msg)                                                                     \
    case KW_V_##name:                                                                              \
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

/* ---- entries (writers only) ---- */

/* Ask for transparent huge pages over the 2 MiB-aligned part of [p, p + n): random
 * probes over a large index then miss the TLB far less often. Advice only. */
static void advise_huge(void *p, size_t n)
{
#ifdef MADV_HUGEPAGE
    uintptr_t lo = ((uintptr_t)p + KW_HUGE - 1) & ~(uintptr_t)(KW_HUGE - 1);
    uintptr_t hi = ((uintptr_t)p + n) & ~(uintptr_t)(KW_HUGE - 1);
    if (hi > lo)
        (void)madvise((void *)lo, hi - lo, MADV_HUGEPAGE);
#else
    (void)p;
    (void)n;
#endif
}

/* A slab: KW_SLAB_BYTES on a KW_HUGE boundary, mapped directly (no allocator padding),
 * not touched until used. Freed by slab_free. */
static void *slab_alloc(void)
{
    size_t n = KW_SLAB_BYTES + KW_HUGE;
    char *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    char *q = (char *)(((uintptr_t)p + KW_HUGE - 1) & ~(uintptr_t)(KW_HUGE - 1));
    if (q > p)
        munmap(p, (size_t)(q - p));
    if (q + KW_SLAB_BYTES < p + n)
        munmap(q + KW_SLAB_BYTES, (size_t)(p + n - (q + KW_SLAB_BYTES)));
    advise_huge(q, KW_SLAB_BYTES);
    return q;
}

static void slab_free(void *p)
{
    if (p)
        munmap(p, KW_SLAB_BYTES);
}

/* A zeroed entry from the free list or the slabs (its ref in *ref), or NULL. */
static kw_ientry_t *entry_alloc(kw_index_t *ix, uint32_t *refp)
{
    uint32_t ref;
    if (ix->free_ref) {
        ref = ix->free_ref;
        ix->free_ref = ent(ix, ref)->next_sib;
    } else {
        uint32_t i = ix->nalloc;
        if ((i >> KW_SLAB_BITS) >= KW_MAX_SLABS)
            return NULL;
        if ((i & (KW_SLAB - 1)) == 0 && ix->slabs[i >> KW_SLAB_BITS] == NULL) {
            kw_islab_side_t *sd = calloc(1, sizeof(*sd));
            kw_ientry_t *s = sd ? slab_alloc() : NULL;
            if (s == NULL) {
                free(sd);
                return NULL;
            }
            /* readers see both through a slot's release */
            ix->sides[i >> KW_SLAB_BITS] = sd;
            ix->slabs[i >> KW_SLAB_BITS] = s;
        }
        ix->nalloc++;
        ref = i + 1;
    }
    kw_ientry_t *e = ent(ix, ref);
    memset(e, 0, sizeof(*e)); /* zero bytes are zero atomics on every target we build */
    atomic_store_explicit(&side(ix, ref)->drained[SIDE_I(ref)], 0, memory_order_relaxed);
    *refp = ref;
    return e;
}

/* Recycle an entry no verifier can reach any more (after a grace period, drained). */
void kw__entry_free(kw_index_t *ix, kw_ientry_t *e, uint32_t ref)
{
    if (atomic_load_explicit(&e->cflags, memory_order_relaxed) & KW_EF_HEAPID) {
        free((char *)key_id_of(e));
        atomic_fetch_and_explicit(&e->cflags, (uint8_t)~KW_EF_HEAPID, memory_order_relaxed);
    }
    atomic_store_explicit(&e->cred, NULL, memory_order_relaxed); /* kw_index_walk skips it */
    e->next_sib = ix->free_ref;
    ix->free_ref = ref;
}

/* ---- the key table (read lock-free) ---- */

kw_ktab_t *kw__ktab_new(size_t cap)
{
    size_t n = sizeof(kw_ktab_t) + cap * sizeof(uint64_t);
    kw_ktab_t *t = calloc(1, n);
    if (t) {
        t->cap = cap;
        if (n >= 2 * KW_HUGE)
            advise_huge(t, n);
    }
    return t;
}

/* Place entry ref in t, which is not yet published (no ordering needed). */
void kw__ktab_place(const kw_index_t *ix, kw_ktab_t *t, uint32_t ref)
{
    const uint8_t *d = ent(ix, ref)->digest;
    size_t mask = t->cap - 1;
    size_t j = hash_digest(d) & mask;
    while (atomic_load_explicit(&t->slots[j], memory_order_relaxed))
        j = (j + 1) & mask;
    atomic_store_explicit(&t->slots[j], tag_digest(d) | ref, memory_order_relaxed);
}

/* Publish a copy of the table with capacity cap (caller holds wmu); the old array is
 * retired. Returns 0 or KW_ENOMEM (index unchanged). */
static int ktab_rebuild(kw_index_t *ix, size_t cap)
{
    kw_ktab_t *t = cur_tab(ix);
    kw_ktab_t *nt = kw__ktab_new(cap);
    if (nt == NULL)
        return KW_ENOMEM;
    for (size_t i = 0; i < t->cap; i++) {
        uint64_t v = atomic_load_explicit(&t->slots[i], memory_order_relaxed);
        if (v)
            kw__ktab_place(ix, nt, (uint32_t)v);
    }
    atomic_store_explicit(&ix->keys, nt, memory_order_release);
    kw__ix_retire(ix, free, t);
    return 0;
}

/* Insert a new, fully initialized entry (caller holds wmu). On growth the new array is
 * published whole and the old one retired. Returns 0 or KW_ENOMEM (index unchanged). */
static int ktab_insert(kw_index_t *ix, const kw_ientry_t *e, uint32_t ref)
{
    size_t n = atomic_load_explicit(&ix->nkeys, memory_order_relaxed);
    if ((n + 1) * 2 > cur_tab(ix)->cap && ktab_rebuild(ix, cur_tab(ix)->cap * 2) != 0)
        return KW_ENOMEM;
    kw_ktab_t *t = cur_tab(ix);
    size_t mask = t->cap - 1;
    size_t j = hash_digest(e->digest) & mask;
    while (atomic_load_explicit(&t->slots[j], memory_order_relaxed))
        j = (j + 1) & mask;
    /* publishes *e */
    atomic_store_explicit(&t->slots[j], tag_digest(e->digest) | ref, memory_order_release);
    atomic_store_explicit(&ix->nkeys, n + 1, memory_order_relaxed);
    return 0;
}
/* ---- lifecycle ---- */

/* The key table capacity for n keys: a power of two, load <= 1/2. */
static size_t ktab_cap_for(size_t n)
{
    size_t cap = 16;
    while (cap < n * 2)
        cap <<= 1;
    return cap;
}

kw_index_t *kw_index_new(size_t expected)
{
    kw__ix_grace_once();
    kw_index_t *ix = calloc(1, sizeof(*ix));
    if (ix == NULL)
        return NULL;
    kw_ktab_t *t = kw__ktab_new(ktab_cap_for(expected));
    if (t == NULL || kw__ptab_init(&ix->creds, expected / 2 + 8)) {
        free(t);
        free(ix);
        return NULL;
    }
    atomic_init(&ix->keys, t);
    atomic_init(&ix->nkeys, 0);
    pthread_mutex_init(&ix->wmu, NULL);
    return ix;
}

int kw_index_reserve(kw_index_t *ix, size_t keys, size_t creds)
{
    int rc = 0;
    pthread_mutex_lock(&ix->wmu);
    size_t kc = ktab_cap_for(keys);
    if (kc > cur_tab(ix)->cap) {
        rc = ktab_rebuild(ix, kc);
        if (rc == 0)
            kw__ix_reclaim(ix); /* the old array goes now, not at the next drain */
    }
    if (rc == 0 && kw__ptab_cap_for(creds) > ix->creds.cap)
        rc = kw__ptab_resize(&ix->creds, creds, kw__cred_hash);
    pthread_mutex_unlock(&ix->wmu);
    return rc;
}

void kw_index_free(kw_index_t *ix)
{
    if (ix == NULL)
        return;
    kw__ix_reclaim(ix); /* no other thread uses ix any more: wmu is not needed */
    free(cur_tab(ix));
    for (uint32_t r = 1; r <= ix->nalloc; r++) /* free and purged entries have no heap id */
        if (atomic_load_explicit(&ent(ix, r)->cflags, memory_order_relaxed) & KW_EF_HEAPID)
            free((char *)key_id_of(ent(ix, r)));
    for (size_t i = 0; i < KW_MAX_SLABS && ix->slabs[i]; i++) {
        slab_free(ix->slabs[i]);
        free(ix->sides[i]);
    }
    kw__creds_free(ix);
    pthread_mutex_destroy(&ix->wmu);
    free(ix);
}

/* Copy key id `id` into a new entry: inline when it fits, else on the heap. */
static int entry_set_id(kw_ientry_t *e, const char *id)
{
    size_t n = strnlen(id, KW_ID_MAX - 1);
    if (n < KW_KEY_ID_INLINE) {
        memcpy(e->key_id, id, n);
        e->key_id[n] = '\0';
        return 0;
    }
    char *p = malloc(n + 1);
    if (p == NULL)
        return KW_ENOMEM;
    memcpy(p, id, n);
    p[n] = '\0';
    memset(e->key_id, 0, sizeof(e->key_id));
    memcpy(e->key_id + 8, &p, sizeof(p));
    atomic_fetch_or_explicit(&e->cflags, KW_EF_HEAPID, memory_order_relaxed);
    return 0;
}

/* kw_index_put_key with wmu held */
static int put_key_locked(kw_index_t *ix, const kw_keyrec_t *k)
{
    int rc = 0;
    uint32_t ref;
    kw_ientry_t *e = ktab_find(ix, cur_tab(ix), k->digest, &ref);
    if (e == NULL) {
        kw_icred_t *c = kw__find_cred(ix, k->cred_id);
        if (c == NULL) {
            rc = KW_ENOTFOUND;
            goto out;
        }
        if ((e = entry_alloc(ix, &ref)) == NULL) {
            rc = KW_ENOMEM;
            goto out;
        }
        memcpy(e->digest, k->digest, KW_DIGEST_LEN);
        if ((rc = entry_set_id(e, k->id)) != 0) {
            kw__entry_free(ix, e, ref);
            goto out;
        }
        atomic_init(&e->cred, c);
        atomic_init(&e->cflags, (uint8_t)(snap_flags(c) | atomic_load(&e->cflags)));
        atomic_init(&e->policy, (uint8_t)c->policy->idx);
        atomic_init(&e->slot, (uint8_t)k->slot);
        atomic_init(&e->expires_at, k->expires_at);
        atomic_init(&e->revoked_at, t32(k->revoked_at));
        atomic_init(&e->last_used, t32(k->last_used_at));
        if ((rc = ktab_insert(ix, e, ref)) != 0) {
            kw__entry_free(ix, e, ref); /* never published */
            goto out;
        }
        e->next_sib = c->first;
        c->first = ref;
        goto out;
    }
    /* Each field is updated on its own: a verifier racing with this sees every field
     * either before or after, which is the same answer as just before or just after. */
    atomic_store_explicit(&e->slot, (uint8_t)k->slot, memory_order_relaxed);
    atomic_store_explicit(&e->expires_at, k->expires_at, memory_order_relaxed);
    atomic_store_explicit(&e->revoked_at, t32(k->revoked_at), memory_order_release);
out:
    return rc;
}

int kw_index_put_key(kw_index_t *ix, const kw_keyrec_t *k)
{
    pthread_mutex_lock(&ix->wmu);
    int rc = put_key_locked(ix, k);
    pthread_mutex_unlock(&ix->wmu);
    return rc;
}

int kw_index_put_keys(kw_index_t *ix, const kw_keyrec_t *keys, size_t n, size_t *added)
{
    int rc = 0;
    *added = 0;
    pthread_mutex_lock(&ix->wmu);
    const kw_ktab_t *t = cur_tab(ix);
    for (size_t i = 0; i < n; i++) { /* the slots of the key and credential tables */
        __builtin_prefetch(&t->slots[hash_digest(keys[i].digest) & (t->cap - 1)]);
        kw__prefetch_cred(ix, keys[i].cred_id, 0);
    }
    for (size_t i = 0; i < n; i++) /* then the credentials those slots point at */
        kw__prefetch_cred(ix, keys[i].cred_id, 1);
    for (size_t i = 0; i < n && (rc == 0 || rc == KW_ENOTFOUND); i++)
        if ((rc = put_key_locked(ix, &keys[i])) == 0)
            (*added)++;
    pthread_mutex_unlock(&ix->wmu);
    return rc == KW_ENOTFOUND ? 0 : rc;
}

/* Count one use: one atomic add to the entry's counter (the only locked instruction of a
 * verify: every answered use must reach the store - test_restart counts them across a
 * SIGTERM under load), a store of the time when it changed, and a store marking the entry
 * in its slab's dirty bytes. Only verifiers write `uses` and only drains write `drained`
 * and clear dirty bytes. The dirty byte is stored after the count, unconditionally: a
 * drain that clears it (an atomic exchange) then reads the count sees this use, or the
 * byte stays set for the next drain. */
static inline void count_use(kw_index_t *ix, kw_ientry_t *e, uint32_t ref, int64_t now)
{
    atomic_fetch_add_explicit(&e->uses, 1, memory_order_relaxed);
    uint32_t t = t32(now);
    if (atomic_load_explicit(&e->last_used, memory_order_relaxed) != t)
        atomic_store_explicit(&e->last_used, t, memory_order_relaxed);
    atomic_store_explicit(&side(ix, ref)->dirty[SIDE_I(ref)], 1, memory_order_release);
}

/* The verify after the digest: count = 0 counts no use (a token past its own expiry). */
static inline void verify_digest(kw_index_t *ix, const uint8_t *d, const kw_verify_req_t *rq,
                                 int count, kw_verify_res_t *res)
{
    kw__read_enter();
    uint32_t ref;
    kw_ientry_t *e = ktab_find(ix, cur_tab(ix), d, &ref);
    if (e == NULL) {
        kw__read_exit();
        res->code = KW_V_NOT_FOUND;
        return;
    }
    /* the read section lasts until kw_verify_res_release: e and c stay valid */
    res->ix_ = ix;
    uint32_t revoked_at = atomic_load_explicit(&e->revoked_at, memory_order_acquire);
    res->expires_at = atomic_load_explicit(&e->expires_at, memory_order_relaxed);
    const kw_icred_t *c = atomic_load_explicit(&e->cred, memory_order_acquire);
    /* the handler reads the snapshot (credential id, scopes) next: start that miss now */
    __builtin_prefetch(c);
    res->cred = c;
    res->key_id = key_id_of(e);
    res->slot = atomic_load_explicit(&e->slot, memory_order_relaxed);
    int revoked = revoked_at != 0;
    int expired = res->expires_at != 0 && res->expires_at <= rq->now;
    if (revoked) {
        res->code = KW_V_REVOKED;
        return;
    }
    if (expired) {
        res->code = KW_V_EXPIRED;
        return;
    }
    if (count)
        count_use(ix, e, ref, rq->now);
    unsigned flags = atomic_load_explicit(&e->cflags, memory_order_acquire);
    if (res->expires_at != 0) {
        unsigned pi = atomic_load_explicit(&e->policy, memory_order_acquire);
        const kw_ipolicy_t *p =
            pi ? atomic_load_explicit(&ix->pols[pi], memory_order_acquire) : c->policy;
        int64_t ww = atomic_load_explicit(&p->warn_window, memory_order_relaxed);
        res->warn = ww > 0 && res->expires_at - rq->now <= ww;
    }
    if (flags & KW_EF_DISABLED) {
        res->code = KW_V_DISABLED;
        return;
    }
    if (flags & KW_EF_CIDRS) {
        const kw_ifacts_t *f = c->facts; /* shared: usually in cache */
        int ok = 0;
        for (size_t i = 0; rq->ip && i < f->ncidrs && !ok; i++)
            ok = kw_cidr_match(&f->cidrs[i], rq->ip);
        if (!ok) {
            res->code = KW_V_FORBIDDEN_IP;
            return;
        }
    }
    if (rq->scope && rq->scope_len > 0) {
        const kw_ifacts_t *f = c->facts;
        int ok = 0;
        for (size_t i = 0; i < f->nscopes && !ok; i++)
            ok = strlen(f->scopes[i]) == rq->scope_len &&
                 memcmp(f->scopes[i], rq->scope, rq->scope_len) == 0;
        if (!ok) {
            res->code = KW_V_FORBIDDEN_SCOPE;
            return;
        }
    }
    res->code = KW_V_VALID;
}

void kw_index_verify(kw_index_t *ix, const kw_verify_req_t *rq, kw_verify_res_t *res)
{
    uint8_t d[KW_DIGEST_LEN];
    memset(res, 0, sizeof(*res));
    res->key_id = "";

    if (kw_key_check(rq->key, rq->key_len, NULL) != 0 ||
        kw_key_digest(rq->key, rq->key_len, d) != 0) {
        res->code = KW_V_MALFORMED;
        return;
    }
    verify_digest(ix, d, rq, 1, res);
}

void kw_index_verify_digest(kw_index_t *ix, const uint8_t digest[KW_DIGEST_LEN],
                            const kw_verify_req_t *rq, int count, kw_verify_res_t *res)
{
    memset(res, 0, sizeof(*res));
    res->key_id = "";
    verify_digest(ix, digest, rq, count, res);
}

void kw_verify_res_release(kw_verify_res_t *res)
{
    if (res && res->ix_) {
        kw__read_exit();
        res->ix_ = NULL;
        res->cred = NULL;
        res->key_id = "";
    }
}
