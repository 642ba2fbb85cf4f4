/* sqlite_session.c - the SQLite side of store_session.h: one table of console sessions,
 * keyed by the SHA-256 of the session id. Statements are prepared per call (console
 * traffic is a few requests a second at most). Never logs; messages carry sqlite3_errmsg. */
#include <sqlite3.h>
#include <string.h>

#include "store_impl.h"
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

/* Prepare sql on db and bind the digest as ?1. */
static int prep(kw_store_t *s, sqlite3 *db, const char *sql, const uint8_t *digest,
                sqlite3_stmt **st, kw_err_t *err)
{
    int rc = sqlite3_prepare_v2(db, sql, -1, st, NULL);
    if (rc != SQLITE_OK)
        return kw_sqlite_err(s, db, rc, err, "session statement");
    if (digest &&
        (rc = sqlite3_bind_blob(*st, 1, digest, KW_SESSION_DIGEST_LEN, SQLITE_STATIC)) != SQLITE_OK)
        return kw_sqlite_err(s, db, rc, err, "session bind");
    return 0;
}

/* Step a write statement to completion. */
static int run(kw_store_t *s, sqlite3 *db, sqlite3_stmt *st, kw_err_t *err, const char *what)
{
    int rc = sqlite3_step(st);
    if (rc == SQLITE_CONSTRAINT)
        return kw_err_set(err, KW_ECONFLICT, NULL, "store: session exists");
    if (rc != SQLITE_DONE)
        return kw_sqlite_err(s, db, rc, err, what);
    return 0;
}

static int se_insert(kw_store_t *s, const kw_session_t *x, kw_err_t *err)
{
    sqlite3 *db;
    sqlite3_stmt *st = NULL;
    int rc = kw_sqlite_wr(s, &db, err);
    if (rc)
        return rc;
    rc = prep(s, db,
              "INSERT INTO console_sessions (digest, cred_id, key_id, created_at,"
              " last_seen_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
              x->digest, &st, err);
    if (rc)
        goto out;
    if (sqlite3_bind_text(st, 2, x->cred_id, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_text(st, 3, x->key_id, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_int64(st, 4, x->created_at) != SQLITE_OK ||
        sqlite3_bind_int64(st, 5, x->last_seen_at) != SQLITE_OK ||
        sqlite3_bind_int64(st, 6, x->expires_at) != SQLITE_OK) {
        rc = kw_sqlite_err(s, db, SQLITE_ERROR, err, "session bind");
        goto out;
    }
    rc = run(s, db, st, err, "session insert");
out:
    sqlite3_finalize(st);
    return rc;
}

static int se_get(kw_store_t *s, const uint8_t *digest, kw_session_t *out, kw_err_t *err)
{
    sqlite3 *db = kw_sqlite_rd_begin(s);
    sqlite3_stmt *st = NULL;
    int rc = prep(s, db,
                  "SELECT cred_id, key_id, created_at, last_seen_at, expires_at"
                  " FROM console_sessions WHERE digest = ?1",
                  digest, &st, err);
    if (rc)
        goto out;
    int sr = sqlite3_step(st);
    if (sr == SQLITE_DONE) {
        rc = kw_err_set(err, KW_ENOTFOUND, NULL, "store: no such session");
        goto out;
    }
    if (sr != SQLITE_ROW) {
        rc = kw_sqlite_err(s, db, sr, err, "session lookup");
        goto out;
    }
    kw_session_t x = {0};
    memcpy(x.digest, digest, KW_SESSION_DIGEST_LEN);
    const unsigned char *c = sqlite3_column_text(st, 0), *k = sqlite3_column_text(st, 1);
    snprintf(x.cred_id, sizeof(x.cred_id), "%s", c ? (const char *)c : "");
    snprintf(x.key_id, sizeof(x.key_id), "%s", k ? (const char *)k : "");
    x.created_at = sqlite3_column_int64(st, 2);
    x.last_seen_at = sqlite3_column_int64(st, 3);
    x.expires_at = sqlite3_column_int64(st, 4);
    *out = x;
out:
    sqlite3_finalize(st);
    kw_sqlite_rd_end(s, db);
    return rc;
}

static int se_touch(kw_store_t *s, const uint8_t *digest, int64_t at, kw_err_t *err)
{
    sqlite3 *db;
    sqlite3_stmt *st = NULL;
    int rc = kw_sqlite_wr(s, &db, err);
    if (rc)
        return rc;
    rc = prep(s, db, "UPDATE console_sessions SET last_seen_at = ?2 WHERE digest = ?1", digest, &st,
              err);
    if (rc == 0 && (rc = sqlite3_bind_int64(st, 2, at)) != SQLITE_OK)
        rc = kw_sqlite_err(s, db, rc, err, "session bind");
    if (rc == 0)
        rc = run(s, db, st, err, "session touch");
    sqlite3_finalize(st);
    return rc;
}

static int se_del(kw_store_t *s, const uint8_t *digest, kw_err_t *err)
{
    sqlite3 *db;
    sqlite3_stmt *st = NULL;
    int rc = kw_sqlite_wr(s, &db, err);
    if (rc)
        return rc;
    rc = prep(s, db, "DELETE FROM console_sessions WHERE digest = ?1", digest, &st, err);
    if (rc == 0)
        rc = run(s, db, st, err, "session delete");
    sqlite3_finalize(st);
    return rc;
}

static int se_purge(kw_store_t *s, int64_t idle_before, int64_t now, int64_t *removed,
                    kw_err_t *err)
{
    sqlite3 *db;
    sqlite3_stmt *st = NULL;
    int rc = kw_sqlite_wr(s, &db, err);
    if (rc)
        return rc;
    rc = prep(s, db, "DELETE FROM console_sessions WHERE last_seen_at < ?1 OR expires_at <= ?2",
              NULL, &st, err);
    if (rc == 0 && (sqlite3_bind_int64(st, 1, idle_before) != SQLITE_OK ||
                    sqlite3_bind_int64(st, 2, now) != SQLITE_OK))
        rc = kw_sqlite_err(s, db, SQLITE_ERROR, err, "session bind");
    if (rc == 0)
        rc = run(s, db, st, err, "session purge");
    if (rc == 0 && removed)
        *removed = sqlite3_changes(db);
    sqlite3_finalize(st);
    return rc;
}

const kw_store_session_ops_t kw_sqlite_session_ops = {
    .insert = se_insert,
    .get = se_get,
    .touch = se_touch,
    .del = se_del,
    .purge = se_purge,
};
