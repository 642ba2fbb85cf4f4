/* sqlite_watched.c - the SQLite side of store_watched.h: watched credentials, their refresher
 * state and expiry alerts. All of its SQL is in this file (schema and statements), so the
 * PostgreSQL backend can mirror it. Statements are cached per connection (dropped by
 * kw_sqlite_watched_forget when sqlite.c closes one). Never logs; messages carry sqlite3_errmsg
 * only, never values. */
#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "store_impl.h"
#include "store_watched.h"

/* The alert expiry of a row: the sooner of expires_at and refresh_expires_at (non-zero). */
#define AEXP(p)                                                                                    \
    "(CASE WHEN " p "expires_at > 0 AND (" p "refresh_expires_at = 0 OR " p "expires_at <= " p     \
    "refresh_expires_at) THEN " p "expires_at ELSE " p "refresh_expires_at END)"

/* Migration (watched branch). next_alert_at: NULL = no alert ahead, 0 = re-armed (recompute
 * at the scheduler's next look); the triggers arm it whenever the expiry, the policy or the
 * policy's thresholds change, whatever code path made the change. */
const char kw_sqlite_watched_migration[] =
    "CREATE TABLE watched ("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  id TEXT UNIQUE NOT NULL,"
    "  name TEXT NOT NULL,"
    "  provider TEXT,"
    "  owner TEXT,"
    "  contacts TEXT NOT NULL DEFAULT '[]',"
    "  policy TEXT NOT NULL REFERENCES policies(name),"
    "  kind TEXT NOT NULL CHECK (kind IN ('static', 'oauth2')),"
    "  secret_sealed TEXT,"
    "  secret_hint TEXT NOT NULL DEFAULT '',"
    "  expires_at INTEGER NOT NULL DEFAULT 0,"
    "  token_url TEXT,"
    "  grant_type TEXT NOT NULL DEFAULT '',"
    "  client_id TEXT,"
    "  client_secret_sealed TEXT,"
    "  client_secret_hint TEXT NOT NULL DEFAULT '',"
    "  refresh_token_sealed TEXT,"
    "  refresh_token_prev_sealed TEXT,"
    "  refresh_token_hint TEXT NOT NULL DEFAULT '',"
    "  refresh_expires_at INTEGER NOT NULL DEFAULT 0,"
    "  scope TEXT,"
    "  auth_method TEXT NOT NULL DEFAULT '',"
    "  token_file TEXT,"
    "  access_token_sealed TEXT,"
    "  token_type TEXT NOT NULL DEFAULT '',"
    "  token_obtained_ms INTEGER NOT NULL DEFAULT 0,"
    "  token_expires_ms INTEGER NOT NULL DEFAULT 0,"
    "  token_lapse_raised INTEGER NOT NULL DEFAULT 0,"
    "  next_refresh_ms INTEGER NOT NULL DEFAULT 0,"
    "  failures INTEGER NOT NULL DEFAULT 0,"
    "  last_error TEXT NOT NULL DEFAULT '',"
    "  last_status INTEGER NOT NULL DEFAULT 0,"
    "  last_attempt_ms INTEGER NOT NULL DEFAULT 0,"
    "  last_success_ms INTEGER NOT NULL DEFAULT 0,"
    "  gen INTEGER NOT NULL DEFAULT 0,"
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL,"
    "  deleted_at INTEGER,"
    "  next_alert_at INTEGER"
    ") STRICT;"
    "CREATE INDEX watched_owner ON watched(owner, seq);"
    "CREATE INDEX watched_refresh ON watched(next_refresh_ms)"
    " WHERE kind = 'oauth2' AND deleted_at IS NULL;"
    "CREATE INDEX watched_alert_due ON watched(next_alert_at) WHERE next_alert_at IS NOT NULL;"
    "CREATE TRIGGER watched_alert_arm_insert AFTER INSERT ON watched"
    " WHEN " AEXP(
        "NEW.") " > 0"
                " BEGIN UPDATE watched SET next_alert_at = 0 WHERE seq = NEW.seq; END;"
                "CREATE TRIGGER watched_alert_arm_update AFTER UPDATE OF expires_at, "
                "refresh_expires_at,"
                " policy, deleted_at ON watched"
                " WHEN NEW.expires_at IS NOT OLD.expires_at"
                "  OR NEW.refresh_expires_at IS NOT OLD.refresh_expires_at"
                "  OR NEW.policy IS NOT OLD.policy OR NEW.deleted_at IS NOT OLD.deleted_at"
                " BEGIN UPDATE watched SET next_alert_at = CASE WHEN NEW.deleted_at IS NULL"
                "  AND " AEXP(
                    "NEW.") " > 0 THEN 0 END WHERE seq = NEW.seq; END;"
                            "CREATE TRIGGER policies_watched_alert_arm AFTER UPDATE OF thresholds "
                            "ON policies"
                            " WHEN NEW.thresholds IS NOT OLD.thresholds"
                            " BEGIN UPDATE watched SET next_alert_at = 0 WHERE policy = NEW.name"
                            "  AND deleted_at IS NULL AND " AEXP(
                                "") " > 0; END;"
                                    /* threshold: seconds before the alert expiry; 0 =
                                       watched.expired */
                                    "CREATE TABLE watched_alerts ("
                                    "  watched_id TEXT NOT NULL,"
                                    "  expires_at INTEGER NOT NULL,"
                                    "  threshold INTEGER NOT NULL,"
                                    "  event_id TEXT,"
                                    "  at INTEGER NOT NULL,"
                                    "  PRIMARY KEY (watched_id, expires_at, threshold)"
                                    ") STRICT, WITHOUT ROWID;";

#define COLS                                                                                       \
    "seq, id, name, provider, owner, contacts, policy, kind, secret_sealed, secret_hint, "         \
    "expires_at, token_url, grant_type, client_id, client_secret_sealed, client_secret_hint, "     \
    "refresh_token_sealed, refresh_token_prev_sealed, refresh_token_hint, refresh_expires_at, "    \
    "scope, auth_method, token_file, access_token_sealed, token_type, token_obtained_ms, "         \
    "token_expires_ms, token_lapse_raised, next_refresh_ms, failures, last_error, last_status, "   \
    "last_attempt_ms, last_success_ms, gen, created_at, updated_at, deleted_at"

static const char SQL_INSERT[] =
    "INSERT INTO watched (id, name, provider, owner, contacts, policy, kind, secret_sealed,"
    " secret_hint, expires_at, token_url, grant_type, client_id, client_secret_sealed,"
    " client_secret_hint, refresh_token_sealed, refresh_token_prev_sealed, refresh_token_hint,"
    " refresh_expires_at, scope, auth_method, token_file, access_token_sealed, token_type,"
    " token_obtained_ms, token_expires_ms, token_lapse_raised, next_refresh_ms, failures,"
    " last_error, last_status, last_attempt_ms, last_success_ms, gen, created_at, updated_at,"
    " deleted_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15,"
    " ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30, ?31, ?32, ?33,"
    " ?34, ?35, ?36, ?37)";
static const char SQL_UPDATE[] =
    "UPDATE watched SET name = ?2, provider = ?3, owner = ?4, contacts = ?5, policy = ?6,"
    " kind = ?7, secret_sealed = ?8, secret_hint = ?9, expires_at = ?10, token_url = ?11,"
    " grant_type = ?12, client_id = ?13, client_secret_sealed = ?14, client_secret_hint = ?15,"
    " refresh_token_sealed = ?16, refresh_token_prev_sealed = ?17, refresh_token_hint = ?18,"
    " refresh_expires_at = ?19, scope = ?20, auth_method = ?21, token_file = ?22,"
    " access_token_sealed = ?23, token_type = ?24, token_obtained_ms = ?25,"
    " token_expires_ms = ?26, token_lapse_raised = ?27, next_refresh_ms = ?28, failures = ?29,"
    " last_error = ?30, last_status = ?31, last_attempt_ms = ?32, last_success_ms = ?33,"
    " gen = ?34, updated_at = ?36, deleted_at = ?37 WHERE id = ?1";
static const char SQL_GET[] = "SELECT " COLS " FROM watched WHERE id = ?1 AND deleted_at IS NULL";
static const char SQL_LIST[] =
    "SELECT " COLS " FROM watched WHERE deleted_at IS NULL AND seq > ?1"
    " AND (?2 IS NULL OR owner = ?2) AND (?3 IS NULL OR kind = ?3)"
    " AND (?4 IS NULL OR (" AEXP("") " > ?5 AND " AEXP("") " <= ?4))"
                                                           " ORDER BY seq LIMIT ?6";
static const char SQL_REFRESH_DUE[] =
    "SELECT " COLS " FROM watched WHERE kind = 'oauth2' AND deleted_at IS NULL"
    " AND next_refresh_ms <= ?1 ORDER BY next_refresh_ms LIMIT ?2";
static const char SQL_REFRESH_NEXT[] =
    "SELECT min(next_refresh_ms) FROM watched WHERE kind = 'oauth2' AND deleted_at IS NULL";
static const char SQL_ALERT_DUE[] =
    "SELECT " COLS ", next_alert_at FROM watched WHERE next_alert_at IS NOT NULL"
    " AND next_alert_at <= ?1 ORDER BY next_alert_at LIMIT ?2";
static const char SQL_ALERT_DONE[] =
    "SELECT threshold FROM watched_alerts WHERE watched_id = ?1 AND expires_at = ?2";
static const char SQL_ALERT_RECORD[] =
    "INSERT OR IGNORE INTO watched_alerts (watched_id, expires_at, threshold, event_id, at)"
    " VALUES (?1, ?2, ?3, ?4, ?5)";
static const char SQL_ALERT_NEXT[] = "UPDATE watched SET next_alert_at = ?2 WHERE id = ?1";

/* ---- helpers ---- */

void kw_watched_clear(kw_watched_t *w)
{
    if (w == NULL)
        return;
    char **owned[] = {&w->provider,
                      &w->owner,
                      &w->contacts_json,
                      &w->secret_sealed,
                      &w->token_url,
                      &w->client_id,
                      &w->client_secret_sealed,
                      &w->refresh_token_sealed,
                      &w->refresh_token_prev_sealed,
                      &w->scope,
                      &w->token_file,
                      &w->access_token_sealed};
    for (size_t i = 0; i < sizeof(owned) / sizeof(owned[0]); i++)
        free(*owned[i]);
    memset(w, 0, sizeof(*w));
}

void kw_watched_array_free(kw_watched_t *a, size_t n)
{
    for (size_t i = 0; a && i < n; i++)
        kw_watched_clear(&a[i]);
    free(a);
}

static int dup_opt(char **dst, const char *src)
{
    *dst = NULL;
    if (src && (*dst = strdup(src)) == NULL)
        return KW_ENOMEM;
    return 0;
}

int kw_watched_copy(kw_watched_t *dst, const kw_watched_t *src)
{
    kw_watched_t c = *src;
    int rc = 0;
    rc |= dup_opt(&c.provider, src->provider);
    rc |= dup_opt(&c.owner, src->owner);
    rc |= dup_opt(&c.contacts_json, src->contacts_json);
    rc |= dup_opt(&c.secret_sealed, src->secret_sealed);
    rc |= dup_opt(&c.token_url, src->token_url);
    rc |= dup_opt(&c.client_id, src->client_id);
    rc |= dup_opt(&c.client_secret_sealed, src->client_secret_sealed);
    rc |= dup_opt(&c.refresh_token_sealed, src->refresh_token_sealed);
    rc |= dup_opt(&c.refresh_token_prev_sealed, src->refresh_token_prev_sealed);
    rc |= dup_opt(&c.scope, src->scope);
    rc |= dup_opt(&c.token_file, src->token_file);
    rc |= dup_opt(&c.access_token_sealed, src->access_token_sealed);
    if (rc) {
        kw_watched_clear(&c);
        return KW_ENOMEM;
    }
    *dst = c;
    return 0;
}

int64_t kw_watched_alert_expiry(const kw_watched_t *w)
{
    if (w->expires_at > 0 && (w->refresh_expires_at == 0 || w->expires_at <= w->refresh_expires_at))
        return w->expires_at;
    return w->refresh_expires_at;
}

/* ---- statement cache: per connection, dropped by kw_sqlite_watched_forget ---- */

static const char *const all_sql[] = {
    SQL_INSERT,       SQL_UPDATE,    SQL_GET,        SQL_LIST,         SQL_REFRESH_DUE,
    SQL_REFRESH_NEXT, SQL_ALERT_DUE, SQL_ALERT_DONE, SQL_ALERT_RECORD, SQL_ALERT_NEXT};
#define NSQL (sizeof(all_sql) / sizeof(all_sql[0]))

typedef struct wcache {
    struct wcache *next;
    sqlite3 *db;
    sqlite3_stmt *st[NSQL];
} wcache_t;

static wcache_t *caches;
static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;

void kw_sqlite_watched_forget(sqlite3 *db)
{
    if (db == NULL)
        return;
    pthread_mutex_lock(&cache_mu);
    for (wcache_t **pp = &caches; *pp; pp = &(*pp)->next) {
        if ((*pp)->db == db) {
            wcache_t *c = *pp;
            *pp = c->next;
            for (size_t i = 0; i < NSQL; i++)
                sqlite3_finalize(c->st[i]);
            free(c);
            break;
        }
    }
    pthread_mutex_unlock(&cache_mu);
}

/* The cached statement for sql on db (the caller holds db's connection); give it back with
 * release(). */
static int prep(kw_store_t *s, sqlite3 *db, const char *sql, sqlite3_stmt **st, kw_err_t *err)
{
    size_t id = 0;
    while (id < NSQL && all_sql[id] != sql)
        id++;
    wcache_t *c;
    pthread_mutex_lock(&cache_mu);
    for (c = caches; c && c->db != db; c = c->next)
        ;
    if (c == NULL && id < NSQL && (c = calloc(1, sizeof(*c))) != NULL) {
        c->db = db;
        c->next = caches;
        caches = c;
    }
    pthread_mutex_unlock(&cache_mu);
    if (c == NULL || id == NSQL)
        return kw_err_set(err, KW_ENOMEM, NULL, "out of memory");
    if (c->st[id] == NULL) {
        int rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &c->st[id], NULL);
        if (rc != SQLITE_OK) {
            c->st[id] = NULL;
            *st = NULL;
            return kw_sqlite_err(s, db, rc, err, "prepare");
        }
    }
    *st = c->st[id];
    return 0;
}

static void release(sqlite3_stmt *st)
{
    if (st) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    }
}

static int bind_text(sqlite3_stmt *st, int i, const char *v)
{
    return v ? sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC) : sqlite3_bind_null(st, i);
}

static void col_cpy(sqlite3_stmt *st, int i, char *buf, size_t n)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    size_t len = t ? (size_t)sqlite3_column_bytes(st, i) : 0;
    if (len >= n)
        len = n - 1;
    if (len)
        memcpy(buf, t, len);
    buf[len] = '\0';
}

static int col_dup(sqlite3_stmt *st, int i, char **out)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    *out = NULL;
    if (t == NULL)
        return 0;
    *out = strdup((const char *)t);
    return *out ? 0 : KW_ENOMEM;
}

static int row(sqlite3_stmt *st, kw_watched_t *w)
{
    int rc = 0;
    memset(w, 0, sizeof(*w));
    w->seq = sqlite3_column_int64(st, 0);
    col_cpy(st, 1, w->id, sizeof(w->id));
    col_cpy(st, 2, w->name, sizeof(w->name));
    rc |= col_dup(st, 3, &w->provider);
    rc |= col_dup(st, 4, &w->owner);
    rc |= col_dup(st, 5, &w->contacts_json);
    col_cpy(st, 6, w->policy, sizeof(w->policy));
    col_cpy(st, 7, w->kind, sizeof(w->kind));
    rc |= col_dup(st, 8, &w->secret_sealed);
    col_cpy(st, 9, w->secret_hint, sizeof(w->secret_hint));
    w->expires_at = sqlite3_column_int64(st, 10);
    rc |= col_dup(st, 11, &w->token_url);
    col_cpy(st, 12, w->grant_type, sizeof(w->grant_type));
    rc |= col_dup(st, 13, &w->client_id);
    rc |= col_dup(st, 14, &w->client_secret_sealed);
    col_cpy(st, 15, w->client_secret_hint, sizeof(w->client_secret_hint));
    rc |= col_dup(st, 16, &w->refresh_token_sealed);
    rc |= col_dup(st, 17, &w->refresh_token_prev_sealed);
    col_cpy(st, 18, w->refresh_token_hint, sizeof(w->refresh_token_hint));
    w->refresh_expires_at = sqlite3_column_int64(st, 19);
    rc |= col_dup(st, 20, &w->scope);
    col_cpy(st, 21, w->auth_method, sizeof(w->auth_method));
    rc |= col_dup(st, 22, &w->token_file);
    rc |= col_dup(st, 23, &w->access_token_sealed);
    col_cpy(st, 24, w->token_type, sizeof(w->token_type));
    w->token_obtained_ms = sqlite3_column_int64(st, 25);
    w->token_expires_ms = sqlite3_column_int64(st, 26);
    w->token_lapse_raised = sqlite3_column_int(st, 27);
    w->next_refresh_ms = sqlite3_column_int64(st, 28);
    w->failures = sqlite3_column_int64(st, 29);
    col_cpy(st, 30, w->last_error, sizeof(w->last_error));
    w->last_status = sqlite3_column_int64(st, 31);
    w->last_attempt_ms = sqlite3_column_int64(st, 32);
    w->last_success_ms = sqlite3_column_int64(st, 33);
    w->gen = sqlite3_column_int64(st, 34);
    w->created_at = sqlite3_column_int64(st, 35);
    w->updated_at = sqlite3_column_int64(st, 36);
    w->deleted_at = sqlite3_column_int64(st, 37);
    if (rc) {
        kw_watched_clear(w);
        return KW_ENOMEM;
    }
    return 0;
}

/* Every row of a prepared SELECT into *out (extra: the column after the row's, as int, into
 * *ex when ex != NULL). Releases st. */
static int rows(kw_store_t *s, sqlite3 *db, sqlite3_stmt *st, kw_watched_t **out, int **ex,
                size_t *n, kw_err_t *err)
{
    kw_watched_t *a = NULL;
    int *e = NULL;
    size_t cnt = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (cnt == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            kw_watched_t *na = realloc(a, ncap * sizeof(*a));
            if (na)
                a = na;
            int *ne = ex ? realloc(e, ncap * sizeof(*e)) : NULL;
            if (ne)
                e = ne;
            if (na == NULL || (ex && ne == NULL)) {
                rc = KW_ENOMEM;
                break;
            }
            cap = ncap;
        }
        if (row(st, &a[cnt]) != 0) {
            rc = KW_ENOMEM;
            break;
        }
        if (ex)
            e[cnt] = sqlite3_column_int64(st, 38) == 0;
        cnt++;
    }
    if (rc == SQLITE_DONE) {
        rc = 0;
    } else if (rc == KW_ENOMEM) {
        rc = kw_err_set(err, KW_ENOMEM, NULL, "out of memory");
    } else {
        rc = kw_sqlite_err(s, db, rc, err, "watched rows");
    }
    release(st);
    if (rc) {
        kw_watched_array_free(a, cnt);
        free(e);
        return rc;
    }
    *out = a;
    *n = cnt;
    if (ex)
        *ex = e;
    return 0;
}

static int bind_all(sqlite3_stmt *st, const kw_watched_t *w)
{
    int b = 0;
    b |= bind_text(st, 1, w->id);
    b |= bind_text(st, 2, w->name);
    b |= bind_text(st, 3, w->provider);
    b |= bind_text(st, 4, w->owner);
    b |= bind_text(st, 5, w->contacts_json ? w->contacts_json : "[]");
    b |= bind_text(st, 6, w->policy);
    b |= bind_text(st, 7, w->kind);
    b |= bind_text(st, 8, w->secret_sealed);
    b |= bind_text(st, 9, w->secret_hint);
    b |= sqlite3_bind_int64(st, 10, w->expires_at);
    b |= bind_text(st, 11, w->token_url);
    b |= bind_text(st, 12, w->grant_type);
    b |= bind_text(st, 13, w->client_id);
    b |= bind_text(st, 14, w->client_secret_sealed);
    b |= bind_text(st, 15, w->client_secret_hint);
    b |= bind_text(st, 16, w->refresh_token_sealed);
    b |= bind_text(st, 17, w->refresh_token_prev_sealed);
    b |= bind_text(st, 18, w->refresh_token_hint);
    b |= sqlite3_bind_int64(st, 19, w->refresh_expires_at);
    b |= bind_text(st, 20, w->scope);
    b |= bind_text(st, 21, w->auth_method);
    b |= bind_text(st, 22, w->token_file);
    b |= bind_text(st, 23, w->access_token_sealed);
    b |= bind_text(st, 24, w->token_type);
    b |= sqlite3_bind_int64(st, 25, w->token_obtained_ms);
    b |= sqlite3_bind_int64(st, 26, w->token_expires_ms);
    b |= sqlite3_bind_int(st, 27, w->token_lapse_raised);
    b |= sqlite3_bind_int64(st, 28, w->next_refresh_ms);
    b |= sqlite3_bind_int64(st, 29, w->failures);
    b |= bind_text(st, 30, w->last_error);
    b |= sqlite3_bind_int64(st, 31, w->last_status);
    b |= sqlite3_bind_int64(st, 32, w->last_attempt_ms);
    b |= sqlite3_bind_int64(st, 33, w->last_success_ms);
    b |= sqlite3_bind_int64(st, 34, w->gen);
    b |= sqlite3_bind_int64(st, 35, w->created_at);
    b |= sqlite3_bind_int64(st, 36, w->updated_at);
    b |= w->deleted_at ? sqlite3_bind_int64(st, 37, w->deleted_at) : sqlite3_bind_null(st, 37);
    return b;
}

/* Run a prepared write (the error is read before the statement is reset); releases st. */
static int run(kw_store_t *s, sqlite3 *db, sqlite3_stmt *st, int b, kw_err_t *err, const char *what)
{
    int rc = b == SQLITE_OK ? sqlite3_step(st) : b;
    rc = rc == SQLITE_DONE ? 0 : kw_sqlite_err(s, db, rc, err, what);
    release(st);
    return rc;
}

/* ---- rows ---- */

static int w_insert(kw_store_t *s, kw_watched_t *w, kw_err_t *err)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int rc = kw_sqlite_wr(s, &db, err);
    if (rc == 0)
        rc = prep(s, db, SQL_INSERT, &st, err);
    if (rc == 0)
        rc = run(s, db, st, bind_all(st, w), err, "insert watched credential");
    if (rc == 0)
        w->seq = sqlite3_last_insert_rowid(db);
    return rc;
}

static int w_update(kw_store_t *s, const kw_watched_t *w, kw_err_t *err)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int rc = kw_sqlite_wr(s, &db, err);
    if (rc == 0)
        rc = prep(s, db, SQL_UPDATE, &st, err);
    if (rc == 0)
        rc = run(s, db, st, bind_all(st, w), err, "update watched credential");
    if (rc == 0 && sqlite3_changes(db) == 0)
        rc = kw_err_set(err, KW_ENOTFOUND, NULL, "unknown watched credential");
    return rc;
}

static int w_get(kw_store_t *s, const char *id, kw_watched_t *out, kw_err_t *err)
{
    sqlite3 *db = kw_sqlite_rd_begin(s);
    sqlite3_stmt *st = NULL;
    kw_watched_t *a = NULL;
    size_t n = 0;
    int rc = prep(s, db, SQL_GET, &st, err);
    if (rc == 0) {
        bind_text(st, 1, id);
        rc = rows(s, db, st, &a, NULL, &n, err);
    }
    kw_sqlite_rd_end(s, db);
    if (rc == 0 && n == 0)
        rc = kw_err_set(err, KW_ENOTFOUND, NULL, "unknown watched credential");
    if (rc == 0) {
        *out = a[0];
        memset(&a[0], 0, sizeof(a[0]));
    }
    kw_watched_array_free(a, n);
    return rc;
}

static int w_list(kw_store_t *s, const kw_watched_filter_t *f, kw_watched_t **out, size_t *n,
                  kw_err_t *err)
{
    sqlite3 *db = kw_sqlite_rd_begin(s);
    sqlite3_stmt *st = NULL;
    int rc = prep(s, db, SQL_LIST, &st, err);
    if (rc == 0) {
        sqlite3_bind_int64(st, 1, f->after_seq);
        bind_text(st, 2, f->owner);
        bind_text(st, 3, f->kind);
        if (f->expiring_before)
            sqlite3_bind_int64(st, 4, f->expiring_before);
        sqlite3_bind_int64(st, 5, f->now);
        sqlite3_bind_int64(st, 6, (sqlite3_int64)f->limit);
        rc = rows(s, db, st, out, NULL, n, err);
    }
    kw_sqlite_rd_end(s, db);
    return rc;
}

static int w_refresh_due(kw_store_t *s, int64_t now_ms, size_t limit, kw_watched_t **out, size_t *n,
                         kw_err_t *err)
{
    sqlite3 *db = kw_sqlite_rd_begin(s);
    sqlite3_stmt *st = NULL;
    int rc = prep(s, db, SQL_REFRESH_DUE, &st, err);
    if (rc == 0) {
        sqlite3_bind_int64(st, 1, now_ms);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)limit);
        rc = rows(s, db, st, out, NULL, n, err);
    }
    kw_sqlite_rd_end(s, db);
    return rc;
}

static int w_refresh_next(kw_store_t *s, int64_t *next_ms, kw_err_t *err)
{
    sqlite3 *db = kw_sqlite_rd_begin(s);
    sqlite3_stmt *st = NULL;
    int rc = prep(s, db, SQL_REFRESH_NEXT, &st, err);
    if (rc == 0) {
        int r = sqlite3_step(st);
        if (r == SQLITE_ROW)
            *next_ms = sqlite3_column_type(st, 0) == SQLITE_NULL ? 0 : sqlite3_column_int64(st, 0);
        else
            rc = kw_sqlite_err(s, db, r, err, "next refresh");
        release(st);
    }
    kw_sqlite_rd_end(s, db);
    return rc;
}

/* ---- alerts ---- */

static int w_alert_due(kw_store_t *s, int64_t now, size_t limit, kw_watched_t **out, int **armed,
                       size_t *n, kw_err_t *err)
{
    sqlite3 *db = kw_sqlite_rd_begin(s);
    sqlite3_stmt *st = NULL;
    int rc = prep(s, db, SQL_ALERT_DUE, &st, err);
    if (rc == 0) {
        sqlite3_bind_int64(st, 1, now);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)limit);
        rc = rows(s, db, st, out, armed, n, err);
    }
    kw_sqlite_rd_end(s, db);
    return rc;
}

static int w_alert_done(kw_store_t *s, const char *id, int64_t expires_at, int64_t *done,
                        size_t max, size_t *n, kw_err_t *err)
{
    sqlite3 *db = kw_sqlite_rd_begin(s);
    sqlite3_stmt *st = NULL;
    size_t cnt = 0;
    int rc = prep(s, db, SQL_ALERT_DONE, &st, err);
    if (rc == 0) {
        bind_text(st, 1, id);
        sqlite3_bind_int64(st, 2, expires_at);
        int r;
        while ((r = sqlite3_step(st)) == SQLITE_ROW)
            if (cnt < max)
                done[cnt++] = sqlite3_column_int64(st, 0);
        if (r != SQLITE_DONE)
            rc = kw_sqlite_err(s, db, r, err, "watched alerts");
        release(st);
    }
    kw_sqlite_rd_end(s, db);
    if (rc == 0)
        *n = cnt;
    return rc;
}

static int w_alert_record(kw_store_t *s, const char *id, int64_t expires_at, int64_t threshold,
                          const char *event_id, int64_t at, kw_err_t *err)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int rc = kw_sqlite_wr(s, &db, err);
    if (rc == 0)
        rc = prep(s, db, SQL_ALERT_RECORD, &st, err);
    if (rc == 0) {
        int b = bind_text(st, 1, id) | sqlite3_bind_int64(st, 2, expires_at) |
                sqlite3_bind_int64(st, 3, threshold) | bind_text(st, 4, event_id) |
                sqlite3_bind_int64(st, 5, at);
        rc = run(s, db, st, b, err, "record watched alert");
    }
    return rc;
}

static int w_alert_set_next(kw_store_t *s, const char *id, int64_t next, kw_err_t *err)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int rc = kw_sqlite_wr(s, &db, err);
    if (rc == 0)
        rc = prep(s, db, SQL_ALERT_NEXT, &st, err);
    if (rc == 0) {
        int b = bind_text(st, 1, id) |
                (next ? sqlite3_bind_int64(st, 2, next) : sqlite3_bind_null(st, 2));
        rc = run(s, db, st, b, err, "watched alert next");
    }
    return rc;
}

const kw_store_watched_ops_t kw_sqlite_watched_ops = {
    .insert = w_insert,
    .update = w_update,
    .get = w_get,
    .list = w_list,
    .refresh_due = w_refresh_due,
    .refresh_next = w_refresh_next,
    .alert_due = w_alert_due,
    .alert_done = w_alert_done,
    .alert_record = w_alert_record,
    .alert_set_next = w_alert_set_next,
};

/* ---- the public API (store_watched.h): argument checks and dispatch ---- */

#define NEED(cond)                                                                                 \
    do {                                                                                           \
        if (!(cond))                                                                               \
            return kw_err_set(err, KW_EINVAL, NULL, "store: invalid argument: %s", #cond);         \
    } while (0)
#define OPS(s) ((s)->watched)

int kw_store_watched_insert(kw_store_t *s, kw_watched_t *w, kw_err_t *err)
{
    NEED(s && w && OPS(s));
    return OPS(s)->insert(s, w, err);
}

int kw_store_watched_update(kw_store_t *s, const kw_watched_t *w, kw_err_t *err)
{
    NEED(s && w && OPS(s));
    return OPS(s)->update(s, w, err);
}

int kw_store_watched_get(kw_store_t *s, const char *id, kw_watched_t *out, kw_err_t *err)
{
    NEED(s && id && out && OPS(s));
    return OPS(s)->get(s, id, out, err);
}

int kw_store_watched_list(kw_store_t *s, const kw_watched_filter_t *f, kw_watched_t **out,
                          size_t *n, kw_err_t *err)
{
    NEED(s && f && out && n && f->limit >= 1 && OPS(s));
    return OPS(s)->list(s, f, out, n, err);
}

int kw_store_watched_refresh_due(kw_store_t *s, int64_t now_ms, size_t limit, kw_watched_t **out,
                                 size_t *n, kw_err_t *err)
{
    NEED(s && out && n && limit >= 1 && OPS(s));
    return OPS(s)->refresh_due(s, now_ms, limit, out, n, err);
}

int kw_store_watched_refresh_next(kw_store_t *s, int64_t *next_ms, kw_err_t *err)
{
    NEED(s && next_ms && OPS(s));
    return OPS(s)->refresh_next(s, next_ms, err);
}

int kw_store_watched_alert_due(kw_store_t *s, int64_t now, size_t limit, kw_watched_t **out,
                               int **armed, size_t *n, kw_err_t *err)
{
    NEED(s && out && armed && n && limit >= 1 && OPS(s));
    return OPS(s)->alert_due(s, now, limit, out, armed, n, err);
}

int kw_store_watched_alert_done(kw_store_t *s, const char *id, int64_t expires_at, int64_t *done,
                                size_t max, size_t *n, kw_err_t *err)
{
    NEED(s && id && done && n && OPS(s));
    return OPS(s)->alert_done(s, id, expires_at, done, max, n, err);
}

int kw_store_watched_alert_record(kw_store_t *s, const char *id, int64_t expires_at,
                                  int64_t threshold, const char *event_id, int64_t at,
                                  kw_err_t *err)
{
    NEED(s && id && OPS(s));
    return OPS(s)->alert_record(s, id, expires_at, threshold, event_id, at, err);
}

int kw_store_watched_alert_set_next(kw_store_t *s, const char *id, int64_t next, kw_err_t *err)
{
    NEED(s && id && OPS(s));
    return OPS(s)->alert_set_next(s, id, next, err);
}
