/* test_store_watched.c - the watched-credential tables (store_watched.h) on SQLite or, with
 * KW_TEST_STORE=postgresql, on PostgreSQL (t_store.h): insert,
 * get, update, list filters and cursor, refresher queries, alert arming by the triggers
 * (insert, expiry change, policy thresholds change, delete) and the alert records. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store.h"
#include "store/store_watched.h"
#include "t.h"
#include "t_store.h"

static kw_store_t *open_new(void)
{
    char url[300];
    kw_store_t *s = NULL;
    kw_err_t e = {0};
    t_store_url(url, sizeof(url));
    if (kw_store_open(url, &s, &e) != 0)
        printf("# open: %s\n", e.msg);
    return s;
}

static void mk(kw_watched_t *w, const char *id, const char *kind, const char *owner, int64_t exp)
{
    memset(w, 0, sizeof(*w));
    snprintf(w->id, sizeof(w->id), "%s", id);
    snprintf(w->name, sizeof(w->name), "n-%s", id);
    snprintf(w->kind, sizeof(w->kind), "%s", kind);
    snprintf(w->policy, sizeof(w->policy), "default");
    w->owner = owner ? strdup(owner) : NULL;
    w->expires_at = exp;
    w->secret_sealed = strdup("kws1.deadbeef.00");
    if (strcmp(kind, "oauth2") == 0) {
        w->token_url = strdup("http://127.0.0.1:1/token");
        snprintf(w->grant_type, sizeof(w->grant_type), "client_credentials");
        w->client_id = strdup("cid");
        snprintf(w->auth_method, sizeof(w->auth_method), "basic");
    }
    w->created_at = w->updated_at = 1000;
}

static int put(kw_store_t *s, kw_watched_t *w)
{
    kw_err_t e = {0};
    int rc = kw_store_begin(s, &e);
    if (rc == 0)
        rc = kw_store_watched_insert(s, w, &e);
    if (rc == 0)
        rc = kw_store_commit(s, &e);
    else
        kw_store_rollback(s);
    return rc;
}

static int upd(kw_store_t *s, const kw_watched_t *w)
{
    kw_err_t e = {0};
    int rc = kw_store_begin(s, &e);
    if (rc == 0)
        rc = kw_store_watched_update(s, w, &e);
    if (rc == 0)
        rc = kw_store_commit(s, &e);
    else
        kw_store_rollback(s);
    return rc;
}

static size_t due_count(kw_store_t *s, int64_t now, int *armed0)
{
    kw_watched_t *a = NULL;
    int *armed = NULL;
    size_t n = 0;
    kw_err_t e = {0};
    if (kw_store_watched_alert_due(s, now, 100, &a, &armed, &n, &e) != 0)
        return 999;
    if (armed0 && n)
        *armed0 = armed[0];
    kw_watched_array_free(a, n);
    free(armed);
    return n;
}

static void test_crud(void)
{
    kw_store_t *s = open_new();
    kw_watched_t w, g = {0};
    kw_err_t e = {0};
    T_CHECK(s != NULL);
    mk(&w, "wat_a", "static", "ops@example.com", 5000);
    T_EQ_INT(put(s, &w), 0);
    T_CHECK(w.seq > 0);
    T_EQ_INT(put(s, &w), KW_ECONFLICT); /* same id */
    T_EQ_INT(kw_store_watched_get(s, "wat_a", &g, &e), 0);
    T_EQ_STR(g.name, "n-wat_a");
    T_EQ_STR(g.owner, "ops@example.com");
    T_EQ_STR(g.secret_sealed, "kws1.deadbeef.00");
    T_EQ_INT(g.expires_at, 5000);
    T_EQ_STR(g.contacts_json, "[]");
    g.expires_at = 6000;
    free(g.provider);
    g.provider = strdup("AdaptiveWork");
    T_EQ_INT(upd(s, &g), 0);
    kw_watched_clear(&g);
    T_EQ_INT(kw_store_watched_get(s, "wat_a", &g, &e), 0);
    T_EQ_INT(g.expires_at, 6000);
    T_EQ_STR(g.provider, "AdaptiveWork");
    g.deleted_at = 7000;
    T_EQ_INT(upd(s, &g), 0);
    kw_watched_clear(&g);
    T_EQ_INT(kw_store_watched_get(s, "wat_a", &g, &e), KW_ENOTFOUND);
    kw_watched_t u;
    mk(&u, "wat_nope", "static", NULL, 0);
    T_EQ_INT(upd(s, &u), KW_ENOTFOUND);
    kw_watched_clear(&u);
    /* a bad kind is refused by the schema */
    mk(&u, "wat_bad", "other", NULL, 0);
    T_CHECK(put(s, &u) != 0);
    kw_watched_clear(&u);
    kw_watched_clear(&w);
    kw_store_close(s);
}

static void test_list(void)
{
    kw_store_t *s = open_new();
    kw_watched_t w;
    kw_err_t e = {0};
    char id[16];
    for (int i = 0; i < 5; i++) {
        snprintf(id, sizeof(id), "wat_%d", i);
        mk(&w, id, i % 2 ? "oauth2" : "static", i < 3 ? "a" : "b", 1000 + 100 * i);
        T_EQ_INT(put(s, &w), 0);
        kw_watched_clear(&w);
    }
    kw_watched_t *a = NULL;
    size_t n = 0;
    kw_watched_filter_t f = {.limit = 100};
    T_EQ_INT(kw_store_watched_list(s, &f, &a, &n, &e), 0);
    T_EQ_INT(n, 5);
    kw_watched_array_free(a, n);
    f.owner = "a";
    T_EQ_INT(kw_store_watched_list(s, &f, &a, &n, &e), 0);
    T_EQ_INT(n, 3);
    kw_watched_array_free(a, n);
    f.owner = NULL;
    f.kind = "oauth2";
    T_EQ_INT(kw_store_watched_list(s, &f, &a, &n, &e), 0);
    T_EQ_INT(n, 2);
    kw_watched_array_free(a, n);
    f.kind = NULL;
    f.now = 1050;
    f.expiring_before = 1250; /* 1100, 1200 */
    T_EQ_INT(kw_store_watched_list(s, &f, &a, &n, &e), 0);
    T_EQ_INT(n, 2);
    if (n == 2) {
        T_EQ_STR(a[0].id, "wat_1");
        T_EQ_STR(a[1].id, "wat_2");
    }
    kw_watched_array_free(a, n);
    f.expiring_before = 0;
    f.limit = 2;
    T_EQ_INT(kw_store_watched_list(s, &f, &a, &n, &e), 0);
    T_EQ_INT(n, 2);
    f.after_seq = n ? a[n - 1].seq : 0;
    kw_watched_array_free(a, n);
    T_EQ_INT(kw_store_watched_list(s, &f, &a, &n, &e), 0);
    T_EQ_INT(n, 2);
    if (n)
        T_EQ_STR(a[0].id, "wat_2");
    kw_watched_array_free(a, n);
    kw_store_close(s);
}

static void test_refresh_queries(void)
{
    kw_store_t *s = open_new();
    kw_watched_t w;
    kw_err_t e = {0};
    int64_t next = -1;
    T_EQ_INT(kw_store_watched_refresh_next(s, &next, &e), 0);
    T_EQ_INT(next, 0);
    mk(&w, "wat_o1", "oauth2", NULL, 0);
    w.next_refresh_ms = 5000;
    T_EQ_INT(put(s, &w), 0);
    kw_watched_clear(&w);
    mk(&w, "wat_o2", "oauth2", NULL, 0);
    w.next_refresh_ms = 3000;
    T_EQ_INT(put(s, &w), 0);
    kw_watched_clear(&w);
    mk(&w, "wat_s", "static", NULL, 0); /* static rows are never refreshed */
    T_EQ_INT(put(s, &w), 0);
    kw_watched_clear(&w);
    T_EQ_INT(kw_store_watched_refresh_next(s, &next, &e), 0);
    T_EQ_INT(next, 3000);
    kw_watched_t *a = NULL;
    size_t n = 0;
    T_EQ_INT(kw_store_watched_refresh_due(s, 4000, 10, &a, &n, &e), 0);
    T_EQ_INT(n, 1);
    if (n)
        T_EQ_STR(a[0].id, "wat_o2");
    kw_watched_array_free(a, n);
    T_EQ_INT(kw_store_watched_refresh_due(s, 6000, 10, &a, &n, &e), 0);
    T_EQ_INT(n, 2);
    kw_watched_array_free(a, n);
    kw_store_close(s);
}

static void test_alert_arming(void)
{
    kw_store_t *s = open_new();
    kw_watched_t w, g = {0};
    kw_err_t e = {0};
    int armed = -1;
    mk(&w, "wat_x", "static", NULL, 0); /* no expiry: nothing to arm */
    T_EQ_INT(put(s, &w), 0);
    kw_watched_clear(&w);
    T_EQ_INT(due_count(s, 100, NULL), 0);
    mk(&w, "wat_y", "static", NULL, 50000);
    T_EQ_INT(put(s, &w), 0);
    kw_watched_clear(&w);
    T_EQ_INT(due_count(s, 100, &armed), 1); /* armed by the insert trigger */
    T_EQ_INT(armed, 1);
    /* the scheduler records and sets the next look */
    T_EQ_INT(kw_store_begin(s, &e), 0);
    T_EQ_INT(kw_store_watched_alert_record(s, "wat_y", 50000, 3600, "evt_1", 100, &e), 0);
    T_EQ_INT(kw_store_watched_alert_record(s, "wat_y", 50000, 3600, "evt_2", 100, &e), 0);
    T_EQ_INT(kw_store_watched_alert_set_next(s, "wat_y", 40000, &e), 0);
    T_EQ_INT(kw_store_commit(s, &e), 0);
    int64_t done[8];
    size_t nd = 0;
    T_EQ_INT(kw_store_watched_alert_done(s, "wat_y", 50000, done, 8, &nd, &e), 0);
    T_EQ_INT(nd, 1); /* recorded once */
    T_EQ_INT(due_count(s, 100, NULL), 0);
    T_EQ_INT(due_count(s, 40000, &armed), 1);
    T_EQ_INT(armed, 0);
    /* a replacement (new expiry) re-arms */
    T_EQ_INT(kw_store_watched_get(s, "wat_y", &g, &e), 0);
    g.expires_at = 90000;
    T_EQ_INT(upd(s, &g), 0);
    T_EQ_INT(due_count(s, 100, &armed), 1);
    T_EQ_INT(armed, 1);
    T_EQ_INT(kw_store_watched_alert_done(s, "wat_y", 90000, done, 8, &nd, &e), 0);
    T_EQ_INT(nd, 0);
    /* a policy thresholds change re-arms */
    T_EQ_INT(kw_store_begin(s, &e), 0);
    T_EQ_INT(kw_store_watched_alert_set_next(s, "wat_y", 0, &e), 0);
    T_EQ_INT(kw_store_commit(s, &e), 0);
    T_EQ_INT(due_count(s, 100000, NULL), 0); /* NULL: nothing ahead */
    kw_policy_t p;
    T_EQ_INT(kw_store_policy_get(s, "default", &p, &e), 0);
    p.thresholds[0] = 1234;
    p.nthresholds = 1;
    T_EQ_INT(kw_store_begin(s, &e), 0);
    T_EQ_INT(kw_store_policy_put(s, &p, 0, &e), 0);
    T_EQ_INT(kw_store_commit(s, &e), 0);
    T_EQ_INT(due_count(s, 100, NULL), 1);
    /* a deleted row is disarmed */
    g.deleted_at = 200;
    T_EQ_INT(upd(s, &g), 0);
    T_EQ_INT(due_count(s, 100000, NULL), 0);
    kw_watched_clear(&g);
    /* the refresh grant's end counts when it is sooner */
    mk(&w, "wat_r", "oauth2", NULL, 0);
    w.refresh_expires_at = 777;
    T_CHECK(kw_watched_alert_expiry(&w) == 777);
    w.expires_at = 700;
    T_CHECK(kw_watched_alert_expiry(&w) == 700);
    T_EQ_INT(put(s, &w), 0);
    kw_watched_clear(&w);
    T_EQ_INT(due_count(s, 100, NULL), 1);
    kw_store_close(s);
}

static void test_copy(void)
{
    kw_watched_t w, c;
    mk(&w, "wat_c", "oauth2", "o", 10);
    w.refresh_token_sealed = strdup("kws1.x.y");
    T_EQ_INT(kw_watched_copy(&c, &w), 0);
    T_CHECK(c.refresh_token_sealed != w.refresh_token_sealed);
    T_EQ_STR(c.refresh_token_sealed, "kws1.x.y");
    T_EQ_STR(c.client_id, "cid");
    kw_watched_clear(&w);
    kw_watched_clear(&c);
    kw_watched_clear(NULL);
}

int main(void)
{
    if (t_store_init("tsw"))
        return 2;
    T_RUN(test_crud);
    T_RUN(test_list);
    T_RUN(test_refresh_queries);
    T_RUN(test_alert_arming);
    T_RUN(test_copy);
    t_store_done();
    T_DONE();
}
