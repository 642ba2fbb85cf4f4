/* sqlite_retention.c - history that does not grow forever (SPEC section 4 "retention"):
 * events with their deliveries, alert records and mail quotas older than --retention are
 * deleted in small batches, one call per write transaction, so a pass never holds the
 * writer for long. An event is kept while one of its deliveries is still pending. The
 * audit trail is never pruned here. SQLite backend; PostgreSQL's twin is in postgres_ext.c. */
#include <sqlite3.h>

#include "store_impl.h"

/* Selections: the oldest rows first (events by seq, which follows time), at most ?2. */
#define OLD_EVENTS                                                                                 \
    "SELECT e.id FROM events e WHERE e.occurred_at < ?1 AND e.fanout_at IS NOT NULL"               \
    " AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id"                          \
    " AND d.state IN ('pending', 'sending')) ORDER BY e.seq LIMIT ?2"

static const char *const PRUNE[] = {
    "DELETE FROM deliveries WHERE event_id IN (" OLD_EVENTS ")",
    "DELETE FROM events WHERE id IN (" OLD_EVENTS ")",
    /* an alert record goes once its expiry is itself older than the retention */
    "DELETE FROM key_alerts WHERE (key_id, expires_at, threshold) IN (SELECT key_id,"
    " expires_at, threshold FROM key_alerts WHERE expires_at < ?1 AND at < ?1 LIMIT ?2)",
    "DELETE FROM mail_quota WHERE (rcpt, day) IN (SELECT rcpt, day FROM mail_quota"
    " WHERE day < ?1 / 86400 LIMIT ?2)",
};

int kw_store_prune(kw_store_t *s, int64_t before, size_t batch, size_t *deleted, kw_err_t *err)
{
    *deleted = 0;
#ifdef KW_HAVE_LIBPQ
    if (s && s->ops == &kw_store_postgres_ops) /* pg2: postgres_ext.c */
        return kw_pg_prune(s, before, batch, deleted, err);
#endif
    if (s == NULL || s->ops != &kw_store_sqlite_ops)
        return 0;
    struct sqlite3 *db = NULL;
    int rc = kw_sqlite_wr(s, &db, err);
    if (rc)
        return rc;
    for (size_t i = 0; i < sizeof(PRUNE) / sizeof(PRUNE[0]); i++) {
        sqlite3_stmt *st = NULL;
        int r = sqlite3_prepare_v2(db, PRUNE[i], -1, &st, NULL);
        if (r == SQLITE_OK) {
            sqlite3_bind_int64(st, 1, before);
            sqlite3_bind_int64(st, 2, (sqlite3_int64)batch);
            r = sqlite3_step(st);
        }
        sqlite3_finalize(st);
        if (r != SQLITE_DONE)
            return kw_sqlite_err(s, db, r, err, "prune history");
        if (i != 0) /* the deliveries go with their events: count events */
            *deleted += (size_t)sqlite3_changes(db);
    }
    return 0;
}

int kw_store_audit_cut(kw_store_t *s, int64_t upto, kw_err_t *err)
{
#ifdef KW_HAVE_LIBPQ
    if (s && s->ops == &kw_store_postgres_ops) /* pg2: postgres_ext.c */
        return kw_pg_audit_cut(s, upto, err);
#endif
    if (s == NULL || s->ops != &kw_store_sqlite_ops)
        return kw_err_set(err, KW_EINVAL, NULL, "store: audit archive needs a SQL store");
    struct sqlite3 *db = NULL;
    int rc = kw_sqlite_wr(s, &db, err);
    if (rc)
        return rc;
    sqlite3_stmt *st = NULL;
    int r = sqlite3_prepare_v2(db, "DELETE FROM audit WHERE seq <= ?1", -1, &st, NULL);
    if (r == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, upto);
        r = sqlite3_step(st);
    }
    sqlite3_finalize(st);
    return r == SQLITE_DONE ? 0 : kw_sqlite_err(s, db, r, err, "audit archive");
}
