/* postgres_int.h - internal to the PostgreSQL backend (postgres*.c): the store and its
 * connections, the statement table, parameter and column helpers, and the plumbing each
 * part of the backend shares. Not for use outside src/store/postgres*.c. */
#ifndef KW_POSTGRES_INT_H
#define KW_POSTGRES_INT_H

#include "store_args.h"
#include "store_cols.h"
#include "store_cluster.h"
#include "store_codec.h"
#include "store_impl.h"
#include "store_notify.h"

#ifdef KW_HAVE_LIBPQ

#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Same roles as the kw_sqlite_* ones in sqlite_int.h. kw_pg_q runs sql with n parameters (len/fmt
 * may be NULL: all text) on c; a write (write = 1) runs in a savepoint of its own so a constraint
 * failure (KW_ECONFLICT) fails only that statement; *res (PQclear it) on success. */
struct pg_conn;
struct pg_result;
struct pg_conn *kw_pg_rd_begin(kw_store_t *s, kw_err_t *err);
void kw_pg_rd_end(kw_store_t *s, struct pg_conn *c);
int kw_pg_wr(kw_store_t *s, struct pg_conn **c, kw_err_t *err);
int kw_pg_q(struct pg_conn *c, int write, const char *sql, int n, const char *const *v,
            const int *len, const int *fmt, struct pg_result **res, kw_err_t *err,
            const char *what);
extern const char kw_pg_oauth_migration[];                  /* postgres_ext.c */
extern const char kw_pg_session_migration[];                /* postgres_ext.c */
extern const struct kw_store_session_ops kw_pg_session_ops; /* postgres_ext.c */
extern const struct kw_store_oauth_ops kw_pg_oauth_ops;     /* postgres_ext.c */
extern const kw_store_retention_ops_t kw_pg_retention_ops;  /* postgres_ext.c */
/* 1 when the calling thread holds s's transaction */
int kw_pg_in_tx(kw_store_t *s);
/* SQLSTATE of c's last failed statement ("" when none) */
const char *kw_pg_sqlstate(const struct pg_conn *c);
extern const char kw_pg_watched_migration[]; /* postgres_watched.c */
extern const struct kw_store_watched_ops kw_pg_watched_ops;

#define PG_READERS 4
/* Write transactions run concurrently on this many connections (lifecycle batches, the
 * outbox, usage write-back, the scheduler), each pinned to its thread until commit. */
#define PG_WRITERS 3
#define PG_BACKOFF_MIN_MS 100  /* reconnect: first retry after this... */
#define PG_BACKOFF_MAX_MS 2000 /* ...doubling up to this */
#define PG_FEED_CHANNEL "keyward_feed"
#define PG_OWN_RANGES 1024 /* own feed ranges remembered */
/* Advisory locks (class, id): 19287 = keyward's own (1 migrations, 2 feed, 3 scheduler
 * leader); 19288 = a meta key (hashtext); 19289 = a named cluster lock (hashtext). */

/* ---- statements ---------------------------------------------------------------------- */

enum {
    ST_META_GET,
    ST_META_LOCK,
    ST_META_SET,
    ST_POLICY_GET,
    ST_POLICY_INSERT,
    ST_POLICY_UPDATE,
    ST_POLICY_LIST,
    ST_CRED_INSERT,
    ST_CRED_UPDATE,
    ST_CRED_GET,
    ST_CRED_GET_ANY,
    ST_CRED_GET_LOCK,
    ST_CRED_LIST,
    ST_KEY_INSERT,
    ST_KEY_UPDATE,
    ST_KEY_GET,
    ST_KEY_LIST_CRED,
    ST_KEY_GET_LOCK,
    ST_KEY_LIST_CRED_LOCK,
    ST_KEY_EXPIRING,
    ST_USAGE,
    ST_EVENT_INSERT,
    ST_AUDIT_INSERT,
    ST_AUDIT_HEAD,
    ST_AUDIT_LIST,
    ST_COUNTS,
    ST_REN_INSERT,
    ST_REN_UPDATE,
    ST_REN_GET,
    ST_REN_LIST,
    ST_REN_STALE,
    /* notify (store_notify.h) */
    KW_NOTIFY_STMTS(KW_STMT_ENUM) N_DLV_CLAIM, /* PostgreSQL's own */
    N_MAIL_TAKE,
    /* cluster */
    F_BOUNDS,
    F_READ,
    F_PRUNE,
    ST__COUNT
};

/* ---- connections --------------------------------------------------------------------- */

/* What was sent in a connection's open pipeline and is read at its sync, in order: the op's
 * savepoint commands, statement preparations, deferred writes (kw_pg_write_later: what for
 * the message, *ret for RETURNING, map for a constraint failure) and the statements whose
 * answer the caller waits for. */
enum { PE_SP, PE_PREP, PE_DEF, PE_STMT };
struct pg_conn;
typedef struct pg_pend {
    unsigned char kind;
    int id;
    const char *what;
    int64_t *ret;
    int (*map)(struct pg_conn *c, kw_err_t *err);
} pg_pend_t;
#define PG_PEND_MAX 24

typedef struct pg_conn {
    PGconn *db;
    pthread_mutex_t mu;            /* readers: held while in use */
    unsigned char prep[ST__COUNT]; /* prepared on this connection (reset on reconnect) */
    int failed;                    /* a backend error since begin: commit must not */
    int in_sp;                     /* inside kw_store_savepoint's savepoint */
    int sp_pending;                /* that savepoint not sent yet (with the op's first statement) */
    int sp_ok;                     /* it was sent and succeeded */
    int sp_done;                   /* that savepoint ended, not yet released (next SAVEPOINT) */
    int wrote;                     /* the transaction wrote (feed flush at commit) */
    char xstate[6];                /* SQLSTATE of the last failed statement */
    char xcons[64];                /* its constraint name */
    char failmsg[128];
    kw_err_t deferr; /* a deferred write's mapped failure in this op (has_deferr): kw_pg_sync */
    int has_deferr;
    int piped;    /* in pipeline mode, the answers to pend[0..npend) not read yet */
    int sendfail; /* a send into that pipeline failed */
    int npend;
    pg_pend_t pend[PG_PEND_MAX];
    int mstate;          /* meta key mkey: 1 = read under its lock in this transaction, 2 = and */
    char mkey[48];       /* since written by it (row locked): mval is its value, no round trip */
    char mval[160];      /* needed to read it again; reset at a rollback to savepoint */
    int pol_ok;          /* pol: a policy read in this transaction by group commit (defer), */
    kw_policy_t pol;     /* not written since: read again from here */
    int64_t next_try_ms; /* reconnect backoff */
    int backoff_ms;
} pg_conn_t;

typedef struct kw_pg {
    struct kw_store base; /* first */
    char *url;
    pg_conn_t w[PG_WRITERS]; /* writers: each owned by one thread's transaction */
    pg_conn_t r[PG_READERS]; /* readers, each under its own mutex */
    pg_conn_t listen;        /* LISTEN connection (feed_wait's thread) */
    pg_conn_t lead;          /* leader lock + cluster locks (one thread at a time) */
    pthread_mutex_t leadmu;
    _Atomic uint64_t owner[PG_WRITERS]; /* thread id holding w[i]'s transaction, 0 = none */
    _Atomic unsigned rr;
    int listening, leader;
    int defer; /* kw_store_defer_writes: group commit syncs each op (kw_pg_sync) */
    /* feed seqs of this store's own recent commits (ranges, a ring): the follower skips
     * them, the index already has what they wrote (store_cluster.h feed_own) */
    pthread_mutex_t ownmu;
    int64_t own_lo[PG_OWN_RANGES], own_hi[PG_OWN_RANGES];
    unsigned own_next;
} kw_pg_t;

#define PG(base) ((kw_pg_t *)(void *)(base))

/* Parameters: text, or binary for BYTEA; NULL value = SQL NULL. */
#define KW_PG_MAX_PARAMS 40 /* the most a statement binds (a watched credential's row) */
typedef struct prm {
    int n;
    const char *v[KW_PG_MAX_PARAMS];
    int len[KW_PG_MAX_PARAMS], fmt[KW_PG_MAX_PARAMS];
    char buf[KW_PG_MAX_PARAMS][24];
} prm_t;

static inline void p_text(prm_t *p, const char *v)
{
    p->v[p->n] = v;
    p->len[p->n] = 0;
    p->fmt[p->n] = 0;
    p->n++;
}

static inline void p_int(prm_t *p, int64_t v)
{
    snprintf(p->buf[p->n], sizeof(p->buf[0]), "%lld", (long long)v);
    p_text(p, p->buf[p->n]);
}

static inline void p_time(prm_t *p, int64_t v) /* 0 = NULL */
{
    if (v)
        p_int(p, v);
    else
        p_text(p, NULL);
}

static inline void p_opt(prm_t *p, const char *v) /* "" = NULL */
{
    p_text(p, v && *v ? v : NULL);
}

static inline void p_bytes(prm_t *p, const void *b, int n)
{
    p->v[p->n] = b;
    p->len[p->n] = n;
    p->fmt[p->n] = 1;
    p->n++;
}

static inline int64_t lim64(size_t n)
{
    return n > (size_t)INT64_MAX ? INT64_MAX : (int64_t)n;
}

/* A column as text, NULL for SQL NULL: a PGresult cell, or a field of a COPY line; the
 * decoders below read either. */
static inline const char *col_v(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col);
}

/* An integer column's text (PostgreSQL writes [-]digits: no strtoll, which the start-up's
 * load called a dozen million times); NULL reads 0. */
static inline int64_t v_i64(const char *v)
{
    if (v == NULL)
        return 0;
    int neg = *v == '-';
    uint64_t x = 0;
    for (v += neg; (unsigned)(*v - '0') < 10; v++)
        x = x * 10 + (uint64_t)(*v - '0');
    return (int64_t)(neg ? 0 - x : x);
}

static inline void v_cpy(const char *v, char *buf, size_t n)
{
    size_t len = v ? strlen(v) : 0;
    if (len >= n)
        len = n - 1;
    memcpy(buf, v ? v : "", len);
    buf[len] = '\0';
}

static inline int v_dup(const char *v, char **out)
{
    *out = v ? strdup(v) : NULL;
    return v && *out == NULL ? KW_ENOMEM : 0;
}

static inline int64_t col_i64(const PGresult *r, int row, int col)
{
    return v_i64(col_v(r, row, col));
}

static inline void col_cpy(const PGresult *r, int row, int col, char *buf, size_t n)
{
    v_cpy(col_v(r, row, col), buf, n);
}

static inline int col_dup(const PGresult *r, int row, int col, char **out)
{
    return v_dup(col_v(r, row, col), out);
}

/* Row i of r as a store_codec.h row source: kw_pg_row_src(&x, r, i), then pass &x.src to a
 * kw_row_* decoder (postgres.c). */
typedef struct kw_pg_row {
    kw_row_src_t src;
    const PGresult *r;
    int row;
} kw_pg_row_t;
void kw_pg_row_src(kw_pg_row_t *x, const PGresult *r, int row);

/* ---- schema and statements (postgres_schema.c) ---------------------------------------- */

typedef struct kw_pg_migration {
    int version;
    const char *sql;
} kw_pg_migration_t;

#define PG_SCHEMA_VERSION 8
extern const kw_pg_migration_t kw_pg_migrations[];
extern const size_t kw_pg_nmigrations;
extern const char *const kw_pg_stmt_sql[ST__COUNT];
/* A read's twin that locks its rows (FOR UPDATE), used inside a write transaction; 0 = none. */
extern const unsigned char kw_pg_stmt_lock[ST__COUNT];

/* ---- connections, statements, transactions (postgres.c) ------------------------------- */

int kw_pg_connect(kw_pg_t *s, pg_conn_t *c, kw_err_t *err);
int kw_pg_fail(pg_conn_t *c, PGresult *r, kw_err_t *err, const char *what);
int kw_pg_x(pg_conn_t *c, int id, const prm_t *p, PGresult **res, kw_err_t *err, const char *what);
/* Statements id1 then id2 (same parameters) in one round trip (libpq pipeline mode); *res =
 * id2's result. Each still runs with its own snapshot, so id2 sees what id1 waited for. */
int kw_pg_x2(pg_conn_t *c, int id1, int id2, const prm_t *p, PGresult **res, kw_err_t *err,
             const char *what);
int kw_pg_cmd(pg_conn_t *c, const char *sql, kw_err_t *err, const char *what);
int kw_pg_w(pg_conn_t *c, int id, const prm_t *p, PGresult **res, kw_err_t *err, const char *what);
int kw_pg_run(kw_store_t *base, int wr, int id, const prm_t *p, PGresult **r, pg_conn_t **cout,
              kw_err_t *err, const char *what);
/* A write of statement id in the caller's transaction (a constraint failure fails only it,
 * KW_ECONFLICT; *cout then tells SQLSTATE and constraint). feed = 1: it changes what the
 * feed carries (flush at commit). *ret = the first column returned (RETURNING), *changed =
 * the rows it changed; either may be NULL. */
int kw_pg_write(kw_store_t *base, int id, const prm_t *p, int feed, int64_t *ret, size_t *changed,
                pg_conn_t **cout, kw_err_t *err, const char *what);
/* An insert that cannot fail but by a constraint or a lost connection, as kw_pg_write; but
 * inside a group-commit op of a store that defers (kw_store_defer_writes) it is only sent,
 * in the op's libpq pipeline, and its answer read with the op's next round trip (a read, or
 * kw_pg_sync at the op's end): *ret must stay valid until then; map (NULL: none) turns its
 * constraint failure into the record's own error, reported by that read or that sync. */
int kw_pg_write_later(kw_store_t *base, int id, const prm_t *p, int feed, int64_t *ret,
                      int (*map)(pg_conn_t *c, kw_err_t *err), kw_err_t *err, const char *what);
/* 1 when a write on c (the caller's transaction) is deferred now; kw_pg_send then sends one */
int kw_pg_deferring(kw_store_t *base, const pg_conn_t *c);
int kw_pg_send(pg_conn_t *c, int id, const prm_t *p, int64_t *ret,
               int (*map)(pg_conn_t *c, kw_err_t *err), kw_err_t *err, const char *what);
int kw_pg_defer(kw_store_t *base, int on);
int kw_pg_sync(kw_store_t *base, kw_err_t *err);
/* How to decode one result row (0 or KW_ENOMEM, leaving nothing allocated on failure) into
 * an element of size bytes, and how to clear a decoded one (NULL: nothing to free). */
typedef struct kw_pg_rowtype {
    size_t size;
    int (*decode)(const PGresult *r, int i, void *out);
    void (*clear)(void *elem);
} kw_pg_rowtype_t;
/* Every row of statement id (a read; with wr = 1 in the caller's transaction) decoded into
 * a calloc'd array (*out NULL when none). */
int kw_pg_rows(kw_store_t *base, int wr, int id, const prm_t *p, const kw_pg_rowtype_t *t,
               void **out, size_t *n, kw_err_t *err, const char *what);
/* The first row of read id decoded into *out; KW_ENOTFOUND (field, missing) when none. */
int kw_pg_one(kw_store_t *base, int id, const prm_t *p, const kw_pg_rowtype_t *t, void *out,
              const char *field, const char *missing, kw_err_t *err, const char *what);

/* ---- the argument-list forms (store_args.h's KW_SQ_ARGS, the list SQLite binds) ---------- */

/* The list a (n of them) as libpq parameters into *p: text as is, ints and times formatted
 * into p's buffers, blobs binary; NULL / a 0 time / "" for OTEXT / SKIP = SQL NULL. At most
 * KW_PG_MAX_PARAMS are taken (a longer list fails as a parameter count the server refuses). */
static inline void p_args(prm_t *p, const kw_sql_arg_t *a, int n)
{
    p->n = 0;
    for (int i = 0; i < n && i < KW_PG_MAX_PARAMS; i++) {
        if (a[i].type == KW_SQA_INT_)
            p_int(p, a[i].i);
        else if (a[i].type == KW_SQA_BLOB_)
            p_bytes(p, a[i].p, a[i].len);
        else
            p_text(p, a[i].type == KW_SQA_TEXT_ ? a[i].p : NULL);
    }
}

/* kw_pg_run, kw_pg_write, kw_pg_rows, kw_pg_one and kw_pg_q with the parameters as a list:
 * kw_pg_rows_args(s, 0, ST_X, KW_SQ_ARGS(KW_SQA_TEXT(id)), &ROW, out, n, err, "x"). */
static inline int kw_pg_run_args(kw_store_t *base, int wr, int id, const kw_sql_arg_t *a, int n,
                                 PGresult **r, kw_err_t *err, const char *what)
{
    prm_t p;
    p_args(&p, a, n);
    return kw_pg_run(base, wr, id, &p, r, NULL, err, what);
}

static inline int kw_pg_write_args(kw_store_t *base, int id, const kw_sql_arg_t *a, int n, int feed,
                                   int64_t *ret, size_t *changed, pg_conn_t **cout, kw_err_t *err,
                                   const char *what)
{
    prm_t p;
    p_args(&p, a, n);
    return kw_pg_write(base, id, &p, feed, ret, changed, cout, err, what);
}

static inline int kw_pg_rows_args(kw_store_t *base, int wr, int id, const kw_sql_arg_t *a, int n,
                                  const kw_pg_rowtype_t *t, void **out, size_t *cnt, kw_err_t *err,
                                  const char *what)
{
    prm_t p;
    p_args(&p, a, n);
    return kw_pg_rows(base, wr, id, &p, t, out, cnt, err, what);
}

static inline int kw_pg_one_args(kw_store_t *base, int id, const kw_sql_arg_t *a, int n,
                                 const kw_pg_rowtype_t *t, void *out, const char *field,
                                 const char *missing, kw_err_t *err, const char *what)
{
    prm_t p;
    p_args(&p, a, n);
    return kw_pg_one(base, id, &p, t, out, field, missing, err, what);
}

/* SQL not in the statement table (the companion files'): write = 1 in a savepoint. */
static inline int kw_pg_q_args(struct pg_conn *c, int write, const char *sql, const kw_sql_arg_t *a,
                               int n, PGresult **res, kw_err_t *err, const char *what)
{
    prm_t p;
    p_args(&p, a, n);
    return kw_pg_q(c, write, sql, p.n, p.v, p.len, p.fmt, res, err, what);
}

/* SQL not in the statement table, read on a reader (the caller's writer inside its
 * transaction, to see its own writes): *res (PQclear it; NULL on failure). */
static inline int kw_pg_read_args(kw_store_t *s, const char *sql, const kw_sql_arg_t *a, int n,
                                  PGresult **res, kw_err_t *err, const char *what)
{
    struct pg_conn *c = kw_pg_rd_begin(s, err);
    *res = NULL;
    if (c == NULL)
        return KW_ESTORE;
    int rc = kw_pg_q_args(c, 0, sql, a, n, res, err, what);
    kw_pg_rd_end(s, c);
    return rc;
}

/* SQL not in the statement table, written in the caller's transaction (no feed flush; a
 * constraint failure fails only it, KW_ECONFLICT, kw_pg_sqlstate(*cout) tells which). Either
 * of *changed (the rows it changed) and *ret (the first column returned) may be NULL, and so
 * may cout. */
static inline int kw_pg_exec_args(kw_store_t *s, const char *sql, const kw_sql_arg_t *a, int n,
                                  int64_t *changed, int64_t *ret, struct pg_conn **cout,
                                  kw_err_t *err, const char *what)
{
    struct pg_conn *c = NULL;
    PGresult *r = NULL;
    int rc = kw_pg_wr(s, &c, err);
    if (cout)
        *cout = c;
    if (rc)
        return rc;
    rc = kw_pg_q_args(c, 1, sql, a, n, &r, err, what);
    if (rc == 0 && changed)
        *changed = strtoll(PQcmdTuples(r), NULL, 10);
    if (rc == 0 && ret && PQntuples(r) > 0)
        *ret = col_i64(r, 0, 0);
    PQclear(r);
    return rc;
}

/* BYTEA in text form ("\x" + hex) into out (at most max bytes): its length, -1 for NULL. */
long kw_pg_bytes(const char *v, uint8_t *out, size_t max);
/* COPY (query) TO STDOUT on c, text format: each line split into its ncols columns
 * (unescaped in place; NULL for \N) and handed to row; the first failure is returned (the
 * rest of the stream is still read off the connection). */
int kw_pg_copy(pg_conn_t *c, const char *sql, int ncols, int (*row)(void *, const char *const *),
               void *ud, kw_err_t *err, const char *what);
pg_conn_t *kw_pg_tx_conn(kw_pg_t *s);
int kw_pg_is_writer(kw_pg_t *s, const pg_conn_t *c);
pg_conn_t *kw_pg_reader(kw_pg_t *s, kw_err_t *err);
void kw_pg_reader_end(kw_pg_t *s, pg_conn_t *c);
int kw_pg_writer(kw_pg_t *s, pg_conn_t **out, kw_err_t *err);
int kw_pg_open(const char *url, kw_store_t **out, kw_err_t *err);
void kw_pg_close(kw_store_t *base);
const char *kw_pg_file(const kw_store_t *base);
int kw_pg_begin(kw_store_t *base, kw_err_t *err);
int kw_pg_commit(kw_store_t *base, kw_err_t *err);
void kw_pg_rollback(kw_store_t *base);
int kw_pg_savepoint(kw_store_t *base, kw_err_t *err);
int kw_pg_savepoint_end(kw_store_t *base, int keep, kw_err_t *err);

/* ---- records (postgres_records.c) ----------------------------------------------------- */

int kw_pg_policy_write(pg_conn_t *c, const kw_policy_t *p, int create, kw_err_t *err);
int kw_pg_cred_get_any(kw_store_t *base, const char *id, kw_cred_t *out, kw_err_t *err);
int kw_pg_row_key(const PGresult *r, int i, void *out); /* a kw_keyrec_t; always 0 */

extern const kw_store_notify_ops_t kw_pg_notify_ops;   /* postgres_notify.c */
extern const kw_store_cluster_ops_t kw_pg_cluster_ops; /* postgres_cluster.c */

#endif /* KW_HAVE_LIBPQ */
#endif /* KW_POSTGRES_INT_H */
