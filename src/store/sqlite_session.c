/* sqlite_session.c - the SQLite side of store_session.h: one table of console sessions,
 * keyed by the SHA-256 of the session id, through the backend's statement cache and
 * helpers (sqlite_int.h). Never logs; messages carry sqlite3_errmsg. */
#include <string.h>

#include "sqlite_int.h"
#include "store_session.h"

/* The migration (appended to sqlite.c's list). */
const char kw_sqlite_session_migration[] = "CREATE TABLE console_sessions ("
                                           "  digest BLOB PRIMARY KEY,"
                                           "  cred_id TEXT NOT NULL,"
                                           "  key_id TEXT NOT NULL,"
                                           "  created_at INTEGER NOT NULL,"
                                           "  last_seen_at INTEGER NOT NULL,"
                                           "  expires_at INTEGER NOT NULL"
                                           ") STRICT, WITHOUT ROWID;";

enum { SE_INSERT, SE_GET, SE_TOUCH, SE_DEL, SE_PURGE, SE__COUNT };

static kw_sqlite_stmt_t stmts[SE__COUNT] = {
    [SE_INSERT] = {.sql = "INSERT INTO console_sessions (digest, cred_id, key_id, created_at,"
                          " last_seen_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"},
    [SE_GET] = {.sql = "SELECT cred_id, key_id, created_at, last_seen_at, expires_at"
                       " FROM console_sessions WHERE digest = ?1"},
    [SE_TOUCH] = {.sql = "UPDATE console_sessions SET last_seen_at = ?2 WHERE digest = ?1"},
    [SE_DEL] = {.sql = "DELETE FROM console_sessions WHERE digest = ?1"},
    [SE_PURGE] = {.sql =
                      "DELETE FROM console_sessions WHERE last_seen_at < ?1 OR expires_at <= ?2"},
};

#define DIGEST(d) KW_SQA_BLOB(d, KW_SESSION_DIGEST_LEN)

static int row_session(sqlite3_stmt *st, void *out)
{
    kw_session_t *x = out; /* digest: the caller's */
    kw_sqlite_col_cpy(st, 0, x->cred_id, sizeof(x->cred_id));
    kw_sqlite_col_cpy(st, 1, x->key_id, sizeof(x->key_id));
    x->created_at = sqlite3_column_int64(st, 2);
    x->last_seen_at = sqlite3_column_int64(st, 3);
    x->expires_at = sqlite3_column_int64(st, 4);
    return 0;
}

static const kw_sqlite_rowtype_t ROWS = {sizeof(kw_session_t), row_session, NULL};
static const kw_sqlite_query_t q_get = {&stmts[SE_GET], "session lookup", &ROWS, NULL,
                                        "store: no such session"};

static int se_insert(kw_store_t *s, const kw_session_t *x, kw_err_t *err)
{
    int rc = kw_sqlite_write(KW_SQ(s), &stmts[SE_INSERT],
                             KW_SQ_ARGS(DIGEST(x->digest), KW_SQA_TEXT(x->cred_id),
                                        KW_SQA_TEXT(x->key_id), KW_SQA_INT(x->created_at),
                                        KW_SQA_INT(x->last_seen_at), KW_SQA_INT(x->expires_at)),
                             err, "session insert");
    return rc == KW_ECONFLICT ? kw_err_set(err, KW_ECONFLICT, NULL, "store: session exists") : rc;
}

static int se_get(kw_store_t *s, const uint8_t *digest, kw_session_t *out, kw_err_t *err)
{
    kw_session_t x = {0};
    memcpy(x.digest, digest, KW_SESSION_DIGEST_LEN);
    int rc = kw_sqlite_get(KW_SQ(s), &q_get, KW_SQ_ARGS(DIGEST(digest)), &x, err);
    if (rc == 0)
        *out = x;
    return rc;
}

static int se_touch(kw_store_t *s, const uint8_t *digest, int64_t at, kw_err_t *err)
{
    return kw_sqlite_write(KW_SQ(s), &stmts[SE_TOUCH], KW_SQ_ARGS(DIGEST(digest), KW_SQA_INT(at)),
                           err, "session touch");
}

static int se_del(kw_store_t *s, const uint8_t *digest, kw_err_t *err)
{
    return kw_sqlite_write(KW_SQ(s), &stmts[SE_DEL], KW_SQ_ARGS(DIGEST(digest)), err,
                           "session delete");
}

static int se_purge(kw_store_t *s, int64_t idle_before, int64_t now, int64_t *removed,
                    kw_err_t *err)
{
    int rc =
        kw_sqlite_write(KW_SQ(s), &stmts[SE_PURGE],
                        KW_SQ_ARGS(KW_SQA_INT(idle_before), KW_SQA_INT(now)), err, "session purge");
    if (rc == 0 && removed)
        *removed = sqlite3_changes(KW_SQ(s)->w.db);
    return rc;
}

const kw_store_session_ops_t kw_sqlite_session_ops = {KW_STORE_SESSION_OPS(KW_STORE_OP_INIT, se_)};
