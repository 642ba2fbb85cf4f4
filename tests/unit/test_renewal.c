/* test_renewal.c - renewal's own rules against a real SQLite store (core/renewal.h):
 * renewing now (extend_by, expires_at, the max_lifetime cap), the approval workflow
 * (request, one pending request per key, self-approval refused, approve, reject, decided
 * once), the lazy cancellation of requests whose key lapsed first, policies that refuse
 * renewal, the events and audit records written with each change, and renewals running
 * as operations of the group-commit engine beside other writers. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/audit.h"
#include "core/key.h"
#include "core/renewal.h"
#include "store/sqlite.h"
#include "store/store_impl.h"
#include "store/store_notify.h"
#include "t.h"

#define DAY (86400LL)

static char dir[] = "/tmp/kw-test-ren-XXXXXX";
static kw_store_t *st;
static kw_index_t *ix;
static kw_lc_t lc;

static void setup(void)
{
    char url[128];
    kw_err_t e = {0};
    if (mkdtemp(dir) == NULL)
        abort();
    snprintf(url, sizeof(url), "sqlite:%s/r.db", dir);
    if (kw_store_open(url, &st, &e) != 0) {
        printf("store open: %s\n", e.msg);
        abort();
    }
    ix = kw_index_new(16);
    kw_lc_init(&lc, st, ix);
}

static void sql(const char *text)
{
    kw_err_t e = {0};
    T_EQ_INT(kw_store_begin(st, &e), 0);
    T_EQ_INT(kw_store_sqlite_exec(st, text, &e), 0);
    T_EQ_INT(kw_store_commit(st, &e), 0);
}

/* A policy: default 10 days, max 100 days; renewable as asked. */
static void policy(const char *name, int renewable, int approval)
{
    kw_policy_t p;
    kw_err_t e = {0};
    kw_policy_defaults(&p, name);
    p.default_lifetime = 10 * DAY;
    p.max_lifetime = 100 * DAY;
    p.allow_never_expire = 1;
    p.renewable = renewable;
    p.renewal_requires_approval = approval;
    T_EQ_INT(kw_lc_policy_put(&lc, "test", &p, 1, &e), 0);
}

/* A new credential under policy pol; its first key into *k, its secret into s. */
static char s[KW_KEY_MAX + 1];
static void cred(const char *pol, const kw_expiry_in_t *exp, kw_keyrec_t *k)
{
    kw_cred_t c;
    kw_err_t e = {0};
    kw_cred_in_t in = {.name = "svc", .policy = pol};
    T_EQ_INT(kw_lc_cred_create(&lc, "test", &in, exp, &c, k, s, &e), 0);
    kw_cred_clear(&c);
}

/* The expiry the verification index holds for secret s (0 when not valid). */
static int64_t indexed_expiry(void)
{
    kw_verify_res_t r;
    kw_verify_req_t q = {.key = s, .key_len = strlen(s), .now = kw_now()};
    kw_index_verify(ix, &q, &r);
    int64_t t = r.code == KW_V_VALID ? r.expires_at : 0;
    kw_verify_res_release(&r);
    return t;
}

/* Events of type about key_id, and audit records of action on target. */
static size_t events(const char *type, const char *key_id)
{
    kw_event_t *ev = NULL;
    size_t n = 0, hits = 0;
    kw_err_t e = {0};
    kw_event_filter_t f = {.type = type, .limit = 1000};
    T_EQ_INT(kw_store_event_list(st, &f, &ev, &n, &e), 0);
    for (size_t i = 0; i < n; i++)
        if (strstr(ev[i].payload, key_id))
            hits++;
    kw_event_array_free(ev, n);
    return hits;
}

static size_t audits(const char *action, const char *target)
{
    kw_audit_rec_t *r = NULL;
    size_t n = 0, hits = 0;
    kw_err_t e = {0};
    kw_audit_filter_t f = {.target = target, .ascending = 1, .limit = 1000};
    T_EQ_INT(kw_store_audit_list(st, &f, &r, &n, &e), 0);
    for (size_t i = 0; i < n; i++)
        if (strcmp(r[i].action, action) == 0)
            hits++;
    kw_audit_rec_array_free(r, n);
    return hits;
}

static void test_renew_now(void)
{
    kw_keyrec_t k, out;
    kw_renewal_t r;
    kw_err_t e = {0};
    int pending = -1, capped = -1;
    policy("short", 1, 0);
    cred("short", NULL, &k);
    int64_t now = kw_now(), was = k.expires_at;

    kw_renew_in_t by5 = {.extend_by = 5 * DAY, .reason = "quarter end"};
    T_EQ_INT(kw_lc_key_renew(&lc, "alice", k.id, &by5, &out, &r, &pending, &capped, &e), 0);
    T_EQ_INT(pending, 0);
    T_EQ_INT(capped, 0);
    T_EQ_INT(out.expires_at, was + 5 * DAY);
    T_EQ_INT(events("key.renewed", k.id), 1);
    T_EQ_INT(audits("key.renew", k.id), 1);
    /* the index learnt it before the call returned */
    T_EQ_INT(indexed_expiry(), was + 5 * DAY);
    kw_keyrec_t stored;
    T_EQ_INT(kw_store_key_get(st, k.id, &stored, &e), 0);
    T_EQ_INT(stored.expires_at, was + 5 * DAY);

    /* beyond max_lifetime: capped at now + 100 days */
    kw_renew_in_t by200 = {.extend_by = 200 * DAY};
    T_EQ_INT(kw_lc_key_renew(&lc, "alice", k.id, &by200, &out, &r, &pending, &capped, &e), 0);
    T_EQ_INT(capped, 1);
    T_CHECK(out.expires_at >= now + 100 * DAY && out.expires_at <= kw_now() + 100 * DAY);
    /* already at the cap: nothing to extend */
    T_EQ_INT(kw_lc_key_renew(&lc, "alice", k.id, &by5, &out, &r, &pending, &capped, &e),
             KW_ECONFLICT);
    T_EQ_STR(e.field, "extend_by");

    /* expires_at: later than now, within the cap, after the current expiry */
    kw_keyrec_t k2;
    cred("short", NULL, &k2);
    kw_renew_in_t at_past = {.expires_at = kw_now() - 10};
    T_EQ_INT(kw_lc_key_renew(&lc, "alice", k2.id, &at_past, &out, &r, &pending, &capped, &e),
             KW_EINVAL);
    kw_renew_in_t at_far = {.expires_at = kw_now() + 101 * DAY};
    T_EQ_INT(kw_lc_key_renew(&lc, "alice", k2.id, &at_far, &out, &r, &pending, &capped, &e),
             KW_EPOLICY);
    T_EQ_STR(e.field, "expires_at");
    kw_renew_in_t at_early = {.expires_at = k2.expires_at - DAY};
    T_EQ_INT(kw_lc_key_renew(&lc, "alice", k2.id, &at_early, &out, &r, &pending, &capped, &e),
             KW_ECONFLICT);
    kw_renew_in_t at_ok = {.expires_at = k2.expires_at + 20 * DAY};
    T_EQ_INT(kw_lc_key_renew(&lc, "alice", k2.id, &at_ok, &out, &r, &pending, &capped, &e), 0);
    T_EQ_INT(out.expires_at, k2.expires_at + 20 * DAY);

    /* exactly one of extend_by / expires_at */
    kw_renew_in_t both = {.extend_by = DAY, .expires_at = kw_now() + DAY};
    T_EQ_INT(kw_lc_key_renew(&lc, "alice", k2.id, &both, &out, &r, &pending, &capped, &e),
             KW_EINVAL);
    kw_renew_in_t none = {0};
    T_EQ_INT(kw_lc_key_renew(&lc, "alice", k2.id, &none, &out, &r, &pending, &capped, &e),
             KW_EINVAL);
    T_EQ_INT(kw_lc_key_renew(&lc, "alice", "key_nosuch", &by5, &out, &r, &pending, &capped, &e),
             KW_ENOTFOUND);
}

static void test_refused(void)
{
    kw_keyrec_t k, out, inv;
    kw_renewal_t r;
    kw_err_t e = {0};
    int pending, capped;
    kw_renew_in_t by5 = {.extend_by = 5 * DAY};
    policy("fixed", 0, 0);
    cred("fixed", NULL, &k);
    T_EQ_INT(kw_lc_key_renew(&lc, "alice", k.id, &by5, &out, &r, &pending, &capped, &e),
             KW_ECONFLICT);
    T_CHECK(strstr(e.msg, "does not allow renewal") != NULL);

    kw_expiry_in_t never = {KW_EXP_NEVER, 0};
    cred("short", &never, &k);
    T_EQ_INT(kw_lc_key_renew(&lc, "alice", k.id, &by5, &out, &r, &pending, &capped, &e),
             KW_ECONFLICT);
    T_CHECK(strstr(e.msg, "never expires") != NULL);

    cred("short", NULL, &k);
    T_EQ_INT(kw_lc_key_invalidate(&lc, "test", k.id, "gone", 0, &inv, &e), 0);
    T_EQ_INT(kw_lc_key_renew(&lc, "alice", k.id, &by5, &out, &r, &pending, &capped, &e),
             KW_ECONFLICT);
    T_CHECK(strstr(e.msg, "invalidated") != NULL);
    T_EQ_INT(events("key.renewed", k.id), 0);
    T_EQ_INT(audits("key.renew", k.id), 0);
}

static void test_approval(void)
{
    kw_keyrec_t k, out, got;
    kw_renewal_t r, d, again;
    kw_err_t e = {0};
    int pending = -1, capped = -1;
    policy("gated", 1, 1);
    cred("gated", NULL, &k);
    kw_renew_in_t by5 = {.extend_by = 5 * DAY, .reason = "still needed"};

    T_EQ_INT(kw_lc_key_renew(&lc, "alice", k.id, &by5, &out, &r, &pending, &capped, &e), 0);
    T_EQ_INT(pending, 1);
    T_EQ_STR(r.state, "pending");
    T_EQ_STR(r.requested_by, "alice");
    T_EQ_STR(r.key_id, k.id);
    T_EQ_STR(r.reason, "still needed");
    T_CHECK(kw_id_valid("ren", r.id));
    T_EQ_INT(kw_store_key_get(st, k.id, &got, &e), 0);
    T_EQ_INT(got.expires_at, k.expires_at); /* unchanged until decided */
    T_EQ_INT(indexed_expiry(), k.expires_at);
    T_EQ_INT(events("renewal.requested", k.id), 1);
    T_EQ_INT(audits("renewal.request", r.id), 1);

    /* one pending request per key */
    T_EQ_INT(kw_lc_key_renew(&lc, "carol", k.id, &by5, &out, &again, &pending, &capped, &e),
             KW_ECONFLICT);
    T_CHECK(strstr(e.msg, r.id) != NULL);

    /* nobody decides their own request */
    T_EQ_INT(kw_lc_renewal_decide(&lc, "alice", r.id, 1, NULL, &d, &out, &e), KW_EFORBIDDEN);
    T_EQ_INT(kw_lc_renewal_get(&lc, r.id, &d, &e), 0);
    T_EQ_STR(d.state, "pending");

    T_EQ_INT(kw_lc_renewal_decide(&lc, "bob", r.id, 1, "ok", &d, &out, &e), 0);
    T_EQ_STR(d.state, "approved");
    T_EQ_STR(d.decided_by, "bob");
    T_EQ_STR(d.note, "ok");
    T_CHECK(d.decided_at > 0);
    T_EQ_INT(out.expires_at, k.expires_at + 5 * DAY);
    T_EQ_INT(kw_store_key_get(st, k.id, &got, &e), 0);
    T_EQ_INT(got.expires_at, k.expires_at + 5 * DAY);
    T_EQ_INT(indexed_expiry(), k.expires_at + 5 * DAY);
    T_EQ_INT(events("renewal.approved", k.id), 1);
    T_EQ_INT(events("key.renewed", k.id), 1);
    T_EQ_INT(audits("renewal.approve", r.id), 1);
    T_EQ_INT(audits("key.renew", k.id), 1);

    /* decided once */
    T_EQ_INT(kw_lc_renewal_decide(&lc, "carol", r.id, 0, NULL, &d, &out, &e), KW_ECONFLICT);
    T_CHECK(strstr(e.msg, "already approved by bob") != NULL);
    T_EQ_INT(kw_lc_renewal_decide(&lc, "bob", "ren_nosuch", 1, NULL, &d, &out, &e), KW_ENOTFOUND);
}

static void test_reject(void)
{
    kw_keyrec_t k, out, got;
    kw_renewal_t r, d;
    kw_err_t e = {0};
    int pending, capped;
    cred("gated", NULL, &k);
    kw_renew_in_t at = {.expires_at = k.expires_at + 3 * DAY};
    T_EQ_INT(kw_lc_key_renew(&lc, "alice", k.id, &at, &out, &r, &pending, &capped, &e), 0);
    T_EQ_INT(pending, 1);
    memset(&out, 0, sizeof(out));
    T_EQ_INT(kw_lc_renewal_decide(&lc, "bob", r.id, 0, "not now", &d, &out, &e), 0);
    T_EQ_STR(d.state, "rejected");
    T_EQ_STR(d.note, "not now");
    T_EQ_STR(out.id, ""); /* no key on a rejection */
    T_EQ_INT(kw_store_key_get(st, k.id, &got, &e), 0);
    T_EQ_INT(got.expires_at, k.expires_at);
    T_EQ_INT(events("renewal.rejected", k.id), 1);
    T_EQ_INT(events("key.renewed", k.id), 0);
    T_EQ_INT(audits("renewal.reject", r.id), 1);
    /* a new request may follow a decided one */
    T_EQ_INT(kw_lc_key_renew(&lc, "alice", k.id, &at, &out, &r, &pending, &capped, &e), 0);
    T_EQ_INT(pending, 1);
}

static void test_lapsed_requests(void)
{
    kw_keyrec_t k1, k2, out, inv;
    kw_renewal_t r1, r2, d;
    kw_err_t e = {0};
    int pending, capped;
    char q[256];
    kw_renew_in_t by5 = {.extend_by = 5 * DAY};
    cred("gated", NULL, &k1);
    cred("gated", NULL, &k2);
    T_EQ_INT(kw_lc_key_renew(&lc, "alice", k1.id, &by5, &out, &r1, &pending, &capped, &e), 0);
    T_EQ_INT(kw_lc_key_renew(&lc, "alice", k2.id, &by5, &out, &r2, &pending, &capped, &e), 0);

    /* the key was invalidated first: deciding cancels the request, then reports it */
    T_EQ_INT(kw_lc_key_invalidate(&lc, "test", k1.id, "leaked", 0, &inv, &e), 0);
    T_EQ_INT(kw_lc_renewal_decide(&lc, "bob", r1.id, 1, NULL, &d, &out, &e), KW_ECONFLICT);
    T_CHECK(strstr(e.msg, "was invalidated") != NULL);
    T_EQ_INT(kw_lc_renewal_get(&lc, r1.id, &d, &e), 0);
    T_EQ_STR(d.state, "cancelled");
    T_EQ_STR(d.decided_by, "system");
    T_EQ_INT(audits("renewal.cancel", r1.id), 1);
    /* and it stays cancelled */
    T_EQ_INT(kw_lc_renewal_decide(&lc, "bob", r1.id, 1, NULL, &d, &out, &e), KW_ECONFLICT);
    T_CHECK(strstr(e.msg, "already cancelled") != NULL);

    /* the key expired: reading the request cancels it (the lazy sweep) */
    snprintf(q, sizeof(q), "UPDATE keys SET expires_at = %lld WHERE id = '%s'",
             (long long)(kw_now() - 60), k2.id);
    sql(q);
    T_EQ_INT(kw_lc_renewal_get(&lc, r2.id, &d, &e), 0);
    T_EQ_STR(d.state, "cancelled");
    T_CHECK(strstr(d.note, "expired") != NULL);
    T_EQ_INT(audits("renewal.cancel", r2.id), 1);
    /* a sweep with nothing stale writes nothing */
    T_EQ_INT(kw_lc_renewal_sweep(&lc, kw_now(), &e), 0);
    T_EQ_INT(audits("renewal.cancel", r2.id), 1);
}

/* Renewals are operations of the group-commit engine: many at once, beside key
 * creations, each committed once, none lost. */
#define NTH 8
typedef struct job {
    kw_keyrec_t k;
    int renew;
    int rc;
    kw_err_t e;
} job_t;

static void *job_main(void *arg)
{
    job_t *j = arg;
    kw_keyrec_t out;
    kw_renewal_t r;
    int pending, capped;
    if (j->renew) {
        kw_renew_in_t by = {.extend_by = DAY};
        j->rc = kw_lc_key_renew(&lc, "alice", j->k.id, &by, &out, &r, &pending, &capped, &j->e);
        if (j->rc == 0 && out.expires_at != j->k.expires_at + DAY)
            j->rc = -1000;
    } else {
        char sec[KW_KEY_MAX + 1];
        kw_cred_t c;
        kw_cred_in_t in = {.name = "burst", .policy = "short"};
        j->rc = kw_lc_cred_create(&lc, "test", &in, NULL, &c, &out, sec, &j->e);
        if (j->rc == 0)
            kw_cred_clear(&c);
        kw_wipe(sec, sizeof(sec));
    }
    return NULL;
}

static void test_concurrent(void)
{
    job_t jobs[NTH];
    pthread_t th[NTH];
    memset(jobs, 0, sizeof(jobs));
    uint64_t ops0 = lc.batched_ops;
    for (int i = 0; i < NTH; i++) {
        jobs[i].renew = i % 2 == 0;
        if (jobs[i].renew)
            cred("short", NULL, &jobs[i].k);
    }
    for (int i = 0; i < NTH; i++)
        pthread_create(&th[i], NULL, job_main, &jobs[i]);
    for (int i = 0; i < NTH; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < NTH; i++) {
        T_EQ_INT(jobs[i].rc, 0);
        if (jobs[i].renew)
            T_EQ_INT(audits("key.renew", jobs[i].k.id), 1);
    }
    /* the 4 setup creations and the 8 jobs all went through the engine */
    T_EQ_INT((long long)(lc.batched_ops - ops0), NTH / 2 + NTH);
    T_EQ_INT(kw_lc_queued(&lc), 0);
}

int main(void)
{
    setup();
    T_RUN(test_renew_now);
    T_RUN(test_refused);
    T_RUN(test_approval);
    T_RUN(test_reject);
    T_RUN(test_lapsed_requests);
    T_RUN(test_concurrent);
    kw_lc_destroy(&lc);
    kw_index_free(ix);
    kw_store_close(st);
    kw_wipe(s, sizeof(s));
    kw_digest_thread_cleanup();
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        printf("# could not remove %s\n", dir);
    T_DONE();
}
