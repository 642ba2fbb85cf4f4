/* test_index.c - the verification index: every outcome in SPEC order, usage counting and
 * draining, snapshots replaced under readers, purge, and a concurrent reader/writer run. */
#include <pthread.h>
#include <sched.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

#include "core/index.h"
#include "core/key.h"
#include "t.h"

static kw_cred_t mkcred(const char *id, const char *scopes, const char *cidrs, int disabled)
{
    kw_cred_t c = {0};
    snprintf(c.id, sizeof(c.id), "%s", id);
    c.scopes_json = (char *)scopes;
    c.cidrs_json = (char *)cidrs;
    c.disabled = disabled;
    return c;
}

static void mkkey(kw_keyrec_t *k, const char *cred, const char *id, char secret[KW_KEY_MAX + 1],
                  int64_t expires_at, int64_t revoked_at)
{
    memset(k, 0, sizeof(*k));
    kw_key_generate("kw", secret);
    kw_key_digest(secret, strlen(secret), k->digest);
    snprintf(k->id, sizeof(k->id), "%s", id);
    snprintf(k->cred_id, sizeof(k->cred_id), "%s", cred);
    k->slot = 1;
    k->live = 1;
    k->expires_at = expires_at;
    k->revoked_at = revoked_at;
}

static kw_verify_code_t verify(kw_index_t *ix, const char *key, const char *scope, const char *ip,
                               int64_t now, kw_verify_res_t *out)
{
    kw_ip_t a;
    kw_verify_res_t r;
    if (ip)
        kw_ip_parse(ip, strlen(ip), &a);
    kw_verify_req_t q = {.key = key,
                         .key_len = strlen(key),
                         .scope = scope,
                         .scope_len = scope ? strlen(scope) : 0,
                         .ip = ip ? &a : NULL,
                         .now = now};
    kw_index_verify(ix, &q, &r);
    kw_verify_code_t c = r.code;
    if (out)
        *out = r;
    else
        kw_verify_res_release(&r);
    return c;
}

typedef struct replacer {
    kw_index_t *ix;
    kw_cred_t c;
    int published, drained;
} replacer_t;

static void *replacer(void *arg)
{
    replacer_t *rp = arg;
    kw_usage_t *u;
    size_t n;
    kw_index_put_cred(rp->ix, &rp->c, 30 * 86400);
    __atomic_store_n(&rp->published, 1, __ATOMIC_RELEASE);
    if (kw_index_drain_usage(rp->ix, &u, &n) == 0) /* reclaims: a grace period */
        free(u);
    __atomic_store_n(&rp->drained, 1, __ATOMIC_RELEASE);
    return NULL;
}

/* kw_index_put_keys (the start-up load): the same entries as kw_index_put_key one by one;
 * a key whose credential is missing is skipped, not counted, and the rest still go in; a
 * key already there is updated. */
static void test_put_keys_batch(void)
{
    kw_index_t *ix = kw_index_new(4);
    int64_t now = 1800000000;
    char s[5][KW_KEY_MAX + 1];
    kw_keyrec_t k[5];
    kw_cred_t a = mkcred("cred_a", "[]", "[]", 0), b = mkcred("cred_b", "[]", "[]", 0);
    T_EQ_INT(kw_index_put_cred(ix, &a, 0), 0);
    T_EQ_INT(kw_index_put_cred(ix, &b, 0), 0);
    mkkey(&k[0], "cred_a", "key_0", s[0], 0, 0);
    mkkey(&k[1], "cred_gone", "key_1", s[1], 0, 0); /* no such credential */
    mkkey(&k[2], "cred_b", "key_2", s[2], now + 86400, 0);
    mkkey(&k[3], "cred_a", "key_3", s[3], 0, 0);
    size_t added = 99;
    T_EQ_INT(kw_index_put_keys(ix, k, 4, &added), 0);
    T_EQ_INT(added, 3);
    T_EQ_INT(kw_index_count(ix), 3);
    T_EQ_INT(verify(ix, s[0], NULL, NULL, now, NULL), KW_V_VALID);
    T_EQ_INT(verify(ix, s[1], NULL, NULL, now, NULL), KW_V_NOT_FOUND);
    T_EQ_INT(verify(ix, s[2], NULL, NULL, now, NULL), KW_V_VALID);
    T_EQ_INT(verify(ix, s[3], NULL, NULL, now, NULL), KW_V_VALID);
    k[2].revoked_at = now - 5; /* again, revoked: an update */
    mkkey(&k[4], "cred_b", "key_4", s[4], 0, 0);
    T_EQ_INT(kw_index_put_keys(ix, &k[2], 3, &added), 0);
    T_EQ_INT(kw_index_count(ix), 4);
    T_EQ_INT(verify(ix, s[2], NULL, NULL, now, NULL), KW_V_REVOKED);
    T_EQ_INT(verify(ix, s[4], NULL, NULL, now, NULL), KW_V_VALID);
    T_EQ_INT(kw_index_put_keys(ix, k, 0, &added), 0);
    T_EQ_INT(added, 0);
    kw_index_free(ix);
}

static void test_outcomes(void)
{
    kw_index_t *ix = kw_index_new(4);
    char s1[KW_KEY_MAX + 1], s2[KW_KEY_MAX + 1], s3[KW_KEY_MAX + 1], unknown[KW_KEY_MAX + 1];
    kw_keyrec_t k1, k2, k3;
    int64_t now = 1800000000;
    kw_cred_t c = mkcred("cred_a", "[\"read\",\"write\"]", "[\"10.0.0.0/8\"]", 0);
    T_EQ_INT(kw_index_put_cred(ix, &c, 30 * 86400), 0);
    mkkey(&k1, "cred_a", "key_1", s1, now + 365 * 86400, 0);
    mkkey(&k2, "cred_a", "key_2", s2, now - 1, 0);           /* expired */
    mkkey(&k3, "cred_a", "key_3", s3, now + 86400, now - 5); /* revoked */
    T_EQ_INT(kw_index_put_key(ix, &k1), 0);
    T_EQ_INT(kw_index_put_key(ix, &k2), 0);
    T_EQ_INT(kw_index_put_key(ix, &k3), 0);
    kw_key_generate("kw", unknown);

    T_EQ_INT(verify(ix, "garbage", NULL, NULL, now, NULL), KW_V_MALFORMED);
    T_EQ_INT(verify(ix, "", NULL, NULL, now, NULL), KW_V_MALFORMED);
    T_EQ_INT(verify(ix, unknown, NULL, "10.1.1.1", now, NULL), KW_V_NOT_FOUND);
    /* revoked wins over expired; expired wins over the forbidden checks */
    T_EQ_INT(verify(ix, s3, NULL, "10.1.1.1", now + 2 * 86400, NULL), KW_V_REVOKED);
    T_EQ_INT(verify(ix, s2, "nope", "192.168.0.1", now, NULL), KW_V_EXPIRED);
    T_EQ_INT(verify(ix, s1, "nope", "192.168.0.1", now, NULL), KW_V_FORBIDDEN_IP);
    T_EQ_INT(verify(ix, s1, "nope", NULL, now, NULL), KW_V_FORBIDDEN_IP); /* fail closed */
    T_EQ_INT(verify(ix, s1, "nope", "10.1.1.1", now, NULL), KW_V_FORBIDDEN_SCOPE);
    T_EQ_INT(verify(ix, s1, "read", "10.1.1.1", now, NULL), KW_V_VALID);
    T_EQ_INT(verify(ix, s1, NULL, "::ffff:10.2.3.4", now, NULL), KW_V_VALID);

    kw_verify_res_t r;
    T_EQ_INT(verify(ix, s1, "write", "10.1.1.1", now, &r), KW_V_VALID);
    T_EQ_STR(r.key_id, "key_1");
    T_EQ_STR(r.cred->id, "cred_a");
    T_EQ_STR(r.cred->facts->scopes_hdr, "read write");
    T_EQ_INT(r.warn, 0);
    T_EQ_STR(r.cred->facts->scopes_json, "[\"read\",\"write\"]");
    T_EQ_INT(r.cred->facts->nscopes, 2);
    T_EQ_STR(r.cred->facts->scopes[1], "write");
    T_EQ_INT(r.cred->facts->ncidrs, 1);
    /* another thread replaces the snapshot while r still holds the old one: its grace
     * period (the drain) waits for r's read section, and the old snapshot stays intact */
    replacer_t rp = {.ix = ix};
    rp.c = mkcred("cred_a", "[\"read\"]", "[]", 1);
    pthread_t th;
    pthread_create(&th, NULL, replacer, &rp);
    while (!__atomic_load_n(&rp.published, __ATOMIC_ACQUIRE))
        sched_yield();
    struct timespec ts = {0, 50 * 1000 * 1000};
    nanosleep(&ts, NULL);
    T_EQ_INT(__atomic_load_n(&rp.drained, __ATOMIC_ACQUIRE), 0); /* still waiting for r */
    T_EQ_STR(r.cred->facts->scopes_hdr, "read write");
    T_EQ_STR(r.cred->id, "cred_a");
    T_EQ_STR(r.key_id, "key_1");
    kw_verify_res_release(&r);
    kw_verify_res_release(&r); /* idempotent */
    pthread_join(th, NULL);
    T_EQ_INT(rp.drained, 1);
    T_EQ_INT(verify(ix, s1, NULL, NULL, now, NULL), KW_V_DISABLED);
    /* every key of the credential follows the new snapshot */
    T_EQ_INT(verify(ix, s3, NULL, NULL, now, &r), KW_V_REVOKED);
    T_CHECK(r.cred != NULL && r.cred->disabled == 1);
    kw_verify_res_release(&r);
    T_EQ_INT(verify(ix, unknown, NULL, NULL, now, &r), KW_V_NOT_FOUND);
    T_CHECK(r.cred == NULL);
    T_EQ_STR(r.key_id, "");
    kw_verify_res_release(&r);

    /* warning window */
    kw_cred_t c3 = mkcred("cred_a", "[]", "[]", 0);
    kw_index_put_cred(ix, &c3, 30 * 86400);
    T_EQ_INT(verify(ix, s1, NULL, NULL, now + 340 * 86400, &r), KW_V_VALID);
    T_EQ_INT(r.warn, 1);
    kw_verify_res_release(&r);

    /* a key whose credential is unknown is refused */
    kw_keyrec_t orphan;
    char so[KW_KEY_MAX + 1];
    mkkey(&orphan, "cred_zz", "key_o", so, 0, 0);
    T_EQ_INT(kw_index_put_key(ix, &orphan), KW_ENOTFOUND);

    char m[128];
    T_EQ_STR(kw_verify_message(KW_V_FORBIDDEN_SCOPE, "x:y", m, sizeof(m)),
             "Forbidden: API key lacks scope 'x:y'");
    T_EQ_STR(kw_verify_message(KW_V_EXPIRED, NULL, m, sizeof(m)),
             "Authentication Failed \xe2\x80\x93 Expired API Key");
    T_EQ_STR(kw_verify_code_name(KW_V_FORBIDDEN_IP), "FORBIDDEN_IP");
    T_EQ_INT(kw_verify_http_status(KW_V_FORBIDDEN_SCOPE), 403);
    kw_index_free(ix);
}

static void test_usage_and_purge(void)
{
    kw_index_t *ix = kw_index_new(2);
    char s1[KW_KEY_MAX + 1], s2[KW_KEY_MAX + 1];
    kw_keyrec_t k1, k2;
    int64_t now = 1800000000;
    kw_cred_t c = mkcred("cred_b", "[]", "[]", 0);
    kw_index_put_cred(ix, &c, 0);
    mkkey(&k1, "cred_b", "key_1", s1, 0, 0);
    mkkey(&k2, "cred_b", "key_2", s2, 0, now - 100 * 86400);
    kw_index_put_key(ix, &k1);
    kw_index_put_key(ix, &k2);
    for (int i = 0; i < 5; i++)
        verify(ix, s1, NULL, NULL, now + i, NULL);
    verify(ix, s2, NULL, NULL, now, NULL); /* revoked: not a use */

    int64_t pending, last;
    kw_index_pending_usage(ix, k1.digest, &pending, &last);
    T_EQ_INT(pending, 5);
    T_EQ_INT(last, now + 4);

    kw_usage_t *u;
    size_t n;
    T_EQ_INT(kw_index_drain_usage(ix, &u, &n), 0);
    T_EQ_INT(n, 1);
    T_EQ_STR(u[0].key_id, "key_1");
    T_EQ_INT(u[0].delta, 5);
    kw_index_restore_usage(ix, u, n); /* a failed write gives it back */
    free(u);
    T_EQ_INT(kw_index_drain_usage(ix, &u, &n), 0);
    T_EQ_INT(n, 1);
    T_EQ_INT(u[0].delta, 5);
    free(u);
    T_EQ_INT(kw_index_drain_usage(ix, &u, &n), 0);
    T_EQ_INT(n, 0);
    free(u);

    T_EQ_INT(kw_index_count(ix), 2);
    T_EQ_INT(kw_index_purge(ix, now - 90 * 86400), 1);
    T_EQ_INT(kw_index_count(ix), 1);
    T_EQ_INT(verify(ix, s2, NULL, NULL, now, NULL), KW_V_NOT_FOUND);
    T_EQ_INT(verify(ix, s1, NULL, NULL, now, NULL), KW_V_VALID);
    kw_index_free(ix);
}

/* Many keys: growth and backward-shift deletion keep every survivor findable. */
static void test_growth_and_delete(void)
{
    enum { N = 3000 };
    kw_index_t *ix = kw_index_new(1);
    static char secrets[N][KW_KEY_MAX + 1];
    kw_keyrec_t k;
    int64_t now = 1800000000;
    kw_cred_t c = mkcred("cred_c", "[]", "[]", 0);
    kw_index_put_cred(ix, &c, 0);
    for (int i = 0; i < N; i++) {
        char id[32];
        snprintf(id, sizeof(id), "key_%d", i);
        mkkey(&k, "cred_c", id, secrets[i], 0, (i % 3 == 0) ? now - 200 * 86400 : 0);
        kw_index_put_key(ix, &k);
    }
    T_EQ_INT(kw_index_count(ix), N);
    T_EQ_INT(kw_index_purge(ix, now - 90 * 86400), N / 3);
    int bad = 0;
    for (int i = 0; i < N; i++) {
        kw_verify_code_t want = (i % 3 == 0) ? KW_V_NOT_FOUND : KW_V_VALID;
        bad += verify(ix, secrets[i], NULL, NULL, now, NULL) != want;
    }
    T_EQ_INT(bad, 0);
    kw_usage_t *u;
    size_t n;
    kw_index_drain_usage(ix, &u, &n);
    T_EQ_INT(n, N - N / 3);
    free(u);
    kw_index_free(ix);
}

/* Entries of several credentials: replacing one credential's snapshot repoints all of its
 * keys and no other; purged entries leave their credential's list and are recycled for new
 * keys; snapshot text (escapes, CIDRs, empty lists) round-trips. */
static void test_cred_lists_and_recycling(void)
{
    enum { K = 40 };
    kw_index_t *ix = kw_index_new(1);
    static char sa[K][KW_KEY_MAX + 1], sb[K][KW_KEY_MAX + 1];
    int64_t now = 1800000000;
    kw_cred_t a = mkcred("cred_la", "[\"r\\\"q\",\"\\u00e9t\u00e9\"]", " [ ] ", 0);
    kw_cred_t b = mkcred("cred_lb", "[]", "[\"10.0.0.0/8\",\"2001:db8::/32\"]", 0);
    T_EQ_INT(kw_index_put_cred(ix, &a, 0), 0);
    T_EQ_INT(kw_index_put_cred(ix, &b, 0), 0);
    kw_cred_t bad = mkcred("cred_lc", "[\"x\",1]", "[]", 0);
    T_EQ_INT(kw_index_put_cred(ix, &bad, 0), KW_EINVAL);
    bad = mkcred("cred_lc", "[]", "[\"10.0.0.1/8\"]", 0);
    T_EQ_INT(kw_index_put_cred(ix, &bad, 0), KW_EINVAL);
    bad = mkcred("cred_lc", "{}", "[]", 0);
    T_EQ_INT(kw_index_put_cred(ix, &bad, 0), KW_EINVAL);
    for (int i = 0; i < K; i++) {
        kw_keyrec_t k;
        char id[32];
        snprintf(id, sizeof(id), "key_a%d", i);
        mkkey(&k, "cred_la", id, sa[i], 0, i % 2 ? now - 200 * 86400 : 0);
        T_EQ_INT(kw_index_put_key(ix, &k), 0);
        snprintf(id, sizeof(id), "key_b%d", i);
        mkkey(&k, "cred_lb", id, sb[i], 0, i % 2 ? now - 200 * 86400 : 0);
        T_EQ_INT(kw_index_put_key(ix, &k), 0);
    }
    kw_verify_res_t r;
    T_EQ_INT(verify(ix, sa[0], "r\"q", NULL, now, &r), KW_V_VALID);
    T_EQ_STR(r.cred->facts->scopes_hdr, "r\"q \xc3\xa9t\xc3\xa9");
    T_EQ_INT(r.cred->facts->ncidrs, 0);
    kw_verify_res_release(&r);
    T_EQ_INT(verify(ix, sb[0], NULL, "2001:db8::1", now, &r), KW_V_VALID);
    T_EQ_STR(r.cred->facts->scopes_hdr, "");
    T_EQ_STR(r.cred->facts->scopes_json, "[]");
    T_EQ_INT(r.cred->facts->ncidrs, 2);
    kw_verify_res_release(&r);
    /* credentials with the same scope and CIDR texts share one parsed copy */
    kw_cred_t d = mkcred("cred_ld", b.scopes_json, b.cidrs_json, 0);
    kw_keyrec_t kd;
    char sd[KW_KEY_MAX + 1];
    T_EQ_INT(kw_index_put_cred(ix, &d, 0), 0);
    mkkey(&kd, "cred_ld", "key_d", sd, 0, 0);
    T_EQ_INT(kw_index_put_key(ix, &kd), 0);
    kw_verify_res_t rb, rd;
    T_EQ_INT(verify(ix, sb[0], NULL, "10.0.0.1", now, &rb), KW_V_VALID);
    T_EQ_INT(verify(ix, sd, NULL, "10.0.0.1", now, &rd), KW_V_VALID);
    T_CHECK(rb.cred != rd.cred && rb.cred->facts == rd.cred->facts);
    T_EQ_STR(rd.cred->id, "cred_ld");
    kw_verify_res_release(&rd);
    kw_verify_res_release(&rb);
    /* ...until one changes: the other keeps its facts */
    kw_cred_t d2 = mkcred("cred_ld", "[\"only\"]", "[]", 0);
    T_EQ_INT(kw_index_put_cred(ix, &d2, 0), 0);
    T_EQ_INT(verify(ix, sd, "only", "192.168.1.1", now, NULL), KW_V_VALID);
    T_EQ_INT(verify(ix, sb[0], NULL, "192.168.1.1", now, NULL), KW_V_FORBIDDEN_IP);
    T_EQ_INT(verify(ix, sb[0], NULL, "10.9.9.9", now, NULL), KW_V_VALID);
    kw_usage_t *u;
    size_t n;
    T_EQ_INT(kw_index_drain_usage(ix, &u, &n), 0); /* a grace period: retired facts freed */
    free(u);
    T_EQ_INT(verify(ix, sb[0], NULL, "10.9.9.9", now, NULL), KW_V_VALID);
    T_EQ_INT(kw_index_purge(ix, now - 90 * 86400), K); /* half of a and b go */
    T_EQ_INT(kw_index_count(ix), K + 1);
    /* the old credential key with the shared facts still answers after the purge */

    kw_cred_t a2 = mkcred("cred_la", "[]", "[]", 1);
    T_EQ_INT(kw_index_put_cred(ix, &a2, 0), 0);
    int bad_a = 0, bad_b = 0;
    for (int i = 0; i < K; i++) {
        kw_verify_code_t want_a = i % 2 ? KW_V_NOT_FOUND : KW_V_DISABLED;
        kw_verify_code_t want_b = i % 2 ? KW_V_NOT_FOUND : KW_V_FORBIDDEN_IP;
        bad_a += verify(ix, sa[i], NULL, NULL, now, NULL) != want_a;
        bad_b += verify(ix, sb[i], NULL, "192.168.1.1", now, NULL) != want_b;
    }
    T_EQ_INT(bad_a, 0);
    T_EQ_INT(bad_b, 0);
    /* new keys reuse the purged entries; old and new keys all answer */
    static char sn[K][KW_KEY_MAX + 1];
    for (int i = 0; i < K; i++) {
        kw_keyrec_t k;
        char id[32];
        snprintf(id, sizeof(id), "key_n%d", i);
        mkkey(&k, i % 2 ? "cred_la" : "cred_lb", id, sn[i], 0, 0);
        T_EQ_INT(kw_index_put_key(ix, &k), 0);
    }
    T_EQ_INT(kw_index_count(ix), 2 * K + 1);
    kw_cred_t a3 = mkcred("cred_la", "[\"z\"]", "[]", 0);
    T_EQ_INT(kw_index_put_cred(ix, &a3, 0), 0);
    int bad_n = 0;
    for (int i = 0; i < K; i++) {
        kw_verify_code_t got = verify(ix, sn[i], "z", "10.1.1.1", now, &r);
        bad_n += got != KW_V_VALID && !(i % 2 == 0 && got == KW_V_FORBIDDEN_SCOPE);
        bad_n += strcmp(r.cred->id, i % 2 ? "cred_la" : "cred_lb") != 0;
        char id[32];
        snprintf(id, sizeof(id), "key_n%d", i);
        bad_n += strcmp(r.key_id, id) != 0;
        kw_verify_res_release(&r);
        bad_n += verify(ix, sa[i], "z", NULL, now, NULL) != (i % 2 ? KW_V_NOT_FOUND : KW_V_VALID);
    }
    T_EQ_INT(bad_n, 0);
    kw_index_free(ix);
}

typedef struct race {
    kw_index_t *ix;
    char secret[KW_KEY_MAX + 1];
    int stop;
    long valid, other;
} race_t;

static void *reader(void *arg)
{
    race_t *r = arg;
    while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
        kw_verify_code_t c = verify(r->ix, r->secret, "read", NULL, 1800000000, NULL);
        /* two readers share r: count atomically (TSan) */
        if (c == KW_V_VALID || c == KW_V_DISABLED)
            __atomic_fetch_add(&r->valid, 1, __ATOMIC_RELAXED);
        else
            __atomic_fetch_add(&r->other, 1, __ATOMIC_RELAXED);
    }
    kw_digest_thread_cleanup();
    return NULL;
}

static void test_concurrent(void)
{
    race_t r = {0};
    kw_keyrec_t k;
    r.ix = kw_index_new(16);
    kw_cred_t c = mkcred("cred_d", "[\"read\"]", "[]", 0);
    kw_index_put_cred(r.ix, &c, 0);
    mkkey(&k, "cred_d", "key_d", r.secret, 0, 0);
    kw_index_put_key(r.ix, &k);
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, reader, &r);
    for (int i = 0; i < 2000; i++) {
        kw_cred_t ci = mkcred("cred_d", "[\"read\"]", "[]", i & 1);
        kw_index_put_cred(r.ix, &ci, 0);
        kw_keyrec_t other;
        char so[KW_KEY_MAX + 1];
        char id[32];
        snprintf(id, sizeof(id), "key_x%d", i);
        mkkey(&other, "cred_d", id, so, 0, 0);
        kw_index_put_key(r.ix, &other);
    }
    __atomic_store_n(&r.stop, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    T_EQ_INT(r.other, 0);
    T_CHECK(r.valid > 0);
    kw_index_free(r.ix);
    kw_digest_thread_cleanup();
}

/* Stress: verifiers run while one writer grows the table from 16 slots, replaces the
 * credential snapshot, adds and purges retired keys and drains usage. The stable keys must
 * answer VALID every time, and every counted use must come out of a drain exactly once.
 * Run under ASan (scripts/test.sh) and, by hand, TSan: see docs/internals/verification.md. */
enum { STRESS_KEYS = 8, STRESS_READERS = 3 };

typedef struct stress {
    kw_index_t *ix;
    char secrets[STRESS_KEYS][KW_KEY_MAX + 1];
    uint8_t digests[STRESS_KEYS][KW_DIGEST_LEN];
    int stop;
} stress_t;

typedef struct stress_reader {
    stress_t *st;
    unsigned seed;
    long valid, bad;
} stress_reader_t;

static void *stress_reader(void *arg)
{
    stress_reader_t *r = arg;
    kw_verify_res_t res;
    while (!__atomic_load_n(&r->st->stop, __ATOMIC_ACQUIRE)) {
        int i = (int)(rand_r(&r->seed) % STRESS_KEYS);
        kw_verify_code_t c = verify(r->st->ix, r->st->secrets[i], "read", NULL, 1800000000, &res);
        if (c == KW_V_VALID && res.cred && strcmp(res.cred->id, "cred_s") == 0 &&
            res.cred->facts->nscopes >= 1 && strcmp(res.cred->facts->scopes[0], "read") == 0)
            r->valid++;
        else
            r->bad++;
        kw_verify_res_release(&res);
    }
    kw_digest_thread_cleanup();
    return NULL;
}

/* nreaders verifiers; with one, every counted use must be drained exactly once; with
 * several on the same keys, a use can be lost (two plain increments of one counter at
 * the same instant, see count_use) but never counted twice. */
static void stress_run(int nreaders)
{
    static stress_t st;
    stress_reader_t rd[STRESS_READERS];
    pthread_t th[STRESS_READERS];
    int64_t now = 1800000000, drained = 0;
    memset(&st, 0, sizeof(st));
    st.ix = kw_index_new(4);
    kw_cred_t c = mkcred("cred_s", "[\"read\"]", "[]", 0);
    kw_cred_t old = mkcred("cred_old", "[]", "[]", 0);
    T_EQ_INT(kw_index_put_cred(st.ix, &c, 0), 0);
    T_EQ_INT(kw_index_put_cred(st.ix, &old, 0), 0);
    for (int i = 0; i < STRESS_KEYS; i++) {
        kw_keyrec_t k;
        char id[32];
        snprintf(id, sizeof(id), "key_s%d", i);
        mkkey(&k, "cred_s", id, st.secrets[i], 0, 0);
        memcpy(st.digests[i], k.digest, KW_DIGEST_LEN);
        T_EQ_INT(kw_index_put_key(st.ix, &k), 0);
    }
    for (int i = 0; i < nreaders; i++) {
        rd[i] = (stress_reader_t){.st = &st, .seed = 7u + (unsigned)i};
        pthread_create(&th[i], NULL, stress_reader, &rd[i]);
    }
    int errors = 0;
    size_t purged = 0;
    for (int round = 0; round < 40; round++) {
        /* growth: many new keys, a third of them long retired */
        for (int j = 0; j < 150; j++) {
            kw_keyrec_t k;
            char so[KW_KEY_MAX + 1], id[32];
            snprintf(id, sizeof(id), "key_o%d_%d", round, j);
            mkkey(&k, "cred_old", id, so, 0, j % 3 == 0 ? now - 200 * 86400 : 0);
            errors += kw_index_put_key(st.ix, &k) != 0;
        }
        /* a new snapshot of the stable credential (same meaning, new memory) */
        kw_cred_t ci = mkcred("cred_s", round & 1 ? "[\"read\",\"x\"]" : "[\"read\"]", "[]", 0);
        errors += kw_index_put_cred(st.ix, &ci, round) != 0;
        /* rewrite a stable key's entry in place with the same state */
        kw_keyrec_t k = {0};
        snprintf(k.id, sizeof(k.id), "key_s%d", round % STRESS_KEYS);
        snprintf(k.cred_id, sizeof(k.cred_id), "cred_s");
        memcpy(k.digest, st.digests[round % STRESS_KEYS], KW_DIGEST_LEN);
        k.slot = 1;
        errors += kw_index_put_key(st.ix, &k) != 0;
        if (round % 5 == 4)
            purged += kw_index_purge(st.ix, now - 90 * 86400);
        kw_usage_t *u;
        size_t n;
        if (kw_index_drain_usage(st.ix, &u, &n) == 0) {
            for (size_t i = 0; i < n; i++)
                drained += u[i].delta;
            free(u);
        }
    }
    __atomic_store_n(&st.stop, 1, __ATOMIC_RELEASE);
    long valid = 0, bad = 0;
    for (int i = 0; i < nreaders; i++) {
        pthread_join(th[i], NULL);
        valid += rd[i].valid;
        bad += rd[i].bad;
    }
    kw_usage_t *u;
    size_t n;
    T_EQ_INT(kw_index_drain_usage(st.ix, &u, &n), 0);
    for (size_t i = 0; i < n; i++)
        drained += u[i].delta;
    free(u);
    T_EQ_INT(errors, 0);
    T_EQ_INT(bad, 0);
    T_CHECK(valid > 0);
    T_EQ_INT(drained, valid); /* no use lost or counted twice, however many readers */
    T_EQ_INT(purged, 40 * 50);
    T_EQ_INT(kw_index_count(st.ix), STRESS_KEYS + 40 * 100);
    printf("# stress, %d readers: %ld verifications, %ld uses drained, %d writer rounds\n",
           nreaders, valid, (long)drained, 40);
    kw_index_free(st.ix);
}

static void test_stress_writer_readers(void)
{
    stress_run(1);
    stress_run(STRESS_READERS);
}

/* Key ids longer than the entry's inline bytes live on the heap: verify answers them,
 * drains report them, purge and free release them (ASan checks the frees). Times past
 * 2106 saturate in the entry's 32-bit fields and still count as set. */
static void test_long_key_id(void)
{
    kw_index_t *ix = kw_index_new(4);
    char s1[KW_KEY_MAX + 1], s2[KW_KEY_MAX + 1];
    kw_keyrec_t k1, k2;
    int64_t now = 1800000000;
    const char *longid = "key_0123456789012345678901234567890"; /* 35 characters */
    kw_cred_t c = mkcred("cred_l", "[]", "[]", 0);
    T_EQ_INT(kw_index_put_cred(ix, &c, 0), 0);
    mkkey(&k1, "cred_l", longid, s1, 0, 0);
    mkkey(&k2, "cred_l", "key_0123456789012345678901234", s2, 0, 5000000000LL); /* 29 chars */
    T_EQ_INT(kw_index_put_key(ix, &k1), 0);
    T_EQ_INT(kw_index_put_key(ix, &k2), 0);
    kw_verify_res_t r;
    T_EQ_INT(verify(ix, s1, NULL, NULL, now, &r), KW_V_VALID);
    T_EQ_STR(r.key_id, longid);
    kw_verify_res_release(&r);
    T_EQ_INT(verify(ix, s2, NULL, NULL, now, &r), KW_V_REVOKED);
    T_EQ_STR(r.key_id, "key_0123456789012345678901234");
    kw_verify_res_release(&r);
    verify(ix, s1, NULL, NULL, 7000000000LL, NULL); /* last use past 2106: saturated */
    int64_t pending, last;
    kw_index_pending_usage(ix, k1.digest, &pending, &last);
    T_EQ_INT(pending, 2);
    T_EQ_INT(last, 4294967295LL);
    kw_usage_t *u;
    size_t n;
    T_EQ_INT(kw_index_drain_usage(ix, &u, &n), 0);
    T_EQ_INT(n, 1);
    T_EQ_STR(u[0].key_id, longid);
    T_EQ_INT(u[0].delta, 2);
    free(u);
    k1.revoked_at = now - 100 * 86400; /* purged: its heap id is freed */
    T_EQ_INT(kw_index_put_key(ix, &k1), 0);
    T_EQ_INT(kw_index_purge(ix, now - 90 * 86400), 1);
    T_EQ_INT(verify(ix, s1, NULL, NULL, now, NULL), KW_V_NOT_FOUND);
    T_EQ_INT(kw_index_reserve(ix, 1000, 1000), 0); /* resized with an entry in it */
    T_EQ_INT(verify(ix, s2, NULL, NULL, now, NULL), KW_V_REVOKED);
    kw_index_free(ix);
}

/* The facts a verify copies into the entry follow every snapshot change (disabled, CIDRs
 * added and removed, policy moved), and policies past the index's policy array (more than
 * 255) still give the right warning window through the snapshot. */
/* More threads verifying at once than there are reader records (1024): the extra ones read
 * as overflow readers; every answer stays right and a writer's grace period completes
 * while they hold and after they leave. */
enum { MANY_THREADS = 1100 };

typedef struct many {
    kw_index_t *ix;
    char secret[KW_KEY_MAX + 1];
    pthread_barrier_t held, done;
    int bad;
} many_t;

static void *many_reader(void *arg)
{
    many_t *m = arg;
    if (verify(m->ix, m->secret, "read", NULL, 1800000000, NULL) != KW_V_VALID)
        __atomic_fetch_add(&m->bad, 1, __ATOMIC_RELAXED);
    pthread_barrier_wait(&m->held); /* every thread alive: records taken, the rest overflow */
    if (verify(m->ix, m->secret, "read", NULL, 1800000000, NULL) != KW_V_VALID)
        __atomic_fetch_add(&m->bad, 1, __ATOMIC_RELAXED);
    pthread_barrier_wait(&m->done);
    return NULL;
}

static void test_many_reader_threads(void)
{
    static many_t m;
    static pthread_t th[MANY_THREADS];
    kw_keyrec_t k;
    memset(&m, 0, sizeof(m));
    m.ix = kw_index_new(16);
    kw_cred_t c = mkcred("cred_m", "[\"read\"]", "[]", 0);
    kw_index_put_cred(m.ix, &c, 0);
    mkkey(&k, "cred_m", "key_m", m.secret, 0, 0);
    kw_index_put_key(m.ix, &k);
    pthread_barrier_init(&m.held, NULL, MANY_THREADS + 1);
    pthread_barrier_init(&m.done, NULL, MANY_THREADS + 1);
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setstacksize(&at, 256 * 1024);
    int started = 0;
    for (int i = 0; i < MANY_THREADS; i++)
        started += pthread_create(&th[i], &at, many_reader, &m) == 0;
    T_EQ_INT(started, MANY_THREADS);
    if (started != MANY_THREADS)
        abort(); /* the barriers would wait forever */
    pthread_barrier_wait(&m.held);
    for (int i = 0; i < 50; i++) { /* snapshots replaced and reclaimed meanwhile */
        kw_cred_t ci = mkcred("cred_m", "[\"read\"]", "[]", 0);
        kw_index_put_cred(m.ix, &ci, 30 * 86400);
        kw_usage_t *u;
        size_t n;
        if (kw_index_drain_usage(m.ix, &u, &n) == 0)
            free(u);
    }
    pthread_barrier_wait(&m.done);
    for (int i = 0; i < MANY_THREADS; i++)
        pthread_join(th[i], NULL);
    pthread_attr_destroy(&at);
    T_EQ_INT(m.bad, 0);
    T_EQ_INT(verify(m.ix, m.secret, "read", NULL, 1800000000, NULL), KW_V_VALID);
    pthread_barrier_destroy(&m.held);
    pthread_barrier_destroy(&m.done);
    kw_index_free(m.ix);
}

static void test_entry_copies(void)
{
    kw_index_t *ix = kw_index_new(16);
    char s1[KW_KEY_MAX + 1], s2[KW_KEY_MAX + 1], name[64];
    int64_t now = 1700000000;
    kw_keyrec_t k;
    kw_verify_res_t r;
    kw_cred_t c = mkcred("cred_a", "[\"x\"]", "[]", 0);
    T_EQ_INT(kw_index_put_cred(ix, &c, 0), 0);
    mkkey(&k, "cred_a", "key_a", s1, now + 3600, 0);
    T_EQ_INT(kw_index_put_key(ix, &k), 0);
    T_EQ_INT(verify(ix, s1, NULL, NULL, now, NULL), KW_V_VALID);
    c.disabled = 1;
    T_EQ_INT(kw_index_put_cred(ix, &c, 0), 0);
    T_EQ_INT(verify(ix, s1, NULL, NULL, now, NULL), KW_V_DISABLED);
    c.disabled = 0;
    c.cidrs_json = "[\"10.0.0.0/8\"]";
    T_EQ_INT(kw_index_put_cred(ix, &c, 0), 0);
    T_EQ_INT(verify(ix, s1, NULL, "192.168.0.1", now, NULL), KW_V_FORBIDDEN_IP);
    T_EQ_INT(verify(ix, s1, NULL, "10.1.2.3", now, NULL), KW_V_VALID);
    c.cidrs_json = "[]";
    T_EQ_INT(kw_index_put_cred(ix, &c, 0), 0);
    T_EQ_INT(verify(ix, s1, NULL, "192.168.0.1", now, NULL), KW_V_VALID);
    /* 300 policies: the last ones have no array index */
    for (int i = 0; i < 300; i++) {
        snprintf(name, sizeof(name), "pol%d", i);
        T_EQ_INT(kw_index_put_policy(ix, name, i == 299 ? 7200 : 60), 0);
    }
    snprintf(c.policy, sizeof(c.policy), "pol299");
    T_EQ_INT(kw_index_put_cred(ix, &c, 7200), 0);
    T_EQ_INT(verify(ix, s1, NULL, NULL, now, &r), KW_V_VALID);
    T_EQ_INT(r.warn, 1); /* expires in 1 h, window 2 h */
    kw_verify_res_release(&r);
    T_EQ_INT(kw_index_put_policy(ix, "pol299", 60), 0);
    T_EQ_INT(verify(ix, s1, NULL, NULL, now, &r), KW_V_VALID);
    T_EQ_INT(r.warn, 0);
    kw_verify_res_release(&r);
    /* a key added later under the same credential gets the current copies */
    c.disabled = 1;
    T_EQ_INT(kw_index_put_cred(ix, &c, 60), 0);
    mkkey(&k, "cred_a", "key_b", s2, now + 30, 0);
    k.slot = 2;
    T_EQ_INT(kw_index_put_key(ix, &k), 0);
    T_EQ_INT(verify(ix, s2, NULL, NULL, now, &r), KW_V_DISABLED);
    T_EQ_INT(r.warn, 1);
    kw_verify_res_release(&r);
    snprintf(c.policy, sizeof(c.policy), "pol1");
    c.disabled = 0;
    T_EQ_INT(kw_index_put_cred(ix, &c, 60), 0);
    T_EQ_INT(verify(ix, s2, NULL, NULL, now, &r), KW_V_VALID);
    T_EQ_INT(r.warn, 1);
    kw_verify_res_release(&r);
    T_EQ_INT(verify(ix, s1, NULL, NULL, now, &r), KW_V_VALID);
    T_EQ_INT(r.warn, 0);
    kw_verify_res_release(&r);
    kw_index_free(ix);
}

int main(void)
{
    T_RUN(test_outcomes);
    T_RUN(test_put_keys_batch);
    T_RUN(test_entry_copies);
    T_RUN(test_usage_and_purge);
    T_RUN(test_growth_and_delete);
    T_RUN(test_cred_lists_and_recycling);
    T_RUN(test_concurrent);
    T_RUN(test_stress_writer_readers);
    T_RUN(test_long_key_id);
    T_RUN(test_many_reader_threads);
    kw_digest_thread_cleanup();
    T_DONE();
}
