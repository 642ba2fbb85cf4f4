/* sqlite_keys.c - the SQLite backend's credentials and keys (store.h): their writes and
 * the constraint failures those refine, lookups, lists, the batched usage counters, event
 * inserts and the startup scans (load_all, secret_scan). Never logs; messages carry sqlite3_errmsg
 * only. */
#include "sqlite_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* cred_list: ?1 after_seq, ?2 owner, ?3 expiring_before, ?4 now, ?5 limit */
#define CRED_LIST_HEAD                                                                             \
    "SELECT " KW_COLS_CRED " FROM credentials c WHERE c.deleted_at IS NULL AND c.seq > ?1"
#define CRED_LIST_OWNER " AND c.owner = ?2"
#define CRED_LIST_EXP                                                                              \
    " AND EXISTS (SELECT 1 FROM keys k WHERE k.cred_id = c.id AND k.live_slot IS NOT NULL"         \
    " AND k.revoked_at IS NULL AND k.expires_at > ?4 AND k.expires_at <= ?3)"
#define CRED_LIST_TAIL " ORDER BY c.seq LIMIT ?5"

enum {
    ST_CRED_INSERT,
    ST_CRED_UPDATE,
    ST_CRED_GET,
    ST_CRED_LIST, /* + 1 with the owner filter, + 2 with the expiring filter */
    ST_CRED_LIST_O,
    ST_CRED_LIST_E,
    ST_CRED_LIST_OE,
    ST_KEY_INSERT,
    ST_KEY_UPDATE,
    ST_KEY_GET,
    ST_KEY_LIST_CRED,
    ST_KEY_EXPIRING,
    ST_USAGE,
    ST_EVENT_INSERT,
    ST_LOAD_CREDS,
    ST_LOAD_CREDS_INDEX,
    ST_LOAD_KEYS,
    ST_LOAD_KEYS_INDEX,
    ST_SECRET_CREDS,
    ST_COUNTS,
    ST__COUNT
};

static kw_sqlite_stmt_t stmts[ST__COUNT] = {
    [ST_CRED_INSERT] = {.sql = "INSERT INTO credentials (id, name, owner, scopes, cidrs, metadata,"
                               " contacts, policy, prefix, disabled, created_at, updated_at,"
                               " deleted_at)"
                               " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"},
    [ST_CRED_UPDATE] = {.sql = "UPDATE credentials SET name = ?2, owner = ?3, scopes = ?4,"
                               " cidrs = ?5, metadata = ?6, contacts = ?7, policy = ?8,"
                               " disabled = ?10, updated_at = ?12, deleted_at = ?13 WHERE id = ?1"},
    [ST_CRED_GET] = {.sql = "SELECT " KW_COLS_CRED " FROM credentials c"
                            " WHERE c.id = ?1 AND c.deleted_at IS NULL"},
    [ST_CRED_LIST] = {.sql = CRED_LIST_HEAD CRED_LIST_TAIL},
    [ST_CRED_LIST_O] = {.sql = CRED_LIST_HEAD CRED_LIST_OWNER CRED_LIST_TAIL},
    [ST_CRED_LIST_E] = {.sql = CRED_LIST_HEAD CRED_LIST_EXP CRED_LIST_TAIL},
    [ST_CRED_LIST_OE] = {.sql = CRED_LIST_HEAD CRED_LIST_OWNER CRED_LIST_EXP CRED_LIST_TAIL},
    [ST_KEY_INSERT] = {.sql = "INSERT INTO keys (id, cred_id, slot, live_slot, hint, digest,"
                              " created_at, expires_at, revoked_at, revoke_reason, last_used_at,"
                              " use_count) VALUES (?1, ?2, ?3, CASE WHEN ?4 THEN ?3 END, ?5, ?6,"
                              " ?7, ?8, ?9, ?10, ?11, ?12)"},
    [ST_KEY_UPDATE] = {.sql =
                           "UPDATE keys SET expires_at = ?2, revoked_at = ?3, revoke_reason = ?4,"
                           " live_slot = CASE WHEN ?5 THEN slot END WHERE id = ?1"},
    [ST_KEY_GET] = {.sql = "SELECT " KW_COLS_KEY " FROM keys k WHERE k.id = ?1"},
    [ST_KEY_LIST_CRED] = {.sql = "SELECT " KW_COLS_KEY " FROM keys k WHERE k.cred_id = ?1"
                                 " ORDER BY k.seq DESC"},
    /* ?1 now, ?2 until, (?3, ?4) cursor: (now, INT64_MAX) when there is none */
    [ST_KEY_EXPIRING] = {.sql = "SELECT " KW_COLS_KEY
                                " FROM keys k JOIN credentials c ON c.id = k.cred_id"
                                " WHERE k.revoked_at IS NULL AND k.live_slot IS NOT NULL"
                                " AND k.expires_at > ?1 AND k.expires_at <= ?2"
                                " AND (k.expires_at, k.seq) > (?3, ?4) AND c.deleted_at IS NULL"
                                " ORDER BY k.expires_at, k.seq LIMIT ?5"},
    [ST_USAGE] =
        {.sql = "UPDATE keys SET use_count = use_count + ?2, last_used_at = CASE WHEN"
                " ?3 > coalesce(last_used_at, 0) THEN ?3 ELSE last_used_at END WHERE id = ?1"},
    [ST_EVENT_INSERT] = {.sql = "INSERT INTO events (id, type, occurred_at, payload)"
                                " VALUES (?1, ?2, ?3, ?4)"},
    /* load_all: two sequential scans in table order, no sort: the index finds each key's
     * credential by id itself (sorting both tables by credential id for a merge took most
     * of a 1 M-key start-up). */
    [ST_LOAD_CREDS] = {.sql = "SELECT " KW_COLS_CRED " FROM credentials c"},
    [ST_LOAD_CREDS_INDEX] = {.sql = "SELECT " KW_COLS_CRED_INDEX " FROM credentials c"},
#define LOAD_KEYS_WHERE                                                                            \
    " FROM keys k WHERE (k.revoked_at IS NULL OR k.revoked_at >= ?1)"                              \
    " AND (k.expires_at IS NULL OR k.expires_at >= ?1)"
    [ST_LOAD_KEYS] = {.sql = "SELECT " KW_COLS_KEY LOAD_KEYS_WHERE},
    [ST_LOAD_KEYS_INDEX] = {.sql = "SELECT " KW_COLS_KEY_INDEX LOAD_KEYS_WHERE},
    /* secret_scan: the rows store_seal.c's holds() could say yes to (its first test) */
    [ST_SECRET_CREDS] = {.sql = "SELECT " KW_COLS_CRED " FROM credentials c"
                                " WHERE instr(c.contacts, '\"secret\"') > 0"},
    [ST_COUNTS] = {.sql = "SELECT (SELECT count(*) FROM credentials), (SELECT count(*) FROM keys)"},
};

/* ---- rows ---- */

/* Fill c from a KW_COLS_CRED row. borrow = 1 points the strings into the statement's row
 * (valid until it is stepped or reset; never free them); borrow = 0 mallocs them. */
static int cred_fill(sqlite3_stmt *st, kw_cred_t *c, int borrow)
{
    char **str[] = {&c->name,       &c->owner,         &c->scopes_json,
                    &c->cidrs_json, &c->metadata_json, &c->contacts_json};
    memset(c, 0, sizeof(*c));
    c->seq = sqlite3_column_int64(st, 0);
    kw_sqlite_col_cpy(st, 1, c->id, sizeof(c->id));
    for (int i = 0; i < 6; i++) {
        if (borrow) {
            *str[i] = (char *)sqlite3_column_text(st, 2 + i);
            if (*str[i] == NULL && sqlite3_column_type(st, 2 + i) != SQLITE_NULL)
                return KW_ENOMEM;
        } else if (kw_sqlite_col_dup(st, 2 + i, str[i])) {
            kw_cred_clear(c);
            return KW_ENOMEM;
        }
    }
    kw_sqlite_col_cpy(st, 8, c->policy, sizeof(c->policy));
    kw_sqlite_col_cpy(st, 9, c->prefix, sizeof(c->prefix));
    c->disabled = sqlite3_column_int(st, 10);
    c->created_at = sqlite3_column_int64(st, 11);
    c->updated_at = sqlite3_column_int64(st, 12);
    c->deleted_at = sqlite3_column_int64(st, 13);
    return 0;
}

static int row_cred(sqlite3_stmt *st, void *out)
{
    return cred_fill(st, out, 0);
}

static void clear_cred(void *c)
{
    kw_cred_clear(c);
}

/* The row type of the credential queries (kw_cred_t rows). */
static const kw_sqlite_rowtype_t CRED_ROWS = {sizeof(kw_cred_t), row_cred, clear_cred};

static const kw_sqlite_query_t q_cred_get = {&stmts[ST_CRED_GET], "credential lookup", &CRED_ROWS,
                                             "id", "credential not found"};
static const kw_sqlite_query_t q_cred_list[4] = {
    {.stmt = &stmts[ST_CRED_LIST], .what = "credential list", .rows = &CRED_ROWS},
    {.stmt = &stmts[ST_CRED_LIST_O], .what = "credential list", .rows = &CRED_ROWS},
    {.stmt = &stmts[ST_CRED_LIST_E], .what = "credential list", .rows = &CRED_ROWS},
    {.stmt = &stmts[ST_CRED_LIST_OE], .what = "credential list", .rows = &CRED_ROWS},
};
static const kw_sqlite_query_t q_key_get = {&stmts[ST_KEY_GET], "key lookup", &kw_sqlite_key_rows,
                                            "id", "key not found"};
static const kw_sqlite_query_t q_key_list = {
    .stmt = &stmts[ST_KEY_LIST_CRED], .what = "key list", .rows = &kw_sqlite_key_rows};
static const kw_sqlite_query_t q_key_expiring = {
    .stmt = &stmts[ST_KEY_EXPIRING], .what = "expiring keys", .rows = &kw_sqlite_key_rows};

static int row_counts(sqlite3_stmt *st, void *out)
{
    int64_t *v = out;
    v[0] = sqlite3_column_int64(st, 0);
    v[1] = sqlite3_column_int64(st, 1);
    return 0;
}

static const kw_sqlite_rowtype_t COUNT_ROWS = {2 * sizeof(int64_t), row_counts, NULL};
static const kw_sqlite_query_t q_counts = {
    .stmt = &stmts[ST_COUNTS], .what = "row counts", .rows = &COUNT_ROWS};

/* ---- constraint failures ---- */

/* How a constraint failure of a write becomes an error, by SQLite's extended code; the
 * last row (xrc 0) is everything else. msg NULL: "store: <what>: " + SQLite's message. */
typedef struct conflict {
    int xrc;
    int code;
    const char *field, *msg;
} conflict_t;

static const conflict_t CRED_CONFLICTS[] = {
    {SQLITE_CONSTRAINT_FOREIGNKEY, KW_EINVAL, "policy", "no such policy"},
    {SQLITE_CONSTRAINT_NOTNULL, KW_EINVAL, NULL, NULL},
    {SQLITE_CONSTRAINT_CHECK, KW_EINVAL, NULL, NULL},
    {SQLITE_CONSTRAINT_DATATYPE, KW_EINVAL, NULL, NULL},
    {0, KW_ECONFLICT, "id", "credential id already exists"},
};

/* the last row: UNIQUE, a repeated id or digest (astronomically unlikely) unless it is the
 * live slot (key_conflict) */
static const conflict_t KEY_CONFLICTS[] = {
    {SQLITE_CONSTRAINT_FOREIGNKEY, KW_ENOTFOUND, "cred_id", "credential not found"},
    {SQLITE_CONSTRAINT_NOTNULL, KW_EINVAL, NULL, NULL},
    {SQLITE_CONSTRAINT_DATATYPE, KW_EINVAL, NULL, NULL},
    {SQLITE_CONSTRAINT_CHECK, KW_ECONFLICT, "slot", "slot must be 1 or 2"},
    {0, KW_ECONFLICT, "id", NULL},
};

static const conflict_t *conflict_find(const conflict_t *t, int xrc)
{
    while (t->xrc != 0 && t->xrc != xrc)
        t++;
    return t;
}

static int conflict_set(kw_sqlite_conn_t *c, const conflict_t *e, const char *what, kw_err_t *err)
{
    if (e->msg)
        return kw_err_set(err, e->code, e->field, "%s", e->msg);
    return kw_err_set(err, e->code, e->field, "store: %s: %s", what, sqlite3_errmsg(c->db));
}

/* ---- credentials ---- */

static int cred_write(kw_sqlite_t *s, kw_cred_t *cin, const kw_cred_t *cup, kw_err_t *err)
{
    const kw_cred_t *c = cin ? cin : cup;
    int rc = kw_sqlite_write(
        s, &stmts[cin ? ST_CRED_INSERT : ST_CRED_UPDATE],
        KW_SQ_ARGS(KW_SQA_TEXT(c->id), KW_SQA_TEXT(c->name), KW_SQA_TEXT(c->owner),
                   KW_SQA_TEXT(c->scopes_json ? c->scopes_json : "[]"),
                   KW_SQA_TEXT(c->cidrs_json ? c->cidrs_json : "[]"),
                   KW_SQA_TEXT(c->metadata_json ? c->metadata_json : "{}"),
                   KW_SQA_TEXT(c->contacts_json ? c->contacts_json : "[]"),
                   KW_SQA_TEXT(c->policy[0] ? c->policy : "default"), KW_SQA_TEXT(c->prefix),
                   KW_SQA_INT(c->disabled != 0), KW_SQA_INT(c->created_at),
                   KW_SQA_INT(c->updated_at), KW_SQA_TIME(c->deleted_at)),
        err, cin ? "credential insert" : "credential update");
    if (rc == KW_ECONFLICT)
        return conflict_set(&s->w, conflict_find(CRED_CONFLICTS, s->w.xrc), "credential", err);
    if (rc)
        return rc;
    if (cin)
        cin->seq = sqlite3_last_insert_rowid(s->w.db);
    else if (sqlite3_changes(s->w.db) == 0)
        rc = kw_err_set(err, KW_ENOTFOUND, "id", "credential not found");
    return rc;
}

int kw_sqlite_cred_insert(kw_store_t *base, kw_cred_t *c, kw_err_t *err)
{
    return cred_write(KW_SQ(base), c, NULL, err);
}

int kw_sqlite_cred_update(kw_store_t *base, const kw_cred_t *c, kw_err_t *err)
{
    return cred_write(KW_SQ(base), NULL, c, err);
}

int kw_sqlite_cred_get(kw_store_t *base, const char *id, kw_cred_t *out, kw_err_t *err)
{
    return kw_sqlite_get(KW_SQ(base), &q_cred_get, KW_SQ_ARGS(KW_SQA_TEXT(id)), out, err);
}

int kw_sqlite_cred_list(kw_store_t *base, const kw_cred_filter_t *f, kw_cred_t **out, size_t *n,
                        kw_err_t *err)
{
    int q = (f->owner ? 1 : 0) + (f->expiring_before ? 2 : 0);
    return kw_sqlite_list(KW_SQ(base), &q_cred_list[q],
                          KW_SQ_ARGS(KW_SQA_INT(f->after_seq), KW_SQA_TEXT(f->owner),
                                     KW_SQA_INT(f->expiring_before), KW_SQA_INT(f->now),
                                     KW_SQA_INT(kw_sqlite_lim(f->limit))),
                          out, n, err);
}

/* ---- keys ---- */

/* Refine a constraint failure of a key write. */
static int key_conflict(kw_sqlite_conn_t *c, kw_err_t *err)
{
    const conflict_t *e = conflict_find(KEY_CONFLICTS, c->xrc);
    if (e->xrc == 0 && strstr(sqlite3_errmsg(c->db), "live_slot"))
        return kw_err_set(err, KW_ECONFLICT, "slot", "slot already holds a live key");
    return conflict_set(c, e, "key", err);
}

int kw_sqlite_key_insert(kw_store_t *base, kw_keyrec_t *k, kw_err_t *err)
{
    kw_sqlite_t *s = KW_SQ(base);
    int rc = kw_sqlite_write(s, &stmts[ST_KEY_INSERT],
                             KW_SQ_ARGS(KW_SQA_TEXT(k->id), KW_SQA_TEXT(k->cred_id),
                                        KW_SQA_INT(k->slot), KW_SQA_INT(k->live != 0),
                                        KW_SQA_TEXT(k->hint), KW_SQA_BLOB(k->digest, KW_DIGEST_LEN),
                                        KW_SQA_INT(k->created_at), KW_SQA_TIME(k->expires_at),
                                        KW_SQA_TIME(k->revoked_at), KW_SQA_OTEXT(k->revoke_reason),
                                        KW_SQA_TIME(k->last_used_at), KW_SQA_INT(k->use_count)),
                             err, "key insert");
    if (rc == KW_ECONFLICT)
        return key_conflict(&s->w, err);
    if (rc == 0)
        k->seq = sqlite3_last_insert_rowid(s->w.db);
    return rc;
}

int kw_sqlite_key_update(kw_store_t *base, const kw_keyrec_t *k, kw_err_t *err)
{
    kw_sqlite_t *s = KW_SQ(base);
    int rc = kw_sqlite_write(s, &stmts[ST_KEY_UPDATE],
                             KW_SQ_ARGS(KW_SQA_TEXT(k->id), KW_SQA_TIME(k->expires_at),
                                        KW_SQA_TIME(k->revoked_at), KW_SQA_OTEXT(k->revoke_reason),
                                        KW_SQA_INT(k->live != 0)),
                             err, "key update");
    if (rc == KW_ECONFLICT)
        return key_conflict(&s->w, err);
    if (rc == 0 && sqlite3_changes(s->w.db) == 0)
        rc = kw_err_set(err, KW_ENOTFOUND, "id", "key not found");
    return rc;
}

int kw_sqlite_key_get(kw_store_t *base, const char *id, kw_keyrec_t *out, kw_err_t *err)
{
    return kw_sqlite_get(KW_SQ(base), &q_key_get, KW_SQ_ARGS(KW_SQA_TEXT(id)), out, err);
}

int kw_sqlite_key_list_cred(kw_store_t *base, const char *cred_id, kw_keyrec_t **out, size_t *n,
                            kw_err_t *err)
{
    return kw_sqlite_list(KW_SQ(base), &q_key_list, KW_SQ_ARGS(KW_SQA_TEXT(cred_id)), out, n, err);
}

int kw_sqlite_key_expiring(kw_store_t *base, int64_t now, int64_t until, int64_t after_exp,
                           int64_t after_seq, size_t limit, kw_keyrec_t **out, size_t *n,
                           kw_err_t *err)
{
    if (after_exp <= 0) {
        /* (expires_at, seq) > (now, max) is exactly expires_at > now: one statement. */
        after_exp = now;
        after_seq = INT64_MAX;
    }
    return kw_sqlite_list(KW_SQ(base), &q_key_expiring,
                          KW_SQ_ARGS(KW_SQA_INT(now), KW_SQA_INT(until), KW_SQA_INT(after_exp),
                                     KW_SQA_INT(after_seq), KW_SQA_INT(kw_sqlite_lim(limit))),
                          out, n, err);
}

/* ---- usage, events, counts ---- */

int kw_sqlite_usage_apply(kw_store_t *base, const kw_usage_t *u, size_t n, kw_err_t *err)
{
    kw_sqlite_t *s = KW_SQ(base);
    int rc = kw_sqlite_begin(base, err);
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = kw_sqlite_run(&s->w, &stmts[ST_USAGE],
                           KW_SQ_ARGS(KW_SQA_TEXT(u[i].key_id), KW_SQA_INT(u[i].delta),
                                      KW_SQA_INT(u[i].last_used)),
                           err, "usage update");
    if (rc) {
        kw_sqlite_rollback(base); /* a no-op when begin failed */
        return rc;
    }
    return kw_sqlite_commit(base, err);
}

int kw_sqlite_event_insert(kw_store_t *base, const char *id, const char *type, int64_t occurred_at,
                           const char *payload_json, kw_err_t *err)
{
    int rc = kw_sqlite_write(KW_SQ(base), &stmts[ST_EVENT_INSERT],
                             KW_SQ_ARGS(KW_SQA_TEXT(id), KW_SQA_TEXT(type), KW_SQA_INT(occurred_at),
                                        KW_SQA_TEXT(payload_json)),
                             err, "event insert");
    if (rc == KW_ECONFLICT)
        rc = kw_err_set(err, KW_ECONFLICT, "id", "event id already exists");
    return rc;
}

int kw_sqlite_counts(kw_store_t *base, int64_t *creds, int64_t *keys, kw_err_t *err)
{
    int64_t v[2];
    int rc = kw_sqlite_get(KW_SQ(base), &q_counts, KW_SQ_NOARGS, v, err);
    if (rc == KW_ENOTFOUND)
        return kw_err_set(err, KW_ESTORE, NULL, "row counts: no row");
    if (rc == 0) {
        *creds = v[0];
        *keys = v[1];
    }
    return rc;
}

/* ---- load_all, secret_scan ---- */

/* load_all (creds = ST_LOAD_CREDS, or ST_LOAD_CREDS_INDEX when slim, with the keys of
 * ST_LOAD_KEYS_INDEX) or secret_scan
 * (ST_SECRET_CREDS: only the credentials pass, of the rows whose contacts name a "secret"). */
static int load_scan(kw_store_t *base, int creds, int64_t retain_since, kw_store_load_cb cb,
                     void *ud, kw_err_t *err)
{
    int secrets = creds == ST_SECRET_CREDS;
    kw_sqlite_t *s = KW_SQ(base);
    kw_sqlite_conn_t *c = kw_sqlite_rd_begin(s);
    sqlite3_stmt *cs = NULL, *ks = NULL;
    /* One read transaction: both scans see the same snapshot. */
    int began = kw_sqlite_read_begin(s, c, err);
    int rc = began < 0 ? began : 0;
    if (rc == 0)
        rc = kw_sqlite_prep(c, &stmts[creds], &cs, err);
    if (rc == 0 && !secrets)
        rc = kw_sqlite_prep(
            c, &stmts[creds == ST_LOAD_CREDS_INDEX ? ST_LOAD_KEYS_INDEX : ST_LOAD_KEYS], &ks, err);
    if (rc == 0 && !secrets)
        rc = kw_sqlite_bind(c, ks, KW_SQ_ARGS(KW_SQA_INT(retain_since)), err);
    if (rc)
        goto out;
    /* every credential first (cred_fill borrows the row's text: no copy per row) */
    while ((rc = kw_sqlite_step(c, cs, err, "load credentials")) == SQLITE_ROW) {
        kw_cred_t cr;
        if (cred_fill(cs, &cr, 1)) {
            rc = kw_err_set(err, KW_ENOMEM, NULL, NULL);
            goto out;
        }
        if ((rc = cb(ud, &cr, NULL, 0)) != 0)
            goto out;
    }
    if (rc == SQLITE_DONE)
        rc = 0;
    if (rc || secrets)
        goto out;
    /* then every kept key, one per call */
    while ((rc = kw_sqlite_step(c, ks, err, "load keys")) == SQLITE_ROW) {
        kw_keyrec_t k;
        kw_sqlite_row_key(ks, &k);
        if ((rc = cb(ud, NULL, &k, 1)) != 0)
            goto out;
    }
    if (rc == SQLITE_DONE)
        rc = 0;
out:
    kw_sqlite_done(cs);
    kw_sqlite_done(ks);
    kw_sqlite_read_end(c, began > 0);
    if (c == &s->r)
        kw_sqlite_unmap(c);
    kw_sqlite_rd_end(s, c);
    return rc;
}

int kw_sqlite_load_all(kw_store_t *base, int64_t retain_since, int slim, kw_store_load_cb cb,
                       void *ud, kw_err_t *err)
{
    return load_scan(base, slim ? ST_LOAD_CREDS_INDEX : ST_LOAD_CREDS, retain_since, cb, ud, err);
}

int kw_sqlite_secret_scan(kw_store_t *base, kw_store_load_cb cb, void *ud, kw_err_t *err)
{
    return load_scan(base, ST_SECRET_CREDS, 0, cb, ud, err);
}
