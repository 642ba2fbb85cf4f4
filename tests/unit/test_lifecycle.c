/* test_lifecycle.c - credentials and the two key slots against a real SQLite store:
 * policy checks on lifetimes, slot rule, roll, invalidate (with unused_for), delete,
 * concurrent key creation, and the first-start admin key file. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/key.h"
#include "core/lifecycle.h"
#include "t.h"

static char dir[] = "/tmp/kw-test-lc-XXXXXX";
static kw_store_t *st;
static kw_index_t *ix;
static kw_lc_t lc;

static kw_verify_code_t vfy(const char *secret)
{
    kw_verify_res_t r;
    kw_verify_req_t q = {.key = secret, .key_len = strlen(secret), .now = kw_now()};
    kw_index_verify(ix, &q, &r);
    kw_verify_res_release(&r);
    return r.code;
}

static void setup(void)
{
    char url[128];
    kw_err_t e = {0};
    if (mkdtemp(dir) == NULL)
        abort();
    snprintf(url, sizeof(url), "sqlite:%s/k.db", dir);
    if (kw_store_open(url, &st, &e) != 0) {
        printf("store open: %s\n", e.msg);
        abort();
    }
    ix = kw_index_new(16);
    kw_lc_init(&lc, st, ix);
}

static void test_create_and_policy(void)
{
    kw_cred_t c;
    kw_keyrec_t k;
    kw_err_t e = {0};
    char s[KW_KEY_MAX + 1];
    kw_cred_in_t in = {.name = "billing", .scopes_json = "[\"orders:read\"]"};
    int64_t now = kw_now();

    T_EQ_INT(kw_lc_cred_create(&lc, "test", &in, NULL, &c, &k, s, &e), 0);
    T_EQ_INT(k.slot, 1);
    T_CHECK(k.expires_at >= now + 365 * 86400 && k.expires_at <= now + 365 * 86400 + 2);
    T_EQ_INT(kw_key_check(s, strlen(s), NULL), 0);
    T_EQ_INT(vfy(s), KW_V_VALID);
    T_EQ_STR(c.policy, "default");
    kw_cred_clear(&c);

    kw_expiry_in_t too_long = {KW_EXP_LIFETIME, 400LL * 86400};
    T_EQ_INT(kw_lc_cred_create(&lc, "test", &in, &too_long, &c, &k, s, &e), KW_EPOLICY);
    T_EQ_STR(e.field, "lifetime");
    kw_expiry_in_t never = {KW_EXP_NEVER, 0};
    T_EQ_INT(kw_lc_cred_create(&lc, "test", &in, &never, &c, &k, s, &e), KW_EPOLICY);
    kw_expiry_in_t past = {KW_EXP_AT, now - 10};
    T_EQ_INT(kw_lc_cred_create(&lc, "test", &in, &past, &c, &k, s, &e), KW_EINVAL);
    kw_cred_in_t bad = {.name = "x", .policy = "nosuch"};
    T_EQ_INT(kw_lc_cred_create(&lc, "test", &bad, NULL, &c, &k, s, &e), KW_EINVAL);
    T_EQ_STR(e.field, "policy");
    kw_cred_in_t badp = {.name = "x", .prefix = "Bad"};
    T_EQ_INT(kw_lc_cred_create(&lc, "test", &badp, NULL, &c, &k, s, &e), KW_EINVAL);
    kw_cred_in_t pre = {.name = "x", .prefix = "acme"};
    T_EQ_INT(kw_lc_cred_create(&lc, "test", &pre, NULL, &c, &k, s, &e), 0);
    T_CHECK(strncmp(s, "acme_", 5) == 0);
    kw_cred_clear(&c);
}

static void test_slots_roll_invalidate(void)
{
    kw_cred_t c;
    kw_keyrec_t k1, k2, k3, prev;
    kw_err_t e = {0};
    char s1[KW_KEY_MAX + 1], s2[KW_KEY_MAX + 1], s3[KW_KEY_MAX + 1];
    kw_cred_in_t in = {.name = "rot"};
    T_EQ_INT(kw_lc_cred_create(&lc, "test", &in, NULL, &c, &k1, s1, &e), 0);
    T_EQ_INT(kw_lc_key_new(&lc, "test", c.id, NULL, &k2, s2, &e), 0);
    T_EQ_INT(k2.slot, 2);
    T_EQ_INT(kw_lc_key_new(&lc, "test", c.id, NULL, &k3, s3, &e), KW_ECONFLICT);
    T_EQ_INT(vfy(s1), KW_V_VALID);
    T_EQ_INT(vfy(s2), KW_V_VALID);

    /* s1 was just used: unused_for refuses */
    T_EQ_INT(kw_lc_key_invalidate(&lc, "test", k1.id, "rotation", 3600, &k1, &e), KW_ECONFLICT);
    T_EQ_STR(e.field, "unused_for");
    T_EQ_INT(kw_lc_key_invalidate(&lc, "test", k1.id, "rotation", 0, &k1, &e), 0);
    T_EQ_INT(vfy(s1), KW_V_REVOKED);
    T_EQ_INT(vfy(s2), KW_V_VALID);
    T_EQ_INT(kw_lc_key_invalidate(&lc, "test", k1.id, NULL, 0, &k1, &e), KW_ECONFLICT);

    /* the freed slot 1 takes the next key */
    T_EQ_INT(kw_lc_key_new(&lc, "test", c.id, NULL, &k3, s3, &e), 0);
    T_EQ_INT(k3.slot, 1);
    /* roll k3 (slot 1): the other slot (k2) is usable -> conflict */
    T_EQ_INT(kw_lc_key_roll(&lc, "test", k3.id, 3600, NULL, &k1, &prev, s1, &e), KW_ECONFLICT);
    T_EQ_INT(kw_lc_key_invalidate(&lc, "test", k2.id, NULL, 0, &k2, &e), 0);
    /* overlap above max_roll_overlap (7d) */
    T_EQ_INT(kw_lc_key_roll(&lc, "test", k3.id, 8 * 86400, NULL, &k1, &prev, s1, &e), KW_EPOLICY);
    int64_t now = kw_now();
    T_EQ_INT(kw_lc_key_roll(&lc, "test", k3.id, 3600, NULL, &k1, &prev, s1, &e), 0);
    T_EQ_INT(k1.slot, 2);
    T_EQ_STR(prev.id, k3.id);
    T_CHECK(prev.expires_at >= now + 3600 && prev.expires_at <= now + 3602);
    T_EQ_INT(vfy(s1), KW_V_VALID);
    T_EQ_INT(vfy(s3), KW_V_VALID); /* overlap: both work */
    kw_keyrec_t got;
    T_EQ_INT(kw_lc_key_get(&lc, k3.id, &got, &e), 0);
    T_EQ_INT(got.expires_at, prev.expires_at);
    T_EQ_INT(got.use_count, 1);   /* counted in memory, merged into reads */
    char scratch[KW_KEY_MAX + 1]; /* failed calls wipe the secret buffer */
    T_EQ_INT(kw_lc_key_roll(&lc, "test", k2.id, 3600, NULL, &k1, &prev, scratch, &e), KW_ECONFLICT);

    /* delete revokes every key */
    T_EQ_INT(kw_lc_cred_delete(&lc, "test", c.id, &e), 0);
    T_EQ_INT(vfy(s1), KW_V_REVOKED);
    T_EQ_INT(vfy(s3), KW_V_REVOKED);
    kw_cred_t gone;
    T_EQ_INT(kw_store_cred_get(st, c.id, &gone, &e), KW_ENOTFOUND);
    kw_cred_clear(&c);
}

static void test_update(void)
{
    kw_cred_t c, got;
    kw_keyrec_t k;
    kw_err_t e = {0};
    char s[KW_KEY_MAX + 1];
    kw_cred_in_t in = {.name = "upd", .scopes_json = "[\"a\"]"};
    T_EQ_INT(kw_lc_cred_create(&lc, "test", &in, NULL, &c, &k, s, &e), 0);
    kw_cred_in_t patch = {.has_disabled = 1, .disabled = 1, .name = "renamed"};
    T_EQ_INT(kw_lc_cred_update(&lc, "test", c.id, &patch, &e), 0);
    T_EQ_INT(vfy(s), KW_V_DISABLED);
    T_EQ_INT(kw_store_cred_get(st, c.id, &got, &e), 0);
    T_EQ_STR(got.name, "renamed");
    T_EQ_STR(got.scopes_json, "[\"a\"]");
    kw_cred_clear(&got);
    kw_cred_in_t en = {.has_disabled = 1, .disabled = 0, .cidrs_json = "[\"10.0.0.0/8\"]"};
    T_EQ_INT(kw_lc_cred_update(&lc, "test", c.id, &en, &e), 0);
    T_EQ_INT(vfy(s), KW_V_FORBIDDEN_IP);
    T_EQ_INT(kw_lc_cred_update(&lc, "test", "cred_nope", &en, &e), KW_ENOTFOUND);
    kw_cred_clear(&c);
}

typedef struct racer {
    const char *cred;
    int rc;
} racer_t;

static void *race_new(void *arg)
{
    racer_t *r = arg;
    kw_keyrec_t k;
    kw_err_t e = {0};
    char s[KW_KEY_MAX + 1];
    r->rc = kw_lc_key_new(&lc, "test", r->cred, NULL, &k, s, &e);
    kw_digest_thread_cleanup();
    return NULL;
}

static void test_concurrent_slots(void)
{
    enum { N = 8 };
    kw_cred_t c;
    kw_keyrec_t k;
    kw_err_t e = {0};
    char s[KW_KEY_MAX + 1];
    kw_cred_in_t in = {.name = "race"};
    T_EQ_INT(kw_lc_cred_create(&lc, "test", &in, NULL, &c, &k, s, &e), 0);
    pthread_t th[N];
    racer_t r[N];
    for (int i = 0; i < N; i++) {
        r[i].cred = c.id;
        pthread_create(&th[i], NULL, race_new, &r[i]);
    }
    int ok = 0, conflict = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        ok += r[i].rc == 0;
        conflict += r[i].rc == KW_ECONFLICT;
    }
    T_EQ_INT(ok, 1);
    T_EQ_INT(conflict, N - 1);
    kw_cred_clear(&c);
}

static void test_bootstrap(void)
{
    char path[256];
    kw_err_t e = {0};
    int created = 0;
    struct stat sb;
    snprintf(path, sizeof(path), "%s/admin.key", dir);
    T_EQ_INT(kw_lc_bootstrap_admin(&lc, path, &created, &e), 0);
    T_EQ_INT(created, 1);
    T_EQ_INT(stat(path, &sb), 0);
    T_EQ_INT(sb.st_mode & 0777, 0600);
    FILE *f = fopen(path, "r");
    char key[128] = "";
    if (f) {
        if (fgets(key, sizeof(key), f) == NULL)
            key[0] = '\0';
        fclose(f);
    }
    key[strcspn(key, "\n")] = '\0';
    T_EQ_INT(vfy(key), KW_V_VALID);
    /* second start: nothing written, file unchanged */
    T_EQ_INT(kw_lc_bootstrap_admin(&lc, path, &created, &e), 0);
    T_EQ_INT(created, 0);
    kw_wipe(key, sizeof(key));

    /* a fresh store with an existing file refuses rather than overwrite */
    char url[256];
    kw_store_t *st2;
    snprintf(url, sizeof(url), "sqlite:%s/k2.db", dir);
    T_EQ_INT(kw_store_open(url, &st2, &e), 0);
    kw_index_t *ix2 = kw_index_new(4);
    kw_lc_t lc2;
    kw_lc_init(&lc2, st2, ix2);
    T_EQ_INT(kw_lc_bootstrap_admin(&lc2, path, &created, &e), KW_ECONFLICT);
    kw_lc_destroy(&lc2);
    kw_index_free(ix2);
    kw_store_close(st2);
}

static void test_reload(void)
{
    kw_err_t e = {0};
    kw_index_t *ix2 = kw_index_new(4);
    kw_lc_t lc2;
    kw_lc_init(&lc2, st, ix2);
    T_EQ_INT(kw_lc_load_index(&lc2, kw_now() - 90 * 86400, &e), 0);
    T_EQ_INT(kw_index_count(ix2), kw_index_count(ix));
    kw_lc_destroy(&lc2);
    kw_index_free(ix2);
}

int main(void)
{
    setup();
    T_RUN(test_create_and_policy);
    T_RUN(test_slots_roll_invalidate);
    T_RUN(test_update);
    T_RUN(test_concurrent_slots);
    T_RUN(test_bootstrap);
    T_RUN(test_reload);
    kw_lc_destroy(&lc);
    kw_index_free(ix);
    kw_store_close(st);
    kw_digest_thread_cleanup();
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        printf("# could not remove %s\n", dir);
    T_DONE();
}
