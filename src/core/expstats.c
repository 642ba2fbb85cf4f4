/* expstats.c - expiry figures for /metrics from a walk of the index (see expstats.h).
 * Pure counting and selection; must not do I/O or read the clock. */
#include "expstats.h"

#include <stdlib.h>
#include <string.h>

static const char *const bucket_names[KW_EXPB_N] = {
#define KW__B(name, label, secs) label,
    KW_EXP_BUCKETS(KW__B)
#undef KW__B
};
static const int64_t bucket_secs[KW_EXPB_N] = {
#define KW__B(name, label, secs) secs,
    KW_EXP_BUCKETS(KW__B)
#undef KW__B
};

const char *kw_expstats_bucket_name(int b)
{
    return b >= 0 && b < KW_EXPB_N ? bucket_names[b] : "";
}

void kw_expstats_init(kw_expstats_t *st, int64_t now, size_t cap, const int64_t *windows,
                      size_t nwindows)
{
    memset(st, 0, sizeof(*st));
    st->now = now;
    st->cap = cap;
    for (size_t i = 0; i < nwindows && st->nwindows < KW_EXP_WINDOWS; i++) {
        int seen = windows[i] <= 0;
        for (size_t j = 0; j < st->nwindows && !seen; j++)
            seen = st->window[j] == windows[i];
        if (!seen)
            st->window[st->nwindows++] = windows[i];
    }
}

static kw_expstats_pol_t *pol_find(kw_expstats_t *st, const char *name);

static kw_expstats_pol_t *pol_of(kw_expstats_t *st, const char *name)
{
    name = name ? name : "";
    /* keys come in runs of the same policy: try the previous one before searching */
    if (st->last_pol_ && strcmp(st->last_pol_->name, name) == 0)
        return st->last_pol_;
    st->last_pol_ = pol_find(st, name);
    return st->last_pol_;
}

static kw_expstats_pol_t *pol_find(kw_expstats_t *st, const char *name)
{
    for (size_t i = 0; i < st->npols; i++)
        if (strcmp(st->pols[i].name, name) == 0)
            return &st->pols[i];
    if (st->npols == KW_EXP_POLICIES) /* the last slot sums the rest, under "" */
        return &st->pols[KW_EXP_POLICIES - 1];
    kw_expstats_pol_t *p = &st->pols[st->npols++];
    size_t n = strlen(name);
    n = n < sizeof(p->name) - 1 ? n : sizeof(p->name) - 1;
    memcpy(p->name, name, n);
    p->name[n] = '\0';
    if (st->npols == KW_EXP_POLICIES)
        p->name[0] = '\0';
    return p;
}

static uint64_t hash_id(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a, then a finaliser (FNV's top bits cluster) */
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ULL;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

static void copy_id(char out[KW_ID_MAX], const char *id)
{
    size_t n = strnlen(id, KW_ID_MAX - 1);
    memcpy(out, id, n);
    out[n] = '\0';
}

static void heap_swap(kw_expstats_cred_t *a, kw_expstats_cred_t *b)
{
    kw_expstats_cred_t t = *a;
    *a = *b;
    *b = t;
}

/* Keep the 2*cap soonest attention keys in a max-heap on expires_at: a credential has at
 * most two usable keys, so they hold the cap soonest credentials. */
static void heap_offer(kw_expstats_t *st, const char *id, int64_t exp)
{
    size_t lim = st->cap * 2;
    if (lim == 0)
        return;
    if (st->heap_ == NULL) {
        st->heap_ = malloc(lim * sizeof(*st->heap_));
        if (st->heap_ == NULL) {
            st->oom = 1;
            return;
        }
    }
    kw_expstats_cred_t *h = st->heap_;
    size_t i;
    if (st->nheap_ < lim) {
        i = st->nheap_++;
    } else if (exp < h[0].expires_at) {
        /* replace the latest, sift down */
        i = 0;
        for (;;) {
            size_t l = 2 * i + 1, r = l + 1, m = i;
            int64_t mv = exp;
            if (l < st->nheap_ && h[l].expires_at > mv)
                m = l, mv = h[l].expires_at;
            if (r < st->nheap_ && h[r].expires_at > mv)
                m = r;
            if (m == i)
                break;
            h[i] = h[m];
            i = m;
        }
        h[i].expires_at = exp;
        copy_id(h[i].id, id);
        return;
    } else {
        return;
    }
    h[i].expires_at = exp;
    copy_id(h[i].id, id);
    while (i > 0 && h[(i - 1) / 2].expires_at < h[i].expires_at) {
        heap_swap(&h[(i - 1) / 2], &h[i]);
        i = (i - 1) / 2;
    }
}

void kw_expstats_add(kw_expstats_t *st, const char *cred_id, const char *policy,
                     int64_t warn_window, int64_t expires_at, int revoked)
{
    kw_expstats_pol_t *p = pol_of(st, policy);
    if (revoked) {
        st->revoked++;
        p->revoked++;
        return;
    }
    if (expires_at != 0 && expires_at <= st->now) {
        st->expired++;
        p->expired++;
        st->bucket[KW_EXPB_EXPIRED]++;
        return;
    }
    st->active++;
    p->active++;
    if (expires_at == 0) {
        st->bucket[KW_EXPB_NEVER]++;
        return;
    }
    int64_t left = expires_at - st->now;
    int b = KW_EXPB_D1;
    while (b < KW_EXPB_LATER && left > bucket_secs[b])
        b++;
    st->bucket[b]++;
    for (size_t i = 0; i < st->nwindows; i++)
        st->expiring[i] += left <= st->window[i];
    if (warn_window <= 0 || left > warn_window)
        return;
    st->attention_keys++;
    if (st->nhash_ == st->hashcap_) {
        size_t nc = st->hashcap_ ? st->hashcap_ * 2 : 1024;
        uint64_t *nh = realloc(st->hashes_, nc * sizeof(*nh));
        if (nh == NULL) {
            st->oom = 1;
            return;
        }
        st->hashes_ = nh;
        st->hashcap_ = nc;
    }
    st->hashes_[st->nhash_++] = hash_id(cred_id);
    heap_offer(st, cred_id, expires_at);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int cmp_cred(const void *a, const void *b)
{
    const kw_expstats_cred_t *x = a, *y = b;
    if (x->expires_at != y->expires_at)
        return x->expires_at < y->expires_at ? -1 : 1;
    return strcmp(x->id, y->id);
}

void kw_expstats_finish(kw_expstats_t *st)
{
    if (st->nhash_ > 0) {
        qsort(st->hashes_, st->nhash_, sizeof(uint64_t), cmp_u64);
        size_t d = 1;
        for (size_t i = 1; i < st->nhash_; i++)
            d += st->hashes_[i] != st->hashes_[i - 1];
        st->attention_creds = d;
    }
    free(st->hashes_);
    st->hashes_ = NULL;
    st->nhash_ = st->hashcap_ = 0;
    /* soonest first; a credential's second key comes after its first and is dropped */
    if (st->nheap_ > 1)
        qsort(st->heap_, st->nheap_, sizeof(*st->heap_), cmp_cred);
    size_t n = 0;
    for (size_t i = 0; i < st->nheap_ && n < st->cap; i++) {
        int dup = 0;
        for (size_t j = 0; j < n && !dup; j++)
            dup = strcmp(st->heap_[j].id, st->heap_[i].id) == 0;
        if (!dup)
            st->heap_[n++] = st->heap_[i];
    }
    st->top = st->heap_;
    st->ntop = n;
    st->heap_ = NULL;
    st->nheap_ = 0;
    st->omitted = st->attention_creds > n ? st->attention_creds - n : 0;
}

void kw_expstats_free(kw_expstats_t *st)
{
    free(st->hashes_);
    free(st->heap_);
    free(st->top);
    st->hashes_ = NULL;
    st->heap_ = NULL;
    st->top = NULL;
    st->ntop = st->nheap_ = st->nhash_ = 0;
}
