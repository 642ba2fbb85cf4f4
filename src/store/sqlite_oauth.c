/* sqlite_oauth.c - the SQLite side of store_oauth.h and the schema of the oauth migration
 * (policies.token_lifetime, token_revocations). Uses sqlite.c's connections through
 * kw_sqlite_rd_begin / kw_sqlite_wr; revocations are rare, so statements are prepared per
 * call. Never logs. */
#include <sqlite3.h>
#include <string.h>

#include "store_impl.h"
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

int kw_store_token_revoke(kw_store_t *s, const char *token_id, const char *cred_id, int64_t exp,
                          int64_t now, kw_err_t *err)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
#ifdef KW_HAVE_LIBPQ
    if (s->ops == &kw_store_postgres_ops) /* pg2: postgres_ext.c */
        return kw_pg_token_revoke(s, token_id, cred_id, exp, now, err);
#endif
    if (s->ops != &kw_store_sqlite_ops)
        return kw_err_set(err, KW_ESTORE, NULL, "this store cannot record revoked tokens");
    int rc = kw_sqlite_wr(s, &db, err);
    if (rc)
        return rc;
    static const char del[] = "DELETE FROM token_revocations WHERE expires_at < ?1";
    static const char ins[] = "INSERT INTO token_revocations (token_id, cred_id, expires_at,"
                              " revoked_at) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING";
    int src = sqlite3_prepare_v2(db, del, -1, &st, NULL);
    if (src == SQLITE_OK)
        src = sqlite3_bind_int64(st, 1, now);
    if (src == SQLITE_OK && (src = sqlite3_step(st)) == SQLITE_DONE)
        src = SQLITE_OK;
    sqlite3_finalize(st);
    st = NULL;
    if (src == SQLITE_OK)
        src = sqlite3_prepare_v2(db, ins, -1, &st, NULL);
    if (src == SQLITE_OK)
        src = sqlite3_bind_text(st, 1, token_id, -1, SQLITE_TRANSIENT) |
              sqlite3_bind_text(st, 2, cred_id, -1, SQLITE_TRANSIENT) |
              sqlite3_bind_int64(st, 3, exp) | sqlite3_bind_int64(st, 4, now);
    if (src == SQLITE_OK && (src = sqlite3_step(st)) == SQLITE_DONE)
        src = SQLITE_OK;
    sqlite3_finalize(st);
    return src == SQLITE_OK ? 0 : kw_sqlite_err(s, db, src, err, "token revocation");
}

int kw_store_token_revoked(kw_store_t *s, int64_t now, kw_store_token_cb cb, void *ud,
                           kw_err_t *err)
{
#ifdef KW_HAVE_LIBPQ
    if (s->ops == &kw_store_postgres_ops) /* pg2: postgres_ext.c */
        return kw_pg_token_revoked(s, now, cb, ud, err);
#endif
    if (s->ops != &kw_store_sqlite_ops)
        return 0;
    sqlite3 *db = kw_sqlite_rd_begin(s);
    sqlite3_stmt *st = NULL;
    int rc = 0;
    int src = sqlite3_prepare_v2(db,
                                 "SELECT token_id, expires_at FROM token_revocations"
                                 " WHERE expires_at > ?1",
                                 -1, &st, NULL);
    if (src == SQLITE_OK)
        src = sqlite3_bind_int64(st, 1, now);
    while (src == SQLITE_OK && rc == 0) {
        int r = sqlite3_step(st);
        if (r == SQLITE_DONE)
            break;
        if (r != SQLITE_ROW) {
            src = r;
            break;
        }
        const char *id = (const char *)sqlite3_column_text(st, 0);
        rc = cb(ud, id ? id : "", sqlite3_column_int64(st, 1));
    }
    if (src != SQLITE_OK)
        rc = kw_sqlite_err(s, db, src, err, "revoked tokens");
    sqlite3_finalize(st);
    kw_sqlite_rd_end(s, db);
    return rc;
}
