/* postgres_cluster.c - the PostgreSQL backend's store_cluster.h: the change feed (read,
 * wait on LISTEN, prune, own commits) and the advisory-lock leader and named locks. */
#include "postgres_int.h"

#ifdef KW_HAVE_LIBPQ /* the whole file: built only when libpq is installed (Makefile) */

#include <poll.h>

/* ==== store_cluster.h ==================================================================== */

static int c_feed_bounds(kw_store_t *s, int64_t *oldest, int64_t *newest, kw_err_t *err)
{
    PGresult *r;
    int rc = kw_pg_run(s, 0, F_BOUNDS, NULL, &r, NULL, err, "feed");
    if (rc == 0) {
        *oldest = col_i64(r, 0, 0);
        *newest = col_i64(r, 0, 1);
    }
    PQclear(r);
    return rc;
}

static int row_feed(const PGresult *r, int i, void *out)
{
    kw_feed_row_t *f = out;
    f->seq = col_i64(r, i, 0);
    col_cpy(r, i, 1, f->kind, sizeof(f->kind));
    col_cpy(r, i, 2, f->id, sizeof(f->id));
    return 0;
}

static const kw_pg_rowtype_t FEED_ROW = {sizeof(kw_feed_row_t), row_feed, NULL};

static int c_feed_read(kw_store_t *s, int64_t after, size_t limit, kw_feed_row_t **out, size_t *n,
                       kw_err_t *err)
{
    return kw_pg_rows_args(s, 0, F_READ, KW_SQ_ARGS(KW_SQA_INT(after), KW_SQA_INT(lim64(limit))),
                           &FEED_ROW, (void **)out, n, err, "feed");
}

static int c_feed_wait(kw_store_t *base, int timeout_ms, kw_err_t *err)
{
    kw_pg_t *s = PG(base);
    pg_conn_t *c = &s->listen;
    if (c->db == NULL || PQstatus(c->db) != CONNECTION_OK)
        s->listening = 0;
    if (!s->listening) {
        int rc = kw_pg_connect(s, c, err);
        if (rc == 0)
            rc = kw_pg_cmd(c, "LISTEN " PG_FEED_CHANNEL, err, "listen");
        if (rc)
            return KW_ESTORE;
        s->listening = 1;
        return 1; /* (re)connected: the caller reads the feed in case it missed a NOTIFY */
    }
    PGnotify *nt;
    int got = 0;
    PQconsumeInput(c->db);
    while ((nt = PQnotifies(c->db)) != NULL) {
        got = 1;
        PQfreemem(nt);
    }
    if (got)
        return 1;
    struct pollfd pfd = {.fd = PQsocket(c->db), .events = POLLIN};
    if (pfd.fd < 0) {
        s->listening = 0;
        return kw_err_set(err, KW_ESTORE, "store", "store: feed connection lost");
    }
    int pr = poll(&pfd, 1, timeout_ms);
    if (pr <= 0)
        return 0;
    if (!PQconsumeInput(c->db) || PQstatus(c->db) != CONNECTION_OK) {
        s->listening = 0;
        return kw_err_set(err, KW_ESTORE, "store", "store: feed connection lost");
    }
    while ((nt = PQnotifies(c->db)) != NULL) {
        got = 1;
        PQfreemem(nt);
    }
    return got;
}

static int c_feed_prune(kw_store_t *base, int64_t before, kw_err_t *err)
{
    kw_pg_t *s = PG(base);
    pg_conn_t *c = kw_pg_reader(s, err);
    PGresult *r = NULL;
    prm_t p = {0};
    if (c == NULL)
        return KW_ESTORE;
    p_int(&p, before);
    int rc = kw_pg_x(c, F_PRUNE, &p, &r, err, "feed prune");
    PQclear(r);
    kw_pg_reader_end(s, c);
    return rc;
}

/* The leader's session: a connection of its own holding pg_advisory_lock while alive. */
static int c_leader(kw_store_t *base, int *leader, kw_err_t *err)
{
    kw_pg_t *s = PG(base);
    pg_conn_t *c = &s->lead;
    int rc;
    pthread_mutex_lock(&s->leadmu);
    if (c->db == NULL || PQstatus(c->db) != CONNECTION_OK)
        s->leader = 0;
    if (s->leader) { /* still connected = still holding: check the session is alive */
        PGresult *r = PQexec(c->db, "SELECT 1");
        if (PQresultStatus(r) != PGRES_TUPLES_OK)
            s->leader = 0;
        PQclear(r);
    }
    if (!s->leader && (rc = kw_pg_connect(s, c, err)) == 0) {
        PGresult *r = PQexec(c->db, "SELECT pg_try_advisory_lock(19287, 3)");
        if (PQresultStatus(r) == PGRES_TUPLES_OK)
            s->leader = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
        PQclear(r);
    }
    *leader = s->leader;
    pthread_mutex_unlock(&s->leadmu);
    return 0;
}

static int c_lock(kw_store_t *base, const char *name, kw_err_t *err)
{
    kw_pg_t *s = PG(base);
    pg_conn_t *c = &s->lead;
    PGresult *r = NULL;
    prm_t p = {0};
    pthread_mutex_lock(&s->leadmu);
    int rc = kw_pg_connect(s, c, err);
    if (rc == 0) {
        p_text(&p, name);
        r = PQexecParams(c->db, "SELECT pg_advisory_lock(19289, hashtext($1))", p.n, NULL, p.v,
                         p.len, p.fmt, 0);
        if (PQresultStatus(r) != PGRES_TUPLES_OK)
            rc = kw_pg_fail(c, r, err, "cluster lock");
        PQclear(r);
    }
    pthread_mutex_unlock(&s->leadmu);
    return rc;
}

static void c_unlock(kw_store_t *base, const char *name)
{
    kw_pg_t *s = PG(base);
    pg_conn_t *c = &s->lead;
    const char *v[1] = {name};
    pthread_mutex_lock(&s->leadmu);
    if (c->db && PQstatus(c->db) == CONNECTION_OK)
        PQclear(PQexecParams(c->db, "SELECT pg_advisory_unlock(19289, hashtext($1))", 1, NULL, v,
                             NULL, NULL, 0));
    pthread_mutex_unlock(&s->leadmu);
}

static int c_feed_own(kw_store_t *base, int64_t seq)
{
    kw_pg_t *s = PG(base);
    int own = 0;
    pthread_mutex_lock(&s->ownmu);
    unsigned n = s->own_next < PG_OWN_RANGES ? s->own_next : PG_OWN_RANGES;
    for (unsigned i = 0; i < n && !own; i++) {
        unsigned j = (s->own_next - 1 - i) % PG_OWN_RANGES; /* newest first */
        own = seq >= s->own_lo[j] && seq <= s->own_hi[j];
    }
    pthread_mutex_unlock(&s->ownmu);
    return own;
}

/* postgres_records.c's, beside the other credential reads */
static int c_cred_get_any(kw_store_t *s, const char *id, kw_cred_t *out, kw_err_t *err)
{
    return kw_pg_cred_get_any(s, id, out, err);
}

const kw_store_cluster_ops_t kw_pg_cluster_ops = {KW_STORE_CLUSTER_OPS(KW_STORE_OP_INIT, c_)};

#endif /* KW_HAVE_LIBPQ */
