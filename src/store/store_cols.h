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

#endif
