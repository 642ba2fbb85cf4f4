/* sqlite_notify.c - the SQLite side of store_notify.h: expiry-alert state, the outbox's
 * deliveries, disabled webhooks, the e-mail quota and /metrics figures. Its statements go
 * through the backend's one cache and helpers (sqlite_int.h). Never logs; messages carry
 * sqlite3_errmsg only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sqlite_int.h"
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

enum {
    KW_NOTIFY_STMTS(KW_STMT_ENUM)
    /* SQLite's own */
    N_DLV_DUE,
    N_DLV_TAKE,
    N_MAIL_GET,
    N_MAIL_PUT,
    N__COUNT
};

static kw_sqlite_stmt_t nsql[N__COUNT] = {
    [N_ALERT_DUE] = {.sql = "SELECT " KW_COLS_KEY ", c.policy, c.name, k.next_alert_at FROM keys k"
                            " JOIN credentials c ON c.id = k.cred_id"
                            " WHERE k.next_alert_at IS NOT NULL AND k.next_alert_at <= ?1"
                            " ORDER BY k.next_alert_at LIMIT ?2"},
    [N_ALERT_DONE] = {.sql =
                          "SELECT threshold FROM key_alerts WHERE key_id = ?1 AND expires_at = ?2"},
    [N_ALERT_RECORD] = {.sql = "INSERT OR IGNORE INTO key_alerts (key_id, expires_at, threshold,"
                               " event_id, at) VALUES (?1, ?2, ?3, ?4, ?5)"},
    [N_ALERT_NEXT] = {.sql = "UPDATE keys SET next_alert_at = ?2 WHERE id = ?1"},
    [N_EV_UNFANNED] = {.sql = "SELECT seq, id, type, occurred_at, payload FROM events"
                              " WHERE fanout_at IS NULL ORDER BY seq LIMIT ?1"},
    [N_DLV_ADD] = {.sql = "INSERT OR IGNORE INTO deliveries (event_id, channel, state, attempts,"
                          " next_attempt_at, created_at) VALUES (?1, ?2, 'pending', 0, ?3, ?3)"},
    [N_EV_FANNED] = {.sql = "UPDATE events SET fanout_at = ?2, cred_id = ?3 WHERE id = ?1"},
    [N_DLV_DUE] = {.sql =
                       "SELECT " KW_COLS_DLV ", e.type, e.occurred_at, e.payload FROM deliveries d"
                       " JOIN events e ON e.id = d.event_id"
                       " WHERE d.state IN ('pending', 'sending') AND d.next_attempt_at <= ?1"
                       " ORDER BY d.next_attempt_at LIMIT ?2"},
    [N_DLV_TAKE] = {.sql = "UPDATE deliveries SET state = 'sending', attempts = attempts + 1,"
                           " next_attempt_at = ?3 WHERE event_id = ?1 AND channel = ?2"},
    [N_DLV_FINISH] = {.sql =
                          "UPDATE deliveries SET state = ?3, next_attempt_at = ?4, last_error = ?5,"
                          " delivered_at = ?6 WHERE event_id = ?1 AND channel = ?2"},
    [N_DLV_RELEASE] = {.sql = "UPDATE deliveries SET state = 'pending', next_attempt_at = ?1"
                              " WHERE state = 'sending'"},
    [N_EV_LIST] = {.sql = "SELECT seq, id, type, occurred_at, payload FROM events"
                          " WHERE seq < ?1 AND (?2 IS NULL OR type = ?2)"
                          " AND (?3 IS NULL OR cred_id = ?3 OR (cred_id IS NULL"
                          "  AND json_extract(payload, '$.credential_id') = ?3))"
                          " ORDER BY seq DESC LIMIT ?4"},
    [N_EV_GET] = {.sql = "SELECT seq, id, type, occurred_at, payload FROM events WHERE id = ?1"},
    [N_DLV_LIST] = {.sql = "SELECT " KW_COLS_DLV " FROM deliveries d WHERE d.event_id = ?1"
                           " ORDER BY d.channel"},
    [N_EV_RETRY] = {.sql = "UPDATE deliveries SET state = 'pending', attempts = 0,"
                           " next_attempt_at = ?2, last_error = NULL WHERE event_id = ?1"
                           " AND state IN ('failed', 'disabled', 'cancelled')"},
    [N_CH_ENABLE] = {.sql = "DELETE FROM channels_disabled WHERE channel IN"
                            " (SELECT channel FROM deliveries WHERE event_id = ?1)"},
    [N_CH_DISABLE] =
        {.sql = "INSERT INTO channels_disabled (channel, at, event_id) VALUES (?1, ?2, ?3)"
                " ON CONFLICT (channel) DO NOTHING"},
    [N_CH_DISABLED] = {.sql = "SELECT 1 FROM channels_disabled WHERE channel = ?1"},
    [N_MAIL_GET] = {.sql = "SELECT sent FROM mail_quota WHERE rcpt = ?1 AND day = ?2"},
    [N_MAIL_PUT] = {.sql = "INSERT INTO mail_quota (rcpt, day, sent) VALUES (?1, ?2, 1)"
                           " ON CONFLICT (rcpt, day) DO UPDATE SET sent = sent + 1"},
    [N_ST_OUTBOX] = {.sql = "SELECT count(*), min(e.occurred_at) FROM deliveries d"
                            " JOIN events e ON e.id = d.event_id"
                            " WHERE d.state IN ('pending', 'sending')"},
    [N_ST_FAILED] = {.sql =
                         "SELECT count(*) FROM deliveries WHERE state IN ('failed', 'disabled')"},
    [N_ST_RENEWALS] = {.sql = "SELECT count(*) FROM renewals WHERE state = 'pending'"},
    [N_ST_UNFANNED] = {.sql =
                           "SELECT count(*), min(occurred_at) FROM events WHERE fanout_at IS NULL"},
    [N_ST_ALERTS] = {.sql = "SELECT count(*) FROM keys WHERE next_alert_at IS NOT NULL"
                            " AND next_alert_at <= ?1"},
};

#define ARGS KW_SQ_ARGS
#define NOARGS KW_SQ_NOARGS
#define T KW_SQA_TEXT
#define I KW_SQA_INT

/* ---- rows ---- */

static int row_alert_key(sqlite3_stmt *st, void *out)
{
    kw_alert_key_t *a = out;
    kw_sqlite_row_key(st, &a->key);
    kw_sqlite_col_cpy(st, KW_COLS_KEY_N, a->policy, sizeof(a->policy));
    kw_sqlite_col_cpy(st, KW_COLS_KEY_N + 1, a->cred_name, sizeof(a->cred_name));
    a->next_alert_at = sqlite3_column_int64(st, KW_COLS_KEY_N + 2);
    return 0;
}

/* Up to three int64 columns (the /metrics aggregates). */
static int row_i64x3(sqlite3_stmt *st, void *out)
{
    int64_t *v = out;
    for (int i = 0; i < 3; i++)
        v[i] = i < sqlite3_column_count(st) ? sqlite3_column_int64(st, i) : 0;
    return 0;
}

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

static int row_event(sqlite3_stmt *st, void *out)
{
    kw_sqlite_row_t r;
    kw_sqlite_row_src(&r, st);
    return kw_row_event(&r.src, out);
}

static void clear_payload_event(void *e)
{
    free(((kw_event_t *)e)->payload);
}

static int row_delivery(sqlite3_stmt *st, void *out)
{
    kw_sqlite_row_t r;
    kw_sqlite_row_src(&r, st);
    return kw_row_delivery(&r.src, out);
}

/* A due delivery with its event (type, occurred_at, payload). */
static int row_delivery_due(sqlite3_stmt *st, void *out)
{
    kw_delivery_t *d = out;
    row_delivery(st, d);
    kw_sqlite_col_cpy(st, 8, d->type, sizeof(d->type));
    d->occurred_at = sqlite3_column_int64(st, 9);
    const char *p = (const char *)sqlite3_column_text(st, 10);
    d->payload = strdup(p ? p : "{}");
    return d->payload ? 0 : KW_ENOMEM;
}

static void clear_payload_delivery(void *d)
{
    free(((kw_delivery_t *)d)->payload);
}

/* ---- the reads, described once ---- */

static const kw_sqlite_rowtype_t ALERT_ROWS = {sizeof(kw_alert_key_t), row_alert_key, NULL};
static const kw_sqlite_rowtype_t EVENT_ROWS = {sizeof(kw_event_t), row_event, clear_payload_event};
static const kw_sqlite_rowtype_t DUE_ROWS = {sizeof(kw_delivery_t), row_delivery_due,
                                             clear_payload_delivery};
static const kw_sqlite_rowtype_t DLV_ROWS = {sizeof(kw_delivery_t), row_delivery, NULL};
static const kw_sqlite_rowtype_t STAT_ROWS = {3 * sizeof(int64_t), row_i64x3, NULL};
#define I64_ROWS (&kw_sqlite_i64_rows)

static const kw_sqlite_query_t q_alert_due = {
    .stmt = &nsql[N_ALERT_DUE], .what = "due alerts", .rows = &ALERT_ROWS};
static const kw_sqlite_query_t q_alert_done = {
    .stmt = &nsql[N_ALERT_DONE], .what = "alert state", .rows = I64_ROWS};
static const kw_sqlite_query_t q_ev_unfanned = {
    .stmt = &nsql[N_EV_UNFANNED], .what = "events", .rows = &EVENT_ROWS};
static const kw_sqlite_query_t q_ev_list = {
    .stmt = &nsql[N_EV_LIST], .what = "events", .rows = &EVENT_ROWS};
static const kw_sqlite_query_t q_ev_get = {&nsql[N_EV_GET], "events", &EVENT_ROWS, "id",
                                           "event not found"};
static const kw_sqlite_query_t q_dlv_due = {
    .stmt = &nsql[N_DLV_DUE], .what = "due deliveries", .rows = &DUE_ROWS};
static const kw_sqlite_query_t q_dlv_list = {
    .stmt = &nsql[N_DLV_LIST], .what = "deliveries", .rows = &DLV_ROWS};
static const kw_sqlite_query_t q_ch_disabled = {
    .stmt = &nsql[N_CH_DISABLED], .what = "channel state", .rows = I64_ROWS};
static const kw_sqlite_query_t q_mail = {
    .stmt = &nsql[N_MAIL_GET], .what = "mail quota", .rows = I64_ROWS};
/* one per N_ST_* statement, in order from N_ST_OUTBOX */
static const kw_sqlite_query_t q_stats[] = {
    {.stmt = &nsql[N_ST_OUTBOX], .what = "metrics", .rows = &STAT_ROWS},
    {.stmt = &nsql[N_ST_FAILED], .what = "metrics", .rows = &STAT_ROWS},
    {.stmt = &nsql[N_ST_RENEWALS], .what = "metrics", .rows = &STAT_ROWS},
    {.stmt = &nsql[N_ST_UNFANNED], .what = "metrics", .rows = &STAT_ROWS},
    {.stmt = &nsql[N_ST_ALERTS], .what = "metrics", .rows = &STAT_ROWS},
};

/* ---- alerts ---- */

static int n_alert_due(kw_store_t *s, int64_t now, size_t limit, kw_alert_key_t **out, size_t *n,
                       kw_err_t *err)
{
    return kw_sqlite_list(KW_SQ(s), &q_alert_due, ARGS(I(now), I(kw_sqlite_lim(limit))), out, n,
                          err);
}

static int n_alert_done(kw_store_t *s, const char *key_id, int64_t expires_at, int64_t *d,
                        size_t max, size_t *n, kw_err_t *err)
{
    return kw_sqlite_list_i64(KW_SQ(s), &q_alert_done, ARGS(T(key_id), I(expires_at)), d, max, n,
                              err);
}

static int n_alert_record(kw_store_t *s, const char *key_id, int64_t expires_at, int64_t threshold,
                          const char *event_id, int64_t at, kw_err_t *err)
{
    return kw_sqlite_write(KW_SQ(s), &nsql[N_ALERT_RECORD],
                           ARGS(T(key_id), I(expires_at), I(threshold), T(event_id), I(at)), err,
                           "alert record");
}

static int n_alert_set_next(kw_store_t *s, const char *key_id, int64_t next, kw_err_t *err)
{
    return kw_sqlite_write(KW_SQ(s), &nsql[N_ALERT_NEXT], ARGS(T(key_id), KW_SQA_TIME(next)), err,
                           "alert schedule");
}

/* ---- events and deliveries ---- */

static int n_event_unfanned(kw_store_t *s, size_t limit, kw_event_t **out, size_t *n, kw_err_t *err)
{
    return kw_sqlite_list(KW_SQ(s), &q_ev_unfanned, ARGS(I(kw_sqlite_lim(limit))), out, n, err);
}

static int n_delivery_add(kw_store_t *s, const char *event_id, const char *channel, int64_t now,
                          kw_err_t *err)
{
    return kw_sqlite_write(KW_SQ(s), &nsql[N_DLV_ADD], ARGS(T(event_id), T(channel), I(now)), err,
                           "delivery insert");
}

static int n_event_fanned(kw_store_t *s, const char *event_id, const char *cred_id, int64_t now,
                          kw_err_t *err)
{
    return kw_sqlite_write(KW_SQ(s), &nsql[N_EV_FANNED],
                           ARGS(T(event_id), I(now), KW_SQA_OTEXT(cred_id)), err, "event fan-out");
}

static int n_delivery_claim(kw_store_t *s, int64_t now, int64_t lease_until, size_t limit,
                            kw_delivery_t **out, size_t *n, kw_err_t *err)
{
    kw_sqlite_conn_t *c = NULL;
    kw_delivery_t *a = NULL;
    size_t cnt = 0;
    int rc = kw_sqlite_wr(KW_SQ(s), &c, err);
    if (rc == 0)
        rc = kw_sqlite_list_on(c, &q_dlv_due, ARGS(I(now), I(kw_sqlite_lim(limit))), &a, &cnt, err);
    if (rc)
        return rc;
    for (size_t i = 0; rc == 0 && i < cnt; i++) {
        rc = kw_sqlite_run(c, &nsql[N_DLV_TAKE],
                           ARGS(T(a[i].event_id), T(a[i].channel), I(lease_until)), err,
                           "delivery claim");
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
    return kw_sqlite_write(KW_SQ(s), &nsql[N_DLV_FINISH],
                           ARGS(T(d->event_id), T(d->channel), T(d->state),
                                KW_SQA_TIME(d->next_attempt_at), KW_SQA_OTEXT(d->last_error),
                                KW_SQA_TIME(d->delivered_at)),
                           err, "delivery update");
}

static int n_delivery_release(kw_store_t *s, int64_t now, size_t *n, kw_err_t *err)
{
    kw_sqlite_t *q = KW_SQ(s);
    int rc = kw_sqlite_write(q, &nsql[N_DLV_RELEASE], ARGS(I(now)), err, "delivery release");
    if (rc == 0)
        *n = (size_t)sqlite3_changes(q->w.db);
    return rc;
}

static int n_event_list(kw_store_t *s, const kw_event_filter_t *f, kw_event_t **out, size_t *n,
                        kw_err_t *err)
{
    return kw_sqlite_list(KW_SQ(s), &q_ev_list,
                          ARGS(I(f->before_seq > 0 ? f->before_seq : INT64_MAX), T(f->type),
                               T(f->cred_id), I(kw_sqlite_lim(f->limit))),
                          out, n, err);
}

static int n_event_get(kw_store_t *s, const char *id, kw_event_t *out, kw_err_t *err)
{
    return kw_sqlite_get(KW_SQ(s), &q_ev_get, ARGS(T(id)), out, err);
}

static int n_delivery_list(kw_store_t *s, const char *event_id, kw_delivery_t **out, size_t *n,
                           kw_err_t *err)
{
    return kw_sqlite_list(KW_SQ(s), &q_dlv_list, ARGS(T(event_id)), out, n, err);
}

static int n_event_retry(kw_store_t *s, const char *event_id, int64_t now, size_t *n, kw_err_t *err)
{
    kw_sqlite_t *q = KW_SQ(s);
    int rc = kw_sqlite_write(q, &nsql[N_CH_ENABLE], ARGS(T(event_id)), err, "channel enable");
    if (rc == 0)
        rc = kw_sqlite_write(q, &nsql[N_EV_RETRY], ARGS(T(event_id), I(now)), err, "event retry");
    if (rc == 0)
        *n = (size_t)sqlite3_changes(q->w.db);
    return rc;
}

/* ---- channels, quota ---- */

static int n_channel_disable(kw_store_t *s, const char *channel, const char *event_id, int64_t now,
                             kw_err_t *err)
{
    return kw_sqlite_write(KW_SQ(s), &nsql[N_CH_DISABLE], ARGS(T(channel), I(now), T(event_id)),
                           err, "channel disable");
}

static int n_channel_disabled(kw_store_t *s, const char *channel, int *disabled, kw_err_t *err)
{
    int64_t *row = NULL;
    size_t nrow = 0;
    int rc = kw_sqlite_list(KW_SQ(s), &q_ch_disabled, ARGS(T(channel)), &row, &nrow, err);
    free(row);
    if (rc == 0)
        *disabled = nrow > 0;
    return rc;
}

static int n_mail_quota_take(kw_store_t *s, const char *rcpt, int64_t day, int64_t cap, int *ok,
                             kw_err_t *err)
{
    kw_sqlite_conn_t *c = NULL;
    int64_t sent = 0;
    int rc = kw_sqlite_wr(KW_SQ(s), &c, err);
    if (rc)
        return rc;
    int64_t *row = NULL;
    size_t nrow = 0;
    rc = kw_sqlite_list_on(c, &q_mail, ARGS(T(rcpt), I(day)), &row, &nrow, err);
    if (rc)
        return rc;
    if (nrow)
        sent = row[0];
    free(row);
    if (sent >= cap) {
        *ok = 0;
        return 0;
    }
    rc = kw_sqlite_run(c, &nsql[N_MAIL_PUT], ARGS(T(rcpt), I(day)), err, "mail quota");
    if (rc == 0)
        *ok = 1;
    return rc;
}

/* ---- metrics ---- */

static int n_stats(kw_store_t *s, int64_t now, kw_notify_stats_t *o, kw_err_t *err)
{
    int64_t v[N_ST_ALERTS - N_ST_OUTBOX + 1][3] = {{0}};
    int rc = 0;
    for (int i = 0; rc == 0 && i <= N_ST_ALERTS - N_ST_OUTBOX; i++) {
        const kw_sqlite_query_t *q = &q_stats[i];
        rc = i == N_ST_ALERTS - N_ST_OUTBOX ? kw_sqlite_get(KW_SQ(s), q, ARGS(I(now)), v[i], err)
                                            : kw_sqlite_get(KW_SQ(s), q, NOARGS, v[i], err);
    }
    if (rc)
        return rc;
    o->deliveries_pending = v[N_ST_OUTBOX - N_ST_OUTBOX][0];
    o->oldest_pending_at = v[N_ST_OUTBOX - N_ST_OUTBOX][1];
    o->deliveries_failed = v[N_ST_FAILED - N_ST_OUTBOX][0];
    o->renewals_pending = v[N_ST_RENEWALS - N_ST_OUTBOX][0];
    o->outbox_unfanned = v[N_ST_UNFANNED - N_ST_OUTBOX][0];
    o->alerts_due = v[N_ST_ALERTS - N_ST_OUTBOX][0];
    int64_t unf_oldest = v[N_ST_UNFANNED - N_ST_OUTBOX][1];
    if (unf_oldest && (o->oldest_pending_at == 0 || unf_oldest < o->oldest_pending_at))
        o->oldest_pending_at = unf_oldest;
    return 0;
}

const kw_store_notify_ops_t kw_sqlite_notify_ops = {KW_STORE_NOTIFY_OPS(KW_STORE_OP_INIT, n_)};
