/* test_store.c - the store conformance suite: schema and migrations, every kw_store_* call,
 * the slot rule, transactions (rollback, disk full, busy), reopen, the two-connection
 * design, the outbox and alert state. Runs against SQLite by default (each case its own
 * file in a temp directory, removed at the end) and, with KW_TEST_STORE=postgresql, against
 * the PostgreSQL at KW_TEST_PG_URL (each case its own schema, dropped at the end). The few
 * cases that inject SQLite-specific faults have a PostgreSQL counterpart or are skipped.
 * KW_STORE_BENCH=N additionally times load_all over N keys. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifdef KW_HAVE_LIBPQ
#include <libpq-fe.h>
#endif

#include "core/seal.h"
#include "store/store.h"
#include "store/store_cluster.h"
#include "store/sqlite.h"
#include "store/store_impl.h"
#include "store/store_notify.h"
#include "t.h"

static char tmpdir[64];
static int nfile;
static const char *pg_base; /* KW_TEST_PG_URL when KW_TEST_STORE=postgresql, else NULL */

/* Run sql on the store behind path through a private connection: 0 or -1. */
static int peek_exec(const char *path, const char *sql);

/* A fresh store and its URL: SQLite, a new file in tmpdir (path = the file); PostgreSQL, a
 * new schema (path = the URL, which selects the schema by search_path). */
static void new_path(char path[128], char url[140])
{
    ++nfile;
    if (pg_base) {
        snprintf(url, 140, "%s%soptions=-csearch_path%%3Dkwt_%d_%d", pg_base,
                 strchr(pg_base, '?') ? "&" : "?", (int)getpid(), nfile);
        snprintf(path, 128, "%s", url);
        char sql[96];
        snprintf(sql, sizeof(sql), "CREATE SCHEMA kwt_%d_%d", (int)getpid(), nfile);
        if (peek_exec(pg_base, sql) != 0)
            printf("# cannot create schema kwt_%d_%d\n", (int)getpid(), nfile);
        return;
    }
    snprintf(path, 128, "%s/s%d.db", tmpdir, nfile);
    snprintf(url, 140, "sqlite:%s", path);
}

static kw_store_t *open_url(const char *url)
{
    kw_store_t *s = NULL;
    kw_err_t e = {0};
    int rc = kw_store_open(url, &s, &e);
    if (rc)
        printf("# open %s: %d %s\n", url, rc, e.msg);
    return s;
}

static kw_store_t *open_new(char path[128])
{
    char url[140];
    new_path(path, url);
    return open_url(url);
}

static void mk_cred(kw_cred_t *c, int i, const char *owner)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->id, sizeof(c->id), "cred_%06d", i);
    c->name = strdup("svc");
    c->owner = owner ? strdup(owner) : NULL;
    c->scopes_json = strdup("[\"read\"]");
    c->cidrs_json = strdup("[]");
    c->metadata_json = strdup("{\"team\":\"a\"}");
    c->contacts_json = strdup("[]");
    snprintf(c->policy, sizeof(c->policy), "default");
    snprintf(c->prefix, sizeof(c->prefix), "kw");
    c->created_at = c->updated_at = 1000 + i;
}

static void mk_key(kw_keyrec_t *k, int i, const char *cred_id, int slot, int64_t exp)
{
    memset(k, 0, sizeof(*k));
    snprintf(k->id, sizeof(k->id), "key_%06d", i);
    snprintf(k->cred_id, sizeof(k->cred_id), "%s", cred_id);
    k->slot = slot;
    k->live = 1;
    snprintf(k->hint, sizeof(k->hint), "kw_abcd…%04d", i % 10000);
    memcpy(k->digest, &i, sizeof(i));
    k->digest[31] = 0x5a;
    k->created_at = 2000 + i;
    k->expires_at = exp;
}

static int add_cred(kw_store_t *s, int i, const char *owner)
{
    kw_cred_t c;
    kw_err_t e = {0};
    mk_cred(&c, i, owner);
    int rc = kw_store_begin(s, &e);
    if (rc == 0)
        rc = kw_store_cred_insert(s, &c, &e);
    if (rc == 0)
        rc = kw_store_commit(s, &e);
    else
        kw_store_rollback(s);
    kw_cred_clear(&c);
    return rc;
}

static int add_key(kw_store_t *s, int i, const char *cred_id, int slot, int64_t exp)
{
    kw_keyrec_t k;
    kw_err_t e = {0};
    mk_key(&k, i, cred_id, slot, exp);
    int rc = kw_store_begin(s, &e);
    if (rc == 0)
        rc = kw_store_key_insert(s, &k, &e);
    if (rc == 0)
        rc = kw_store_commit(s, &e);
    else
        kw_store_rollback(s);
    return rc;
}

#ifdef KW_HAVE_LIBPQ
static PGconn *pg_peek_conn(const char *url)
{
    PGconn *db = PQconnectdb(url);
    if (PQstatus(db) == CONNECTION_OK)
        PQclear(PQexec(db, "SET client_min_messages = warning"));
    if (PQstatus(db) != CONNECTION_OK) {
        printf("# connect %s: %s\n", url, PQerrorMessage(db));
        PQfinish(db);
        return NULL;
    }
    return db;
}
#endif

static int peek_exec(const char *path, const char *sql)
{
    int rc = -1;
    if (pg_base) {
#ifdef KW_HAVE_LIBPQ
        PGconn *db = pg_peek_conn(path);
        PGresult *r = db ? PQexec(db, sql) : NULL;
        rc = r && (PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK)
                 ? 0
                 : -1;
        if (rc)
            printf("# %s: %s\n", sql, db ? PQerrorMessage(db) : "");
        PQclear(r);
        PQfinish(db);
#endif
        return rc;
    }
    sqlite3 *db = NULL;
    if (sqlite3_open(path, &db) == SQLITE_OK &&
        sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK)
        rc = 0;
    sqlite3_close(db);
    return rc;
}

/* Run one integer query on the store through a private connection. */
static long long peek_int(const char *path, const char *sql)
{
    if (pg_base) {
        long long v = -1;
#ifdef KW_HAVE_LIBPQ
        PGconn *db = pg_peek_conn(path);
        PGresult *r = db ? PQexec(db, sql) : NULL;
        if (r && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0)
            v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        PQclear(r);
        PQfinish(db);
#endif
        return v;
    }
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    long long v = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static void t_open_default(void)
{
    char path[128];
    kw_store_t *s = open_new(path);
    T_CHECK(s != NULL);
    if (!s)
        return;
    if (pg_base)
        T_CHECK(kw_store_file(s) == NULL); /* no local file */
    else
        T_EQ_STR(kw_store_file(s), path);
    kw_policy_t p, d;
    kw_err_t e = {0};
    T_EQ_INT(kw_store_policy_get(s, "default", &p, &e), 0);
    kw_policy_defaults(&d, "default");
    T_EQ_STR(p.name, "default");
    T_EQ_INT(p.default_lifetime, d.default_lifetime);
    T_EQ_INT(p.max_lifetime, d.max_lifetime);
    T_EQ_INT(p.renewable, 1);
    T_EQ_INT(p.nthresholds, 4);
    T_EQ_INT(p.thresholds[0], 30 * 86400);
    T_EQ_INT(p.thresholds[3], 86400);
    T_EQ_INT(p.max_roll_overlap, d.max_roll_overlap);
    T_CHECK(p.created_at > 0);
    T_EQ_INT(kw_store_policy_get(s, "nope", &p, &e), KW_ENOTFOUND);

    if (pg_base) { /* the schema is in place */
        T_EQ_INT(peek_int(path, "SELECT count(*) FROM information_schema.tables WHERE"
                                " table_schema = current_schema() AND table_name IN ('meta',"
                                "'policies','credentials','keys','events','deliveries',"
                                "'renewals','audit','schema_version','feed')"),
                 10);
        T_EQ_INT(peek_int(path, "SELECT count(*) FROM pg_indexes WHERE schemaname ="
                                " current_schema() AND indexname IN ('keys_expiring',"
                                "'keys_live_slot')"),
                 2);
        kw_store_close(s);
        return;
    }
    /* WAL is persistent in the file; the schema is in place. */
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    T_EQ_INT(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    T_EQ_INT(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    T_EQ_INT(sqlite3_step(st), SQLITE_ROW);
    T_EQ_STR((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    sqlite3_close(db);
    T_EQ_INT(peek_int(path, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name"
                            " IN ('meta','policies','credentials','keys','events','deliveries',"
                            "'renewals','audit','schema_version')"),
             9);
    T_EQ_INT(peek_int(path, "SELECT count(*) FROM sqlite_master WHERE name = 'keys_expiring'"), 1);
    kw_store_close(s);
}

static void t_migrations_idempotent(void)
{
    char path[128], url[140];
    new_path(path, url);
    kw_store_t *s = open_url(url);
    T_CHECK(s != NULL);
    kw_store_close(s);
    for (int i = 0; i < 2; i++) {
        s = open_url(url);
        T_CHECK(s != NULL);
        kw_store_close(s);
    }
    /* each migration applied exactly once, whatever their number */
    T_EQ_INT(peek_int(path, "SELECT count(*) FROM schema_version"),
             peek_int(path, "SELECT max(version) FROM schema_version"));
    T_CHECK(peek_int(path, "SELECT max(version) FROM schema_version") >= 2);
    T_EQ_INT(peek_int(path, "SELECT count(*) FROM policies"), 1);

    /* A store from a newer keyward is refused, not silently downgraded. */
    T_EQ_INT(peek_exec(path, "INSERT INTO schema_version VALUES (99, 0)"), 0);
    kw_err_t e = {0};
    s = NULL;
    T_EQ_INT(kw_store_open(url, &s, &e), KW_ESTORE);
    T_CHECK(s == NULL);
    T_CHECK(strstr(e.msg, "newer") != NULL);
}

static void t_urls(void)
{
    kw_store_t *s = NULL;
    kw_err_t e = {0};
#ifdef KW_HAVE_LIBPQ
    /* nothing listens on port 1: refused at once, and the password is never repeated */
    T_EQ_INT(kw_store_open("postgresql://u:sekrit@127.0.0.1:1/keyward", &s, &e), KW_ESTORE);
    T_CHECK(strstr(e.msg, "cannot connect") != NULL);
    T_CHECK(strstr(e.msg, "sekrit") == NULL);
    T_EQ_INT(kw_store_open("postgres://127.0.0.1:1/keyward", &s, &e), KW_ESTORE);
#endif
    T_EQ_INT(kw_store_open("mysql://x", &s, &e), KW_EINVAL);
    T_EQ_INT(kw_store_open("sqlite:", &s, &e), KW_EINVAL);
    T_EQ_INT(kw_store_open("sqlite::memory:", &s, &e), KW_EINVAL);
    T_EQ_INT(kw_store_open("sqlite:/nonexistent-dir/sub/x.db", &s, &e), KW_ESTORE);
    T_CHECK(strstr(e.msg, "unable to open") != NULL);
    T_CHECK(s == NULL);
}

static void t_policy(void)
{
    char path[128];
    kw_store_t *s = open_new(path);
    kw_err_t e = {0};
    kw_policy_t p, q;
    kw_policy_defaults(&p, "short");
    p.default_lifetime = 3600;
    p.thresholds[0] = 600;
    p.thresholds[1] = 60;
    p.nthresholds = 2;
    p.renewal_requires_approval = 1;
    p.created_at = p.updated_at = 5;
    T_EQ_INT(kw_store_policy_put(s, &p, 1, &e), KW_EINTERNAL); /* no transaction */
    T_EQ_INT(kw_store_begin(s, &e), 0);
    T_EQ_INT(kw_store_policy_put(s, &p, 1, &e), 0);
    T_EQ_INT(kw_store_policy_put(s, &p, 1, &e), KW_ECONFLICT);
    p.max_roll_overlap = 120;
    p.updated_at = 9;
    T_EQ_INT(kw_store_policy_put(s, &p, 0, &e), 0);
    kw_policy_t ghost;
    kw_policy_defaults(&ghost, "ghost");
    T_EQ_INT(kw_store_policy_put(s, &ghost, 0, &e), KW_ENOTFOUND);
    T_EQ_INT(kw_store_commit(s, &e), 0);

    T_EQ_INT(kw_store_policy_get(s, "short", &q, &e), 0);
    T_EQ_INT(q.default_lifetime, 3600);
    T_EQ_INT(q.nthresholds, 2);
    T_EQ_INT(q.thresholds[0], 600);
    T_EQ_INT(q.thresholds[1], 60);
    T_EQ_INT(q.renewal_requires_approval, 1);
    T_EQ_INT(q.max_roll_overlap, 120);
    T_EQ_INT(q.created_at, 5);
    T_EQ_INT(q.updated_at, 9);

    kw_policy_t *list = NULL;
    size_t n = 0;
    T_EQ_INT(kw_store_policy_list(s, &list, &n, &e), 0);
    T_EQ_INT(n, 2);
    if (n == 2) {
        T_EQ_STR(list[0].name, "default");
        T_EQ_STR(list[1].name, "short");
    }
    free(list);
    kw_store_close(s);
}

static void t_meta(void)
{
    char path[128];
    kw_store_t *s = open_new(path);
    kw_err_t e = {0};
    char *v = NULL;
    T_EQ_INT(kw_store_meta_get(s, "admin_bootstrapped", &v, &e), KW_ENOTFOUND);
    T_EQ_INT(kw_store_meta_set(s, "admin_bootstrapped", "1", &e), KW_EINTERNAL);
    T_EQ_INT(kw_store_begin(s, &e), 0);
    T_EQ_INT(kw_store_meta_set(s, "admin_bootstrapped", "1", &e), 0);
    T_EQ_INT(kw_store_meta_set(s, "admin_bootstrapped", "2", &e), 0);
    T_EQ_INT(kw_store_commit(s, &e), 0);
    T_EQ_INT(kw_store_meta_get(s, "admin_bootstrapped", &v, &e), 0);
    T_EQ_STR(v, "2");
    free(v);
    kw_store_close(s);
}

static void t_cred(void)
{
    char path[128];
    kw_store_t *s = open_new(path);
    kw_err_t e = {0};
    kw_cred_t c, g;
    mk_cred(&c, 1, "alice@example.com");
    T_EQ_INT(kw_store_begin(s, &e), 0);
    T_EQ_INT(kw_store_cred_insert(s, &c, &e), 0);
    T_CHECK(c.seq > 0);
    /* inside the transaction the writer thread sees its own write */
    T_EQ_INT(kw_store_cred_get(s, "cred_000001", &g, &e), 0);
    kw_cred_clear(&g);
    T_EQ_INT(kw_store_cred_insert(s, &c, &e), KW_ECONFLICT);
    T_EQ_STR(e.field, "id");
    kw_cred_t bad;
    mk_cred(&bad, 2, NULL);
    snprintf(bad.policy, sizeof(bad.policy), "missing");
    T_EQ_INT(kw_store_cred_insert(s, &bad, &e), KW_EINVAL);
    T_EQ_STR(e.field, "policy");
    kw_cred_clear(&bad);
    T_EQ_INT(kw_store_commit(s, &e), 0);

    T_EQ_INT(kw_store_cred_get(s, "cred_000001", &g, &e), 0);
    T_EQ_INT(g.seq, c.seq);
    T_EQ_STR(g.name, "svc");
    T_EQ_STR(g.owner, "alice@example.com");
    T_EQ_STR(g.scopes_json, "[\"read\"]");
    T_EQ_STR(g.metadata_json, "{\"team\":\"a\"}");
    T_EQ_STR(g.policy, "default");
    T_EQ_STR(g.prefix, "kw");
    T_EQ_INT(g.created_at, 1001);
    T_EQ_INT(g.deleted_at, 0);
    kw_cred_clear(&g);

    /* update every mutable field; NULL owner stays NULL; NULL JSON becomes the default */
    free(c.name);
    c.name = strdup("renamed");
    free(c.owner);
    c.owner = NULL;
    free(c.scopes_json);
    c.scopes_json = NULL;
    c.disabled = 1;
    c.updated_at = 4242;
    T_EQ_INT(kw_store_begin(s, &e), 0);
    T_EQ_INT(kw_store_cred_update(s, &c, &e), 0);
    kw_cred_t ghost;
    mk_cred(&ghost, 99, NULL);
    T_EQ_INT(kw_store_cred_update(s, &ghost, &e), KW_ENOTFOUND);
    kw_cred_clear(&ghost);
    T_EQ_INT(kw_store_commit(s, &e), 0);
    T_EQ_INT(kw_store_cred_get(s, "cred_000001", &g, &e), 0);
    T_EQ_STR(g.name, "renamed");
    T_CHECK(g.owner == NULL);
    T_EQ_STR(g.scopes_json, "[]");
    T_EQ_INT(g.disabled, 1);
    T_EQ_INT(g.updated_at, 4242);
    kw_cred_clear(&g);

    /* delete hides it */
    c.deleted_at = 5000;
    T_EQ_INT(kw_store_begin(s, &e), 0);
    T_EQ_INT(kw_store_cred_update(s, &c, &e), 0);
    T_EQ_INT(kw_store_commit(s, &e), 0);
    T_EQ_INT(kw_store_cred_get(s, "cred_000001", &g, &e), KW_ENOTFOUND);
    T_EQ_INT(kw_store_cred_get(s, "cred_nope", &g, &e), KW_ENOTFOUND);
    kw_cred_clear(&c);
    kw_store_close(s);
}

static void t_cred_list(void)
{
    char path[128];
    kw_store_t *s = open_new(path);
    kw_err_t e = {0};
    for (int i = 1; i <= 10; i++)
        T_EQ_INT(add_cred(s, i, i % 2 ? "odd" : "even"), 0);
    /* delete #3 */
    kw_cred_t c;
    mk_cred(&c, 3, "odd");
    c.deleted_at = 77;
    T_EQ_INT(kw_store_begin(s, &e), 0);
    T_EQ_INT(kw_store_cred_update(s, &c, &e), 0);
    T_EQ_INT(kw_store_commit(s, &e), 0);
    kw_cred_clear(&c);

    kw_cred_filter_t f = {.limit = 100};
    kw_cred_t *a = NULL;
    size_t n = 0;
    T_EQ_INT(kw_store_cred_list(s, &f, &a, &n, &e), 0);
    T_EQ_INT(n, 9);
    kw_cred_array_free(a, n);

    f.owner = "odd";
    T_EQ_INT(kw_store_cred_list(s, &f, &a, &n, &e), 0);
    T_EQ_INT(n, 4); /* 1, 5, 7, 9 */
    if (n == 4) {
        T_EQ_STR(a[0].id, "cred_000001");
        T_EQ_STR(a[1].id, "cred_000005");
    }
    kw_cred_array_free(a, n);

    /* pages of 3 by cursor walk all 9 in seq order, no repeats */
    f.owner = NULL;
    f.limit = 3;
    f.after_seq = 0;
    int seen = 0, pages = 0;
    int64_t last = 0;
    for (;;) {
        T_EQ_INT(kw_store_cred_list(s, &f, &a, &n, &e), 0);
        for (size_t i = 0; i < n; i++) {
            T_CHECK(a[i].seq > last);
            last = a[i].seq;
            seen++;
        }
        pages++;
        if (n < f.limit) {
            kw_cred_array_free(a, n);
            break;
        }
        f.after_seq = a[n - 1].seq;
        kw_cred_array_free(a, n);
        if (pages > 10)
            break;
    }
    T_EQ_INT(seen, 9);
    T_EQ_INT(pages, 4); /* 3 + 3 + 3 + 0 */

    f.limit = 0;
    T_EQ_INT(kw_store_cred_list(s, &f, &a, &n, &e), KW_EINVAL);
    kw_store_close(s);
}

static void t_cred_expiring_filter(void)
{
    char path[128];
    kw_store_t *s = open_new(path);
    kw_err_t e = {0};
    const int64_t now = 1000000;
    for (int i = 1; i <= 5; i++)
        T_EQ_INT(add_cred(s, i, "o"), 0);
    T_EQ_INT(add_key(s, 1, "cred_000001", 1, now + 100), 0);  /* in window */
    T_EQ_INT(add_key(s, 2, "cred_000002", 1, now + 5000), 0); /* outside */
    T_EQ_INT(add_key(s, 3, "cred_000003", 1, now - 10), 0);   /* already expired */
    T_EQ_INT(add_key(s, 4, "cred_000004", 1, 0), 0);          /* never */
    T_EQ_INT(add_key(s, 5, "cred_000005", 1, now + 200), 0);  /* in window but revoked */
    kw_keyrec_t k;
    T_EQ_INT(kw_store_key_get(s, "key_000005", &k, &e), 0);
    k.revoked_at = now - 1;
    k.live = 0;
    T_EQ_INT(kw_store_begin(s, &e), 0);
    T_EQ_INT(kw_store_key_update(s, &k, &e), 0);
    T_EQ_INT(kw_store_commit(s, &e), 0);

    kw_cred_filter_t f = {.owner = "o", .expiring_before = now + 1000, .now = now, .limit = 10};
    kw_cred_t *a = NULL;
    size_t n = 0;
    T_EQ_INT(kw_store_cred_list(s, &f, &a, &n, &e), 0);
    T_EQ_INT(n, 1);
    if (n == 1)
        T_EQ_STR(a[0].id, "cred_000001");
    kw_cred_array_free(a, n);
    f.owner = NULL;
    f.expiring_before = now + 100; /* inclusive upper bound */
    T_EQ_INT(kw_store_cred_list(s, &f, &a, &n, &e), 0);
    T_EQ_INT(n, 1);
    kw_cred_array_free(a, n);
    kw_store_close(s);
}

static void t_keys_and_slots(void)
{
    char path[128];
    kw_store_t *s = open_new(path);
    kw_err_t e = {0};
    T_EQ_INT(add_cred(s, 1, NULL), 0);
    T_EQ_INT(add_cred(s, 2, NULL), 0);

    kw_keyrec_t k1, k2, k3, g;
    mk_key(&k1, 1, "cred_000001", 1, 9000);
    mk_key(&k2, 2, "cred_000001", 2, 0);
    mk_key(&k3, 3, "cred_000001", 1, 9500);
    T_EQ_INT(kw_store_key_insert(s, &k1, &e), KW_EINTERNAL); /* no transaction */
    T_EQ_INT(kw_store_begin(s, &e), 0);
    T_EQ_INT(kw_store_key_insert(s, &k1, &e), 0);
    T_EQ_INT(kw_store_key_insert(s, &k2, &e), 0);
    T_CHECK(k2.seq > k1.seq);
    /* third live key: both slots taken */
    T_EQ_INT(kw_store_key_insert(s, &k3, &e), KW_ECONFLICT);
    T_EQ_STR(e.field, "slot");
    k3.slot = 2;
    T_EQ_INT(kw_store_key_insert(s, &k3, &e), KW_ECONFLICT);
    k3.slot = 3;
    T_EQ_INT(kw_store_key_insert(s, &k3, &e), KW_ECONFLICT);
    /* the same slot of another credential is free */
    kw_keyrec_t other;
    mk_key(&other, 4, "cred_000002", 1, 9000);
    T_EQ_INT(kw_store_key_insert(s, &other, &e), 0);
    kw_keyrec_t orphan;
    mk_key(&orphan, 5, "cred_nope", 1, 9000);
    T_EQ_INT(kw_store_key_insert(s, &orphan, &e), KW_ENOTFOUND);
    T_EQ_INT(kw_store_commit(s, &e), 0);

    /* retire k1 (revoked, not live): slot 1 takes a new key */
    k1.revoked_at = 8000;
    snprintf(k1.revoke_reason, sizeof(k1.revoke_reason), "leaked");
    k1.live = 0;
    k3.slot = 1;
    T_EQ_INT(kw_store_begin(s, &e), 0);
    T_EQ_INT(kw_store_key_update(s, &k1, &e), 0);
    T_EQ_INT(kw_store_key_insert(s, &k3, &e), 0);
    /* making k1 live again would collide with k3 */
    k1.live = 1;
    T_EQ_INT(kw_store_key_update(s, &k1, &e), KW_ECONFLICT);
    kw_keyrec_t ghost;
    mk_key(&ghost, 77, "cred_000001", 1, 0);
    T_EQ_INT(kw_store_key_update(s, &ghost, &e), KW_ENOTFOUND);
    T_EQ_INT(kw_store_commit(s, &e), 0);

    T_EQ_INT(kw_store_key_get(s, "key_000001", &g, &e), 0);
    T_EQ_INT(g.live, 0);
    T_EQ_INT(g.revoked_at, 8000);
    T_EQ_STR(g.revoke_reason, "leaked");
    T_EQ_INT(g.slot, 1);
    T_EQ_INT(g.expires_at, 9000);
    T_EQ_STR(g.hint, k1.hint);
    T_CHECK(memcmp(g.digest, k1.digest, KW_DIGEST_LEN) == 0);
    T_EQ_INT(kw_store_key_get(s, "key_000002", &g, &e), 0);
    T_EQ_INT(g.expires_at, 0);
    T_EQ_INT(g.live, 1);
    T_EQ_INT(g.last_used_at, 0);
    T_EQ_STR(g.revoke_reason, "");
    T_EQ_INT(kw_store_key_get(s, "key_nope", &g, &e), KW_ENOTFOUND);

    kw_keyrec_t *a = NULL;
    size_t n = 0;
    T_EQ_INT(kw_store_key_list_cred(s, "cred_000001", &a, &n, &e), 0);
    T_EQ_INT(n, 3);
    if (n == 3) {
        T_EQ_STR(a[0].id, "key_000003");
        T_EQ_STR(a[1].id, "key_000002");
        T_EQ_STR(a[2].id, "key_000001");
    }
    free(a);
    T_EQ_INT(kw_store_key_list_cred(s, "cred_nope", &a, &n, &e), 0);
    T_EQ_INT(n, 0);
    free(a);
    kw_store_close(s);
}

static void t_expiring(void)
{
    char path[128];
    kw_store_t *s = open_new(path);
    kw_err_t e = {0};
    const int64_t now = 1000000;
    for (int i = 1; i <= 4; i++)
        T_EQ_INT(add_cred(s, i, NULL), 0);
    /* same expiry for keys 1 and 2: seq breaks the tie */
    T_EQ_INT(add_key(s, 1, "cred_000001", 1, now + 300), 0);
    T_EQ_INT(add_key(s, 2, "cred_000002", 1, now + 300), 0);
    T_EQ_INT(add_key(s, 3, "cred_000003", 1, now + 100), 0);
    T_EQ_INT(add_key(s, 4, "cred_000001", 2, now + 200), 0);
    T_EQ_INT(add_key(s, 5, "cred_000002", 2, now + 99999), 0); /* after until */
    T_EQ_INT(add_key(s, 6, "cred_000003", 2, now), 0);         /* not > now */
    T_EQ_INT(add_key(s, 7, "cred_000004", 1, now + 50), 0);    /* deleted credential */
    kw_cred_t c;
    mk_cred(&c, 4, NULL);
    c.deleted_at = now;
    T_EQ_INT(kw_store_begin(s, &e), 0);
    T_EQ_INT(kw_store_cred_update(s, &c, &e), 0);
    T_EQ_INT(kw_store_commit(s, &e), 0);
    kw_cred_clear(&c);

    kw_keyrec_t *a = NULL;
    size_t n = 0;
    T_EQ_INT(kw_store_key_expiring(s, now, now + 1000, 0, 0, 10, &a, &n, &e), 0);
    T_EQ_INT(n, 4);
    if (n == 4) {
        T_EQ_STR(a[0].id, "key_000003");
        T_EQ_STR(a[1].id, "key_000004");
        T_EQ_STR(a[2].id, "key_000001");
        T_EQ_STR(a[3].id, "key_000002");
    }
    free(a);
    /* pages of 2 with the (expires_at, seq) cursor, splitting the tie */
    T_EQ_INT(kw_store_key_expiring(s, now, now + 1000, 0, 0, 2, &a, &n, &e), 0);
    T_EQ_INT(n, 2);
    int64_t ce = n ? a[n - 1].expires_at : 0, cs = n ? a[n - 1].seq : 0;
    free(a);
    T_EQ_INT(kw_store_key_expiring(s, now, now + 1000, ce, cs, 1, &a, &n, &e), 0);
    T_EQ_INT(n, 1);
    if (n == 1)
        T_EQ_STR(a[0].id, "key_000001");
    ce = n ? a[0].expires_at : 0;
    cs = n ? a[0].seq : 0;
    free(a);
    T_EQ_INT(kw_store_key_expiring(s, now, now + 1000, ce, cs, 5, &a, &n, &e), 0);
    T_EQ_INT(n, 1);
    if (n == 1)
        T_EQ_STR(a[0].id, "key_000002");
    free(a);

    /* a key that is revoked, or no longer live, is not "usable" */
    kw_keyrec_t k;
    T_EQ_INT(kw_store_key_get(s, "key_000003", &k, &e), 0);
    k.live = 0;
    T_EQ_INT(kw_store_begin(s, &e), 0);
    T_EQ_INT(kw_store_key_update(s, &k, &e), 0);
    T_EQ_INT(kw_store_commit(s, &e), 0);
    T_EQ_INT(kw_store_key_expiring(s, now, now + 1000, 0, 0, 10, &a, &n, &e), 0);
    T_EQ_INT(n, 3);
    free(a);
    kw_store_close(s);
}

static void t_usage(void)
{
    char path[128];
    kw_store_t *s = open_new(path);
    kw_err_t e = {0};
    T_EQ_INT(add_cred(s, 1, NULL), 0);
    T_EQ_INT(add_key(s, 1, "cred_000001", 1, 0), 0);
    T_EQ_INT(add_key(s, 2, "cred_000001", 2, 0), 0);
    kw_usage_t u[3] = {{.key_id = "key_000001", .delta = 5, .last_used = 100},
                       {.key_id = "key_nope", .delta = 1, .last_used = 100},
                       {.key_id = "key_000002", .delta = 1, .last_used = 50}};
    T_EQ_INT(kw_store_usage_apply(s, u, 3, &e), 0);
    kw_usage_t u2[2] = {{.key_id = "key_000001", .delta = 2, .last_used = 90},
                        {.key_id = "key_000001", .delta = 1, .last_used = 120}};
    T_EQ_INT(kw_store_usage_apply(s, u2, 2, &e), 0);
    T_EQ_INT(kw_store_usage_apply(s, NULL, 0, &e), 0);
    kw_keyrec_t k;
    T_EQ_INT(kw_store_key_get(s, "key_000001", &k, &e), 0);
    T_EQ_INT(k.use_count, 8);
    T_EQ_INT(k.last_used_at, 120);
    T_EQ_INT(kw_store_key_get(s, "key_000002", &k, &e), 0);
    T_EQ_INT(k.use_count, 1);
    T_EQ_INT(k.last_used_at, 50);
    /* not inside a caller's transaction */
    T_EQ_INT(kw_store_begin(s, &e), 0);
    T_EQ_INT(kw_store_usage_apply(s, u, 1, &e), KW_EINTERNAL);
    kw_store_rollback(s);
    kw_store_close(s);
}

static void t_events(void)
{
    char path[128];
    kw_store_t *s = open_new(path);
    kw_err_t e = {0};
    T_EQ_INT(kw_store_event_insert(s, "evt_1", "key.created", 10, "{}", &e), KW_EINTERNAL);
    T_EQ_INT(kw_store_begin(s, &e), 0);
    T_EQ_INT(kw_store_event_insert(s, "evt_1", "key.created", 10, "{\"id\":\"evt_1\"}", &e), 0);
    T_EQ_INT(kw_store_event_insert(s, "evt_2", "key.rolled", 11, "{}", &e), 0);
    T_EQ_INT(kw_store_event_insert(s, "evt_1", "key.created", 12, "{}", &e), KW_ECONFLICT);
    T_EQ_INT(kw_store_commit(s, &e), 0);
    kw_store_close(s);
    T_EQ_INT(peek_int(path, "SELECT count(*) FROM events"), 2);
    T_EQ_INT(peek_int(path, "SELECT occurred_at FROM events WHERE id = 'evt_2'"), 11);
}

typedef struct {
    int ncreds, nkeys, deleted, stop_at;
    char ids[8][KW_ID_MAX];
    size_t nk[8];
    char first_key[8][KW_ID_MAX];
} load_acc_t;

/* Credentials come first, then keys one per call (kw_store_load_all): credential i's
 * keys are counted in nk[i] and first_key[i] is the first of them delivered. */
static int load_cb(void *ud, const kw_cred_t *c, const kw_keyrec_t *keys, size_t nkeys)
{
    load_acc_t *a = ud;
    if (c) {
        if (nkeys != 0 || a->nkeys != 0) /* a credential after a key */
            return -100;
        if (a->ncreds < 8)
            snprintf(a->ids[a->ncreds], KW_ID_MAX, "%s", c->id);
        if (c->name == NULL || c->scopes_json == NULL)
            return -101;
        a->deleted += c->deleted_at != 0;
        a->ncreds++;
        return a->stop_at && a->ncreds == a->stop_at ? 42 : 0;
    }
    if (nkeys != 1)
        return -102;
    int i = 0;
    while (i < a->ncreds && i < 8 && strcmp(a->ids[i], keys[0].cred_id) != 0)
        i++;
    if (i == a->ncreds || i == 8) /* its credential did not come first */
        return -103;
    if (a->nk[i]++ == 0)
        snprintf(a->first_key[i], KW_ID_MAX, "%s", keys[0].id);
    a->nkeys++;
    return 0;
}

/* load_all hands over every byte as stored: control characters, backslashes and "\\N" in
 * text columns, NULL and empty strings apart, the digest whole (PostgreSQL reads both scans
 * with COPY, whose text format escapes these). */
typedef struct load_exact {
    kw_cred_t c;
    kw_keyrec_t k;
    int creds, keys;
} load_exact_t;

static int load_exact_cb(void *ud, const kw_cred_t *c, const kw_keyrec_t *keys, size_t nkeys)
{
    load_exact_t *x = ud;
    if (c) {
        x->creds++;
        if (strcmp(c->name, x->c.name) != 0 || c->owner != NULL ||
            strcmp(c->metadata_json, x->c.metadata_json) != 0 ||
            strcmp(c->contacts_json, "") != 0 || strcmp(c->id, x->c.id) != 0)
            return -1;
        return 0;
    }
    x->keys++;
    if (nkeys != 1 || memcmp(keys[0].digest, x->k.digest, KW_DIGEST_LEN) != 0 ||
        strcmp(keys[0].hint, x->k.hint) != 0 || strcmp(keys[0].revoke_reason, "") != 0 ||
        keys[0].expires_at != x->k.expires_at || keys[0].live != 1)
        return -2;
    return 0;
}

static void t_load_all_exact(void)
{
    char path[128];
    kw_store_t *s = open_new(path);
    kw_err_t e = {0};
    load_exact_t x = {0};
    mk_cred(&x.c, 7, NULL);
    free(x.c.name);
    x.c.name = strdup("tab\there\nnew line \\ back\\N \r\b\f\v end");
    free(x.c.metadata_json);
    x.c.metadata_json = strdup("{\"k\":\"\\\\N\\t\\\\\"}");
    free(x.c.contacts_json);
    x.c.contacts_json = strdup("");
    mk_key(&x.k, 7, "cred_000007", 1, 9000);
    for (int i = 0; i < KW_DIGEST_LEN; i++)
        x.k.digest[i] = (uint8_t)(i * 37 + 9); /* every nibble, tab and newline bytes too */
    x.k.digest[3] = '\t';
    x.k.digest[4] = '\n';
    x.k.digest[5] = '\\';
    T_EQ_INT(kw_store_begin(s, &e), 0);
    T_EQ_INT(kw_store_cred_insert(s, &x.c, &e), 0);
    T_EQ_INT(kw_store_key_insert(s, &x.k, &e), 0);
    T_EQ_INT(kw_store_commit(s, &e), 0);
    T_EQ_INT(kw_store_load_all(s, 0, load_exact_cb, &x, &e), 0);
    T_EQ_INT(x.creds, 1);
    T_EQ_INT(x.keys, 1);
    kw_cred_clear(&x.c);
    kw_store_close(s);
}

/* kw_store_load_index: load_all's rows without what the index never reads (credentials:
 * name, owner, metadata, contacts NULL; keys: hint "", created_at and use_count 0),
 * everything else as stored. */
static int load_index_cb(void *ud, const kw_cred_t *c, const kw_keyrec_t *keys, size_t nkeys)
{
    load_exact_t *x = ud;
    if (c) {
        x->creds++;
        if (c->name || c->owner || c->metadata_json || c->contacts_json ||
            strcmp(c->id, x->c.id) != 0 || strcmp(c->scopes_json, x->c.scopes_json) != 0 ||
            strcmp(c->cidrs_json, x->c.cidrs_json) != 0 || strcmp(c->policy, x->c.policy) != 0 ||
            strcmp(c->prefix, x->c.prefix) != 0 || c->disabled != 1 || c->deleted_at != 7000 ||
            c->created_at != x->c.created_at || c->updated_at != x->c.updated_at)
            return -1;
        return 0;
    }
    x->keys++;
    if (nkeys != 1 || memcmp(keys[0].digest, x->k.digest, KW_DIGEST_LEN) != 0 ||
        strcmp(keys[0].id, x->k.id) != 0 || strcmp(keys[0].cred_id, x->c.id) != 0 ||
        keys[0].hint[0] != '\0' || keys[0].created_at != 0 || keys[0].use_count != 0 ||
        keys[0].expires_at != x->k.expires_at || keys[0].slot != 2 || keys[0].live != 1)
        return -2;
    return 0;
}

static void t_load_index(void)
{
    char path[128];
    kw_store_t *s = open_new(path);
    kw_err_t e = {0};
    load_exact_t x = {0};
    mk_cred(&x.c, 8, "team-a");
    free(x.c.cidrs_json);
    x.c.cidrs_json = strdup("[\"10.0.0.0/8\"]");
    free(x.c.contacts_json);
    x.c.contacts_json = strdup("[{\"type\":\"webhook\",\"secret\":\"s3cret\"}]");
    x.c.disabled = 1;
    x.c.deleted_at = 7000;
    mk_key(&x.k, 8, "cred_000008", 2, 9000);
    T_EQ_INT(kw_store_begin(s, &e), 0);
    T_EQ_INT(kw_store_cred_insert(s, &x.c, &e), 0);
    T_EQ_INT(kw_store_key_insert(s, &x.k, &e), 0);
    T_EQ_INT(kw_store_commit(s, &e), 0);
    T_EQ_INT(kw_store_load_index(s, 0, load_index_cb, &x, &e), 0);
    T_EQ_INT(x.creds, 1);
    T_EQ_INT(x.keys, 1);
    kw_cred_clear(&x.c);
    kw_store_close(s);
}

/* The seal scan (kw_store_seal_scan, at every start) reads only the credentials whose
 * contacts name a "secret": one sealed secret among clear ones and none is found. */
static void t_seal_scan(void)
{
    char path[128];
    kw_store_t *s = open_new(path);
    kw_err_t e = {0};
    int any = -1;
    T_EQ_INT(add_cred(s, 1, NULL), 0);
    T_EQ_INT(kw_store_seal_scan(s, &any, &e), 0);
    T_EQ_INT(any, 0);
    kw_cred_t c;
    mk_cred(&c, 2, NULL);
    free(c.contacts_json);
    c.contacts_json = strdup("[{\"type\":\"webhook\",\"secret\":\"clear\"}]");
    T_EQ_INT(kw_store_begin(s, &e), 0);
    T_EQ_INT(kw_store_cred_insert(s, &c, &e), 0);
    T_EQ_INT(kw_store_commit(s, &e), 0);
    kw_cred_clear(&c);
    T_EQ_INT(kw_store_seal_scan(s, &any, &e), 0);
    T_EQ_INT(any, 0);
    mk_cred(&c, 3, NULL);
    free(c.contacts_json);
    c.contacts_json = strdup("[{\"type\":\"webhook\",\"secret\":\"" KW_SEAL_PREFIX "00\"}]");
    T_EQ_INT(kw_store_begin(s, &e), 0);
    T_EQ_INT(kw_store_cred_insert(s, &c, &e), 0);
    T_EQ_INT(kw_store_commit(s, &e), 0);
    kw_cred_clear(&c);
    T_EQ_INT(kw_store_seal_scan(s, &any, &e), 0);
    T_EQ_INT(any, 1);
    kw_store_close(s);
}

static void t_load_all(void)
{
    char path[128];
    kw_store_t *s = open_new(path);
    kw_err_t e = {0};
    const int64_t retain = 5000;
    for (int i = 1; i <= 4; i++)
        T_EQ_INT(add_cred(s, i, NULL), 0);
    T_EQ_INT(add_key(s, 1, "cred_000001", 1, 0), 0);    /* kept: never expires */
    T_EQ_INT(add_key(s, 2, "cred_000001", 2, 4000), 0); /* dropped: expired before */
    T_EQ_INT(add_key(s, 3, "cred_000002", 1, 6000), 0); /* kept */
    T_EQ_INT(add_key(s, 4, "cred_000003", 1, 9000), 0); /* revoked at 4500: dropped */
    T_EQ_INT(add_key(s, 5, "cred_000003", 2, 9000), 0); /* revoked at 5000: kept */
    T_EQ_INT(add_key(s, 6, "cred_000002", 2, 5000), 0); /* expires exactly at: kept */
    kw_keyrec_t k;
    T_EQ_INT(kw_store_begin(s, &e), 0);
    T_EQ_INT(kw_store_key_get(s, "key_000004", &k, &e), 0);
    k.revoked_at = 4500;
    k.live = 0;
    T_EQ_INT(kw_store_key_update(s, &k, &e), 0);
    T_EQ_INT(kw_store_key_get(s, "key_000005", &k, &e), 0);
    k.revoked_at = 5000;
    k.live = 0;
    T_EQ_INT(kw_store_key_update(s, &k, &e), 0);
    int64_t ncreds = -1, nkeys = -1; /* every row, retained or not: the index's size hint */
    T_EQ_INT(kw_store_counts(s, &ncreds, &nkeys, &e), 0);
    T_EQ_INT(ncreds, 4);
    T_EQ_INT(nkeys, 6);
    kw_cred_t c;
    mk_cred(&c, 3, NULL);
    c.deleted_at = 5000; /* deleted credentials still load */
    T_EQ_INT(kw_store_cred_update(s, &c, &e), 0);
    kw_cred_clear(&c);
    T_EQ_INT(kw_store_commit(s, &e), 0);

    load_acc_t a = {0};
    T_EQ_INT(kw_store_load_all(s, retain, load_cb, &a, &e), 0);
    T_EQ_INT(a.ncreds, 4);
    T_EQ_INT(a.nkeys, 4);
    T_EQ_INT(a.deleted, 1);
    T_EQ_STR(a.ids[0], "cred_000001");
    T_EQ_INT(a.nk[0], 1);
    T_EQ_INT(a.nk[1], 2);
    T_EQ_STR(a.first_key[1], "key_000003"); /* store order */
    /* "store order" is the table's: PostgreSQL moves an updated row (cred_000003) */
    int i3 = strcmp(a.ids[2], "cred_000003") == 0 ? 2 : 3;
    T_EQ_STR(a.ids[i3], "cred_000003");
    T_EQ_INT(a.nk[i3], 1);
    T_EQ_STR(a.first_key[i3], "key_000005");
    T_EQ_INT(a.nk[5 - i3], 0);

    load_acc_t b = {.stop_at = 2};
    T_EQ_INT(kw_store_load_all(s, retain, load_cb, &b, &e), 42);
    T_EQ_INT(b.ncreds, 2);

    /* from inside a transaction it reads through the writer and sees uncommitted rows */
    T_EQ_INT(kw_store_begin(s, &e), 0);
    T_EQ_INT(kw_store_begin(s, &e), KW_EINTERNAL); /* nested begin is refused */
    mk_cred(&c, 9, NULL);
    T_EQ_INT(kw_store_cred_insert(s, &c, &e), 0);
    kw_cred_clear(&c);
    load_acc_t d = {0};
    T_EQ_INT(kw_store_load_all(s, retain, load_cb, &d, &e), 0);
    T_EQ_INT(d.ncreds, 5);
    kw_store_rollback(s);
    kw_store_close(s);
}

static void t_rollback(void)
{
    char path[128], url[140];
    new_path(path, url);
    kw_store_t *s = open_url(url);
    kw_err_t e = {0};
    kw_cred_t c, g;
    kw_keyrec_t k;
    mk_cred(&c, 1, NULL);
    mk_key(&k, 1, "cred_000001", 1, 0);
    T_EQ_INT(kw_store_begin(s, &e), 0);
    T_EQ_INT(kw_store_cred_insert(s, &c, &e), 0);
    T_EQ_INT(kw_store_key_insert(s, &k, &e), 0);
    T_EQ_INT(kw_store_event_insert(s, "evt_1", "key.created", 1, "{}", &e), 0);
    T_EQ_INT(kw_store_meta_set(s, "m", "v", &e), 0);
    kw_store_rollback(s);
    kw_store_rollback(s); /* no-op without a transaction */
    T_EQ_INT(kw_store_commit(s, &e), KW_EINTERNAL);
    T_EQ_INT(kw_store_cred_get(s, "cred_000001", &g, &e), KW_ENOTFOUND);
    T_EQ_INT(kw_store_key_get(s, "key_000001", &k, &e), KW_ENOTFOUND);
    kw_store_close(s);
    T_EQ_INT(peek_int(path, "SELECT count(*) FROM credentials"), 0);
    T_EQ_INT(peek_int(path, "SELECT count(*) FROM keys"), 0);
    T_EQ_INT(peek_int(path, "SELECT count(*) FROM events"), 0);
    T_EQ_INT(peek_int(path, "SELECT count(*) FROM meta"), 0);
    kw_cred_clear(&c);
}

static void t_reopen(void)
{
    char path[128], url[140];
    new_path(path, url);
    kw_store_t *s = open_url(url);
    kw_err_t e = {0};
    T_EQ_INT(add_cred(s, 1, "bob"), 0);
    T_EQ_INT(add_key(s, 1, "cred_000001", 1, 12345), 0);
    kw_usage_t u = {.key_id = "key_000001", .delta = 3, .last_used = 777};
    T_EQ_INT(kw_store_usage_apply(s, &u, 1, &e), 0);
    kw_store_close(s);

    s = open_url(url);
    T_CHECK(s != NULL);
    kw_cred_t g;
    kw_keyrec_t k;
    T_EQ_INT(kw_store_cred_get(s, "cred_000001", &g, &e), 0);
    T_EQ_STR(g.owner, "bob");
    kw_cred_clear(&g);
    T_EQ_INT(kw_store_key_get(s, "key_000001", &k, &e), 0);
    T_EQ_INT(k.expires_at, 12345);
    T_EQ_INT(k.use_count, 3);
    T_EQ_INT(k.last_used_at, 777);
    /* the slot rule still holds after reopen */
    T_EQ_INT(add_key(s, 2, "cred_000001", 1, 0), KW_ECONFLICT);
    kw_store_close(s);
}

/* Two threads: the main thread holds the write transaction with an uncommitted credential;
 * the reader thread must get committed data at once and not see the uncommitted one. */
typedef struct {
    kw_store_t *s;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int phase; /* 1: writer in tx, 2: reader done, 3: writer committed, 4: reader done */
    int got_committed, got_uncommitted, got_after_commit, write_refused;
} thr_t;

static void *reader_main(void *arg)
{
    thr_t *t = arg;
    kw_err_t e = {0};
    kw_cred_t g;
    pthread_mutex_lock(&t->mu);
    while (t->phase < 1)
        pthread_cond_wait(&t->cv, &t->mu);
    pthread_mutex_unlock(&t->mu);

    t->got_committed = kw_store_cred_get(t->s, "cred_000001", &g, &e);
    if (t->got_committed == 0)
        kw_cred_clear(&g);
    t->got_uncommitted = kw_store_cred_get(t->s, "cred_000002", &g, &e);
    if (t->got_uncommitted == 0)
        kw_cred_clear(&g);
    /* writes from a thread not holding the transaction are refused, not slipped in */
    t->write_refused = kw_store_meta_set(t->s, "k", "v", &e);

    pthread_mutex_lock(&t->mu);
    t->phase = 2;
    pthread_cond_broadcast(&t->cv);
    while (t->phase < 3)
        pthread_cond_wait(&t->cv, &t->mu);
    pthread_mutex_unlock(&t->mu);

    t->got_after_commit = kw_store_cred_get(t->s, "cred_000002", &g, &e);
    if (t->got_after_commit == 0)
        kw_cred_clear(&g);
    pthread_mutex_lock(&t->mu);
    t->phase = 4;
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

static void t_threads(void)
{
    char path[128];
    thr_t t = {.s = open_new(path)};
    kw_err_t e = {0};
    pthread_mutex_init(&t.mu, NULL);
    pthread_cond_init(&t.cv, NULL);
    T_EQ_INT(add_cred(t.s, 1, NULL), 0);
    pthread_t th;
    T_EQ_INT(pthread_create(&th, NULL, reader_main, &t), 0);

    kw_cred_t c;
    mk_cred(&c, 2, NULL);
    T_EQ_INT(kw_store_begin(t.s, &e), 0);
    T_EQ_INT(kw_store_cred_insert(t.s, &c, &e), 0);
    kw_cred_clear(&c);
    pthread_mutex_lock(&t.mu);
    t.phase = 1;
    pthread_cond_broadcast(&t.cv);
    /* If the reader blocked on the writer, this times out instead of hanging. */
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 10;
    int to = 0;
    while (t.phase < 2 && !to)
        to = pthread_cond_timedwait(&t.cv, &t.mu, &dl) == ETIMEDOUT;
    pthread_mutex_unlock(&t.mu);
    T_EQ_INT(to, 0);
    T_EQ_INT(t.got_committed, 0);
    T_EQ_INT(t.got_uncommitted, KW_ENOTFOUND);
    T_EQ_INT(t.write_refused, KW_EINTERNAL);
    T_EQ_INT(kw_store_commit(t.s, &e), 0);

    pthread_mutex_lock(&t.mu);
    t.phase = 3;
    pthread_cond_broadcast(&t.cv);
    pthread_mutex_unlock(&t.mu);
    pthread_join(th, NULL);
    T_EQ_INT(t.got_after_commit, 0);
    pthread_cond_destroy(&t.cv);
    pthread_mutex_destroy(&t.mu);
    kw_store_close(t.s);
}

/* Writers on two threads serialise on the writer lock; nothing is lost. */
typedef struct {
    kw_store_t *s;
    int base, n, failures;
} wr_t;

static void *writer_main(void *arg)
{
    wr_t *w = arg;
    for (int i = 0; i < w->n; i++)
        if (add_cred(w->s, w->base + i, NULL) != 0)
            w->failures++;
    return NULL;
}

static void t_two_writers(void)
{
    char path[128];
    kw_store_t *s = open_new(path);
    wr_t a = {s, 100, 50, 0}, b = {s, 200, 50, 0};
    pthread_t ta, tb;
    pthread_create(&ta, NULL, writer_main, &a);
    pthread_create(&tb, NULL, writer_main, &b);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    T_EQ_INT(a.failures + b.failures, 0);
    kw_store_close(s);
    T_EQ_INT(peek_int(path, "SELECT count(*) FROM credentials"), 100);
}

/* Disk full (simulated with max_page_count): KW_ESTORE with SQLite's message, the
 * transaction rolls back, the lock is released and the store keeps working. */
static void t_disk_full(void)
{
    char path[128];
    kw_store_t *s = open_new(path);
    kw_err_t e = {0};
    T_EQ_INT(add_cred(s, 1, NULL), 0);
    T_EQ_INT(kw_store_begin(s, &e), 0);
    T_EQ_INT(kw_store_sqlite_exec(s, "PRAGMA max_page_count = 1", &e), 0);
    kw_cred_t c;
    mk_cred(&c, 2, NULL);
    free(c.metadata_json);
    c.metadata_json = malloc(200000);
    memset(c.metadata_json, 'x', 199999);
    c.metadata_json[199999] = '\0';
    int rc = kw_store_cred_insert(s, &c, &e);
    T_EQ_INT(rc, KW_ESTORE);
    T_CHECK(strstr(e.msg, "full") != NULL);
    T_CHECK(strstr(e.msg, "xxxx") == NULL); /* never data */
    kw_store_rollback(s);

    /* same after a write that fitted, and the caller goes on to commit: commit refuses,
     * nothing of the transaction is kept, and the lock is released */
    kw_cred_t small, g;
    mk_cred(&small, 3, NULL);
    T_EQ_INT(kw_store_begin(s, &e), 0);
    T_EQ_INT(kw_store_cred_insert(s, &small, &e), 0);
    T_EQ_INT(kw_store_cred_insert(s, &c, &e), KW_ESTORE);
    T_EQ_INT(kw_store_commit(s, &e), KW_ESTORE);
    T_CHECK(strstr(e.msg, "full") != NULL);
    T_EQ_INT(kw_store_cred_get(s, "cred_000003", &g, &e), KW_ENOTFOUND);
    T_EQ_INT(kw_store_cred_get(s, "cred_000002", &g, &e), KW_ENOTFOUND);
    kw_cred_clear(&small);

    T_EQ_INT(kw_store_begin(s, &e), 0);
    T_EQ_INT(kw_store_sqlite_exec(s, "PRAGMA max_page_count = 1073741823", &e), 0);
    T_EQ_INT(kw_store_cred_insert(s, &c, &e), 0);
    T_EQ_INT(kw_store_commit(s, &e), 0);
    T_EQ_INT(kw_store_cred_get(s, "cred_000002", &g, &e), 0);
    kw_cred_clear(&g);
    kw_cred_clear(&c);
    T_EQ_INT(kw_store_sqlite_exec(s, "SELECT 1", &e), KW_EINTERNAL);
    kw_store_close(s);
}

/* Savepoints (group commit): a change rolled back to its savepoint goes alone and the
 * changes before and after it commit; a backend failure that aborts the whole transaction
 * (disk full does, in SQLite) or a trigger's RAISE(ROLLBACK) is reported as the
 * transaction lost: keeping or undoing the change says so, no new savepoint is opened and
 * nothing of the transaction is kept. */
/* Group commit's deferred writes (kw_store_defer_writes, kw_store_sync): inside an op a
 * backend may answer an insert only at the op's next read or its sync (PostgreSQL sends
 * them in one libpq pipeline). A refused one fails its op alone, with the error it would have
 * had at once; seqs are filled in by the sync; a meta value written in the transaction reads
 * back without a round trip and is forgotten with its op. SQLite answers every write at once. */
static void t_deferred(void)
{
    char path[128];
    kw_store_t *s = open_new(path);
    kw_err_t e = {0};
    kw_cred_t a, g;
    kw_keyrec_t k1, k2, k3, kg;
    char *v = NULL;
    int rc;
    mk_cred(&a, 1, NULL);
    mk_key(&k1, 1, a.id, 1, 0);
    mk_key(&k2, 2, a.id, 1, 0); /* slot 1 again */
    mk_key(&k3, 3, a.id, 2, 0);
    kw_store_defer_writes(s, 1);
    T_EQ_INT(kw_store_begin(s, &e), 0);
    /* op 1: a credential, its key, an event; a meta value read under its lock, written */
    T_EQ_INT(kw_store_savepoint(s, &e), 0);
    T_EQ_INT(kw_store_cred_insert(s, &a, &e), 0);
    T_EQ_INT(kw_store_key_insert(s, &k1, &e), 0);
    T_EQ_INT(kw_store_event_insert(s, "evt_1", "key.created", 100, "{}", &e), 0);
    T_EQ_INT(kw_store_meta_get(s, "head", &v, &e), KW_ENOTFOUND);
    T_EQ_INT(kw_store_meta_set(s, "head", "1:a", &e), 0);
    T_EQ_INT(kw_store_meta_get(s, "head", &v, &e), 0);
    T_EQ_STR(v, "1:a");
    free(v);
    T_EQ_INT(kw_store_sync(s, &e), 0);
    T_CHECK(a.seq > 0 && k1.seq > 0);
    T_EQ_INT(kw_store_savepoint_end(s, 1, &e), 0);
    /* op 2: a second live key in slot 1, refused at the insert or at the sync; its meta
     * write goes with it */
    T_EQ_INT(kw_store_savepoint(s, &e), 0);
    T_EQ_INT(kw_store_meta_get(s, "head", &v, &e), 0);
    T_EQ_STR(v, "1:a");
    free(v);
    T_EQ_INT(kw_store_meta_set(s, "head", "2:b", &e), 0);
    rc = kw_store_key_insert(s, &k2, &e);
    if (rc == 0)
        rc = kw_store_sync(s, &e);
    T_EQ_INT(rc, KW_ECONFLICT);
    T_EQ_STR(e.field, "slot");
    T_EQ_INT(kw_store_savepoint_end(s, 0, &e), 0);
    /* op 3: the kept value again; an event id taken, refused at the insert or by the read
     * that follows it */
    T_EQ_INT(kw_store_savepoint(s, &e), 0);
    T_EQ_INT(kw_store_meta_get(s, "head", &v, &e), 0);
    T_EQ_STR(v, "1:a");
    free(v);
    rc = kw_store_event_insert(s, "evt_1", "key.created", 101, "{}", &e);
    if (rc == 0)
        rc = kw_store_cred_get(s, a.id, &g, &e);
    T_EQ_INT(rc, KW_ECONFLICT);
    T_EQ_STR(e.field, "id");
    T_EQ_INT(kw_store_savepoint_end(s, 0, &e), 0);
    /* op 4: the second key, in the other slot, kept */
    T_EQ_INT(kw_store_savepoint(s, &e), 0);
    T_EQ_INT(kw_store_key_insert(s, &k3, &e), 0);
    T_EQ_INT(kw_store_meta_set(s, "head", "3:c", &e), 0);
    T_EQ_INT(kw_store_sync(s, &e), 0);
    T_CHECK(k3.seq > k1.seq);
    T_EQ_INT(kw_store_savepoint_end(s, 1, &e), 0);
    T_EQ_INT(kw_store_commit(s, &e), 0);
    T_EQ_INT(kw_store_key_get(s, "key_000001", &kg, &e), 0);
    T_EQ_INT(kw_store_key_get(s, "key_000002", &kg, &e), KW_ENOTFOUND);
    T_EQ_INT(kw_store_key_get(s, "key_000003", &kg, &e), 0);
    T_EQ_INT(kw_store_meta_get(s, "head", &v, &e), 0);
    T_EQ_STR(v, "3:c");
    free(v);
    /* a policy read op after op sees the transaction's own change to it, and not once the
     * op that made it is undone */
    kw_policy_t pol, pg;
    T_EQ_INT(kw_store_begin(s, &e), 0);
    T_EQ_INT(kw_store_savepoint(s, &e), 0);
    T_EQ_INT(kw_store_policy_get(s, "default", &pol, &e), 0);
    T_EQ_INT(kw_store_sync(s, &e), 0);
    T_EQ_INT(kw_store_savepoint_end(s, 1, &e), 0);
    T_EQ_INT(kw_store_savepoint(s, &e), 0);
    pg = pol;
    pg.default_lifetime = pol.default_lifetime / 2;
    T_EQ_INT(kw_store_policy_put(s, &pg, 0, &e), 0);
    T_EQ_INT(kw_store_policy_get(s, "default", &pg, &e), 0);
    T_EQ_INT(pg.default_lifetime, pol.default_lifetime / 2);
    T_EQ_INT(kw_store_sync(s, &e), 0);
    T_EQ_INT(kw_store_savepoint_end(s, 0, &e), 0);
    T_EQ_INT(kw_store_savepoint(s, &e), 0);
    T_EQ_INT(kw_store_policy_get(s, "default", &pg, &e), 0);
    T_EQ_INT(pg.default_lifetime, pol.default_lifetime);
    T_EQ_INT(kw_store_sync(s, &e), 0);
    T_EQ_INT(kw_store_savepoint_end(s, 1, &e), 0);
    T_EQ_INT(kw_store_commit(s, &e), 0);
    /* a refused write that a later read of its op drained: that read's error may misname
     * the cause, the sync names it (group commit ends the op with the sync's error) */
    T_EQ_INT(kw_store_begin(s, &e), 0);
    T_EQ_INT(kw_store_savepoint(s, &e), 0);
    rc = kw_store_key_insert(s, &k2, &e);
    if (rc == 0) {
        char *hv = NULL;
        T_CHECK(kw_store_meta_get(s, "head", &hv, &e) != 0);
        free(hv);
        rc = kw_store_sync(s, &e);
    }
    T_EQ_INT(rc, KW_ECONFLICT);
    T_EQ_STR(e.field, "slot");
    T_EQ_INT(kw_store_savepoint_end(s, 0, &e), 0);
    T_EQ_INT(kw_store_sync(s, &e), 0); /* forgotten with its op */
    T_EQ_INT(kw_store_commit(s, &e), 0);
    if (pg_base) {
        /* a caller that does not sync never keeps a refused write: the op is lost, the
         * transaction with it */
        T_EQ_INT(kw_store_begin(s, &e), 0);
        T_EQ_INT(kw_store_savepoint(s, &e), 0);
        T_EQ_INT(kw_store_key_insert(s, &k2, &e), 0);
        T_EQ_INT(kw_store_savepoint_end(s, 1, &e), KW_ESTORE);
        T_EQ_INT(kw_store_commit(s, &e), KW_ESTORE);
        T_EQ_INT(kw_store_key_get(s, "key_000002", &kg, &e), KW_ENOTFOUND);
    }
    kw_cred_clear(&a);
    kw_store_close(s);
}

/* Two nodes' write transactions on one PostgreSQL lock rows in opposite orders: A updates a
 * policy, then appends to the audit head; B holds the head, then updates that policy. They
 * must queue (the writer lock group commit's transactions take first), not deadlock. */
typedef struct {
    kw_store_t *s;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int began, rc;
} two_t;

static void *two_writer_a(void *arg)
{
    two_t *t = arg;
    kw_err_t e = {0};
    kw_policy_t p;
    char *v = NULL;
    int rc = kw_store_begin(t->s, &e);
    if (rc == 0 && (rc = kw_store_policy_get(t->s, "default", &p, &e)) == 0) {
        p.default_lifetime -= 1;
        rc = kw_store_policy_put(t->s, &p, 0, &e);
    }
    pthread_mutex_lock(&t->mu);
    t->began = 1;
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
    usleep(300 * 1000); /* B is in its transaction (or waiting to begin it) meanwhile */
    if (rc == 0) {
        rc = kw_store_meta_get(t->s, "head", &v, &e);
        free(v);
        if (rc == KW_ENOTFOUND)
            rc = 0;
    }
    if (rc == 0)
        rc = kw_store_meta_set(t->s, "head", "a", &e);
    if (rc == 0)
        rc = kw_store_commit(t->s, &e);
    else
        kw_store_rollback(t->s);
    t->rc = rc;
    return NULL;
}

static void t_writers_queue(void)
{
    char path[128];
    kw_store_t *a = open_new(path);
    kw_store_t *b = open_url(path); /* a second node on the same database */
    two_t t = {.s = a};
    kw_err_t e = {0};
    kw_store_defer_writes(a, 1); /* as group commit runs them */
    kw_store_defer_writes(b, 1);
    kw_policy_t p;
    char *v = NULL;
    pthread_mutex_init(&t.mu, NULL);
    pthread_cond_init(&t.cv, NULL);
    pthread_t th;
    T_EQ_INT(pthread_create(&th, NULL, two_writer_a, &t), 0);
    pthread_mutex_lock(&t.mu);
    while (!t.began)
        pthread_cond_wait(&t.cv, &t.mu);
    pthread_mutex_unlock(&t.mu);
    int rc = kw_store_begin(b, &e);
    if (rc == 0) {
        rc = kw_store_meta_get(b, "head", &v, &e);
        free(v);
        if (rc == KW_ENOTFOUND)
            rc = 0;
    }
    if (rc == 0 && (rc = kw_store_policy_get(b, "default", &p, &e)) == 0) {
        p.default_lifetime -= 1;
        rc = kw_store_policy_put(b, &p, 0, &e);
    }
    if (rc == 0)
        rc = kw_store_meta_set(b, "head", "b", &e);
    if (rc == 0)
        rc = kw_store_commit(b, &e);
    else
        kw_store_rollback(b);
    pthread_join(th, NULL);
    T_EQ_INT(t.rc, 0);
    T_EQ_INT(rc, 0);
    T_EQ_INT(kw_store_meta_get(b, "head", &v, &e), 0);
    T_EQ_STR(v, "b"); /* B waited for A */
    free(v);
    pthread_mutex_destroy(&t.mu);
    pthread_cond_destroy(&t.cv);
    kw_store_close(b);
    kw_store_close(a);
}

static void t_savepoints(void)
{
    char path[128];
    kw_store_t *s = open_new(path);
    kw_err_t e = {0};
    kw_cred_t a, big, b, c4, c5, c6, g;
    mk_cred(&a, 1, NULL);
    mk_cred(&big, 2, NULL);
    mk_cred(&b, 3, NULL);
    mk_cred(&c4, 4, NULL);
    mk_cred(&c5, 5, NULL);
    mk_cred(&c6, 6, NULL);
    free(big.metadata_json);
    big.metadata_json = malloc(200000);
    memset(big.metadata_json, 'x', 199999);
    big.metadata_json[199999] = '\0';

    T_EQ_INT(kw_store_savepoint(s, &e), KW_EINTERNAL); /* outside a transaction */
    T_EQ_INT(kw_store_savepoint_end(s, 1, &e), KW_EINTERNAL);
    T_EQ_INT(kw_store_begin(s, &e), 0);
    T_EQ_INT(kw_store_savepoint(s, &e), 0);
    T_EQ_INT(kw_store_savepoint(s, &e), KW_EINTERNAL); /* no nesting */
    T_EQ_INT(kw_store_cred_insert(s, &a, &e), 0);
    T_EQ_INT(kw_store_savepoint_end(s, 1, &e), 0);
    /* a refusal in the second change after a write that fitted: undone alone */
    T_EQ_INT(kw_store_savepoint(s, &e), 0);
    T_EQ_INT(kw_store_cred_insert(s, &b, &e), 0);
    T_EQ_INT(kw_store_cred_insert(s, &a, &e), KW_ECONFLICT);
    T_EQ_INT(kw_store_savepoint_end(s, 0, &e), 0);
    T_EQ_INT(kw_store_savepoint(s, &e), 0);
    T_EQ_INT(kw_store_cred_insert(s, &c4, &e), 0);
    T_EQ_INT(kw_store_savepoint_end(s, 1, &e), 0);
    T_EQ_INT(kw_store_commit(s, &e), 0);
    T_EQ_INT(kw_store_cred_get(s, "cred_000001", &g, &e), 0);
    kw_cred_clear(&g);
    T_EQ_INT(kw_store_cred_get(s, "cred_000003", &g, &e), KW_ENOTFOUND);
    T_EQ_INT(kw_store_cred_get(s, "cred_000004", &g, &e), 0);
    kw_cred_clear(&g);
    /* changes that write nothing, kept or undone, between and after ones that wrote: an undo
     * never reaches back into the change before it */
    kw_cred_t c7, c8;
    mk_cred(&c7, 7, NULL);
    mk_cred(&c8, 8, NULL);
    T_EQ_INT(kw_store_begin(s, &e), 0);
    T_EQ_INT(kw_store_savepoint(s, &e), 0);
    T_EQ_INT(kw_store_cred_insert(s, &c7, &e), 0);
    T_EQ_INT(kw_store_savepoint_end(s, 1, &e), 0);
    T_EQ_INT(kw_store_savepoint(s, &e), 0);
    T_EQ_INT(kw_store_savepoint_end(s, 0, &e), 0); /* wrote nothing, undone */
    T_EQ_INT(kw_store_savepoint(s, &e), 0);
    T_EQ_INT(kw_store_savepoint_end(s, 1, &e), 0); /* wrote nothing, kept */
    T_EQ_INT(kw_store_savepoint(s, &e), 0);
    T_EQ_INT(kw_store_cred_insert(s, &c7, &e), KW_ECONFLICT); /* its first statement fails */
    T_EQ_INT(kw_store_savepoint_end(s, 0, &e), 0);
    T_EQ_INT(kw_store_savepoint(s, &e), 0);
    T_EQ_INT(kw_store_cred_insert(s, &c8, &e), 0);
    T_EQ_INT(kw_store_savepoint_end(s, 0, &e), 0); /* wrote, undone */
    T_EQ_INT(kw_store_commit(s, &e), 0);
    T_EQ_INT(kw_store_cred_get(s, "cred_000007", &g, &e), 0);
    kw_cred_clear(&g);
    T_EQ_INT(kw_store_cred_get(s, "cred_000008", &g, &e), KW_ENOTFOUND);
    kw_cred_clear(&c7);
    kw_cred_clear(&c8);

    if (pg_base) {
#ifdef KW_HAVE_LIBPQ
        /* PostgreSQL: the connection dies mid-transaction (the server ends it): both ends
         * of the savepoint say the transaction is lost, nothing of it is kept, and the
         * next transaction reconnects */
        for (int keep = 0; keep <= 1; keep++) {
            T_EQ_INT(kw_store_begin(s, &e), 0);
            T_EQ_INT(kw_store_savepoint(s, &e), 0);
            T_EQ_INT(kw_store_cred_insert(s, &b, &e), 0);
            T_EQ_INT(kw_store_savepoint_end(s, 1, &e), 0);
            T_EQ_INT(kw_store_savepoint(s, &e), 0);
            T_CHECK(kw_store_postgres_exec(s, "SELECT pg_terminate_backend(pg_backend_pid())",
                                           &e) != 0);
            T_EQ_INT(kw_store_cred_insert(s, &big, &e), KW_ESTORE);
            T_EQ_INT(kw_store_savepoint_end(s, keep, &e), KW_ESTORE);
            T_EQ_INT(kw_store_savepoint(s, &e), KW_ESTORE);
            T_EQ_INT(kw_store_commit(s, &e), KW_ESTORE);
            T_EQ_INT(kw_store_cred_get(s, "cred_000003", &g, &e), KW_ENOTFOUND);
        }
        /* an error raised by a trigger fails the change; undone alone, the rest commits */
        T_EQ_INT(kw_store_begin(s, &e), 0);
        T_EQ_INT(kw_store_postgres_exec(
                     s,
                     "CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
                     " IF NEW.name = 'boom' THEN RAISE EXCEPTION 'boom'; END IF; RETURN NEW;"
                     " END $$; CREATE TRIGGER boom BEFORE INSERT ON credentials FOR EACH ROW"
                     " EXECUTE FUNCTION boom()",
                     &e),
                 0);
        T_EQ_INT(kw_store_commit(s, &e), 0);
        free(c6.name);
        c6.name = strdup("boom");
        T_EQ_INT(kw_store_begin(s, &e), 0);
        T_EQ_INT(kw_store_savepoint(s, &e), 0);
        T_EQ_INT(kw_store_cred_insert(s, &c5, &e), 0);
        T_EQ_INT(kw_store_savepoint_end(s, 1, &e), 0);
        T_EQ_INT(kw_store_savepoint(s, &e), 0);
        T_EQ_INT(kw_store_cred_insert(s, &c6, &e), KW_ESTORE);
        T_EQ_INT(kw_store_savepoint_end(s, 1, &e), KW_ESTORE); /* never kept half done */
        kw_store_rollback(s);
        T_EQ_INT(kw_store_begin(s, &e), 0);
        T_EQ_INT(kw_store_savepoint(s, &e), 0);
        T_EQ_INT(kw_store_cred_insert(s, &c6, &e), KW_ESTORE);
        T_EQ_INT(kw_store_savepoint_end(s, 0, &e), 0);
        T_EQ_INT(kw_store_commit(s, &e), 0);
        T_EQ_INT(kw_store_cred_get(s, "cred_000006", &g, &e), KW_ENOTFOUND);
#endif
    } else {
        /* disk full: SQLite aborts the whole transaction; both ends of the savepoint say so */
        for (int keep = 0; keep <= 1; keep++) {
            T_EQ_INT(kw_store_begin(s, &e), 0);
            T_EQ_INT(kw_store_savepoint(s, &e), 0);
            T_EQ_INT(kw_store_cred_insert(s, &b, &e), 0);
            T_EQ_INT(kw_store_savepoint_end(s, 1, &e), 0);
            T_EQ_INT(kw_store_savepoint(s, &e), 0);
            T_EQ_INT(kw_store_sqlite_exec(s, "PRAGMA max_page_count = 1", &e), 0);
            T_EQ_INT(kw_store_cred_insert(s, &big, &e), KW_ESTORE);
            T_EQ_INT(kw_store_sqlite_exec(s, "PRAGMA max_page_count = 1073741823", &e), 0);
            T_EQ_INT(kw_store_savepoint_end(s, keep, &e), KW_ESTORE);
            T_EQ_INT(kw_store_savepoint(s, &e), KW_ESTORE);
            T_EQ_INT(kw_store_commit(s, &e), KW_ESTORE);
            T_EQ_INT(kw_store_cred_get(s, "cred_000003", &g, &e), KW_ENOTFOUND);
        }

        /* RAISE(ROLLBACK) from a trigger aborts the whole transaction too */
        T_EQ_INT(kw_store_begin(s, &e), 0);
        T_EQ_INT(kw_store_sqlite_exec(
                     s,
                     "CREATE TRIGGER boom BEFORE INSERT ON credentials"
                     " WHEN NEW.name = 'boom' BEGIN SELECT RAISE(ROLLBACK, 'boom'); END",
                     &e),
                 0);
        T_EQ_INT(kw_store_commit(s, &e), 0);
        free(c6.name);
        c6.name = strdup("boom");
        T_EQ_INT(kw_store_begin(s, &e), 0);
        T_EQ_INT(kw_store_savepoint(s, &e), 0);
        T_EQ_INT(kw_store_cred_insert(s, &c5, &e), 0);
        T_EQ_INT(kw_store_savepoint_end(s, 1, &e), 0);
        T_EQ_INT(kw_store_savepoint(s, &e), 0);
        T_CHECK(kw_store_cred_insert(s, &c6, &e) != 0);
        T_EQ_INT(kw_store_savepoint_end(s, 0, &e), KW_ESTORE);
        T_EQ_INT(kw_store_savepoint(s, &e), KW_ESTORE);
        kw_store_rollback(s);
        T_EQ_INT(kw_store_cred_get(s, "cred_000005", &g, &e), KW_ENOTFOUND);
    }
    /* and the store goes on working */
    T_EQ_INT(kw_store_begin(s, &e), 0);
    T_EQ_INT(kw_store_cred_insert(s, &c5, &e), 0);
    T_EQ_INT(kw_store_commit(s, &e), 0);
    T_EQ_INT(kw_store_cred_get(s, "cred_000005", &g, &e), 0);
    kw_cred_clear(&g);
    kw_cred_clear(&a);
    kw_cred_clear(&big);
    kw_cred_clear(&b);
    kw_cred_clear(&c4);
    kw_cred_clear(&c5);
    kw_cred_clear(&c6);
    kw_store_close(s);
}

/* The store replaces SQLite's automatic checkpoint with its own (a WAL hook waking a
 * background thread): the WAL is still copied back into the database file while the store
 * is open. After ~1200 pages of commits the main file grows (in WAL mode only a checkpoint
 * writes it), and the data reads back. */
static void t_background_checkpoint(void)
{
    char path[128];
    kw_store_t *s = open_new(path);
    kw_err_t e = {0};
    struct stat sb;
    T_EQ_INT(stat(path, &sb), 0);
    off_t before = sb.st_size;
    for (int i = 0; i < 120; i++) {
        kw_cred_t c;
        mk_cred(&c, 100 + i, NULL);
        free(c.metadata_json);
        c.metadata_json = malloc(40000);
        memset(c.metadata_json, 'm', 39999);
        c.metadata_json[39999] = '\0';
        T_EQ_INT(kw_store_begin(s, &e), 0);
        T_EQ_INT(kw_store_cred_insert(s, &c, &e), 0);
        T_EQ_INT(kw_store_commit(s, &e), 0);
        kw_cred_clear(&c);
    }
    int grown = 0;
    for (int i = 0; i < 300 && !grown; i++) { /* up to 3 s */
        T_EQ_INT(stat(path, &sb), 0);
        grown = sb.st_size > before + 2 * 1024 * 1024;
        if (!grown)
            usleep(10 * 1000);
    }
    T_CHECK(grown);
    kw_cred_t g;
    T_EQ_INT(kw_store_cred_get(s, "cred_000219", &g, &e), 0);
    T_EQ_INT((int)strlen(g.metadata_json), 39999);
    kw_cred_clear(&g);
    kw_store_close(s);
    T_EQ_INT(peek_int(path, "SELECT count(*) FROM credentials"), 120);
}

/* Another process holding SQLite's write lock: begin waits (busy_timeout) and succeeds
 * once it is released. */
typedef struct {
    const char *path;
    int ok;
} ext_t;

static void *ext_locker(void *arg)
{
    ext_t *x = arg;
    sqlite3 *db = NULL;
    if (sqlite3_open(x->path, &db) == SQLITE_OK &&
        sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK) {
        x->ok = 1;
        usleep(300 * 1000);
        sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    }
    sqlite3_close(db);
    return NULL;
}

static void t_busy_wait(void)
{
    char path[128];
    kw_store_t *s = open_new(path);
    kw_err_t e = {0};
    ext_t x = {path, 0};
    pthread_t th;
    pthread_create(&th, NULL, ext_locker, &x);
    usleep(100 * 1000);
    T_EQ_INT(kw_store_begin(s, &e), 0);
    T_EQ_INT(kw_store_meta_set(s, "k", "v", &e), 0);
    T_EQ_INT(kw_store_commit(s, &e), 0);
    pthread_join(th, NULL);
    T_EQ_INT(x.ok, 1);
    kw_store_close(s);
}

/* The outbox and alert state (store_notify.h), on either backend: the schema arms a key's
 * alerts whatever writes it, deliveries are claimed once, finished, retried. */
static void t_outbox(void)
{
    char path[128];
    kw_store_t *s = open_new(path);
    kw_err_t e = {0};
    const int64_t now = 1000000;
    T_EQ_INT(add_cred(s, 1, NULL), 0);
    T_EQ_INT(add_key(s, 1, "cred_000001", 1, now + 3600), 0);
    T_EQ_INT(add_key(s, 2, "cred_000001", 2, 0), 0); /* never expires: never armed */
    kw_alert_key_t *ak = NULL;
    size_t n = 0;
    T_EQ_INT(kw_store_alert_due(s, now, 10, &ak, &n, &e), 0);
    T_EQ_INT(n, 1);
    if (n == 1) {
        T_EQ_STR(ak[0].key.id, "key_000001");
        T_EQ_STR(ak[0].policy, "default");
        T_EQ_STR(ak[0].cred_name, "svc");
        /* armed from its creation time, so a threshold passed before the first look at it
         * is still raised (late) */
        kw_keyrec_t k1;
        T_EQ_INT(kw_store_key_get(s, "key_000001", &k1, &e), 0);
        T_EQ_INT(ak[0].next_alert_at, -k1.created_at);
    }
    free(ak);
    T_EQ_INT(kw_store_begin(s, &e), 0);
    T_EQ_INT(kw_store_alert_record(s, "key_000001", now + 3600, 86400, "evt_a", now, &e), 0);
    T_EQ_INT(kw_store_alert_record(s, "key_000001", now + 3600, 86400, "evt_a", now, &e), 0);
    T_EQ_INT(kw_store_alert_record(s, "key_000001", now + 3600, 604800, NULL, now, &e), 0);
    T_EQ_INT(kw_store_alert_set_next(s, "key_000001", now + 3600, &e), 0);
    T_EQ_INT(kw_store_commit(s, &e), 0);
    int64_t done[8];
    T_EQ_INT(kw_store_alert_done(s, "key_000001", now + 3600, done, 8, &n, &e), 0);
    T_EQ_INT(n, 2);
    T_EQ_INT(kw_store_alert_due(s, now, 10, &ak, &n, &e), 0);
    T_EQ_INT(n, 0);
    free(ak);
    /* a renewal (expiry change) re-arms it, by the schema alone */
    kw_keyrec_t k;
    T_EQ_INT(kw_store_key_get(s, "key_000001", &k, &e), 0);
    k.expires_at = now + 7200;
    T_EQ_INT(kw_store_begin(s, &e), 0);
    T_EQ_INT(kw_store_key_update(s, &k, &e), 0);
    T_EQ_INT(kw_store_commit(s, &e), 0);
    T_EQ_INT(kw_store_alert_due(s, now, 10, &ak, &n, &e), 0);
    T_EQ_INT(n, 1);
    free(ak);
    /* a policy's thresholds change re-arms its keys */
    T_EQ_INT(kw_store_begin(s, &e), 0);
    T_EQ_INT(kw_store_alert_set_next(s, "key_000001", 0, &e), 0);
    kw_policy_t p;
    T_EQ_INT(kw_store_policy_get(s, "default", &p, &e), 0);
    p.nthresholds = 1;
    T_EQ_INT(kw_store_policy_put(s, &p, 0, &e), 0);
    T_EQ_INT(kw_store_commit(s, &e), 0);
    T_EQ_INT(kw_store_alert_due(s, now, 10, &ak, &n, &e), 0);
    T_EQ_INT(n, 1);
    free(ak);

    /* events: fan-out, claim once, finish, list, retry */
    T_EQ_INT(kw_store_begin(s, &e), 0);
    T_EQ_INT(kw_store_event_insert(s, "evt_1", "key.expiring", now,
                                   "{\"credential_id\":\"cred_000001\"}", &e),
             0);
    T_EQ_INT(kw_store_event_insert(s, "evt_2", "key.revoked", now + 1, "{}", &e), 0);
    T_EQ_INT(kw_store_commit(s, &e), 0);
    kw_event_t *ev = NULL;
    T_EQ_INT(kw_store_event_unfanned(s, 10, &ev, &n, &e), 0);
    T_EQ_INT(n, 2);
    if (n == 2)
        T_EQ_STR(ev[0].id, "evt_1");
    kw_event_array_free(ev, n);
    T_EQ_INT(kw_store_begin(s, &e), 0);
    T_EQ_INT(kw_store_delivery_add(s, "evt_1", "hook", now, &e), 0);
    T_EQ_INT(kw_store_delivery_add(s, "evt_1", "hook", now, &e), 0); /* idempotent */
    T_EQ_INT(kw_store_delivery_add(s, "evt_1", "mail", now, &e), 0);
    T_EQ_INT(kw_store_event_fanned(s, "evt_1", NULL, now, &e), 0);
    T_EQ_INT(kw_store_commit(s, &e), 0);
    T_EQ_INT(kw_store_event_unfanned(s, 10, &ev, &n, &e), 0);
    T_EQ_INT(n, 1);
    kw_event_array_free(ev, n);
    kw_delivery_t *d = NULL, *d2 = NULL;
    size_t n2 = 0;
    T_EQ_INT(kw_store_begin(s, &e), 0);
    T_EQ_INT(kw_store_delivery_claim(s, now, now + 60, 10, &d, &n, &e), 0);
    T_EQ_INT(kw_store_delivery_claim(s, now, now + 60, 10, &d2, &n2, &e), 0);
    T_EQ_INT(kw_store_commit(s, &e), 0);
    T_EQ_INT(n, 2);
    T_EQ_INT(n2, 0); /* leased: nobody else gets them */
    if (n == 2) {
        T_EQ_STR(d[0].state, "sending");
        T_EQ_INT(d[0].attempts, 1);
        T_EQ_STR(d[0].type, "key.expiring");
        T_CHECK(strstr(d[0].payload, "cred_000001") != NULL);
        snprintf(d[0].state, sizeof(d[0].state), "delivered");
        d[0].delivered_at = now + 2;
        d[0].next_attempt_at = 0;
        snprintf(d[1].state, sizeof(d[1].state), "failed");
        snprintf(d[1].last_error, sizeof(d[1].last_error), "HTTP 500");
        d[1].next_attempt_at = 0;
        T_EQ_INT(kw_store_begin(s, &e), 0);
        T_EQ_INT(kw_store_delivery_finish(s, &d[0], &e), 0);
        T_EQ_INT(kw_store_delivery_finish(s, &d[1], &e), 0);
        T_EQ_INT(kw_store_commit(s, &e), 0);
    }
    kw_delivery_array_free(d, n);
    kw_delivery_array_free(d2, n2);
    /* the lease runs out: claimable again */
    T_EQ_INT(kw_store_delivery_list(s, "evt_1", &d, &n, &e), 0);
    T_EQ_INT(n, 2);
    if (n == 2) {
        T_EQ_STR(d[0].channel, "hook");
        T_EQ_STR(d[0].state, "delivered");
        T_EQ_STR(d[1].state, "failed");
        T_EQ_STR(d[1].last_error, "HTTP 500");
    }
    kw_delivery_array_free(d, n);
    kw_event_filter_t f = {.cred_id = "cred_000001", .limit = 10};
    T_EQ_INT(kw_store_event_list(s, &f, &ev, &n, &e), 0);
    T_EQ_INT(n, 1);
    kw_event_array_free(ev, n);
    f.cred_id = NULL;
    f.type = "key.revoked";
    T_EQ_INT(kw_store_event_list(s, &f, &ev, &n, &e), 0);
    T_EQ_INT(n, 1);
    kw_event_array_free(ev, n);
    kw_event_t one;
    T_EQ_INT(kw_store_event_get(s, "evt_2", &one, &e), 0);
    T_EQ_INT(one.occurred_at, now + 1);
    free(one.payload);
    T_EQ_INT(kw_store_event_get(s, "evt_nope", &one, &e), KW_ENOTFOUND);
    int dis = -1;
    T_EQ_INT(kw_store_begin(s, &e), 0);
    T_EQ_INT(kw_store_channel_disable(s, "mail", "evt_1", now, &e), 0);
    T_EQ_INT(kw_store_commit(s, &e), 0);
    T_EQ_INT(kw_store_channel_disabled(s, "mail", &dis, &e), 0);
    T_EQ_INT(dis, 1);
    size_t reset = 0;
    T_EQ_INT(kw_store_begin(s, &e), 0);
    T_EQ_INT(kw_store_event_retry(s, "evt_1", now + 5, &reset, &e), 0);
    T_EQ_INT(kw_store_commit(s, &e), 0);
    T_EQ_INT(reset, 1);
    T_EQ_INT(kw_store_channel_disabled(s, "mail", &dis, &e), 0);
    T_EQ_INT(dis, 0);
    /* mail quota: at most cap per recipient and day */
    int ok = -1, oks = 0;
    T_EQ_INT(kw_store_begin(s, &e), 0);
    for (int i = 0; i < 4; i++) {
        T_EQ_INT(kw_store_mail_quota_take(s, "a@example.com", 20000, 3, &ok, &e), 0);
        oks += ok;
    }
    T_EQ_INT(kw_store_commit(s, &e), 0);
    T_EQ_INT(oks, 3);
    kw_notify_stats_t st = {0};
    T_EQ_INT(kw_store_notify_stats(s, now, &st, &e), 0);
    T_EQ_INT(st.deliveries_pending, 1);
    T_EQ_INT(st.outbox_unfanned, 1);
    kw_store_close(s);
}

#ifdef KW_HAVE_LIBPQ
/* PostgreSQL: the change feed. Rows become visible in seq order even when transactions
 * commit in the opposite order of their writes: a reader that has applied everything up to
 * the newest seq it saw never misses the row of a transaction that commits later. */
/* The database restarted (here: every reader's backend terminated) between two reads: a
 * read outside a transaction reconnects and answers instead of failing once per stale
 * connection. */
static void t_reader_reconnects(void)
{
    char path[128];
    kw_store_t *s = open_new(path);
    kw_err_t e = {0};
    kw_cred_t c = {0}, g = {0};
    mk_cred(&c, 1, NULL);
    T_EQ_INT(kw_store_begin(s, &e), 0);
    T_EQ_INT(kw_store_cred_insert(s, &c, &e), 0);
    T_EQ_INT(kw_store_commit(s, &e), 0);
    T_EQ_INT(kw_store_cred_get(s, c.id, &g, &e), 0); /* a reader is connected */
    kw_cred_clear(&g);
    T_EQ_INT(kw_store_begin(s, &e), 0);
    T_EQ_INT(kw_store_postgres_exec(
                 s,
                 "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                 " WHERE datname = current_database() AND application_name = 'keyward'"
                 " AND pid <> pg_backend_pid()",
                 &e),
             0);
    T_EQ_INT(kw_store_commit(s, &e), 0);
    for (int i = 0; i < 8; i++) { /* whichever reader each read takes */
        T_EQ_INT(kw_store_cred_get(s, c.id, &g, &e), 0);
        kw_cred_clear(&g);
    }
    /* reads that take a reader without the statement helper see a dead one at hand-out */
    char *v = NULL;
    T_EQ_INT(kw_store_begin(s, &e), 0);
    T_EQ_INT(kw_store_meta_set(s, "probe", "1", &e), 0);
    T_EQ_INT(kw_store_commit(s, &e), 0);
    for (int round = 0; round < 2; round++) {
        T_EQ_INT(kw_store_begin(s, &e), 0);
        T_EQ_INT(kw_store_postgres_exec(s,
                                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                                        " WHERE datname = current_database() AND application_name "
                                        "= 'keyward' AND pid <> pg_backend_pid()",
                                        &e),
                 0);
        /* wait until the terminated backends are gone, so their sockets are closed */
        T_EQ_INT(kw_store_postgres_exec(
                     s,
                     "DO $$ BEGIN FOR i IN 1..200 LOOP EXIT WHEN (SELECT count(*) FROM "
                     "pg_stat_activity WHERE datname = current_database() AND application_name = "
                     "'keyward') <= 1; PERFORM pg_sleep(0.01); END LOOP; END $$",
                     &e),
                 0);
        T_EQ_INT(kw_store_commit(s, &e), 0);
        for (int i = 0; i < 8; i++) {
            T_EQ_INT(kw_store_meta_get(s, "probe", &v, &e), 0);
            free(v);
            v = NULL;
        }
    }
    kw_cred_clear(&c);
    kw_store_close(s);
}

static void t_feed_order(void)
{
    char path[128], url[140];
    new_path(path, url);
    kw_store_t *a = open_url(url), *b = open_url(url);
    kw_err_t e = {0};
    T_CHECK(a && b);
    if (!a || !b)
        return;
    T_EQ_INT(kw_store_shared(a), 1);
    int64_t lo = -1, hi = -1;
    T_EQ_INT(kw_store_feed_bounds(a, &lo, &hi, &e), 0);
    T_EQ_INT(hi, 1); /* the default policy */
    const int64_t start = hi;
    /* A writes first but commits last; B writes and commits in between */
    kw_cred_t ca, cb;
    mk_cred(&ca, 1, NULL);
    mk_cred(&cb, 2, NULL);
    T_EQ_INT(kw_store_begin(a, &e), 0);
    T_EQ_INT(kw_store_cred_insert(a, &ca, &e), 0);
    T_EQ_INT(kw_store_begin(b, &e), 0);
    T_EQ_INT(kw_store_cred_insert(b, &cb, &e), 0);
    T_EQ_INT(kw_store_commit(b, &e), 0);
    /* a reader catches up now: sees B's row only */
    kw_feed_row_t *rows = NULL;
    size_t n = 0;
    T_EQ_INT(kw_store_feed_read(b, start, 100, &rows, &n, &e), 0);
    T_EQ_INT(n, 1);
    int64_t last = n ? rows[n - 1].seq : 0;
    if (n == 1) {
        T_EQ_STR(rows[0].kind, "cred");
        T_EQ_STR(rows[0].id, "cred_000002");
    }
    free(rows);
    T_EQ_INT(kw_store_commit(a, &e), 0);
    /* ...and reading after its last seq still gets A's row */
    T_EQ_INT(kw_store_feed_read(b, last, 100, &rows, &n, &e), 0);
    T_EQ_INT(n, 1);
    if (n == 1) {
        T_EQ_STR(rows[0].id, "cred_000001");
        T_CHECK(rows[0].seq > last);
        /* A knows the row is its own (its index was updated by the writer); B does not */
        T_EQ_INT(kw_store_feed_own(a, rows[0].seq), 1);
        T_EQ_INT(kw_store_feed_own(b, rows[0].seq), 0);
        T_EQ_INT(kw_store_feed_own(a, last), 0);
    }
    free(rows);
    /* keys and policies too; usage write-back is not a change the index must learn */
    T_EQ_INT(add_key(a, 1, "cred_000001", 1, 0), 0);
    kw_usage_t u = {.key_id = "key_000001", .delta = 5, .last_used = 77};
    T_EQ_INT(kw_store_usage_apply(b, &u, 1, &e), 0);
    T_EQ_INT(kw_store_usage_apply(a, &u, 1, &e), 0); /* adds: 10, never overwrites */
    kw_keyrec_t k;
    T_EQ_INT(kw_store_key_get(b, "key_000001", &k, &e), 0);
    T_EQ_INT(k.use_count, 10);
    T_EQ_INT(kw_store_feed_bounds(a, &lo, &hi, &e), 0);
    T_EQ_INT(kw_store_feed_read(a, start, 100, &rows, &n, &e), 0);
    T_EQ_INT(n, 3);
    if (n == 3) {
        T_EQ_STR(rows[2].kind, "key");
        T_EQ_STR(rows[2].id, "key_000001");
        T_EQ_INT(rows[2].seq, hi);
    }
    free(rows);
    /* a deleted credential is still readable for the feed */
    ca.deleted_at = 99;
    T_EQ_INT(kw_store_begin(a, &e), 0);
    T_EQ_INT(kw_store_cred_update(a, &ca, &e), 0);
    T_EQ_INT(kw_store_commit(a, &e), 0);
    kw_cred_t g;
    T_EQ_INT(kw_store_cred_get(b, "cred_000001", &g, &e), KW_ENOTFOUND);
    T_EQ_INT(kw_store_cred_get_any(b, "cred_000001", &g, &e), 0);
    T_EQ_INT(g.deleted_at, 99);
    kw_cred_clear(&g);
    kw_cred_clear(&ca);
    kw_cred_clear(&cb);
    kw_store_close(a);
    kw_store_close(b);
}

/* The feed NOTIFYs listeners at commit; the leader lock has one holder, and another store
 * takes it over once the holder's session ends. */
static void t_feed_notify_leader(void)
{
    char path[128], url[140];
    new_path(path, url);
    kw_store_t *a = open_url(url), *b = open_url(url);
    kw_err_t e = {0};
    T_CHECK(a && b);
    if (!a || !b)
        return;
    T_EQ_INT(kw_store_feed_wait(b, 10, &e), 1); /* first call: connects and LISTENs */
    T_EQ_INT(kw_store_feed_wait(b, 50, &e), 0); /* nothing yet */
    T_EQ_INT(add_cred(a, 1, NULL), 0);
    T_EQ_INT(kw_store_feed_wait(b, 2000, &e), 1);
    int la = -1, lb = -1;
    T_EQ_INT(kw_store_leader(a, &la, &e), 0);
    T_EQ_INT(kw_store_leader(b, &lb, &e), 0);
    T_EQ_INT(la, 1);
    T_EQ_INT(lb, 0);
    T_EQ_INT(kw_store_leader(a, &la, &e), 0); /* stays */
    T_EQ_INT(la, 1);
    kw_store_close(a);
    /* the server ends a's session asynchronously: b gets the lock at one of its next tries */
    for (int i = 0; i < 200 && lb != 1; i++) {
        T_EQ_INT(kw_store_leader(b, &lb, &e), 0);
        if (lb != 1)
            usleep(10 * 1000);
    }
    T_EQ_INT(lb, 1);
    T_EQ_INT(kw_store_cluster_lock(b, "admin_bootstrap", &e), 0);
    kw_store_cluster_unlock(b, "admin_bootstrap");
    kw_store_close(b);
}
/* PostgreSQL: a row read inside a write transaction is locked, so a second node that reads
 * it to change it waits for the first and then sees its change (a renewal racing a
 * revocation keeps the revocation). */
typedef struct {
    kw_store_t *s;
    _Atomic int rc_get; /* read by the main thread while B waits */
    int64_t revoked_seen;
} lock_t;

static void *lock_reader(void *arg)
{
    lock_t *l = arg;
    kw_err_t e = {0};
    kw_keyrec_t k;
    if (kw_store_begin(l->s, &e) == 0) {
        l->rc_get = kw_store_key_get(l->s, "key_000001", &k, &e); /* waits for A */
        if (l->rc_get == 0)
            l->revoked_seen = k.revoked_at;
        kw_store_rollback(l->s);
    }
    return NULL;
}

static void t_row_locks(void)
{
    char path[128], url[140];
    new_path(path, url);
    kw_store_t *a = open_url(url);
    lock_t l = {.s = open_url(url), .rc_get = -1};
    kw_err_t e = {0};
    T_CHECK(a && l.s);
    if (!a || !l.s)
        return;
    T_EQ_INT(add_cred(a, 1, NULL), 0);
    T_EQ_INT(add_key(a, 1, "cred_000001", 1, 0), 0);
    kw_keyrec_t k;
    T_EQ_INT(kw_store_begin(a, &e), 0);
    T_EQ_INT(kw_store_key_get(a, "key_000001", &k, &e), 0);
    pthread_t th;
    pthread_create(&th, NULL, lock_reader, &l);
    usleep(200 * 1000); /* B is now waiting on the row */
    T_EQ_INT(l.rc_get, -1);
    k.revoked_at = 4242;
    k.live = 0;
    T_EQ_INT(kw_store_key_update(a, &k, &e), 0);
    T_EQ_INT(kw_store_commit(a, &e), 0);
    pthread_join(th, NULL);
    T_EQ_INT(l.rc_get, 0);
    T_EQ_INT(l.revoked_seen, 4242);
    kw_store_close(a);
    kw_store_close(l.s);
}
#endif

/* ---- optional benchmark ------------------------------------------------------------- */

static int count_cb(void *ud, const kw_cred_t *c, const kw_keyrec_t *keys, size_t nkeys)
{
    *(size_t *)ud += nkeys;
    return 0;
}

static double secs(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void bench_load(int nkeys)
{
    char path[128];
    kw_store_t *s = open_new(path);
    kw_err_t e = {0};
    double t0 = secs();
    T_EQ_INT(kw_store_begin(s, &e), 0);
    for (int i = 0; i < nkeys / 2; i++) {
        kw_cred_t c;
        kw_keyrec_t k;
        mk_cred(&c, i, NULL);
        /* random-looking ids so key rows and credential order differ */
        snprintf(c.id, sizeof(c.id), "cred_%08x", (unsigned)(i * 2654435761u));
        T_CHECK(kw_store_cred_insert(s, &c, &e) == 0);
        for (int j = 1; j <= 2; j++) {
            mk_key(&k, 2 * i + j, c.id, j, 4102444800);
            T_CHECK(kw_store_key_insert(s, &k, &e) == 0);
        }
        kw_cred_clear(&c);
    }
    T_EQ_INT(kw_store_commit(s, &e), 0);
    double t1 = secs();
    size_t got = 0;
    T_EQ_INT(kw_store_load_all(s, 0, count_cb, &got, &e), 0);
    double t2 = secs();
    T_EQ_INT(got, (size_t)nkeys / 2 * 2);
    printf("# bench: insert %d keys %.2fs, load_all %.3fs (%.0f keys/s)\n", nkeys, t1 - t0, t2 - t1,
           got / (t2 - t1));
    kw_store_close(s);
}

static void cleanup_tmp(void)
{
    char p[200];
    if (pg_base) {
        for (int i = 1; i <= nfile; i++) {
            snprintf(p, sizeof(p), "DROP SCHEMA IF EXISTS kwt_%d_%d CASCADE", (int)getpid(), i);
            peek_exec(pg_base, p);
        }
    }
    for (int i = 1; i <= nfile; i++) {
        const char *sfx[] = {"", "-wal", "-shm"};
        for (int j = 0; j < 3; j++) {
            snprintf(p, sizeof(p), "%s/s%d.db%s", tmpdir, i, sfx[j]);
            unlink(p);
        }
    }
    rmdir(tmpdir);
}

int main(void)
{
    const char *which = getenv("KW_TEST_STORE");
    if (which && strcmp(which, "postgresql") == 0) {
#ifdef KW_HAVE_LIBPQ
        pg_base = getenv("KW_TEST_PG_URL");
        if (pg_base == NULL || *pg_base == '\0') {
            printf("KW_TEST_STORE=postgresql needs KW_TEST_PG_URL (scripts/pg.sh start)\n");
            return 1;
        }
        printf("# backend: PostgreSQL\n");
#else
        printf("built without libpq\n");
        return 1;
#endif
    }
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/kw_test_store_XXXXXX");
    if (mkdtemp(tmpdir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    T_RUN(t_open_default);
    T_RUN(t_migrations_idempotent);
    T_RUN(t_urls);
    T_RUN(t_policy);
    T_RUN(t_meta);
    T_RUN(t_cred);
    T_RUN(t_cred_list);
    T_RUN(t_cred_expiring_filter);
    T_RUN(t_keys_and_slots);
    T_RUN(t_expiring);
    T_RUN(t_usage);
    T_RUN(t_events);
    T_RUN(t_load_all);
    T_RUN(t_load_all_exact);
    T_RUN(t_load_index);
    T_RUN(t_seal_scan);
    T_RUN(t_rollback);
    T_RUN(t_reopen);
    T_RUN(t_threads);
    T_RUN(t_two_writers);
    if (!pg_base) /* SQLite fault injection and file internals */
        T_RUN(t_disk_full);
    T_RUN(t_savepoints);
    T_RUN(t_deferred);
    if (!pg_base) {
        T_RUN(t_background_checkpoint);
        T_RUN(t_busy_wait);
    }
    T_RUN(t_outbox);
#ifdef KW_HAVE_LIBPQ
    if (pg_base) {
        T_RUN(t_feed_order);
        T_RUN(t_reader_reconnects);
        T_RUN(t_feed_notify_leader);
        T_RUN(t_row_locks);
        T_RUN(t_writers_queue);
    }
#endif
    const char *b = getenv("KW_STORE_BENCH");
    if (b && atoi(b) > 0)
        bench_load(atoi(b));
    cleanup_tmp();
    T_DONE();
}
