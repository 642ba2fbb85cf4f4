/* test_sqlite_int.c - the SQLite backend's shared plumbing (src/store/sqlite_int.h): one
 * statement cache across files and connections, bind errors that report their own code,
 * and the table-driven get / list helpers (rows, "no row", nothing left on failure). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/sqlite_int.h"
#include "t.h"

static char dir[64];
static char url[128];

static kw_sqlite_stmt_t st_one = {.sql = "SELECT value FROM meta WHERE key = ?1"};
static kw_sqlite_stmt_t st_all = {.sql = "SELECT key FROM meta WHERE key LIKE 'tq.%' ORDER BY key"};

static int row_text(sqlite3_stmt *st, void *out)
{
    char *buf = out;
    kw_sqlite_col_cpy(st, 0, buf, 32);
    return 0;
}

static const kw_sqlite_rowtype_t rows_text = {32, row_text, NULL};
static const kw_sqlite_query_t q_one = {&st_one, "meta lookup", &rows_text, "key",
                                        "no such meta key"};
static const kw_sqlite_query_t q_all = {.stmt = &st_all, .what = "meta list", .rows = &rows_text};

static kw_store_t *open_store(void)
{
    kw_store_t *s = NULL;
    kw_err_t e;
    if (kw_store_open(url, &s, &e) != 0) {
        printf("# open: %s\n", e.msg);
        return NULL;
    }
    return s;
}

static void t_cache(void)
{
    kw_store_t *s = open_store();
    T_CHECK(s != NULL);
    if (!s)
        return;
    kw_sqlite_t *q = KW_SQ(s);
    kw_err_t e;
    sqlite3_stmt *a = NULL, *b = NULL, *a2 = NULL;
    kw_sqlite_conn_t *c = kw_sqlite_rd_begin(q);
    T_EQ_INT(kw_sqlite_prep(c, &st_one, &a, &e), 0);
    T_EQ_INT(kw_sqlite_prep(c, &st_all, &b, &e), 0);
    T_EQ_INT(kw_sqlite_prep(c, &st_one, &a2, &e), 0);
    T_CHECK(a != NULL && b != NULL && a != b); /* two statements, two slots */
    T_CHECK(a == a2);                          /* prepared once per connection */
    T_CHECK(atomic_load(&st_one.slot) != atomic_load(&st_all.slot));
    kw_sqlite_rd_end(q, c);
    /* the writer has its own prepared copy in the same slot */
    T_EQ_INT(kw_store_begin(s, &e), 0);
    sqlite3_stmt *w = NULL;
    T_EQ_INT(kw_sqlite_prep(&q->w, &st_one, &w, &e), 0);
    T_CHECK(w != NULL && w != a);
    T_CHECK(q->w.st[atomic_load(&st_one.slot) - 1] == w);
    kw_store_rollback(s);
    kw_store_close(s);
}

static void t_bind_error_code(void)
{
    kw_store_t *s = open_store();
    T_CHECK(s != NULL);
    if (!s)
        return;
    kw_sqlite_t *q = KW_SQ(s);
    kw_err_t e;
    memset(&e, 0, sizeof(e));
    kw_sqlite_conn_t *c = kw_sqlite_rd_begin(q);
    sqlite3_stmt *st = NULL;
    T_EQ_INT(kw_sqlite_prep(c, &st_one, &st, &e), 0);
    /* ?2 does not exist: the error is SQLITE_RANGE itself, not an OR of several codes */
    int rc = kw_sqlite_bind(c, st, KW_SQ_ARGS(KW_SQA_TEXT("a"), KW_SQA_INT(7)), &e);
    T_EQ_INT(rc, KW_ESTORE);
    T_EQ_INT(c->xrc, SQLITE_RANGE);
    T_CHECK(strstr(e.msg, "bind") != NULL);
    T_CHECK(strstr(e.msg, "out of range") != NULL);
    kw_sqlite_done(st);
    c->failed = 0; /* the reader holds no transaction to poison */
    kw_sqlite_rd_end(q, c);
    kw_store_close(s);
}

static void t_get_list(void)
{
    kw_store_t *s = open_store();
    T_CHECK(s != NULL);
    if (!s)
        return;
    kw_sqlite_t *q = KW_SQ(s);
    kw_err_t e;
    char v[32];
    T_EQ_INT(kw_sqlite_get(q, &q_one, KW_SQ_ARGS(KW_SQA_TEXT("tq.none")), v, &e), KW_ENOTFOUND);
    T_EQ_STR(e.field, "key");
    T_EQ_STR(e.msg, "no such meta key");

    T_EQ_INT(kw_store_begin(s, &e), 0);
    T_EQ_INT(kw_store_meta_set(s, "tq.b", "2", &e), 0);
    T_EQ_INT(kw_store_meta_set(s, "tq.a", "1", &e), 0);
    T_EQ_INT(kw_store_commit(s, &e), 0);

    T_EQ_INT(kw_sqlite_get(q, &q_one, KW_SQ_ARGS(KW_SQA_TEXT("tq.b")), v, &e), 0);
    T_EQ_STR(v, "2");
    char(*rows)[32] = NULL;
    size_t n = 0;
    T_EQ_INT(kw_sqlite_list(q, &q_all, KW_SQ_NOARGS, &rows, &n, &e), 0);
    T_EQ_INT(n, 2);
    if (n == 2) {
        T_EQ_STR(rows[0], "tq.a");
        T_EQ_STR(rows[1], "tq.b");
    }
    free(rows);
    kw_store_close(s);
}

int main(void)
{
    snprintf(dir, sizeof(dir), "/tmp/kw-sqint.XXXXXX");
    if (mkdtemp(dir) == NULL)
        return 1;
    snprintf(url, sizeof(url), "sqlite:%s/k.db", dir);
    T_RUN(t_cache);
    T_RUN(t_bind_error_code);
    T_RUN(t_get_list);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        printf("# cleanup failed\n");
    T_DONE();
}
