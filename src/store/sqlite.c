/* sqlite.c - the SQLite store backend: one file in WAL mode, a writer connection used only
 * by the thread holding the write transaction and a reader connection for every other
 * thread. It never logs, and its error messages carry sqlite3_errmsg only, never values. */
#include "store_impl.h"
#include "store_notify.h"
#include "store_session.h"
#include "store_watched.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SQ_BUSY_TIMEOUT_MS 5000
/* WAL checkpoints (see sq_wal_hook): a background thread copies the WAL back into the
 * database each time it has grown by SQ_CKPT_PAGES pages; a commit finishes the job inline
 * only when the WAL reaches SQ_CKPT_INLINE_PAGES anyway. */
#define SQ_CKPT_PAGES 1000
#define SQ_CKPT_INLINE_PAGES 8000
#define SQ_READER_MMAP_BYTES (256LL << 20) /* startup load reads the whole file */

/* ---- schema ------------------------------------------------------------------------- */

/* Migration 1: everything. Later migrations append to `migrations[]`, never edit this one.
 * STRICT tables make SQLite refuse a value of the wrong type instead of storing it. */
static const char MIGRATION_1[] =
    "CREATE TABLE meta ("
    "  key TEXT PRIMARY KEY,"
    "  value TEXT NOT NULL"
    ") STRICT;"

    "CREATE TABLE policies ("
    "  name TEXT PRIMARY KEY,"
    "  default_lifetime INTEGER NOT NULL,"
    "  max_lifetime INTEGER NOT NULL,"
    "  allow_never_expire INTEGER NOT NULL DEFAULT 0,"
    "  renewable INTEGER NOT NULL DEFAULT 1,"
    "  renewal_requires_approval INTEGER NOT NULL DEFAULT 0,"
    "  thresholds TEXT NOT NULL DEFAULT ''," /* comma-separated seconds, descending */
    "  max_roll_overlap INTEGER NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL"
    ") STRICT;"

    /* AUTOINCREMENT: seq is a list cursor, so it must never be reused. */
    "CREATE TABLE credentials ("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  id TEXT UNIQUE NOT NULL,"
    "  name TEXT NOT NULL,"
    "  owner TEXT,"
    "  scopes TEXT NOT NULL DEFAULT '[]',"
    "  cidrs TEXT NOT NULL DEFAULT '[]',"
    "  metadata TEXT NOT NULL DEFAULT '{}',"
    "  contacts TEXT NOT NULL DEFAULT '[]',"
    "  policy TEXT NOT NULL REFERENCES policies(name),"
    "  prefix TEXT NOT NULL,"
    "  disabled INTEGER NOT NULL DEFAULT 0,"
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL,"
    "  deleted_at INTEGER"
    ") STRICT;"
    "CREATE INDEX credentials_owner ON credentials(owner, seq) WHERE deleted_at IS NULL;"

    /* live_slot = slot while the key occupies its slot, NULL otherwise. UNIQUE treats
     * NULLs as distinct, so UNIQUE(cred_id, live_slot) allows any number of retired keys
     * but at most one live key per (credential, slot): the two-key rule, in the schema. */
    "CREATE TABLE keys ("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  id TEXT UNIQUE NOT NULL,"
    "  cred_id TEXT NOT NULL REFERENCES credentials(id),"
    "  slot INTEGER NOT NULL CHECK (slot IN (1, 2)),"
    "  live_slot INTEGER CHECK (live_slot IS NULL OR live_slot = slot),"
    "  hint TEXT NOT NULL,"
    "  digest BLOB UNIQUE NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  expires_at INTEGER," /* NULL = never */
    "  revoked_at INTEGER,"
    "  revoke_reason TEXT,"
    "  last_used_at INTEGER,"
    "  use_count INTEGER NOT NULL DEFAULT 0,"
    "  UNIQUE (cred_id, live_slot)"
    ") STRICT;"
    "CREATE INDEX keys_cred ON keys(cred_id, seq DESC);"
    "CREATE INDEX keys_expiring ON keys(expires_at) WHERE revoked_at IS NULL;"

    /* The outbox (SPEC §6): written in the transaction of the change that caused it. */
    "CREATE TABLE events ("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  id TEXT UNIQUE NOT NULL,"
    "  type TEXT NOT NULL,"
    "  occurred_at INTEGER NOT NULL,"
    "  payload TEXT NOT NULL"
    ") STRICT;"
    "CREATE TABLE deliveries ("
    "  event_id TEXT NOT NULL REFERENCES events(id),"
    "  channel TEXT NOT NULL,"
    "  state TEXT NOT NULL DEFAULT 'pending',"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  next_attempt_at INTEGER,"
    "  last_error TEXT,"
    "  delivered_at INTEGER,"
    "  PRIMARY KEY (event_id, channel)"
    ") STRICT;"
    "CREATE INDEX deliveries_due ON deliveries(next_attempt_at) WHERE state = 'pending';"

    "CREATE TABLE renewals ("
    "  id TEXT PRIMARY KEY,"
    "  key_id TEXT NOT NULL REFERENCES keys(id),"
    "  requested_by TEXT NOT NULL,"
    "  extend_by INTEGER,"
    "  expires_at INTEGER,"
    "  reason TEXT,"
    "  state TEXT NOT NULL DEFAULT 'pending',"
    "  decided_by TEXT,"
    "  decided_at INTEGER,"
    "  note TEXT,"
    "  created_at INTEGER NOT NULL"
    ") STRICT;"
    "CREATE INDEX renewals_state ON renewals(state, created_at);"
    "CREATE INDEX renewals_key ON renewals(key_id);"

    /* SPEC §7: each record's hash covers its content and prev_hash. */
    "CREATE TABLE audit ("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  at INTEGER NOT NULL,"
    "  actor TEXT NOT NULL,"
    "  action TEXT NOT NULL,"
    "  target TEXT,"
    "  outcome TEXT NOT NULL,"
    "  detail TEXT,"
    "  prev_hash BLOB,"
    "  hash BLOB NOT NULL"
    ") STRICT;";

/* Migration 2: audit filters (GET /v1/audit?target=|actor=) and the renewal list order. */
static const char MIGRATION_2[] = "CREATE INDEX audit_target ON audit(target, seq);"
                                  "CREATE INDEX audit_actor ON audit(actor, seq);"
                                  "CREATE INDEX renewals_order ON renewals(created_at, id);";

static const struct {
    int version;
    const char *sql;
} migrations[] = {
    {1, MIGRATION_1},
    {2, MIGRATION_2},
    {3, kw_sqlite_notify_migration},  /* alerts and deliveries: sqlite_notify.c */
    {4, kw_sqlite_oauth_migration},   /* oauth: token_lifetime, revoked tokens (sqlite_oauth.c) */
    {5, kw_sqlite_session_migration}, /* console: sessions (sqlite_session.c) */
    /* security: a new key is armed with -(its creation time), so a threshold crossed while
     * the service was down before the first look is raised late, not skipped */
    {6, "DROP TRIGGER keys_alert_arm_insert;"
        "CREATE TRIGGER keys_alert_arm_insert AFTER INSERT ON keys"
        " WHEN NEW.expires_at IS NOT NULL AND NEW.revoked_at IS NULL"
        " BEGIN UPDATE keys SET next_alert_at = -NEW.created_at WHERE seq = NEW.seq; END;"},
    {7, kw_sqlite_watched_migration}, /* watched: watched credentials, their alerts */
};
#define SQ_SCHEMA_VERSION 7

/* ---- statements --------------------------------------------------------------------- */

enum {
    ST_BEGIN_IMMEDIATE,
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_SAVEPOINT,
    ST_RELEASE,
    ST_ROLLBACK_TO,
    ST_META_GET,
    ST_META_SET,
    ST_POLICY_GET,
    ST_POLICY_INSERT,
    ST_POLICY_UPDATE,
    ST_POLICY_LIST,
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
    ST_LOAD_KEYS,
    ST_AUDIT_INSERT,
    ST_AUDIT_HEAD,
    ST_COUNTS,
    ST_AUDIT_SCAN,
    ST_REN_INSERT,
    ST_REN_UPDATE,
    ST_REN_GET,
    ST_REN_STALE,
    ST__COUNT
};

#define POLICY_COLS                                                                                \
    "name, default_lifetime, max_lifetime, allow_never_expire, renewable, "                        \
    "renewal_requires_approval, thresholds, max_roll_overlap, created_at, updated_at, "            \
    "token_lifetime"
#define CRED_COLS                                                                                  \
    "c.seq, c.id, c.name, c.owner, c.scopes, c.cidrs, c.metadata, c.contacts, c.policy, "          \
    "c.prefix, c.disabled, c.created_at, c.updated_at, c.deleted_at"
#define KEY_COLS                                                                                   \
    "k.seq, k.id, k.cred_id, k.slot, k.live_slot, k.hint, k.digest, k.created_at, "                \
    "k.expires_at, k.revoked_at, k.revoke_reason, k.last_used_at, k.use_count"

#define AUDIT_COLS "seq, at, actor, action, target, outcome, detail, prev_hash, hash"
#define REN_COLS                                                                                   \
    "id, key_id, requested_by, extend_by, expires_at, reason, state, decided_by, "                 \
    "decided_at, note, created_at"
#define REN_COLS_R                                                                                 \
    "r.id, r.key_id, r.requested_by, r.extend_by, r.expires_at, r.reason, r.state, "               \
    "r.decided_by, r.decided_at, r.note, r.created_at"

/* cred_list: ?1 after_seq, ?2 owner, ?3 expiring_before, ?4 now, ?5 limit */
#define CRED_LIST_HEAD                                                                             \
    "SELECT " CRED_COLS " FROM credentials c WHERE c.deleted_at IS NULL AND c.seq > ?1"
#define CRED_LIST_OWNER " AND c.owner = ?2"
#define CRED_LIST_EXP                                                                              \
    " AND EXISTS (SELECT 1 FROM keys k WHERE k.cred_id = c.id AND k.live_slot IS NOT NULL"         \
    " AND k.revoked_at IS NULL AND k.expires_at > ?4 AND k.expires_at <= ?3)"
#define CRED_LIST_TAIL " ORDER BY c.seq LIMIT ?5"

static const char *const stmt_sql[ST__COUNT] = {
    [ST_BEGIN_IMMEDIATE] = "BEGIN IMMEDIATE",
    [ST_BEGIN] = "BEGIN",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_SAVEPOINT] = "SAVEPOINT op",
    [ST_RELEASE] = "RELEASE op",
    [ST_ROLLBACK_TO] = "ROLLBACK TO op",
    [ST_META_GET] = "SELECT value FROM meta WHERE key = ?1",
    [ST_META_SET] = "INSERT INTO meta (key, value) VALUES (?1, ?2)"
                    " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    [ST_POLICY_GET] = "SELECT " POLICY_COLS " FROM policies WHERE name = ?1",
    [ST_POLICY_INSERT] = "INSERT INTO policies (" POLICY_COLS ")"
                         " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    [ST_POLICY_UPDATE] = "UPDATE policies SET default_lifetime = ?2, max_lifetime = ?3,"
                         " allow_never_expire = ?4, renewable = ?5,"
                         " renewal_requires_approval = ?6, thresholds = ?7,"
                         " max_roll_overlap = ?8, updated_at = ?10, token_lifetime = ?11"
                         " WHERE name = ?1",
    [ST_POLICY_LIST] = "SELECT " POLICY_COLS " FROM policies ORDER BY name",
    [ST_CRED_INSERT] = "INSERT INTO credentials (id, name, owner, scopes, cidrs, metadata,"
                       " contacts, policy, prefix, disabled, created_at, updated_at,"
                       " deleted_at)"
                       " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    [ST_CRED_UPDATE] = "UPDATE credentials SET name = ?2, owner = ?3, scopes = ?4,"
                       " cidrs = ?5, metadata = ?6, contacts = ?7, policy = ?8,"
                       " disabled = ?10, updated_at = ?12, deleted_at = ?13 WHERE id = ?1",
    [ST_CRED_GET] = "SELECT " CRED_COLS " FROM credentials c"
                    " WHERE c.id = ?1 AND c.deleted_at IS NULL",
    [ST_CRED_LIST] = CRED_LIST_HEAD CRED_LIST_TAIL,
    [ST_CRED_LIST_O] = CRED_LIST_HEAD CRED_LIST_OWNER CRED_LIST_TAIL,
    [ST_CRED_LIST_E] = CRED_LIST_HEAD CRED_LIST_EXP CRED_LIST_TAIL,
    [ST_CRED_LIST_OE] = CRED_LIST_HEAD CRED_LIST_OWNER CRED_LIST_EXP CRED_LIST_TAIL,
    [ST_KEY_INSERT] = "INSERT INTO keys (id, cred_id, slot, live_slot, hint, digest,"
                      " created_at, expires_at, revoked_at, revoke_reason, last_used_at,"
                      " use_count) VALUES (?1, ?2, ?3, CASE WHEN ?4 THEN ?3 END, ?5, ?6,"
                      " ?7, ?8, ?9, ?10, ?11, ?12)",
    [ST_KEY_UPDATE] = "UPDATE keys SET expires_at = ?2, revoked_at = ?3, revoke_reason = ?4,"
                      " live_slot = CASE WHEN ?5 THEN slot END WHERE id = ?1",
    [ST_KEY_GET] = "SELECT " KEY_COLS " FROM keys k WHERE k.id = ?1",
    [ST_KEY_LIST_CRED] = "SELECT " KEY_COLS " FROM keys k WHERE k.cred_id = ?1"
                         " ORDER BY k.seq DESC",
    /* ?1 now, ?2 until, (?3, ?4) cursor: (now, INT64_MAX) when there is none */
    [ST_KEY_EXPIRING] = "SELECT " KEY_COLS " FROM keys k JOIN credentials c ON c.id = k.cred_id"
                        " WHERE k.revoked_at IS NULL AND k.live_slot IS NOT NULL"
                        " AND k.expires_at > ?1 AND k.expires_at <= ?2"
                        " AND (k.expires_at, k.seq) > (?3, ?4) AND c.deleted_at IS NULL"
                        " ORDER BY k.expires_at, k.seq LIMIT ?5",
    [ST_USAGE] = "UPDATE keys SET use_count = use_count + ?2, last_used_at = CASE WHEN"
                 " ?3 > coalesce(last_used_at, 0) THEN ?3 ELSE last_used_at END WHERE id = ?1",
    [ST_EVENT_INSERT] = "INSERT INTO events (id, type, occurred_at, payload)"
                        " VALUES (?1, ?2, ?3, ?4)",
    /* load_all: two sequential scans in table order, no sort: the index finds each key's
     * credential by id itself (sorting both tables by credential id for a merge took most
     * of a 1 M-key start-up). */
    [ST_LOAD_CREDS] = "SELECT " CRED_COLS " FROM credentials c",
    [ST_LOAD_KEYS] = "SELECT " KEY_COLS " FROM keys k"
                     " WHERE (k.revoked_at IS NULL OR k.revoked_at >= ?1)"
                     " AND (k.expires_at IS NULL OR k.expires_at >= ?1)",
    [ST_AUDIT_INSERT] = "INSERT INTO audit (seq, at, actor, action, target, outcome, detail,"
                        " prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    [ST_AUDIT_HEAD] = "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
    [ST_COUNTS] = "SELECT (SELECT count(*) FROM credentials), (SELECT count(*) FROM keys)",
    [ST_AUDIT_SCAN] = "SELECT " AUDIT_COLS " FROM audit ORDER BY seq",
    [ST_REN_INSERT] = "INSERT INTO renewals (" REN_COLS ")"
                      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    [ST_REN_UPDATE] = "UPDATE renewals SET state = ?7, decided_by = ?8, decided_at = ?9,"
                      " note = ?10 WHERE id = ?1",
    [ST_REN_GET] = "SELECT " REN_COLS " FROM renewals WHERE id = ?1",
    /* pending requests whose key was revoked or has expired */
    [ST_REN_STALE] = "SELECT " REN_COLS_R " FROM renewals r JOIN keys k ON k.id = r.key_id"
                     " WHERE r.state = 'pending' AND (k.revoked_at IS NOT NULL"
                     " OR (k.expires_at IS NOT NULL AND k.expires_at <= ?1))"
                     " ORDER BY r.created_at, r.id LIMIT ?2",
};

/* ---- connections and locking -------------------------------------------------------- */

typedef struct sq_conn {
    sqlite3 *db;
    sqlite3_stmt *st[ST__COUNT]; /* prepared on first use, reset after each */
    int xrc;                     /* extended code of the last failed step */
    int failed;                  /* a backend error since begin: commit must not */
    int in_sp;                   /* inside the savepoint of kw_store_savepoint */
    char failmsg[96];            /* its sqlite3_errmsg, for the commit error */
} sq_conn_t;

typedef struct kw_sqlite {
    struct kw_store base; /* first: kw_store_t * <-> kw_sqlite_t * */
    char *path;
    sq_conn_t w; /* writer: only the thread holding wmu uses it */
    sq_conn_t r; /* reader: any thread, under rmu */
    pthread_mutex_t wmu, rmu;
    _Atomic uint64_t owner; /* thread id holding the write transaction, 0 = none */
    /* checkpointer: its own connection and thread, woken by sq_wal_hook (under ckmu) */
    sqlite3 *ckdb;
    pthread_t ckth;
    pthread_mutex_t ckmu;
    pthread_cond_t ckcv;
    int ck_started, ck_stop, ck_due;
    int ck_next; /* WAL pages at which to wake it next (writer only) */
} kw_sqlite_t;

#define SQ(base) ((kw_sqlite_t *)(void *)(base))

/* A small process-unique id per thread: pthread_t cannot be compared atomically, and the
 * owner test runs on threads that do not hold the lock. */
static _Atomic uint64_t next_thread_id = 1;
static _Thread_local uint64_t thread_id;

static uint64_t self_id(void)
{
    if (thread_id == 0)
        thread_id = atomic_fetch_add(&next_thread_id, 1);
    return thread_id;
}

static int in_tx(kw_sqlite_t *s)
{
    /* Only this thread ever stores its own id, so a relaxed load is exact for the question
     * "do I hold it?" whatever other threads are doing. */
    return atomic_load_explicit(&s->owner, memory_order_relaxed) == self_id();
}

/* The connection for a read: the writer inside our own transaction (to see its writes),
 * otherwise the reader under its mutex. Pair with rd_end. */
static sq_conn_t *rd_begin(kw_sqlite_t *s)
{
    if (in_tx(s))
        return &s->w;
    pthread_mutex_lock(&s->rmu);
    return &s->r;
}

static void rd_end(kw_sqlite_t *s, sq_conn_t *c)
{
    if (c == &s->r)
        pthread_mutex_unlock(&s->rmu);
}

static int wr_conn(kw_sqlite_t *s, sq_conn_t **out, kw_err_t *err)
{
    if (!in_tx(s))
        return kw_err_set(err, KW_EINTERNAL, NULL, "store: write outside a transaction");
    *out = &s->w;
    return 0;
}

/* ---- small helpers ------------------------------------------------------------------ */

/* Map a failed SQLite call on c to KW_E*. The message is sqlite3_errmsg (it names tables
 * and columns, never values). Constraint failures are KW_ECONFLICT unless refined. */
static int sq_err(sq_conn_t *c, int rc, kw_err_t *err, const char *what)
{
    const char *msg = c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc);
    if ((rc & 0xff) == SQLITE_CONSTRAINT)
        return kw_err_set(err, KW_ECONFLICT, NULL, "store: %s: %s", what, msg);
    /* Anything else may have left the transaction half done (SQLite rolls back either the
     * statement or all of it, its choice): commit will refuse. */
    if (!c->failed)
        snprintf(c->failmsg, sizeof(c->failmsg), "%s", msg);
    c->failed = 1;
    if ((rc & 0xff) == SQLITE_NOMEM)
        return kw_err_set(err, KW_ENOMEM, NULL, "store: %s: out of memory", what);
    return kw_err_set(err, KW_ESTORE, NULL, "store: %s failed: %s", what, msg);
}

static int sq_prep(sq_conn_t *c, int id, sqlite3_stmt **out, kw_err_t *err)
{
    if (c->st[id] == NULL) {
        int rc = sqlite3_prepare_v3(c->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &c->st[id],
                                    NULL);
        if (rc != SQLITE_OK) {
            c->st[id] = NULL;
            return sq_err(c, rc, err, "prepare");
        }
    }
    *out = c->st[id];
    return 0;
}

/* Return a cached statement to its idle state; NULL allowed. */
static void sq_done(sqlite3_stmt *st)
{
    if (st) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    }
}

/* Step once: SQLITE_ROW or SQLITE_DONE, or a negative KW_E* with *err set. */
static int sq_step(sq_conn_t *c, sqlite3_stmt *st, kw_err_t *err, const char *what)
{
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW || rc == SQLITE_DONE)
        return rc;
    c->xrc = sqlite3_extended_errcode(c->db);
    return sq_err(c, rc, err, what);
}

static int sq_bound(sq_conn_t *c, int b, kw_err_t *err)
{
    return b == SQLITE_OK ? 0 : sq_err(c, b, err, "bind");
}

/* Run one cached statement that returns no rows. */
static int sq_run(sq_conn_t *c, int id, kw_err_t *err, const char *what)
{
    sqlite3_stmt *st = NULL;
    int rc = sq_prep(c, id, &st, err);
    if (rc)
        return rc;
    rc = sq_step(c, st, err, what);
    sq_done(st);
    return rc < 0 ? rc : 0;
}

static int bind_text(sqlite3_stmt *st, int i, const char *v)
{
    return v ? sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC) : sqlite3_bind_null(st, i);
}

/* Times and reasons: 0 / "" in the structs is NULL in SQL. */
static int bind_time(sqlite3_stmt *st, int i, int64_t v)
{
    return v ? sqlite3_bind_int64(st, i, v) : sqlite3_bind_null(st, i);
}

static int bind_opt_text(sqlite3_stmt *st, int i, const char *v)
{
    return v && *v ? bind_text(st, i, v) : sqlite3_bind_null(st, i);
}

static void col_cpy(sqlite3_stmt *st, int i, char *buf, size_t n)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    size_t len = t ? (size_t)sqlite3_column_bytes(st, i) : 0;
    if (len >= n)
        len = n - 1; /* cannot happen for values this store wrote from the same structs */
    if (len)
        memcpy(buf, t, len);
    buf[len] = '\0';
}

static int col_dup(sqlite3_stmt *st, int i, char **out)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    *out = NULL;
    if (t == NULL)
        return sqlite3_column_type(st, i) == SQLITE_NULL ? 0 : KW_ENOMEM;
    *out = strdup((const char *)t);
    return *out ? 0 : KW_ENOMEM;
}

/* Grow *a (elements of size el) to hold at least need; 0 or KW_ENOMEM. */
static int grow(void **a, size_t *cap, size_t need, size_t el)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 16;
    while (ncap < need)
        ncap *= 2;
    void *p = realloc(*a, ncap * el);
    if (p == NULL)
        return KW_ENOMEM;
    *a = p;
    *cap = ncap;
    return 0;
}

/* ---- row codecs --------------------------------------------------------------------- */

static void thresholds_format(const kw_policy_t *p, char *buf, size_t n)
{
    size_t off = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < p->nthresholds && i < KW_MAX_THRESHOLDS && off < n; i++)
        off += (size_t)snprintf(buf + off, n - off, "%s%lld", i ? "," : "",
                                (long long)p->thresholds[i]);
}

static void thresholds_parse(const char *s, kw_policy_t *p)
{
    p->nthresholds = 0;
    while (s && *s && p->nthresholds < KW_MAX_THRESHOLDS) {
        char *end;
        long long v = strtoll(s, &end, 10);
        if (end == s)
            break;
        p->thresholds[p->nthresholds++] = v;
        if (*end != ',')
            break;
        s = end + 1;
    }
}

static void row_policy(sqlite3_stmt *st, kw_policy_t *p)
{
    memset(p, 0, sizeof(*p));
    col_cpy(st, 0, p->name, sizeof(p->name));
    p->default_lifetime = sqlite3_column_int64(st, 1);
    p->max_lifetime = sqlite3_column_int64(st, 2);
    p->allow_never_expire = sqlite3_column_int(st, 3);
    p->renewable = sqlite3_column_int(st, 4);
    p->renewal_requires_approval = sqlite3_column_int(st, 5);
    thresholds_parse((const char *)sqlite3_column_text(st, 6), p);
    p->max_roll_overlap = sqlite3_column_int64(st, 7);
    p->created_at = sqlite3_column_int64(st, 8);
    p->updated_at = sqlite3_column_int64(st, 9);
    p->token_lifetime = sqlite3_column_int64(st, 10);
}

/* Fill c from a CRED_COLS row. borrow = 1 points the strings into the statement's row
 * (valid until it is stepped or reset; never free them); borrow = 0 mallocs them. */
static int row_cred(sqlite3_stmt *st, kw_cred_t *c, int borrow)
{
    char **str[] = {&c->name,       &c->owner,         &c->scopes_json,
                    &c->cidrs_json, &c->metadata_json, &c->contacts_json};
    memset(c, 0, sizeof(*c));
    c->seq = sqlite3_column_int64(st, 0);
    col_cpy(st, 1, c->id, sizeof(c->id));
    for (int i = 0; i < 6; i++) {
        if (borrow) {
            *str[i] = (char *)sqlite3_column_text(st, 2 + i);
            if (*str[i] == NULL && sqlite3_column_type(st, 2 + i) != SQLITE_NULL)
                return KW_ENOMEM;
        } else if (col_dup(st, 2 + i, str[i])) {
            kw_cred_clear(c);
            return KW_ENOMEM;
        }
    }
    col_cpy(st, 8, c->policy, sizeof(c->policy));
    col_cpy(st, 9, c->prefix, sizeof(c->prefix));
    c->disabled = sqlite3_column_int(st, 10);
    c->created_at = sqlite3_column_int64(st, 11);
    c->updated_at = sqlite3_column_int64(st, 12);
    c->deleted_at = sqlite3_column_int64(st, 13);
    return 0;
}

static void row_key(sqlite3_stmt *st, kw_keyrec_t *k)
{
    memset(k, 0, sizeof(*k));
    k->seq = sqlite3_column_int64(st, 0);
    col_cpy(st, 1, k->id, sizeof(k->id));
    col_cpy(st, 2, k->cred_id, sizeof(k->cred_id));
    k->slot = sqlite3_column_int(st, 3);
    k->live = sqlite3_column_type(st, 4) != SQLITE_NULL;
    col_cpy(st, 5, k->hint, sizeof(k->hint));
    const void *d = sqlite3_column_blob(st, 6);
    size_t dn = (size_t)sqlite3_column_bytes(st, 6);
    if (d)
        memcpy(k->digest, d, dn < KW_DIGEST_LEN ? dn : KW_DIGEST_LEN);
    k->created_at = sqlite3_column_int64(st, 7);
    k->expires_at = sqlite3_column_int64(st, 8);
    k->revoked_at = sqlite3_column_int64(st, 9);
    col_cpy(st, 10, k->revoke_reason, sizeof(k->revoke_reason));
    k->last_used_at = sqlite3_column_int64(st, 11);
    k->use_count = sqlite3_column_int64(st, 12);
}

/* ---- open, migrate, close ----------------------------------------------------------- */

static void conn_close(sq_conn_t *c)
{
    for (int i = 0; i < ST__COUNT; i++) {
        sqlite3_finalize(c->st[i]);
        c->st[i] = NULL;
    }
    sqlite3_close_v2(c->db); /* NULL is a no-op */
    c->db = NULL;
}

static int conn_exec(sq_conn_t *c, const char *sql, kw_err_t *err, const char *what)
{
    int rc = sqlite3_exec(c->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : sq_err(c, rc, err, what);
}

/* One-row, one-column query into an int64 (0 when there is no row). */
static int conn_int(sq_conn_t *c, const char *sql, int64_t *out, kw_err_t *err, const char *what)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(c->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK) {
        rc = sq_err(c, rc, err, what);
        goto out;
    }
    rc = sq_step(c, st, err, what);
    if (rc < 0)
        goto out;
    *out = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    rc = 0;
out:
    sqlite3_finalize(st);
    return rc;
}

static int conn_open(sq_conn_t *c, const char *path, int writer, kw_err_t *err)
{
    int flags = SQLITE_OPEN_NOMUTEX |
                (writer ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE : SQLITE_OPEN_READONLY);
    /* Our own mutexes serialise each connection, so SQLite's (NOMUTEX) would be waste. */
    int rc = sqlite3_open_v2(path, &c->db, flags, NULL);
    if (rc != SQLITE_OK) {
        return kw_err_set(err, KW_ESTORE, "store", "store: cannot open %s: %s", path,
                          c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
    }
    sqlite3_extended_result_codes(c->db, 1);
    /* No writable_schema or other ways to corrupt the file from SQL. */
    sqlite3_db_config(c->db, SQLITE_DBCONFIG_DEFENSIVE, 1, (int *)NULL);
    sqlite3_busy_timeout(c->db, SQ_BUSY_TIMEOUT_MS);
    rc = conn_exec(c,
                   "PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL;"
                   " PRAGMA trusted_schema = OFF;",
                   err, "configure");
    if (rc)
        return rc;
    if (writer) {
        /* WAL: readers never block the writer nor it them; persistent in the file. */
        sqlite3_stmt *st = NULL;
        char mode[16] = "";
        rc = sqlite3_prepare_v2(c->db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
        if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
            col_cpy(st, 0, mode, sizeof(mode));
            rc = SQLITE_OK;
        }
        if (rc != SQLITE_OK)
            rc = sq_err(c, rc, err, "enable WAL");
        sqlite3_finalize(st);
        if (rc)
            return rc;
        if (strcmp(mode, "wal") != 0)
            return kw_err_set(err, KW_ESTORE, "store",
                              "store: %s: WAL mode not available (journal_mode %s)", path, mode);
        /* Savepoints (group commit) keep each changed page's old content in a statement
         * journal; in memory it never spills to a temporary file (~100 us per commit). */
        rc = conn_exec(c, "PRAGMA temp_store = MEMORY", err, "configure");
        if (rc)
            return rc;
    } else {
        char sql[64];
        snprintf(sql, sizeof(sql), "PRAGMA mmap_size = %lld", SQ_READER_MMAP_BYTES);
        rc = conn_exec(c, sql, err, "configure");
        if (rc)
            return rc;
    }
    return 0;
}

static int policy_write(sq_conn_t *c, const kw_policy_t *p, int create, kw_err_t *err);

/* Apply pending migrations and make sure `default` exists, in one transaction. */
static int migrate(sq_conn_t *c, kw_err_t *err)
{
    int64_t cur = 0, have_default = 0;
    int rc = conn_exec(c, "BEGIN IMMEDIATE", err, "begin migration");
    if (rc)
        return rc;
    rc = conn_exec(c,
                   "CREATE TABLE IF NOT EXISTS schema_version ("
                   " version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL) STRICT",
                   err, "migration");
    if (rc == 0)
        rc = conn_int(c, "SELECT coalesce(max(version), 0) FROM schema_version", &cur, err,
                      "migration");
    if (rc)
        goto out;
    if (cur > SQ_SCHEMA_VERSION) {
        rc = kw_err_set(err, KW_ESTORE, "store",
                        "store: schema version %lld is newer than this keyward (%d)",
                        (long long)cur, SQ_SCHEMA_VERSION);
        goto out;
    }
    for (size_t i = 0; i < sizeof(migrations) / sizeof(migrations[0]); i++) {
        char sql[128];
        if (migrations[i].version <= cur)
            continue;
        rc = conn_exec(c, migrations[i].sql, err, "migration");
        if (rc)
            goto out;
        snprintf(sql, sizeof(sql),
                 "INSERT INTO schema_version (version, applied_at) VALUES (%d, %lld)",
                 migrations[i].version, (long long)kw_now());
        rc = conn_exec(c, sql, err, "migration");
        if (rc)
            goto out;
    }
    rc = conn_int(c, "SELECT count(*) FROM policies WHERE name = 'default'", &have_default, err,
                  "migration");
    if (rc == 0 && !have_default) {
        kw_policy_t p;
        kw_policy_defaults(&p, "default");
        p.created_at = p.updated_at = kw_now();
        rc = policy_write(c, &p, 1, err);
    }
    if (rc == 0)
        rc = conn_exec(c, "COMMIT", err, "commit migration");
out:
    if (rc && !sqlite3_get_autocommit(c->db))
        sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

/* ---- checkpoints ---------------------------------------------------------------------
 * SQLite's default checkpoints inside the commit that fills the WAL past 1000 pages: that
 * commit (and every writer queued behind the write lock) then waits for the pages to be
 * copied into the database file and for its fsync. Instead the writer's WAL hook wakes a
 * thread that runs PASSIVE checkpoints on a connection of its own, concurrently with
 * later commits (WAL mode allows one checkpointer beside the writer). Durability does not
 * change: every commit is still fsynced in the WAL before it returns (synchronous=FULL). */

static void *ck_main(void *arg)
{
    kw_sqlite_t *s = arg;
    pthread_mutex_lock(&s->ckmu);
    while (!s->ck_stop) {
        if (!s->ck_due) {
            pthread_cond_wait(&s->ckcv, &s->ckmu);
            continue;
        }
        s->ck_due = 0;
        pthread_mutex_unlock(&s->ckmu);
        /* Failures (I/O error, disk full) leave the WAL as it is: the next wake retries. */
        sqlite3_wal_checkpoint_v2(s->ckdb, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        pthread_mutex_lock(&s->ckmu);
    }
    pthread_mutex_unlock(&s->ckmu);
    return NULL;
}

/* Called by SQLite after each commit on the writer (wmu still held), with the WAL's size
 * in pages. Wakes the checkpointer each time the WAL has grown by SQ_CKPT_PAGES; if the
 * WAL still reaches SQ_CKPT_INLINE_PAGES (under sustained writes the background passes
 * never catch up with the end, and SQLite restarts the WAL only after one that does),
 * checkpoints the rest inline: with no other writer it completes, and the next
 * transaction starts the WAL from its beginning again. */
static int sq_wal_hook(void *ud, sqlite3 *db, const char *name, int pages)
{
    kw_sqlite_t *s = ud;
    if (pages < s->ck_next - SQ_CKPT_PAGES) /* the WAL was restarted */
        s->ck_next = SQ_CKPT_PAGES;
    if (!s->ck_started || pages >= SQ_CKPT_INLINE_PAGES) {
        if (pages >= (s->ck_started ? SQ_CKPT_INLINE_PAGES : SQ_CKPT_PAGES))
            sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    } else if (pages >= s->ck_next) {
        s->ck_next = pages + SQ_CKPT_PAGES;
        pthread_mutex_lock(&s->ckmu);
        s->ck_due = 1;
        pthread_cond_signal(&s->ckcv);
        pthread_mutex_unlock(&s->ckmu);
    }
    return SQLITE_OK;
}

/* Open the checkpointer's connection and start its thread; without them (error) the
 * writer checkpoints inline as SQLite would. */
static void ck_start(kw_sqlite_t *s)
{
    sq_conn_t c = {0};
    kw_err_t e = {0};
    if (conn_open(&c, s->path, 1, &e) != 0) {
        conn_close(&c);
        return;
    }
    s->ckdb = c.db;
    if (pthread_create(&s->ckth, NULL, ck_main, s) != 0) {
        sqlite3_close_v2(s->ckdb);
        s->ckdb = NULL;
        return;
    }
    s->ck_started = 1;
}

static void ck_stop(kw_sqlite_t *s)
{
    if (s->ck_started) {
        pthread_mutex_lock(&s->ckmu);
        s->ck_stop = 1;
        pthread_cond_signal(&s->ckcv);
        pthread_mutex_unlock(&s->ckmu);
        pthread_join(s->ckth, NULL);
        s->ck_started = 0;
    }
    sqlite3_close_v2(s->ckdb); /* NULL is a no-op */
    s->ckdb = NULL;
}

static void sq_rollback(kw_store_t *base);

static void sq_close(kw_store_t *base)
{
    kw_sqlite_t *s = SQ(base);
    if (in_tx(s))
        sq_rollback(base);
    if (s->r.db) /* fully opened: keep planner statistics fresh (cheap when nothing to do) */
        sqlite3_exec(s->w.db, "PRAGMA optimize", NULL, NULL, NULL);
    ck_stop(s);
    kw_sqlite_notify_forget(s->r.db);
    kw_sqlite_notify_forget(s->w.db);
    kw_sqlite_watched_forget(s->r.db); /* watched: sqlite_watched.c's statements */
    kw_sqlite_watched_forget(s->w.db);
    conn_close(&s->r);
    conn_close(&s->w); /* last, so SQLite checkpoints and removes the WAL */
    pthread_mutex_destroy(&s->wmu);
    pthread_mutex_destroy(&s->rmu);
    pthread_mutex_destroy(&s->ckmu);
    pthread_cond_destroy(&s->ckcv);
    free(s->path);
    free(s);
}

/* Before SQLite initialises (first open): no global allocation statistics, which cost a
 * global mutex around every malloc and free. Too late if the process already used SQLite:
 * then it returns SQLITE_MISUSE and nothing changes. */
static pthread_once_t sq_once = PTHREAD_ONCE_INIT;
static void sq_configure(void)
{
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

static int sq_open(const char *rest, kw_store_t **out, kw_err_t *err)
{
    const char *path = rest;
    int rc;
    if (strncmp(path, "//", 2) == 0) /* tolerate sqlite://PATH */
        path += 2;
    if (*path == '\0')
        return kw_err_set(err, KW_EINVAL, "store", "store: sqlite: needs a path (sqlite:PATH)");
    if (strcmp(path, ":memory:") == 0 || strncmp(path, "file:", 5) == 0)
        return kw_err_set(err, KW_EINVAL, "store", "store: sqlite: PATH must be a plain file path");
    pthread_once(&sq_once, sq_configure);
    if (!sqlite3_threadsafe())
        return kw_err_set(err, KW_ESTORE, "store", "store: libsqlite3 built without threads");

    kw_sqlite_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return kw_err_set(err, KW_ENOMEM, NULL, NULL);
    s->base.ops = &kw_store_sqlite_ops;
    s->base.notify = &kw_sqlite_notify_ops;
    s->base.session = &kw_sqlite_session_ops; /* console */
    s->base.watched = &kw_sqlite_watched_ops;
    pthread_mutex_init(&s->wmu, NULL);
    pthread_mutex_init(&s->rmu, NULL);
    pthread_mutex_init(&s->ckmu, NULL);
    pthread_cond_init(&s->ckcv, NULL);
    atomic_init(&s->owner, 0);
    s->path = strdup(path);
    if (s->path == NULL) {
        rc = kw_err_set(err, KW_ENOMEM, NULL, NULL);
        goto out;
    }
    rc = conn_open(&s->w, path, 1, err);
    if (rc == 0)
        rc = migrate(&s->w, err);
    /* The reader opens after the writer has created the file and switched it to WAL. */
    if (rc == 0)
        rc = conn_open(&s->r, path, 0, err);
    if (rc == 0) {
        s->ck_next = SQ_CKPT_PAGES;
        sqlite3_wal_hook(s->w.db, sq_wal_hook, s);
        ck_start(s);
    }
out:
    if (rc) {
        sq_close(&s->base);
        return rc;
    }
    *out = &s->base;
    return 0;
}

static const char *sq_file(const kw_store_t *base)
{
    return ((const kw_sqlite_t *)(const void *)base)->path;
}

/* ---- transactions ------------------------------------------------------------------- */

static int sq_begin(kw_store_t *base, kw_err_t *err)
{
    kw_sqlite_t *s = SQ(base);
    if (in_tx(s))
        return kw_err_set(err, KW_EINTERNAL, NULL, "store: transaction already open");
    pthread_mutex_lock(&s->wmu);
    if (!sqlite3_get_autocommit(s->w.db)) /* a ROLLBACK that failed earlier: retry it */
        sq_run(&s->w, ST_ROLLBACK, NULL, "rollback");
    /* IMMEDIATE takes SQLite's write lock now (waiting up to busy_timeout for another
     * process), so the transaction cannot fail later on a lock upgrade. */
    int rc = sq_run(&s->w, ST_BEGIN_IMMEDIATE, err, "begin");
    if (rc) {
        pthread_mutex_unlock(&s->wmu);
        return rc;
    }
    s->w.failed = 0;
    s->w.in_sp = 0;
    atomic_store_explicit(&s->owner, self_id(), memory_order_relaxed);
    return 0;
}

static void tx_release(kw_sqlite_t *s)
{
    atomic_store_explicit(&s->owner, 0, memory_order_relaxed);
    pthread_mutex_unlock(&s->wmu);
}

static int sq_commit(kw_store_t *base, kw_err_t *err)
{
    kw_sqlite_t *s = SQ(base);
    int rc;
    if (!in_tx(s))
        return kw_err_set(err, KW_EINTERNAL, NULL, "store: commit without a transaction");
    if (s->w.failed || sqlite3_get_autocommit(s->w.db)) {
        /* A statement failed in the backend (disk full, I/O error): SQLite may have rolled
         * back all of the transaction or only that statement; commit neither half. */
        rc = kw_err_set(err, KW_ESTORE, NULL,
                        "store: commit refused after an earlier failure (%s); rolled back",
                        s->w.failed ? s->w.failmsg : "transaction aborted");
        if (!sqlite3_get_autocommit(s->w.db))
            sq_run(&s->w, ST_ROLLBACK, NULL, "rollback");
    } else {
        rc = sq_run(&s->w, ST_COMMIT, err, "commit");
        if (rc && !sqlite3_get_autocommit(s->w.db))
            sq_run(&s->w, ST_ROLLBACK, NULL, "rollback");
    }
    tx_release(s);
    return rc;
}

static void sq_rollback(kw_store_t *base)
{
    kw_sqlite_t *s = SQ(base);
    if (!in_tx(s))
        return;
    if (!sqlite3_get_autocommit(s->w.db))
        sq_run(&s->w, ST_ROLLBACK, NULL, "rollback");
    tx_release(s);
}

/* Tx alive: the writer is still inside our transaction and no statement broke it. */
static int tx_usable(sq_conn_t *c)
{
    return !c->failed && !sqlite3_get_autocommit(c->db);
}

static int sq_savepoint(kw_store_t *base, kw_err_t *err)
{
    kw_sqlite_t *s = SQ(base);
    if (!in_tx(s))
        return kw_err_set(err, KW_EINTERNAL, NULL, "store: savepoint outside a transaction");
    if (s->w.in_sp)
        return kw_err_set(err, KW_EINTERNAL, NULL, "store: savepoint already open");
    if (!tx_usable(&s->w))
        return kw_err_set(err, KW_ESTORE, NULL, "store: transaction lost after an earlier failure");
    int rc = sq_run(&s->w, ST_SAVEPOINT, err, "savepoint");
    if (rc == 0)
        s->w.in_sp = 1;
    return rc;
}

/* keep = 1 releases the savepoint (its changes stay in the transaction). keep = 0 rolls
 * back everything done since it: when SQLite rolled back only a failed statement (the
 * transaction is still open) that leaves the transaction exactly as it was at the
 * savepoint, so the failure no longer poisons the commit. 0 = the transaction is usable;
 * KW_ESTORE = it is lost (SQLite aborted it, or keep = 1 after a backend failure, which
 * never commits half a change): the caller rolls back and redoes its other changes. */
static int sq_savepoint_end(kw_store_t *base, int keep, kw_err_t *err)
{
    kw_sqlite_t *s = SQ(base);
    sq_conn_t *c = &s->w;
    if (!in_tx(s) || !c->in_sp)
        return kw_err_set(err, KW_EINTERNAL, NULL, "store: no savepoint open");
    c->in_sp = 0;
    if (sqlite3_get_autocommit(c->db))
        return kw_err_set(err, KW_ESTORE, NULL, "store: transaction aborted (%s)",
                          c->failed ? c->failmsg : "by the backend");
    if (keep && c->failed)
        return kw_err_set(err, KW_ESTORE, NULL, "store: change kept after a failure (%s)",
                          c->failmsg);
    if (!keep) {
        c->failed = 0;
        if (sq_run(c, ST_ROLLBACK_TO, err, "rollback to savepoint") != 0)
            return KW_ESTORE; /* sq_err marked the transaction failed */
    }
    if (sq_run(c, ST_RELEASE, err, "release savepoint") != 0)
        return KW_ESTORE;
    if (sqlite3_get_autocommit(c->db))
        return kw_err_set(err, KW_ESTORE, NULL, "store: transaction aborted");
    return 0;
}

int kw_store_sqlite_exec(kw_store_t *base, const char *sql, kw_err_t *err)
{
    if (base == NULL || base->ops != &kw_store_sqlite_ops || sql == NULL)
        return kw_err_set(err, KW_EINVAL, NULL, "store: not a SQLite store");
    sq_conn_t *c = NULL;
    int rc = wr_conn(SQ(base), &c, err);
    return rc ? rc : conn_exec(c, sql, err, "exec");
}

/* security: rewrite the file without stale bytes (VACUUM, with secure_delete) and empty
 * the WAL, after secrets were sealed in place. Outside any transaction; startup only. */
int kw_store_sqlite_scrub(kw_store_t *base, kw_err_t *err)
{
    if (base == NULL || base->ops != &kw_store_sqlite_ops)
        return 0;
    kw_sqlite_t *s = SQ(base);
    pthread_mutex_lock(&s->wmu);
    int rc = conn_exec(&s->w, "PRAGMA secure_delete = ON; VACUUM; PRAGMA wal_checkpoint(TRUNCATE);",
                       err, "scrub");
    pthread_mutex_unlock(&s->wmu);
    return rc;
}

struct sqlite3 *kw_sqlite_rd_begin(kw_store_t *base)
{
    return rd_begin(SQ(base))->db;
}

void kw_sqlite_rd_end(kw_store_t *base, struct sqlite3 *db)
{
    kw_sqlite_t *s = SQ(base);
    rd_end(s, db == s->r.db ? &s->r : &s->w);
}

int kw_sqlite_wr(kw_store_t *base, struct sqlite3 **db, kw_err_t *err)
{
    sq_conn_t *c = NULL;
    int rc = wr_conn(SQ(base), &c, err);
    if (rc == 0)
        *db = c->db;
    return rc;
}

int kw_sqlite_err(kw_store_t *base, struct sqlite3 *db, int rc, kw_err_t *err, const char *what)
{
    kw_sqlite_t *s = SQ(base);
    sq_conn_t *c = db == s->r.db ? &s->r : &s->w;
    c->xrc = sqlite3_extended_errcode(c->db);
    return sq_err(c, rc, err, what);
}

/* ---- meta --------------------------------------------------------------------------- */

static int sq_meta_get(kw_store_t *base, const char *key, char **value_out, kw_err_t *err)
{
    kw_sqlite_t *s = SQ(base);
    sq_conn_t *c = rd_begin(s);
    sqlite3_stmt *st = NULL;
    char *v = NULL;
    int rc = sq_prep(c, ST_META_GET, &st, err);
    if (rc)
        goto out;
    if ((rc = sq_bound(c, bind_text(st, 1, key), err)))
        goto out;
    rc = sq_step(c, st, err, "meta lookup");
    if (rc < 0)
        goto out;
    if (rc != SQLITE_ROW) {
        rc = kw_err_set(err, KW_ENOTFOUND, "key", "store: no such meta key");
        goto out;
    }
    if (col_dup(st, 0, &v) || v == NULL) {
        rc = kw_err_set(err, KW_ENOMEM, NULL, NULL);
        goto out;
    }
    *value_out = v;
    rc = 0;
out:
    sq_done(st);
    rd_end(s, c);
    return rc;
}

static int sq_meta_set(kw_store_t *base, const char *key, const char *value, kw_err_t *err)
{
    sq_conn_t *c = NULL;
    sqlite3_stmt *st = NULL;
    int rc = wr_conn(SQ(base), &c, err);
    if (rc == 0)
        rc = sq_prep(c, ST_META_SET, &st, err);
    if (rc)
        return rc;
    rc = sq_bound(c, bind_text(st, 1, key) | bind_text(st, 2, value), err);
    if (rc == 0)
        rc = sq_step(c, st, err, "meta write");
    sq_done(st);
    return rc < 0 ? rc : 0;
}

/* ---- policies ----------------------------------------------------------------------- */

static int policy_write(sq_conn_t *c, const kw_policy_t *p, int create, kw_err_t *err)
{
    sqlite3_stmt *st = NULL;
    char th[KW_MAX_THRESHOLDS * 22];
    int rc = sq_prep(c, create ? ST_POLICY_INSERT : ST_POLICY_UPDATE, &st, err);
    if (rc)
        return rc;
    thresholds_format(p, th, sizeof(th));
    rc = sq_bound(c,
                  bind_text(st, 1, p->name) | sqlite3_bind_int64(st, 2, p->default_lifetime) |
                      sqlite3_bind_int64(st, 3, p->max_lifetime) |
                      sqlite3_bind_int(st, 4, p->allow_never_expire != 0) |
                      sqlite3_bind_int(st, 5, p->renewable != 0) |
                      sqlite3_bind_int(st, 6, p->renewal_requires_approval != 0) |
                      bind_text(st, 7, th) | sqlite3_bind_int64(st, 8, p->max_roll_overlap) |
                      sqlite3_bind_int64(st, 9, p->created_at) |
                      sqlite3_bind_int64(st, 10, p->updated_at) |
                      sqlite3_bind_int64(st, 11, p->token_lifetime),
                  err);
    if (rc)
        goto out;
    rc = sq_step(c, st, err, create ? "policy insert" : "policy update");
    if (rc == KW_ECONFLICT) {
        rc = kw_err_set(err, KW_ECONFLICT, "name", "policy already exists");
        goto out;
    }
    if (rc < 0)
        goto out;
    rc = 0;
    if (!create && sqlite3_changes(c->db) == 0)
        rc = kw_err_set(err, KW_ENOTFOUND, "name", "policy not found");
out:
    sq_done(st);
    return rc;
}

static int sq_policy_put(kw_store_t *base, const kw_policy_t *p, int create, kw_err_t *err)
{
    sq_conn_t *c = NULL;
    int rc = wr_conn(SQ(base), &c, err);
    return rc ? rc : policy_write(c, p, create, err);
}

static int sq_policy_get(kw_store_t *base, const char *name, kw_policy_t *out, kw_err_t *err)
{
    kw_sqlite_t *s = SQ(base);
    sq_conn_t *c = rd_begin(s);
    sqlite3_stmt *st = NULL;
    int rc = sq_prep(c, ST_POLICY_GET, &st, err);
    if (rc)
        goto out;
    if ((rc = sq_bound(c, bind_text(st, 1, name), err)))
        goto out;
    rc = sq_step(c, st, err, "policy lookup");
    if (rc < 0)
        goto out;
    if (rc != SQLITE_ROW) {
        rc = kw_err_set(err, KW_ENOTFOUND, "name", "policy not found");
        goto out;
    }
    row_policy(st, out);
    rc = 0;
out:
    sq_done(st);
    rd_end(s, c);
    return rc;
}

static int sq_policy_list(kw_store_t *base, kw_policy_t **out, size_t *n, kw_err_t *err)
{
    kw_sqlite_t *s = SQ(base);
    sq_conn_t *c = rd_begin(s);
    sqlite3_stmt *st = NULL;
    kw_policy_t *a = NULL;
    size_t cnt = 0, cap = 0;
    int rc = sq_prep(c, ST_POLICY_LIST, &st, err);
    while (rc == 0 && (rc = sq_step(c, st, err, "policy list")) == SQLITE_ROW) {
        rc = grow((void **)&a, &cap, cnt + 1, sizeof(*a));
        if (rc) {
            rc = kw_err_set(err, KW_ENOMEM, NULL, NULL);
            break;
        }
        row_policy(st, &a[cnt++]);
    }
    if (rc == SQLITE_DONE) {
        *out = a;
        *n = cnt;
        a = NULL;
        rc = 0;
    }
    free(a);
    sq_done(st);
    rd_end(s, c);
    return rc;
}

/* ---- credentials -------------------------------------------------------------------- */

static int cred_bind(sqlite3_stmt *st, const kw_cred_t *c)
{
    return bind_text(st, 1, c->id) | bind_text(st, 2, c->name) | bind_text(st, 3, c->owner) |
           bind_text(st, 4, c->scopes_json ? c->scopes_json : "[]") |
           bind_text(st, 5, c->cidrs_json ? c->cidrs_json : "[]") |
           bind_text(st, 6, c->metadata_json ? c->metadata_json : "{}") |
           bind_text(st, 7, c->contacts_json ? c->contacts_json : "[]") |
           bind_text(st, 8, c->policy[0] ? c->policy : "default") | bind_text(st, 9, c->prefix) |
           sqlite3_bind_int(st, 10, c->disabled != 0) | sqlite3_bind_int64(st, 11, c->created_at) |
           sqlite3_bind_int64(st, 12, c->updated_at) | bind_time(st, 13, c->deleted_at);
}

/* Refine a constraint failure of a credential write. */
static int cred_conflict(sq_conn_t *c, kw_err_t *err)
{
    switch (c->xrc) {
    case SQLITE_CONSTRAINT_FOREIGNKEY:
        return kw_err_set(err, KW_EINVAL, "policy", "no such policy");
    case SQLITE_CONSTRAINT_NOTNULL:
    case SQLITE_CONSTRAINT_CHECK:
    case SQLITE_CONSTRAINT_DATATYPE:
        return kw_err_set(err, KW_EINVAL, NULL, "store: credential: %s", sqlite3_errmsg(c->db));
    default:
        return kw_err_set(err, KW_ECONFLICT, "id", "credential id already exists");
    }
}

static int cred_write(kw_sqlite_t *s, kw_cred_t *cin, const kw_cred_t *cup, kw_err_t *err)
{
    const kw_cred_t *cr = cin ? cin : cup;
    sq_conn_t *c = NULL;
    sqlite3_stmt *st = NULL;
    int rc = wr_conn(s, &c, err);
    if (rc == 0)
        rc = sq_prep(c, cin ? ST_CRED_INSERT : ST_CRED_UPDATE, &st, err);
    if (rc)
        return rc;
    if ((rc = sq_bound(c, cred_bind(st, cr), err)))
        goto out;
    rc = sq_step(c, st, err, cin ? "credential insert" : "credential update");
    if (rc == KW_ECONFLICT)
        rc = cred_conflict(c, err);
    if (rc < 0)
        goto out;
    rc = 0;
    if (cin)
        cin->seq = sqlite3_last_insert_rowid(c->db);
    else if (sqlite3_changes(c->db) == 0)
        rc = kw_err_set(err, KW_ENOTFOUND, "id", "credential not found");
out:
    sq_done(st);
    return rc;
}

static int sq_cred_insert(kw_store_t *base, kw_cred_t *c, kw_err_t *err)
{
    return cred_write(SQ(base), c, NULL, err);
}

static int sq_cred_update(kw_store_t *base, const kw_cred_t *c, kw_err_t *err)
{
    return cred_write(SQ(base), NULL, c, err);
}

static int sq_cred_get(kw_store_t *base, const char *id, kw_cred_t *out, kw_err_t *err)
{
    kw_sqlite_t *s = SQ(base);
    sq_conn_t *c = rd_begin(s);
    sqlite3_stmt *st = NULL;
    int rc = sq_prep(c, ST_CRED_GET, &st, err);
    if (rc)
        goto out;
    if ((rc = sq_bound(c, bind_text(st, 1, id), err)))
        goto out;
    rc = sq_step(c, st, err, "credential lookup");
    if (rc < 0)
        goto out;
    if (rc != SQLITE_ROW) {
        rc = kw_err_set(err, KW_ENOTFOUND, "id", "credential not found");
        goto out;
    }
    kw_cred_t cr;
    rc = row_cred(st, &cr, 0);
    if (rc) {
        rc = kw_err_set(err, KW_ENOMEM, NULL, NULL);
        goto out;
    }
    *out = cr;
out:
    sq_done(st);
    rd_end(s, c);
    return rc;
}

static int sq_cred_list(kw_store_t *base, const kw_cred_filter_t *f, kw_cred_t **out, size_t *n,
                        kw_err_t *err)
{
    kw_sqlite_t *s = SQ(base);
    sq_conn_t *c = rd_begin(s);
    sqlite3_stmt *st = NULL;
    kw_cred_t *a = NULL;
    size_t cnt = 0, cap = 0;
    int id = ST_CRED_LIST + (f->owner ? 1 : 0) + (f->expiring_before ? 2 : 0);
    int64_t lim = f->limit > INT64_MAX ? INT64_MAX : (int64_t)f->limit;
    int rc = sq_prep(c, id, &st, err);
    if (rc)
        goto out;
    rc = sq_bound(c,
                  sqlite3_bind_int64(st, 1, f->after_seq) | bind_text(st, 2, f->owner) |
                      sqlite3_bind_int64(st, 3, f->expiring_before) |
                      sqlite3_bind_int64(st, 4, f->now) | sqlite3_bind_int64(st, 5, lim),
                  err);
    while (rc == 0 && (rc = sq_step(c, st, err, "credential list")) == SQLITE_ROW) {
        if (grow((void **)&a, &cap, cnt + 1, sizeof(*a)) || row_cred(st, &a[cnt], 0)) {
            rc = kw_err_set(err, KW_ENOMEM, NULL, NULL);
            break;
        }
        cnt++;
        rc = 0;
    }
    if (rc == SQLITE_DONE) {
        *out = a;
        *n = cnt;
        a = NULL;
        cnt = 0;
        rc = 0;
    }
out:
    kw_cred_array_free(a, cnt);
    sq_done(st);
    rd_end(s, c);
    return rc;
}

/* ---- keys --------------------------------------------------------------------------- */

/* Refine a constraint failure of a key write. */
static int key_conflict(sq_conn_t *c, kw_err_t *err)
{
    switch (c->xrc) {
    case SQLITE_CONSTRAINT_FOREIGNKEY:
        return kw_err_set(err, KW_ENOTFOUND, "cred_id", "credential not found");
    case SQLITE_CONSTRAINT_NOTNULL:
    case SQLITE_CONSTRAINT_DATATYPE:
        return kw_err_set(err, KW_EINVAL, NULL, "store: key: %s", sqlite3_errmsg(c->db));
    case SQLITE_CONSTRAINT_CHECK:
        return kw_err_set(err, KW_ECONFLICT, "slot", "slot must be 1 or 2");
    default: {
        /* UNIQUE: live slot, or (astronomically unlikely) a repeated id or digest. */
        const char *m = sqlite3_errmsg(c->db);
        if (strstr(m, "live_slot"))
            return kw_err_set(err, KW_ECONFLICT, "slot", "slot already holds a live key");
        return kw_err_set(err, KW_ECONFLICT, "id", "store: key: %s", m);
    }
    }
}

static int sq_key_insert(kw_store_t *base, kw_keyrec_t *k, kw_err_t *err)
{
    sq_conn_t *c = NULL;
    sqlite3_stmt *st = NULL;
    int rc = wr_conn(SQ(base), &c, err);
    if (rc == 0)
        rc = sq_prep(c, ST_KEY_INSERT, &st, err);
    if (rc)
        return rc;
    rc = sq_bound(c,
                  bind_text(st, 1, k->id) | bind_text(st, 2, k->cred_id) |
                      sqlite3_bind_int(st, 3, k->slot) | sqlite3_bind_int(st, 4, k->live != 0) |
                      bind_text(st, 5, k->hint) |
                      sqlite3_bind_blob(st, 6, k->digest, KW_DIGEST_LEN, SQLITE_STATIC) |
                      sqlite3_bind_int64(st, 7, k->created_at) | bind_time(st, 8, k->expires_at) |
                      bind_time(st, 9, k->revoked_at) | bind_opt_text(st, 10, k->revoke_reason) |
                      bind_time(st, 11, k->last_used_at) | sqlite3_bind_int64(st, 12, k->use_count),
                  err);
    if (rc == 0)
        rc = sq_step(c, st, err, "key insert");
    if (rc == KW_ECONFLICT)
        rc = key_conflict(c, err);
    if (rc >= 0) {
        k->seq = sqlite3_last_insert_rowid(c->db);
        rc = 0;
    }
    sq_done(st);
    return rc;
}

static int sq_key_update(kw_store_t *base, const kw_keyrec_t *k, kw_err_t *err)
{
    sq_conn_t *c = NULL;
    sqlite3_stmt *st = NULL;
    int rc = wr_conn(SQ(base), &c, err);
    if (rc == 0)
        rc = sq_prep(c, ST_KEY_UPDATE, &st, err);
    if (rc)
        return rc;
    rc = sq_bound(c,
                  bind_text(st, 1, k->id) | bind_time(st, 2, k->expires_at) |
                      bind_time(st, 3, k->revoked_at) | bind_opt_text(st, 4, k->revoke_reason) |
                      sqlite3_bind_int(st, 5, k->live != 0),
                  err);
    if (rc == 0)
        rc = sq_step(c, st, err, "key update");
    if (rc == KW_ECONFLICT)
        rc = key_conflict(c, err);
    if (rc >= 0) {
        rc = sqlite3_changes(c->db) ? 0 : kw_err_set(err, KW_ENOTFOUND, "id", "key not found");
    }
    sq_done(st);
    return rc;
}

static int sq_key_get(kw_store_t *base, const char *id, kw_keyrec_t *out, kw_err_t *err)
{
    kw_sqlite_t *s = SQ(base);
    sq_conn_t *c = rd_begin(s);
    sqlite3_stmt *st = NULL;
    int rc = sq_prep(c, ST_KEY_GET, &st, err);
    if (rc)
        goto out;
    if ((rc = sq_bound(c, bind_text(st, 1, id), err)))
        goto out;
    rc = sq_step(c, st, err, "key lookup");
    if (rc < 0)
        goto out;
    if (rc != SQLITE_ROW) {
        rc = kw_err_set(err, KW_ENOTFOUND, "id", "key not found");
        goto out;
    }
    row_key(st, out);
    rc = 0;
out:
    sq_done(st);
    rd_end(s, c);
    return rc;
}

/* Collect every row of a prepared, bound KEY_COLS statement. */
static int key_rows(sq_conn_t *c, sqlite3_stmt *st, kw_keyrec_t **out, size_t *n, kw_err_t *err,
                    const char *what)
{
    kw_keyrec_t *a = NULL;
    size_t cnt = 0, cap = 0;
    int rc;
    while ((rc = sq_step(c, st, err, what)) == SQLITE_ROW) {
        if (grow((void **)&a, &cap, cnt + 1, sizeof(*a))) {
            rc = kw_err_set(err, KW_ENOMEM, NULL, NULL);
            break;
        }
        row_key(st, &a[cnt++]);
    }
    if (rc != SQLITE_DONE) {
        free(a);
        return rc;
    }
    *out = a;
    *n = cnt;
    return 0;
}

static int sq_key_list_cred(kw_store_t *base, const char *cred_id, kw_keyrec_t **out, size_t *n,
                            kw_err_t *err)
{
    kw_sqlite_t *s = SQ(base);
    sq_conn_t *c = rd_begin(s);
    sqlite3_stmt *st = NULL;
    int rc = sq_prep(c, ST_KEY_LIST_CRED, &st, err);
    if (rc == 0)
        rc = sq_bound(c, bind_text(st, 1, cred_id), err);
    if (rc == 0)
        rc = key_rows(c, st, out, n, err, "key list");
    sq_done(st);
    rd_end(s, c);
    return rc;
}

static int sq_key_expiring(kw_store_t *base, int64_t now, int64_t until, int64_t after_exp,
                           int64_t after_seq, size_t limit, kw_keyrec_t **out, size_t *n,
                           kw_err_t *err)
{
    kw_sqlite_t *s = SQ(base);
    sq_conn_t *c = rd_begin(s);
    sqlite3_stmt *st = NULL;
    int64_t lim = limit > INT64_MAX ? INT64_MAX : (int64_t)limit;
    if (after_exp <= 0) {
        /* (expires_at, seq) > (now, max) is exactly expires_at > now: one statement. */
        after_exp = now;
        after_seq = INT64_MAX;
    }
    int rc = sq_prep(c, ST_KEY_EXPIRING, &st, err);
    if (rc == 0)
        rc = sq_bound(c,
                      sqlite3_bind_int64(st, 1, now) | sqlite3_bind_int64(st, 2, until) |
                          sqlite3_bind_int64(st, 3, after_exp) |
                          sqlite3_bind_int64(st, 4, after_seq) | sqlite3_bind_int64(st, 5, lim),
                      err);
    if (rc == 0)
        rc = key_rows(c, st, out, n, err, "expiring keys");
    sq_done(st);
    rd_end(s, c);
    return rc;
}

/* ---- usage, events ------------------------------------------------------------------ */

static int sq_usage_apply(kw_store_t *base, const kw_usage_t *u, size_t n, kw_err_t *err)
{
    kw_sqlite_t *s = SQ(base);
    sqlite3_stmt *st = NULL;
    int rc = sq_begin(base, err);
    if (rc)
        return rc;
    rc = sq_prep(&s->w, ST_USAGE, &st, err);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        rc = sq_bound(&s->w,
                      bind_text(st, 1, u[i].key_id) | sqlite3_bind_int64(st, 2, u[i].delta) |
                          sqlite3_bind_int64(st, 3, u[i].last_used),
                      err);
        if (rc == 0)
            rc = sq_step(&s->w, st, err, "usage update");
        rc = rc < 0 ? rc : 0;
        sq_done(st);
    }
    if (rc) {
        sq_rollback(base);
        return rc;
    }
    return sq_commit(base, err);
}

static int sq_event_insert(kw_store_t *base, const char *id, const char *type, int64_t occurred_at,
                           const char *payload_json, kw_err_t *err)
{
    sq_conn_t *c = NULL;
    sqlite3_stmt *st = NULL;
    int rc = wr_conn(SQ(base), &c, err);
    if (rc == 0)
        rc = sq_prep(c, ST_EVENT_INSERT, &st, err);
    if (rc)
        return rc;
    rc = sq_bound(c,
                  bind_text(st, 1, id) | bind_text(st, 2, type) |
                      sqlite3_bind_int64(st, 3, occurred_at) | bind_text(st, 4, payload_json),
                  err);
    if (rc == 0)
        rc = sq_step(c, st, err, "event insert");
    if (rc == KW_ECONFLICT)
        rc = kw_err_set(err, KW_ECONFLICT, "id", "event id already exists");
    sq_done(st);
    return rc < 0 ? rc : 0;
}

/* ---- load_all ----------------------------------------------------------------------- */

/* Two scans sorted by credential id, merged: O(credentials + keys), one pass each. */
static int sq_load_all(kw_store_t *base, int64_t retain_since, kw_store_load_cb cb, void *ud,
                       kw_err_t *err)
{
    kw_sqlite_t *s = SQ(base);
    sq_conn_t *c = rd_begin(s);
    sqlite3_stmt *cs = NULL, *ks = NULL;
    int began = 0;
    int rc = 0;
    if (c == &s->r) {
        /* One read transaction: both scans see the same snapshot. */
        rc = sq_run(c, ST_BEGIN, err, "begin read");
        began = rc == 0;
    }
    if (rc == 0)
        rc = sq_prep(c, ST_LOAD_CREDS, &cs, err);
    if (rc == 0)
        rc = sq_prep(c, ST_LOAD_KEYS, &ks, err);
    if (rc == 0)
        rc = sq_bound(c, sqlite3_bind_int64(ks, 1, retain_since), err);
    if (rc)
        goto out;
    /* every credential first (row_cred borrows the row's text: no copy per row) */
    while ((rc = sq_step(c, cs, err, "load credentials")) == SQLITE_ROW) {
        kw_cred_t cr;
        if (row_cred(cs, &cr, 1)) {
            rc = kw_err_set(err, KW_ENOMEM, NULL, NULL);
            goto out;
        }
        if ((rc = cb(ud, &cr, NULL, 0)) != 0)
            goto out;
    }
    if (rc < 0)
        goto out;
    /* then every kept key, one per call */
    while ((rc = sq_step(c, ks, err, "load keys")) == SQLITE_ROW) {
        kw_keyrec_t k;
        row_key(ks, &k);
        if ((rc = cb(ud, NULL, &k, 1)) != 0)
            goto out;
    }
    if (rc == SQLITE_DONE)
        rc = 0;
out:
    sq_done(cs);
    sq_done(ks);
    if (began)
        sq_run(c, ST_ROLLBACK, NULL, "end read");
    if (c == &s->r) {
        /* The scans touched most of the file through the reader's mmap, and those pages
         * would stay resident in keyward (~270 B per key at 1 M keys). Changing the limit
         * makes SQLite unmap the file; the next read maps it again lazily. */
        char sql[64];
        sqlite3_exec(c->db, "PRAGMA mmap_size = 0", NULL, NULL, NULL);
        snprintf(sql, sizeof(sql), "PRAGMA mmap_size = %lld", SQ_READER_MMAP_BYTES);
        sqlite3_exec(c->db, sql, NULL, NULL, NULL);
    }
    rd_end(s, c);
    return rc;
}

/* ---- audit trail --------------------------------------------------------------------- */

/* Fill r from an AUDIT_COLS row. Over-long text (only a hand-edited file has any) is cut,
 * which the chain check then reports as a mismatch. */
static int row_audit(sqlite3_stmt *st, kw_audit_rec_t *r)
{
    memset(r, 0, sizeof(*r));
    r->seq = sqlite3_column_int64(st, 0);
    r->at = sqlite3_column_int64(st, 1);
    col_cpy(st, 2, r->actor, sizeof(r->actor));
    col_cpy(st, 3, r->action, sizeof(r->action));
    col_cpy(st, 4, r->target, sizeof(r->target));
    col_cpy(st, 5, r->outcome, sizeof(r->outcome));
    if (col_dup(st, 6, &r->detail))
        return KW_ENOMEM;
    const void *p = sqlite3_column_blob(st, 7);
    size_t pn = (size_t)sqlite3_column_bytes(st, 7);
    r->has_prev = sqlite3_column_type(st, 7) != SQLITE_NULL;
    if (p)
        memcpy(r->prev_hash, p, pn < KW_AUDIT_HASH_LEN ? pn : KW_AUDIT_HASH_LEN);
    const void *h = sqlite3_column_blob(st, 8);
    size_t hn = (size_t)sqlite3_column_bytes(st, 8);
    if (h)
        memcpy(r->hash, h, hn < KW_AUDIT_HASH_LEN ? hn : KW_AUDIT_HASH_LEN);
    if (pn != (p ? KW_AUDIT_HASH_LEN : 0) || hn != KW_AUDIT_HASH_LEN)
        r->hash[0] ^= 0xff; /* a hash of the wrong length can never match */
    return 0;
}

static int sq_audit_insert(kw_store_t *base, const kw_audit_rec_t *r, kw_err_t *err)
{
    sq_conn_t *c = NULL;
    sqlite3_stmt *st = NULL;
    int rc = wr_conn(SQ(base), &c, err);
    if (rc == 0)
        rc = sq_prep(c, ST_AUDIT_INSERT, &st, err);
    if (rc)
        return rc;
    rc = sq_bound(
        c,
        sqlite3_bind_int64(st, 1, r->seq) | sqlite3_bind_int64(st, 2, r->at) |
            bind_text(st, 3, r->actor) | bind_text(st, 4, r->action) |
            bind_opt_text(st, 5, r->target) | bind_text(st, 6, r->outcome) |
            bind_text(st, 7, r->detail) |
            (r->has_prev ? sqlite3_bind_blob(st, 8, r->prev_hash, KW_AUDIT_HASH_LEN, SQLITE_STATIC)
                         : sqlite3_bind_null(st, 8)) |
            sqlite3_bind_blob(st, 9, r->hash, KW_AUDIT_HASH_LEN, SQLITE_STATIC),
        err);
    if (rc == 0)
        rc = sq_step(c, st, err, "audit insert");
    sq_done(st);
    return rc < 0 ? rc : 0;
}

static int sq_audit_head(kw_store_t *base, int64_t *seq, uint8_t *hash, kw_err_t *err)
{
    kw_sqlite_t *s = SQ(base);
    sq_conn_t *c = rd_begin(s);
    sqlite3_stmt *st = NULL;
    int rc = sq_prep(c, ST_AUDIT_HEAD, &st, err);
    if (rc == 0)
        rc = sq_step(c, st, err, "audit head");
    if (rc == SQLITE_ROW) {
        const void *h = sqlite3_column_blob(st, 1);
        size_t hn = (size_t)sqlite3_column_bytes(st, 1);
        memset(hash, 0, KW_AUDIT_HASH_LEN);
        if (h)
            memcpy(hash, h, hn < KW_AUDIT_HASH_LEN ? hn : KW_AUDIT_HASH_LEN);
        *seq = sqlite3_column_int64(st, 0);
        rc = 0;
    } else if (rc == SQLITE_DONE) {
        rc = kw_err_set(err, KW_ENOTFOUND, NULL, "audit trail is empty");
    }
    sq_done(st);
    rd_end(s, c);
    return rc;
}

static int sq_counts(kw_store_t *base, int64_t *creds, int64_t *keys, kw_err_t *err)
{
    kw_sqlite_t *s = SQ(base);
    sq_conn_t *c = rd_begin(s);
    sqlite3_stmt *st = NULL;
    int rc = sq_prep(c, ST_COUNTS, &st, err);
    if (rc == 0)
        rc = sq_step(c, st, err, "row counts");
    if (rc == SQLITE_ROW) {
        *creds = sqlite3_column_int64(st, 0);
        *keys = sqlite3_column_int64(st, 1);
        rc = 0;
    } else if (rc == SQLITE_DONE) {
        rc = kw_err_set(err, KW_ESTORE, NULL, "row counts: no row");
    }
    sq_done(st);
    rd_end(s, c);
    return rc;
}

static int sq_audit_list(kw_store_t *base, const kw_audit_filter_t *f, kw_audit_rec_t **out,
                         size_t *n, kw_err_t *err)
{
    kw_sqlite_t *s = SQ(base);
    sq_conn_t *c = rd_begin(s);
    sqlite3_stmt *st = NULL;
    kw_audit_rec_t *a = NULL;
    size_t cnt = 0, cap = 0;
    char sql[384];
    int64_t lim = f->limit > INT64_MAX ? INT64_MAX : (int64_t)f->limit;
    /* Built from fixed pieces only (values are bound): each filter combination is its own
     * statement so SQLite can use the (target, seq) / (actor, seq) indexes. */
    snprintf(sql, sizeof(sql),
             "SELECT " AUDIT_COLS " FROM audit WHERE 1%s%s%s ORDER BY seq %s"
             " LIMIT ?4",
             f->actor ? " AND actor = ?1" : "", f->target ? " AND target = ?2" : "",
             f->cursor > 0 ? (f->ascending ? " AND seq > ?3" : " AND seq < ?3") : "",
             f->ascending ? "ASC" : "DESC");
    int rc = sqlite3_prepare_v2(c->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK) {
        rc = sq_err(c, rc, err, "audit list");
        goto out;
    }
    rc = sq_bound(c,
                  (f->actor ? bind_text(st, 1, f->actor) : SQLITE_OK) |
                      (f->target ? bind_text(st, 2, f->target) : SQLITE_OK) |
                      (f->cursor > 0 ? sqlite3_bind_int64(st, 3, f->cursor) : SQLITE_OK) |
                      sqlite3_bind_int64(st, 4, lim),
                  err);
    while (rc == 0 && (rc = sq_step(c, st, err, "audit list")) == SQLITE_ROW) {
        if (grow((void **)&a, &cap, cnt + 1, sizeof(*a)) || row_audit(st, &a[cnt])) {
            rc = kw_err_set(err, KW_ENOMEM, NULL, NULL);
            break;
        }
        cnt++;
        rc = 0;
    }
    if (rc == SQLITE_DONE) {
        *out = a;
        *n = cnt;
        a = NULL;
        cnt = 0;
        rc = 0;
    }
out:
    kw_audit_rec_array_free(a, cnt);
    sqlite3_finalize(st);
    rd_end(s, c);
    return rc;
}

static int sq_audit_scan(kw_store_t *base, kw_store_audit_cb cb, void *ud, const char *meta_key,
                         char **meta_out, kw_err_t *err)
{
    kw_sqlite_t *s = SQ(base);
    sq_conn_t *c = rd_begin(s);
    sqlite3_stmt *st = NULL, *ms = NULL;
    char *meta = NULL;
    int began = 0, rc = 0;
    if (c == &s->r) {
        rc = sq_run(c, ST_BEGIN, err, "begin read");
        began = rc == 0;
    }
    if (rc == 0)
        rc = sq_prep(c, ST_AUDIT_SCAN, &st, err);
    while (rc == 0 && (rc = sq_step(c, st, err, "audit scan")) == SQLITE_ROW) {
        kw_audit_rec_t r;
        if (row_audit(st, &r)) {
            rc = kw_err_set(err, KW_ENOMEM, NULL, NULL);
            break;
        }
        rc = cb(ud, &r);
        kw_audit_rec_clear(&r);
    }
    if (rc == SQLITE_DONE)
        rc = sq_prep(c, ST_META_GET, &ms, err);
    if (rc == 0)
        rc = sq_bound(c, bind_text(ms, 1, meta_key), err);
    if (rc == 0)
        rc = sq_step(c, ms, err, "meta lookup");
    if (rc == SQLITE_ROW && col_dup(ms, 0, &meta))
        rc = kw_err_set(err, KW_ENOMEM, NULL, NULL);
    if (rc == SQLITE_ROW || rc == SQLITE_DONE) {
        *meta_out = meta;
        meta = NULL;
        rc = 0;
    }
    free(meta);
    sq_done(st);
    sq_done(ms);
    if (began)
        sq_run(c, ST_ROLLBACK, NULL, "end read");
    rd_end(s, c);
    return rc;
}

/* ---- renewal requests --------------------------------------------------------------- */

static void row_renewal(sqlite3_stmt *st, kw_renewal_t *r)
{
    memset(r, 0, sizeof(*r));
    col_cpy(st, 0, r->id, sizeof(r->id));
    col_cpy(st, 1, r->key_id, sizeof(r->key_id));
    col_cpy(st, 2, r->requested_by, sizeof(r->requested_by));
    r->extend_by = sqlite3_column_int64(st, 3);
    r->expires_at = sqlite3_column_int64(st, 4);
    col_cpy(st, 5, r->reason, sizeof(r->reason));
    col_cpy(st, 6, r->state, sizeof(r->state));
    col_cpy(st, 7, r->decided_by, sizeof(r->decided_by));
    r->decided_at = sqlite3_column_int64(st, 8);
    col_cpy(st, 9, r->note, sizeof(r->note));
    r->created_at = sqlite3_column_int64(st, 10);
}

static int ren_write(kw_store_t *base, const kw_renewal_t *r, int insert, kw_err_t *err)
{
    sq_conn_t *c = NULL;
    sqlite3_stmt *st = NULL;
    int rc = wr_conn(SQ(base), &c, err);
    if (rc == 0)
        rc = sq_prep(c, insert ? ST_REN_INSERT : ST_REN_UPDATE, &st, err);
    if (rc)
        return rc;
    rc = sq_bound(c,
                  bind_text(st, 1, r->id) | bind_text(st, 2, r->key_id) |
                      bind_text(st, 3, r->requested_by) | bind_time(st, 4, r->extend_by) |
                      bind_time(st, 5, r->expires_at) | bind_opt_text(st, 6, r->reason) |
                      bind_text(st, 7, r->state) | bind_opt_text(st, 8, r->decided_by) |
                      bind_time(st, 9, r->decided_at) | bind_opt_text(st, 10, r->note) |
                      (insert ? sqlite3_bind_int64(st, 11, r->created_at) : SQLITE_OK),
                  err);
    if (rc == 0)
        rc = sq_step(c, st, err, insert ? "renewal insert" : "renewal update");
    if (rc == KW_ECONFLICT)
        rc = c->xrc == SQLITE_CONSTRAINT_FOREIGNKEY
                 ? kw_err_set(err, KW_ENOTFOUND, "key_id", "key not found")
                 : kw_err_set(err, KW_ECONFLICT, "id", "renewal id already exists");
    if (rc >= 0)
        rc = insert || sqlite3_changes(c->db)
                 ? 0
                 : kw_err_set(err, KW_ENOTFOUND, "id", "renewal not found");
    sq_done(st);
    return rc;
}

static int sq_renewal_insert(kw_store_t *base, const kw_renewal_t *r, kw_err_t *err)
{
    return ren_write(base, r, 1, err);
}

static int sq_renewal_update(kw_store_t *base, const kw_renewal_t *r, kw_err_t *err)
{
    return ren_write(base, r, 0, err);
}

static int sq_renewal_get(kw_store_t *base, const char *id, kw_renewal_t *out, kw_err_t *err)
{
    kw_sqlite_t *s = SQ(base);
    sq_conn_t *c = rd_begin(s);
    sqlite3_stmt *st = NULL;
    int rc = sq_prep(c, ST_REN_GET, &st, err);
    if (rc == 0)
        rc = sq_bound(c, bind_text(st, 1, id), err);
    if (rc == 0)
        rc = sq_step(c, st, err, "renewal lookup");
    if (rc == SQLITE_ROW) {
        row_renewal(st, out);
        rc = 0;
    } else if (rc == SQLITE_DONE) {
        rc = kw_err_set(err, KW_ENOTFOUND, "id", "renewal not found");
    }
    sq_done(st);
    rd_end(s, c);
    return rc;
}

/* Collect every row of a REN_COLS statement. */
static int ren_rows(sq_conn_t *c, sqlite3_stmt *st, kw_renewal_t **out, size_t *n, kw_err_t *err)
{
    kw_renewal_t *a = NULL;
    size_t cnt = 0, cap = 0;
    int rc;
    while ((rc = sq_step(c, st, err, "renewal list")) == SQLITE_ROW) {
        if (grow((void **)&a, &cap, cnt + 1, sizeof(*a))) {
            rc = kw_err_set(err, KW_ENOMEM, NULL, NULL);
            break;
        }
        row_renewal(st, &a[cnt++]);
    }
    if (rc != SQLITE_DONE) {
        free(a);
        return rc;
    }
    *out = a;
    *n = cnt;
    return 0;
}

static int sq_renewal_list(kw_store_t *base, const kw_renewal_filter_t *f, kw_renewal_t **out,
                           size_t *n, kw_err_t *err)
{
    kw_sqlite_t *s = SQ(base);
    sq_conn_t *c = rd_begin(s);
    sqlite3_stmt *st = NULL;
    char sql[384];
    int64_t lim = f->limit > INT64_MAX ? INT64_MAX : (int64_t)f->limit;
    snprintf(sql, sizeof(sql),
             "SELECT " REN_COLS " FROM renewals WHERE 1%s%s%s"
             " ORDER BY created_at, id LIMIT ?5",
             f->state ? " AND state = ?1" : "", f->key_id ? " AND key_id = ?2" : "",
             f->after_created > 0 ? " AND (created_at, id) > (?3, ?4)" : "");
    int rc = sqlite3_prepare_v2(c->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        rc = sq_err(c, rc, err, "renewal list");
    else
        rc = sq_bound(c,
                      (f->state ? bind_text(st, 1, f->state) : SQLITE_OK) |
                          (f->key_id ? bind_text(st, 2, f->key_id) : SQLITE_OK) |
                          (f->after_created > 0
                               ? sqlite3_bind_int64(st, 3, f->after_created) |
                                     bind_text(st, 4, f->after_id ? f->after_id : "")
                               : SQLITE_OK) |
                          sqlite3_bind_int64(st, 5, lim),
                      err);
    if (rc == 0)
        rc = ren_rows(c, st, out, n, err);
    sqlite3_finalize(st);
    rd_end(s, c);
    return rc;
}

static int sq_renewal_stale(kw_store_t *base, int64_t now, size_t limit, kw_renewal_t **out,
                            size_t *n, kw_err_t *err)
{
    kw_sqlite_t *s = SQ(base);
    sq_conn_t *c = rd_begin(s);
    sqlite3_stmt *st = NULL;
    int64_t lim = limit > INT64_MAX ? INT64_MAX : (int64_t)limit;
    int rc = sq_prep(c, ST_REN_STALE, &st, err);
    if (rc == 0)
        rc = sq_bound(c, sqlite3_bind_int64(st, 1, now) | sqlite3_bind_int64(st, 2, lim), err);
    if (rc == 0)
        rc = ren_rows(c, st, out, n, err);
    sq_done(st);
    rd_end(s, c);
    return rc;
}

const kw_store_ops_t kw_store_sqlite_ops = {
    .scheme = "sqlite",
    .open = sq_open,
    .close = sq_close,
    .file = sq_file,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .savepoint = sq_savepoint,
    .savepoint_end = sq_savepoint_end,
    .meta_get = sq_meta_get,
    .meta_set = sq_meta_set,
    .policy_get = sq_policy_get,
    .policy_put = sq_policy_put,
    .policy_list = sq_policy_list,
    .cred_insert = sq_cred_insert,
    .cred_update = sq_cred_update,
    .cred_get = sq_cred_get,
    .cred_list = sq_cred_list,
    .key_insert = sq_key_insert,
    .key_update = sq_key_update,
    .key_get = sq_key_get,
    .key_list_cred = sq_key_list_cred,
    .key_expiring = sq_key_expiring,
    .usage_apply = sq_usage_apply,
    .event_insert = sq_event_insert,
    .load_all = sq_load_all,
    .counts = sq_counts,
    .audit_insert = sq_audit_insert,
    .audit_head = sq_audit_head,
    .audit_list = sq_audit_list,
    .audit_scan = sq_audit_scan,
    .renewal_insert = sq_renewal_insert,
    .renewal_update = sq_renewal_update,
    .renewal_get = sq_renewal_get,
    .renewal_list = sq_renewal_list,
    .renewal_stale = sq_renewal_stale,
};
