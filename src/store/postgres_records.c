/* postgres_records.c - the PostgreSQL backend's records (kw_store_ops_t): meta, policies,
 * credentials, keys, usage, events, the start-up load, audit and renewals. */
#include "postgres_int.h"

#ifdef KW_HAVE_LIBPQ /* the whole file: built only when libpq is installed (Makefile) */

#include "store_codec.h"

#include "../core/key.h"
#include "../core/util.h"

/* ---- row codecs ---------------------------------------------------------------------- */

static int row_policy(const PGresult *r, int i, void *out)
{
    kw_pg_row_t x;
    kw_pg_row_src(&x, r, i);
    return kw_row_policy(&x.src, out);
}

/* A row's columns as text (NULL = SQL NULL), from a result or a COPY line. */
static void row_cols(const PGresult *r, int i, const char **v, int n)
{
    for (int j = 0; j < n; j++)
        v[j] = col_v(r, i, j);
}

/* KW_COLS_CRED. borrow = 1 points the strings into v (valid as long as v; never free them). */
static int cred_from(const char *const *v, kw_cred_t *c, int borrow)
{
    char **str[] = {&c->name,       &c->owner,         &c->scopes_json,
                    &c->cidrs_json, &c->metadata_json, &c->contacts_json};
    memset(c, 0, sizeof(*c));
    c->seq = v_i64(v[0]);
    v_cpy(v[1], c->id, sizeof(c->id));
    for (int j = 0; j < 6; j++) {
        if (borrow) {
            *str[j] = (char *)v[2 + j];
        } else if (v_dup(v[2 + j], str[j])) {
            kw_cred_clear(c);
            return KW_ENOMEM;
        }
    }
    v_cpy(v[8], c->policy, sizeof(c->policy));
    v_cpy(v[9], c->prefix, sizeof(c->prefix));
    c->disabled = (int)v_i64(v[10]);
    c->created_at = v_i64(v[11]);
    c->updated_at = v_i64(v[12]);
    c->deleted_at = v_i64(v[13]);
    return 0;
}

/* KW_COLS_KEY */
static void key_from(const char *const *v, kw_keyrec_t *k)
{
    memset(k, 0, sizeof(*k));
    k->seq = v_i64(v[0]);
    v_cpy(v[1], k->id, sizeof(k->id));
    v_cpy(v[2], k->cred_id, sizeof(k->cred_id));
    k->slot = (int)v_i64(v[3]);
    k->live = v[4] != NULL;
    v_cpy(v[5], k->hint, sizeof(k->hint));
    kw_pg_bytes(v[6], k->digest, KW_DIGEST_LEN);
    k->created_at = v_i64(v[7]);
    k->expires_at = v_i64(v[8]);
    k->revoked_at = v_i64(v[9]);
    v_cpy(v[10], k->revoke_reason, sizeof(k->revoke_reason));
    k->last_used_at = v_i64(v[11]);
    k->use_count = v_i64(v[12]);
}

/* KW_COLS_AUDIT */
static int audit_from(const char *const *v, kw_audit_rec_t *a)
{
    memset(a, 0, sizeof(*a));
    a->seq = v_i64(v[0]);
    a->at = v_i64(v[1]);
    v_cpy(v[2], a->actor, sizeof(a->actor));
    v_cpy(v[3], a->action, sizeof(a->action));
    v_cpy(v[4], a->target, sizeof(a->target));
    v_cpy(v[5], a->outcome, sizeof(a->outcome));
    if (v_dup(v[6], &a->detail))
        return KW_ENOMEM;
    long pn = kw_pg_bytes(v[7], a->prev_hash, KW_AUDIT_HASH_LEN);
    long hn = kw_pg_bytes(v[8], a->hash, KW_AUDIT_HASH_LEN);
    a->has_prev = pn >= 0;
    if ((pn >= 0 && pn != KW_AUDIT_HASH_LEN) || hn != KW_AUDIT_HASH_LEN)
        a->hash[0] ^= 0xff; /* a hash of the wrong length can never match */
    return 0;
}

#define CRED_NCOLS 14
#define AUDIT_NCOLS 9

int kw_pg_row_key(const PGresult *r, int i, void *out)
{
    const char *v[KW_COLS_KEY_N];
    row_cols(r, i, v, KW_COLS_KEY_N);
    key_from(v, out);
    return 0;
}

static int row_audit(const PGresult *r, int i, void *out)
{
    const char *v[AUDIT_NCOLS];
    row_cols(r, i, v, AUDIT_NCOLS);
    return audit_from(v, out);
}

static int row_renewal(const PGresult *r, int i, void *out)
{
    kw_pg_row_t x;
    kw_pg_row_src(&x, r, i);
    return kw_row_renewal(&x.src, out);
}

static int row_cred_own(const PGresult *r, int i, void *out)
{
    const char *v[CRED_NCOLS];
    row_cols(r, i, v, CRED_NCOLS);
    return cred_from(v, out, 0);
}

static void clear_cred(void *c)
{
    kw_cred_clear(c);
}

static void clear_audit(void *a)
{
    kw_audit_rec_clear(a);
}

static const kw_pg_rowtype_t POLICY_ROW = {sizeof(kw_policy_t), row_policy, NULL};
static const kw_pg_rowtype_t CRED_ROW = {sizeof(kw_cred_t), row_cred_own, clear_cred};
static const kw_pg_rowtype_t KEY_ROW = {sizeof(kw_keyrec_t), kw_pg_row_key, NULL};
static const kw_pg_rowtype_t AUDIT_ROW = {sizeof(kw_audit_rec_t), row_audit, clear_audit};
static const kw_pg_rowtype_t REN_ROW = {sizeof(kw_renewal_t), row_renewal, NULL};

/* ---- meta ---------------------------------------------------------------------------- */

static int pg_meta_get(kw_store_t *base, const char *key, char **value_out, kw_err_t *err)
{
    kw_pg_t *s = PG(base);
    pg_conn_t *c = kw_pg_reader(s, err);
    PGresult *r = NULL;
    prm_t p = {0};
    int rc, wr;
    if (c == NULL)
        return KW_ESTORE;
    wr = kw_pg_is_writer(s, c);
    /* Read again in the transaction that holds its lock and last wrote it (the audit head,
     * op after op of a batch): the row is locked by that write, so no other writer can have
     * changed it, and the value is the one written. */
    if (wr && c->mstate == 2 && strcmp(c->mkey, key) == 0) {
        kw_pg_reader_end(s, c);
        return (*value_out = strdup(c->mval)) ? 0 : kw_err_set(err, KW_ENOMEM, NULL, NULL);
    }
    p_text(&p, key);
    /* Inside a transaction the value is read to be written back (the audit head): take the
     * key's lock first, then read with a fresh snapshot, so two nodes' appends queue. */
    if (wr)
        rc = kw_pg_x2(c, ST_META_LOCK, ST_META_GET, &p, &r, err, "meta lookup");
    else
        rc = kw_pg_x(c, ST_META_GET, &p, &r, err, "meta lookup");
    if (rc)
        goto out;
    if (wr && strlen(key) < sizeof(c->mkey)) {
        snprintf(c->mkey, sizeof(c->mkey), "%s", key);
        c->mstate = 1; /* locked: its next write in this transaction may be remembered */
    }
    if (PQntuples(r) == 0) {
        rc = kw_err_set(err, KW_ENOTFOUND, "key", "store: no such meta key");
        goto out;
    }
    if (col_dup(r, 0, 0, value_out) || *value_out == NULL)
        rc = kw_err_set(err, KW_ENOMEM, NULL, NULL);
out:
    PQclear(r);
    kw_pg_reader_end(s, c);
    return rc;
}

static int pg_meta_set(kw_store_t *base, const char *key, const char *value, kw_err_t *err)
{
    pg_conn_t *c = NULL;
    PGresult *r = NULL;
    prm_t p = {0};
    int rc = kw_pg_writer(PG(base), &c, err);
    if (rc)
        return rc;
    p_text(&p, key);
    p_text(&p, value);
    if (kw_pg_deferring(base, c))
        rc = kw_pg_send(c, ST_META_SET, &p, NULL, NULL, err, "meta write");
    else
        rc = kw_pg_x(c, ST_META_SET, &p, &r, err, "meta write");
    PQclear(r);
    if (c->mstate && strcmp(c->mkey, key) == 0) {
        /* a failed deferred write fails the op, whose rollback forgets this */
        int fits = rc == 0 && strlen(value) < sizeof(c->mval);
        if (fits)
            snprintf(c->mval, sizeof(c->mval), "%s", value);
        c->mstate = fits ? 2 : 1;
    }
    return rc;
}

/* ---- policies ------------------------------------------------------------------------ */

int kw_pg_policy_write(pg_conn_t *c, const kw_policy_t *p, int create, kw_err_t *err)
{
    char th[KW_THRESHOLDS_TEXT_MAX];
    PGresult *r = NULL;
    prm_t q = {0};
    kw_thresholds_format(p, th, sizeof(th));
    p_text(&q, p->name);
    p_int(&q, p->default_lifetime);
    p_int(&q, p->max_lifetime);
    p_int(&q, p->allow_never_expire != 0);
    p_int(&q, p->renewable != 0);
    p_int(&q, p->renewal_requires_approval != 0);
    p_text(&q, th);
    p_int(&q, p->max_roll_overlap);
    p_int(&q, p->created_at);
    p_int(&q, p->updated_at);
    p_int(&q, p->token_lifetime);
    c->wrote = 1;
    c->pol_ok = 0;
    int rc = kw_pg_w(c, create ? ST_POLICY_INSERT : ST_POLICY_UPDATE, &q, &r, err,
                     create ? "policy insert" : "policy update");
    if (rc == KW_ECONFLICT)
        rc = kw_err_set(err, KW_ECONFLICT, "name", "policy already exists");
    else if (rc == 0 && !create && strcmp(PQcmdTuples(r), "0") == 0)
        rc = kw_err_set(err, KW_ENOTFOUND, "name", "policy not found");
    PQclear(r);
    return rc;
}

static int pg_policy_put(kw_store_t *base, const kw_policy_t *p, int create, kw_err_t *err)
{
    pg_conn_t *c = NULL;
    int rc = kw_pg_writer(PG(base), &c, err);
    return rc ? rc : kw_pg_policy_write(c, p, create, err);
}

/* Group commit's ops read their policy one after another in one transaction (every
 * creation): the first read is remembered until the transaction writes a policy, undoes an
 * op or ends. The policy is not locked either way: a change another node commits meanwhile
 * is seen by the next transaction, as it would be by a read a moment earlier. */
static int pg_policy_get(kw_store_t *base, const char *name, kw_policy_t *out, kw_err_t *err)
{
    pg_conn_t *c = PG(base)->defer ? kw_pg_tx_conn(PG(base)) : NULL;
    if (c && c->pol_ok && strcmp(c->pol.name, name) == 0) {
        *out = c->pol;
        return 0;
    }
    int rc = kw_pg_one_args(base, ST_POLICY_GET, KW_SQ_ARGS(KW_SQA_TEXT(name)), &POLICY_ROW, out,
                            "name", "policy not found", err, "policy lookup");
    if (rc == 0 && c) {
        c->pol = *out;
        c->pol_ok = 1;
    }
    return rc;
}

static int pg_policy_list(kw_store_t *base, kw_policy_t **out, size_t *n, kw_err_t *err)
{
    return kw_pg_rows(base, 0, ST_POLICY_LIST, NULL, &POLICY_ROW, (void **)out, n, err,
                      "policy list");
}

/* ---- credentials --------------------------------------------------------------------- */

static void cred_params(prm_t *p, const kw_cred_t *c)
{
    p_text(p, c->id);
    p_text(p, c->name);
    p_text(p, c->owner);
    p_text(p, c->scopes_json ? c->scopes_json : "[]");
    p_text(p, c->cidrs_json ? c->cidrs_json : "[]");
    p_text(p, c->metadata_json ? c->metadata_json : "{}");
    p_text(p, c->contacts_json ? c->contacts_json : "[]");
    p_text(p, c->policy[0] ? c->policy : "default");
    p_text(p, c->prefix);
    p_int(p, c->disabled != 0);
    p_int(p, c->created_at);
    p_int(p, c->updated_at);
    p_time(p, c->deleted_at);
}

static int cred_conflict(pg_conn_t *c, kw_err_t *err)
{
    if (strcmp(c->xstate, "23503") == 0)
        return kw_err_set(err, KW_EINVAL, "policy", "no such policy");
    if (strcmp(c->xstate, "23505") != 0)
        return kw_err_set(err, KW_EINVAL, NULL, "store: credential: %s", err->msg);
    return kw_err_set(err, KW_ECONFLICT, "id", "credential id already exists");
}

static int pg_cred_insert(kw_store_t *base, kw_cred_t *c, kw_err_t *err)
{
    prm_t p = {0};
    cred_params(&p, c);
    return kw_pg_write_later(base, ST_CRED_INSERT, &p, 1, &c->seq, cred_conflict, err,
                             "credential insert");
}

static int pg_cred_update(kw_store_t *base, const kw_cred_t *cup, kw_err_t *err)
{
    pg_conn_t *c;
    prm_t p = {0};
    size_t changed = 0;
    cred_params(&p, cup);
    int rc = kw_pg_write(base, ST_CRED_UPDATE, &p, 1, NULL, &changed, &c, err, "credential update");
    if (rc == KW_ECONFLICT)
        return cred_conflict(c, err);
    if (rc == 0 && changed == 0)
        return kw_err_set(err, KW_ENOTFOUND, "id", "credential not found");
    return rc;
}

static int cred_get(kw_store_t *base, int id_st, const char *id, kw_cred_t *out, kw_err_t *err)
{
    return kw_pg_one_args(base, id_st, KW_SQ_ARGS(KW_SQA_TEXT(id)), &CRED_ROW, out, "id",
                          "credential not found", err, "credential lookup");
}

static int pg_cred_get(kw_store_t *base, const char *id, kw_cred_t *out, kw_err_t *err)
{
    return cred_get(base, ST_CRED_GET, id, out, err);
}

int kw_pg_cred_get_any(kw_store_t *base, const char *id, kw_cred_t *out, kw_err_t *err)
{
    return cred_get(base, ST_CRED_GET_ANY, id, out, err);
}

static int pg_cred_list(kw_store_t *base, const kw_cred_filter_t *f, kw_cred_t **out, size_t *n,
                        kw_err_t *err)
{
    return kw_pg_rows_args(base, 0, ST_CRED_LIST,
                           KW_SQ_ARGS(KW_SQA_INT(f->after_seq), KW_SQA_TEXT(f->owner),
                                      KW_SQA_INT(f->expiring_before), KW_SQA_INT(f->now),
                                      KW_SQA_INT(lim64(f->limit))),
                           &CRED_ROW, (void **)out, n, err, "credential list");
}

/* ---- keys ---------------------------------------------------------------------------- */

static int key_conflict(pg_conn_t *c, kw_err_t *err)
{
    if (strcmp(c->xstate, "23503") == 0)
        return kw_err_set(err, KW_ENOTFOUND, "cred_id", "credential not found");
    if (strcmp(c->xstate, "23514") == 0)
        return kw_err_set(err, KW_ECONFLICT, "slot", "slot must be 1 or 2");
    if (strcmp(c->xstate, "23505") == 0) {
        if (strstr(c->xcons, "live_slot"))
            return kw_err_set(err, KW_ECONFLICT, "slot", "slot already holds a live key");
        return kw_err_set(err, KW_ECONFLICT, "id", "store: key: %s", err->msg);
    }
    return kw_err_set(err, KW_EINVAL, NULL, "store: key: %s", err->msg);
}

static int pg_key_insert(kw_store_t *base, kw_keyrec_t *k, kw_err_t *err)
{
    prm_t p = {0};
    p_text(&p, k->id);
    p_text(&p, k->cred_id);
    p_int(&p, k->slot);
    p_int(&p, k->live != 0);
    p_text(&p, k->hint);
    p_bytes(&p, k->digest, KW_DIGEST_LEN);
    p_int(&p, k->created_at);
    p_time(&p, k->expires_at);
    p_time(&p, k->revoked_at);
    p_opt(&p, k->revoke_reason);
    p_time(&p, k->last_used_at);
    p_int(&p, k->use_count);
    return kw_pg_write_later(base, ST_KEY_INSERT, &p, 1, &k->seq, key_conflict, err, "key insert");
}

static int pg_key_update(kw_store_t *base, const kw_keyrec_t *k, kw_err_t *err)
{
    pg_conn_t *c;
    prm_t p = {0};
    size_t changed = 0;
    p_text(&p, k->id);
    p_time(&p, k->expires_at);
    p_time(&p, k->revoked_at);
    p_opt(&p, k->revoke_reason);
    p_int(&p, k->live != 0);
    int rc = kw_pg_write(base, ST_KEY_UPDATE, &p, 1, NULL, &changed, &c, err, "key update");
    if (rc == KW_ECONFLICT)
        return key_conflict(c, err);
    if (rc == 0 && changed == 0)
        return kw_err_set(err, KW_ENOTFOUND, "id", "key not found");
    return rc;
}

static int pg_key_get(kw_store_t *base, const char *id, kw_keyrec_t *out, kw_err_t *err)
{
    return kw_pg_one_args(base, ST_KEY_GET, KW_SQ_ARGS(KW_SQA_TEXT(id)), &KEY_ROW, out, "id",
                          "key not found", err, "key lookup");
}

static int pg_key_list_cred(kw_store_t *base, const char *cred_id, kw_keyrec_t **out, size_t *n,
                            kw_err_t *err)
{
    return kw_pg_rows_args(base, 0, ST_KEY_LIST_CRED, KW_SQ_ARGS(KW_SQA_TEXT(cred_id)), &KEY_ROW,
                           (void **)out, n, err, "key list");
}

static int pg_key_expiring(kw_store_t *base, int64_t now, int64_t until, int64_t after_exp,
                           int64_t after_seq, size_t limit, kw_keyrec_t **out, size_t *n,
                           kw_err_t *err)
{
    return kw_pg_rows_args(
        base, 0, ST_KEY_EXPIRING,
        KW_SQ_ARGS(KW_SQA_INT(now), KW_SQA_INT(until), KW_SQA_INT(after_exp > 0 ? after_exp : now),
                   KW_SQA_INT(after_exp > 0 ? after_seq : INT64_MAX), KW_SQA_INT(lim64(limit))),
        &KEY_ROW, (void **)out, n, err, "expiring keys");
}

/* ---- usage, events --------------------------------------------------------------------- */

static int pg_usage_apply(kw_store_t *base, const kw_usage_t *u, size_t n, kw_err_t *err)
{
    kw_pg_t *s = PG(base);
    int rc = kw_pg_begin(base, err);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        prm_t p = {0};
        PGresult *r = NULL;
        p_text(&p, u[i].key_id);
        p_int(&p, u[i].delta);
        p_int(&p, u[i].last_used);
        rc = kw_pg_x(kw_pg_tx_conn(s), ST_USAGE, &p, &r, err, "usage write-back");
        PQclear(r);
    }
    if (rc == 0)
        return kw_pg_commit(base, err);
    if (kw_pg_tx_conn(s))
        kw_pg_rollback(base);
    return rc;
}

static int event_conflict(pg_conn_t *c, kw_err_t *err)
{
    return kw_err_set(err, KW_ECONFLICT, "id", "event id already exists");
}

static int pg_event_insert(kw_store_t *base, const char *id, const char *type, int64_t occurred_at,
                           const char *payload_json, kw_err_t *err)
{
    prm_t p;
    p_args(&p, KW_SQ_ARGS(KW_SQA_TEXT(id), KW_SQA_TEXT(type), KW_SQA_INT(occurred_at),
                          KW_SQA_TEXT(payload_json)));
    return kw_pg_write_later(base, ST_EVENT_INSERT, &p, 0, NULL, event_conflict, err,
                             "event insert");
}

/* ---- load_all, counts ------------------------------------------------------------------ */

typedef struct load_ud {
    kw_store_load_cb cb;
    void *ud;
} load_ud_t;

static int load_cred_row(void *ud, const char *const *v)
{
    load_ud_t *l = ud;
    kw_cred_t c;
    cred_from(v, &c, 1);
    return l->cb(l->ud, &c, NULL, 0);
}

static int load_key_row(void *ud, const char *const *v)
{
    load_ud_t *l = ud;
    kw_keyrec_t k;
    key_from(v, &k);
    return l->cb(l->ud, NULL, &k, 1);
}

/* load_all (creds: the credentials query, full or slim, then the keys' columns keys) or
 * secret_scan (keys NULL: only the credentials pass, of the rows whose contacts name a
 * "secret"). */
static int load_scan(kw_store_t *base, const char *creds, const char *keys, int64_t retain_since,
                     kw_store_load_cb cb, void *ud, kw_err_t *err)
{
    kw_pg_t *s = PG(base);
    pg_conn_t *c = kw_pg_reader(s, err);
    load_ud_t l = {cb, ud};
    char sql[512];
    int began = 0, rc;
    if (c == NULL)
        return KW_ESTORE;
    if (!kw_pg_is_writer(s, c)) {
        rc = kw_pg_cmd(c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", err, "begin read");
        began = rc == 0;
    } else {
        rc = 0;
    }
    if (rc == 0)
        rc = kw_pg_copy(c, creds, CRED_NCOLS, load_cred_row, &l, err, "load credentials");
    if (rc == 0 && keys) {
        snprintf(sql, sizeof(sql),
                 "COPY (SELECT %s FROM keys k"
                 " WHERE (k.revoked_at IS NULL OR k.revoked_at >= %lld)"
                 " AND (k.expires_at IS NULL OR k.expires_at >= %lld)) TO STDOUT",
                 keys, (long long)retain_since, (long long)retain_since);
        rc = kw_pg_copy(c, sql, KW_COLS_KEY_N, load_key_row, &l, err, "load keys");
    }
    if (began && c->db)
        PQclear(PQexec(c->db, "ROLLBACK"));
    kw_pg_reader_end(s, c);
    return rc;
}

static int pg_load_all(kw_store_t *base, int64_t retain_since, int slim, kw_store_load_cb cb,
                       void *ud, kw_err_t *err)
{
    return load_scan(base,
                     slim ? "COPY (SELECT " KW_COLS_CRED_INDEX " FROM credentials c) TO STDOUT"
                          : "COPY (SELECT " KW_COLS_CRED " FROM credentials c) TO STDOUT",
                     slim ? KW_COLS_KEY_INDEX : KW_COLS_KEY, retain_since, cb, ud, err);
}

static int pg_secret_scan(kw_store_t *base, kw_store_load_cb cb, void *ud, kw_err_t *err)
{
    return load_scan(base,
                     "COPY (SELECT " KW_COLS_CRED " FROM credentials c"
                     " WHERE strpos(c.contacts, '\"secret\"') > 0) TO STDOUT",
                     NULL, 0, cb, ud, err);
}

static int pg_counts(kw_store_t *base, int64_t *creds, int64_t *keys, kw_err_t *err)
{
    kw_pg_t *s = PG(base);
    pg_conn_t *c = kw_pg_reader(s, err);
    PGresult *r = NULL;
    if (c == NULL)
        return KW_ESTORE;
    int rc = kw_pg_x(c, ST_COUNTS, NULL, &r, err, "row counts");
    if (rc == 0) {
        *creds = col_i64(r, 0, 0);
        *keys = col_i64(r, 0, 1);
    }
    PQclear(r);
    kw_pg_reader_end(s, c);
    return rc;
}

/* ---- audit ----------------------------------------------------------------------------- */

static int pg_audit_insert(kw_store_t *base, const kw_audit_rec_t *a, kw_err_t *err)
{
    prm_t p;
    p_args(&p, KW_SQ_ARGS(KW_SQA_INT(a->seq), KW_SQA_INT(a->at), KW_SQA_TEXT(a->actor),
                          KW_SQA_TEXT(a->action), KW_SQA_OTEXT(a->target), KW_SQA_TEXT(a->outcome),
                          KW_SQA_TEXT(a->detail),
                          a->has_prev ? KW_SQA_BLOB(a->prev_hash, KW_AUDIT_HASH_LEN) : KW_SQA_NULL,
                          KW_SQA_BLOB(a->hash, KW_AUDIT_HASH_LEN)));
    return kw_pg_write_later(base, ST_AUDIT_INSERT, &p, 0, NULL, NULL, err, "audit insert");
}

static int pg_audit_head(kw_store_t *base, int64_t *seq, uint8_t *hash, kw_err_t *err)
{
    kw_pg_t *s = PG(base);
    pg_conn_t *c = kw_pg_reader(s, err);
    PGresult *r = NULL;
    if (c == NULL)
        return KW_ESTORE;
    int rc = kw_pg_x(c, ST_AUDIT_HEAD, NULL, &r, err, "audit head");
    if (rc == 0 && PQntuples(r) == 0) {
        rc = kw_err_set(err, KW_ENOTFOUND, NULL, "audit trail is empty");
    } else if (rc == 0) {
        memset(hash, 0, KW_AUDIT_HASH_LEN);
        kw_pg_bytes(col_v(r, 0, 1), hash, KW_AUDIT_HASH_LEN);
        *seq = col_i64(r, 0, 0);
    }
    PQclear(r);
    kw_pg_reader_end(s, c);
    return rc;
}

static int pg_audit_list(kw_store_t *base, const kw_audit_filter_t *f, kw_audit_rec_t **out,
                         size_t *n, kw_err_t *err)
{
    return kw_pg_rows_args(base, 0, ST_AUDIT_LIST,
                           KW_SQ_ARGS(KW_SQA_TEXT(f->actor), KW_SQA_TEXT(f->target),
                                      KW_SQA_INT(f->cursor > 0 ? f->cursor : 0),
                                      KW_SQA_INT(f->ascending != 0), KW_SQA_INT(lim64(f->limit))),
                           &AUDIT_ROW, (void **)out, n, err, "audit list");
}

typedef struct audit_ud {
    kw_store_audit_cb cb;
    void *ud;
} audit_ud_t;

static int audit_row(void *ud, const char *const *v)
{
    audit_ud_t *a = ud;
    kw_audit_rec_t rec;
    if (audit_from(v, &rec))
        return KW_ENOMEM;
    int rc = a->cb(a->ud, &rec);
    kw_audit_rec_clear(&rec);
    return rc;
}

static int pg_audit_scan(kw_store_t *base, kw_store_audit_cb cb, void *ud, const char *meta_key,
                         char **meta_out, kw_err_t *err)
{
    kw_pg_t *s = PG(base);
    pg_conn_t *c = kw_pg_reader(s, err);
    audit_ud_t a = {cb, ud};
    PGresult *r = NULL;
    prm_t p = {0};
    int began = 0, rc = 0;
    if (c == NULL)
        return KW_ESTORE;
    if (!kw_pg_is_writer(s, c)) {
        rc = kw_pg_cmd(c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", err, "begin read");
        began = rc == 0;
    }
    if (rc == 0)
        rc = kw_pg_copy(c, "COPY (SELECT " KW_COLS_AUDIT " FROM audit ORDER BY seq) TO STDOUT",
                        AUDIT_NCOLS, audit_row, &a, err, "audit scan");
    if (rc == 0) {
        p_text(&p, meta_key);
        rc = kw_pg_x(c, ST_META_GET, &p, &r, err, "meta lookup");
    }
    if (rc == 0) {
        char *m = NULL;
        if (PQntuples(r) > 0 && col_dup(r, 0, 0, &m))
            rc = kw_err_set(err, KW_ENOMEM, NULL, NULL);
        else
            *meta_out = m;
    }
    PQclear(r);
    if (began && c->db)
        PQclear(PQexec(c->db, "ROLLBACK"));
    kw_pg_reader_end(s, c);
    return rc;
}

/* ---- renewals -------------------------------------------------------------------------- */

static int ren_write(kw_store_t *base, const kw_renewal_t *x, int insert, kw_err_t *err)
{
    pg_conn_t *c;
    size_t changed = 0;
    int rc;
    if (insert)
        rc = kw_pg_write_args(base, ST_REN_INSERT,
                              KW_SQ_ARGS(KW_SQA_TEXT(x->id), KW_SQA_TEXT(x->key_id),
                                         KW_SQA_TEXT(x->requested_by), KW_SQA_TIME(x->extend_by),
                                         KW_SQA_TIME(x->expires_at), KW_SQA_OTEXT(x->reason),
                                         KW_SQA_TEXT(x->state), KW_SQA_OTEXT(x->decided_by),
                                         KW_SQA_TIME(x->decided_at), KW_SQA_OTEXT(x->note),
                                         KW_SQA_INT(x->created_at)),
                              0, NULL, NULL, &c, err, "renewal insert");
    else /* $1 id, $2-$5 the decision */
        rc = kw_pg_write_args(base, ST_REN_UPDATE,
                              KW_SQ_ARGS(KW_SQA_TEXT(x->id), KW_SQA_TEXT(x->state),
                                         KW_SQA_OTEXT(x->decided_by), KW_SQA_TIME(x->decided_at),
                                         KW_SQA_OTEXT(x->note)),
                              0, NULL, &changed, &c, err, "renewal update");
    if (rc == KW_ECONFLICT)
        return strcmp(c->xstate, "23503") == 0
                   ? kw_err_set(err, KW_ENOTFOUND, "key_id", "key not found")
                   : kw_err_set(err, KW_ECONFLICT, "id", "renewal id already exists");
    if (rc == 0 && !insert && changed == 0)
        return kw_err_set(err, KW_ENOTFOUND, "id", "renewal not found");
    return rc;
}

static int pg_renewal_insert(kw_store_t *base, const kw_renewal_t *r, kw_err_t *err)
{
    return ren_write(base, r, 1, err);
}

static int pg_renewal_update(kw_store_t *base, const kw_renewal_t *r, kw_err_t *err)
{
    return ren_write(base, r, 0, err);
}

static int pg_renewal_get(kw_store_t *base, const char *id, kw_renewal_t *out, kw_err_t *err)
{
    return kw_pg_one_args(base, ST_REN_GET, KW_SQ_ARGS(KW_SQA_TEXT(id)), &REN_ROW, out, "id",
                          "renewal not found", err, "renewals");
}

static int pg_renewal_list(kw_store_t *base, const kw_renewal_filter_t *f, kw_renewal_t **out,
                           size_t *n, kw_err_t *err)
{
    return kw_pg_rows_args(base, 0, ST_REN_LIST,
                           KW_SQ_ARGS(KW_SQA_TEXT(f->state), KW_SQA_TEXT(f->key_id),
                                      KW_SQA_INT(f->after_created > 0 ? f->after_created : 0),
                                      KW_SQA_TEXT(f->after_id ? f->after_id : ""),
                                      KW_SQA_INT(lim64(f->limit))),
                           &REN_ROW, (void **)out, n, err, "renewals");
}

static int pg_renewal_stale(kw_store_t *base, int64_t now, size_t limit, kw_renewal_t **out,
                            size_t *n, kw_err_t *err)
{
    return kw_pg_rows_args(base, 0, ST_REN_STALE,
                           KW_SQ_ARGS(KW_SQA_INT(now), KW_SQA_INT(lim64(limit))), &REN_ROW,
                           (void **)out, n, err, "renewals");
}

const kw_store_ops_t kw_store_postgres_ops = {
    .scheme = "postgresql",
    .open = kw_pg_open,
    .close = kw_pg_close,
    .file = kw_pg_file,
    .begin = kw_pg_begin,
    .commit = kw_pg_commit,
    .rollback = kw_pg_rollback,
    .savepoint = kw_pg_savepoint,
    .savepoint_end = kw_pg_savepoint_end,
    .defer_writes = kw_pg_defer,
    .sync = kw_pg_sync,
    .meta_get = pg_meta_get,
    .meta_set = pg_meta_set,
    .policy_get = pg_policy_get,
    .policy_put = pg_policy_put,
    .policy_list = pg_policy_list,
    .cred_insert = pg_cred_insert,
    .cred_update = pg_cred_update,
    .cred_get = pg_cred_get,
    .cred_list = pg_cred_list,
    .key_insert = pg_key_insert,
    .key_update = pg_key_update,
    .key_get = pg_key_get,
    .key_list_cred = pg_key_list_cred,
    .key_expiring = pg_key_expiring,
    .usage_apply = pg_usage_apply,
    .event_insert = pg_event_insert,
    .load_all = pg_load_all,
    .secret_scan = pg_secret_scan,
    .counts = pg_counts,
    .audit_insert = pg_audit_insert,
    .audit_head = pg_audit_head,
    .audit_list = pg_audit_list,
    .audit_scan = pg_audit_scan,
    .renewal_insert = pg_renewal_insert,
    .renewal_update = pg_renewal_update,
    .renewal_get = pg_renewal_get,
    .renewal_list = pg_renewal_list,
    .renewal_stale = pg_renewal_stale,
};

#endif /* KW_HAVE_LIBPQ */
