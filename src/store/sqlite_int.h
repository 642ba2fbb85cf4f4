/* sqlite_int.h - what the SQLite backend's files (sqlite*.c) share; nothing else includes
 * it. The store struct and its two connections, the one statement cache (per connection),
 * the prepare/bind/step plumbing, and the table-driven "one row" / "list" helpers that
 * every read goes through. Map of the files: docs/internals/store.md. */
#ifndef KW_SQLITE_INT_H
#define KW_SQLITE_INT_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "store_args.h"
#include "store_codec.h"
#include "store_cols.h"
#include "store_impl.h"

/* ---- the store and its connections ---- */

/* Cached statements of all the backend's files together (kw_sqlite_prep hands out slots). */
#define KW_SQLITE_STMT_MAX 128

typedef struct kw_sqlite_conn {
    sqlite3 *db;
    sqlite3_stmt *st[KW_SQLITE_STMT_MAX]; /* prepared on first use, reset after each */
    int xrc;                              /* extended code of the last failed call */
    int failed;                           /* a backend error since begin: commit must not */
    int in_sp;                            /* inside the savepoint of kw_store_savepoint */
    char failmsg[96];                     /* its sqlite3_errmsg, for the commit error */
} kw_sqlite_conn_t;

typedef struct kw_sqlite {
    struct kw_store base; /* first: kw_store_t * <-> kw_sqlite_t * */
    char *path;
    kw_sqlite_conn_t w; /* writer: only the thread holding wmu uses it */
    kw_sqlite_conn_t r; /* reader: any thread, under rmu */
    pthread_mutex_t wmu, rmu;
    _Atomic uint64_t owner; /* thread id holding the write transaction, 0 = none */
    /* checkpointer (sqlite.c): its own connection and thread, woken by the WAL hook */
    sqlite3 *ckdb;
    pthread_t ckth;
    pthread_mutex_t ckmu;
    pthread_cond_t ckcv;
    int ck_started, ck_stop, ck_due;
    int ck_next; /* WAL pages at which to wake it next (writer only) */
} kw_sqlite_t;

#define KW_SQ(base) ((kw_sqlite_t *)(void *)(base))

/* 1 when the calling thread holds s's write transaction. */
int kw_sqlite_in_tx(kw_sqlite_t *s);
/* sqlite.c's begin / commit: the calling thread now holds it (mine = 1) or nobody does. */
void kw_sqlite_set_owner(kw_sqlite_t *s, int mine);
/* The connection a read must use: the writer inside the calling thread's own transaction
 * (to see its writes), else the reader, locked until kw_sqlite_rd_end. */
kw_sqlite_conn_t *kw_sqlite_rd_begin(kw_sqlite_t *s);
void kw_sqlite_rd_end(kw_sqlite_t *s, kw_sqlite_conn_t *c);
/* The writer, or KW_EINTERNAL outside the caller's transaction. */
int kw_sqlite_wr(kw_sqlite_t *s, kw_sqlite_conn_t **c, kw_err_t *err);
/* Map a failed SQLite call on c (rc: its result code) to KW_E*: constraint failures are
 * KW_ECONFLICT (c->xrc keeps the extended code for the caller to refine), anything else
 * marks the transaction failed so commit refuses it. Messages carry sqlite3_errmsg only. */
int kw_sqlite_fail(kw_sqlite_conn_t *c, int rc, kw_err_t *err, const char *what);
/* Finalize every cached statement and close the connection (NULL db allowed). */
void kw_sqlite_conn_close(kw_sqlite_conn_t *c);

/* ---- statements ---- */

/* A statement cached per connection. Declare it static (not const) in the file that owns
 * its SQL; the slot is handed out on first use. */
typedef struct kw_sqlite_stmt {
    const char *sql;
    _Atomic int slot; /* 0 = none yet, else index + 1 into kw_sqlite_conn_t.st */
} kw_sqlite_stmt_t;

/* Parameters: the typed list of store_args.h (KW_SQ_ARGS), bound in order, ?1 first. */

/* The cached statement q on c. */
int kw_sqlite_prep(kw_sqlite_conn_t *c, kw_sqlite_stmt_t *q, sqlite3_stmt **out, kw_err_t *err);
/* Return a cached statement to its idle state; NULL allowed. */
void kw_sqlite_done(sqlite3_stmt *st);
/* Bind args in order; a failure reports its own code (never several OR-ed together). */
int kw_sqlite_bind(kw_sqlite_conn_t *c, sqlite3_stmt *st, const kw_sql_arg_t *a, int n,
                   kw_err_t *err);
/* Step once: SQLITE_ROW or SQLITE_DONE, or a negative KW_E* with *err set. */
int kw_sqlite_step(kw_sqlite_conn_t *c, sqlite3_stmt *st, kw_err_t *err, const char *what);
/* Prepare, bind, step once and reset q on c: 0 or KW_E* (KW_ECONFLICT with c->xrc). */
int kw_sqlite_run(kw_sqlite_conn_t *c, kw_sqlite_stmt_t *q, const kw_sql_arg_t *a, int n,
                  kw_err_t *err, const char *what);
/* kw_sqlite_run on the writer (the caller's transaction). sqlite3_changes(s->w.db) and
 * sqlite3_last_insert_rowid(s->w.db) stay valid after it. */
int kw_sqlite_write(kw_sqlite_t *s, kw_sqlite_stmt_t *q, const kw_sql_arg_t *a, int n,
                    kw_err_t *err, const char *what);

/* ---- table-driven reads ---- */

/* Fill *out (a T) from the current row: 0, or KW_ENOMEM with nothing left to free. */
typedef int (*kw_sqlite_row_fn)(sqlite3_stmt *st, void *out);

/* How a row becomes a T, described once per T and shared by its reads (the twin of
 * postgres_int.h's kw_pg_rowtype_t): {sizeof(T), decoder, clear}. */
typedef struct kw_sqlite_rowtype {
    size_t size;              /* sizeof(T) */
    kw_sqlite_row_fn row;     /* decoder */
    void (*clear)(void *row); /* frees what row allocated; NULL = nothing */
} kw_sqlite_rowtype_t;

/* Rows of one int64_t (column 0) and rows of a key (kw_sqlite_row_key), sqlite_conn.c. */
extern const kw_sqlite_rowtype_t kw_sqlite_i64_rows;
extern const kw_sqlite_rowtype_t kw_sqlite_key_rows;

/* One read, described once: its statement, its row type and what "no row" is. A get
 * spells all five ({&stmt, "key lookup", &rows, nf_field, nf_msg}), a list the first three
 * by name. */
typedef struct kw_sqlite_query {
    kw_sqlite_stmt_t *stmt;
    const char *what; /* for error messages: "key lookup" */
    const kw_sqlite_rowtype_t *rows;
    const char *nf_field; /* get with no row: KW_ENOTFOUND, field nf_field, */
    const char *nf_msg;   /* message nf_msg */
} kw_sqlite_query_t;

/* One row into *out (a T), on the connection kw_sqlite_rd_begin gives. */
int kw_sqlite_get(kw_sqlite_t *s, const kw_sqlite_query_t *q, const kw_sql_arg_t *a, int n,
                  void *out, kw_err_t *err);
/* Every row, in order, into *out (a malloc'd T array, *n of them; free with q->clear). */
int kw_sqlite_list(kw_sqlite_t *s, const kw_sqlite_query_t *q, const kw_sql_arg_t *a, int n,
                   void *out, size_t *cnt, kw_err_t *err);
/* kw_sqlite_list of a query whose rows are int64_t, the first max of them copied into out
 * (*cnt of them). */
int kw_sqlite_list_i64(kw_sqlite_t *s, const kw_sqlite_query_t *q, const kw_sql_arg_t *a, int n,
                       int64_t *out, size_t max, size_t *cnt, kw_err_t *err);
/* The same on connection c (the writer for a read-then-update inside a transaction). */
int kw_sqlite_list_on(kw_sqlite_conn_t *c, const kw_sqlite_query_t *q, const kw_sql_arg_t *a, int n,
                      void *out, size_t *cnt, kw_err_t *err);
/* kw_sqlite_list for SQL built at run time from fixed pieces (q->stmt unused): prepared for
 * this call only. */
int kw_sqlite_list_sql(kw_sqlite_t *s, const kw_sqlite_query_t *q, const char *sql,
                       const kw_sql_arg_t *a, int n, void *out, size_t *cnt, kw_err_t *err);

/* ---- columns ---- */

/* Text column i into buf (cut to n - 1 bytes; NULL = ""). */
void kw_sqlite_col_cpy(sqlite3_stmt *st, int i, char *buf, size_t n);
/* malloc'd copy of text column i (*out = NULL for NULL): 0 or KW_ENOMEM. */
int kw_sqlite_col_dup(sqlite3_stmt *st, int i, char **out);
/* Blob column i into buf, at most n bytes; returns the column's length. */
size_t kw_sqlite_col_blob(sqlite3_stmt *st, int i, void *buf, size_t n);
/* Grow *a (elements of size el) to hold at least need: 0 or KW_ENOMEM. */
int kw_sqlite_grow(void **a, size_t *cap, size_t need, size_t el);
/* A size_t limit as an SQL integer. */
int64_t kw_sqlite_lim(size_t n);

/* ---- row codecs shared by several files ---- */

/* A statement's current row as a store_codec.h row source: kw_sqlite_row_src(&r, st), then
 * pass &r.src to a kw_row_* decoder. */
typedef struct kw_sqlite_row {
    kw_row_src_t src;
    sqlite3_stmt *st;
} kw_sqlite_row_t;
void kw_sqlite_row_src(kw_sqlite_row_t *r, sqlite3_stmt *st);

/* A KW_COLS_KEY row (columns 0-12) into *k (a kw_keyrec_t); never fails. */
int kw_sqlite_row_key(sqlite3_stmt *st, void *k);

/* ---- the ops of each file, for sqlite.c's tables ---- */

/* sqlite_keys.c: credentials, keys, usage, events, the startup load */
int kw_sqlite_cred_insert(kw_store_t *base, kw_cred_t *c, kw_err_t *err);
int kw_sqlite_cred_update(kw_store_t *base, const kw_cred_t *c, kw_err_t *err);
int kw_sqlite_cred_get(kw_store_t *base, const char *id, kw_cred_t *out, kw_err_t *err);
int kw_sqlite_cred_list(kw_store_t *base, const kw_cred_filter_t *f, kw_cred_t **out, size_t *n,
                        kw_err_t *err);
int kw_sqlite_key_insert(kw_store_t *base, kw_keyrec_t *k, kw_err_t *err);
int kw_sqlite_key_update(kw_store_t *base, const kw_keyrec_t *k, kw_err_t *err);
int kw_sqlite_key_get(kw_store_t *base, const char *id, kw_keyrec_t *out, kw_err_t *err);
int kw_sqlite_key_list_cred(kw_store_t *base, const char *cred_id, kw_keyrec_t **out, size_t *n,
                            kw_err_t *err);
int kw_sqlite_key_expiring(kw_store_t *base, int64_t now, int64_t until, int64_t after_exp,
                           int64_t after_seq, size_t limit, kw_keyrec_t **out, size_t *n,
                           kw_err_t *err);
int kw_sqlite_usage_apply(kw_store_t *base, const kw_usage_t *u, size_t n, kw_err_t *err);
int kw_sqlite_event_insert(kw_store_t *base, const char *id, const char *type, int64_t occurred_at,
                           const char *payload_json, kw_err_t *err);
int kw_sqlite_load_all(kw_store_t *base, int64_t retain_since, int slim, kw_store_load_cb cb,
                       void *ud, kw_err_t *err);
int kw_sqlite_secret_scan(kw_store_t *base, kw_store_load_cb cb, void *ud, kw_err_t *err);
int kw_sqlite_counts(kw_store_t *base, int64_t *creds, int64_t *keys, kw_err_t *err);

/* sqlite_audit.c */
int kw_sqlite_audit_insert(kw_store_t *base, const kw_audit_rec_t *r, kw_err_t *err);
int kw_sqlite_audit_head(kw_store_t *base, int64_t *seq, uint8_t *hash, kw_err_t *err);
int kw_sqlite_audit_list(kw_store_t *base, const kw_audit_filter_t *f, kw_audit_rec_t **out,
                         size_t *n, kw_err_t *err);
int kw_sqlite_audit_scan(kw_store_t *base, kw_store_audit_cb cb, void *ud, const char *meta_key,
                         char **meta_out, kw_err_t *err);

/* sqlite_renewals.c */
int kw_sqlite_renewal_insert(kw_store_t *base, const kw_renewal_t *r, kw_err_t *err);
int kw_sqlite_renewal_update(kw_store_t *base, const kw_renewal_t *r, kw_err_t *err);
int kw_sqlite_renewal_get(kw_store_t *base, const char *id, kw_renewal_t *out, kw_err_t *err);
int kw_sqlite_renewal_list(kw_store_t *base, const kw_renewal_filter_t *f, kw_renewal_t **out,
                           size_t *n, kw_err_t *err);
int kw_sqlite_renewal_stale(kw_store_t *base, int64_t now, size_t limit, kw_renewal_t **out,
                            size_t *n, kw_err_t *err);

/* sqlite.c: transactions (usage_apply runs one of its own) */
int kw_sqlite_begin(kw_store_t *base, kw_err_t *err);
int kw_sqlite_commit(kw_store_t *base, kw_err_t *err);
void kw_sqlite_rollback(kw_store_t *base); /* no-op outside the caller's transaction */
/* sqlite.c: the meta value of key read on c (audit_scan reads it in its snapshot); *out
 * malloc'd, NULL when there is none. */
int kw_sqlite_meta_on(kw_sqlite_conn_t *c, const char *key, char **out, kw_err_t *err);
/* sqlite.c: after a scan of most of the file through the reader's mmap (load_all), drop
 * the mapping so those pages do not stay resident; the next read maps it again lazily. */
void kw_sqlite_unmap(kw_sqlite_conn_t *c);

/* sqlite.c: a one-off read transaction on the reader (load_all, audit_scan): both scans
 * of one call see the same snapshot. begin returns 1 when it began one (end it), 0 when c
 * is the writer (already in the caller's transaction), or KW_E*. */
int kw_sqlite_read_begin(kw_sqlite_t *s, kw_sqlite_conn_t *c, kw_err_t *err);
void kw_sqlite_read_end(kw_sqlite_conn_t *c, int began);

/* The ops of the companion files, set by sqlite.c's open. */
extern const struct kw_store_notify_ops kw_sqlite_notify_ops;   /* sqlite_notify.c */
extern const struct kw_store_session_ops kw_sqlite_session_ops; /* sqlite_session.c */
extern const struct kw_store_watched_ops kw_sqlite_watched_ops; /* sqlite_watched.c */
extern const struct kw_store_oauth_ops kw_sqlite_oauth_ops;     /* sqlite_oauth.c */
extern const kw_store_retention_ops_t kw_sqlite_retention_ops;  /* sqlite_retention.c */

/* Schemas of the companion files, applied by sqlite.c's migrations[]. */
extern const char kw_sqlite_notify_migration[];  /* sqlite_notify.c */
extern const char kw_sqlite_oauth_migration[];   /* sqlite_oauth.c */
extern const char kw_sqlite_session_migration[]; /* sqlite_session.c */
extern const char kw_sqlite_watched_migration[]; /* sqlite_watched.c */

#endif
