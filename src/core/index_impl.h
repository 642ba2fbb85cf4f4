/* index_impl.h - what the index's files share (src/core/index*.c), nothing else includes it:
 * the entry, slab and table layouts, struct kw_index, the read-section primitives the verify
 * path inlines, the probe, and the writers' helpers of each file.
 *   index.c        entries, the key table, new/free/reserve, put_key, verify
 *   index_grace.c  read sections and grace periods (retire, reclaim)
 *   index_creds.c  credential snapshots, shared scopes/CIDRs, policies, put_cred
 *   index_sweep.c  usage drain and restore, purge, walk: the passes over all entries */
#ifndef KW_INDEX_IMPL_H
#define KW_INDEX_IMPL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "index.h"

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

static inline const char *key_id_of(const kw_ientry_t *e)
{
    if (atomic_load_explicit(&e->cflags, memory_order_relaxed) & KW_EF_HEAPID) {
        const char *p;
        memcpy(&p, e->key_id + 8, sizeof(p));
        return p;
    }
    return e->key_id;
}

/* ---- hashing ---- */

static inline uint64_t hash_digest(const uint8_t *d)
{
    uint64_t h;
    memcpy(&h, d, sizeof(h)); /* a SHA-256 digest is already uniform */
    return h;
}

/* The slot tag: digest bits independent of the probe position. */
static inline uint64_t tag_digest(const uint8_t *d)
{
    uint32_t t;
    memcpy(&t, d + 8, sizeof(t));
    return (uint64_t)t << 32;
}

/* Uses counted but not drained yet (a verify racing a drain can leave `uses` briefly
 * behind `drained`: that is no use). */
static inline uint32_t undrained(const kw_index_t *ix, const kw_ientry_t *e, uint32_t ref)
{
    int32_t d =
        (int32_t)(atomic_load_explicit(&e->uses, memory_order_relaxed) -
                  atomic_load_explicit(&side(ix, ref)->drained[SIDE_I(ref)], memory_order_relaxed));
    return d > 0 ? (uint32_t)d : 0;
}

/* The entry copies of snapshot c's facts. */
static inline uint8_t snap_flags(const kw_icred_t *c)
{
    return (uint8_t)((c->disabled ? KW_EF_DISABLED : 0) | (c->facts->ncidrs ? KW_EF_CIDRS : 0));
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

static inline kw_ktab_t *cur_tab(kw_index_t *ix)
{
    return atomic_load_explicit(&ix->keys, memory_order_acquire);
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

extern kw_reader_t kw__g_readers[KW_MAX_READERS];
extern atomic_uint kw__g_nreaders;   /* records ever claimed: the writers' scan bound */
extern _Atomic uint64_t kw__g_epoch; /* bumped by each grace period */
extern int kw__g_memb;               /* 1: membarrier(2) registered; set once */
extern _Thread_local kw_reader_t *kw__tl_reader;
extern _Thread_local int kw__tl_depth; /* read sections this thread holds */
/* Readers beyond KW_MAX_READERS threads (e.g. thousands of connection threads verifying at
 * once) count themselves here with a locked add instead; writers wait for it to drain. */
extern atomic_uint kw__g_overflow;
extern _Thread_local int kw__tl_overflow;

kw_reader_t *kw__reader_claim(void);

/* Enter a read section (nested ones keep the outer announcement). */
static inline void kw__read_enter(void)
{
    if (kw__tl_depth++ > 0)
        return;
    kw_reader_t *r = kw__tl_reader ? kw__tl_reader : kw__reader_claim();
    if (r == NULL) { /* seq_cst: ordered against the writer's fence and load of kw__g_overflow */
        kw__tl_overflow = 1;
        atomic_fetch_add(&kw__g_overflow, 1);
        return;
    }
    atomic_store_explicit(&r->epoch, atomic_load_explicit(&kw__g_epoch, memory_order_acquire),
                          memory_order_relaxed);
    if (kw__g_memb)
        atomic_signal_fence(memory_order_seq_cst); /* the writer's membarrier orders it */
    else
        atomic_thread_fence(memory_order_seq_cst);
}

static inline void kw__read_exit(void)
{
    if (--kw__tl_depth > 0)
        return;
    if (kw__tl_overflow) {
        kw__tl_overflow = 0;
        atomic_fetch_sub_explicit(&kw__g_overflow, 1, memory_order_release);
        return;
    }
    atomic_store_explicit(&kw__tl_reader->epoch, 0, memory_order_release);
}

void kw__ix_grace_once(void); /* before the first index exists */
/* Free p with fn after a grace period (caller holds wmu). Never fails. */
void kw__ix_retire(kw_index_t *ix, void (*fn)(void *), void *p);
/* Free everything retired so far, after a grace period (caller holds wmu). */
void kw__ix_reclaim(kw_index_t *ix);

/* ---- index.c ---- */
kw_ktab_t *kw__ktab_new(size_t cap);
void kw__ktab_place(const kw_index_t *ix, kw_ktab_t *t, uint32_t ref);
void kw__entry_free(kw_index_t *ix, kw_ientry_t *e, uint32_t ref);

/* ---- index_creds.c (writers only, caller holds wmu unless said) ---- */
size_t kw__ptab_cap_for(size_t n);
int kw__ptab_init(kw_ptab_t *t, size_t expected);
int kw__ptab_resize(kw_ptab_t *t, size_t want, uint64_t (*hash)(const void *));
uint64_t kw__cred_hash(const void *p);
kw_icred_t *kw__find_cred(const kw_index_t *ix, const char *id);
/* Start the cache misses kw__find_cred(ix, id) will take: stage 0 its table slot, stage 1
 * (once that slot is in cache) the snapshot it points at. kw_index_put_keys. */
void kw__prefetch_cred(const kw_index_t *ix, const char *id, int stage);
/* Free the snapshots, shared facts and policies (kw_index_free: no verify running). */
void kw__creds_free(kw_index_t *ix);

#endif
