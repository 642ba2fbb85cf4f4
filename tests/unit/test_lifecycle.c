/* test_lifecycle.c - credentials and the two key slots against a real SQLite store:
 * policy checks on lifetimes, slot rule, roll, invalidate (with unused_for), delete,
 * concurrent key creation, and the first-start admin key file. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app/admin_key.h"
#include "core/audit.h"
#include "core/key.h"
#include "core/lifecycle.h"
#include "store/sqlite.h"
#include "store/store_impl.h"
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

/* ---- group commit: ops queued while the lifecycle lock is held run as one batch ---- */

typedef struct gc_job {
    int kind; /* 0 create, 1 new key, 2 create policy */
    const char *arg;
    int rc;
    kw_cred_t c;
    kw_keyrec_t k;
    kw_err_t e;
    char s[KW_KEY_MAX + 1];
} gc_job_t;

static void *gc_main(void *arg)
{
    gc_job_t *j = arg;
    kw_cred_in_t in = {.name = "gc"};
    kw_policy_t p;
    switch (j->kind) {
    case 0:
        j->rc = kw_lc_cred_create(&lc, "test", &in, NULL, &j->c, &j->k, j->s, &j->e);
        break;
    case 1:
        j->rc = kw_lc_key_new(&lc, "test", j->arg, NULL, &j->k, j->s, &j->e);
        break;
    default:
        kw_policy_defaults(&p, j->arg);
        j->rc = kw_lc_policy_put(&lc, "test", &p, 1, &j->e);
    }
    kw_digest_thread_cleanup();
    return NULL;
}

/* Queue the jobs in order while holding lc.mu (the leader waits for it before taking the
 * queue), then let them run: they must form exactly one batch. */
static void gc_batch(gc_job_t *jobs, int n)
{
    pthread_t th[16];
    pthread_mutex_lock(&lc.mu);
    uint64_t b0 = lc.batches;
    for (int i = 0; i < n; i++) {
        pthread_create(&th[i], NULL, gc_main, &jobs[i]);
        while (kw_lc_queued(&lc) < (size_t)i + 1)
            usleep(1000);
    }
    pthread_mutex_unlock(&lc.mu);
    for (int i = 0; i < n; i++)
        pthread_join(th[i], NULL);
    pthread_mutex_lock(&lc.mu);
    T_EQ_INT((int)(lc.batches - b0), 1);
    T_EQ_INT((int)lc.last_batch, n);
    pthread_mutex_unlock(&lc.mu);
}

static void sql(const char *text)
{
    kw_err_t e = {0};
    T_EQ_INT(kw_store_begin(st, &e), 0);
    T_EQ_INT(kw_store_sqlite_exec(st, text, &e), 0);
    T_EQ_INT(kw_store_commit(st, &e), 0);
}

static void gc_check_created(gc_job_t *j, kw_store_t *other)
{
    kw_cred_t got;
    kw_keyrec_t *keys = NULL;
    size_t n = 0;
    kw_err_t e = {0};
    T_EQ_INT(j->rc, 0);
    T_EQ_INT(vfy(j->s), KW_V_VALID);
    /* committed: another connection to the file sees it with its key */
    T_EQ_INT(kw_store_cred_get(other, j->c.id, &got, &e), 0);
    kw_cred_clear(&got);
    T_EQ_INT(kw_store_key_list_cred(other, j->c.id, &keys, &n, &e), 0);
    T_EQ_INT((int)n, 1);
    if (n == 1)
        T_EQ_STR(keys[0].id, j->k.id);
    free(keys);
    kw_cred_clear(&j->c);
}

static void test_group_commit(void)
{
    kw_cred_t full;
    kw_keyrec_t k1, k2;
    kw_err_t e = {0};
    kw_policy_t pol;
    kw_audit_verdict_t v;
    char s1[KW_KEY_MAX + 1], s2[KW_KEY_MAX + 1], url[128];
    kw_cred_in_t in = {.name = "full"};
    T_EQ_INT(kw_lc_cred_create(&lc, "test", &in, NULL, &full, &k1, s1, &e), 0);
    T_EQ_INT(kw_lc_key_new(&lc, "test", full.id, NULL, &k2, s2, &e), 0);
    snprintf(url, sizeof(url), "sqlite:%s/k.db", dir);
    kw_store_t *other = NULL;
    T_EQ_INT(kw_store_open(url, &other, &e), 0);
    T_EQ_INT(kw_audit_verify(st, &v, &e), 0);
    int64_t records = v.records;

    /* A refused third key and an op whose audit record cannot be written (RAISE(ABORT):
     * that statement fails, SQLite keeps the transaction) fail alone, in the middle of
     * the batch; the creations around them commit. */
    sql("CREATE TRIGGER gc_abort BEFORE INSERT ON audit WHEN NEW.target = 'gc-abort'"
        " BEGIN SELECT RAISE(ABORT, 'refused'); END");
    gc_job_t a[6] = {{.kind = 0},
                     {.kind = 0},
                     {.kind = 1, .arg = full.id},
                     {.kind = 0},
                     {.kind = 2, .arg = "gc-abort"},
                     {.kind = 0}};
    gc_batch(a, 6);
    T_EQ_INT(a[2].rc, KW_ECONFLICT);
    T_EQ_INT(a[4].rc, KW_ESTORE);
    T_CHECK(strstr(a[4].e.msg, "audit") != NULL);
    T_EQ_INT(kw_store_policy_get(other, "gc-abort", &pol, &e), KW_ENOTFOUND);
    for (int i = 0; i < 6; i++)
        if (a[i].kind == 0)
            gc_check_created(&a[i], other);
    kw_keyrec_t *keys = NULL;
    size_t n = 0;
    T_EQ_INT(kw_store_key_list_cred(other, full.id, &keys, &n, &e), 0);
    T_EQ_INT((int)n, 2);
    free(keys);
    records += 4;

    /* RAISE(ROLLBACK) aborts the whole transaction: that op fails, the two before it run
     * again in a new transaction and, like the two after it, commit. */
    sql("CREATE TRIGGER gc_rollback BEFORE INSERT ON audit WHEN NEW.target = 'gc-rollback'"
        " BEGIN SELECT RAISE(ROLLBACK, 'refused'); END");
    gc_job_t b[5] = {
        {.kind = 0}, {.kind = 0}, {.kind = 2, .arg = "gc-rollback"}, {.kind = 0}, {.kind = 0}};
    gc_batch(b, 5);
    T_EQ_INT(b[2].rc, KW_ESTORE);
    T_EQ_INT(kw_store_policy_get(other, "gc-rollback", &pol, &e), KW_ENOTFOUND);
    for (int i = 0; i < 5; i++)
        if (b[i].kind == 0)
            gc_check_created(&b[i], other);
    records += 4;

    /* the audit trail holds one record per committed op, chained in commit order */
    T_EQ_INT(kw_audit_verify(other, &v, &e), 0);
    T_EQ_INT(v.ok, 1);
    T_EQ_INT(v.records, records);
    sql("DROP TRIGGER gc_abort; DROP TRIGGER gc_rollback;");
    kw_store_close(other);
    kw_cred_clear(&full);
}

/* Many callers at once, unsynchronised: every creation succeeds, is verifiable when its
 * call returns and is in the file; fewer transactions than creations. */
static void *many_main(void *arg)
{
    gc_job_t *j = arg;
    kw_cred_in_t in = {.name = "many"};
    for (int i = 0; i < 25; i++) {
        kw_cred_t c;
        kw_keyrec_t k;
        char s[KW_KEY_MAX + 1];
        int rc = kw_lc_cred_create(&lc, "test", &in, NULL, &c, &k, s, &j->e);
        if (rc == 0 && vfy(s) != KW_V_VALID)
            rc = KW_EINTERNAL;
        if (rc)
            j->rc = rc;
        kw_cred_clear(&c);
    }
    kw_digest_thread_cleanup();
    return NULL;
}

static void test_many_concurrent(void)
{
    enum { N = 12 };
    pthread_t th[N];
    gc_job_t j[N];
    kw_err_t e = {0};
    kw_audit_verdict_t v;
    memset(j, 0, sizeof(j));
    size_t before = kw_index_count(ix);
    pthread_mutex_lock(&lc.mu);
    uint64_t b0 = lc.batches, o0 = lc.batched_ops;
    pthread_mutex_unlock(&lc.mu);
    for (int i = 0; i < N; i++)
        pthread_create(&th[i], NULL, many_main, &j[i]);
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        T_EQ_INT(j[i].rc, 0);
    }
    T_EQ_INT((int)(kw_index_count(ix) - before), N * 25);
    pthread_mutex_lock(&lc.mu);
    T_EQ_INT((int)(lc.batched_ops - o0), N * 25);
    T_CHECK(lc.batches - b0 < (uint64_t)N * 25);
    printf("# %d creations in %d transactions\n", N * 25, (int)(lc.batches - b0));
    pthread_mutex_unlock(&lc.mu);
    T_EQ_INT(kw_audit_verify(st, &v, &e), 0);
    T_EQ_INT(v.ok, 1);
}

static void test_bootstrap(void)
{
    char path[256];
    kw_err_t e = {0};
    int created = 0;
    struct stat sb;
    snprintf(path, sizeof(path), "%s/admin.key", dir);
    T_EQ_INT(kw_admin_key_bootstrap(&lc, path, &created, &e), 0);
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
    T_EQ_INT(kw_admin_key_bootstrap(&lc, path, &created, &e), 0);
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
    T_EQ_INT(kw_admin_key_bootstrap(&lc2, path, &created, &e), KW_ECONFLICT);
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
    T_RUN(test_group_commit);
    T_RUN(test_many_concurrent);
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
