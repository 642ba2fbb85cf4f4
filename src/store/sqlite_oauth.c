/* sqlite_oauth.c - the SQLite side of store_oauth.h (kw_sqlite_oauth_ops) and the schema of the
 * oauth migration (policies.token_lifetime, token_revocations), through the backend's statement
 * cache and helpers (sqlite_int.h). Never logs. */
#include <string.h>

#include "sqlite_int.h"
#include "store_oauth.h"

/* oauth: the policy's access token lifetime (SPEC §13, default 1h) and single revoked
 * tokens (RFC 7009), kept until the token's own expiry. */
const char kw_sqlite_oauth_migration[] =
    "ALTER TABLE policies ADD COLUMN token_lifetime INTEGER NOT NULL DEFAULT 3600;"
    "CREATE TABLE token_revocations ("
    "  token_id TEXT PRIMARY KEY,"
    "  cred_id TEXT NOT NULL,"
    "  expires_at INTEGER NOT NULL,"
    "  revoked_at INTEGER NOT NULL"
    ") STRICT;"
    "CREATE INDEX token_revocations_exp ON token_revocations(expires_at);";

static kw_sqlite_stmt_t st_expire = {.sql = "DELETE FROM token_revocations WHERE expires_at < ?1"};
static kw_sqlite_stmt_t st_insert = {
    .sql = "INSERT INTO token_revocations (token_id, cred_id, expires_at,"
           " revoked_at) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING"};
static kw_sqlite_stmt_t st_list = {.sql = "SELECT token_id, expires_at FROM token_revocations"
                                          " WHERE expires_at > ?1"};

static int oa_revoke(kw_store_t *s, const char *token_id, const char *cred_id, int64_t exp,
                     int64_t now, kw_err_t *err)
{
    int rc =
        kw_sqlite_write(KW_SQ(s), &st_expire, KW_SQ_ARGS(KW_SQA_INT(now)), err, "token revocation");
    if (rc == 0)
        rc = kw_sqlite_write(KW_SQ(s), &st_insert,
                             KW_SQ_ARGS(KW_SQA_TEXT(token_id), KW_SQA_TEXT(cred_id),
                                        KW_SQA_INT(exp), KW_SQA_INT(now)),
                             err, "token revocation");
    return rc;
}

static int oa_revoked(kw_store_t *s, int64_t now, kw_store_token_cb cb, void *ud, kw_err_t *err)
{
    kw_sqlite_t *q = KW_SQ(s);
    kw_sqlite_conn_t *c = kw_sqlite_rd_begin(q);
    sqlite3_stmt *st = NULL;
    int rc = kw_sqlite_prep(c, &st_list, &st, err);
    if (rc == 0)
        rc = kw_sqlite_bind(c, st, KW_SQ_ARGS(KW_SQA_INT(now)), err);
    while (rc == 0 && (rc = kw_sqlite_step(c, st, err, "revoked tokens")) == SQLITE_ROW) {
        const char *id = (const char *)sqlite3_column_text(st, 0);
        rc = cb(ud, id ? id : "", sqlite3_column_int64(st, 1));
    }
    if (rc == SQLITE_DONE)
        rc = 0;
    kw_sqlite_done(st);
    kw_sqlite_rd_end(q, c);
    return rc;
}

const kw_store_oauth_ops_t kw_sqlite_oauth_ops = {KW_STORE_OAUTH_OPS(KW_STORE_OP_INIT, oa_)};
