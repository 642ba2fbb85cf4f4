/* postgres_notify.c - the PostgreSQL backend's store_notify.h: alerts, the outbox
 * (events, deliveries claimed across nodes), channels, mail quota and stats. */
#include "postgres_int.h"

#ifdef KW_HAVE_LIBPQ /* the whole file: built only when libpq is installed (Makefile) */

#include "../core/util.h"

/* ==== store_notify.h ===================================================================== */

/* parameter lists (store_args.h), as sqlite_notify.c writes them */
#define ARGS KW_SQ_ARGS
#define T KW_SQA_TEXT
#define I KW_SQA_INT

static int row_alert(const PGresult *r, int i, void *out)
{
    kw_alert_key_t *a = out;
    kw_pg_row_key(r, i, &a->key);
    memset(a->key.digest, 0, KW_DIGEST_LEN);
    col_cpy(r, i, 13, a->policy, sizeof(a->policy));
    col_cpy(r, i, 14, a->cred_name, sizeof(a->cred_name));
    a->next_alert_at = col_i64(r, i, 15);
    return 0;
}

static const kw_pg_rowtype_t ALERT_ROW = {sizeof(kw_alert_key_t), row_alert, NULL};

static int n_alert_due(kw_store_t *s, int64_t now, size_t limit, kw_alert_key_t **out, size_t *n,
                       kw_err_t *err)
{
    return kw_pg_rows_args(s, 0, N_ALERT_DUE, ARGS(I(now), I(lim64(limit))), &ALERT_ROW,
                           (void **)out, n, err, "due alerts");
}

static int n_alert_done(kw_store_t *s, const char *key_id, int64_t expires_at, int64_t *d,
                        size_t max, size_t *n, kw_err_t *err)
{
    PGresult *r;
    int rc =
        kw_pg_run_args(s, 0, N_ALERT_DONE, ARGS(T(key_id), I(expires_at)), &r, err, "alert state");
    if (rc == 0) {
        size_t cnt = 0;
        for (int i = 0; i < PQntuples(r) && cnt < max; i++)
            d[cnt++] = col_i64(r, i, 0);
        *n = cnt;
    }
    PQclear(r);
    return rc;
}

/* A write returning nothing; *changed = rows affected (NULL: not wanted). */
static int n_w(kw_store_t *s, int id, const kw_sql_arg_t *a, int na, size_t *changed, kw_err_t *err,
               const char *what)
{
    PGresult *r;
    int rc = kw_pg_run_args(s, 1, id, a, na, &r, err, what);
    if (rc == 0 && changed)
        *changed = (size_t)strtoull(PQcmdTuples(r), NULL, 10);
    PQclear(r);
    return rc;
}

/* n_w for a write nothing reads the answer of (a delivery added, an event marked fanned):
 * inside a group-commit op it rides with the op's next round trip (kw_pg_write_later), so
 * the outbox's fan-out costs one round trip per event, not two. */
static int n_w_later(kw_store_t *s, int id, const kw_sql_arg_t *a, int na, kw_err_t *err,
                     const char *what)
{
    pg_conn_t *c = NULL;
    int rc = kw_pg_writer(PG(s), &c, err);
    if (rc)
        return rc;
    if (!kw_pg_deferring(s, c))
        return n_w(s, id, a, na, NULL, err, what);
    prm_t p;
    p_args(&p, a, na);
    return kw_pg_send(c, id, &p, NULL, NULL, err, what);
}

static int n_alert_record(kw_store_t *s, const char *key_id, int64_t expires_at, int64_t threshold,
                          const char *event_id, int64_t at, kw_err_t *err)
{
    return n_w(s, N_ALERT_RECORD, ARGS(T(key_id), I(expires_at), I(threshold), T(event_id), I(at)),
               NULL, err, "alert record");
}

static int n_alert_set_next(kw_store_t *s, const char *key_id, int64_t next, kw_err_t *err)
{
    return n_w(s, N_ALERT_NEXT, ARGS(T(key_id), KW_SQA_TIME(next)), NULL, err, "alert schedule");
}

static int row_event(const PGresult *r, int i, void *out)
{
    kw_pg_row_t x;
    kw_pg_row_src(&x, r, i);
    return kw_row_event(&x.src, out);
}

static void clear_event(void *e)
{
    free(((kw_event_t *)e)->payload);
}

static const kw_pg_rowtype_t EVENT_ROW = {sizeof(kw_event_t), row_event, clear_event};

static int n_event_unfanned(kw_store_t *s, size_t limit, kw_event_t **out, size_t *n, kw_err_t *err)
{
    return kw_pg_rows_args(s, 0, N_EV_UNFANNED, ARGS(I(lim64(limit))), &EVENT_ROW, (void **)out, n,
                           err, "events");
}

static int n_delivery_add(kw_store_t *s, const char *event_id, const char *channel, int64_t now,
                          kw_err_t *err)
{
    return n_w_later(s, N_DLV_ADD, ARGS(T(event_id), T(channel), I(now)), err, "delivery insert");
}

static int n_event_fanned(kw_store_t *s, const char *event_id, const char *cred_id, int64_t now,
                          kw_err_t *err)
{
    return n_w_later(s, N_EV_FANNED, ARGS(T(event_id), I(now), KW_SQA_OTEXT(cred_id)), err,
                     "event fan-out");
}

static int row_delivery(const PGresult *r, int i, void *out)
{
    kw_pg_row_t x;
    kw_pg_row_src(&x, r, i);
    return kw_row_delivery(&x.src, out);
}

/* A claimed delivery: its row and its event's type, time and payload. */
static int row_claimed(const PGresult *r, int i, void *out)
{
    kw_delivery_t *d = out;
    row_delivery(r, i, d);
    col_cpy(r, i, 8, d->type, sizeof(d->type));
    d->occurred_at = col_i64(r, i, 9);
    d->payload = strdup(PQgetvalue(r, i, 10));
    return d->payload ? 0 : KW_ENOMEM;
}

static void clear_delivery(void *d)
{
    free(((kw_delivery_t *)d)->payload);
}

static const kw_pg_rowtype_t DLV_ROW = {sizeof(kw_delivery_t), row_delivery, NULL};
static const kw_pg_rowtype_t CLAIM_ROW = {sizeof(kw_delivery_t), row_claimed, clear_delivery};

static int cmp_due(const void *a, const void *b)
{
    const kw_delivery_t *x = a, *y = b;
    return strcmp(x->event_id, y->event_id);
}

static int n_delivery_claim(kw_store_t *s, int64_t now, int64_t lease_until, size_t limit,
                            kw_delivery_t **out, size_t *n, kw_err_t *err)
{
    int rc = kw_pg_rows_args(s, 1, N_DLV_CLAIM, ARGS(I(now), I(lim64(limit)), I(lease_until)),
                             &CLAIM_ROW, (void **)out, n, err, "delivery claim");
    /* oldest events first (ids sort by creation time), as SQLite's order */
    if (rc == 0 && *n > 1)
        qsort(*out, *n, sizeof(**out), cmp_due);
    return rc;
}

static int n_delivery_finish(kw_store_t *s, const kw_delivery_t *d, kw_err_t *err)
{
    return n_w(s, N_DLV_FINISH,
               ARGS(T(d->event_id), T(d->channel), T(d->state), KW_SQA_TIME(d->next_attempt_at),
                    KW_SQA_OTEXT(d->last_error), KW_SQA_TIME(d->delivered_at)),
               NULL, err, "delivery update");
}

static int n_delivery_release(kw_store_t *s, int64_t now, size_t *n, kw_err_t *err)
{
    return n_w(s, N_DLV_RELEASE, ARGS(I(now)), n, err, "delivery release");
}

static int n_event_list(kw_store_t *s, const kw_event_filter_t *f, kw_event_t **out, size_t *n,
                        kw_err_t *err)
{
    return kw_pg_rows_args(s, 0, N_EV_LIST,
                           ARGS(I(f->before_seq > 0 ? f->before_seq : INT64_MAX), T(f->type),
                                T(f->cred_id), I(lim64(f->limit))),
                           &EVENT_ROW, (void **)out, n, err, "events");
}

static int n_event_get(kw_store_t *s, const char *id, kw_event_t *out, kw_err_t *err)
{
    return kw_pg_one_args(s, N_EV_GET, ARGS(T(id)), &EVENT_ROW, out, "id", "event not found", err,
                          "events");
}

static int n_delivery_list(kw_store_t *s, const char *event_id, kw_delivery_t **out, size_t *n,
                           kw_err_t *err)
{
    return kw_pg_rows_args(s, 0, N_DLV_LIST, ARGS(T(event_id)), &DLV_ROW, (void **)out, n, err,
                           "deliveries");
}

static int n_event_retry(kw_store_t *s, const char *event_id, int64_t now, size_t *n, kw_err_t *err)
{
    int rc = n_w(s, N_CH_ENABLE, ARGS(T(event_id)), NULL, err, "channel enable");
    if (rc)
        return rc;
    return n_w(s, N_EV_RETRY, ARGS(T(event_id), I(now)), n, err, "event retry");
}

static int n_channel_disable(kw_store_t *s, const char *channel, const char *event_id, int64_t now,
                             kw_err_t *err)
{
    return n_w(s, N_CH_DISABLE, ARGS(T(channel), I(now), T(event_id)), NULL, err,
               "channel disable");
}

static int n_channel_disabled(kw_store_t *s, const char *channel, int *disabled, kw_err_t *err)
{
    PGresult *r;
    int rc = kw_pg_run_args(s, 0, N_CH_DISABLED, ARGS(T(channel)), &r, err, "channel state");
    if (rc == 0)
        *disabled = PQntuples(r) > 0;
    PQclear(r);
    return rc;
}

static int n_mail_quota_take(kw_store_t *s, const char *rcpt, int64_t day, int64_t cap, int *ok,
                             kw_err_t *err)
{
    PGresult *r;
    if (cap <= 0) {
        *ok = 0;
        return 0;
    }
    int rc =
        kw_pg_run_args(s, 1, N_MAIL_TAKE, ARGS(T(rcpt), I(day), I(cap)), &r, err, "mail quota");
    if (rc == 0)
        *ok = PQntuples(r) > 0;
    PQclear(r);
    return rc;
}

static int one_row(pg_conn_t *c, int id, int np, int64_t p1, int64_t p2, int64_t *a, int64_t *b,
                   int64_t *d, kw_err_t *err)
{
    const kw_sql_arg_t args[] = {I(p1), I(p2)};
    PGresult *r = NULL;
    prm_t p;
    p_args(&p, args, np);
    int rc = kw_pg_x(c, id, &p, &r, err, "metrics");
    if (rc == 0 && PQntuples(r) > 0) {
        if (a)
            *a = col_i64(r, 0, 0);
        if (b)
            *b = col_i64(r, 0, 1);
        if (d)
            *d = col_i64(r, 0, 2);
    }
    PQclear(r);
    return rc;
}

static int n_stats(kw_store_t *base, int64_t now, kw_notify_stats_t *o, kw_err_t *err)
{
    kw_pg_t *s = PG(base);
    pg_conn_t *c = kw_pg_reader(s, err);
    int64_t unf_oldest = 0;
    if (c == NULL)
        return KW_ESTORE;
    int rc =
        one_row(c, N_ST_OUTBOX, 0, 0, 0, &o->deliveries_pending, &o->oldest_pending_at, NULL, err);
    if (rc == 0)
        rc = one_row(c, N_ST_UNFANNED, 0, 0, 0, &o->outbox_unfanned, &unf_oldest, NULL, err);
    if (rc == 0)
        rc = one_row(c, N_ST_FAILED, 0, 0, 0, &o->deliveries_failed, NULL, NULL, err);
    if (rc == 0)
        rc = one_row(c, N_ST_RENEWALS, 0, 0, 0, &o->renewals_pending, NULL, NULL, err);
    if (rc == 0)
        rc = one_row(c, N_ST_ALERTS, 1, now, 0, &o->alerts_due, NULL, NULL, err);
    if (unf_oldest && (o->oldest_pending_at == 0 || unf_oldest < o->oldest_pending_at))
        o->oldest_pending_at = unf_oldest;
    kw_pg_reader_end(s, c);
    return rc;
}

const kw_store_notify_ops_t kw_pg_notify_ops = {KW_STORE_NOTIFY_OPS(KW_STORE_OP_INIT, n_)};

#endif /* KW_HAVE_LIBPQ */
