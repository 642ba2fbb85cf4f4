/* h_audit.c - the audit trail over HTTP (SPEC §7): GET /v1/audit pages through it,
 * GET /v1/audit/verify checks the whole chain, and refused admin requests are recorded.
 * Must not: record a presented key, a query string or anything else a caller typed into
 * the path unless it is a well-formed object id. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "core/audit.h"
#include "core/jdump.h"
#include "core/util.h"
#include "log.h"

#define DEFAULT_LIMIT 100
#define MAX_LIMIT 1000

typedef struct denied_tx {
    const kw_req_t *rq;
    const char *route, *client, *target;
    int status;
} denied_tx_t;

static int denied_run(kw_store_t *st, void *ud, kw_err_t *err)
{
    const denied_tx_t *t = ud;
    const kw_req_t *rq = t->rq;
    json_t *d = json_pack("{s:s, s:s, s:i, s:s}", "method", rq->method, "route", t->route, "status",
                          t->status, "client", t->client ? t->client : "");
    return kw_audit_append(st, rq->principal[0] ? rq->principal : "anonymous", "admin.request",
                           t->target, "denied", d, rq->now, err);
}

void kw_api_audit_denied(kw_server_t *s, kw_req_t *rq, const char *route, int status,
                         const char *client)
{
    kw_err_t e = {0};
    const char *target = NULL;
    /* Captures are caller-controlled (someone may paste a key into a path): keep one only
     * when it is an id keyward hands out. */
    if (rq->caps[0] && (kw_id_valid("cred", rq->caps[0]) || kw_id_valid("key", rq->caps[0]) ||
                        kw_id_valid("ren", rq->caps[0])))
        target = rq->caps[0];
    denied_tx_t t = {
        .rq = rq, .route = route, .status = status, .client = client, .target = target};
    int rc = kw_lc_tx(&s->lc, denied_run, NULL, &t, &e);
    if (rc)
        kw_log(KW_LOG_ERROR, "refused request not audited", "{s:s, s:s}", "route", route, "error",
               e.msg);
}

static json_t *rec_json(const kw_audit_rec_t *r)
{
    char h[2 * KW_AUDIT_HASH_LEN + 1], p[2 * KW_AUDIT_HASH_LEN + 1];
    json_t *d = r->detail ? json_loads(r->detail, 0, NULL) : NULL;
    kw_audit_hex(r->hash, h);
    kw_audit_hex(r->prev_hash, p);
    return json_pack("{s:I, s:o, s:s, s:s, s:o, s:s, s:o, s:o, s:s}", "seq", (json_int_t)r->seq,
                     "at", kw_json_time(r->at), "actor", r->actor, "action", r->action, "target",
                     r->target[0] ? json_string(r->target) : json_null(), "outcome", r->outcome,
                     "detail", d ? d : json_null(), "prev_hash",
                     r->has_prev ? json_string(p) : json_null(), "hash", h);
}

static int query_str(kw_req_t *rq, kw_resp_t *rs, const char *name, const char **out)
{
    const char *v = kw_req_query(rq, name);
    *out = NULL;
    if (v == NULL)
        return 0;
    if (*v == '\0' || strlen(v) >= KW_AUDIT_FIELD_MAX) {
        kw_resp_error(rs, KW_EINVAL, name, "%s must be 1 to %d characters", name,
                      KW_AUDIT_FIELD_MAX - 1);
        return -1;
    }
    *out = v;
    return 0;
}

static int query_int(kw_req_t *rq, kw_resp_t *rs, const char *name, long long lo, long long hi,
                     long long *out)
{
    const char *v = kw_req_query(rq, name);
    char *end;
    if (v == NULL)
        return 0;
    long long x = strtoll(v, &end, 10);
    if (*v < '0' || *v > '9' || *end != '\0' || x < lo || x > hi) {
        kw_resp_error(rs, KW_EINVAL, name, "%s must be an integer from %lld to %lld", name, lo, hi);
        return -1;
    }
    *out = x;
    return 0;
}

void kw_h_audit_list(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs)
{
    kw_audit_filter_t f = {0};
    kw_audit_rec_t *recs = NULL;
    size_t n = 0;
    long long limit = DEFAULT_LIMIT, cursor = 0;
    kw_err_t e = {0};
    const char *order = kw_req_query(rq, "order");
    if (query_str(rq, rs, "actor", &f.actor) || query_str(rq, rs, "target", &f.target) ||
        query_int(rq, rs, "limit", 1, MAX_LIMIT, &limit) ||
        query_int(rq, rs, "cursor", 1, INT64_MAX, &cursor))
        return;
    if (order && strcmp(order, "asc") != 0 && strcmp(order, "desc") != 0) {
        kw_resp_error(rs, KW_EINVAL, "order",
                      "order must be asc (oldest first) or desc "
                      "(newest first, the default)");
        return;
    }
    f.ascending = order && strcmp(order, "asc") == 0;
    f.cursor = cursor;
    f.limit = (size_t)limit + 1; /* one more tells whether there is a next page */
    if (kw_store_audit_list(s->store, &f, &recs, &n, &e) != 0) {
        kw_log(KW_LOG_ERROR, "audit list failed", "{s:s}", "error", e.msg);
        kw_resp_problem(rs, &e);
        return;
    }
    size_t shown = n > (size_t)limit ? (size_t)limit : n;
    json_t *a = json_array();
    for (size_t i = 0; a && i < shown; i++)
        json_array_append_new(a, rec_json(&recs[i]));
    kw_api_page_seq(rs, a, n > shown, shown ? recs[shown - 1].seq : 0);
    kw_audit_rec_array_free(recs, n);
}

void kw_h_audit_verify(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs)
{
    kw_audit_verdict_t v;
    kw_err_t e = {0};
    if (kw_audit_verify(s->store, &v, &e) != 0) {
        kw_log(KW_LOG_ERROR, "audit verify failed", "{s:s}", "error", e.msg);
        kw_resp_problem(rs, &e);
        return;
    }
    if (!v.ok)
        kw_log(KW_LOG_WARN, "audit trail broken", "{s:I, s:s}", "first_bad",
               (json_int_t)v.first_bad, "reason", v.why ? v.why : "");
    kw_resp_json(rs, 200,
                 json_pack("{s:b, s:I, s:o, s:o, s:o}", "ok", v.ok, "records",
                           (json_int_t)v.records, "first_bad",
                           v.first_bad ? json_integer(v.first_bad) : json_null(), "reason",
                           v.why ? json_string(v.why) : json_null(), "head",
                           v.head[0] ? json_string(v.head) : json_null()));
}

/* POST /v1/audit/archive {"before": RFC 3339}: the records before that time (after the whole
 * chain verified; at most ARCHIVE_MAX per call, never the last one) are returned and
 * replaced by a signed checkpoint; the archive itself is audited. */
#define ARCHIVE_MAX 10000

typedef struct archive_tx {
    int64_t before, now;
    const char *actor;
    kw_audit_rec_t *recs; /* outputs, replaced by every run (kw_audit_archive) */
    size_t n;
} archive_tx_t;

static int archive_run(kw_store_t *st, void *ud, kw_err_t *err)
{
    archive_tx_t *t = ud;
    int rc = kw_audit_archive(st, t->before, ARCHIVE_MAX, &t->recs, &t->n, err);
    if (rc == 0 && t->n)
        rc = kw_audit_append(st, t->actor, "audit.archive", NULL, "ok",
                             json_pack("{s:I, s:I, s:I}", "first", (json_int_t)t->recs[0].seq,
                                       "last", (json_int_t)t->recs[t->n - 1].seq, "records",
                                       (json_int_t)t->n),
                             t->now, err);
    return rc;
}

void kw_h_audit_archive(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs)
{
    static const char *const allowed[] = {"before", NULL};
    json_t *b = kw_api_body(rq, rs, allowed);
    if (b == NULL)
        return;
    const char *t = json_string_value(json_object_get(b, "before"));
    int64_t before = 0;
    if (t == NULL || kw_time_parse(t, strlen(t), &before) != 0 || before > rq->now) {
        json_decref(b);
        kw_resp_error(rs, KW_EINVAL, "before",
                      "before must be an RFC 3339 time, not in the future");
        return;
    }
    json_decref(b);
    kw_err_t e = {0};
    kw_audit_rec_t *recs = NULL;
    size_t n = 0;
    archive_tx_t at = {.before = before, .actor = rq->principal, .now = rq->now};
    int rc = kw_lc_tx(&s->lc, archive_run, NULL, &at, &e);
    recs = at.recs;
    n = at.n;
    if (rc) {
        kw_audit_rec_array_free(recs, n);
        kw_resp_problem(rs, &e);
        return;
    }
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        json_array_append_new(a, rec_json(&recs[i]));
    char h[2 * KW_AUDIT_HASH_LEN + 1] = "";
    if (n)
        kw_audit_hex(recs[n - 1].hash, h);
    kw_resp_json(
        rs, 200,
        json_pack("{s:I, s:o, s:o}", "archived", (json_int_t)n, "checkpoint",
                  n ? json_pack("{s:I, s:s}", "seq", (json_int_t)recs[n - 1].seq, "hash", h)
                    : json_null(),
                  "records", a ? a : json_array()));
    if (n)
        kw_log(KW_LOG_INFO, "audit records archived", "{s:I, s:I}", "records", (json_int_t)n,
               "checkpoint", (json_int_t)recs[n - 1].seq);
    kw_audit_rec_array_free(recs, n);
}
