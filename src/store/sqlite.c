/* sqlite.c - the SQLite store backend: one file in WAL mode, a writer connection used only
 * by the thread holding the write transaction and a reader connection for every other
 * thread. This file: the schema and its migrations, open / close, WAL checkpoints,
 * transactions and savepoints, meta, policies and the ops table; the other sqlite*.c files
 * hold the rest, over the shared plumbing of sqlite_int.h. It never logs, and its error
 * messages carry sqlite3_errmsg only, never values. */
#include "sqlite.h"
#include "sqlite_int.h"
#include "store_codec.h"
#include "store_notify.h"
#include "store_session.h"
#include "store_watched.h"

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

/* Migration 1: everything. Later migrations append to `migrations[]`, never edit this one
 * (nor KW_DDL_CREDENTIALS in store_cols.h, which it shares with PostgreSQL's).
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
    KW_DDL_CREDENTIALS("INTEGER PRIMARY KEY AUTOINCREMENT", "INTEGER", "", " STRICT;")

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
    ST__COUNT
};

static kw_sqlite_stmt_t stmts[ST__COUNT] = {
    [ST_BEGIN_IMMEDIATE] = {.sql = "BEGIN IMMEDIATE"},
    [ST_BEGIN] = {.sql = "BEGIN"},
    [ST_COMMIT] = {.sql = "COMMIT"},
    [ST_ROLLBACK] = {.sql = "ROLLBACK"},
    [ST_SAVEPOINT] = {.sql = "SAVEPOINT op"},
    [ST_RELEASE] = {.sql = "RELEASE op"},
    [ST_ROLLBACK_TO] = {.sql = "ROLLBACK TO op"},
    [ST_META_GET] = {.sql = "SELECT value FROM meta WHERE key = ?1"},
    [ST_META_SET] = {.sql = "INSERT INTO meta (key, value) VALUES (?1, ?2)"
                            " ON CONFLICT (key) DO UPDATE SET value = excluded.value"},
    [ST_POLICY_GET] = {.sql = "SELECT " KW_COLS_POLICY " FROM policies WHERE name = ?1"},
    [ST_POLICY_INSERT] = {.sql = "INSERT INTO policies (" KW_COLS_POLICY ")"
                                 " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"},
    [ST_POLICY_UPDATE] = {.sql = "UPDATE policies SET default_lifetime = ?2, max_lifetime = ?3,"
                                 " allow_never_expire = ?4, renewable = ?5,"
                                 " renewal_requires_approval = ?6, thresholds = ?7,"
                                 " max_roll_overlap = ?8, updated_at = ?10, token_lifetime = ?11"
                                 " WHERE name = ?1"},
    [ST_POLICY_LIST] = {.sql = "SELECT " KW_COLS_POLICY " FROM policies ORDER BY name"},
};

/* Run one of this file's statements that takes no parameters. */
static int run(kw_sqlite_conn_t *c, int id, kw_err_t *err, const char *what)
{
    return kw_sqlite_run(c, &stmts[id], KW_SQ_NOARGS, err, what);
}

/* ---- row codecs --------------------------------------------------------------------- */

static int row_policy(sqlite3_stmt *st, void *out)
{
    kw_sqlite_row_t r;
    kw_sqlite_row_src(&r, st);
    return kw_row_policy(&r.src, out);
}

/* ---- open, migrate, close ----------------------------------------------------------- */

static int conn_exec(kw_sqlite_conn_t *c, const char *sql, kw_err_t *err, const char *what)
{
    int rc = sqlite3_exec(c->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : kw_sqlite_fail(c, rc, err, what);
}

/* One-row, one-column query into an int64 (0 when there is no row). */
static int conn_int(kw_sqlite_conn_t *c, const char *sql, int64_t *out, kw_err_t *err,
                    const char *what)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(c->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK) {
        rc = kw_sqlite_fail(c, rc, err, what);
        goto out;
    }
    rc = kw_sqlite_step(c, st, err, what);
    if (rc < 0)
        goto out;
    *out = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    rc = 0;
out:
    sqlite3_finalize(st);
    return rc;
}

static int conn_open(kw_sqlite_conn_t *c, const char *path, int writer, kw_err_t *err)
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
            kw_sqlite_col_cpy(st, 0, mode, sizeof(mode));
            rc = SQLITE_OK;
        }
        if (rc != SQLITE_OK)
            rc = kw_sqlite_fail(c, rc, err, "enable WAL");
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

static int policy_write(kw_sqlite_conn_t *c, const kw_policy_t *p, int create, kw_err_t *err);

/* Apply pending migrations and make sure `default` exists, in one transaction. */
static int migrate(kw_sqlite_conn_t *c, kw_err_t *err)
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
    kw_sqlite_conn_t c = {0};
    kw_err_t e = {0};
    if (conn_open(&c, s->path, 1, &e) != 0) {
        kw_sqlite_conn_close(&c);
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

static void sq_close(kw_store_t *base)
{
    kw_sqlite_t *s = KW_SQ(base);
    if (kw_sqlite_in_tx(s))
        kw_sqlite_rollback(base);
    if (s->r.db) /* fully opened: keep planner statistics fresh (cheap when nothing to do) */
        sqlite3_exec(s->w.db, "PRAGMA optimize", NULL, NULL, NULL);
    ck_stop(s);
    kw_sqlite_conn_close(&s->r);
    kw_sqlite_conn_close(&s->w); /* last, so SQLite checkpoints and removes the WAL */
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
    s->base.oauth = &kw_sqlite_oauth_ops;         /* sqlite_oauth.c */
    s->base.retention = &kw_sqlite_retention_ops; /* sqlite_retention.c */
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

int kw_sqlite_begin(kw_store_t *base, kw_err_t *err)
{
    kw_sqlite_t *s = KW_SQ(base);
    if (kw_sqlite_in_tx(s))
        return kw_err_set(err, KW_EINTERNAL, NULL, "store: transaction already open");
    pthread_mutex_lock(&s->wmu);
    if (!sqlite3_get_autocommit(s->w.db)) /* a ROLLBACK that failed earlier: retry it */
        run(&s->w, ST_ROLLBACK, NULL, "rollback");
    /* IMMEDIATE takes SQLite's write lock now (waiting up to busy_timeout for another
     * process), so the transaction cannot fail later on a lock upgrade. */
    int rc = run(&s->w, ST_BEGIN_IMMEDIATE, err, "begin");
    if (rc) {
        pthread_mutex_unlock(&s->wmu);
        return rc;
    }
    s->w.failed = 0;
    s->w.in_sp = 0;
    kw_sqlite_set_owner(s, 1);
    return 0;
}

static void tx_release(kw_sqlite_t *s)
{
    kw_sqlite_set_owner(s, 0);
    pthread_mutex_unlock(&s->wmu);
}

int kw_sqlite_commit(kw_store_t *base, kw_err_t *err)
{
    kw_sqlite_t *s = KW_SQ(base);
    int rc;
    if (!kw_sqlite_in_tx(s))
        return kw_err_set(err, KW_EINTERNAL, NULL, "store: commit without a transaction");
    if (s->w.failed || sqlite3_get_autocommit(s->w.db)) {
        /* A statement failed in the backend (disk full, I/O error): SQLite may have rolled
         * back all of the transaction or only that statement; commit neither half. */
        rc = kw_err_set(err, KW_ESTORE, NULL,
                        "store: commit refused after an earlier failure (%s); rolled back",
                        s->w.failed ? s->w.failmsg : "transaction aborted");
        if (!sqlite3_get_autocommit(s->w.db))
            run(&s->w, ST_ROLLBACK, NULL, "rollback");
    } else {
        rc = run(&s->w, ST_COMMIT, err, "commit");
        if (rc && !sqlite3_get_autocommit(s->w.db))
            run(&s->w, ST_ROLLBACK, NULL, "rollback");
    }
    tx_release(s);
    return rc;
}

void kw_sqlite_rollback(kw_store_t *base)
{
    kw_sqlite_t *s = KW_SQ(base);
    if (!kw_sqlite_in_tx(s))
        return;
    if (!sqlite3_get_autocommit(s->w.db))
        run(&s->w, ST_ROLLBACK, NULL, "rollback");
    tx_release(s);
}

/* Tx alive: the writer is still inside our transaction and no statement broke it. */
static int tx_usable(kw_sqlite_conn_t *c)
{
    return !c->failed && !sqlite3_get_autocommit(c->db);
}

static int sq_savepoint(kw_store_t *base, kw_err_t *err)
{
    kw_sqlite_t *s = KW_SQ(base);
    if (!kw_sqlite_in_tx(s))
        return kw_err_set(err, KW_EINTERNAL, NULL, "store: savepoint outside a transaction");
    if (s->w.in_sp)
        return kw_err_set(err, KW_EINTERNAL, NULL, "store: savepoint already open");
    if (!tx_usable(&s->w))
        return kw_err_set(err, KW_ESTORE, NULL, "store: transaction lost after an earlier failure");
    int rc = run(&s->w, ST_SAVEPOINT, err, "savepoint");
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
    kw_sqlite_t *s = KW_SQ(base);
    kw_sqlite_conn_t *c = &s->w;
    if (!kw_sqlite_in_tx(s) || !c->in_sp)
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
        if (run(c, ST_ROLLBACK_TO, err, "rollback to savepoint") != 0)
            return KW_ESTORE; /* kw_sqlite_fail marked the transaction failed */
    }
    if (run(c, ST_RELEASE, err, "release savepoint") != 0)
        return KW_ESTORE;
    if (sqlite3_get_autocommit(c->db))
        return kw_err_set(err, KW_ESTORE, NULL, "store: transaction aborted");
    return 0;
}

int kw_store_sqlite_exec(kw_store_t *base, const char *sql, kw_err_t *err)
{
    if (base == NULL || base->ops != &kw_store_sqlite_ops || sql == NULL)
        return kw_err_set(err, KW_EINVAL, NULL, "store: not a SQLite store");
    kw_sqlite_conn_t *c = NULL;
    int rc = kw_sqlite_wr(KW_SQ(base), &c, err);
    return rc ? rc : conn_exec(c, sql, err, "exec");
}

/* security: rewrite the file without stale bytes (VACUUM, with secure_delete) and empty
 * the WAL, after secrets were sealed in place. Outside any transaction; startup only. */
int kw_store_sqlite_scrub(kw_store_t *base, kw_err_t *err)
{
    if (base == NULL || base->ops != &kw_store_sqlite_ops)
        return 0;
    kw_sqlite_t *s = KW_SQ(base);
    pthread_mutex_lock(&s->wmu);
    int rc = conn_exec(&s->w, "PRAGMA secure_delete = ON; VACUUM; PRAGMA wal_checkpoint(TRUNCATE);",
                       err, "scrub");
    pthread_mutex_unlock(&s->wmu);
    return rc;
}

int kw_sqlite_read_begin(kw_sqlite_t *s, kw_sqlite_conn_t *c, kw_err_t *err)
{
    if (c != &s->r)
        return 0;
    int rc = run(c, ST_BEGIN, err, "begin read");
    return rc ? rc : 1;
}

void kw_sqlite_read_end(kw_sqlite_conn_t *c, int began)
{
    if (began)
        run(c, ST_ROLLBACK, NULL, "end read");
}

void kw_sqlite_unmap(kw_sqlite_conn_t *c)
{
    /* Changing the limit makes SQLite unmap the file (~270 B per key stayed resident at
     * 1 M keys after load_all). */
    char sql[64];
    sqlite3_exec(c->db, "PRAGMA mmap_size = 0", NULL, NULL, NULL);
    snprintf(sql, sizeof(sql), "PRAGMA mmap_size = %lld", SQ_READER_MMAP_BYTES);
    sqlite3_exec(c->db, sql, NULL, NULL, NULL);
}

/* ---- meta --------------------------------------------------------------------------- */

static int row_text(sqlite3_stmt *st, void *out)
{
    char *v = NULL;
    if (kw_sqlite_col_dup(st, 0, &v) || v == NULL)
        return KW_ENOMEM;
    *(char **)out = v;
    return 0;
}

static const kw_sqlite_rowtype_t TEXT_ROWS = {sizeof(char *), row_text, NULL};
static const kw_sqlite_query_t q_meta = {&stmts[ST_META_GET], "meta lookup", &TEXT_ROWS, "key",
                                         "store: no such meta key"};

static int row_text_opt(sqlite3_stmt *st, void *out)
{
    return kw_sqlite_col_dup(st, 0, out);
}

static void clear_text(void *v)
{
    free(*(char **)v);
}

static const kw_sqlite_rowtype_t OPT_TEXT_ROWS = {sizeof(char *), row_text_opt, clear_text};
static const kw_sqlite_query_t q_meta_opt = {
    .stmt = &stmts[ST_META_GET], .what = "meta lookup", .rows = &OPT_TEXT_ROWS};

int kw_sqlite_meta_on(kw_sqlite_conn_t *c, const char *key, char **out, kw_err_t *err)
{
    char **a = NULL;
    size_t n = 0;
    int rc = kw_sqlite_list_on(c, &q_meta_opt, KW_SQ_ARGS(KW_SQA_TEXT(key)), &a, &n, err);
    if (rc == 0) {
        *out = n ? a[0] : NULL;
        for (size_t i = 1; i < n; i++) /* key is the primary key: never more than one */
            free(a[i]);
        free(a);
    }
    return rc;
}

static int sq_meta_get(kw_store_t *base, const char *key, char **value_out, kw_err_t *err)
{
    return kw_sqlite_get(KW_SQ(base), &q_meta, KW_SQ_ARGS(KW_SQA_TEXT(key)), value_out, err);
}

static int sq_meta_set(kw_store_t *base, const char *key, const char *value, kw_err_t *err)
{
    return kw_sqlite_write(KW_SQ(base), &stmts[ST_META_SET],
                           KW_SQ_ARGS(KW_SQA_TEXT(key), KW_SQA_TEXT(value)), err, "meta write");
}

/* ---- policies ----------------------------------------------------------------------- */

static const kw_sqlite_rowtype_t POLICY_ROWS = {sizeof(kw_policy_t), row_policy, NULL};
static const kw_sqlite_query_t q_policy_get = {&stmts[ST_POLICY_GET], "policy lookup", &POLICY_ROWS,
                                               "name", "policy not found"};
static const kw_sqlite_query_t q_policy_list = {
    .stmt = &stmts[ST_POLICY_LIST], .what = "policy list", .rows = &POLICY_ROWS};

static int policy_write(kw_sqlite_conn_t *c, const kw_policy_t *p, int create, kw_err_t *err)
{
    char th[KW_THRESHOLDS_TEXT_MAX];
    kw_thresholds_format(p, th, sizeof(th));
    int rc = kw_sqlite_run(
        c, &stmts[create ? ST_POLICY_INSERT : ST_POLICY_UPDATE],
        KW_SQ_ARGS(KW_SQA_TEXT(p->name), KW_SQA_INT(p->default_lifetime),
                   KW_SQA_INT(p->max_lifetime), KW_SQA_INT(p->allow_never_expire != 0),
                   KW_SQA_INT(p->renewable != 0), KW_SQA_INT(p->renewal_requires_approval != 0),
                   KW_SQA_TEXT(th), KW_SQA_INT(p->max_roll_overlap), KW_SQA_INT(p->created_at),
                   KW_SQA_INT(p->updated_at), KW_SQA_INT(p->token_lifetime)),
        err, create ? "policy insert" : "policy update");
    if (rc == KW_ECONFLICT)
        return kw_err_set(err, KW_ECONFLICT, "name", "policy already exists");
    if (rc == 0 && !create && sqlite3_changes(c->db) == 0)
        rc = kw_err_set(err, KW_ENOTFOUND, "name", "policy not found");
    return rc;
}

static int sq_policy_put(kw_store_t *base, const kw_policy_t *p, int create, kw_err_t *err)
{
    kw_sqlite_conn_t *c = NULL;
    int rc = kw_sqlite_wr(KW_SQ(base), &c, err);
    return rc ? rc : policy_write(c, p, create, err);
}

static int sq_policy_get(kw_store_t *base, const char *name, kw_policy_t *out, kw_err_t *err)
{
    return kw_sqlite_get(KW_SQ(base), &q_policy_get, KW_SQ_ARGS(KW_SQA_TEXT(name)), out, err);
}

static int sq_policy_list(kw_store_t *base, kw_policy_t **out, size_t *n, kw_err_t *err)
{
    return kw_sqlite_list(KW_SQ(base), &q_policy_list, KW_SQ_NOARGS, out, n, err);
}

/* ---- the ops table ------------------------------------------------------------------ */

const kw_store_ops_t kw_store_sqlite_ops = {
    .scheme = "sqlite",
    .open = sq_open,
    .close = sq_close,
    .file = sq_file,
    .begin = kw_sqlite_begin,
    .commit = kw_sqlite_commit,
    .rollback = kw_sqlite_rollback,
    .savepoint = sq_savepoint,
    .savepoint_end = sq_savepoint_end,
    .meta_get = sq_meta_get,
    .meta_set = sq_meta_set,
    .policy_get = sq_policy_get,
    .policy_put = sq_policy_put,
    .policy_list = sq_policy_list,
    .cred_insert = kw_sqlite_cred_insert,
    .cred_update = kw_sqlite_cred_update,
    .cred_get = kw_sqlite_cred_get,
    .cred_list = kw_sqlite_cred_list,
    .key_insert = kw_sqlite_key_insert,
    .key_update = kw_sqlite_key_update,
    .key_get = kw_sqlite_key_get,
    .key_list_cred = kw_sqlite_key_list_cred,
    .key_expiring = kw_sqlite_key_expiring,
    .usage_apply = kw_sqlite_usage_apply,
    .event_insert = kw_sqlite_event_insert,
    .load_all = kw_sqlite_load_all,
    .secret_scan = kw_sqlite_secret_scan,
    .counts = kw_sqlite_counts,
    .audit_insert = kw_sqlite_audit_insert,
    .audit_head = kw_sqlite_audit_head,
    .audit_list = kw_sqlite_audit_list,
    .audit_scan = kw_sqlite_audit_scan,
    .renewal_insert = kw_sqlite_renewal_insert,
    .renewal_update = kw_sqlite_renewal_update,
    .renewal_get = kw_sqlite_renewal_get,
    .renewal_list = kw_sqlite_renewal_list,
    .renewal_stale = kw_sqlite_renewal_stale,
};
