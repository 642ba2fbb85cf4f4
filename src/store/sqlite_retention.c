/* sqlite_retention.c - history that does not grow forever (SPEC section 4 "retention"):
 * events with their deliveries, alert records and mail quotas older than --retention are
 * deleted in small batches, one call per write transaction, so a pass never holds the
 * writer for long. An event is kept while one of its deliveries is still pending. The
 * audit trail is never pruned here, only cut after an export (audit_archive.c). The SQLite
 * side of kw_store_retention_ops_t (public calls: store_retention.c); PostgreSQL's twin is
 * in postgres_ext.c. */
#include "sqlite_int.h"

/* Selections: the oldest rows first (events by seq, which follows time), at most ?2. */
#define OLD_EVENTS                                                                                 \
    "SELECT e.id FROM events e WHERE e.occurred_at < ?1 AND e.fanout_at IS NOT NULL"               \
    " AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id"                          \
    " AND d.state IN ('pending', 'sending')) ORDER BY e.seq LIMIT ?2"

static kw_sqlite_stmt_t PRUNE[] = {
    {.sql = "DELETE FROM deliveries WHERE event_id IN (" OLD_EVENTS ")"},
    {.sql = "DELETE FROM events WHERE id IN (" OLD_EVENTS ")"},
    /* an alert record goes once its expiry is itself older than the retention */
    {.sql = "DELETE FROM key_alerts WHERE (key_id, expires_at, threshold) IN (SELECT key_id,"
            " expires_at, threshold FROM key_alerts WHERE expires_at < ?1 AND at < ?1 LIMIT ?2)"},
    {.sql = "DELETE FROM mail_quota WHERE (rcpt, day) IN (SELECT rcpt, day FROM mail_quota"
            " WHERE day < ?1 / 86400 LIMIT ?2)"},
};

static int re_prune(kw_store_t *s, int64_t before, size_t batch, size_t *deleted, kw_err_t *err)
{
    for (size_t i = 0; i < sizeof(PRUNE) / sizeof(PRUNE[0]); i++) {
        int rc = kw_sqlite_write(KW_SQ(s), &PRUNE[i],
                                 KW_SQ_ARGS(KW_SQA_INT(before), KW_SQA_INT(kw_sqlite_lim(batch))),
                                 err, "prune history");
        if (rc)
            return rc;
        if (i != 0) /* the deliveries go with their events: count events */
            *deleted += (size_t)sqlite3_changes(KW_SQ(s)->w.db);
    }
    return 0;
}

static int re_audit_cut(kw_store_t *s, int64_t upto, kw_err_t *err)
{
    static kw_sqlite_stmt_t cut = {.sql = "DELETE FROM audit WHERE seq <= ?1"};
    return kw_sqlite_write(KW_SQ(s), &cut, KW_SQ_ARGS(KW_SQA_INT(upto)), err, "audit archive");
}

const kw_store_retention_ops_t kw_sqlite_retention_ops = {
    KW_STORE_RETENTION_OPS(KW_STORE_OP_INIT, re_)};
