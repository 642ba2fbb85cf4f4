/* sqlite_renewals.c - the SQLite backend's renewal requests (store.h): insert, decide
 * (update), lookup, filtered lists and the stale ones (pending, but their key is gone). */
#include "sqlite_int.h"

#include <stdio.h>
#include <string.h>

enum { ST_REN_INSERT, ST_REN_UPDATE, ST_REN_GET, ST_REN_STALE, ST__COUNT };

static kw_sqlite_stmt_t stmts[ST__COUNT] = {
    [ST_REN_INSERT] = {.sql = "INSERT INTO renewals (" KW_COLS_REN ")"
                              " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"},
    [ST_REN_UPDATE] = {.sql = "UPDATE renewals SET state = ?7, decided_by = ?8, decided_at = ?9,"
                              " note = ?10 WHERE id = ?1"},
    [ST_REN_GET] = {.sql = "SELECT " KW_COLS_REN " FROM renewals WHERE id = ?1"},
    /* pending requests whose key was revoked or has expired */
    [ST_REN_STALE] = {.sql =
                          "SELECT " KW_COLS_REN_R " FROM renewals r JOIN keys k ON k.id = r.key_id"
                          " WHERE r.state = 'pending' AND (k.revoked_at IS NOT NULL"
                          " OR (k.expires_at IS NOT NULL AND k.expires_at <= ?1))"
                          " ORDER BY r.created_at, r.id LIMIT ?2"},
};

static int row_renewal(sqlite3_stmt *st, void *out)
{
    kw_sqlite_row_t r;
    kw_sqlite_row_src(&r, st);
    return kw_row_renewal(&r.src, out);
}

static const kw_sqlite_rowtype_t ROWS = {sizeof(kw_renewal_t), row_renewal, NULL};
static const kw_sqlite_query_t q_get = {&stmts[ST_REN_GET], "renewal lookup", &ROWS, "id",
                                        "renewal not found"};
static const kw_sqlite_query_t q_list = {
    .stmt = NULL, .what = "renewal list", .rows = &ROWS}; /* SQL built per call */
static const kw_sqlite_query_t q_stale = {
    .stmt = &stmts[ST_REN_STALE], .what = "renewal list", .rows = &ROWS};

static int ren_write(kw_store_t *base, const kw_renewal_t *r, int insert, kw_err_t *err)
{
    kw_sqlite_t *s = KW_SQ(base);
    int rc = kw_sqlite_write(
        s, &stmts[insert ? ST_REN_INSERT : ST_REN_UPDATE],
        KW_SQ_ARGS(KW_SQA_TEXT(r->id), KW_SQA_TEXT(r->key_id), KW_SQA_TEXT(r->requested_by),
                   KW_SQA_TIME(r->extend_by), KW_SQA_TIME(r->expires_at), KW_SQA_OTEXT(r->reason),
                   KW_SQA_TEXT(r->state), KW_SQA_OTEXT(r->decided_by), KW_SQA_TIME(r->decided_at),
                   KW_SQA_OTEXT(r->note), insert ? KW_SQA_INT(r->created_at) : KW_SQA_SKIP),
        err, insert ? "renewal insert" : "renewal update");
    if (rc == KW_ECONFLICT)
        return s->w.xrc == SQLITE_CONSTRAINT_FOREIGNKEY
                   ? kw_err_set(err, KW_ENOTFOUND, "key_id", "key not found")
                   : kw_err_set(err, KW_ECONFLICT, "id", "renewal id already exists");
    if (rc == 0 && !insert && sqlite3_changes(s->w.db) == 0)
        rc = kw_err_set(err, KW_ENOTFOUND, "id", "renewal not found");
    return rc;
}

int kw_sqlite_renewal_insert(kw_store_t *base, const kw_renewal_t *r, kw_err_t *err)
{
    return ren_write(base, r, 1, err);
}

int kw_sqlite_renewal_update(kw_store_t *base, const kw_renewal_t *r, kw_err_t *err)
{
    return ren_write(base, r, 0, err);
}

int kw_sqlite_renewal_get(kw_store_t *base, const char *id, kw_renewal_t *out, kw_err_t *err)
{
    return kw_sqlite_get(KW_SQ(base), &q_get, KW_SQ_ARGS(KW_SQA_TEXT(id)), out, err);
}

int kw_sqlite_renewal_list(kw_store_t *base, const kw_renewal_filter_t *f, kw_renewal_t **out,
                           size_t *n, kw_err_t *err)
{
    char sql[384];
    int after = f->after_created > 0;
    snprintf(sql, sizeof(sql),
             "SELECT " KW_COLS_REN " FROM renewals WHERE 1%s%s%s"
             " ORDER BY created_at, id LIMIT ?5",
             f->state ? " AND state = ?1" : "", f->key_id ? " AND key_id = ?2" : "",
             after ? " AND (created_at, id) > (?3, ?4)" : "");
    return kw_sqlite_list_sql(
        KW_SQ(base), &q_list, sql,
        KW_SQ_ARGS(f->state ? KW_SQA_TEXT(f->state) : KW_SQA_SKIP,
                   f->key_id ? KW_SQA_TEXT(f->key_id) : KW_SQA_SKIP,
                   after ? KW_SQA_INT(f->after_created) : KW_SQA_SKIP,
                   after ? KW_SQA_TEXT(f->after_id ? f->after_id : "") : KW_SQA_SKIP,
                   KW_SQA_INT(kw_sqlite_lim(f->limit))),
        out, n, err);
}

int kw_sqlite_renewal_stale(kw_store_t *base, int64_t now, size_t limit, kw_renewal_t **out,
                            size_t *n, kw_err_t *err)
{
    return kw_sqlite_list(KW_SQ(base), &q_stale,
                          KW_SQ_ARGS(KW_SQA_INT(now), KW_SQA_INT(kw_sqlite_lim(limit))), out, n,
                          err);
}
