/* sqlite_conn.c - the SQLite backend's plumbing, shared by every sqlite*.c file
 * (sqlite_int.h): which connection a call uses, error mapping, the one statement cache,
 * binding, stepping, the table-driven get / list helpers and column copies. Never logs;
 * messages carry sqlite3_errmsg only, never values. */
#include "sqlite_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- connections ---- */

int kw_sqlite_in_tx(kw_sqlite_t *s)
{
    /* Only this thread ever stores its own id, so a relaxed load is exact for the question
     * "do I hold it?" whatever other threads are doing. */
    return atomic_load_explicit(&s->owner, memory_order_relaxed) == kw_store_thread_id();
}

/* sqlite.c's begin: the calling thread now holds the write transaction (1) or not (0). */
void kw_sqlite_set_owner(kw_sqlite_t *s, int mine)
{
    atomic_store_explicit(&s->owner, mine ? kw_store_thread_id() : 0, memory_order_relaxed);
}

kw_sqlite_conn_t *kw_sqlite_rd_begin(kw_sqlite_t *s)
{
    if (kw_sqlite_in_tx(s))
        return &s->w;
    pthread_mutex_lock(&s->rmu);
    return &s->r;
}

void kw_sqlite_rd_end(kw_sqlite_t *s, kw_sqlite_conn_t *c)
{
    if (c == &s->r)
        pthread_mutex_unlock(&s->rmu);
}

int kw_sqlite_wr(kw_sqlite_t *s, kw_sqlite_conn_t **out, kw_err_t *err)
{
    if (!kw_sqlite_in_tx(s))
        return kw_err_set(err, KW_EINTERNAL, NULL, "store: write outside a transaction");
    *out = &s->w;
    return 0;
}

int kw_sqlite_fail(kw_sqlite_conn_t *c, int rc, kw_err_t *err, const char *what)
{
    const char *msg = c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc);
    if (c->db)
        c->xrc = sqlite3_extended_errcode(c->db);
    if ((rc & 0xff) == SQLITE_CONSTRAINT)
        return kw_err_set(err, KW_ECONFLICT, NULL, "store: %s: %s", what, msg);
    /* Anything else may have left the transaction half done (SQLite rolls back either the
     * statement or all of it, its choice): commit will refuse. */
    if (!c->failed)
        snprintf(c->failmsg, sizeof(c->failmsg), "%s", msg);
    c->failed = 1;
    if ((rc & 0xff) == SQLITE_NOMEM)
        return kw_err_set(err, KW_ENOMEM, NULL, "store: %s: out of memory", what);
    return kw_err_set(err, KW_ESTORE, NULL, "store: %s failed: %s", what, msg);
}

void kw_sqlite_conn_close(kw_sqlite_conn_t *c)
{
    for (int i = 0; i < KW_SQLITE_STMT_MAX; i++) {
        sqlite3_finalize(c->st[i]);
        c->st[i] = NULL;
    }
    sqlite3_close_v2(c->db); /* NULL is a no-op */
    c->db = NULL;
}

/* ---- statements ---- */

static _Atomic int next_slot = 1;

/* q's slot, handed out on first use (the same for every connection). */
static int stmt_slot(kw_sqlite_stmt_t *q)
{
    int slot = atomic_load(&q->slot);
    if (slot == 0) {
        int want = atomic_fetch_add(&next_slot, 1);
        int none = 0;
        /* two threads racing: one slot is wasted, both then use the winner's */
        if (!atomic_compare_exchange_strong(&q->slot, &none, want))
            want = none;
        slot = want;
    }
    return slot - 1;
}

int kw_sqlite_prep(kw_sqlite_conn_t *c, kw_sqlite_stmt_t *q, sqlite3_stmt **out, kw_err_t *err)
{
    int i = stmt_slot(q);
    *out = NULL;
    if (i >= KW_SQLITE_STMT_MAX)
        return kw_err_set(err, KW_EINTERNAL, NULL, "store: statement cache full");
    if (c->st[i] == NULL) {
        int rc = sqlite3_prepare_v3(c->db, q->sql, -1, SQLITE_PREPARE_PERSISTENT, &c->st[i], NULL);
        if (rc != SQLITE_OK) {
            c->st[i] = NULL;
            return kw_sqlite_fail(c, rc, err, "prepare");
        }
    }
    *out = c->st[i];
    return 0;
}

void kw_sqlite_done(sqlite3_stmt *st)
{
    if (st) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    }
}

int kw_sqlite_bind(kw_sqlite_conn_t *c, sqlite3_stmt *st, const kw_sql_arg_t *a, int n,
                   kw_err_t *err)
{
    for (int i = 0; i < n; i++) {
        int rc = SQLITE_OK;
        switch (a[i].type) {
        case KW_SQA_SKIP_:
            break;
        case KW_SQA_TEXT_:
            rc = a[i].p ? sqlite3_bind_text(st, i + 1, a[i].p, -1, SQLITE_STATIC)
                        : sqlite3_bind_null(st, i + 1);
            break;
        case KW_SQA_INT_:
            rc = sqlite3_bind_int64(st, i + 1, a[i].i);
            break;
        case KW_SQA_BLOB_:
            rc = sqlite3_bind_blob(st, i + 1, a[i].p, a[i].len, SQLITE_STATIC);
            break;
        case KW_SQA_NULL_:
            rc = sqlite3_bind_null(st, i + 1);
            break;
        }
        if (rc != SQLITE_OK)
            return kw_sqlite_fail(c, rc, err, "bind");
    }
    return 0;
}

int kw_sqlite_step(kw_sqlite_conn_t *c, sqlite3_stmt *st, kw_err_t *err, const char *what)
{
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW || rc == SQLITE_DONE)
        return rc;
    return kw_sqlite_fail(c, rc, err, what);
}

int kw_sqlite_run(kw_sqlite_conn_t *c, kw_sqlite_stmt_t *q, const kw_sql_arg_t *a, int n,
                  kw_err_t *err, const char *what)
{
    sqlite3_stmt *st = NULL;
    int rc = kw_sqlite_prep(c, q, &st, err);
    if (rc == 0)
        rc = kw_sqlite_bind(c, st, a, n, err);
    if (rc == 0)
        rc = kw_sqlite_step(c, st, err, what);
    kw_sqlite_done(st);
    return rc < 0 ? rc : 0;
}

int kw_sqlite_write(kw_sqlite_t *s, kw_sqlite_stmt_t *q, const kw_sql_arg_t *a, int n,
                    kw_err_t *err, const char *what)
{
    kw_sqlite_conn_t *c = NULL;
    int rc = kw_sqlite_wr(s, &c, err);
    return rc ? rc : kw_sqlite_run(c, q, a, n, err, what);
}

/* ---- table-driven reads ---- */

static int row_i64_col0(sqlite3_stmt *st, void *out)
{
    *(int64_t *)out = sqlite3_column_int64(st, 0);
    return 0;
}

const kw_sqlite_rowtype_t kw_sqlite_i64_rows = {sizeof(int64_t), row_i64_col0, NULL};
const kw_sqlite_rowtype_t kw_sqlite_key_rows = {sizeof(kw_keyrec_t), kw_sqlite_row_key, NULL};

int kw_sqlite_get(kw_sqlite_t *s, const kw_sqlite_query_t *q, const kw_sql_arg_t *a, int n,
                  void *out, kw_err_t *err)
{
    kw_sqlite_conn_t *c = kw_sqlite_rd_begin(s);
    sqlite3_stmt *st = NULL;
    int rc = kw_sqlite_prep(c, q->stmt, &st, err);
    if (rc == 0)
        rc = kw_sqlite_bind(c, st, a, n, err);
    if (rc == 0)
        rc = kw_sqlite_step(c, st, err, q->what);
    if (rc == SQLITE_ROW)
        rc = q->rows->row(st, out) ? kw_err_set(err, KW_ENOMEM, NULL, NULL) : 0;
    else if (rc == SQLITE_DONE)
        rc = kw_err_set(err, KW_ENOTFOUND, q->nf_field, "%s", q->nf_msg ? q->nf_msg : "not found");
    kw_sqlite_done(st);
    kw_sqlite_rd_end(s, c);
    return rc;
}

/* Every row of the bound statement st into *out. */
static int rows(kw_sqlite_conn_t *c, sqlite3_stmt *st, const kw_sqlite_query_t *q, void *out,
                size_t *n, kw_err_t *err)
{
    const kw_sqlite_rowtype_t *t = q->rows;
    char *a = NULL;
    size_t cnt = 0, cap = 0;
    int rc;
    while ((rc = kw_sqlite_step(c, st, err, q->what)) == SQLITE_ROW) {
        if (kw_sqlite_grow((void **)&a, &cap, cnt + 1, t->size) || t->row(st, a + cnt * t->size)) {
            rc = kw_err_set(err, KW_ENOMEM, NULL, NULL);
            break;
        }
        cnt++;
    }
    if (rc != SQLITE_DONE) {
        for (size_t i = 0; t->clear && i < cnt; i++)
            t->clear(a + i * t->size);
        free(a);
        return rc;
    }
    memcpy(out, &a, sizeof(a)); /* *(T **)out = a */
    *n = cnt;
    return 0;
}

int kw_sqlite_list_on(kw_sqlite_conn_t *c, const kw_sqlite_query_t *q, const kw_sql_arg_t *a, int n,
                      void *out, size_t *cnt, kw_err_t *err)
{
    sqlite3_stmt *st = NULL;
    int rc = kw_sqlite_prep(c, q->stmt, &st, err);
    if (rc == 0)
        rc = kw_sqlite_bind(c, st, a, n, err);
    if (rc == 0)
        rc = rows(c, st, q, out, cnt, err);
    kw_sqlite_done(st);
    return rc;
}

int kw_sqlite_list(kw_sqlite_t *s, const kw_sqlite_query_t *q, const kw_sql_arg_t *a, int n,
                   void *out, size_t *cnt, kw_err_t *err)
{
    kw_sqlite_conn_t *c = kw_sqlite_rd_begin(s);
    int rc = kw_sqlite_list_on(c, q, a, n, out, cnt, err);
    kw_sqlite_rd_end(s, c);
    return rc;
}

int kw_sqlite_list_i64(kw_sqlite_t *s, const kw_sqlite_query_t *q, const kw_sql_arg_t *a, int n,
                       int64_t *out, size_t max, size_t *cnt, kw_err_t *err)
{
    int64_t *all = NULL;
    size_t got = 0;
    int rc = kw_sqlite_list(s, q, a, n, &all, &got, err);
    if (rc == 0) {
        *cnt = got < max ? got : max;
        if (*cnt)
            memcpy(out, all, *cnt * sizeof(*out));
    }
    free(all);
    return rc;
}

int kw_sqlite_list_sql(kw_sqlite_t *s, const kw_sqlite_query_t *q, const char *sql,
                       const kw_sql_arg_t *a, int n, void *out, size_t *cnt, kw_err_t *err)
{
    kw_sqlite_conn_t *c = kw_sqlite_rd_begin(s);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(c->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        rc = kw_sqlite_fail(c, rc, err, q->what);
    else
        rc = kw_sqlite_bind(c, st, a, n, err);
    if (rc == 0)
        rc = rows(c, st, q, out, cnt, err);
    sqlite3_finalize(st);
    kw_sqlite_rd_end(s, c);
    return rc;
}

/* ---- columns ---- */

void kw_sqlite_col_cpy(sqlite3_stmt *st, int i, char *buf, size_t n)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    size_t len = t ? (size_t)sqlite3_column_bytes(st, i) : 0;
    if (len >= n)
        len = n - 1; /* cannot happen for values this store wrote from the same structs */
    if (len)
        memcpy(buf, t, len);
    buf[len] = '\0';
}

static int row_text(const kw_row_src_t *r, int col, const char **out)
{
    sqlite3_stmt *st = ((const kw_sqlite_row_t *)r)->st;
    *out = (const char *)sqlite3_column_text(st, col);
    return *out == NULL && sqlite3_column_type(st, col) != SQLITE_NULL ? KW_ENOMEM : 0;
}

static int64_t row_i64(const kw_row_src_t *r, int col)
{
    return sqlite3_column_int64(((const kw_sqlite_row_t *)r)->st, col);
}

void kw_sqlite_row_src(kw_sqlite_row_t *r, sqlite3_stmt *st)
{
    r->src.text = row_text;
    r->src.i64 = row_i64;
    r->st = st;
}

int kw_sqlite_col_dup(sqlite3_stmt *st, int i, char **out)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    *out = NULL;
    if (t == NULL)
        return sqlite3_column_type(st, i) == SQLITE_NULL ? 0 : KW_ENOMEM;
    *out = strdup((const char *)t);
    return *out ? 0 : KW_ENOMEM;
}

size_t kw_sqlite_col_blob(sqlite3_stmt *st, int i, void *buf, size_t n)
{
    const void *b = sqlite3_column_blob(st, i);
    size_t len = (size_t)sqlite3_column_bytes(st, i);
    if (b)
        memcpy(buf, b, len < n ? len : n);
    return len;
}

int kw_sqlite_grow(void **a, size_t *cap, size_t need, size_t el)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 16;
    while (ncap < need)
        ncap *= 2;
    void *p = realloc(*a, ncap * el);
    if (p == NULL)
        return KW_ENOMEM;
    *a = p;
    *cap = ncap;
    return 0;
}

int64_t kw_sqlite_lim(size_t n)
{
    return n > (size_t)INT64_MAX ? INT64_MAX : (int64_t)n;
}

/* ---- the key row, read by sqlite_keys.c and sqlite_notify.c ---- */

int kw_sqlite_row_key(sqlite3_stmt *st, void *out)
{
    kw_keyrec_t *k = out;
    memset(k, 0, sizeof(*k));
    k->seq = sqlite3_column_int64(st, 0);
    kw_sqlite_col_cpy(st, 1, k->id, sizeof(k->id));
    kw_sqlite_col_cpy(st, 2, k->cred_id, sizeof(k->cred_id));
    k->slot = sqlite3_column_int(st, 3);
    k->live = sqlite3_column_type(st, 4) != SQLITE_NULL;
    kw_sqlite_col_cpy(st, 5, k->hint, sizeof(k->hint));
    kw_sqlite_col_blob(st, 6, k->digest, KW_DIGEST_LEN);
    k->created_at = sqlite3_column_int64(st, 7);
    k->expires_at = sqlite3_column_int64(st, 8);
    k->revoked_at = sqlite3_column_int64(st, 9);
    kw_sqlite_col_cpy(st, 10, k->revoke_reason, sizeof(k->revoke_reason));
    k->last_used_at = sqlite3_column_int64(st, 11);
    k->use_count = sqlite3_column_int64(st, 12);
    return 0;
}
