/* sqlite_notify.c - the SQLite side of store_notify.h: expiry-alert state, the outbox's
 * deliveries, disabled webhooks, the e-mail quota and /metrics figures. Uses sqlite.c's
 * connections through kw_sqlite_rd_begin / kw_sqlite_wr (store_impl.h) and caches its
 * prepared statements per connection. Never logs; messages carry sqlite3_errmsg only. */
#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "store_impl.h"
#include "store_notify.h"

/* Migration 3. next_alert_at: when the scheduler must next look at a key (NULL = never,
 * 0 = now: recompute). The triggers arm it whenever a key's expiry or revocation changes
 * or its credential's policy (or that policy's thresholds) changes, whatever code path
 * made the change, so renewals and rolls re-arm without hooks in lifecycle.c. */
const char kw_sqlite_notify_migration[] =
    "ALTER TABLE keys ADD COLUMN next_alert_at INTEGER;"
    "UPDATE keys SET next_alert_at = 0 WHERE revoked_at IS NULL AND expires_at IS NOT NULL;"
    "CREATE INDEX keys_alert_due ON keys(next_alert_at) WHERE next_alert_at IS NOT NULL;"
    "CREATE TRIGGER keys_alert_arm_insert AFTER INSERT ON keys"
    " WHEN NEW.expires_at IS NOT NULL AND NEW.revoked_at IS NULL"
    " BEGIN UPDATE keys SET next_alert_at = 0 WHERE seq = NEW.seq; END;"
    "CREATE TRIGGER keys_alert_arm_update AFTER UPDATE OF expires_at, revoked_at ON keys"
    " WHEN NEW.expires_at IS NOT OLD.expires_at OR NEW.revoked_at IS NOT OLD.revoked_at"
    " BEGIN UPDATE keys SET next_alert_at = CASE WHEN NEW.revoked_at IS NULL"
    "  AND NEW.expires_at IS NOT NULL THEN 0 END WHERE seq = NEW.seq; END;"
    "CREATE TRIGGER credentials_alert_arm AFTER UPDATE OF policy ON credentials"
    " WHEN NEW.policy IS NOT OLD.policy"
    " BEGIN UPDATE keys SET next_alert_at = 0 WHERE cred_id = NEW.id"
    "  AND revoked_at IS NULL AND expires_at IS NOT NULL; END;"
    "CREATE TRIGGER policies_alert_arm AFTER UPDATE OF thresholds ON policies"
    " WHEN NEW.thresholds IS NOT OLD.thresholds"
    " BEGIN UPDATE keys SET next_alert_at = 0 WHERE revoked_at IS NULL"
    "  AND expires_at IS NOT NULL"
    "  AND cred_id IN (SELECT id FROM credentials WHERE policy = NEW.name); END;"
    /* threshold: seconds before expires_at; 0 = the key.expired alert */
    "CREATE TABLE key_alerts ("
    "  key_id TEXT NOT NULL,"
    "  expires_at INTEGER NOT NULL,"
    "  threshold INTEGER NOT NULL,"
    "  event_id TEXT," /* NULL: skipped (a more urgent one was raised) */
    "  at INTEGER NOT NULL,"
    "  PRIMARY KEY (key_id, expires_at, threshold)"
    ") STRICT, WITHOUT ROWID;"
    "ALTER TABLE events ADD COLUMN fanout_at INTEGER;"
    "ALTER TABLE events ADD COLUMN cred_id TEXT;"
    "CREATE INDEX events_unfanned ON events(seq) WHERE fanout_at IS NULL;"
    "CREATE INDEX events_cred ON events(cred_id, seq);"
    "CREATE INDEX events_type ON events(type, seq);"
    "ALTER TABLE deliveries ADD COLUMN created_at INTEGER NOT NULL DEFAULT 0;"
    "CREATE INDEX deliveries_work ON deliveries(next_attempt_at)"
    " WHERE state IN ('pending', 'sending');"
    "CREATE TABLE channels_disabled ("
    "  channel TEXT PRIMARY KEY,"
    "  at INTEGER NOT NULL,"
    "  event_id TEXT"
    ") STRICT;"
    "CREATE TABLE mail_quota ("
    "  rcpt TEXT NOT NULL,"
    "  day INTEGER NOT NULL,"
    "  sent INTEGER NOT NULL,"
    "  PRIMARY KEY (rcpt, day)"
    ") STRICT, WITHOUT ROWID;";

#define KEY_COLS                                                                                   \
    "k.seq, k.id, k.cred_id, k.slot, k.live_slot, k.hint, k.digest, k.created_at, "                \
    "k.expires_at, k.revoked_at, k.revoke_reason, k.last_used_at, k.use_count"
#define DLV_COLS                                                                                   \
    "d.event_id, d.channel, d.state, d.attempts, d.next_attempt_at, d.delivered_at, "              \
    "d.created_at, d.last_error"

enum {
    N_ALERT_DUE,
    N_ALERT_DONE,
    N_ALERT_RECORD,
    N_ALERT_NEXT,
    N_EV_UNFANNED,
    N_DLV_ADD,
    N_EV_FANNED,
    N_DLV_DUE,
    N_DLV_TAKE,
    N_DLV_FINISH,
    N_DLV_RELEASE,
    N_EV_LIST,
    N_EV_GET,
    N_DLV_LIST,
    N_EV_RETRY,
    N_CH_ENABLE,
    N_CH_DISABLE,
    N_CH_DISABLED,
    N_MAIL_GET,
    N_MAIL_PUT,
    N_ST_OUTBOX,
    N_ST_FAILED,
    N_ST_RENEWALS,
    N_ST_UNFANNED,
    N_ST_ALERTS,
    N__COUNT
};

static const char *const nsql[N__COUNT] = {
    [N_ALERT_DUE] = "SELECT " KEY_COLS ", c.policy, c.name, k.next_alert_at FROM keys k"
                    " JOIN credentials c ON c.id = k.cred_id"
                    " WHERE k.next_alert_at IS NOT NULL AND k.next_alert_at <= ?1"
                    " ORDER BY k.next_alert_at LIMIT ?2",
    [N_ALERT_DONE] = "SELECT threshold FROM key_alerts WHERE key_id = ?1 AND expires_at = ?2",
    [N_ALERT_RECORD] = "INSERT OR IGNORE INTO key_alerts (key_id, expires_at, threshold,"
                       " event_id, at) VALUES (?1, ?2, ?3, ?4, ?5)",
    [N_ALERT_NEXT] = "UPDATE keys SET next_alert_at = ?2 WHERE id = ?1",
    [N_EV_UNFANNED] = "SELECT seq, id, type, occurred_at, payload FROM events"
                      " WHERE fanout_at IS NULL ORDER BY seq LIMIT ?1",
    [N_DLV_ADD] = "INSERT OR IGNORE INTO deliveries (event_id, channel, state, attempts,"
                  " next_attempt_at, created_at) VALUES (?1, ?2, 'pending', 0, ?3, ?3)",
    [N_EV_FANNED] = "UPDATE events SET fanout_at = ?2, cred_id = ?3 WHERE id = ?1",
    [N_DLV_DUE] = "SELECT " DLV_COLS ", e.type, e.occurred_at, e.payload FROM deliveries d"
                  " JOIN events e ON e.id = d.event_id"
                  " WHERE d.state IN ('pending', 'sending') AND d.next_attempt_at <= ?1"
                  " ORDER BY d.next_attempt_at LIMIT ?2",
    [N_DLV_TAKE] = "UPDATE deliveries SET state = 'sending', attempts = attempts + 1,"
                   " next_attempt_at = ?3 WHERE event_id = ?1 AND channel = ?2",
    [N_DLV_FINISH] = "UPDATE deliveries SET state = ?3, next_attempt_at = ?4, last_error = ?5,"
                     " delivered_at = ?6 WHERE event_id = ?1 AND channel = ?2",
    [N_DLV_RELEASE] = "UPDATE deliveries SET state = 'pending', next_attempt_at = ?1"
                      " WHERE state = 'sending'",
    [N_EV_LIST] = "SELECT seq, id, type, occurred_at, payload FROM events"
                  " WHERE seq < ?1 AND (?2 IS NULL OR type = ?2)"
                  " AND (?3 IS NULL OR cred_id = ?3 OR (cred_id IS NULL"
                  "  AND json_extract(payload, '$.credential_id') = ?3))"
                  " ORDER BY seq DESC LIMIT ?4",
    [N_EV_GET] = "SELECT seq, id, type, occurred_at, payload FROM events WHERE id = ?1",
    [N_DLV_LIST] = "SELECT " DLV_COLS " FROM deliveries d WHERE d.event_id = ?1"
                   " ORDER BY d.channel",
    [N_EV_RETRY] = "UPDATE deliveries SET state = 'pending', attempts = 0,"
                   " next_attempt_at = ?2, last_error = NULL WHERE event_id = ?1"
                   " AND state IN ('failed', 'disabled', 'cancelled')",
    [N_CH_ENABLE] = "DELETE FROM channels_disabled WHERE channel IN"
                    " (SELECT channel FROM deliveries WHERE event_id = ?1)",
    [N_CH_DISABLE] = "INSERT INTO channels_disabled (channel, at, event_id) VALUES (?1, ?2, ?3)"
                     " ON CONFLICT (channel) DO NOTHING",
    [N_CH_DISABLED] = "SELECT 1 FROM channels_disabled WHERE channel = ?1",
    [N_MAIL_GET] = "SELECT sent FROM mail_quota WHERE rcpt = ?1 AND day = ?2",
    [N_MAIL_PUT] = "INSERT INTO mail_quota (rcpt, day, sent) VALUES (?1, ?2, 1)"
                   " ON CONFLICT (rcpt, day) DO UPDATE SET sent = sent + 1",
    [N_ST_OUTBOX] = "SELECT count(*), min(e.occurred_at) FROM deliveries d"
                    " JOIN events e ON e.id = d.event_id"
                    " WHERE d.state IN ('pending', 'sending')",
    [N_ST_FAILED] = "SELECT count(*) FROM deliveries WHERE state IN ('failed', 'disabled')",
    [N_ST_RENEWALS] = "SELECT count(*) FROM renewals WHERE state = 'pending'",
    [N_ST_UNFANNED] = "SELECT count(*), min(occurred_at) FROM events WHERE fanout_at IS NULL",
    [N_ST_ALERTS] = "SELECT count(*) FROM keys WHERE next_alert_at IS NOT NULL"
                    " AND next_alert_at <= ?1",
};

/* ---- statement cache: per connection, dropped by kw_sqlite_notify_forget ---- */

typedef struct ncache {
    struct ncache *next;
    sqlite3 *db;
    sqlite3_stmt *st[N__COUNT];
} ncache_t;

static ncache_t *caches;
static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;

void kw_sqlite_notify_forget(sqlite3 *db)
{
    if (db == NULL)
        return;
    pthread_mutex_lock(&cache_mu);
    for (ncache_t **pp = &caches; *pp; pp = &(*pp)->next) {
        if ((*pp)->db == db) {
            ncache_t *c = *pp;
            *pp = c->next;
            for (int i = 0; i < N__COUNT; i++)
                sqlite3_finalize(c->st[i]);
            free(c);
            break;
        }
    }
    pthread_mutex_unlock(&cache_mu);
}

/* The cached statement id for db (the caller holds db's connection lock). */
static int prep(kw_store_t *s, sqlite3 *db, int id, sqlite3_stmt **out, kw_err_t *err)
{
    ncache_t *c;
    pthread_mutex_lock(&cache_mu);
    for (c = caches; c && c->db != db; c = c->next)
        ;
    if (c == NULL && (c = calloc(1, sizeof(*c))) != NULL) {
        c->db = db;
        c->next = caches;
        caches = c;
    }
    pthread_mutex_unlock(&cache_mu);
    if (c == NULL)
        return kw_err_set(err, KW_ENOMEM, NULL, "out of memory");
    if (c->st[id] == NULL) {
        int rc = sqlite3_prepare_v3(db, nsql[id], -1, SQLITE_PREPARE_PERSISTENT, &c->st[id], NULL);
        if (rc != SQLITE_OK) {
            c->st[id] = NULL;
            return kw_sqlite_err(s, db, rc, err, "prepare");
        }
    }
    *out = c->st[id];
    return 0;
}

static void done(sqlite3_stmt *st)
{
    if (st) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    }
}

/* Step: SQLITE_ROW / SQLITE_DONE, or a negative KW_E*. */
static int step(kw_store_t *s, sqlite3 *db, sqlite3_stmt *st, kw_err_t *err, const char *what)
{
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW || rc == SQLITE_DONE)
        return rc;
    return kw_sqlite_err(s, db, rc, err, what);
}

static int bind_text(sqlite3_stmt *st, int i, const char *v)
{
    return v ? sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC) : sqlite3_bind_null(st, i);
}

static int bind_time(sqlite3_stmt *st, int i, int64_t v)
{
    return v ? sqlite3_bind_int64(st, i, v) : sqlite3_bind_null(st, i);
}

static int bound(kw_store_t *s, sqlite3 *db, int b, kw_err_t *err)
{
    return b == SQLITE_OK ? 0 : kw_sqlite_err(s, db, b, err, "bind");
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

static int64_t lim64(size_t n)
{
    return n > (size_t)INT64_MAX ? INT64_MAX : (int64_t)n;
}

/* Run a write statement (bindings done by bindfn's caller): one step, DONE expected. */
static int run_write(kw_store_t *s, sqlite3 *db, sqlite3_stmt *st, int b, kw_err_t *err,
                     const char *what)
{
    int rc = bound(s, db, b, err);
    if (rc == 0)
        rc = step(s, db, st, err, what);
    done(st);
    return rc < 0 ? rc : 0;
}

/* ---- alerts ---- */

static void row_key(sqlite3_stmt *st, kw_keyrec_t *k)
{
    memset(k, 0, sizeof(*k));
    k->seq = sqlite3_column_int64(st, 0);
    col_cpy(st, 1, k->id, sizeof(k->id));
    col_cpy(st, 2, k->cred_id, sizeof(k->cred_id));
    k->slot = sqlite3_column_int(st, 3);
    k->live = sqlite3_column_type(st, 4) != SQLITE_NULL;
    col_cpy(st, 5, k->hint, sizeof(k->hint));
    k->created_at = sqlite3_column_int64(st, 7);
    k->expires_at = sqlite3_column_int64(st, 8);
    k->revoked_at = sqlite3_column_int64(st, 9);
    col_cpy(st, 10, k->revoke_reason, sizeof(k->revoke_reason));
    k->last_used_at = sqlite3_column_int64(st, 11);
    k->use_count = sqlite3_column_int64(st, 12);
}

static int n_alert_due(kw_store_t *s, int64_t now, size_t limit, kw_alert_key_t **out, size_t *n,
                       kw_err_t *err)
{
    sqlite3 *db = kw_sqlite_rd_begin(s);
    sqlite3_stmt *st = NULL;
    kw_alert_key_t *a = NULL;
    size_t cnt = 0, cap = 0;
    int rc = prep(s, db, N_ALERT_DUE, &st, err);
    if (rc == 0)
        rc = bound(s, db, sqlite3_bind_int64(st, 1, now) | sqlite3_bind_int64(st, 2, lim64(limit)),
                   err);
    while (rc == 0 && (rc = step(s, db, st, err, "due alerts")) == SQLITE_ROW) {
        if (grow((void **)&a, &cap, cnt + 1, sizeof(*a))) {
            rc = kw_err_set(err, KW_ENOMEM, NULL, "out of memory");
            break;
        }
        row_key(st, &a[cnt].key);
        col_cpy(st, 13, a[cnt].policy, sizeof(a[cnt].policy));
        col_cpy(st, 14, a[cnt].cred_name, sizeof(a[cnt].cred_name));
        a[cnt].next_alert_at = sqlite3_column_int64(st, 15);
        cnt++;
        rc = 0;
    }
    if (rc == SQLITE_DONE) {
        *out = a;
        *n = cnt;
        a = NULL;
        rc = 0;
    }
    free(a);
    done(st);
    kw_sqlite_rd_end(s, db);
    return rc;
}

static int n_alert_done(kw_store_t *s, const char *key_id, int64_t expires_at, int64_t *d,
                        size_t max, size_t *n, kw_err_t *err)
{
    sqlite3 *db = kw_sqlite_rd_begin(s);
    sqlite3_stmt *st = NULL;
    size_t cnt = 0;
    int rc = prep(s, db, N_ALERT_DONE, &st, err);
    if (rc == 0)
        rc = bound(s, db, bind_text(st, 1, key_id) | sqlite3_bind_int64(st, 2, expires_at), err);
    while (rc == 0 && (rc = step(s, db, st, err, "alert state")) == SQLITE_ROW) {
        if (cnt < max)
            d[cnt++] = sqlite3_column_int64(st, 0);
        rc = 0;
    }
    if (rc == SQLITE_DONE) {
        *n = cnt;
        rc = 0;
    }
    done(st);
    kw_sqlite_rd_end(s, db);
    return rc;
}

static int n_alert_record(kw_store_t *s, const char *key_id, int64_t expires_at, int64_t threshold,
                          const char *event_id, int64_t at, kw_err_t *err)
{
    sqlite3 *db;
    sqlite3_stmt *st = NULL;
    int rc = kw_sqlite_wr(s, &db, err);
    if (rc == 0)
        rc = prep(s, db, N_ALERT_RECORD, &st, err);
    if (rc)
        return rc;
    return run_write(s, db, st,
                     bind_text(st, 1, key_id) | sqlite3_bind_int64(st, 2, expires_at) |
                         sqlite3_bind_int64(st, 3, threshold) | bind_text(st, 4, event_id) |
                         sqlite3_bind_int64(st, 5, at),
                     err, "alert record");
}

static int n_alert_set_next(kw_store_t *s, const char *key_id, int64_t next, kw_err_t *err)
{
    sqlite3 *db;
    sqlite3_stmt *st = NULL;
    int rc = kw_sqlite_wr(s, &db, err);
    if (rc == 0)
        rc = prep(s, db, N_ALERT_NEXT, &st, err);
    if (rc)
        return rc;
    return run_write(s, db, st, bind_text(st, 1, key_id) | bind_time(st, 2, next), err,
                     "alert schedule");
}

/* ---- events ---- */

void kw_event_array_free(kw_event_t *a, size_t n)
{
    for (size_t i = 0; a && i < n; i++)
        free(a[i].payload);
    free(a);
}

void kw_delivery_array_free(kw_delivery_t *a, size_t n)
{
    for (size_t i = 0; a && i < n; i++)
        free(a[i].payload);
    free(a);
}

static int row_event(sqlite3_stmt *st, kw_event_t *e)
{
    memset(e, 0, sizeof(*e));
    e->seq = sqlite3_column_int64(st, 0);
    col_cpy(st, 1, e->id, sizeof(e->id));
    col_cpy(st, 2, e->type, sizeof(e->type));
    e->occurred_at = sqlite3_column_int64(st, 3);
    const char *p = (const char *)sqlite3_column_text(st, 4);
    e->payload = strdup(p ? p : "{}");
    return e->payload ? 0 : KW_ENOMEM;
}

static int event_rows(kw_store_t *s, sqlite3 *db, sqlite3_stmt *st, int rc, kw_event_t **out,
                      size_t *n, kw_err_t *err)
{
    kw_event_t *a = NULL;
    size_t cnt = 0, cap = 0;
    while (rc == 0 && (rc = step(s, db, st, err, "events")) == SQLITE_ROW) {
        if (grow((void **)&a, &cap, cnt + 1, sizeof(*a)) || row_event(st, &a[cnt])) {
            rc = kw_err_set(err, KW_ENOMEM, NULL, "out of memory");
            break;
        }
        cnt++;
        rc = 0;
    }
    if (rc == SQLITE_DONE) {
        *out = a;
        *n = cnt;
        return 0;
    }
    kw_event_array_free(a, cnt);
    return rc;
}

static int n_event_unfanned(kw_store_t *s, size_t limit, kw_event_t **out, size_t *n, kw_err_t *err)
{
    sqlite3 *db = kw_sqlite_rd_begin(s);
    sqlite3_stmt *st = NULL;
    int rc = prep(s, db, N_EV_UNFANNED, &st, err);
    if (rc == 0)
        rc = bound(s, db, sqlite3_bind_int64(st, 1, lim64(limit)), err);
    rc = rc ? rc : event_rows(s, db, st, 0, out, n, err);
    done(st);
    kw_sqlite_rd_end(s, db);
    return rc;
}

static int n_delivery_add(kw_store_t *s, const char *event_id, const char *channel, int64_t now,
                          kw_err_t *err)
{
    sqlite3 *db;
    sqlite3_stmt *st = NULL;
    int rc = kw_sqlite_wr(s, &db, err);
    if (rc == 0)
        rc = prep(s, db, N_DLV_ADD, &st, err);
    if (rc)
        return rc;
    return run_write(s, db, st,
                     bind_text(st, 1, event_id) | bind_text(st, 2, channel) |
                         sqlite3_bind_int64(st, 3, now),
                     err, "delivery insert");
}

static int n_event_fanned(kw_store_t *s, const char *event_id, const char *cred_id, int64_t now,
                          kw_err_t *err)
{
    sqlite3 *db;
    sqlite3_stmt *st = NULL;
    int rc = kw_sqlite_wr(s, &db, err);
    if (rc == 0)
        rc = prep(s, db, N_EV_FANNED, &st, err);
    if (rc)
        return rc;
    return run_write(s, db, st,
                     bind_text(st, 1, event_id) | sqlite3_bind_int64(st, 2, now) |
                         bind_text(st, 3, cred_id && *cred_id ? cred_id : NULL),
                     err, "event fan-out");
}

static void row_delivery(sqlite3_stmt *st, kw_delivery_t *d)
{
    memset(d, 0, sizeof(*d));
    col_cpy(st, 0, d->event_id, sizeof(d->event_id));
    col_cpy(st, 1, d->channel, sizeof(d->channel));
    col_cpy(st, 2, d->state, sizeof(d->state));
    d->attempts = sqlite3_column_int64(st, 3);
    d->next_attempt_at = sqlite3_column_int64(st, 4);
    d->delivered_at = sqlite3_column_int64(st, 5);
    d->created_at = sqlite3_column_int64(st, 6);
    col_cpy(st, 7, d->last_error, sizeof(d->last_error));
}

static int n_delivery_claim(kw_store_t *s, int64_t now, int64_t lease_until, size_t limit,
                            kw_delivery_t **out, size_t *n, kw_err_t *err)
{
    sqlite3 *db;
    sqlite3_stmt *st = NULL, *up = NULL;
    kw_delivery_t *a = NULL;
    size_t cnt = 0, cap = 0;
    int rc = kw_sqlite_wr(s, &db, err);
    if (rc == 0)
        rc = prep(s, db, N_DLV_DUE, &st, err);
    if (rc == 0)
        rc = prep(s, db, N_DLV_TAKE, &up, err);
    if (rc)
        return rc;
    rc =
        bound(s, db, sqlite3_bind_int64(st, 1, now) | sqlite3_bind_int64(st, 2, lim64(limit)), err);
    while (rc == 0 && (rc = step(s, db, st, err, "due deliveries")) == SQLITE_ROW) {
        if (grow((void **)&a, &cap, cnt + 1, sizeof(*a))) {
            rc = kw_err_set(err, KW_ENOMEM, NULL, "out of memory");
            break;
        }
        kw_delivery_t *d = &a[cnt];
        row_delivery(st, d);
        col_cpy(st, 8, d->type, sizeof(d->type));
        d->occurred_at = sqlite3_column_int64(st, 9);
        const char *p = (const char *)sqlite3_column_text(st, 10);
        if ((d->payload = strdup(p ? p : "{}")) == NULL) {
            rc = kw_err_set(err, KW_ENOMEM, NULL, "out of memory");
            break;
        }
        cnt++;
        rc = 0;
    }
    done(st);
    if (rc == SQLITE_DONE)
        rc = 0;
    for (size_t i = 0; rc == 0 && i < cnt; i++) {
        rc = run_write(s, db, up,
                       bind_text(up, 1, a[i].event_id) | bind_text(up, 2, a[i].channel) |
                           sqlite3_bind_int64(up, 3, lease_until),
                       err, "delivery claim");
        a[i].attempts++;
        a[i].next_attempt_at = lease_until;
        snprintf(a[i].state, sizeof(a[i].state), "sending");
    }
    if (rc) {
        kw_delivery_array_free(a, cnt);
        return rc;
    }
    *out = a;
    *n = cnt;
    return 0;
}

static int n_delivery_finish(kw_store_t *s, const kw_delivery_t *d, kw_err_t *err)
{
    sqlite3 *db;
    sqlite3_stmt *st = NULL;
    int rc = kw_sqlite_wr(s, &db, err);
    if (rc == 0)
        rc = prep(s, db, N_DLV_FINISH, &st, err);
    if (rc)
        return rc;
    return run_write(s, db, st,
                     bind_text(st, 1, d->event_id) | bind_text(st, 2, d->channel) |
                         bind_text(st, 3, d->state) | bind_time(st, 4, d->next_attempt_at) |
                         bind_text(st, 5, d->last_error[0] ? d->last_error : NULL) |
                         bind_time(st, 6, d->delivered_at),
                     err, "delivery update");
}

static int n_delivery_release(kw_store_t *s, int64_t now, size_t *n, kw_err_t *err)
{
    sqlite3 *db;
    sqlite3_stmt *st = NULL;
    int rc = kw_sqlite_wr(s, &db, err);
    if (rc == 0)
        rc = prep(s, db, N_DLV_RELEASE, &st, err);
    if (rc)
        return rc;
    rc = run_write(s, db, st, sqlite3_bind_int64(st, 1, now), err, "delivery release");
    if (rc == 0)
        *n = (size_t)sqlite3_changes(db);
    return rc;
}

static int n_event_list(kw_store_t *s, const kw_event_filter_t *f, kw_event_t **out, size_t *n,
                        kw_err_t *err)
{
    sqlite3 *db = kw_sqlite_rd_begin(s);
    sqlite3_stmt *st = NULL;
    int rc = prep(s, db, N_EV_LIST, &st, err);
    if (rc == 0)
        rc = bound(s, db,
                   sqlite3_bind_int64(st, 1, f->before_seq > 0 ? f->before_seq : INT64_MAX) |
                       bind_text(st, 2, f->type) | bind_text(st, 3, f->cred_id) |
                       sqlite3_bind_int64(st, 4, lim64(f->limit)),
                   err);
    rc = rc ? rc : event_rows(s, db, st, 0, out, n, err);
    done(st);
    kw_sqlite_rd_end(s, db);
    return rc;
}

static int n_event_get(kw_store_t *s, const char *id, kw_event_t *out, kw_err_t *err)
{
    sqlite3 *db = kw_sqlite_rd_begin(s);
    sqlite3_stmt *st = NULL;
    kw_event_t *a = NULL;
    size_t cnt = 0;
    int rc = prep(s, db, N_EV_GET, &st, err);
    if (rc == 0)
        rc = bound(s, db, bind_text(st, 1, id), err);
    rc = rc ? rc : event_rows(s, db, st, 0, &a, &cnt, err);
    done(st);
    kw_sqlite_rd_end(s, db);
    if (rc == 0 && cnt == 0)
        rc = kw_err_set(err, KW_ENOTFOUND, "id", "event not found");
    if (rc == 0) {
        *out = a[0];
        a[0].payload = NULL;
    }
    kw_event_array_free(a, cnt);
    return rc;
}

static int n_delivery_list(kw_store_t *s, const char *event_id, kw_delivery_t **out, size_t *n,
                           kw_err_t *err)
{
    sqlite3 *db = kw_sqlite_rd_begin(s);
    sqlite3_stmt *st = NULL;
    kw_delivery_t *a = NULL;
    size_t cnt = 0, cap = 0;
    int rc = prep(s, db, N_DLV_LIST, &st, err);
    if (rc == 0)
        rc = bound(s, db, bind_text(st, 1, event_id), err);
    while (rc == 0 && (rc = step(s, db, st, err, "deliveries")) == SQLITE_ROW) {
        if (grow((void **)&a, &cap, cnt + 1, sizeof(*a))) {
            rc = kw_err_set(err, KW_ENOMEM, NULL, "out of memory");
            break;
        }
        row_delivery(st, &a[cnt++]);
        rc = 0;
    }
    if (rc == SQLITE_DONE) {
        *out = a;
        *n = cnt;
        a = NULL;
        rc = 0;
    }
    free(a);
    done(st);
    kw_sqlite_rd_end(s, db);
    return rc;
}

static int n_event_retry(kw_store_t *s, const char *event_id, int64_t now, size_t *n, kw_err_t *err)
{
    sqlite3 *db;
    sqlite3_stmt *st = NULL, *en = NULL;
    int rc = kw_sqlite_wr(s, &db, err);
    if (rc == 0)
        rc = prep(s, db, N_EV_RETRY, &st, err);
    if (rc == 0)
        rc = prep(s, db, N_CH_ENABLE, &en, err);
    if (rc)
        return rc;
    rc = run_write(s, db, en, bind_text(en, 1, event_id), err, "channel enable");
    if (rc)
        return rc;
    rc = run_write(s, db, st, bind_text(st, 1, event_id) | sqlite3_bind_int64(st, 2, now), err,
                   "event retry");
    if (rc == 0)
        *n = (size_t)sqlite3_changes(db);
    return rc;
}

/* ---- channels, quota ---- */

static int n_channel_disable(kw_store_t *s, const char *channel, const char *event_id, int64_t now,
                             kw_err_t *err)
{
    sqlite3 *db;
    sqlite3_stmt *st = NULL;
    int rc = kw_sqlite_wr(s, &db, err);
    if (rc == 0)
        rc = prep(s, db, N_CH_DISABLE, &st, err);
    if (rc)
        return rc;
    return run_write(s, db, st,
                     bind_text(st, 1, channel) | sqlite3_bind_int64(st, 2, now) |
                         bind_text(st, 3, event_id),
                     err, "channel disable");
}

static int n_channel_disabled(kw_store_t *s, const char *channel, int *disabled, kw_err_t *err)
{
    sqlite3 *db = kw_sqlite_rd_begin(s);
    sqlite3_stmt *st = NULL;
    int rc = prep(s, db, N_CH_DISABLED, &st, err);
    if (rc == 0)
        rc = bound(s, db, bind_text(st, 1, channel), err);
    if (rc == 0)
        rc = step(s, db, st, err, "channel state");
    if (rc > 0) {
        *disabled = rc == SQLITE_ROW;
        rc = 0;
    }
    done(st);
    kw_sqlite_rd_end(s, db);
    return rc;
}

static int n_mail_quota_take(kw_store_t *s, const char *rcpt, int64_t day, int64_t cap, int *ok,
                             kw_err_t *err)
{
    sqlite3 *db;
    sqlite3_stmt *st = NULL, *put = NULL;
    int64_t sent = 0;
    int rc = kw_sqlite_wr(s, &db, err);
    if (rc == 0)
        rc = prep(s, db, N_MAIL_GET, &st, err);
    if (rc == 0)
        rc = prep(s, db, N_MAIL_PUT, &put, err);
    if (rc)
        return rc;
    rc = bound(s, db, bind_text(st, 1, rcpt) | sqlite3_bind_int64(st, 2, day), err);
    if (rc == 0)
        rc = step(s, db, st, err, "mail quota");
    if (rc == SQLITE_ROW)
        sent = sqlite3_column_int64(st, 0);
    done(st);
    if (rc < 0)
        return rc;
    if (sent >= cap) {
        *ok = 0;
        return 0;
    }
    rc = run_write(s, db, put, bind_text(put, 1, rcpt) | sqlite3_bind_int64(put, 2, day), err,
                   "mail quota");
    if (rc == 0)
        *ok = 1;
    return rc;
}

/* ---- metrics ---- */

/* One-row query: up to two int64 columns into a, b (NULL skips). */
static int one_row(kw_store_t *s, sqlite3 *db, int id, int64_t p1, int64_t p2, int64_t *a,
                   int64_t *b, int64_t *c, kw_err_t *err)
{
    sqlite3_stmt *st = NULL;
    int rc = prep(s, db, id, &st, err);
    if (rc)
        return rc;
    int np = sqlite3_bind_parameter_count(st);
    rc = bound(s, db,
               (np >= 1 ? sqlite3_bind_int64(st, 1, p1) : 0) |
                   (np >= 2 ? sqlite3_bind_int64(st, 2, p2) : 0),
               err);
    if (rc == 0)
        rc = step(s, db, st, err, "metrics");
    if (rc == SQLITE_ROW) {
        if (a)
            *a = sqlite3_column_int64(st, 0);
        if (b)
            *b = sqlite3_column_int64(st, 1);
        if (c)
            *c = sqlite3_column_int64(st, 2);
    }
    done(st);
    return rc < 0 ? rc : 0;
}

static int n_stats(kw_store_t *s, int64_t now, kw_notify_stats_t *o, kw_err_t *err)
{
    sqlite3 *db = kw_sqlite_rd_begin(s);
    int64_t unf_oldest = 0;
    int rc =
        one_row(s, db, N_ST_OUTBOX, 0, 0, &o->deliveries_pending, &o->oldest_pending_at, NULL, err);
    if (rc == 0)
        rc = one_row(s, db, N_ST_UNFANNED, 0, 0, &o->outbox_unfanned, &unf_oldest, NULL, err);
    if (rc == 0)
        rc = one_row(s, db, N_ST_FAILED, 0, 0, &o->deliveries_failed, NULL, NULL, err);
    if (rc == 0)
        rc = one_row(s, db, N_ST_RENEWALS, 0, 0, &o->renewals_pending, NULL, NULL, err);
    if (rc == 0)
        rc = one_row(s, db, N_ST_ALERTS, now, 0, &o->alerts_due, NULL, NULL, err);
    if (unf_oldest && (o->oldest_pending_at == 0 || unf_oldest < o->oldest_pending_at))
        o->oldest_pending_at = unf_oldest;
    kw_sqlite_rd_end(s, db);
    return rc;
}

const kw_store_notify_ops_t kw_sqlite_notify_ops = {
    .alert_due = n_alert_due,
    .alert_done = n_alert_done,
    .alert_record = n_alert_record,
    .alert_set_next = n_alert_set_next,
    .event_unfanned = n_event_unfanned,
    .delivery_add = n_delivery_add,
    .event_fanned = n_event_fanned,
    .delivery_claim = n_delivery_claim,
    .delivery_finish = n_delivery_finish,
    .delivery_release = n_delivery_release,
    .event_list = n_event_list,
    .event_get = n_event_get,
    .delivery_list = n_delivery_list,
    .event_retry = n_event_retry,
    .channel_disable = n_channel_disable,
    .channel_disabled = n_channel_disabled,
    .mail_quota_take = n_mail_quota_take,
    .stats = n_stats,
};
