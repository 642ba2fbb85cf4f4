/* h_policies.c - handlers for policies (SPEC §5): list, get, create, patch. Shapes are
 * checked here (naming the bad field); what a policy allows is checked by core/lifecycle.c. */
#include <stddef.h>
#include <stdlib.h>

#include "api.h"
#include "core/duration.h"
#include "h_common.h"

static json_t *policy_json(const kw_policy_t *p)
{
    char a[KW_DURATION_STR_MAX], b[KW_DURATION_STR_MAX], c[KW_DURATION_STR_MAX];
    json_t *th = json_array();
    for (size_t i = 0; th && i < p->nthresholds; i++) {
        char t[KW_DURATION_STR_MAX];
        kw_duration_format(p->thresholds[i], t);
        json_array_append_new(th, json_string(t));
    }
    kw_duration_format(p->default_lifetime, a);
    kw_duration_format(p->max_lifetime, b);
    kw_duration_format(p->max_roll_overlap, c);
    char tl[KW_DURATION_STR_MAX];
    kw_duration_format(p->token_lifetime, tl);
    return json_pack("{s:s, s:s, s:s, s:b, s:b, s:b, s:o, s:s, s:s}", "name", p->name,
                     "default_lifetime", a, "max_lifetime", b, "allow_never_expire",
                     p->allow_never_expire, "renewable", p->renewable, "renewal_requires_approval",
                     p->renewal_requires_approval, "alert_thresholds", th ? th : json_array(),
                     "max_roll_overlap", c, "token_lifetime", tl);
}

void kw_h_policy_list(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs)
{
    kw_policy_t *ps = NULL;
    size_t n = 0;
    kw_err_t e = {0};
    if (kw_store_policy_list(s->store, &ps, &n, &e) != 0) {
        kw_hc_respond_err(rs, &e, "policies", "");
        return;
    }
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        json_array_append_new(a, policy_json(&ps[i]));
    free(ps);
    kw_api_page(rs, a, NULL);
}

/* The policy named by the path: a name no policy can have is unknown (404). */
static int path_name(kw_req_t *rq, kw_resp_t *rs)
{
    if (kw_hc_policy_name(rq->caps[0]))
        return 0;
    kw_resp_error(rs, KW_ENOTFOUND, NULL, "unknown policy");
    return -1;
}

void kw_h_policy_get(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs)
{
    kw_policy_t p;
    kw_err_t e = {0};
    if (path_name(rq, rs))
        return;
    if (kw_store_policy_get(s->store, rq->caps[0], &p, &e) != 0)
        kw_hc_respond_err(rs, &e, "policy", rq->caps[0]);
    else
        kw_resp_json(rs, 200, policy_json(&p));
}

/* Apply the policy fields present in b onto p. */
static int parse_policy(json_t *b, kw_policy_t *p, kw_resp_t *rs)
{
    static const struct {
        const char *name;
        size_t off;
    } durs[] = {{"default_lifetime", offsetof(kw_policy_t, default_lifetime)},
                {"max_lifetime", offsetof(kw_policy_t, max_lifetime)},
                {"max_roll_overlap", offsetof(kw_policy_t, max_roll_overlap)},
                {"token_lifetime", offsetof(kw_policy_t, token_lifetime)}};
    static const struct {
        const char *name;
        size_t off;
    } bools[] = {{"allow_never_expire", offsetof(kw_policy_t, allow_never_expire)},
                 {"renewable", offsetof(kw_policy_t, renewable)},
                 {"renewal_requires_approval", offsetof(kw_policy_t, renewal_requires_approval)}};
    for (size_t i = 0; i < sizeof(durs) / sizeof(durs[0]); i++) {
        json_t *v = json_object_get(b, durs[i].name);
        if (v == NULL)
            continue;
        if (!json_is_string(v) || kw_duration_parse(json_string_value(v), json_string_length(v),
                                                    (int64_t *)((char *)p + durs[i].off)) != 0) {
            kw_resp_error(rs, KW_EINVAL, durs[i].name, "%s must be a duration like 365d",
                          durs[i].name);
            return -1;
        }
    }
    for (size_t i = 0; i < sizeof(bools) / sizeof(bools[0]); i++) {
        json_t *v = json_object_get(b, bools[i].name);
        if (v == NULL)
            continue;
        if (!json_is_boolean(v)) {
            kw_resp_error(rs, KW_EINVAL, bools[i].name, "%s must be true or false", bools[i].name);
            return -1;
        }
        *(int *)((char *)p + bools[i].off) = json_is_true(v);
    }
    json_t *th = json_object_get(b, "alert_thresholds");
    if (th) {
        if (!json_is_array(th) || json_array_size(th) > KW_MAX_THRESHOLDS)
            return kw_hc_fail(rs, KW_EINVAL, "alert_thresholds",
                              "alert_thresholds must be an array of at most 8 durations");
        size_t i;
        json_t *v;
        p->nthresholds = 0;
        json_array_foreach(th, i, v)
        {
            if (!json_is_string(v) || kw_duration_parse(json_string_value(v), json_string_length(v),
                                                        &p->thresholds[i]) != 0)
                return kw_hc_fail(rs, KW_EINVAL, "alert_thresholds",
                                  "alert_thresholds must be durations like 30d");
            p->nthresholds++;
        }
    }
    return 0;
}

static const char *const policy_fields[] = {"name",
                                            "default_lifetime",
                                            "max_lifetime",
                                            "allow_never_expire",
                                            "renewable",
                                            "renewal_requires_approval",
                                            "alert_thresholds",
                                            "max_roll_overlap",
                                            "token_lifetime",
                                            NULL};

void kw_h_policy_create(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs)
{
    kw_policy_t p;
    kw_err_t e = {0};
    const char *name = NULL;
    json_t *b = kw_api_body(rq, rs, policy_fields);
    if (b == NULL)
        return;
    if (kw_hc_str(b, "name", 63, 0, &name, NULL, rs))
        goto out;
    if (name == NULL || !kw_hc_policy_name(name)) {
        kw_hc_fail(rs, KW_EINVAL, "name", "name is required and must match [a-z0-9_-]{1,63}");
        goto out;
    }
    kw_policy_defaults(&p, name);
    if (parse_policy(b, &p, rs))
        goto out;
    p.created_at = p.updated_at = rq->now;
    if (kw_lc_policy_put(&s->lc, rq->principal, &p, 1, &e) != 0)
        kw_hc_respond_err(rs, &e, "policy", name);
    else
        kw_resp_json(rs, 201, policy_json(&p));
out:
    json_decref(b);
}

void kw_h_policy_patch(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs)
{
    kw_policy_t p;
    kw_err_t e = {0};
    if (path_name(rq, rs))
        return;
    json_t *b = kw_api_body(rq, rs, policy_fields + 1); /* the name is the path */
    if (b == NULL)
        return;
    if (kw_store_policy_get(s->store, rq->caps[0], &p, &e) != 0) {
        kw_hc_respond_err(rs, &e, "policy", rq->caps[0]);
    } else if (parse_policy(b, &p, rs) == 0) {
        p.updated_at = rq->now;
        if (kw_lc_policy_put(&s->lc, rq->principal, &p, 0, &e) != 0)
            kw_hc_respond_err(rs, &e, "policy", rq->caps[0]);
        else
            kw_resp_json(rs, 200, policy_json(&p));
    }
    json_decref(b);
}
