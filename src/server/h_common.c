/* h_common.c - what the /v1 handlers share: argument shape checks that name the bad
 * field, and the answer to a failed operation (h_common.h). */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "core/duration.h"
#include "core/util.h"
#include "h_common.h"
#include "log.h"

int kw_hc_fail(kw_resp_t *rs, int code, const char *field, const char *msg)
{
    kw_resp_error(rs, code, field, "%s", msg);
    return -1;
}

int kw_hc_printable(const char *s, int allow_space)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == 0x7f || (!allow_space && c == ' '))
            return 0;
    }
    return 1;
}

/* Optional string field: *out = NULL if absent. null is refused unless nullable. */
int kw_hc_str(json_t *b, const char *name, size_t max, int nullable, const char **out, int *present,
              kw_resp_t *rs)
{
    json_t *v = json_object_get(b, name);
    *out = NULL;
    if (present)
        *present = v != NULL;
    if (v == NULL)
        return 0;
    if (json_is_null(v) && nullable)
        return 0;
    if (!json_is_string(v)) {
        kw_resp_error(rs, KW_EINVAL, name, "%s must be a string", name);
        return -1;
    }
    const char *s = json_string_value(v);
    if (json_string_length(v) > max || strlen(s) != json_string_length(v) ||
        !kw_hc_printable(s, 1)) {
        kw_resp_error(rs, KW_EINVAL, name, "%s must be at most %zu printable characters", name,
                      max);
        return -1;
    }
    *out = s;
    return 0;
}

/* lifetime (duration or "never") or expires_at (RFC 3339), not both. */
int kw_hc_expiry(json_t *b, kw_expiry_in_t *e, kw_resp_t *rs)
{
    json_t *l = json_object_get(b, "lifetime"), *a = json_object_get(b, "expires_at");
    e->kind = KW_EXP_DEFAULT;
    if (l && a)
        return kw_hc_fail(rs, KW_EINVAL, "lifetime", "give lifetime or expires_at, not both");
    if (l) {
        const char *s = json_string_value(l);
        if (s == NULL)
            return kw_hc_fail(rs, KW_EINVAL, "lifetime",
                              "lifetime must be a string like \"90d\" or \"never\"");
        if (strcmp(s, "never") == 0) {
            e->kind = KW_EXP_NEVER;
        } else if (kw_duration_parse(s, json_string_length(l), &e->value) == 0) {
            e->kind = KW_EXP_LIFETIME;
        } else {
            return kw_hc_fail(rs, KW_EINVAL, "lifetime",
                              "lifetime is not a duration (use 45s, 90m, 12h, 30d or never)");
        }
    }
    if (a) {
        const char *s = json_string_value(a);
        if (s == NULL || kw_time_parse(s, json_string_length(a), &e->value) != 0)
            return kw_hc_fail(rs, KW_EINVAL, "expires_at",
                              "expires_at must be an RFC 3339 time like 2027-01-31T00:00:00Z");
        e->kind = KW_EXP_AT;
    }
    return 0;
}

int kw_hc_policy_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= KW_NAME_MAX)
        return 0;
    for (; *s; s++)
        if (!(islower((unsigned char)*s) || isdigit((unsigned char)*s) || *s == '-' || *s == '_'))
            return 0;
    return 1;
}

int kw_hc_id(kw_req_t *rq, kw_resp_t *rs, const char *prefix, const char *what)
{
    if (!kw_id_valid(prefix, rq->caps[0])) {
        char echo[72];
        kw_resp_error(rs, KW_ENOTFOUND, NULL, "unknown %s %s", what,
                      kw_api_echo(rq->caps[0], echo, sizeof(echo)));
        return -1;
    }
    return 0;
}

json_t *kw_hc_id_body(kw_req_t *rq, kw_resp_t *rs, const char *prefix, const char *what,
                      const char *const *allowed)
{
    return kw_hc_id(rq, rs, prefix, what) ? NULL : kw_api_body(rq, rs, allowed);
}

int kw_hc_i64(const char *s, int64_t *out)
{
    char *end;
    if (s == NULL || *s < '0' || *s > '9')
        return -1;
    long long v = strtoll(s, &end, 10);
    if (*end != '\0' || v < 0)
        return -1;
    *out = v;
    return 0;
}

int kw_hc_list_query(kw_req_t *rq, kw_resp_t *rs, int64_t now, int64_t *expiring_before,
                     int64_t *after_seq)
{
    const char *ew = kw_req_query(rq, "expiring_within"), *cur = kw_req_query(rq, "cursor");
    if (ew) {
        int64_t d;
        if (kw_duration_parse(ew, strlen(ew), &d) != 0)
            return kw_hc_fail(rs, KW_EINVAL, "expiring_within",
                              "expiring_within must be a duration like 30d");
        *expiring_before = now + d;
    }
    if (cur && kw_hc_i64(cur, after_seq) != 0)
        return kw_hc_fail(rs, KW_EINVAL, "cursor", "cursor is not one this server handed out");
    return 0;
}

void kw_hc_respond_err(kw_resp_t *rs, const kw_err_t *e, const char *what, const char *id)
{
    if (e->code == KW_ENOTFOUND) {
        kw_resp_error(rs, KW_ENOTFOUND, NULL, "unknown %s %s", what, id);
        return;
    }
    if (e->code == KW_ESTORE || e->code == KW_EINTERNAL || e->code == KW_ENOMEM)
        kw_log(KW_LOG_ERROR, "request failed", "{s:s, s:s}", "target", id, "error", e->msg);
    kw_resp_problem(rs, e);
}

void kw_hc_answer(kw_resp_t *rs, int status, json_t *j, const kw_err_t *e, const char *what,
                  const char *id)
{
    if (j)
        kw_resp_json(rs, status, j);
    else if (e->code)
        kw_hc_respond_err(rs, e, what, id);
    else
        kw_resp_error(rs, KW_ENOMEM, NULL, "out of memory");
}
