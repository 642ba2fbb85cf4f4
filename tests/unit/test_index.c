/* test_index.c - the verification index: every outcome in SPEC order, usage counting and
 * draining, snapshots replaced under readers, purge, and a concurrent reader/writer run. */
#include <pthread.h>
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

static kw_verify_code_t verify(kw_index_t *ix, const char *key, const char *scope,
                               const char *ip, int64_t now, kw_verify_res_t *out)
{
    kw_ip_t a;
    kw_verify_res_t r;
    if (ip)
        kw_ip_parse(ip, strlen(ip), &a);
    kw_verify_req_t q = {.key = key, .key_len = strlen(key), .scope = scope,
                         .scope_len = scope ? strlen(scope) : 0, .ip = ip ? &a : NULL,
                         .now = now};
    kw_index_verify(ix, &q, &r);
    kw_verify_code_t c = r.code;
    if (out)
        *out = r;
    else
        kw_verify_res_release(&r);
    return c;
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
    T_EQ_STR(r.cred->scopes_hdr, "read write");
    T_EQ_INT(r.warn, 0);
    /* replace the snapshot while r still holds the old one */
    kw_cred_t c2 = mkcred("cred_a", "[\"read\"]", "[]", 1);
    T_EQ_INT(kw_index_put_cred(ix, &c2, 30 * 86400), 0);
    T_EQ_STR(r.cred->scopes_hdr, "read write");
    kw_verify_res_release(&r);
    T_EQ_INT(verify(ix, s1, NULL, NULL, now, NULL), KW_V_DISABLED);

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
        if (c == KW_V_VALID || c == KW_V_DISABLED)
            r->valid++;
        else
            r->other++;
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

int main(void)
{
    T_RUN(test_outcomes);
    T_RUN(test_usage_and_purge);
    T_RUN(test_growth_and_delete);
    T_RUN(test_concurrent);
    kw_digest_thread_cleanup();
    T_DONE();
}
