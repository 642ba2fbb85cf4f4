/* h_keys.c - handlers for keys (SPEC §5): add a key to a credential, read, roll and
 * invalidate one, and the keys expiring soon (GET /v1/expiring). Shapes are checked here
 * (naming the bad field); the rules live in core/lifecycle.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "core/duration.h"
#include "core/key.h"
#include "h_common.h"
#include "log.h"

static void respond_new_key(kw_resp_t *rs, int64_t now, const kw_keyrec_t *k, char *secret,
                            const kw_keyrec_t *prev)
{
    json_t *r = json_pack("{s:o, s:s}", "key", kw_api_key_json(k, now), "secret", secret);
    kw_wipe(secret, KW_KEY_MAX + 1);
    if (r && prev)
        json_object_set_new(r, "previous", kw_api_key_json(prev, now));
    if (r == NULL)
        kw_resp_error(rs, KW_ENOMEM, NULL, "created %s, but the answer could not be built", k->id);
    else
        kw_resp_json(rs, 201, r);
}

void kw_h_key_new(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs)
{
    static const char *const allowed[] = {"lifetime", "expires_at", NULL};
    kw_expiry_in_t exp;
    kw_keyrec_t k;
    kw_err_t e = {0};
    char secret[KW_KEY_MAX + 1];
    json_t *b = kw_hc_id_body(rq, rs, "cred", "credential", allowed);
    if (b == NULL)
        return;
    if (kw_hc_expiry(b, &exp, rs) == 0) {
        if (kw_lc_key_new(&s->lc, rq->principal, rq->caps[0], &exp, &k, secret, &e) != 0) {
            kw_hc_respond_err(rs, &e, "credential", rq->caps[0]);
        } else {
            kw_log(KW_LOG_INFO, "key created", "{s:s, s:s, s:i}", "key", k.id, "hint", k.hint,
                   "slot", k.slot);
            respond_new_key(rs, rq->now, &k, secret, NULL);
        }
    }
    json_decref(b);
}

void kw_h_key_get(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs)
{
    kw_keyrec_t k;
    kw_err_t e = {0};
    if (kw_hc_id(rq, rs, "key", "key") == 0)
        kw_hc_answer(rs, 200,
                     kw_lc_key_get(&s->lc, rq->caps[0], &k, &e) ? NULL
                                                                : kw_api_key_json(&k, rq->now),
                     &e, "key", rq->caps[0]);
}

void kw_h_key_roll(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs)
{
    static const char *const allowed[] = {"overlap", "lifetime", "expires_at", NULL};
    kw_expiry_in_t exp;
    kw_keyrec_t k, prev;
    kw_err_t e = {0};
    int64_t overlap = 0;
    char secret[KW_KEY_MAX + 1];
    json_t *b = kw_hc_id_body(rq, rs, "key", "key", allowed);
    if (b == NULL)
        return;
    json_t *o = json_object_get(b, "overlap");
    if (o && (!json_is_string(o) ||
              kw_duration_parse(json_string_value(o), json_string_length(o), &overlap) != 0)) {
        kw_hc_fail(rs, KW_EINVAL, "overlap", "overlap must be a duration like 24h");
    } else if (kw_hc_expiry(b, &exp, rs) == 0) {
        if (kw_lc_key_roll(&s->lc, rq->principal, rq->caps[0], overlap, &exp, &k, &prev, secret,
                           &e) != 0) {
            kw_hc_respond_err(rs, &e, "key", rq->caps[0]);
        } else {
            kw_log(KW_LOG_INFO, "key rolled", "{s:s, s:s, s:s}", "key", k.id, "hint", k.hint,
                   "previous", prev.id);
            kw_lc_key_merge_usage(&s->lc, &prev);
            respond_new_key(rs, rq->now, &k, secret, &prev);
        }
    }
    json_decref(b);
}

void kw_h_key_invalidate(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs)
{
    static const char *const allowed[] = {"reason", "unused_for", NULL};
    kw_keyrec_t k;
    kw_err_t e = {0};
    int64_t unused_for = 0;
    const char *reason = NULL;
    json_t *b = kw_hc_id_body(rq, rs, "key", "key", allowed);
    if (b == NULL)
        return;
    json_t *u = json_object_get(b, "unused_for");
    if (kw_hc_str(b, "reason", 200, 1, &reason, NULL, rs) == 0) {
        if (u && (!json_is_string(u) ||
                  kw_duration_parse(json_string_value(u), json_string_length(u), &unused_for))) {
            kw_hc_fail(rs, KW_EINVAL, "unused_for", "unused_for must be a duration like 7d");
        } else if (kw_lc_key_invalidate(&s->lc, rq->principal, rq->caps[0], reason, unused_for, &k,
                                        &e) != 0) {
            kw_hc_respond_err(rs, &e, "key", rq->caps[0]);
        } else {
            kw_log(KW_LOG_INFO, "key invalidated", "{s:s, s:s}", "key", k.id, "hint", k.hint);
            kw_resp_json(rs, 200, kw_api_key_json(&k, rq->now));
        }
    }
    json_decref(b);
}

void kw_h_expiring(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs)
{
    const char *w = kw_req_query(rq, "within"), *cur = kw_req_query(rq, "cursor");
    int64_t within = 30LL * 86400, after_exp = 0, after_seq = 0;
    size_t limit, n = 0;
    kw_keyrec_t *keys = NULL;
    kw_err_t e = {0};
    if (kw_api_query_limit(rq, rs, KW_HC_DEFAULT_LIMIT, KW_HC_MAX_LIMIT, &limit))
        return;
    if (w && kw_duration_parse(w, strlen(w), &within) != 0) {
        kw_hc_fail(rs, KW_EINVAL, "within", "within must be a duration like 30d");
        return;
    }
    if (cur) {
        char buf[64];
        snprintf(buf, sizeof(buf), "%s", cur);
        char *dot = strchr(buf, '.');
        if (dot)
            *dot = '\0';
        if (dot == NULL || kw_hc_i64(buf, &after_exp) || kw_hc_i64(dot + 1, &after_seq)) {
            kw_hc_fail(rs, KW_EINVAL, "cursor", "cursor is not one this server handed out");
            return;
        }
    }
    if (kw_store_key_expiring(s->store, rq->now, rq->now + within, after_exp, after_seq, limit + 1,
                              &keys, &n, &e) != 0) {
        kw_hc_respond_err(rs, &e, "keys", "");
        return;
    }
    size_t shown = n > limit ? limit : n;
    json_t *a = json_array();
    for (size_t i = 0; a && i < shown; i++) {
        kw_cred_t c = {0};
        kw_lc_key_merge_usage(&s->lc, &keys[i]);
        json_t *kj = kw_api_key_json(&keys[i], rq->now);
        if (kj && kw_store_cred_get(s->store, keys[i].cred_id, &c, NULL) == 0)
            json_object_set_new(kj, "credential_name", json_string(c.name ? c.name : ""));
        kw_cred_clear(&c);
        json_array_append_new(a, kj);
    }
    char next[64] = "";
    if (n > shown && shown)
        snprintf(next, sizeof(next), "%lld.%lld", (long long)keys[shown - 1].expires_at,
                 (long long)keys[shown - 1].seq);
    free(keys);
    kw_api_page(rs, a, next);
}
