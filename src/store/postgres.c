/* postgres.c - the PostgreSQL store backend (libpq), the same schema and behaviour as sqlite.c
 * and sqlite_notify.c for several keyward nodes on one database. This file: connections
 * (readers, writers pinned to a transaction, reconnect with backoff), statement plumbing
 * (prepared statements, pipelines, COPY, the table-driven row reads and the one write
 * shape), open/migrate/close and transactions with group commit's savepoints. The records
 * are in postgres_records.c, store_notify.h in postgres_notify.c, the feed and the leader
 * in postgres_cluster.c, the schema in postgres_schema.c. Never logs; messages carry
 * PostgreSQL's primary message only (never its DETAIL, which quotes values), and never the
 * password. */
#include "postgres_int.h"

#ifdef KW_HAVE_LIBPQ /* the whole file: built only when libpq is installed (Makefile) */

#include "../core/key.h"
#include "../core/util.h"

#include <poll.h>
#include <time.h>

static int row_text(const kw_row_src_t *x, int col, const char **out)
{
    const kw_pg_row_t *p = (const kw_pg_row_t *)x;
    *out = col_v(p->r, p->row, col);
    return 0;
}

static int64_t row_i64(const kw_row_src_t *x, int col)
{
    const kw_pg_row_t *p = (const kw_pg_row_t *)x;
    return col_i64(p->r, p->row, col);
}

void kw_pg_row_src(kw_pg_row_t *x, const PGresult *r, int row)
{
    x->src.text = row_text;
    x->src.i64 = row_i64;
    x->r = r;
    x->row = row;
}

/* The writer whose transaction the calling thread holds, or NULL. Only a thread stores its
 * own id, so a relaxed load answers "is it mine?" exactly whatever others do. */
pg_conn_t *kw_pg_tx_conn(kw_pg_t *s)
{
    uint64_t me = kw_store_thread_id();
    for (int i = 0; i < PG_WRITERS; i++)
        if (atomic_load_explicit(&s->owner[i], memory_order_relaxed) == me)
            return &s->w[i];
    return NULL;
}

static int in_tx(kw_pg_t *s)
{
    return kw_pg_tx_conn(s) != NULL;
}

int kw_pg_is_writer(kw_pg_t *s, const pg_conn_t *c)
{
    return c >= s->w && c < s->w + PG_WRITERS;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A URL made safe to print: the password (user:PASS@) replaced. */
static void url_redacted(const char *url, char *out, size_t n)
{
    const char *at = strchr(url, '@');
    const char *start = strstr(url, "://");
    const char *colon = start ? strchr(start + 3, ':') : NULL;
    if (at && colon && colon < at)
        snprintf(out, n, "%.*s:***%s", (int)(colon - url), url, at);
    else
        snprintf(out, n, "%s", url);
    char *q = strstr(out, "password=");
    if (q)
        snprintf(q, n - (size_t)(q - out), "password=***");
}

static void pg_quiet(void *arg, const char *message)
{
}

/* Connect c (or reconnect a broken one), with backoff between failed attempts. */
int kw_pg_connect(kw_pg_t *s, pg_conn_t *c, kw_err_t *err)
{
    if (c->db && PQstatus(c->db) == CONNECTION_OK)
        return 0;
    int64_t t = now_ms();
    if (c->db && t < c->next_try_ms)
        return kw_err_set(err, KW_ESTORE, "store", "store: PostgreSQL unreachable (retrying)");
    if (c->db)
        PQfinish(c->db);
    memset(c->prep, 0, sizeof(c->prep));
    const char *pw = getenv("KEYWARD_STORE_PASSWORD");
    const char *kw[] = {"dbname",
                        "application_name",
                        "connect_timeout",
                        "keepalives_idle",
                        "keepalives_interval",
                        "keepalives_count",
                        pw && *pw ? "password" : NULL,
                        NULL};
    const char *val[] = {s->url, "keyward", "5", "10", "5", "3", pw, NULL};
    c->db = PQconnectdbParams(kw, val, 1);
    if (c->db == NULL)
        return kw_err_set(err, KW_ENOMEM, NULL, NULL);
    if (PQstatus(c->db) != CONNECTION_OK) {
        char u[256], m[160];
        url_redacted(s->url, u, sizeof(u));
        snprintf(m, sizeof(m), "%s", PQerrorMessage(c->db));
        m[strcspn(m, "\n")] = '\0';
        c->backoff_ms = c->backoff_ms ? c->backoff_ms * 2 : PG_BACKOFF_MIN_MS;
        if (c->backoff_ms > PG_BACKOFF_MAX_MS)
            c->backoff_ms = PG_BACKOFF_MAX_MS;
        c->next_try_ms = t + c->backoff_ms;
        return kw_err_set(err, KW_ESTORE, "store", "store: cannot connect to %s: %s", u, m);
    }
    c->backoff_ms = 0;
    /* the server's notices ("terminating connection...") are not keyward's log lines */
    PQsetNoticeProcessor(c->db, pg_quiet, NULL);
    /* times are compared as integers, texts byte-wise; no surprises from the session */
    PGresult *r = PQexec(c->db, "SET client_min_messages = warning; SET TIME ZONE 'UTC'");
    PQclear(r);
    return 0;
}

/* Map a failed statement to KW_E*. Constraint violations (SQLSTATE class 23) are
 * KW_ECONFLICT and leave the transaction usable (the statement ran in its own savepoint);
 * anything else marks the transaction failed so commit refuses it. */
int kw_pg_fail(pg_conn_t *c, PGresult *r, kw_err_t *err, const char *what)
{
    const char *st = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    const char *cons = r ? PQresultErrorField(r, PG_DIAG_CONSTRAINT_NAME) : NULL;
    const char *msg = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    char m[128];
    snprintf(m, sizeof(m), "%s", msg ? msg : (c->db ? PQerrorMessage(c->db) : "no connection"));
    m[strcspn(m, "\n")] = '\0';
    snprintf(c->xstate, sizeof(c->xstate), "%s", st ? st : "");
    snprintf(c->xcons, sizeof(c->xcons), "%s", cons ? cons : "");
    if (st && strncmp(st, "23", 2) == 0)
        return kw_err_set(err, KW_ECONFLICT, NULL, "store: %s: %s", what, m);
    if (!c->failed)
        snprintf(c->failmsg, sizeof(c->failmsg), "%s", m);
    c->failed = 1;
    if (c->db && PQstatus(c->db) != CONNECTION_OK)
        return kw_err_set(err, KW_ESTORE, "store", "store: %s failed: PostgreSQL unreachable (%s)",
                          what, m);
    return kw_err_set(err, KW_ESTORE, "store", "store: %s failed: %s", what, m);
}

/* Run prepared statement id on c (preparing it on first use). *res gets the result when
 * it returned rows or a command status; 0 or KW_E*. */
/* Prepare statement id on c once (again after a reconnect); name gets its name. */
static int prepare(pg_conn_t *c, int id, char name[16], kw_err_t *err)
{
    snprintf(name, 16, "k%d", id);
    if (c->prep[id])
        return 0;
    PGresult *r = PQprepare(c->db, name, kw_pg_stmt_sql[id], 0, NULL);
    int rc = PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : kw_pg_fail(c, r, err, "prepare");
    PQclear(r);
    c->prep[id] = rc == 0;
    return rc;
}

static int result_ok(const PGresult *r)
{
    ExecStatusType es = PQresultStatus(r);
    return es == PGRES_TUPLES_OK || es == PGRES_COMMAND_OK;
}

/* kw_pg_savepoint defers the op's SAVEPOINT to the op's first statement: sent then, with the
 * release of the previous op's savepoint, in the statement's round trip (pipeline) or, on
 * the paths without a pipeline, just before it (sp_send). */
static int sp_cmds(const pg_conn_t *c, const char *cmd[2])
{
    int n = 0;
    if (c->sp_pending && c->sp_done)
        cmd[n++] = "RELEASE SAVEPOINT op";
    if (c->sp_pending)
        cmd[n++] = "SAVEPOINT op";
    return n;
}

static int sp_send(pg_conn_t *c, kw_err_t *err)
{
    if (!c->sp_pending)
        return 0;
    const char *sql = c->sp_done ? "RELEASE SAVEPOINT op; SAVEPOINT op" : "SAVEPOINT op";
    c->sp_pending = c->sp_done = 0;
    int rc = kw_pg_cmd(c, sql, err, "savepoint");
    c->sp_ok = rc == 0;
    return rc;
}

#ifdef LIBPQ_HAS_PIPELINING
static int pend(pg_conn_t *c, int sent, const pg_pend_t *e)
{
    c->sendfail |= !sent;
    c->pend[c->npend++] = *e;
    return 0;
}

/* Open c's pipeline if it is not, the op's deferred savepoint first; then make room for
 * `need` more entries (syncing what is pending when full). */
static int pipe_open(pg_conn_t *c, int need, kw_err_t *err, const char *what);

/* Sync c's pipeline and read every answer in order: the savepoint commands (sp_ok), the
 * preparations, the deferred writes (*ret filled, a constraint failure mapped by map), the
 * statements (*last = the last one's result when it succeeded, if last). Returns the first
 * failure: statements after it were skipped by PostgreSQL (PGRES_PIPELINE_ABORTED). */
static int pipe_close(pg_conn_t *c, PGresult **last, kw_err_t *err, const char *what)
{
    int rc = 0, npre = 0, okpre = 0, sent = !c->sendfail && PQpipelineSync(c->db);
    kw_err_t local = {0};
    PGresult *r;
    if (err == NULL) /* a conflict mapper writes its field and message */
        err = &local;
    if (last)
        *last = NULL;
    for (int i = 0; sent && i < c->npend; i++) {
        const pg_pend_t *e = &c->pend[i];
        if ((r = PQgetResult(c->db)) == NULL) {
            sent = 0;
            break;
        }
        int ok = result_ok(r), aborted = PQresultStatus(r) == PGRES_PIPELINE_ABORTED;
        npre += e->kind == PE_SP;
        okpre += e->kind == PE_SP && ok;
        if (e->kind == PE_PREP)
            c->prep[e->id] = ok;
        if (ok && e->kind == PE_DEF && e->ret && PQntuples(r) > 0)
            *e->ret = col_i64(r, 0, 0);
        if (!ok && !aborted && rc == 0) {
            rc = kw_pg_fail(c, r, err, e->what ? e->what : what);
            if (rc == KW_ECONFLICT && e->kind == PE_DEF && e->map)
                rc = e->map(c, err);
            if (e->kind == PE_DEF && !c->failed) {
                /* the transaction is aborted now, whatever the caller makes of the error:
                 * only a rollback to the op's savepoint can go on */
                snprintf(c->failmsg, sizeof(c->failmsg), "%.127s", err->msg);
                c->failed = 1;
            }
            if (e->kind == PE_DEF && !c->has_deferr) {
                /* the op's root cause, whichever later call drained it (a read may
                 * reinterpret the code): kw_pg_sync answers with this one */
                c->deferr = *err;
                c->deferr.code = rc;
                c->has_deferr = 1;
            }
        }
        if (ok && last && e->kind == PE_STMT && i == c->npend - 1)
            *last = r;
        else
            PQclear(r);
        PQclear(PQgetResult(c->db)); /* the NULL closing each statement's answers */
    }
    while (sent && (r = PQgetResult(c->db)) != NULL) {
        int sync = PQresultStatus(r) == PGRES_PIPELINE_SYNC;
        PQclear(r);
        if (sync)
            break;
    }
    if (npre)
        c->sp_ok = okpre == npre;
    int want = last && c->npend && c->pend[c->npend - 1].kind == PE_STMT;
    c->npend = 0;
    c->piped = c->sendfail = 0;
    if (rc == 0 && (!sent || (want && *last == NULL)))
        rc = kw_pg_fail(c, NULL, err, what);
    if (!PQexitPipelineMode(c->db)) {
        /* answers left unread: this connection cannot be trusted with another statement */
        if (rc == 0)
            rc = kw_pg_fail(c, NULL, err, what);
        c->failed = 1;
        PQfinish(c->db);
        c->db = NULL;
    }
    if (rc && last) {
        PQclear(*last);
        *last = NULL;
    }
    return rc;
}

static int pipe_open(pg_conn_t *c, int need, kw_err_t *err, const char *what)
{
    if (c->piped && c->npend + need > PG_PEND_MAX) {
        int rc = pipe_close(c, NULL, err, what);
        if (rc)
            return rc;
    }
    if (c->piped)
        return 0;
    if (c->db == NULL || !PQenterPipelineMode(c->db))
        return kw_pg_fail(c, NULL, err, what);
    const char *pre[2];
    int npre = sp_cmds(c, pre);
    c->piped = 1;
    c->sendfail = 0;
    c->npend = 0;
    c->sp_pending = c->sp_done = 0;
    for (int i = 0; i < npre; i++)
        pend(c, PQsendQueryParams(c->db, pre[i], 0, NULL, NULL, NULL, NULL, 0),
             &(pg_pend_t){.kind = PE_SP, .what = "savepoint"});
    return 0;
}

/* Send statement id into c's open pipeline (its preparation first, on first use). */
static void pipe_stmt(pg_conn_t *c, int id, const prm_t *p, const pg_pend_t *e)
{
    char name[16];
    snprintf(name, sizeof(name), "k%d", id);
    if (!c->prep[id]) {
        c->prep[id] = 1; /* sent: not again in this pipeline; its answer decides */
        pend(c, PQsendPrepare(c->db, name, kw_pg_stmt_sql[id], 0, NULL),
             &(pg_pend_t){.kind = PE_PREP, .id = id, .what = "prepare"});
    }
    pend(c,
         PQsendQueryPrepared(c->db, name, p ? p->n : 0, p ? p->v : NULL, p ? p->len : NULL,
                             p ? p->fmt : NULL, 0),
         e);
}
#endif

/* Answers still due on c (deferred writes): read them now, before c is used another way. */
static int drain(pg_conn_t *c, kw_err_t *err, const char *what)
{
#ifdef LIBPQ_HAS_PIPELINING
    if (c->piped)
        return pipe_close(c, NULL, err, what);
#endif
    return 0;
}

/* Before a statement sent outside the pipeline: deferred answers read, the connection up. */
static int unpiped(pg_conn_t *c, kw_err_t *err, const char *what)
{
    int rc = drain(c, err, what);
    if (rc == 0 && c->db == NULL)
        rc = kw_pg_fail(c, NULL, err, what);
    return rc;
}

/* Statements ids[0..n) (same parameters), after the op's deferred savepoint and writes if
 * any, in one round trip (libpq pipeline mode); *res = the last one's result. Each
 * statement runs with its own snapshot, so a later one sees what an earlier one waited for. */
static int pipeline(pg_conn_t *c, const int *ids, int n, const prm_t *p, PGresult **res,
                    kw_err_t *err, const char *what)
{
    int rc = 0;
    *res = NULL;
    if (c->db == NULL)
        return kw_pg_fail(c, NULL, err, what);
#ifdef LIBPQ_HAS_PIPELINING
    if ((rc = pipe_open(c, 2 * n + 2, err, what)) != 0)
        return rc;
    for (int i = 0; i < n; i++)
        pipe_stmt(c, ids[i], p, &(pg_pend_t){.kind = PE_STMT, .what = what});
    return pipe_close(c, res, err, what);
#else
    char name[16];
    if (rc == 0)
        rc = sp_send(c, err);
    for (int i = 0; i < n && rc == 0; i++) {
        PQclear(*res);
        if ((rc = prepare(c, ids[i], name, err)) != 0)
            break;
        *res = PQexecPrepared(c->db, name, p ? p->n : 0, p ? p->v : NULL, p ? p->len : NULL,
                              p ? p->fmt : NULL, 0);
        if (!result_ok(*res))
            rc = kw_pg_fail(c, *res, err, what);
    }
    if (rc) {
        PQclear(*res);
        *res = NULL;
    }
    return rc;
#endif
}

int kw_pg_deferring(kw_store_t *base, const pg_conn_t *c)
{
#ifdef LIBPQ_HAS_PIPELINING
    return PG(base)->defer && c->in_sp && c->db;
#else
    return 0;
#endif
}

int kw_pg_send(pg_conn_t *c, int id, const prm_t *p, int64_t *ret,
               int (*map)(pg_conn_t *c, kw_err_t *err), kw_err_t *err, const char *what)
{
#ifdef LIBPQ_HAS_PIPELINING
    int rc = pipe_open(c, 2, err, what);
    if (rc == 0)
        pipe_stmt(c, id, p, &(pg_pend_t){.kind = PE_DEF, .what = what, .ret = ret, .map = map});
    return rc;
#else
    return kw_err_set(err, KW_EINTERNAL, NULL, "store: no libpq pipeline");
#endif
}

int kw_pg_write_later(kw_store_t *base, int id, const prm_t *p, int feed, int64_t *ret,
                      int (*map)(pg_conn_t *c, kw_err_t *err), kw_err_t *err, const char *what)
{
    pg_conn_t *c = NULL;
    int rc = kw_pg_writer(PG(base), &c, err);
    if (rc)
        return rc;
    if (!kw_pg_deferring(base, c)) {
        rc = kw_pg_write(base, id, p, feed, ret, NULL, &c, err, what);
        return rc == KW_ECONFLICT && map ? map(c, err) : rc;
    }
    if (feed)
        c->wrote = 1;
    return kw_pg_send(c, id, p, ret, map, err, what);
}

int kw_pg_defer(kw_store_t *base, int on)
{
    PG(base)->defer = on != 0;
    return 0;
}

int kw_pg_sync(kw_store_t *base, kw_err_t *err)
{
    pg_conn_t *c = kw_pg_tx_conn(PG(base));
    if (c == NULL)
        return 0;
    int rc = drain(c, err, "write");
    if (c->has_deferr) { /* the first refused deferred write, even if a read drained it */
        if (err)
            *err = c->deferr;
        rc = c->deferr.code;
    }
    return rc;
}

int kw_pg_x(pg_conn_t *c, int id, const prm_t *p, PGresult **res, kw_err_t *err, const char *what)
{
    char name[16];
    *res = NULL;
    if (c->sp_pending || c->piped) /* with the op's savepoint, or its deferred writes */
        return pipeline(c, &id, 1, p, res, err, what);
    if (c->db == NULL)
        return kw_pg_fail(c, NULL, err, what);
    int rc = prepare(c, id, name, err);
    if (rc)
        return rc;
    PGresult *r = PQexecPrepared(c->db, name, p ? p->n : 0, p ? p->v : NULL, p ? p->len : NULL,
                                 p ? p->fmt : NULL, 0);
    if (!result_ok(r)) {
        rc = kw_pg_fail(c, r, err, what);
        PQclear(r);
        return rc;
    }
    *res = r;
    return 0;
}

int kw_pg_x2(pg_conn_t *c, int id1, int id2, const prm_t *p, PGresult **res, kw_err_t *err,
             const char *what)
{
    const int ids[2] = {id1, id2};
    return pipeline(c, ids, 2, p, res, err, what);
}

/* A plain command (no parameters, may hold several statements). */
int kw_pg_cmd(pg_conn_t *c, const char *sql, kw_err_t *err, const char *what)
{
    int rc = unpiped(c, err, what);
    if (rc == 0)
        rc = sp_send(c, err);
    if (rc)
        return rc;
    PGresult *r = PQexec(c->db, sql);
    if (!result_ok(r))
        rc = kw_pg_fail(c, r, err, what);
    PQclear(r);
    return rc;
}

/* A write that may violate a constraint, inside the caller's transaction: in PostgreSQL
 * any error aborts the transaction, while the store's contract (as in SQLite) is that a
 * constraint failure fails only that statement. So it runs in a savepoint of its own. */
int kw_pg_w(pg_conn_t *c, int id, const prm_t *p, PGresult **res, kw_err_t *err, const char *what)
{
    /* Inside a group-commit op's savepoint the op fails as a whole on a conflict, and
     * savepoint_end(keep = 0) rolls back to its savepoint, which also clears the aborted
     * state: no statement savepoint needed (two round trips fewer per write). */
    if (c->in_sp)
        return kw_pg_x(c, id, p, res, err, what);
    int rc = kw_pg_cmd(c, "SAVEPOINT kw_st", err, what);
    if (rc)
        return rc;
    rc = kw_pg_x(c, id, p, res, err, what);
    if (rc == KW_ECONFLICT) {
        kw_err_t e2 = {0};
        if (kw_pg_cmd(c, "ROLLBACK TO SAVEPOINT kw_st; RELEASE SAVEPOINT kw_st", &e2, what))
            return kw_err_set(err, KW_ESTORE, "store", "%s", e2.msg);
        return rc;
    }
    if (rc == 0) {
        kw_err_t e2 = {0};
        if (kw_pg_cmd(c, "RELEASE SAVEPOINT kw_st", &e2, what)) {
            PQclear(*res);
            *res = NULL;
            return kw_err_set(err, KW_ESTORE, "store", "%s", e2.msg);
        }
    }
    return rc;
}

/* A hex digit's value + 1; 0 for any other byte (kw_pg_bytes: a table, not branches, as it
 * decodes every key's digest at start-up). */
static const uint8_t hex1[256] = {
    ['0'] = 1,  ['1'] = 2,  ['2'] = 3,  ['3'] = 4,  ['4'] = 5,  ['5'] = 6,  ['6'] = 7,  ['7'] = 8,
    ['8'] = 9,  ['9'] = 10, ['a'] = 11, ['b'] = 12, ['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16,
    ['A'] = 11, ['B'] = 12, ['C'] = 13, ['D'] = 14, ['E'] = 15, ['F'] = 16};

/* BYTEA in text form ("\x" + hex) into out (at most max bytes); returns its length,
 * -1 for NULL. */
long kw_pg_bytes(const char *t, uint8_t *out, size_t max)
{
    if (t == NULL)
        return -1;
    if (t[0] != '\\' || t[1] != 'x')
        return 0;
    const unsigned char *u = (const unsigned char *)t + 2;
    size_t n = 0;
    for (;; u += 2, n++) {
        int hi = hex1[u[0]], lo = hi ? hex1[u[1]] : 0; /* u[1] is read only before a NUL */
        if (!hi || !lo)
            break;
        if (n < max)
            out[n] = (uint8_t)((hi - 1) << 4 | (lo - 1));
    }
    return (long)n;
}

/* One COPY text line (len bytes, '\\n' last, NUL after it) split in place into at most max
 * columns; returns how many. NULL column: exactly \\N. COPY TO escapes only \\b \\f \\n \\r
 * \\t \\v and the backslash itself. A field without a backslash is only terminated
 * (memchr finds the tab): only escaped fields are copied down byte by byte. */
static int copy_split(char *s, int len, const char **v, int max)
{
    char *end = s + len;
    int n = 0;
    if (len > 0 && end[-1] == '\n')
        end--;
    for (;;) {
        char *f = s, *tab = memchr(s, '\t', (size_t)(end - s));
        char *fe = tab ? tab : end;
        int null = fe - f == 2 && f[0] == '\\' && f[1] == 'N';
        char *w = memchr(f, '\\', (size_t)(fe - f));
        if (w && !null) {
            for (s = w; s < fe;) {
                char ch = *s++;
                if (ch == '\\' && s < fe) {
                    ch = *s++;
                    ch = ch == 'b'   ? '\b'
                         : ch == 'f' ? '\f'
                         : ch == 'n' ? '\n'
                         : ch == 'r' ? '\r'
                         : ch == 't' ? '\t'
                         : ch == 'v' ? '\v'
                                     : ch;
                }
                *w++ = ch;
            }
        } else {
            w = fe;
        }
        *w = '\0';
        if (n == max)
            return max + 1;
        v[n++] = null ? NULL : f;
        if (tab == NULL)
            return n;
        s = tab + 1;
    }
}

int kw_pg_copy(pg_conn_t *c, const char *sql, int ncols, int (*row)(void *, const char *const *),
               void *ud, kw_err_t *err, const char *what)
{
    int rc = unpiped(c, err, what), len;
    if (rc == 0)
        rc = sp_send(c, err);
    if (rc)
        return rc;
    PGresult *r = PQexec(c->db, sql);
    if (PQresultStatus(r) != PGRES_COPY_OUT) {
        rc = kw_pg_fail(c, r, err, what);
        PQclear(r);
        return rc;
    }
    PQclear(r);
    char *line;
    while ((len = PQgetCopyData(c->db, &line, 0)) > 0) {
        const char *v[16];
        if (rc == 0 && (ncols > 16 || copy_split(line, len, v, ncols) != ncols))
            rc = kw_err_set(err, KW_ESTORE, "store", "store: %s: malformed COPY row", what);
        else if (rc == 0)
            rc = row(ud, v);
        PQfreemem(line);
    }
    while ((r = PQgetResult(c->db)) != NULL) {
        if (rc == 0 && PQresultStatus(r) != PGRES_COMMAND_OK)
            rc = kw_pg_fail(c, r, err, what);
        PQclear(r);
    }
    if (rc == 0 && len == -2)
        rc = kw_pg_fail(c, NULL, err, what);
    return rc;
}

/* The connection for a read: the writer inside our own transaction, else a reader (locked
 * until kw_pg_reader_end), connected. NULL with *err set when the database is unreachable. */
pg_conn_t *kw_pg_reader(kw_pg_t *s, kw_err_t *err)
{
    pg_conn_t *mine = kw_pg_tx_conn(s);
    if (mine)
        return mine;
    /* the first free one in order: a further connection is opened only when the ones
     * before it are busy (each connect costs a backend start) */
    pg_conn_t *c = NULL;
    for (unsigned i = 0; i < PG_READERS && c == NULL; i++) {
        pg_conn_t *t = &s->r[i];
        if (pthread_mutex_trylock(&t->mu) == 0)
            c = t;
    }
    if (c == NULL) {
        c = &s->r[atomic_fetch_add(&s->rr, 1) % PG_READERS];
        pthread_mutex_lock(&c->mu);
    }
    /* An idle reader learns here, without a round trip, that its server went away (the
     * database restarted): the closed socket reads as EOF and the connection turns bad, so
     * kw_pg_connect opens a new one rather than the next statement failing on it. */
    if (c->db && PQstatus(c->db) == CONNECTION_OK) {
        /* input on an idle reader is the server's goodbye (FATAL, then EOF) or a notice */
        struct pollfd pf = {.fd = PQsocket(c->db), .events = POLLIN};
        for (int i = 0; i < 4 && PQstatus(c->db) == CONNECTION_OK && poll(&pf, 1, 0) > 0; i++)
            if (!PQconsumeInput(c->db))
                break;
    }
    if (kw_pg_connect(s, c, err) != 0) {
        pthread_mutex_unlock(&c->mu);
        return NULL;
    }
    c->failed = c->has_deferr = 0;
    return c;
}

void kw_pg_reader_end(kw_pg_t *s, pg_conn_t *c)
{
    if (c && !kw_pg_is_writer(s, c))
        pthread_mutex_unlock(&c->mu);
}

int kw_pg_writer(kw_pg_t *s, pg_conn_t **out, kw_err_t *err)
{
    if ((*out = kw_pg_tx_conn(s)) == NULL)
        return kw_err_set(err, KW_EINTERNAL, NULL, "store: write outside a transaction");
    return 0;
}

/* A read (or, with wr = 1, a write in the caller's transaction) of statement id. */
int kw_pg_run(kw_store_t *base, int wr, int id, const prm_t *p, PGresult **r, pg_conn_t **cout,
              kw_err_t *err, const char *what)
{
    kw_pg_t *s = PG(base);
    pg_conn_t *c = NULL;
    *r = NULL;
    if (wr) {
        int rc = kw_pg_writer(s, &c, err);
        if (rc)
            return rc;
    } else if ((c = kw_pg_reader(s, err)) == NULL) {
        return KW_ESTORE;
    }
    /* a row read inside a write transaction is read to be written back: lock it, so another
     * node's concurrent change is waited for and seen, never overwritten */
    if (kw_pg_is_writer(s, c) && kw_pg_stmt_lock[id])
        id = kw_pg_stmt_lock[id];
    int rc = kw_pg_x(c, id, p, r, err, what);
    /* A reader's connection found dead by the statement itself (lost after kw_pg_reader
     * looked): a read outside a transaction is safe to repeat, so reconnect and try once more
     * rather than answer 503 while the database is back. */
    if (rc == KW_ESTORE && !kw_pg_is_writer(s, c) && c->db && PQstatus(c->db) != CONNECTION_OK) {
        kw_err_clear(err);
        rc = kw_pg_connect(s, c, err);
        if (rc == 0) {
            c->failed = c->has_deferr = 0;
            rc = kw_pg_x(c, id, p, r, err, what);
        }
    }
    if (cout)
        *cout = c;
    else
        kw_pg_reader_end(s, c);
    return rc;
}

/* ---- the one write shape ------------------------------------------------------------- */

int kw_pg_write(kw_store_t *base, int id, const prm_t *p, int feed, int64_t *ret, size_t *changed,
                pg_conn_t **cout, kw_err_t *err, const char *what)
{
    pg_conn_t *c = NULL;
    PGresult *r = NULL;
    int rc = kw_pg_writer(PG(base), &c, err);
    *cout = c;
    if (rc)
        return rc;
    if (feed)
        c->wrote = 1;
    rc = kw_pg_w(c, id, p, &r, err, what);
    if (rc == 0 && ret && PQntuples(r) > 0)
        *ret = col_i64(r, 0, 0);
    if (rc == 0 && changed)
        *changed = (size_t)strtoull(PQcmdTuples(r), NULL, 10);
    PQclear(r);
    return rc;
}

/* ---- table-driven reads: every "one row" and "list" query ------------------------------ */

int kw_pg_rows(kw_store_t *base, int wr, int id, const prm_t *p, const kw_pg_rowtype_t *t,
               void **out, size_t *n, kw_err_t *err, const char *what)
{
    PGresult *r;
    int rc = kw_pg_run(base, wr, id, p, &r, NULL, err, what);
    if (rc == 0) {
        int nt = PQntuples(r), i;
        char *a = nt ? calloc((size_t)nt, t->size) : NULL;
        for (i = 0; i < nt && a; i++)
            if (t->decode(r, i, a + (size_t)i * t->size))
                break;
        if (nt && (a == NULL || i < nt)) {
            for (int j = 0; a && t->clear && j < i; j++)
                t->clear(a + (size_t)j * t->size);
            free(a);
            rc = kw_err_set(err, KW_ENOMEM, NULL, NULL);
        } else {
            *out = a;
            *n = (size_t)nt;
        }
    }
    PQclear(r);
    return rc;
}

int kw_pg_one(kw_store_t *base, int id, const prm_t *p, const kw_pg_rowtype_t *t, void *out,
              const char *field, const char *missing, kw_err_t *err, const char *what)
{
    PGresult *r;
    int rc = kw_pg_run(base, 0, id, p, &r, NULL, err, what);
    if (rc == 0 && PQntuples(r) == 0)
        rc = kw_err_set(err, KW_ENOTFOUND, field, "%s", missing);
    else if (rc == 0 && t->decode(r, 0, out))
        rc = kw_err_set(err, KW_ENOMEM, NULL, NULL);
    PQclear(r);
    return rc;
}

/* ---- for the companion files (postgres_ext.c, postgres_watched.c; postgres_int.h) ---- */

struct pg_conn *kw_pg_rd_begin(kw_store_t *s, kw_err_t *err)
{
    return kw_pg_reader(PG(s), err);
}

void kw_pg_rd_end(kw_store_t *s, struct pg_conn *c)
{
    kw_pg_reader_end(PG(s), c);
}

/* The companions' tables have no feed trigger: no feed flush at commit for their writes. */
int kw_pg_wr(kw_store_t *s, struct pg_conn **c, kw_err_t *err)
{
    return kw_pg_writer(PG(s), c, err);
}

int kw_pg_in_tx(kw_store_t *s)
{
    return in_tx(PG(s));
}

const char *kw_pg_sqlstate(const struct pg_conn *c)
{
    return c->xstate;
}

int kw_pg_q(struct pg_conn *c, int write, const char *sql, int n, const char *const *v,
            const int *len, const int *fmt, PGresult **res, kw_err_t *err, const char *what)
{
    *res = NULL;
    int rc = unpiped(c, err, what);
    if (rc)
        return rc;
    int sp = write && !c->in_sp;
    rc = sp ? kw_pg_cmd(c, "SAVEPOINT kw_st", err, what) : sp_send(c, err);
    if (rc)
        return rc;
    PGresult *r = PQexecParams(c->db, sql, n, NULL, v, len, fmt, 0);
    ExecStatusType es = PQresultStatus(r);
    if (es != PGRES_TUPLES_OK && es != PGRES_COMMAND_OK) {
        rc = kw_pg_fail(c, r, err, what);
        PQclear(r);
        r = NULL;
    }
    if (sp) {
        kw_err_t e2 = {0};
        const char *end = rc == KW_ECONFLICT
                              ? "ROLLBACK TO SAVEPOINT kw_st; RELEASE SAVEPOINT kw_st"
                              : "RELEASE SAVEPOINT kw_st";
        if ((rc == 0 || rc == KW_ECONFLICT) && kw_pg_cmd(c, end, &e2, what)) {
            PQclear(r);
            return kw_err_set(err, KW_ESTORE, "store", "%s", e2.msg);
        }
    }
    *res = r;
    return rc;
}

/* ---- open, migrate, close ------------------------------------------------------------ */

/* Group commit's transactions (kw_store_defer_writes on: every write of a running node) take
 * the cluster's writer lock first, before any row lock: the batches of several nodes then
 * queue on it instead of locking rows in opposite orders (a policy row then the audit head
 * here, the head then that row there: a deadlock PostgreSQL breaks by failing a whole batch).
 * They queued on the audit head anyway (nearly every batch appends to it). A transaction
 * begun without the promise (tools, tests of the feed's order) does not take it. */
#define PG_WRITER_LOCK "SELECT pg_advisory_xact_lock(19287, 4)"

/* The feed flush, just before COMMIT: take the feed lock (held until the commit is visible)
 * and only then hand out feed seqs, by moving the rows the triggers noted. Two writers'
 * feed rows therefore become visible in seq order: whoever moves second waits for the
 * first to commit, and gets higher seqs. Readers that read "seq > last applied" can then
 * never skip a row that commits later with a lower seq. */
#define FEED_FLUSH                                                                                 \
    "SELECT pg_advisory_xact_lock(19287, 2);"                                                      \
    " NOTIFY " PG_FEED_CHANNEL ";" /* delivered at commit */                                       \
    " WITH d AS (DELETE FROM feed_pending RETURNING n, kind, id)"                                  \
    " INSERT INTO feed (kind, id) SELECT kind, id FROM d ORDER BY n RETURNING seq"

/* Apply pending migrations under a transaction-level advisory lock (the first node to start
 * does the work; the others wait, then find nothing to do) and ensure `default`. */
static int migrate(pg_conn_t *c, kw_err_t *err)
{
    PGresult *r = NULL;
    int64_t cur = 0;
    int rc = kw_pg_cmd(c,
                       "BEGIN; SELECT pg_advisory_xact_lock(19287, 1);"
                       " CREATE TABLE IF NOT EXISTS schema_version ("
                       " version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)",
                       err, "migration");
    if (rc)
        goto out;
    r = PQexec(c->db, "SELECT coalesce(max(version), 0) FROM schema_version");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        rc = kw_pg_fail(c, r, err, "migration");
        goto out;
    }
    cur = col_i64(r, 0, 0);
    PQclear(r);
    r = NULL;
    if (cur > PG_SCHEMA_VERSION) {
        rc = kw_err_set(err, KW_ESTORE, "store",
                        "store: schema version %lld is newer than this keyward (%d): upgrade"
                        " this node before starting it",
                        (long long)cur, PG_SCHEMA_VERSION);
        goto out;
    }
    for (size_t i = 0; i < kw_pg_nmigrations; i++) {
        char sql[128];
        if (kw_pg_migrations[i].version <= cur)
            continue;
        if ((rc = kw_pg_cmd(c, kw_pg_migrations[i].sql, err, "migration")) != 0)
            goto out;
        snprintf(sql, sizeof(sql),
                 "INSERT INTO schema_version (version, applied_at) VALUES (%d, %lld)",
                 kw_pg_migrations[i].version, (long long)kw_now());
        if ((rc = kw_pg_cmd(c, sql, err, "migration")) != 0)
            goto out;
    }
    r = PQexec(c->db, "SELECT count(*) FROM policies WHERE name = 'default'");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        rc = kw_pg_fail(c, r, err, "migration");
        goto out;
    }
    if (col_i64(r, 0, 0) == 0) {
        kw_policy_t p;
        kw_policy_defaults(&p, "default");
        p.created_at = p.updated_at = kw_now();
        if ((rc = kw_pg_policy_write(c, &p, 1, err)) != 0)
            goto out;
    }
    /* the default policy's feed row (and any a foreign writer left) into the feed */
    if ((rc = kw_pg_cmd(c, FEED_FLUSH, err, "migration")) != 0)
        goto out;
    rc = kw_pg_cmd(c, "COMMIT", err, "commit migration");
out:
    PQclear(r);
    if (rc && c->db)
        PQclear(PQexec(c->db, "ROLLBACK"));
    c->failed = c->has_deferr = 0;
    return rc;
}

static void conn_close(pg_conn_t *c)
{
    if (c->db)
        PQfinish(c->db);
    c->db = NULL;
}

void kw_pg_close(kw_store_t *base)
{
    kw_pg_t *s = PG(base);
    if (in_tx(s))
        kw_pg_rollback(base);
    for (int i = 0; i < PG_WRITERS; i++) {
        conn_close(&s->w[i]);
        pthread_mutex_destroy(&s->w[i].mu);
    }
    for (int i = 0; i < PG_READERS; i++) {
        conn_close(&s->r[i]);
        pthread_mutex_destroy(&s->r[i].mu);
    }
    conn_close(&s->listen);
    conn_close(&s->lead);
    pthread_mutex_destroy(&s->leadmu);
    pthread_mutex_destroy(&s->ownmu);
    if (s->url)
        kw_wipe(s->url, strlen(s->url)); /* may hold a password */
    free(s->url);
    free(s);
}

/* url: the whole postgresql:// or postgres:// URL (store.c passes it as is). */
int kw_pg_open(const char *url, kw_store_t **out, kw_err_t *err)
{
    kw_pg_t *s = calloc(1, sizeof(*s));
    int rc;
    if (s == NULL)
        return kw_err_set(err, KW_ENOMEM, NULL, NULL);
    s->base.ops = &kw_store_postgres_ops;
    s->base.notify = &kw_pg_notify_ops;
    s->base.cluster = &kw_pg_cluster_ops;
    s->base.session = &kw_pg_session_ops;     /* pg2: postgres_ext.c */
    s->base.watched = &kw_pg_watched_ops;     /* pg2: postgres_watched.c */
    s->base.oauth = &kw_pg_oauth_ops;         /* postgres_ext.c */
    s->base.retention = &kw_pg_retention_ops; /* postgres_ext.c */
    for (int i = 0; i < PG_WRITERS; i++) {
        pthread_mutex_init(&s->w[i].mu, NULL);
        atomic_init(&s->owner[i], 0);
    }
    pthread_mutex_init(&s->leadmu, NULL);
    pthread_mutex_init(&s->ownmu, NULL);
    for (int i = 0; i < PG_READERS; i++)
        pthread_mutex_init(&s->r[i].mu, NULL);
    atomic_init(&s->rr, 0);
    s->url = strdup(url);
    if (s->url == NULL) {
        rc = kw_err_set(err, KW_ENOMEM, NULL, NULL);
        goto out;
    }
    rc = kw_pg_connect(s, &s->w[0], err);
    if (rc == 0)
        rc = migrate(&s->w[0], err);
out:
    if (rc) {
        kw_pg_close(&s->base);
        return rc;
    }
    *out = &s->base;
    return 0;
}

const char *kw_pg_file(const kw_store_t *base)
{
    return NULL; /* no local file */
}

/* ---- transactions -------------------------------------------------------------------- */

int kw_pg_begin(kw_store_t *base, kw_err_t *err)
{
    kw_pg_t *s = PG(base);
    if (in_tx(s))
        return kw_err_set(err, KW_EINTERNAL, NULL, "store: transaction already open");
    int i, got = 0;
    for (i = 0; i < PG_WRITERS && !got; i++)
        got = pthread_mutex_trylock(&s->w[i].mu) == 0;
    if (got)
        i--;
    else
        pthread_mutex_lock(&s->w[i = (int)(kw_store_thread_id() % PG_WRITERS)].mu);
    pg_conn_t *c = &s->w[i];
    kw_err_t e2 = {0};
    drain(c, &e2, "begin"); /* never left open; if it were, its answers are not ours */
    c->mstate = c->pol_ok = 0;
    int rc = kw_pg_connect(s, c, err);
    if (rc == 0 && PQtransactionStatus(c->db) != PQTRANS_IDLE)
        PQclear(PQexec(c->db, "ROLLBACK"));
    c->failed = c->has_deferr = 0;
    if (rc == 0)
        rc = kw_pg_cmd(c,
                       s->defer ? "BEGIN ISOLATION LEVEL READ COMMITTED; " PG_WRITER_LOCK
                                : "BEGIN ISOLATION LEVEL READ COMMITTED",
                       err, "begin");
    if (rc) {
        pthread_mutex_unlock(&c->mu);
        return rc;
    }
    c->failed = c->has_deferr = 0;
    c->in_sp = 0;
    c->sp_pending = c->sp_done = c->sp_ok = 0;
    c->wrote = 0;
    atomic_store_explicit(&s->owner[i], kw_store_thread_id(), memory_order_relaxed);
    return 0;
}

static void tx_release(kw_pg_t *s, pg_conn_t *c)
{
    atomic_store_explicit(&s->owner[(size_t)(c - s->w)], 0, memory_order_relaxed);
    pthread_mutex_unlock(&c->mu);
}

/* FEED_FLUSH and COMMIT in one round trip (one simple query: a failing statement skips the
 * rest, COMMIT included); [*lo, *hi] = the feed seqs it handed out (0, 0 when none). */
static int flush_commit(pg_conn_t *c, int64_t *lo, int64_t *hi, kw_err_t *err)
{
    int rc = 0, i = 0, committed = 0;
    PGresult *r;
    if (!PQsendQuery(c->db, FEED_FLUSH "; COMMIT"))
        return kw_pg_fail(c, NULL, err, "commit");
    for (; (r = PQgetResult(c->db)) != NULL; i++) {
        ExecStatusType es = PQresultStatus(r);
        if (es != PGRES_TUPLES_OK && es != PGRES_COMMAND_OK) {
            if (rc == 0)
                rc = kw_pg_fail(c, r, err, "commit");
        } else if (i == 2) { /* the feed rows moved: their seqs */
            for (int j = 0; j < PQntuples(r); j++) {
                int64_t v = col_i64(r, j, 0);
                if (*lo == 0 || v < *lo)
                    *lo = v;
                if (v > *hi)
                    *hi = v;
            }
        } else if (i == 3) {
            committed = strcmp(PQcmdStatus(r), "COMMIT") == 0;
        }
        PQclear(r);
    }
    if (rc == 0 && !committed)
        rc = kw_pg_fail(c, NULL, err, "commit");
    return rc;
}

int kw_pg_commit(kw_store_t *base, kw_err_t *err)
{
    kw_pg_t *s = PG(base);
    pg_conn_t *c = kw_pg_tx_conn(s);
    int rc;
    if (c == NULL)
        return kw_err_set(err, KW_EINTERNAL, NULL, "store: commit without a transaction");
    kw_err_t e2 = {0};
    if (drain(c, &e2, "commit") != 0 && !c->failed) { /* a deferred write failed */
        c->failed = 1;
        snprintf(c->failmsg, sizeof(c->failmsg), "%.127s", e2.msg);
    }
    c->mstate = c->pol_ok = 0;
    if (c->db == NULL) {
        rc = kw_err_set(err, KW_ESTORE, "store", "store: commit failed: %s", c->failmsg);
    } else if (c->failed) {
        rc = kw_err_set(err, KW_ESTORE, "store",
                        "store: commit refused after an earlier failure (%s); rolled back",
                        c->failmsg);
        PQclear(PQexec(c->db, "ROLLBACK"));
    } else {
        int64_t lo = 0, hi = 0;
        rc = c->wrote ? flush_commit(c, &lo, &hi, err) : kw_pg_cmd(c, "COMMIT", err, "commit");
        if (rc == 0 && hi) {
            pthread_mutex_lock(&s->ownmu);
            s->own_lo[s->own_next % PG_OWN_RANGES] = lo;
            s->own_hi[s->own_next % PG_OWN_RANGES] = hi;
            s->own_next++;
            pthread_mutex_unlock(&s->ownmu);
        }
        if (rc && c->db && PQtransactionStatus(c->db) != PQTRANS_IDLE)
            PQclear(PQexec(c->db, "ROLLBACK"));
        if (rc)
            rc = KW_ESTORE;
    }
    tx_release(s, c);
    return rc;
}

void kw_pg_rollback(kw_store_t *base)
{
    kw_pg_t *s = PG(base);
    pg_conn_t *c = kw_pg_tx_conn(s);
    if (c == NULL)
        return;
    kw_err_t e2 = {0};
    drain(c, &e2, "rollback");
    c->mstate = c->pol_ok = 0;
    if (c->db && PQstatus(c->db) == CONNECTION_OK && PQtransactionStatus(c->db) != PQTRANS_IDLE)
        PQclear(PQexec(c->db, "ROLLBACK"));
    tx_release(s, c);
}

static int tx_lost(pg_conn_t *c)
{
    return c->db == NULL || PQstatus(c->db) != CONNECTION_OK ||
           PQtransactionStatus(c->db) == PQTRANS_IDLE;
}

int kw_pg_savepoint(kw_store_t *base, kw_err_t *err)
{
    kw_pg_t *s = PG(base);
    pg_conn_t *c = kw_pg_tx_conn(s);
    if (c == NULL)
        return kw_err_set(err, KW_EINTERNAL, NULL, "store: savepoint outside a transaction");
    if (c->in_sp)
        return kw_err_set(err, KW_EINTERNAL, NULL, "store: savepoint already open");
    if (c->failed || tx_lost(c))
        return kw_err_set(err, KW_ESTORE, "store",
                          "store: transaction lost after an earlier failure");
    c->in_sp = 1;
    c->sp_pending = 1; /* sent with the op's first statement */
    c->sp_ok = 0;
    return 0;
}

/* Same contract as sq_savepoint_end: keep = 0 undoes the op (also after a backend error in
 * it: ROLLBACK TO clears PostgreSQL's aborted state); a lost connection loses it all. The
 * savepoint is sent with the op's first statement and released with the next op's SAVEPOINT
 * or by COMMIT: two round trips fewer per op. */
int kw_pg_savepoint_end(kw_store_t *base, int keep, kw_err_t *err)
{
    kw_pg_t *s = PG(base);
    pg_conn_t *c = kw_pg_tx_conn(s);
    if (c == NULL || !c->in_sp)
        return kw_err_set(err, KW_EINTERNAL, NULL, "store: no savepoint open");
    kw_err_t e2 = {0};
    /* group commit has read the op's deferred writes (kw_pg_sync); a caller that has not
     * cannot keep what failed */
    if (drain(c, &e2, "savepoint") != 0 && keep && !c->failed) {
        c->failed = 1;
        snprintf(c->failmsg, sizeof(c->failmsg), "%.127s", e2.msg);
    }
    if (!keep)
        c->mstate = c->pol_ok = 0; /* what the op read or wrote may be undone */
    int sent = !c->sp_pending;
    c->in_sp = 0;
    c->sp_pending = 0;
    if (tx_lost(c))
        return kw_err_set(err, KW_ESTORE, "store", "store: transaction aborted (%s)",
                          c->failed ? c->failmsg : "connection lost");
    if (keep && c->failed)
        return kw_err_set(err, KW_ESTORE, "store", "store: change kept after a failure (%s)",
                          c->failmsg);
    if (!sent)
        return 0;  /* the op ran no statement: nothing to undo, nothing to release */
    if (!c->sp_ok) /* never rolls back to the previous op's savepoint instead */
        return kw_err_set(err, KW_ESTORE, "store", "store: savepoint lost (%s)", c->failmsg);
    if (!keep) {
        c->failed = c->has_deferr = 0;
        if (kw_pg_cmd(c, "ROLLBACK TO SAVEPOINT op", err, "rollback to savepoint") != 0)
            return KW_ESTORE;
    }
    c->sp_done = 1;
    return 0;
}

int kw_store_postgres_exec(kw_store_t *base, const char *sql, kw_err_t *err)
{
    if (base == NULL || base->ops != &kw_store_postgres_ops || sql == NULL)
        return kw_err_set(err, KW_EINVAL, NULL, "store: not a PostgreSQL store");
    pg_conn_t *c = NULL;
    int rc = kw_pg_writer(PG(base), &c, err);
    return rc ? rc : kw_pg_cmd(c, sql, err, "exec");
}

#endif /* KW_HAVE_LIBPQ */
