/* index_creds.c - the index's credential side (writers only, under wmu): the table of
 * current snapshots by credential id, scopes and CIDRs shared by text, policies, and
 * kw_index_put_cred, which repoints a credential's entries at its new snapshot. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "index_impl.h"

/* ---- hashing of texts ---- */

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    /* FNV's top bits barely depend on the last characters, and the table position is taken
     * from the top bits (ptab_pos): ids differing at the end would cluster. fmix64 mixes
     * every input bit into every output bit. */
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

uint64_t kw__cred_hash(const void *p)
{
    return hash_str(((const kw_icred_t *)p)->id);
}

/* ---- the creds table (writers only) ---- */

/* h's position in a table of cap slots (any cap): the high half of h * cap. */
static inline size_t ptab_pos(uint64_t h, size_t cap)
{
    return (size_t)(((unsigned __int128)h * cap) >> 64);
}

/* The capacity holding n at load <= 3/4. */
size_t kw__ptab_cap_for(size_t n)
{
    size_t cap = n + n / 3 + 16;
    return cap;
}

int kw__ptab_init(kw_ptab_t *t, size_t expected)
{
    size_t cap = kw__ptab_cap_for(expected);
    t->slots = calloc(cap, sizeof(*t->slots));
    if (t->slots == NULL)
        return KW_ENOMEM;
    t->cap = cap;
    t->len = 0;
    return 0;
}

/* A slot word: the pointer (malloc: 16-byte aligned) with 4 hash bits in its low bits. The
 * word still points inside the allocation, so leak checkers see it as a reference. */
static inline uint64_t pt_word(void *p, uint64_t h)
{
    if ((uintptr_t)p & 15) {
        fputs("keyward: snapshot not 16-byte aligned\n", stderr);
        abort();
    }
    return (uint64_t)(uintptr_t)p | (h & 15);
}

static inline void *pt_ptr(uint64_t w)
{
    return (void *)(uintptr_t)(w & ~(uint64_t)15);
}

/* Rebuild t with room for `want` items (writers only). */
int kw__ptab_resize(kw_ptab_t *t, size_t want, uint64_t (*hash)(const void *))
{
    size_t ncap = kw__ptab_cap_for(want);
    uint64_t *ns = calloc(ncap, sizeof(*ns));
    if (ns == NULL)
        return KW_ENOMEM;
    for (size_t i = 0; i < t->cap; i++) {
        if (t->slots[i] == 0)
            continue;
        size_t j = ptab_pos(hash(pt_ptr(t->slots[i])), ncap);
        while (ns[j])
            j = j + 1 == ncap ? 0 : j + 1;
        ns[j] = t->slots[i];
    }
    free(t->slots);
    t->slots = ns;
    t->cap = ncap;
    return 0;
}

/* Insert p (not present). Keeps load <= 3/4. */
static int ptab_insert(kw_ptab_t *t, void *p, uint64_t (*hash)(const void *))
{
    if ((t->len + 1) * 4 > t->cap * 3 && kw__ptab_resize(t, t->len * 2, hash) != 0)
        return KW_ENOMEM;
    uint64_t h = hash(p);
    size_t j = ptab_pos(h, t->cap);
    while (t->slots[j])
        j = j + 1 == t->cap ? 0 : j + 1;
    t->slots[j] = pt_word(p, h);
    t->len++;
    return 0;
}

/* The slot holding credential id's snapshot, or NULL. Only slots whose 4 hash bits
 * match are dereferenced (each would be a cache miss). */
static uint64_t *find_cred_slot(const kw_index_t *ix, const char *id)
{
    size_t cap = ix->creds.cap;
    uint64_t h = hash_str(id);
    size_t j = ptab_pos(h, cap);
    for (;;) {
        uint64_t w = ix->creds.slots[j];
        if (w == 0)
            return NULL;
        if ((w & 15) == (h & 15) && strcmp(((kw_icred_t *)pt_ptr(w))->id, id) == 0)
            return &ix->creds.slots[j];
        j = j + 1 == cap ? 0 : j + 1;
    }
}

kw_icred_t *kw__find_cred(const kw_index_t *ix, const char *id)
{
    uint64_t *s = find_cred_slot(ix, id);
    return s ? pt_ptr(*s) : NULL;
}

void kw__prefetch_cred(const kw_index_t *ix, const char *id, int stage)
{
    const uint64_t *slot = &ix->creds.slots[ptab_pos(hash_str(id), ix->creds.cap)];
    if (stage == 0)
        __builtin_prefetch(slot);
    else if (*slot)
        __builtin_prefetch(pt_ptr(*slot));
}

/* ---- credential snapshots ----
 *
 * A snapshot (kw_icred_t) is one small allocation: flags, policy, id. Its scopes and CIDRs
 * live in kw_ifacts_t, shared by every snapshot with the same texts and parsed (jansson)
 * once per distinct pair; "[]" is recognized without parsing. */

/* "[]" up to whitespace, or NULL. */
static int is_empty_array(const char *s)
{
    if (s == NULL)
        return 1;
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
        s++;
    if (*s++ != '[')
        return 0;
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
        s++;
    if (*s++ != ']')
        return 0;
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
        s++;
    return *s == '\0';
}

/* Scopes and CIDRs parsed once per distinct pair of texts (sj, cj are normalized: "[]"
 * when empty). */
static int facts_build(const char *sj, const char *cj, kw_ifacts_t **out)
{
    int rc = KW_EINVAL;
    json_t *scopes = NULL, *cidrs = NULL;
    kw_ifacts_t *f = NULL;
    size_t ns = 0, nc = 0, strs = 0;
    if (strcmp(sj, "[]") != 0) {
        scopes = json_loads(sj, 0, NULL);
        if (!json_is_array(scopes))
            goto out;
        ns = json_array_size(scopes);
        for (size_t i = 0; i < ns; i++) {
            const char *s = json_string_value(json_array_get(scopes, i));
            if (s == NULL)
                goto out;
            strs += 2 * (strlen(s) + 1); /* the string, and its share of the header */
        }
    }
    if (strcmp(cj, "[]") != 0) {
        cidrs = json_loads(cj, 0, NULL);
        if (!json_is_array(cidrs))
            goto out;
        nc = json_array_size(cidrs);
    }
    size_t sjlen = strlen(sj) + 1, cjlen = strlen(cj) + 1;
    size_t size =
        sizeof(*f) + ns * sizeof(char *) + nc * sizeof(kw_cidr_t) + sjlen + cjlen + strs + 1;
    rc = KW_ENOMEM;
    if ((f = calloc(1, size)) == NULL)
        goto out;
    char *p = (char *)(f + 1);
    f->scopes = (char **)p;
    p += ns * sizeof(char *);
    f->cidrs = (kw_cidr_t *)p;
    p += nc * sizeof(kw_cidr_t);
    f->scopes_json = memcpy(p, sj, sjlen);
    p += sjlen;
    f->cidrs_text = memcpy(p, cj, cjlen);
    p += cjlen;
    f->scopes_hdr = p;
    size_t off = 0;
    for (size_t i = 0; i < ns; i++) {
        const char *s = json_string_value(json_array_get(scopes, i));
        size_t l = strlen(s);
        if (i)
            p[off++] = ' ';
        memcpy(p + off, s, l);
        off += l;
    }
    p[off++] = '\0';
    p += off;
    for (size_t i = 0; i < ns; i++) {
        const char *s = json_string_value(json_array_get(scopes, i));
        size_t l = strlen(s) + 1;
        f->scopes[i] = memcpy(p, s, l);
        p += l;
    }
    f->nscopes = (uint32_t)ns;
    rc = KW_EINVAL;
    for (size_t i = 0; i < nc; i++) {
        const char *s = json_string_value(json_array_get(cidrs, i));
        if (s == NULL || kw_cidr_parse(s, strlen(s), &f->cidrs[i]) != 0)
            goto out;
    }
    f->ncidrs = (uint32_t)nc;
    *out = f;
    rc = 0;
out:
    if (rc != 0)
        free(f); /* parsed in part */
    json_decref(scopes);
    json_decref(cidrs);
    return rc;
}

/* The shared facts for these texts, with one more reference: found, or parsed and added
 * (caller holds wmu). Returns 0, KW_EINVAL or KW_ENOMEM. */
static int facts_get(kw_index_t *ix, const char *sj, const char *cj, kw_ifacts_t **out)
{
    uint64_t h = hash_str(sj) * 31 ^ hash_str(cj);
    if (ix->nfbuckets) {
        for (kw_ifacts_t *f = ix->fbuckets[h & (ix->nfbuckets - 1)]; f; f = f->next) {
            if (f->hash == h && strcmp(f->scopes_json, sj) == 0 && strcmp(f->cidrs_text, cj) == 0) {
                f->refs++;
                *out = f;
                return 0;
            }
        }
    }
    if (ix->nfacts + 1 > ix->nfbuckets) {
        size_t nb = ix->nfbuckets ? ix->nfbuckets * 2 : 64;
        kw_ifacts_t **b = calloc(nb, sizeof(*b));
        if (b == NULL && ix->nfbuckets == 0)
            return KW_ENOMEM;
        if (b) { /* else: keep chaining in the old buckets */
            for (size_t i = 0; i < ix->nfbuckets; i++) {
                while (ix->fbuckets[i]) {
                    kw_ifacts_t *f = ix->fbuckets[i];
                    ix->fbuckets[i] = f->next;
                    f->next = b[f->hash & (nb - 1)];
                    b[f->hash & (nb - 1)] = f;
                }
            }
            free(ix->fbuckets);
            ix->fbuckets = b;
            ix->nfbuckets = nb;
        }
    }
    kw_ifacts_t *f;
    int rc = facts_build(sj, cj, &f);
    if (rc)
        return rc;
    f->hash = h;
    f->refs = 1;
    f->next = ix->fbuckets[h & (ix->nfbuckets - 1)];
    ix->fbuckets[h & (ix->nfbuckets - 1)] = f;
    ix->nfacts++;
    *out = f;
    return 0;
}

/* Drop a reference taken by facts_get (caller holds wmu); the last one unlinks the facts
 * and frees them after a grace period (an old snapshot may still be read). */
static void facts_put(kw_index_t *ix, const kw_ifacts_t *cf)
{
    kw_ifacts_t *f = (kw_ifacts_t *)cf;
    if (f == NULL || --f->refs > 0)
        return;
    kw_ifacts_t **link = &ix->fbuckets[f->hash & (ix->nfbuckets - 1)];
    while (*link != f)
        link = &(*link)->next;
    *link = f->next;
    ix->nfacts--;
    kw__ix_retire(ix, free, f);
}

/* Find or create the policy holder (caller holds wmu). */
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
    atomic_init(&p->token_lifetime, 3600); /* the policy default (core/token.h) */
    p->next = ix->policies;
    ix->policies = p;
    if (ix->npols + 1 < KW_MAX_POLS) { /* else entries read it through the snapshot */
        p->idx = ++ix->npols;
        atomic_store_explicit(&ix->pols[p->idx], p, memory_order_release);
    }
    return p;
}

/* Set one of policy `name`'s figures (created if new): its warning window (warn != 0) or
 * its token lifetime. Returns 0 or KW_ENOMEM. */
static int policy_set(kw_index_t *ix, const char *name, int warn, int64_t v)
{
    pthread_mutex_lock(&ix->wmu);
    kw_ipolicy_t *p = policy_holder(ix, name);
    if (p)
        atomic_store(warn ? &p->warn_window : &p->token_lifetime, v);
    pthread_mutex_unlock(&ix->wmu);
    return p ? 0 : KW_ENOMEM;
}

int kw_index_put_policy(kw_index_t *ix, const char *name, int64_t warn_window)
{
    return policy_set(ix, name, 1, warn_window);
}

int kw_index_put_token_lifetime(kw_index_t *ix, const char *name, int64_t secs)
{
    return policy_set(ix, name, 0, secs);
}

/* Point entry e at snapshot c and copy its facts (caller holds wmu). Each store on its own:
 * a racing verifier sees each before or after the change. */
static void entry_set_cred(kw_ientry_t *e, kw_icred_t *c)
{
    uint8_t gone = atomic_load_explicit(&e->cflags, memory_order_relaxed) & KW_EF_GONE;
    atomic_store_explicit(&e->cred, c, memory_order_release);
    atomic_store_explicit(&e->policy, (uint8_t)c->policy->idx, memory_order_release);
    atomic_store_explicit(&e->cflags, (uint8_t)(snap_flags(c) | gone), memory_order_release);
}

int kw_index_put_cred(kw_index_t *ix, const kw_cred_t *c, int64_t warn_window)
{
    const char *sj = is_empty_array(c->scopes_json) ? "[]" : c->scopes_json;
    const char *cj = is_empty_array(c->cidrs_json) ? "[]" : c->cidrs_json;
    size_t idlen = strnlen(c->id, sizeof(c->id) - 1) + 1;
    kw_icred_t *snap = calloc(1, offsetof(kw_icred_t, id) + idlen);
    if (snap == NULL)
        return KW_ENOMEM;
    memcpy(snap->id, c->id, idlen - 1);
    snap->disabled = c->disabled != 0;
    snap->deleted = c->deleted_at != 0;
    kw_ifacts_t *f = NULL;
    pthread_mutex_lock(&ix->wmu);
    int rc = facts_get(ix, sj, cj, &f);
    if (rc)
        goto out;
    snap->facts = f;
    snap->policy = policy_holder(ix, c->policy[0] ? c->policy : "default");
    if (snap->policy == NULL) {
        rc = KW_ENOMEM;
        goto out;
    }
    atomic_store(&snap->policy->warn_window, warn_window);
    uint64_t *slot = find_cred_slot(ix, snap->id);
    if (slot == NULL) {
        if ((rc = ptab_insert(&ix->creds, snap, kw__cred_hash)) != 0)
            goto out;
        snap = NULL;
        goto out;
    }
    kw_icred_t *old = pt_ptr(*slot);
    /* the new snapshot takes over the entry list and every entry is repointed; a verifier
     * sees the old snapshot or the new one, and the old one is freed after a grace period */
    snap->first = old->first;
    for (uint32_t r = snap->first; r; r = ent(ix, r)->next_sib)
        entry_set_cred(ent(ix, r), snap);
    *slot = pt_word(snap, kw__cred_hash(snap));
    snap = NULL;
    facts_put(ix, old->facts);
    kw__ix_retire(ix, free, old);
out:
    if (snap)
        facts_put(ix, snap->facts); /* never published */
    pthread_mutex_unlock(&ix->wmu);
    free(snap);
    return rc;
}

/* Free the snapshots, shared facts and policies (kw_index_free). */
void kw__creds_free(kw_index_t *ix)
{
    for (size_t i = 0; i < ix->creds.cap; i++)
        free(pt_ptr(ix->creds.slots[i]));
    free(ix->creds.slots);
    for (size_t i = 0; i < ix->nfbuckets; i++) {
        while (ix->fbuckets[i]) {
            kw_ifacts_t *f = ix->fbuckets[i];
            ix->fbuckets[i] = f->next;
            free(f);
        }
    }
    free(ix->fbuckets);
    while (ix->policies) {
        kw_ipolicy_t *p = ix->policies;
        ix->policies = p->next;
        free(p);
    }
}
