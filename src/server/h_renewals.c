/* h_renewals.c - renewing keys and deciding renewal requests over HTTP (SPEC §5):
 * POST /v1/keys/{id}/renew, GET /v1/renewals[/{id}], POST /v1/renewals/{id}/approve|reject.
 * Shapes are checked here (naming the bad field); the rules live in core/renewal.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "core/duration.h"
#include "core/renewal.h"
#include "core/jdump.h"
#include "core/util.h"
#include "h_common.h"
#include "log.h"

#define MAX_TEXT 200

static json_t *jtext(const char *s)
{
    return s && *s ? json_string(s) : json_null();
}

static json_t *renewal_json(const kw_renewal_t *r)
{
    char d[KW_DURATION_STR_MAX];
    if (r->extend_by)
        kw_duration_format(r->extend_by, d);
    return json_pack("{s:s, s:s, s:s, s:o, s:o, s:o, s:s, s:o, s:o, s:o, s:o}", "id", r->id,
                     "key_id", r->key_id, "requested_by", r->requested_by, "extend_by",
                     r->extend_by ? json_string(d) : json_null(), "expires_at",
                     kw_json_time(r->expires_at), "reason", jtext(r->reason), "state", r->state,
                     "decided_by", jtext(r->decided_by), "decided_at", kw_json_time(r->decided_at),
                     "note", jtext(r->note), "created_at", kw_json_time(r->created_at));
}

/* Optional printable text field of at most MAX_TEXT characters; *out NULL when absent. */
static int text_field(json_t *b, const char *name, const char **out, kw_resp_t *rs)
{
    json_t *v = json_object_get(b, name);
    *out = NULL;
    if (v == NULL || json_is_null(v))
        return 0;
    const char *t = json_string_value(v);
    int ok = t && json_string_length(v) <= MAX_TEXT && strlen(t) == json_string_length(v);
    for (const char *p = t; ok && *p; p++)
        ok = (unsigned char)*p >= 0x20 && *p != 0x7f;
    if (!ok) {
        kw_resp_error(rs, KW_EINVAL, name, "%s must be a string of at most %d printable characters",
                      name, MAX_TEXT);
        return -1;
    }
    *out = t;
    return 0;
}

void kw_h_key_renew(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs)
{
    static const char *const allowed[] = {"extend_by", "expires_at", "reason", NULL};
    kw_renew_in_t in = {0};
    kw_keyrec_t k;
    kw_renewal_t r;
    kw_err_t e = {0};
    int pending = 0, capped = 0;
    if (kw_hc_id(rq, rs, "key", "key"))
        return;
    json_t *b = kw_api_body(rq, rs, allowed);
    if (b == NULL)
        return;
    json_t *x = json_object_get(b, "extend_by"), *a = json_object_get(b, "expires_at");
    if ((x == NULL) == (a == NULL)) {
        kw_resp_error(rs, KW_EINVAL, "extend_by",
                      "give extend_by (a duration like 90d) or expires_at (RFC 3339), one of them");
    } else if (x &&
               (!json_is_string(x) || kw_duration_parse(json_string_value(x), json_string_length(x),
                                                        &in.extend_by) != 0)) {
        kw_resp_error(rs, KW_EINVAL, "extend_by", "extend_by must be a duration like 90d");
    } else if (a &&
               (!json_is_string(a) ||
                kw_time_parse(json_string_value(a), json_string_length(a), &in.expires_at) != 0 ||
                in.expires_at <= 0)) {
        kw_resp_error(rs, KW_EINVAL, "expires_at",
                      "expires_at must be an RFC 3339 time like 2027-01-31T00:00:00Z");
    } else if (text_field(b, "reason", &in.reason, rs) == 0) {
        if (kw_lc_key_renew(&s->lc, rq->principal, rq->caps[0], &in, &k, &r, &pending, &capped,
                            &e) != 0) {
            kw_hc_respond_err(rs, &e, "key", rq->caps[0]);
        } else if (pending) {
            kw_log(KW_LOG_INFO, "renewal requested", "{s:s, s:s}", "renewal", r.id, "key",
                   r.key_id);
            kw_resp_json(rs, 202, json_pack("{s:o}", "renewal", renewal_json(&r)));
        } else {
            kw_log(KW_LOG_INFO, "key renewed", "{s:s, s:s}", "key", k.id, "hint", k.hint);
            kw_lc_key_merge_usage(&s->lc, &k);
            kw_resp_json(
                rs, 200,
                json_pack("{s:o, s:b}", "key", kw_api_key_json(&k, rq->now), "capped", capped));
        }
    }
    json_decref(b);
}

static const char *const states[] = {"pending", "approved", "rejected", "cancelled", NULL};

void kw_h_renewal_list(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs)
{
    kw_renewal_filter_t f = {.state = kw_req_query(rq, "state"),
                             .key_id = kw_req_query(rq, "key_id")};
    const char *l = kw_req_query(rq, "limit"), *cur = kw_req_query(rq, "cursor");
    kw_renewal_t *items = NULL;
    size_t n = 0;
    long long limit = KW_HC_DEFAULT_LIMIT;
    char after_id[KW_ID_MAX] = "";
    kw_err_t e = {0};
    if (f.state && strcmp(f.state, "all") == 0)
        f.state = NULL; /* the CLI's --state all: every state, as without the filter */
    if (f.state) {
        int ok = 0;
        for (size_t i = 0; states[i] && !ok; i++)
            ok = strcmp(states[i], f.state) == 0;
        if (!ok) {
            kw_resp_error(rs, KW_EINVAL, "state",
                          "state must be pending, approved, rejected, cancelled or all");
            return;
        }
    }
    if (f.key_id && !kw_id_valid("key", f.key_id)) {
        kw_resp_error(rs, KW_EINVAL, "key_id", "key_id must be a key id (key_...)");
        return;
    }
    if (l) {
        char *end;
        limit = strtoll(l, &end, 10);
        if (*l < '0' || *l > '9' || *end != '\0' || limit < 1 || limit > KW_HC_MAX_LIMIT) {
            kw_resp_error(rs, KW_EINVAL, "limit", "limit must be an integer from 1 to 1000");
            return;
        }
    }
    if (cur) {
        char *end;
        long long t = strtoll(cur, &end, 10);
        if (*cur < '0' || *cur > '9' || *end != '.' || t <= 0 || !kw_id_valid("ren", end + 1)) {
            kw_resp_error(rs, KW_EINVAL, "cursor", "cursor is not one this server handed out");
            return;
        }
        f.after_created = t;
        snprintf(after_id, sizeof(after_id), "%s", end + 1);
        f.after_id = after_id;
    }
    /* Requests whose key lapsed are cancelled before anyone sees them as pending. */
    if (kw_lc_renewal_sweep(&s->lc, rq->now, &e) != 0) {
        kw_hc_respond_err(rs, &e, "renewals", "");
        return;
    }
    f.limit = (size_t)limit + 1;
    if (kw_store_renewal_list(s->store, &f, &items, &n, &e) != 0) {
        kw_hc_respond_err(rs, &e, "renewals", "");
        return;
    }
    size_t shown = n > (size_t)limit ? (size_t)limit : n;
    json_t *a = json_array();
    for (size_t i = 0; a && i < shown; i++)
        json_array_append_new(a, renewal_json(&items[i]));
    char next[64] = "";
    if (n > shown && shown)
        snprintf(next, sizeof(next), "%lld.%s", (long long)items[shown - 1].created_at,
                 items[shown - 1].id);
    free(items);
    kw_api_page(rs, a, next);
}

void kw_h_renewal_get(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs)
{
    kw_renewal_t r;
    kw_err_t e = {0};
    if (kw_hc_id(rq, rs, "ren", "renewal") == 0)
        kw_hc_answer(rs, 200,
                     kw_lc_renewal_get(&s->lc, rq->caps[0], &r, &e) ? NULL : renewal_json(&r), &e,
                     "renewal", rq->caps[0]);
}

static void decide(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs, int approve)
{
    static const char *const allowed[] = {"note", NULL};
    kw_renewal_t r;
    kw_keyrec_t k;
    kw_err_t e = {0};
    const char *note = NULL;
    if (kw_hc_id(rq, rs, "ren", "renewal"))
        return;
    json_t *b = kw_api_body(rq, rs, allowed);
    if (b == NULL)
        return;
    memset(&k, 0, sizeof(k));
    if (text_field(b, "note", &note, rs) == 0) {
        if (kw_lc_renewal_decide(&s->lc, rq->principal, rq->caps[0], approve, note, &r, &k, &e) !=
            0) {
            kw_hc_respond_err(rs, &e, "renewal", rq->caps[0]);
        } else {
            json_t *j = renewal_json(&r);
            kw_log(KW_LOG_INFO, approve ? "renewal approved" : "renewal rejected",
                   "{s:s, s:s, s:s}", "renewal", r.id, "key", r.key_id, "by", r.decided_by);
            if (j && approve && k.id[0]) {
                kw_lc_key_merge_usage(&s->lc, &k);
                json_object_set_new(j, "key", kw_api_key_json(&k, rq->now));
            }
            kw_resp_json(rs, 200, j);
        }
    }
    json_decref(b);
}

void kw_h_renewal_approve(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs)
{
    decide(s, rq, rs, 1);
}

void kw_h_renewal_reject(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs)
{
    decide(s, rq, rs, 0);
}
