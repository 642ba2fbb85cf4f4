/* sqlite_audit.c - the SQLite backend's audit trail (store.h, SPEC §7): appends, the head
 * of the hash chain, filtered lists and the full scan the chain check walks. */
#include "sqlite_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { ST_AUDIT_INSERT, ST_AUDIT_HEAD, ST_AUDIT_SCAN, ST__COUNT };

static kw_sqlite_stmt_t stmts[ST__COUNT] = {
    [ST_AUDIT_INSERT] = {.sql =
                             "INSERT INTO audit (seq, at, actor, action, target, outcome, detail,"
                             " prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"},
    [ST_AUDIT_HEAD] = {.sql = "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1"},
    [ST_AUDIT_SCAN] = {.sql = "SELECT " KW_COLS_AUDIT " FROM audit ORDER BY seq"},
};

/* Fill r from an KW_COLS_AUDIT row. Over-long text (only a hand-edited file has any) is cut,
 * which the chain check then reports as a mismatch. */
static int row_audit(sqlite3_stmt *st, void *out)
{
    kw_audit_rec_t *r = out;
    memset(r, 0, sizeof(*r));
    r->seq = sqlite3_column_int64(st, 0);
    r->at = sqlite3_column_int64(st, 1);
    kw_sqlite_col_cpy(st, 2, r->actor, sizeof(r->actor));
    kw_sqlite_col_cpy(st, 3, r->action, sizeof(r->action));
    kw_sqlite_col_cpy(st, 4, r->target, sizeof(r->target));
    kw_sqlite_col_cpy(st, 5, r->outcome, sizeof(r->outcome));
    if (kw_sqlite_col_dup(st, 6, &r->detail))
        return KW_ENOMEM;
    r->has_prev = sqlite3_column_type(st, 7) != SQLITE_NULL;
    int has_p = sqlite3_column_blob(st, 7) != NULL;
    size_t pn = kw_sqlite_col_blob(st, 7, r->prev_hash, KW_AUDIT_HASH_LEN);
    size_t hn = kw_sqlite_col_blob(st, 8, r->hash, KW_AUDIT_HASH_LEN);
    if (pn != (has_p ? KW_AUDIT_HASH_LEN : 0) || hn != KW_AUDIT_HASH_LEN)
        r->hash[0] ^= 0xff; /* a hash of the wrong length can never match */
    return 0;
}

static void clear_audit(void *r)
{
    kw_audit_rec_clear(r);
}

/* The head: seq and hash (zero-padded). */
typedef struct head {
    int64_t seq;
    uint8_t hash[KW_AUDIT_HASH_LEN];
} head_t;

static int row_head(sqlite3_stmt *st, void *out)
{
    head_t *h = out;
    memset(h->hash, 0, sizeof(h->hash));
    kw_sqlite_col_blob(st, 1, h->hash, KW_AUDIT_HASH_LEN);
    h->seq = sqlite3_column_int64(st, 0);
    return 0;
}

static const kw_sqlite_rowtype_t HEAD_ROWS = {sizeof(head_t), row_head, NULL};
static const kw_sqlite_rowtype_t AUDIT_ROWS = {sizeof(kw_audit_rec_t), row_audit, clear_audit};
static const kw_sqlite_query_t q_head = {&stmts[ST_AUDIT_HEAD], "audit head", &HEAD_ROWS, NULL,
                                         "audit trail is empty"};
static const kw_sqlite_query_t q_list = {
    .stmt = NULL, .what = "audit list", .rows = &AUDIT_ROWS}; /* SQL built per call */

int kw_sqlite_audit_insert(kw_store_t *base, const kw_audit_rec_t *r, kw_err_t *err)
{
    return kw_sqlite_write(
        KW_SQ(base), &stmts[ST_AUDIT_INSERT],
        KW_SQ_ARGS(KW_SQA_INT(r->seq), KW_SQA_INT(r->at), KW_SQA_TEXT(r->actor),
                   KW_SQA_TEXT(r->action), KW_SQA_OTEXT(r->target), KW_SQA_TEXT(r->outcome),
                   KW_SQA_TEXT(r->detail),
                   r->has_prev ? KW_SQA_BLOB(r->prev_hash, KW_AUDIT_HASH_LEN) : KW_SQA_NULL,
                   KW_SQA_BLOB(r->hash, KW_AUDIT_HASH_LEN)),
        err, "audit insert");
}

int kw_sqlite_audit_head(kw_store_t *base, int64_t *seq, uint8_t *hash, kw_err_t *err)
{
    head_t h;
    int rc = kw_sqlite_get(KW_SQ(base), &q_head, KW_SQ_NOARGS, &h, err);
    if (rc == 0) {
        *seq = h.seq;
        memcpy(hash, h.hash, KW_AUDIT_HASH_LEN);
    }
    return rc;
}

int kw_sqlite_audit_list(kw_store_t *base, const kw_audit_filter_t *f, kw_audit_rec_t **out,
                         size_t *n, kw_err_t *err)
{
    char sql[384];
    /* Built from fixed pieces only (values are bound): each filter combination is its own
     * statement so SQLite can use the (target, seq) / (actor, seq) indexes. */
    snprintf(sql, sizeof(sql),
             "SELECT " KW_COLS_AUDIT " FROM audit WHERE 1%s%s%s ORDER BY seq %s"
             " LIMIT ?4",
             f->actor ? " AND actor = ?1" : "", f->target ? " AND target = ?2" : "",
             f->cursor > 0 ? (f->ascending ? " AND seq > ?3" : " AND seq < ?3") : "",
             f->ascending ? "ASC" : "DESC");
    return kw_sqlite_list_sql(KW_SQ(base), &q_list, sql,
                              KW_SQ_ARGS(f->actor ? KW_SQA_TEXT(f->actor) : KW_SQA_SKIP,
                                         f->target ? KW_SQA_TEXT(f->target) : KW_SQA_SKIP,
                                         f->cursor > 0 ? KW_SQA_INT(f->cursor) : KW_SQA_SKIP,
                                         KW_SQA_INT(kw_sqlite_lim(f->limit))),
                              out, n, err);
}

int kw_sqlite_audit_scan(kw_store_t *base, kw_store_audit_cb cb, void *ud, const char *meta_key,
                         char **meta_out, kw_err_t *err)
{
    kw_sqlite_t *s = KW_SQ(base);
    kw_sqlite_conn_t *c = kw_sqlite_rd_begin(s);
    sqlite3_stmt *st = NULL;
    int began = kw_sqlite_read_begin(s, c, err);
    int rc = began < 0 ? began : 0;
    if (rc == 0)
        rc = kw_sqlite_prep(c, &stmts[ST_AUDIT_SCAN], &st, err);
    while (rc == 0 && (rc = kw_sqlite_step(c, st, err, "audit scan")) == SQLITE_ROW) {
        kw_audit_rec_t r;
        if (row_audit(st, &r)) {
            rc = kw_err_set(err, KW_ENOMEM, NULL, NULL);
            break;
        }
        rc = cb(ud, &r);
        kw_audit_rec_clear(&r);
    }
    if (rc == SQLITE_DONE)
        rc = kw_sqlite_meta_on(c, meta_key, meta_out, err);
    kw_sqlite_done(st);
    kw_sqlite_read_end(c, began > 0);
    kw_sqlite_rd_end(s, c);
    return rc;
}
