/* sqlite_watched.c - the SQLite side of store_watched.h: watched credentials, their refresher
 * state and expiry alerts. Its SQL is in this file (triggers and statements), so the
 * PostgreSQL backend can mirror it, but for the watched table itself, which both spell alike
 * (KW_DDL_WATCHED, store_cols.h). Its statements go through the backend's one cache and
 * helpers (sqlite_int.h). Never logs; messages carry sqlite3_errmsg only, never values. */
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "sqlite_int.h"
#include "store_watched.h"

/* The alert expiry of a row: the sooner of expires_at and refresh_expires_at (non-zero). */
#define AEXP(p)                                                                                    \
    "(CASE WHEN " p "expires_at > 0 AND (" p "refresh_expires_at = 0 OR " p "expires_at <= " p     \
    "refresh_expires_at) THEN " p "expires_at ELSE " p "refresh_expires_at END)"

/* Migration (watched branch). next_alert_at: NULL = no alert ahead, 0 = re-armed (recompute
 * at the scheduler's next look); the triggers arm it whenever the expiry, the policy or the
 * policy's thresholds change, whatever code path made the change. */
/* clang-format off */
const char kw_sqlite_watched_migration[] =
    KW_DDL_WATCHED("INTEGER PRIMARY KEY AUTOINCREMENT", "INTEGER", " STRICT;")
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
/* clang-format on */

static kw_sqlite_stmt_t SQL_INSERT = {
    .sql =
        "INSERT INTO watched (" KW_COLS_WATCHED_INS
        ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15,"
        " ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30, ?31, ?32, ?33,"
        " ?34, ?35, ?36, ?37)"};
static kw_sqlite_stmt_t SQL_UPDATE = {
    .sql =
        "UPDATE watched SET name = ?2, provider = ?3, owner = ?4, contacts = ?5, policy = ?6,"
        " kind = ?7, secret_sealed = ?8, secret_hint = ?9, expires_at = ?10, token_url = ?11,"
        " grant_type = ?12, client_id = ?13, client_secret_sealed = ?14, client_secret_hint = ?15,"
        " refresh_token_sealed = ?16, refresh_token_prev_sealed = ?17, refresh_token_hint = ?18,"
        " refresh_expires_at = ?19, scope = ?20, auth_method = ?21, token_file = ?22,"
        " access_token_sealed = ?23, token_type = ?24, token_obtained_ms = ?25,"
        " token_expires_ms = ?26, token_lapse_raised = ?27, next_refresh_ms = ?28, failures = ?29,"
        " last_error = ?30, last_status = ?31, last_attempt_ms = ?32, last_success_ms = ?33,"
        " gen = ?34, updated_at = ?36, deleted_at = ?37 WHERE id = ?1"};
static kw_sqlite_stmt_t SQL_GET = {.sql = "SELECT " KW_COLS_WATCHED
                                          " FROM watched WHERE id = ?1 AND deleted_at IS NULL"};
static kw_sqlite_stmt_t SQL_LIST = {
    .sql = "SELECT " KW_COLS_WATCHED " FROM watched WHERE deleted_at IS NULL AND seq > ?1"
           " AND (?2 IS NULL OR owner = ?2) AND (?3 IS NULL OR kind = ?3)"
           " AND (?4 IS NULL OR (" AEXP("") " > ?5 AND " AEXP("") " <= ?4))"
                                                                  " ORDER BY seq LIMIT ?6"};
static kw_sqlite_stmt_t SQL_REFRESH_DUE = {
    .sql = "SELECT " KW_COLS_WATCHED " FROM watched WHERE kind = 'oauth2' AND deleted_at IS NULL"
           " AND next_refresh_ms <= ?1 ORDER BY next_refresh_ms LIMIT ?2"};
static kw_sqlite_stmt_t SQL_REFRESH_NEXT = {
    .sql = "SELECT min(next_refresh_ms) FROM watched WHERE kind = 'oauth2' AND deleted_at IS NULL"};
static kw_sqlite_stmt_t SQL_ALERT_DUE = {
    .sql = "SELECT " KW_COLS_WATCHED ", next_alert_at FROM watched WHERE next_alert_at IS NOT NULL"
           " AND next_alert_at <= ?1 ORDER BY next_alert_at LIMIT ?2"};
static kw_sqlite_stmt_t SQL_ALERT_DONE = {
    .sql = "SELECT threshold FROM watched_alerts WHERE watched_id = ?1 AND expires_at = ?2"};
static kw_sqlite_stmt_t SQL_ALERT_RECORD = {
    .sql = "INSERT OR IGNORE INTO watched_alerts (watched_id, expires_at, threshold, event_id, at)"
           " VALUES (?1, ?2, ?3, ?4, ?5)"};
static kw_sqlite_stmt_t SQL_ALERT_NEXT = {
    .sql = "UPDATE watched SET next_alert_at = ?2 WHERE id = ?1"};

/* ---- rows ---- */

static int row(sqlite3_stmt *st, void *out)
{
    kw_sqlite_row_t r;
    kw_sqlite_row_src(&r, st);
    return kw_row_watched(&r.src, out);
}

static void clear(void *w)
{
    kw_watched_clear(w);
}

/* A due row and whether it was (re)armed (next_alert_at, the column after the row's, 0). */
typedef struct due {
    kw_watched_t w;
    int armed;
} due_t;

static int row_due(sqlite3_stmt *st, void *out)
{
    due_t *d = out;
    d->armed = sqlite3_column_int64(st, 38) == 0;
    return row(st, &d->w);
}

static void clear_due(void *d)
{
    kw_watched_clear(&((due_t *)d)->w);
}

/* The row type of the queries reading whole watched rows (kw_watched_t). */
static const kw_sqlite_rowtype_t ROWS = {sizeof(kw_watched_t), row, clear};
static const kw_sqlite_rowtype_t DUE_ROWS = {sizeof(due_t), row_due, clear_due};

static const kw_sqlite_query_t q_get = {&SQL_GET, "watched rows", &ROWS, NULL,
                                        "unknown watched credential"};
static const kw_sqlite_query_t q_list = {.stmt = &SQL_LIST, .what = "watched rows", .rows = &ROWS};
static const kw_sqlite_query_t q_refresh_due = {
    .stmt = &SQL_REFRESH_DUE, .what = "watched rows", .rows = &ROWS};
static const kw_sqlite_query_t q_refresh_next = {
    .stmt = &SQL_REFRESH_NEXT, .what = "next refresh", .rows = &kw_sqlite_i64_rows};
static const kw_sqlite_query_t q_alert_due = {
    .stmt = &SQL_ALERT_DUE, .what = "watched rows", .rows = &DUE_ROWS};
static const kw_sqlite_query_t q_alert_done = {
    .stmt = &SQL_ALERT_DONE, .what = "watched alerts", .rows = &kw_sqlite_i64_rows};

#define T KW_SQA_TEXT
#define I KW_SQA_INT

/* ?1 .. ?37 of SQL_INSERT / SQL_UPDATE (SQL_UPDATE leaves ?35 created_at unused):
 * KW_ARGS_WATCHED, store_cols.h. */
static int write_row(kw_store_t *s, kw_sqlite_stmt_t *q, const kw_watched_t *w, kw_err_t *err,
                     const char *what)
{
    return kw_sqlite_write(KW_SQ(s), q, KW_ARGS_WATCHED(w), err, what);
}

static int w_insert(kw_store_t *s, kw_watched_t *w, kw_err_t *err)
{
    int rc = write_row(s, &SQL_INSERT, w, err, "insert watched credential");
    if (rc == 0)
        w->seq = sqlite3_last_insert_rowid(KW_SQ(s)->w.db);
    return rc;
}

static int w_update(kw_store_t *s, const kw_watched_t *w, kw_err_t *err)
{
    int rc = write_row(s, &SQL_UPDATE, w, err, "update watched credential");
    if (rc == 0 && sqlite3_changes(KW_SQ(s)->w.db) == 0)
        rc = kw_err_set(err, KW_ENOTFOUND, NULL, "unknown watched credential");
    return rc;
}

static int w_get(kw_store_t *s, const char *id, kw_watched_t *out, kw_err_t *err)
{
    return kw_sqlite_get(KW_SQ(s), &q_get, KW_SQ_ARGS(T(id)), out, err);
}

static int w_list(kw_store_t *s, const kw_watched_filter_t *f, kw_watched_t **out, size_t *n,
                  kw_err_t *err)
{
    return kw_sqlite_list(KW_SQ(s), &q_list,
                          KW_SQ_ARGS(I(f->after_seq), T(f->owner), T(f->kind),
                                     f->expiring_before ? I(f->expiring_before) : KW_SQA_NULL,
                                     I(f->now), I(kw_sqlite_lim(f->limit))),
                          out, n, err);
}

static int w_refresh_due(kw_store_t *s, int64_t now_ms, size_t limit, kw_watched_t **out, size_t *n,
                         kw_err_t *err)
{
    return kw_sqlite_list(KW_SQ(s), &q_refresh_due, KW_SQ_ARGS(I(now_ms), I(kw_sqlite_lim(limit))),
                          out, n, err);
}

static int w_refresh_next(kw_store_t *s, int64_t *next_ms, kw_err_t *err)
{
    int64_t v = 0; /* min() of no rows is NULL: 0 */
    int rc = kw_sqlite_get(KW_SQ(s), &q_refresh_next, KW_SQ_NOARGS, &v, err);
    if (rc == 0)
        *next_ms = v;
    return rc;
}

/* ---- alerts ---- */

static int w_alert_due(kw_store_t *s, int64_t now, size_t limit, kw_watched_t **out, int **armed,
                       size_t *n, kw_err_t *err)
{
    due_t *d = NULL;
    size_t cnt = 0;
    int rc = kw_sqlite_list(KW_SQ(s), &q_alert_due, KW_SQ_ARGS(I(now), I(kw_sqlite_lim(limit))), &d,
                            &cnt, err);
    if (rc)
        return rc;
    if (cnt == 0) {
        free(d);
        *out = NULL;
        *armed = NULL;
        *n = 0;
        return 0;
    }
    kw_watched_t *a = malloc(cnt * sizeof(*a));
    int *e = malloc(cnt * sizeof(*e));
    if (a == NULL || e == NULL) {
        for (size_t i = 0; i < cnt; i++)
            kw_watched_clear(&d[i].w);
        free(d);
        free(a);
        free(e);
        return kw_err_set(err, KW_ENOMEM, NULL, "out of memory");
    }
    for (size_t i = 0; i < cnt; i++) {
        a[i] = d[i].w;
        e[i] = d[i].armed;
    }
    free(d);
    *out = a;
    *armed = e;
    *n = cnt;
    return 0;
}

static int w_alert_done(kw_store_t *s, const char *id, int64_t expires_at, int64_t *done,
                        size_t max, size_t *n, kw_err_t *err)
{
    return kw_sqlite_list_i64(KW_SQ(s), &q_alert_done, KW_SQ_ARGS(T(id), I(expires_at)), done, max,
                              n, err);
}

static int w_alert_record(kw_store_t *s, const char *id, int64_t expires_at, int64_t threshold,
                          const char *event_id, int64_t at, kw_err_t *err)
{
    return kw_sqlite_write(KW_SQ(s), &SQL_ALERT_RECORD,
                           KW_SQ_ARGS(T(id), I(expires_at), I(threshold), T(event_id), I(at)), err,
                           "record watched alert");
}

static int w_alert_set_next(kw_store_t *s, const char *id, int64_t next, kw_err_t *err)
{
    return kw_sqlite_write(KW_SQ(s), &SQL_ALERT_NEXT, KW_SQ_ARGS(T(id), KW_SQA_TIME(next)), err,
                           "watched alert next");
}

const kw_store_watched_ops_t kw_sqlite_watched_ops = {KW_STORE_WATCHED_OPS(KW_STORE_OP_INIT, w_)};
