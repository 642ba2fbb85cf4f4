/* verify_bench.c - in-process verification cost with N keys (default 1 M):
 *   (a) ns per kw_index_verify of a random known key, beside its two parts measured
 *       alone: the digest (kw_key_digest) and a random lookup in a plain open-addressing
 *       table of the same N digests; plus the index's heap bytes per key. Verify and digest
 *       are measured with each key's text cold (a cache miss of its own) and with it
 *       prefetched ahead, as a server has it after parsing the request;
 *   (e) verify throughput of one thread while another thread rotates keys continuously
 *       (insert a new key, shorten the old key's expiry, republish the credential), as a
 *       ratio to the same thread's throughput with the writer idle, in 5 alternating
 *       rounds (each SECONDS long) whose per-round ratios and median are printed.
 *
 *   verify_bench [N] [SECONDS]        (bench/verify_bench.sh builds and runs it)
 * Prints one "figure: value" line per measurement, ratios computed in the same run. */
#include <malloc.h>
#include <sched.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/index.h"
#include "core/key.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* resident set size in KiB (/proc/self/statm), 0 if unknown */
static long rss_kib(void)
{
    long pages = 0, res = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &res) != 2)
            res = 0;
        fclose(f);
    }
    return res * 4;
}

static void key_for(long i, char out[KW_KEY_MAX + 1])
{
    uint8_t seed[64], secret[32];
    int n = snprintf((char *)seed, sizeof(seed), "keyward-bench%ld", i);
    SHA256(seed, (size_t)n, secret);
    kw_key_from_bytes("kw", secret, out);
}

static uint64_t rng = 88172645463325252ULL;
static uint64_t xorshift(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static long n_keys;
static char (*keys)[KW_KEY_MAX + 1];
static uint8_t (*digests)[KW_DIGEST_LEN];
static kw_index_t *ix;
static int64_t t_now;

/* the baseline table: slot -> digest index + 1 (0 = empty), linear probing */
static uint32_t *plain;
static size_t plain_mask;

static long plain_find(const uint8_t *d)
{
    uint64_t h;
    memcpy(&h, d, 8);
    for (size_t j = h & plain_mask;; j = (j + 1) & plain_mask) {
        uint32_t v = plain[j];
        if (v == 0)
            return -1;
        if (memcmp(digests[v - 1], d, KW_DIGEST_LEN) == 0)
            return v - 1;
    }
}

#define SAMPLE 4096
static long order[SAMPLE];

static long pick(long i)
{
    return (order[i & (SAMPLE - 1)] + (i >> 12) * 7919) % n_keys;
}

/* what: 0 digest, 1 plain-table lookup, 2 kw_index_verify. warm: the key's text is brought
 * into cache a few iterations ahead, as a server has it (it has just read and parsed the
 * request), so only the index's own memory is cold; without it every key text is a cache
 * miss of its own in this 67 MB array. */
static double bench_ns(int what, int warm, long iters)
{
    volatile long sink = 0;
    uint8_t d[KW_DIGEST_LEN];
    kw_verify_res_t r;
    double t0 = now_s();
    for (long i = 0; i < iters; i++) {
        long k = pick(i);
        if (warm)
            __builtin_prefetch(keys[pick(i + 8)]);
        if (what == 0) {
            kw_key_digest(keys[k], strlen(keys[k]), d);
            sink += d[0];
        } else if (what == 1) {
            sink += plain_find(digests[k]);
        } else {
            kw_verify_req_t q = {.key = keys[k], .key_len = strlen(keys[k]), .now = t_now};
            kw_index_verify(ix, &q, &r);
            sink += r.code;
            kw_verify_res_release(&r);
        }
    }
    (void)sink;
    return (now_s() - t0) * 1e9 / (double)iters;
}

static volatile int writer_stop;
static long rotations;
static long rot_seq; /* key ids of rotated keys, unique across rounds (writer only) */

static void pin(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

static int writer_cpu = 0;

static void *writer(void *arg)
{
    long i = 0;
    pin(writer_cpu);
    kw_cred_t c = {0};
    c.scopes_json = "[\"bench:read\"]";
    c.cidrs_json = "[]";
    snprintf(c.policy, sizeof(c.policy), "default");
    while (!writer_stop) {
        /* roll credential j: a new key in slot 2, the old one's expiry cut to 1 day */
        long j = (long)(xorshift() % (uint64_t)n_keys);
        char nk[KW_KEY_MAX + 1];
        kw_keyrec_t k = {0};
        kw_key_generate("kw", nk);
        kw_key_digest(nk, strlen(nk), k.digest);
        snprintf(k.id, sizeof(k.id), "key_rot%ld", rot_seq++);
        snprintf(k.cred_id, sizeof(k.cred_id), "cred_bench%07ld", j);
        k.slot = 2;
        k.expires_at = t_now + 300LL * 86400;
        kw_index_put_key(ix, &k);
        kw_keyrec_t old = {0};
        memcpy(old.digest, digests[j], KW_DIGEST_LEN);
        snprintf(old.id, sizeof(old.id), "key_bench%07ld", j);
        snprintf(old.cred_id, sizeof(old.cred_id), "cred_bench%07ld", j);
        old.slot = 1;
        old.expires_at = t_now + 86400;
        kw_index_put_key(ix, &old);
        snprintf(c.id, sizeof(c.id), "cred_bench%07ld", j);
        kw_index_put_cred(ix, &c, 30 * 86400);
        if (++i % 64 == 0) { /* the usage thread's drain, which also reclaims */
            kw_usage_t *u;
            size_t n;
            if (kw_index_drain_usage(ix, &u, &n) == 0)
                free(u);
        }
    }
    rotations = i;
    kw_digest_thread_cleanup();
    return NULL;
}

#define ROUNDS 5

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double cpu_s(void) /* this thread's CPU time */
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Verifies per wall-clock second for secs; *per_cpu: per second of this thread's own CPU
 * time (on a shared machine the wall-clock figure also measures the thread's share of its
 * CPU, which a busy writer elsewhere changes by moving other work over). */
static double throughput(double secs, double *per_cpu)
{
    long done = 0;
    kw_verify_res_t r;
    double t0 = now_s(), t, c0 = cpu_s();
    do {
        for (int i = 0; i < 1000; i++, done++) {
            long k = (long)(xorshift() % (uint64_t)n_keys);
            kw_verify_req_t q = {.key = keys[k], .key_len = strlen(keys[k]), .now = t_now};
            kw_index_verify(ix, &q, &r);
            kw_verify_res_release(&r);
        }
        t = now_s() - t0;
    } while (t < secs);
    *per_cpu = (double)done / (cpu_s() - c0);
    return (double)done / t;
}

int main(int argc, char **argv)
{
    n_keys = argc > 1 ? atol(argv[1]) : 1000000;
    double secs = argc > 2 ? atof(argv[2]) : 2.0;
    t_now = (int64_t)time(NULL);
    /* the measuring thread on CPU 1, the writer of (e) on CPU 0 (KW_BENCH_CPU swaps) */
    const char *cpu = getenv("KW_BENCH_CPU");
    int mcpu = cpu ? atoi(cpu) : 1;
    writer_cpu = mcpu == 0 ? 1 : 0;
    pin(mcpu);
    keys = malloc((size_t)n_keys * sizeof(*keys));
    digests = malloc((size_t)n_keys * sizeof(*digests));
    double t0 = now_s();
    for (long i = 0; i < n_keys; i++) {
        key_for(i, keys[i]);
        kw_key_digest(keys[i], strlen(keys[i]), digests[i]);
    }
    printf("keys: %ld (generated in %.2f s)\n", n_keys, now_s() - t0);

    /* the index, as keyward loads it: one credential snapshot and one key per entry */
    struct mallinfo2 m0 = mallinfo2();
    long rss0 = rss_kib();
    t0 = now_s();
    ix = kw_index_new(1024);
    kw_index_reserve(ix, (size_t)n_keys, (size_t)n_keys); /* as the load does, from counts */
    kw_cred_t c = {0};
    c.scopes_json = "[\"bench:read\"]";
    c.cidrs_json = "[]";
    snprintf(c.policy, sizeof(c.policy), "default");
    for (long i = 0; i < n_keys; i++) {
        kw_keyrec_t k = {0};
        snprintf(c.id, sizeof(c.id), "cred_bench%07ld", i);
        kw_index_put_cred(ix, &c, 30 * 86400);
        memcpy(k.digest, digests[i], KW_DIGEST_LEN);
        snprintf(k.id, sizeof(k.id), "key_bench%07ld", i);
        snprintf(k.cred_id, sizeof(k.cred_id), "cred_bench%07ld", i);
        k.slot = 1;
        k.expires_at = t_now + 300LL * 86400;
        kw_index_put_key(ix, &k);
    }
    double load_s = now_s() - t0;
    struct mallinfo2 m1 = mallinfo2();
    double per_key = (double)(m1.uordblks + m1.hblkhd - m0.uordblks - m0.hblkhd) / (double)n_keys;
    printf("index build: %.2f s (%.0f keys/s)\n", load_s, (double)n_keys / load_s);
    printf("index heap bytes per key (malloc only): %.0f\n", per_key);
    printf("index bytes per key (RSS delta: heap + entry slabs + tables): %.0f (target <= 200)\n",
           (double)(rss_kib() - rss0) * 1024.0 / (double)n_keys);

    size_t cap = 16;
    while (cap < (size_t)n_keys * 2)
        cap <<= 1;
    plain = calloc(cap, sizeof(uint32_t));
    plain_mask = cap - 1;
    for (long i = 0; i < n_keys; i++) {
        uint64_t h;
        memcpy(&h, digests[i], 8);
        size_t j = h & plain_mask;
        while (plain[j])
            j = (j + 1) & plain_mask;
        plain[j] = (uint32_t)(i + 1);
    }
    for (int i = 0; i < SAMPLE; i++)
        order[i] = (long)(xorshift() % (uint64_t)n_keys);

    long iters = 2000000;
    bench_ns(2, 0, iters / 10); /* warm up */
    double d_ns = bench_ns(0, 0, iters), l_ns = bench_ns(1, 0, iters), v_ns = bench_ns(2, 0, iters);
    double dw_ns = bench_ns(0, 1, iters), vw_ns = bench_ns(2, 1, iters);
    printf("digest alone: %.0f ns/op (key text in cache: %.0f)\n", d_ns, dw_ns);
    printf("random lookup, plain table of %ld: %.0f ns/op\n", n_keys, l_ns);
    printf("kw_index_verify (check + digest + lookup + checks), cold key text: %.0f ns/op\n", v_ns);
    printf("kw_index_verify, key text in cache (as in the server): %.0f ns/op (target <= 300)\n",
           vw_ns);
    printf("ratio verify / (digest + lookup), key text in cache: %.2f\n", vw_ns / (dw_ns + l_ns));

    /* (e) in alternating rounds: idle, rotating, idle, rotating ... Other work on a shared
     * machine then hits both sides alike; each round's ratio is its rotating figure over the
     * mean of the idle figures around it, and the median of those is the result. */
    double idle[ROUNDS + 1], busy[ROUNDS], ratio[ROUNDS];
    double cidle[ROUNDS + 1], cbusy[ROUNDS], cratio[ROUNDS];
    long rot_total = 0;
    for (int r = 0; r < ROUNDS; r++) {
        idle[r] = throughput(secs, &cidle[r]);
        pthread_t th;
        writer_stop = 0;
        pthread_create(&th, NULL, writer, NULL);
        busy[r] = throughput(secs, &cbusy[r]);
        writer_stop = 1;
        pthread_join(th, NULL);
        rot_total += rotations;
    }
    idle[ROUNDS] = throughput(secs, &cidle[ROUNDS]);
    printf("verify/s per round, writer idle / rotating:");
    for (int r = 0; r < ROUNDS; r++) {
        ratio[r] = busy[r] / ((idle[r] + idle[r + 1]) / 2);
        cratio[r] = cbusy[r] / ((cidle[r] + cidle[r + 1]) / 2);
        printf(" %.0f/%.0f", idle[r], busy[r]);
    }
    printf(" (idle after: %.0f)\n", idle[ROUNDS]);
    printf("writer rotations: %.0f/s\n", (double)rot_total / (secs * ROUNDS));
    printf("ratio rotating / idle per round, wall clock:");
    for (int r = 0; r < ROUNDS; r++)
        printf(" %.2f", ratio[r]);
    printf("\nratio rotating / idle per round, per CPU second of the verifier:");
    for (int r = 0; r < ROUNDS; r++)
        printf(" %.2f", cratio[r]);
    qsort(ratio, ROUNDS, sizeof(double), cmp_double);
    qsort(cratio, ROUNDS, sizeof(double), cmp_double);
    printf("\nratio rotating / idle, median of %d alternating rounds: %.2f wall clock, %.2f per "
           "verifier CPU second (target >= 0.95)\n",
           ROUNDS, ratio[ROUNDS / 2], cratio[ROUNDS / 2]);
    kw_index_free(ix);
    kw_digest_thread_cleanup();
    free(keys);
    free(digests);
    free(plain);
    return 0;
}
