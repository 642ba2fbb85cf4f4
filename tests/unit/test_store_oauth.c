/* test_store_oauth.c - revoked OAuth2 tokens (store_oauth.h) and the retention calls
 * (kw_store_prune, kw_store_audit_cut) through their public files (store_oauth.c,
 * store_retention.c), on SQLite or, with KW_TEST_STORE=postgresql, on PostgreSQL (t_store.h):
 * revoking twice is a no-op, expired ids leave the list and are dropped by the next revoke,
 * the list survives a reopen (another node), a callback's non-zero return stops the walk;
 * without a store, revoke is KW_ESTORE, the list empty, prune a no-op, the cut KW_EINVAL. */
#include <stdio.h>
#include <string.h>

#include "store/store.h"
#include "store/store_oauth.h"
#include "t.h"
#include "t_store.h"

static char url[300];

typedef struct {
    int n;
    char ids[4][32];
    int64_t exp[4];
    int stop_at; /* return 7 on this call (1-based), 0 = never */
} seen_t;

static int collect(void *ud, const char *token_id, int64_t exp)
{
    seen_t *v = ud;
    if (v->n < 4) {
        snprintf(v->ids[v->n], sizeof(v->ids[0]), "%s", token_id);
        v->exp[v->n] = exp;
    }
    v->n++;
    return v->n == v->stop_at ? 7 : 0;
}

static int revoke_at(kw_store_t *s, const char *id, int64_t exp, int64_t now)
{
    kw_err_t e = {0};
    int rc = kw_store_begin(s, &e);
    if (rc == 0 && (rc = kw_store_token_revoke(s, id, "cred_1", exp, now, &e)) == 0)
        return kw_store_commit(s, &e);
    kw_store_rollback(s);
    return rc;
}

static void t_revoked_tokens(void)
{
    kw_store_t *s = NULL;
    kw_err_t e = {0};
    seen_t v = {0};
    T_EQ_INT(kw_store_open(url, &s, &e), 0);
    T_EQ_INT(kw_store_token_revoked(s, 1000, collect, &v, &e), 0);
    T_EQ_INT(v.n, 0);
    T_EQ_INT(revoke_at(s, "aaaaaaaaaaaaaaaaaaaaaaaa", 2000, 1000), 0);
    T_EQ_INT(revoke_at(s, "aaaaaaaaaaaaaaaaaaaaaaaa", 2000, 1000), 0); /* again: no-op */
    T_EQ_INT(revoke_at(s, "bbbbbbbbbbbbbbbbbbbbbbbb", 1500, 1000), 0);
    T_EQ_INT(kw_store_token_revoked(s, 1000, collect, &v, &e), 0);
    T_EQ_INT(v.n, 2);
    /* at 1600 b has expired: not listed */
    v = (seen_t){0};
    T_EQ_INT(kw_store_token_revoked(s, 1600, collect, &v, &e), 0);
    T_EQ_INT(v.n, 1);
    T_EQ_STR(v.ids[0], "aaaaaaaaaaaaaaaaaaaaaaaa");
    T_CHECK(v.exp[0] == 2000);
    /* the callback's non-zero return stops the walk and is returned */
    v = (seen_t){.stop_at = 1};
    T_EQ_INT(kw_store_token_revoked(s, 1000, collect, &v, &e), 7);
    T_EQ_INT(v.n, 1);
    /* a revoke at 1600 drops b's row on the way: at 1000 only a and c are left */
    T_EQ_INT(revoke_at(s, "cccccccccccccccccccccccc", 3000, 1600), 0);
    kw_store_close(s);
    s = NULL;
    T_EQ_INT(kw_store_open(url, &s, &e), 0); /* another process (node) sees them */
    v = (seen_t){0};
    T_EQ_INT(kw_store_token_revoked(s, 1000, collect, &v, &e), 0);
    T_EQ_INT(v.n, 2);
    T_CHECK(strcmp(v.ids[0], "bbbbbbbbbbbbbbbbbbbbbbbb") != 0);
    T_CHECK(strcmp(v.ids[1], "bbbbbbbbbbbbbbbbbbbbbbbb") != 0);
    kw_store_close(s);
}

static void t_retention(void)
{
    kw_store_t *s = NULL;
    kw_err_t e = {0};
    size_t n = 99;
    T_EQ_INT(kw_store_open(url, &s, &e), 0);
    T_EQ_INT(kw_store_begin(s, &e), 0);
    T_EQ_INT(kw_store_prune(s, 1000, 10, &n, &e), 0);
    T_CHECK(n == 0); /* nothing to prune in a new store */
    T_EQ_INT(kw_store_audit_cut(s, 5, &e), 0);
    T_EQ_INT(kw_store_commit(s, &e), 0);
    kw_store_close(s);
}

static void t_no_store(void)
{
    kw_err_t e = {0};
    seen_t v = {0};
    size_t n = 99;
    T_EQ_INT(kw_store_token_revoke(NULL, "aaaaaaaaaaaaaaaaaaaaaaaa", "cred_1", 2000, 1000, &e),
             KW_ESTORE);
    T_EQ_INT(kw_store_token_revoked(NULL, 1000, collect, &v, &e), 0);
    T_EQ_INT(v.n, 0);
    T_EQ_INT(kw_store_prune(NULL, 1000, 10, &n, &e), 0);
    T_CHECK(n == 0);
    T_EQ_INT(kw_store_audit_cut(NULL, 5, &e), KW_EINVAL);
}

int main(void)
{
    if (t_store_init("oauth"))
        return 2;
    t_store_url(url, sizeof(url));
    T_RUN(t_revoked_tokens);
    t_store_url(url, sizeof(url));
    T_RUN(t_retention);
    T_RUN(t_no_store);
    t_store_done();
    T_DONE();
}
