/* index.c - the in-memory verification index: open addressing on the key digest,
 * immutable credential snapshots, and a read path that never waits for writers.
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

#include <jansson.h>
#include <stddef.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/membarrier.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "key.h"

/* Key ids are "key_" and 22 characters; longer ones (tests, hand-made stores) go on the
 * heap, named by the inline bytes (KW_EF_HEAPID). */
#define KW_KEY_ID_INLINE 28

/* 96 bytes: what a verify reads (digest, times, snapshot, copied facts) and writes (use
 * count, last use) in the first 64, the key id and the writers' credential list link in the
 * last 32. Times a verify only tests or counts (revocation, last use) are 32-bit unsigned
 * seconds (saturated; see t32). The writers' drained count and the verifiers' dirty byte
 * live beside the slab (kw_islab_side_t), not in the entry. */
typedef struct kw_ientry {
    uint8_t digest[KW_DIGEST_LEN]; /* immutable once published */
    _Atomic int64_t expires_at;
    _Atomic(kw_icred_t *) cred;  /* the credential's current snapshot */
    _Atomic uint32_t revoked_at; /* t32 seconds, 0 = not revoked */
    _Atomic uint32_t last_used;  /* t32 seconds, 0 = never */
    _Atomic uint32_t uses;       /* counted by verifiers (atomic add, see count_use) */
    _Atomic uint8_t slot;
    _Atomic uint8_t cflags; /* KW_EF_*: the credential's facts a verify needs, copied */
    _Atomic uint8_t policy; /* the credential's policy: index in ix->pols, 0 = see cred */
    uint8_t pad_;
    char key_id[KW_KEY_ID_INLINE]; /* immutable once published; see key_id_of */
    uint32_t next_sib;             /* writers only: credential list, then limbo/free */
} kw_ientry_t;

/* cflags: copies of the credential snapshot's facts, stored with each snapshot change, so a
 * verify decides without reading the snapshot (one dependent cache miss fewer). */
#define KW_EF_DISABLED 1u /* the credential is disabled */
#define KW_EF_CIDRS 2u    /* the credential has allowed CIDRs (the check reads its facts) */
#define KW_EF_GONE 4u     /* writers only: being purged */
#define KW_EF_HEAPID 8u   /* immutable: the key id is on the heap (longer than inline) */

/* Policies with an index (1..KW_MAX_POLS-1) are found by entries without the snapshot. */
#define KW_MAX_POLS 256

_Static_assert(sizeof(kw_ientry_t) == 96, "kw_ientry_t is 96 bytes");
_Static_assert(offsetof(kw_ientry_t, key_id) == 64, "what a verify touches is in 64 bytes");

#define KW_SLAB_BITS 16
#define KW_SLAB (1u << KW_SLAB_BITS) /* entries per slab: 6 MiB, three huge pages */
#define KW_MAX_SLABS (1u << 10)      /* 64 M entries */
#define KW_HUGE ((size_t)2 << 20)
#define KW_SLAB_BYTES ((size_t)KW_SLAB * sizeof(kw_ientry_t))
_Static_assert(KW_SLAB_BYTES % KW_HUGE == 0, "slabs are whole huge pages");

/* Per slab, beside the entries: what verifiers mark and writers alone read or keep. */
typedef struct kw_islab_side {
    _Atomic uint8_t dirty[KW_SLAB];    /* set by a verify that counted a use; drains clear it */
    _Atomic uint32_t drained[KW_SLAB]; /* `uses` when last drained; drains write it */
} kw_islab_side_t;

/* The key table readers probe: replaced as a whole on growth and purge. */
typedef struct kw_ktab {
    size_t cap;               /* power of two */
    _Atomic uint64_t slots[]; /* 0 = empty, else tag << 32 | ref */
} kw_ktab_t;

/* Open-addressing table of pointers with linear probing (writers only), any capacity
 * (position: multiply-shift of the hash), load <= 3/4. */
typedef struct kw_ptab {
    uint64_t *slots; /* 0 = empty, else pointer | 4 hash bits (see pt_word) */
    size_t cap;
    size_t len;
} kw_ptab_t;

/* Something unpublished, freed by fn(p) after the next grace period. */
typedef struct kw_retired {
    struct kw_retired *next;
    void (*fn)(void *);
    void *p;
} kw_retired_t;

#define KW_RETIRE_BATCH 256

struct kw_index {
    pthread_mutex_t wmu;       /* serializes every writer */
    _Atomic(kw_ktab_t *) keys; /* hashed by digest */
    atomic_size_t nkeys;
    kw_ptab_t creds;        /* kw_icred_t* (current snapshots) by id; writers only */
    kw_ipolicy_t *policies; /* short list; writers only */
    kw_retired_t *retired;  /* writers only */
    size_t nretired;
    uint32_t limbo;    /* purged entries with uses not yet drained (refs) */
    uint32_t free_ref; /* recycled entries (refs); writers only */
    uint32_t nalloc;   /* refs handed out from slabs so far */
    uint32_t purge_mark;
    _Atomic(kw_ipolicy_t *) pols[KW_MAX_POLS]; /* by index; set before an entry names it */
    unsigned npols;
    kw_ifacts_t **fbuckets; /* shared scopes/CIDRs by text (chained); writers only */
    size_t nfbuckets, nfacts;
    kw_ientry_t *slabs[KW_MAX_SLABS];     /* set before any slot names one of its entries */
    kw_islab_side_t *sides[KW_MAX_SLABS]; /* set with its slab */
};

static inline kw_ientry_t *ent(const kw_index_t *ix, uint32_t ref)
{
    uint32_t i = ref - 1;
    return &ix->slabs[i >> KW_SLAB_BITS][i & (KW_SLAB - 1)];
}

static inline kw_islab_side_t *side(const kw_index_t *ix, uint32_t ref)
{
    return ix->sides[(ref - 1) >> KW_SLAB_BITS];
}

#define SIDE_I(ref) (((ref)-1) & (KW_SLAB - 1))

/* Seconds as the entry keeps them: unsigned 32-bit (until 2106), 0 only for 0, negative
 * times as 1 and later times saturated (both still compare as set). */
static inline uint32_t t32(int64_t t)
{
    if (t <= 0)
        return t == 0 ? 0u : 1u;
    return t > (int64_t)UINT32_MAX ? UINT32_MAX : (uint32_t)t;
}

static const char *key_id_of(const kw_ientry_t *e)
{
    if (atomic_load_explicit(&e->cflags, memory_order_relaxed) & KW_EF_HEAPID) {
        const char *p;
        memcpy(&p, e->key_id + 8, sizeof(p));
        return p;
    }
    return e->key_id;
}

/* ---- grace periods ----
 *
 * Read sections issue no locked instruction. Each thread has a reader record of its own
 * cache line (a fixed array, claimed once per thread, released at thread exit). Entering
 * stores the global epoch into it with a plain store; leaving stores 0 (release). A writer
 * that has unpublished something bumps the epoch, runs membarrier(PRIVATE_EXPEDITED) —
 * a full barrier on every CPU running one of the process's threads, so each reader's
 * announcement is either visible to the writer now or was made after the barrier (and its
 * reads then see the unpublishing) — and waits for every record holding an older epoch.
 * Where membarrier is unavailable, readers issue a full fence after announcing instead
 * (liburcu's "memb" flavour and its fallback). */

#define KW_MAX_READERS 1024

typedef struct kw_reader {
    _Alignas(64) _Atomic uint64_t epoch; /* 0 outside a read section */
    atomic_int used;                     /* claimed by a live thread */
} kw_reader_t;

static kw_reader_t g_readers[KW_MAX_READERS];
static atomic_uint g_nreaders;       /* records ever claimed: the writers' scan bound */
static _Atomic uint64_t g_epoch = 1; /* bumped by each grace period */
static int g_memb;                   /* 1: membarrier(2) registered; set once */
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static pthread_key_t g_reader_key;
static _Thread_local kw_reader_t *tl_reader;
static _Thread_local int tl_depth; /* read sections this thread holds */
/* Readers beyond KW_MAX_READERS threads (e.g. thousands of connection threads verifying at
 * once) count themselves here with a locked add instead; writers wait for it to drain. */
static atomic_uint g_overflow;
static _Thread_local int tl_overflow;

static void reader_release(void *p)
{
    kw_reader_t *r = p;
    atomic_store_explicit(&r->epoch, 0, memory_order_release);
    atomic_store_explicit(&r->used, 0, memory_order_release);
}

static void grace_init(void)
{
#if defined(__linux__) && defined(__NR_membarrier)
    long q = syscall(__NR_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
    if (q > 0 && (q & MEMBARRIER_CMD_PRIVATE_EXPEDITED) &&
        syscall(__NR_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0)
        g_memb = 1;
#endif
    if (getenv("KW_INDEX_NO_MEMBARRIER")) /* tests exercise the fallback */
        g_memb = 0;
    (void)pthread_key_create(&g_reader_key, reader_release);
}

/* This thread's reader record, claimed on first use (no lock, no allocation). */
static kw_reader_t *reader_claim(void)
{
    for (unsigned i = 0; i < KW_MAX_READERS; i++) {
        int z = 0;
        kw_reader_t *r = &g_readers[i];
        if (atomic_load_explicit(&r->used, memory_order_relaxed) == 0 &&
            atomic_compare_exchange_strong(&r->used, &z, 1)) {
            unsigned n = atomic_load(&g_nreaders);
            while (n < i + 1 && !atomic_compare_exchange_weak(&g_nreaders, &n, i + 1))
                ;
            /* a writer scanning from now on sees this record, or this thread sees what
             * the writer unpublished before scanning */
            atomic_thread_fence(memory_order_seq_cst);
            (void)pthread_setspecific(g_reader_key, r);
            tl_reader = r;
            return r;
        }
    }
    return NULL; /* all taken: the caller reads as an overflow reader */
}

/* Enter a read section (nested ones keep the outer announcement). */
static inline void read_enter(void)
{
    if (tl_depth++ > 0)
        return;
    kw_reader_t *r = tl_reader ? tl_reader : reader_claim();
    if (r == NULL) { /* seq_cst: ordered against the writer's fence and load of g_overflow */
        tl_overflow = 1;
        atomic_fetch_add(&g_overflow, 1);
        return;
    }
    atomic_store_explicit(&r->epoch, atomic_load_explicit(&g_epoch, memory_order_acquire),
                          memory_order_relaxed);
    if (g_memb)
        atomic_signal_fence(memory_order_seq_cst); /* the writer's membarrier orders it */
    else
        atomic_thread_fence(memory_order_seq_cst);
}

static inline void read_exit(void)
{
    if (--tl_depth > 0)
        return;
    if (tl_overflow) {
        tl_overflow = 0;
        atomic_fetch_sub_explicit(&g_overflow, 1, memory_order_release);
        return;
    }
    atomic_store_explicit(&tl_reader->epoch, 0, memory_order_release);
}

/* Wait until every read section that could have seen something unpublished before this
 * call has ended. Caller holds wmu. Read sections last a probe plus the formatting of one
 * answer, so this spins, then yields. */
static void synchronize(kw_index_t *ix)
{
    (void)ix;
    if (tl_depth > 0) { /* a caller kept a verify result across a write: it would wait forever */
        fputs("keyward: index writer called while holding a verify result\n", stderr);
        abort();
    }
    uint64_t now = atomic_fetch_add(&g_epoch, 1) + 1;
#if defined(__linux__) && defined(__NR_membarrier)
    if (g_memb && syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) != 0) {
        fputs("keyward: membarrier failed after registration\n", stderr);
        abort();
    }
#endif
    if (!g_memb)
        atomic_thread_fence(memory_order_seq_cst);
    unsigned n = atomic_load(&g_nreaders);
    for (unsigned i = 0; i < n; i++) {
        for (unsigned spins = 0;; spins++) {
            uint64_t e = atomic_load_explicit(&g_readers[i].epoch, memory_order_acquire);
            if (e == 0 || e >= now)
                break;
            if (spins > 64)
                sched_yield();
        }
    }
    for (unsigned spins = 0; atomic_load(&g_overflow) != 0; spins++)
        if (spins > 64)
            sched_yield();
}

/* Free everything retired so far (caller holds wmu). */
static void reclaim(kw_index_t *ix)
{
    if (ix->retired == NULL)
        return;
    synchronize(ix);
    kw_retired_t *r = ix->retired;
    ix->retired = NULL;
    ix->nretired = 0;
    while (r) {
        kw_retired_t *next = r->next;
        r->fn(r->p);
        free(r);
        r = next;
    }
}

/* Free p with fn after a grace period (caller holds wmu). Never fails: without memory for
 * the list node it waits for the grace period now. */
static void retire(kw_index_t *ix, void (*fn)(void *), void *p)
{
    kw_retired_t *r = malloc(sizeof(*r));
    if (r == NULL) {
        reclaim(ix);
        synchronize(ix);
        fn(p);
        return;
    }
    r->fn = fn;
    r->p = p;
    r->next = ix->retired;
    ix->retired = r;
    if (++ix->nretired >= KW_RETIRE_BATCH)
        reclaim(ix);
}

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

/* ---- hashing ---- */

static uint64_t hash_digest(const uint8_t *d)
{
    uint64_t h;
    memcpy(&h, d, sizeof(h)); /* a SHA-256 digest is already uniform */
    return h;
}

/* The slot tag: digest bits independent of the probe position. */
static uint64_t tag_digest(const uint8_t *d)
{
    uint32_t t;
    memcpy(&t, d + 8, sizeof(t));
    return (uint64_t)t << 32;
}

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

static uint64_t cred_hash(const void *p)
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
static size_t ptab_cap_for(size_t n)
{
    size_t cap = n + n / 3 + 16;
    return cap;
}

static int ptab_init(kw_ptab_t *t, size_t expected)
{
    size_t cap = ptab_cap_for(expected);
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
static int ptab_resize(kw_ptab_t *t, size_t want, uint64_t (*hash)(const void *))
{
    size_t ncap = ptab_cap_for(want);
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
    if ((t->len + 1) * 4 > t->cap * 3 && ptab_resize(t, t->len * 2, hash) != 0)
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

static kw_icred_t *find_cred(const kw_index_t *ix, const char *id)
{
    uint64_t *s = find_cred_slot(ix, id);
    return s ? pt_ptr(*s) : NULL;
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
static void entry_free(kw_index_t *ix, kw_ientry_t *e, uint32_t ref)
{
    if (atomic_load_explicit(&e->cflags, memory_order_relaxed) & KW_EF_HEAPID) {
        free((char *)key_id_of(e));
        atomic_fetch_and_explicit(&e->cflags, (uint8_t)~KW_EF_HEAPID, memory_order_relaxed);
    }
    atomic_store_explicit(&e->cred, NULL, memory_order_relaxed); /* kw_index_walk skips it */
    e->next_sib = ix->free_ref;
    ix->free_ref = ref;
}

/* Uses counted but not drained yet (a verify racing a drain can leave `uses` briefly
 * behind `drained`: that is no use). */
static uint32_t undrained(const kw_index_t *ix, const kw_ientry_t *e, uint32_t ref)
{
    int32_t d =
        (int32_t)(atomic_load_explicit(&e->uses, memory_order_relaxed) -
                  atomic_load_explicit(&side(ix, ref)->drained[SIDE_I(ref)], memory_order_relaxed));
    return d > 0 ? (uint32_t)d : 0;
}

/* ---- the key table (read lock-free) ---- */

static kw_ktab_t *ktab_new(size_t cap)
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
static void ktab_place(const kw_index_t *ix, kw_ktab_t *t, uint32_t ref)
{
    const uint8_t *d = ent(ix, ref)->digest;
    size_t mask = t->cap - 1;
    size_t j = hash_digest(d) & mask;
    while (atomic_load_explicit(&t->slots[j], memory_order_relaxed))
        j = (j + 1) & mask;
    atomic_store_explicit(&t->slots[j], tag_digest(d) | ref, memory_order_relaxed);
}

/* Constant-time equality of two digests (SPEC §3), inlined: one XOR-OR over the 32
 * bytes instead of a library call per probe. */
static inline int digest_eq(const uint8_t *a, const uint8_t *b)
{
    uint64_t x = 0;
    for (int i = 0; i < KW_DIGEST_LEN; i += 8) {
        uint64_t u, v;
        memcpy(&u, a + i, 8);
        memcpy(&v, b + i, 8);
        x |= u ^ v;
    }
    return x == 0;
}

/* The entry for digest d in t, or NULL; its ref in *ref. Safe inside a read section or
 * under wmu. Slots only go from empty to an entry while a table is published (removal
 * builds a new table), so a probe never stops early at a hole that was not there before.
 * Only slots whose tag matches are dereferenced; the entry's two lines are requested
 * together (an entry starting mid-line spans two). */
static inline kw_ientry_t *ktab_find(const kw_index_t *ix, const kw_ktab_t *t, const uint8_t *d,
                                     uint32_t *ref)
{
    size_t mask = t->cap - 1;
    size_t j = hash_digest(d) & mask;
    uint64_t tag = tag_digest(d);
    for (;;) {
        uint64_t v = atomic_load_explicit(&t->slots[j], memory_order_acquire);
        if (v == 0)
            return NULL;
        if ((v & 0xffffffff00000000ULL) == tag) {
            kw_ientry_t *e = ent(ix, (uint32_t)v);
            __builtin_prefetch((const char *)e + 63);
            if (digest_eq(e->digest, d)) {
                *ref = (uint32_t)v;
                return e;
            }
        }
        j = (j + 1) & mask;
    }
}

static kw_ktab_t *cur_tab(kw_index_t *ix)
{
    return atomic_load_explicit(&ix->keys, memory_order_acquire);
}

/* Publish a copy of the table with capacity cap (caller holds wmu); the old array is
 * retired. Returns 0 or KW_ENOMEM (index unchanged). */
static int ktab_rebuild(kw_index_t *ix, size_t cap)
{
    kw_ktab_t *t = cur_tab(ix);
    kw_ktab_t *nt = ktab_new(cap);
    if (nt == NULL)
        return KW_ENOMEM;
    for (size_t i = 0; i < t->cap; i++) {
        uint64_t v = atomic_load_explicit(&t->slots[i], memory_order_relaxed);
        if (v)
            ktab_place(ix, nt, (uint32_t)v);
    }
    atomic_store_explicit(&ix->keys, nt, memory_order_release);
    retire(ix, free, t);
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
    f = NULL;
    rc = 0;
out:
    json_decref(scopes);
    json_decref(cidrs);
    free(f);
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
    retire(ix, free, f);
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
    pthread_once(&g_once, grace_init);
    kw_index_t *ix = calloc(1, sizeof(*ix));
    if (ix == NULL)
        return NULL;
    kw_ktab_t *t = ktab_new(ktab_cap_for(expected));
    if (t == NULL || ptab_init(&ix->creds, expected / 2 + 8)) {
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
            reclaim(ix); /* the old array goes now, not at the next drain */
    }
    if (rc == 0 && ptab_cap_for(creds) > ix->creds.cap)
        rc = ptab_resize(&ix->creds, creds, cred_hash);
    pthread_mutex_unlock(&ix->wmu);
    return rc;
}

void kw_index_free(kw_index_t *ix)
{
    if (ix == NULL)
        return;
    pthread_mutex_lock(&ix->wmu);
    reclaim(ix);
    pthread_mutex_unlock(&ix->wmu);
    free(cur_tab(ix));
    for (uint32_t r = 1; r <= ix->nalloc; r++) /* free and purged entries have no heap id */
        if (atomic_load_explicit(&ent(ix, r)->cflags, memory_order_relaxed) & KW_EF_HEAPID)
            free((char *)key_id_of(ent(ix, r)));
    for (size_t i = 0; i < KW_MAX_SLABS && ix->slabs[i]; i++) {
        slab_free(ix->slabs[i]);
        free(ix->sides[i]);
    }
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
    pthread_mutex_destroy(&ix->wmu);
    free(ix);
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

int kw_index_put_policy(kw_index_t *ix, const char *name, int64_t warn_window)
{
    pthread_mutex_lock(&ix->wmu);
    kw_ipolicy_t *p = policy_holder(ix, name);
    if (p)
        atomic_store(&p->warn_window, warn_window);
    pthread_mutex_unlock(&ix->wmu);
    return p ? 0 : KW_ENOMEM;
}

/* The entry copies of snapshot c's facts. */
static uint8_t snap_flags(const kw_icred_t *c)
{
    return (uint8_t)((c->disabled ? KW_EF_DISABLED : 0) | (c->facts->ncidrs ? KW_EF_CIDRS : 0));
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
        if ((rc = ptab_insert(&ix->creds, snap, cred_hash)) != 0)
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
    *slot = pt_word(snap, cred_hash(snap));
    snap = NULL;
    facts_put(ix, old->facts);
    retire(ix, free, old);
out:
    if (snap)
        facts_put(ix, snap->facts); /* never published */
    pthread_mutex_unlock(&ix->wmu);
    free(snap);
    return rc;
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

int kw_index_put_key(kw_index_t *ix, const kw_keyrec_t *k)
{
    int rc = 0;
    uint32_t ref;
    pthread_mutex_lock(&ix->wmu);
    kw_ientry_t *e = ktab_find(ix, cur_tab(ix), k->digest, &ref);
    if (e == NULL) {
        kw_icred_t *c = find_cred(ix, k->cred_id);
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
            entry_free(ix, e, ref);
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
            entry_free(ix, e, ref); /* never published */
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
    pthread_mutex_unlock(&ix->wmu);
    return rc;
}

/* ---- verify ---- */

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
    read_enter();
    uint32_t ref;
    kw_ientry_t *e = ktab_find(ix, cur_tab(ix), d, &ref);
    if (e == NULL) {
        read_exit();
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

int kw_index_put_token_lifetime(kw_index_t *ix, const char *name, int64_t secs)
{
    pthread_mutex_lock(&ix->wmu);
    kw_ipolicy_t *p = policy_holder(ix, name);
    if (p)
        atomic_store(&p->token_lifetime, secs);
    pthread_mutex_unlock(&ix->wmu);
    return p ? 0 : KW_ENOMEM;
}

void kw_verify_res_release(kw_verify_res_t *res)
{
    if (res && res->ix_) {
        read_exit();
        res->ix_ = NULL;
        res->cred = NULL;
        res->key_id = "";
    }
}

/* ---- usage ---- */

void kw_index_pending_usage(kw_index_t *ix, const uint8_t digest[KW_DIGEST_LEN], int64_t *pending,
                            int64_t *last_used)
{
    *pending = 0;
    *last_used = 0;
    read_enter();
    uint32_t ref;
    kw_ientry_t *e = ktab_find(ix, cur_tab(ix), digest, &ref);
    if (e) {
        *pending = undrained(ix, e, ref);
        *last_used = atomic_load_explicit(&e->last_used, memory_order_relaxed);
    }
    read_exit();
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
            entry_free(ix, e, r);
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
    reclaim(ix);
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
    kw_ktab_t *nt = ktab_new(t->cap);
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
            ktab_place(ix, nt, (uint32_t)v);
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
    retire(ix, free, t);
    reclaim(ix); /* grace period: no verifier can reach t or gone now */
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
        read_enter();
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
        read_exit();
    }
}
