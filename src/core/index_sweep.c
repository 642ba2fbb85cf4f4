/* index_sweep.c - the index's passes over its entries: usage drain and restore, purge of
 * keys past retention, and the walk for figures. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "index_impl.h"

/* ---- usage ---- */

void kw_index_pending_usage(kw_index_t *ix, const uint8_t digest[KW_DIGEST_LEN], int64_t *pending,
                            int64_t *last_used)
{
    *pending = 0;
    *last_used = 0;
    kw__read_enter();
    uint32_t ref;
    kw_ientry_t *e = ktab_find(ix, cur_tab(ix), digest, &ref);
    if (e) {
        *pending = undrained(ix, e, ref);
        *last_used = atomic_load_explicit(&e->last_used, memory_order_relaxed);
    }
    kw__read_exit();
}

/* Move the recycling of limbo entries on once they hold nothing to drain (caller holds
 * wmu, after a drain pass). */
static void limbo_release(kw_index_t *ix)
{
    uint32_t lim = ix->limbo;
    ix->limbo = 0;
    while (lim) {
        kw_ientry_t *e = ent(ix, lim);
        uint32_t r = lim;
        lim = e->next_sib;
        if (atomic_load(&side(ix, r)->dirty[SIDE_I(r)]) || undrained(ix, e, r)) {
            e->next_sib = ix->limbo;
            ix->limbo = r;
        } else {
            kw__entry_free(ix, e, r);
        }
    }
}

int kw_index_drain_usage(kw_index_t *ix, kw_usage_t **out, size_t *n)
{
    size_t cap = 64, len = 0;
    kw_usage_t *u = malloc(cap * sizeof(*u));
    if (u == NULL)
        return KW_ENOMEM;

    /* Under wmu, so purge cannot recycle an entry this walk still reads. The dirty bytes
     * are scanned eight at a time (1 MB per million keys). */
    pthread_mutex_lock(&ix->wmu);
    for (uint32_t base = 0; base < ix->nalloc; base += KW_SLAB) {
        kw_islab_side_t *sd = ix->sides[base >> KW_SLAB_BITS];
        uint32_t lim = ix->nalloc - base < KW_SLAB ? ix->nalloc - base : KW_SLAB;
        for (uint32_t i = 0; i < lim; i += 8) {
            uint64_t w =
                __atomic_load_n((const uint64_t *)(const void *)&sd->dirty[i], __ATOMIC_RELAXED);
            if (w == 0)
                continue;
            for (uint32_t b = i; b < i + 8 && b < lim; b++) {
                if (atomic_load_explicit(&sd->dirty[b], memory_order_relaxed) == 0 ||
                    atomic_exchange(&sd->dirty[b], 0) == 0)
                    continue;
                uint32_t r = base + b + 1;
                kw_ientry_t *e = ent(ix, r);
                uint32_t now = atomic_load_explicit(&e->uses, memory_order_acquire);
                int32_t delta =
                    (int32_t)(now - atomic_load_explicit(&sd->drained[b], memory_order_relaxed));
                if (delta <= 0)
                    continue;
                if (len == cap) {
                    kw_usage_t *nu = realloc(u, cap * 2 * sizeof(*u));
                    if (nu == NULL) { /* keep the count in the index: drained next time */
                        atomic_store(&sd->dirty[b], 1);
                        continue;
                    }
                    u = nu;
                    cap *= 2;
                }
                snprintf(u[len].key_id, sizeof(u[len].key_id), "%s", key_id_of(e));
                memcpy(u[len].digest, e->digest, KW_DIGEST_LEN);
                u[len].delta = delta;
                u[len].last_used = atomic_load_explicit(&e->last_used, memory_order_relaxed);
                atomic_store_explicit(&sd->drained[b], now, memory_order_relaxed);
                len++;
            }
        }
    }
    limbo_release(ix);
    /* the usage thread calls this every second: it also bounds how long retired
     * snapshots and tables wait for their grace period */
    kw__ix_reclaim(ix);
    pthread_mutex_unlock(&ix->wmu);
    *out = u;
    *n = len;
    return 0;
}

void kw_index_restore_usage(kw_index_t *ix, const kw_usage_t *u, size_t n)
{
    pthread_mutex_lock(&ix->wmu);
    kw_ktab_t *t = cur_tab(ix);
    for (size_t i = 0; i < n; i++) {
        uint32_t ref;
        kw_ientry_t *e = ktab_find(ix, t, u[i].digest, &ref);
        if (e == NULL)
            continue;
        atomic_fetch_sub_explicit(&side(ix, ref)->drained[SIDE_I(ref)], (uint32_t)u[i].delta,
                                  memory_order_relaxed);
        atomic_store(&side(ix, ref)->dirty[SIDE_I(ref)], 1);
    }
    pthread_mutex_unlock(&ix->wmu);
}

static int purgeable(const kw_index_t *ix, uint32_t ref, int64_t retain_since)
{
    const kw_ientry_t *e = ent(ix, ref);
    int64_t r = atomic_load_explicit(&e->revoked_at, memory_order_relaxed);
    int64_t x = atomic_load_explicit(&e->expires_at, memory_order_relaxed);
    return ((r && r < retain_since) || (x && x < retain_since)) &&
           atomic_load(&side(ix, ref)->dirty[SIDE_I(ref)]) == 0 && undrained(ix, e, ref) == 0;
}

/* Drop the entries marked gone from c's entry list (writers only). */
static void unlink_gone(kw_index_t *ix, kw_icred_t *c)
{
    uint32_t *link = &c->first;
    while (*link) {
        kw_ientry_t *e = ent(ix, *link);
        if (atomic_load_explicit(&e->cflags, memory_order_relaxed) & KW_EF_GONE)
            *link = e->next_sib;
        else
            link = &e->next_sib;
    }
}

static int is_gone(const kw_index_t *ix, uint64_t v)
{
    return v &&
           (atomic_load_explicit(&ent(ix, (uint32_t)v)->cflags, memory_order_relaxed) & KW_EF_GONE);
}

size_t kw_index_purge(kw_index_t *ix, int64_t retain_since)
{
    size_t dropped = 0, keep = 0;
    pthread_mutex_lock(&ix->wmu);
    kw_ktab_t *t = cur_tab(ix);
    for (size_t i = 0; i < t->cap; i++) {
        uint64_t v = atomic_load_explicit(&t->slots[i], memory_order_relaxed);
        if (v && purgeable(ix, (uint32_t)v, retain_since))
            dropped++;
    }
    if (dropped == 0)
        goto out;
    /* Readers may be probing t: build the survivors' table beside it and swap. */
    kw_ktab_t *nt = kw__ktab_new(t->cap);
    if (nt == NULL) {
        dropped = 0; /* retried at the next purge */
        goto out;
    }
    uint32_t mark = ++ix->purge_mark ? ix->purge_mark : ++ix->purge_mark;
    for (size_t i = 0; i < t->cap; i++) {
        uint64_t v = atomic_load_explicit(&t->slots[i], memory_order_relaxed);
        if (v == 0)
            continue;
        if (purgeable(ix, (uint32_t)v, retain_since)) {
            atomic_fetch_or_explicit(&ent(ix, (uint32_t)v)->cflags, KW_EF_GONE,
                                     memory_order_relaxed);
        } else {
            kw__ktab_place(ix, nt, (uint32_t)v);
            keep++;
        }
    }
    /* out of their credentials' lists (each touched list is filtered once) */
    uint32_t gone = 0;
    for (size_t i = 0; i < t->cap; i++) {
        uint64_t v = atomic_load_explicit(&t->slots[i], memory_order_relaxed);
        if (!is_gone(ix, v))
            continue;
        kw_icred_t *c = atomic_load_explicit(&ent(ix, (uint32_t)v)->cred, memory_order_relaxed);
        if (c->mark != mark) {
            c->mark = mark;
            unlink_gone(ix, c);
        }
    }
    for (size_t i = 0; i < t->cap; i++) {
        uint64_t v = atomic_load_explicit(&t->slots[i], memory_order_relaxed);
        if (is_gone(ix, v)) {
            ent(ix, (uint32_t)v)->next_sib = gone;
            gone = (uint32_t)v;
        }
    }
    atomic_store_explicit(&ix->keys, nt, memory_order_release);
    atomic_store_explicit(&ix->nkeys, keep, memory_order_relaxed);
    kw__ix_retire(ix, free, t);
    kw__ix_reclaim(ix); /* grace period: no verifier can reach t or gone now */
    /* A verifier that found a gone entry before the swap may have counted a use on it:
     * such entries wait in limbo until a drain has taken the count off. */
    while (gone) {
        uint32_t r = gone;
        kw_ientry_t *e = ent(ix, r);
        gone = e->next_sib;
        e->next_sib = ix->limbo;
        ix->limbo = r;
    }
    limbo_release(ix);
out:
    pthread_mutex_unlock(&ix->wmu);
    return dropped;
}

size_t kw_index_count(kw_index_t *ix)
{
    return atomic_load_explicit(&ix->nkeys, memory_order_relaxed);
}

#define KW_WALK_CHUNK 4096

void kw_index_walk(kw_index_t *ix, kw_index_walk_cb cb, void *ud)
{
    /* Entries in allocation order, slab by slab: sequential memory, not the table's random
     * order. Entries allocated after this copy are not visited; free ones have no
     * credential, purged ones are marked gone. */
    static _Thread_local kw_ientry_t *slabs[KW_MAX_SLABS];
    pthread_mutex_lock(&ix->wmu);
    uint32_t n = ix->nalloc;
    for (uint32_t k = 0; n && k <= (n - 1) >> KW_SLAB_BITS; k++)
        slabs[k] = ix->slabs[k];
    pthread_mutex_unlock(&ix->wmu);
    for (uint32_t i = 0; i < n;) {
        uint32_t end = n - i > KW_WALK_CHUNK ? i + KW_WALK_CHUNK : n;
        kw__read_enter();
        for (; i < end; i++) {
            const kw_ientry_t *e = &slabs[i >> KW_SLAB_BITS][i & (KW_SLAB - 1)];
            const kw_icred_t *c = atomic_load_explicit(&e->cred, memory_order_acquire);
            unsigned flags = atomic_load_explicit(&e->cflags, memory_order_relaxed);
            if (c == NULL || (flags & KW_EF_GONE))
                continue;
            unsigned pi = atomic_load_explicit(&e->policy, memory_order_acquire);
            kw_ikey_view_t k = {
                .cred = c,
                .policy =
                    pi ? atomic_load_explicit(&ix->pols[pi], memory_order_acquire) : c->policy,
                .expires_at = atomic_load_explicit(&e->expires_at, memory_order_relaxed),
                .revoked = atomic_load_explicit(&e->revoked_at, memory_order_relaxed) != 0,
                .disabled = (flags & KW_EF_DISABLED) != 0,
            };
            cb(ud, &k);
        }
        kw__read_exit();
    }
}
