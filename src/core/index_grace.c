/* index_grace.c - the index's read sections and grace periods: verifiers announce
 * themselves without a locked instruction; a writer that unpublished something waits
 * until no verifier can still see it, then frees it (retire, reclaim). */
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "index_impl.h"

kw_reader_t kw__g_readers[KW_MAX_READERS];
atomic_uint kw__g_nreaders;
_Atomic uint64_t kw__g_epoch = 1;
int kw__g_memb;
_Thread_local kw_reader_t *kw__tl_reader;
_Thread_local int kw__tl_depth;
atomic_uint kw__g_overflow;
_Thread_local int kw__tl_overflow;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static pthread_key_t g_reader_key;

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
        kw__g_memb = 1;
#endif
    if (getenv("KW_INDEX_NO_MEMBARRIER")) /* tests exercise the fallback */
        kw__g_memb = 0;
    (void)pthread_key_create(&g_reader_key, reader_release);
}

/* This thread's reader record, claimed on first use (no lock, no allocation). */
kw_reader_t *kw__reader_claim(void)
{
    for (unsigned i = 0; i < KW_MAX_READERS; i++) {
        int z = 0;
        kw_reader_t *r = &kw__g_readers[i];
        if (atomic_load_explicit(&r->used, memory_order_relaxed) == 0 &&
            atomic_compare_exchange_strong(&r->used, &z, 1)) {
            unsigned n = atomic_load(&kw__g_nreaders);
            while (n < i + 1 && !atomic_compare_exchange_weak(&kw__g_nreaders, &n, i + 1))
                ;
            /* a writer scanning from now on sees this record, or this thread sees what
             * the writer unpublished before scanning */
            atomic_thread_fence(memory_order_seq_cst);
            (void)pthread_setspecific(g_reader_key, r);
            kw__tl_reader = r;
            return r;
        }
    }
    return NULL; /* all taken: the caller reads as an overflow reader */
}

/* Wait until every read section that could have seen something unpublished before this
 * call has ended. Caller holds wmu. Read sections last a probe plus the formatting of one
 * answer, so this spins, then yields. */
static void synchronize(kw_index_t *ix)
{
    (void)ix;
    if (kw__tl_depth >
        0) { /* a caller kept a verify result across a write: it would wait forever */
        fputs("keyward: index writer called while holding a verify result\n", stderr);
        abort();
    }
    uint64_t now = atomic_fetch_add(&kw__g_epoch, 1) + 1;
#if defined(__linux__) && defined(__NR_membarrier)
    if (kw__g_memb && syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) != 0) {
        fputs("keyward: membarrier failed after registration\n", stderr);
        abort();
    }
#endif
    if (!kw__g_memb)
        atomic_thread_fence(memory_order_seq_cst);
    unsigned n = atomic_load(&kw__g_nreaders);
    for (unsigned i = 0; i < n; i++) {
        for (unsigned spins = 0;; spins++) {
            uint64_t e = atomic_load_explicit(&kw__g_readers[i].epoch, memory_order_acquire);
            if (e == 0 || e >= now)
                break;
            if (spins > 64)
                sched_yield();
        }
    }
    for (unsigned spins = 0; atomic_load(&kw__g_overflow) != 0; spins++)
        if (spins > 64)
            sched_yield();
}

/* Free everything retired so far (caller holds wmu). */
void kw__ix_reclaim(kw_index_t *ix)
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
void kw__ix_retire(kw_index_t *ix, void (*fn)(void *), void *p)
{
    kw_retired_t *r = malloc(sizeof(*r));
    if (r == NULL) {
        kw__ix_reclaim(ix);
        synchronize(ix);
        fn(p);
        return;
    }
    r->fn = fn;
    r->p = p;
    r->next = ix->retired;
    ix->retired = r;
    if (++ix->nretired >= KW_RETIRE_BATCH)
        kw__ix_reclaim(ix);
}

void kw__ix_grace_once(void)
{
    pthread_once(&g_once, grace_init);
}
