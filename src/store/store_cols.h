/* store_cols.h - the column lists both backends (sqlite*.c, postgres*.c) read and write, in
 * the order their row decoders expect. Plain SQL that both dialects share: one place, so a
 * column added to a table is added for every backend at once. */
#ifndef KW_STORE_COLS_H
#define KW_STORE_COLS_H

#define KW_COLS_POLICY                                                                             \
    "name, default_lifetime, max_lifetime, allow_never_expire, renewable, "                        \
    "renewal_requires_approval, thresholds, max_roll_overlap, created_at, updated_at, "            \
    "token_lifetime"
#define KW_COLS_CRED                                                                               \
    "c.seq, c.id, c.name, c.owner, c.scopes, c.cidrs, c.metadata, c.contacts, c.policy, "          \
    "c.prefix, c.disabled, c.created_at, c.updated_at, c.deleted_at"
/* KW_COLS_CRED with NULL for what the verification index does not read (name, owner,
 * metadata, contacts): kw_store_load_index (KW_COLS_KEY_INDEX below for its keys) */
#define KW_COLS_CRED_INDEX                                                                         \
    "c.seq, c.id, NULL, NULL, c.scopes, c.cidrs, NULL, NULL, c.policy, c.prefix, c.disabled, "     \
    "c.created_at, c.updated_at, c.deleted_at"
#define KW_COLS_KEY                                                                                \
    "k.seq, k.id, k.cred_id, k.slot, k.live_slot, k.hint, k.digest, k.created_at, "                \
    "k.expires_at, k.revoked_at, k.revoke_reason, k.last_used_at, k.use_count"
#define KW_COLS_KEY_N 13
/* KW_COLS_KEY without what the index does not read (hint, created_at, revoke_reason,
 * use_count: NULL or 0): kw_store_load_index */
#define KW_COLS_KEY_INDEX                                                                          \
    "k.seq, k.id, k.cred_id, k.slot, k.live_slot, NULL, k.digest, 0, k.expires_at, "               \
    "k.revoked_at, NULL, k.last_used_at, 0"
#define KW_COLS_AUDIT "seq, at, actor, action, target, outcome, detail, prev_hash, hash"
#define KW_COLS_REN                                                                                \
    "id, key_id, requested_by, extend_by, expires_at, reason, state, decided_by, "                 \
    "decided_at, note, created_at"
#define KW_COLS_REN_R                                                                              \
    "r.id, r.key_id, r.requested_by, r.extend_by, r.expires_at, r.reason, r.state, "               \
    "r.decided_by, r.decided_at, r.note, r.created_at"
#define KW_COLS_DLV                                                                                \
    "d.event_id, d.channel, d.state, d.attempts, d.next_attempt_at, d.delivered_at, "              \
    "d.created_at, d.last_error"
/* watched: every column but seq (what an INSERT names), then all of them (what a SELECT reads) */
#define KW_COLS_WATCHED_INS                                                                        \
    "id, name, provider, owner, contacts, policy, kind, secret_sealed, secret_hint, "              \
    "expires_at, token_url, grant_type, client_id, client_secret_sealed, client_secret_hint, "     \
    "refresh_token_sealed, refresh_token_prev_sealed, refresh_token_hint, refresh_expires_at, "    \
    "scope, auth_method, token_file, access_token_sealed, token_type, token_obtained_ms, "         \
    "token_expires_ms, token_lapse_raised, next_refresh_ms, failures, last_error, last_status, "   \
    "last_attempt_ms, last_success_ms, gen, created_at, updated_at, deleted_at"
#define KW_COLS_WATCHED "seq, " KW_COLS_WATCHED_INS
/* A kw_watched_t *w's values in KW_COLS_WATCHED_INS order, as a store_args.h parameter list
 * (args, nargs): both backends' watched INSERT and UPDATE bind these ($1 / ?1 .. 37). */
#define KW_ARGS_WATCHED(w)                                                                         \
    KW_SQ_ARGS(                                                                                    \
        KW_SQA_TEXT((w)->id), KW_SQA_TEXT((w)->name), KW_SQA_TEXT((w)->provider),                  \
        KW_SQA_TEXT((w)->owner), KW_SQA_TEXT((w)->contacts_json ? (w)->contacts_json : "[]"),      \
        KW_SQA_TEXT((w)->policy), KW_SQA_TEXT((w)->kind), KW_SQA_TEXT((w)->secret_sealed),         \
        KW_SQA_TEXT((w)->secret_hint), KW_SQA_INT((w)->expires_at), KW_SQA_TEXT((w)->token_url),   \
        KW_SQA_TEXT((w)->grant_type), KW_SQA_TEXT((w)->client_id),                                 \
        KW_SQA_TEXT((w)->client_secret_sealed), KW_SQA_TEXT((w)->client_secret_hint),              \
        KW_SQA_TEXT((w)->refresh_token_sealed), KW_SQA_TEXT((w)->refresh_token_prev_sealed),       \
        KW_SQA_TEXT((w)->refresh_token_hint), KW_SQA_INT((w)->refresh_expires_at),                 \
        KW_SQA_TEXT((w)->scope), KW_SQA_TEXT((w)->auth_method), KW_SQA_TEXT((w)->token_file),      \
        KW_SQA_TEXT((w)->access_token_sealed), KW_SQA_TEXT((w)->token_type),                       \
        KW_SQA_INT((w)->token_obtained_ms), KW_SQA_INT((w)->token_expires_ms),                     \
        KW_SQA_INT((w)->token_lapse_raised), KW_SQA_INT((w)->next_refresh_ms),                     \
        KW_SQA_INT((w)->failures), KW_SQA_TEXT((w)->last_error), KW_SQA_INT((w)->last_status),     \
        KW_SQA_INT((w)->last_attempt_ms), KW_SQA_INT((w)->last_success_ms), KW_SQA_INT((w)->gen),  \
        KW_SQA_INT((w)->created_at), KW_SQA_INT((w)->updated_at), KW_SQA_TIME((w)->deleted_at))

/* ---- tables both dialects spell the same way ----
 * Parts of shipped migrations (sqlite*.c, postgres*.c): never edit one, append a migration.
 * seq: the dialect's identity column, i: its integer type, end: what closes a CREATE TABLE
 * (") STRICT;" in SQLite, ");" in PostgreSQL). */

/* The credentials table and its index (sqlite.c, postgres_schema.c); fk: PostgreSQL names
 * the policy constraint (its error mapping reads the name). */
/* clang-format off */
#define KW_DDL_CREDENTIALS(seq, i, fk, end)                                                        \
    "CREATE TABLE credentials ("                                                                   \
    "  seq " seq ","                                                                               \
    "  id TEXT UNIQUE NOT NULL,"                                                                   \
    "  name TEXT NOT NULL,"                                                                        \
    "  owner TEXT,"                                                                                \
    "  scopes TEXT NOT NULL DEFAULT '[]',"                                                         \
    "  cidrs TEXT NOT NULL DEFAULT '[]',"                                                          \
    "  metadata TEXT NOT NULL DEFAULT '{}',"                                                       \
    "  contacts TEXT NOT NULL DEFAULT '[]',"                                                       \
    "  policy TEXT NOT NULL " fk "REFERENCES policies(name),"                                      \
    "  prefix TEXT NOT NULL,"                                                                      \
    "  disabled INTEGER NOT NULL DEFAULT 0,"                                                       \
    "  created_at " i " NOT NULL,"                                                                 \
    "  updated_at " i " NOT NULL,"                                                                 \
    "  deleted_at " i                                                                              \
    ")" end                                                                                        \
    "CREATE INDEX credentials_owner ON credentials(owner, seq) WHERE deleted_at IS NULL;"
/* clang-format on */

/* The watched table and its indexes (sqlite_watched.c, postgres_watched.c). */
/* clang-format off */
#define KW_DDL_WATCHED(seq, i, end)                                                                \
    "CREATE TABLE watched ("                                                                       \
    "  seq " seq ","                                                                               \
    "  id TEXT UNIQUE NOT NULL,"                                                                   \
    "  name TEXT NOT NULL,"                                                                        \
    "  provider TEXT,"                                                                             \
    "  owner TEXT,"                                                                                \
    "  contacts TEXT NOT NULL DEFAULT '[]',"                                                       \
    "  policy TEXT NOT NULL REFERENCES policies(name),"                                            \
    "  kind TEXT NOT NULL CHECK (kind IN ('static', 'oauth2')),"                                   \
    "  secret_sealed TEXT,"                                                                        \
    "  secret_hint TEXT NOT NULL DEFAULT '',"                                                      \
    "  expires_at " i " NOT NULL DEFAULT 0,"                                                       \
    "  token_url TEXT,"                                                                            \
    "  grant_type TEXT NOT NULL DEFAULT '',"                                                       \
    "  client_id TEXT,"                                                                            \
    "  client_secret_sealed TEXT,"                                                                 \
    "  client_secret_hint TEXT NOT NULL DEFAULT '',"                                               \
    "  refresh_token_sealed TEXT,"                                                                 \
    "  refresh_token_prev_sealed TEXT,"                                                            \
    "  refresh_token_hint TEXT NOT NULL DEFAULT '',"                                               \
    "  refresh_expires_at " i " NOT NULL DEFAULT 0,"                                               \
    "  scope TEXT,"                                                                                \
    "  auth_method TEXT NOT NULL DEFAULT '',"                                                      \
    "  token_file TEXT,"                                                                           \
    "  access_token_sealed TEXT,"                                                                  \
    "  token_type TEXT NOT NULL DEFAULT '',"                                                       \
    "  token_obtained_ms " i " NOT NULL DEFAULT 0,"                                                \
    "  token_expires_ms " i " NOT NULL DEFAULT 0,"                                                 \
    "  token_lapse_raised " i " NOT NULL DEFAULT 0,"                                               \
    "  next_refresh_ms " i " NOT NULL DEFAULT 0,"                                                  \
    "  failures " i " NOT NULL DEFAULT 0,"                                                         \
    "  last_error TEXT NOT NULL DEFAULT '',"                                                       \
    "  last_status " i " NOT NULL DEFAULT 0,"                                                      \
    "  last_attempt_ms " i " NOT NULL DEFAULT 0,"                                                  \
    "  last_success_ms " i " NOT NULL DEFAULT 0,"                                                  \
    "  gen " i " NOT NULL DEFAULT 0,"                                                              \
    "  created_at " i " NOT NULL,"                                                                 \
    "  updated_at " i " NOT NULL,"                                                                 \
    "  deleted_at " i ","                                                                          \
    "  next_alert_at " i                                                                           \
    ")" end                                                                                        \
    "CREATE INDEX watched_owner ON watched(owner, seq);"                                           \
    "CREATE INDEX watched_refresh ON watched(next_refresh_ms)"                                     \
    " WHERE kind = 'oauth2' AND deleted_at IS NULL;"                                               \
    "CREATE INDEX watched_alert_due ON watched(next_alert_at) WHERE next_alert_at IS NOT NULL;"
/* clang-format on */

/* The statements of store_notify.h's contract that both backends have, by name, for each
 * backend's statement enum: KW_NOTIFY_STMTS(KW_STMT_ENUM). The SQL differs by dialect (it
 * lives in sqlite_notify.c and postgres_schema.c); each backend adds its own few (how it
 * claims deliveries and counts mail). */
#define KW_STMT_ENUM(name) name,
/* clang-format off */
#define KW_NOTIFY_STMTS(X)                                                                         \
    X(N_ALERT_DUE) X(N_ALERT_DONE) X(N_ALERT_RECORD) X(N_ALERT_NEXT)                               \
    X(N_EV_UNFANNED) X(N_DLV_ADD) X(N_EV_FANNED) X(N_DLV_FINISH) X(N_DLV_RELEASE)                  \
    X(N_EV_LIST) X(N_EV_GET) X(N_DLV_LIST) X(N_EV_RETRY)                                           \
    X(N_CH_ENABLE) X(N_CH_DISABLE) X(N_CH_DISABLED)                                                \
    X(N_ST_OUTBOX) X(N_ST_FAILED) X(N_ST_RENEWALS) X(N_ST_UNFANNED) X(N_ST_ALERTS)
/* clang-format on */

#endif
