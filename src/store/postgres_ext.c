/* postgres_ext.c - the PostgreSQL side of the features whose SQLite code lives beside
 * sqlite.c: revoked OAuth2 tokens (store_oauth.h), console sessions (store_session.h) and
 * history retention (store.h kw_store_prune / kw_store_audit_cut): kw_pg_oauth_ops,
 * kw_pg_session_ops and kw_pg_retention_ops, set by postgres.c's open. Same contracts, same
 * results as the SQLite files; statements are rare, so they are not prepared. Never logs. */
#ifdef KW_HAVE_LIBPQ

#include "postgres_int.h"
#include "store_oauth.h"
#include "store_session.h"

/* pg2: SQLite migration 4 (sqlite_oauth.c) */
const char kw_pg_oauth_migration[] =
    "ALTER TABLE policies ADD COLUMN token_lifetime BIGINT NOT NULL DEFAULT 3600;"
    "CREATE TABLE token_revocations ("
    "  token_id TEXT PRIMARY KEY,"
    "  cred_id TEXT NOT NULL,"
    "  expires_at BIGINT NOT NULL,"
    "  revoked_at BIGINT NOT NULL"
    ");"
    "CREATE INDEX token_revocations_exp ON token_revocations(expires_at);";

/* pg2: SQLite migration 5 (sqlite_session.c) */
const char kw_pg_session_migration[] = "CREATE TABLE console_sessions ("
                                       "  digest BYTEA PRIMARY KEY,"
                                       "  cred_id TEXT NOT NULL,"
                                       "  key_id TEXT NOT NULL,"
                                       "  created_at BIGINT NOT NULL,"
                                       "  last_seen_at BIGINT NOT NULL,"
                                       "  expires_at BIGINT NOT NULL"
                                       ");";

/* A write inside the caller's transaction; *changed (may be NULL) gets the row count. */
static int wr(kw_store_t *s, const char *sql, const kw_sql_arg_t *a, int na, int64_t *changed,
              kw_err_t *err, const char *what)
{
    return kw_pg_exec_args(s, sql, a, na, changed, NULL, NULL, err, what);
}

/* ---- revoked tokens ------------------------------------------------------------------ */

static int tk_revoke(kw_store_t *s, const char *token_id, const char *cred_id, int64_t exp,
                     int64_t now, kw_err_t *err)
{
    int rc = wr(s, "DELETE FROM token_revocations WHERE expires_at < $1::bigint",
                KW_SQ_ARGS(KW_SQA_INT(now)), NULL, err, "token revocation");
    if (rc)
        return rc;
    return wr(
        s,
        "INSERT INTO token_revocations (token_id, cred_id, expires_at, revoked_at)"
        " VALUES ($1, $2, $3::bigint, $4::bigint) ON CONFLICT DO NOTHING",
        KW_SQ_ARGS(KW_SQA_TEXT(token_id), KW_SQA_TEXT(cred_id), KW_SQA_INT(exp), KW_SQA_INT(now)),
        NULL, err, "token revocation");
}

static int tk_revoked(kw_store_t *s, int64_t now, kw_store_token_cb cb, void *ud, kw_err_t *err)
{
    PGresult *r = NULL;
    int rc = kw_pg_read_args(s,
                             "SELECT token_id, expires_at FROM token_revocations"
                             " WHERE expires_at > $1::bigint",
                             KW_SQ_ARGS(KW_SQA_INT(now)), &r, err, "revoked tokens");
    for (int i = 0; rc == 0 && i < PQntuples(r); i++)
        rc = cb(ud, PQgetvalue(r, i, 0), strtoll(PQgetvalue(r, i, 1), NULL, 10));
    PQclear(r);
    return rc;
}

const kw_store_oauth_ops_t kw_pg_oauth_ops = {KW_STORE_OAUTH_OPS(KW_STORE_OP_INIT, tk_)};

/* ---- console sessions ---------------------------------------------------------------- */

#define DIGEST(d) KW_SQA_BLOB(d, KW_SESSION_DIGEST_LEN) /* as sqlite_session.c binds it */

static int se_insert(kw_store_t *s, const kw_session_t *x, kw_err_t *err)
{
    int rc = wr(s,
                "INSERT INTO console_sessions (digest, cred_id, key_id, created_at,"
                " last_seen_at, expires_at) VALUES ($1, $2, $3, $4::bigint, $5::bigint,"
                " $6::bigint)",
                KW_SQ_ARGS(DIGEST(x->digest), KW_SQA_TEXT(x->cred_id), KW_SQA_TEXT(x->key_id),
                           KW_SQA_INT(x->created_at), KW_SQA_INT(x->last_seen_at),
                           KW_SQA_INT(x->expires_at)),
                NULL, err, "session insert");
    if (rc == KW_ECONFLICT)
        rc = kw_err_set(err, KW_ECONFLICT, NULL, "store: session exists");
    return rc;
}

static int se_get(kw_store_t *s, const uint8_t *digest, kw_session_t *out, kw_err_t *err)
{
    PGresult *r = NULL;
    int rc = kw_pg_read_args(s,
                             "SELECT cred_id, key_id, created_at, last_seen_at, expires_at"
                             " FROM console_sessions WHERE digest = $1",
                             KW_SQ_ARGS(DIGEST(digest)), &r, err, "session lookup");
    if (rc == 0 && PQntuples(r) == 0) {
        rc = kw_err_set(err, KW_ENOTFOUND, NULL, "store: no such session");
    } else if (rc == 0) {
        kw_session_t x = {0};
        memcpy(x.digest, digest, KW_SESSION_DIGEST_LEN);
        snprintf(x.cred_id, sizeof(x.cred_id), "%s", PQgetvalue(r, 0, 0));
        snprintf(x.key_id, sizeof(x.key_id), "%s", PQgetvalue(r, 0, 1));
        x.created_at = strtoll(PQgetvalue(r, 0, 2), NULL, 10);
        x.last_seen_at = strtoll(PQgetvalue(r, 0, 3), NULL, 10);
        x.expires_at = strtoll(PQgetvalue(r, 0, 4), NULL, 10);
        *out = x;
    }
    PQclear(r);
    return rc;
}

static int se_touch(kw_store_t *s, const uint8_t *digest, int64_t at, kw_err_t *err)
{
    return wr(s, "UPDATE console_sessions SET last_seen_at = $2::bigint WHERE digest = $1",
              KW_SQ_ARGS(DIGEST(digest), KW_SQA_INT(at)), NULL, err, "session touch");
}

static int se_del(kw_store_t *s, const uint8_t *digest, kw_err_t *err)
{
    return wr(s, "DELETE FROM console_sessions WHERE digest = $1", KW_SQ_ARGS(DIGEST(digest)), NULL,
              err, "session delete");
}

static int se_purge(kw_store_t *s, int64_t idle_before, int64_t now, int64_t *removed,
                    kw_err_t *err)
{
    int64_t n = 0;
    int rc = wr(s,
                "DELETE FROM console_sessions WHERE last_seen_at < $1::bigint"
                " OR expires_at <= $2::bigint",
                KW_SQ_ARGS(KW_SQA_INT(idle_before), KW_SQA_INT(now)), &n, err, "session purge");
    if (rc == 0 && removed)
        *removed = n;
    return rc;
}

const kw_store_session_ops_t kw_pg_session_ops = {KW_STORE_SESSION_OPS(KW_STORE_OP_INIT, se_)};

/* ---- retention (sqlite_retention.c) -------------------------------------------------- */

#define OLD_EVENTS                                                                                 \
    "SELECT e.id FROM events e WHERE e.occurred_at < $1::bigint AND e.fanout_at IS NOT NULL"       \
    " AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id"                          \
    " AND d.state IN ('pending', 'sending')) ORDER BY e.seq LIMIT $2::bigint"

static const char *const PRUNE[] = {
    "DELETE FROM deliveries WHERE event_id IN (" OLD_EVENTS ")",
    "DELETE FROM events WHERE id IN (" OLD_EVENTS ")",
    "DELETE FROM key_alerts WHERE (key_id, expires_at, threshold) IN (SELECT key_id,"
    " expires_at, threshold FROM key_alerts WHERE expires_at < $1::bigint AND at < $1::bigint"
    " LIMIT $2::bigint)",
    "DELETE FROM mail_quota WHERE (rcpt, day) IN (SELECT rcpt, day FROM mail_quota"
    " WHERE day < $1::bigint / 86400 LIMIT $2::bigint)",
};

static int re_prune(kw_store_t *s, int64_t before, size_t batch, size_t *deleted, kw_err_t *err)
{
    for (size_t i = 0; i < sizeof(PRUNE) / sizeof(PRUNE[0]); i++) {
        int64_t n = 0;
        int rc = wr(s, PRUNE[i], KW_SQ_ARGS(KW_SQA_INT(before), KW_SQA_INT(batch)), &n, err,
                    "prune history");
        if (rc)
            return rc;
        if (i != 0) /* the deliveries go with their events: count events */
            *deleted += (size_t)n;
    }
    return 0;
}

static int re_audit_cut(kw_store_t *s, int64_t upto, kw_err_t *err)
{
    return wr(s, "DELETE FROM audit WHERE seq <= $1::bigint", KW_SQ_ARGS(KW_SQA_INT(upto)), NULL,
              err, "audit archive");
}

const kw_store_retention_ops_t kw_pg_retention_ops = {
    KW_STORE_RETENTION_OPS(KW_STORE_OP_INIT, re_)};

#endif
