/* api.c - routing, admin authentication (SPEC §8), request bodies and renderers.
 * Must not: put a presented key into any log or error message. */
#include "api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/duration.h"
#include "core/key.h"
#include "core/util.h"
#include "log.h"

typedef void (*handler_fn)(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs);

typedef struct route {
    const char *method;
    const char *pattern; /* '/'-separated; "*" matches one segment and is captured */
    unsigned need;       /* roles, any of which suffices; KW_NEED_OPEN = no admin key */
    handler_fn fn;
} route_t;

static void h_health(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs)
{
    kw_resp_json(rs, 200, json_pack("{s:s}", "status", "ok"));
}

static void h_ready(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs)
{
    if (!s->ready) {
        kw_resp_error(rs, KW_ESTORE, NULL, "starting");
        return;
    }
    kw_resp_json(rs, 200, json_pack("{s:s, s:I}", "status", "ok", "keys",
                                    (json_int_t)kw_index_count(s->index)));
}

static const route_t routes[] = {
    {"GET", "healthz", KW_NEED_OPEN, h_health},
    {"GET", "readyz", KW_NEED_OPEN, h_ready},
    {"POST", "v1/keys/verify", KW_NEED_OPEN, kw_h_verify},
    {"GET", "v1/auth", KW_NEED_OPEN, kw_h_auth},
    {"POST", "v1/credentials", KW_NEED_CRED_WRITE, kw_h_cred_create},
    {"GET", "v1/credentials", KW_NEED_READ, kw_h_cred_list},
    {"GET", "v1/credentials/*", KW_NEED_READ, kw_h_cred_get},
    {"PATCH", "v1/credentials/*", KW_NEED_CRED_WRITE, kw_h_cred_patch},
    {"DELETE", "v1/credentials/*", KW_NEED_CRED_WRITE, kw_h_cred_delete},
    {"POST", "v1/credentials/*/keys", KW_NEED_CRED_WRITE, kw_h_key_new},
    {"GET", "v1/keys/*", KW_NEED_READ, kw_h_key_get},
    {"POST", "v1/keys/*/roll", KW_NEED_CRED_WRITE, kw_h_key_roll},
    {"POST", "v1/keys/*/invalidate", KW_NEED_CRED_WRITE, kw_h_key_invalidate},
    {"GET", "v1/expiring", KW_NEED_READ, kw_h_expiring},
    {"GET", "v1/policies", KW_NEED_READ, kw_h_policy_list},
    {"POST", "v1/policies", KW_NEED_ADMIN, kw_h_policy_create},
    {"GET", "v1/policies/*", KW_NEED_READ, kw_h_policy_get},
    {"PATCH", "v1/policies/*", KW_NEED_ADMIN, kw_h_policy_patch},
};

/* Split rq->path into segments (no empty ones). Returns 0, or -1 if too many. */
static int split_path(kw_req_t *rq)
{
    rq->path_copy = strdup(rq->path ? rq->path : "/");
    if (rq->path_copy == NULL)
        return -1;
    char *save = NULL;
    for (char *t = strtok_r(rq->path_copy, "/", &save); t; t = strtok_r(NULL, "/", &save)) {
        if (rq->nsegs == KW_HTTP_MAX_SEGS)
            return -1;
        rq->segs[rq->nsegs++] = t;
    }
    return 0;
}

static int match(const char *pattern, kw_req_t *rq)
{
    char pat[64];
    const char *segs[KW_HTTP_MAX_SEGS];
    size_t n = 0, ncap = 0;
    snprintf(pat, sizeof(pat), "%s", pattern);
    char *save = NULL;
    for (char *t = strtok_r(pat, "/", &save); t && n < KW_HTTP_MAX_SEGS;
         t = strtok_r(NULL, "/", &save))
        segs[n++] = t;
    if (n != rq->nsegs)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(segs[i], "*") == 0) {
            if (ncap < 4)
                rq->caps[ncap++] = rq->segs[i];
        } else if (strcmp(segs[i], rq->segs[i]) != 0) {
            return 0;
        }
    }
    return 1;
}

unsigned kw_api_roles(const kw_icred_t *c)
{
    unsigned r = 0;
    for (size_t i = 0; i < c->nscopes; i++) {
        const char *s = c->scopes[i];
        if (strcmp(s, "keyward:admin") == 0)
            r |= KW_ROLE_ADMIN;
        else if (strcmp(s, "keyward:operator") == 0)
            r |= KW_ROLE_OPERATOR;
        else if (strcmp(s, "keyward:approver") == 0)
            r |= KW_ROLE_APPROVER;
        else if (strcmp(s, "keyward:auditor") == 0)
            r |= KW_ROLE_AUDITOR;
        else if (strcmp(s, "keyward:verifier") == 0)
            r |= KW_ROLE_VERIFIER;
    }
    return r;
}

/* The presented admin key: Authorization: Bearer <key>, else X-API-Key. */
static const char *presented_key(kw_req_t *rq, const char *header)
{
    const char *v = kw_req_header(rq, header);
    if (v == NULL)
        return NULL;
    if (strcasecmp(header, "Authorization") == 0) {
        if (strncasecmp(v, "Bearer ", 7) != 0)
            return NULL;
        v += 7;
        while (*v == ' ')
            v++;
    }
    return v;
}

static int authenticate(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs, unsigned need,
                        const char *header)
{
    const char *key = presented_key(rq, header);
    if (key == NULL && strcasecmp(header, "Authorization") == 0)
        key = presented_key(rq, "X-API-Key");
    if (key == NULL || *key == '\0') {
        kw_resp_error(rs, KW_EUNAUTH, NULL,
                      "this endpoint needs an admin-role key (Authorization: Bearer <key>)");
        kw_resp_header(rs, "WWW-Authenticate", "Bearer realm=\"keyward\"");
        return -1;
    }
    kw_verify_req_t vq = {.key = key, .key_len = strlen(key), .now = rq->now};
    kw_verify_res_t vr;
    kw_index_verify(s->index, &vq, &vr);
    if (vr.code != KW_V_VALID && vr.code != KW_V_FORBIDDEN_IP &&
        vr.code != KW_V_FORBIDDEN_SCOPE) {
        char msg[128];
        kw_verify_message(vr.code, NULL, msg, sizeof(msg));
        kw_resp_error(rs, KW_EUNAUTH, NULL, "%s", msg);
        kw_resp_header(rs, "WWW-Authenticate", "Bearer realm=\"keyward\", error=\"invalid_token\"");
        kw_verify_res_release(&vr);
        return -1;
    }
    unsigned roles = kw_api_roles(vr.cred);
    snprintf(rq->principal, sizeof(rq->principal), "%s", vr.cred->id);
    kw_verify_res_release(&vr);
    rq->roles = roles;
    if ((roles & need) == 0) {
        kw_resp_error(rs, KW_EFORBIDDEN, NULL, "principal %s lacks the role this needs (%s)",
                      rq->principal,
                      need == KW_NEED_ADMIN        ? "keyward:admin"
                      : need == KW_NEED_CRED_WRITE ? "keyward:admin or keyward:operator"
                      : need == KW_ROLE_VERIFIER || need == (KW_ROLE_VERIFIER | KW_ROLE_ADMIN)
                          ? "keyward:verifier"
                          : "an admin role");
        return -1;
    }
    return 0;
}

void kw_api_handle(void *ud, kw_req_t *rq, kw_resp_t *rs)
{
    kw_server_t *s = ud;
    const route_t *hit = NULL;
    int path_known = 0;
    char allow[64] = "";

    if (split_path(rq) != 0) {
        kw_resp_error(rs, KW_ENOTFOUND, NULL, "no such path");
        return;
    }
    /* A literal pattern (v1/keys/verify) beats a capture (v1/keys/ *) for the same path. */
    int literal = 0;
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]) && !literal; i++)
        literal = strchr(routes[i].pattern, '*') == NULL && match(routes[i].pattern, rq);
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        if (literal && strchr(routes[i].pattern, '*') != NULL)
            continue;
        if (!match(routes[i].pattern, rq))
            continue;
        path_known = 1;
        if (strcmp(routes[i].method, rq->method) == 0) {
            hit = &routes[i];
            break;
        }
        size_t l = strlen(allow);
        snprintf(allow + l, sizeof(allow) - l, "%s%s", l ? ", " : "", routes[i].method);
    }
    if (hit == NULL) {
        if (path_known) {
            kw_resp_error(rs, KW_EMETHOD, NULL, "%s is not allowed here; use %s", rq->method,
                          allow);
            kw_resp_header(rs, "Allow", allow);
        } else {
            kw_resp_error(rs, KW_ENOTFOUND, NULL, "no such path: %s", rq->path);
        }
        return;
    }
    /* re-run the match so captures belong to the chosen route */
    match(hit->pattern, rq);
    if (hit->need != KW_NEED_OPEN && authenticate(s, rq, rs, hit->need, "Authorization") != 0)
        return;
    if (hit->fn == kw_h_verify || hit->fn == kw_h_auth) {
        if (s->cfg.verify_requires_role &&
            authenticate(s, rq, rs, KW_ROLE_VERIFIER | KW_ROLE_ADMIN, "Keyward-Caller-Key") != 0)
            return;
    }
    if (strncmp(rq->path, "/v1/", 4) == 0)
        kw_resp_header(rs, "Cache-Control", "no-store");
    hit->fn(s, rq, rs);
}

/* ---- bodies ---- */

json_t *kw_api_body(kw_req_t *rq, kw_resp_t *rs, const char *const *allowed)
{
    json_error_t je;
    if (rq->body_len == 0)
        return json_object();
    const char *ct = kw_req_header(rq, "Content-Type");
    if (ct == NULL || strncasecmp(ct, "application/json", 16) != 0 ||
        (ct[16] != '\0' && ct[16] != ';' && ct[16] != ' ')) {
        kw_resp_error(rs, KW_EMEDIA, NULL, "the request body must be application/json");
        return NULL;
    }
    json_t *j = json_loadb(rq->body, rq->body_len, JSON_REJECT_DUPLICATES, &je);
    if (j == NULL) {
        kw_resp_error(rs, KW_EINVAL, NULL, "malformed JSON at line %d, column %d: %s", je.line,
                      je.column, je.text);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        kw_resp_error(rs, KW_EINVAL, NULL, "the request body must be a JSON object");
        return NULL;
    }
    const char *k;
    json_t *v;
    json_object_foreach(j, k, v)
    {
        int ok = 0;
        for (size_t i = 0; allowed && allowed[i] && !ok; i++)
            ok = strcmp(allowed[i], k) == 0;
        if (!ok) {
            char name[48];
            snprintf(name, sizeof(name), "%s", k);
            kw_resp_error(rs, KW_EINVAL, name, "unknown field '%s'", name);
            json_decref(j);
            return NULL;
        }
    }
    return j;
}

/* ---- renderers ---- */

static json_t *jtime(int64_t t)
{
    char ts[KW_TIME_STR_MAX];
    if (t == 0)
        return json_null();
    kw_time_format(t, ts);
    return json_string(ts);
}

json_t *kw_api_key_json(const kw_keyrec_t *k, int64_t now)
{
    return json_pack("{s:s, s:s, s:i, s:s, s:o, s:o, s:s, s:o, s:o, s:o, s:I}", "id", k->id,
                     "credential_id", k->cred_id, "slot", k->slot, "hint", k->hint,
                     "created_at", jtime(k->created_at), "expires_at", jtime(k->expires_at),
                     "state", kw_key_state_name(kw_keyrec_state(k, now)), "revoked_at",
                     jtime(k->revoked_at), "revoke_reason",
                     k->revoked_at ? json_string(k->revoke_reason) : json_null(),
                     "last_used_at", jtime(k->last_used_at), "use_count",
                     (json_int_t)k->use_count);
}

/* Contacts as shown to readers: webhook secrets are never echoed back. */
static json_t *contacts_public(const char *text)
{
    json_t *a = json_loads(text ? text : "[]", 0, NULL);
    if (!json_is_array(a)) {
        json_decref(a);
        return json_array();
    }
    size_t i;
    json_t *c;
    json_array_foreach(a, i, c)
    {
        if (json_object_get(c, "secret")) {
            json_object_del(c, "secret");
            json_object_set_new(c, "has_secret", json_true());
        }
    }
    return a;
}

static json_t *jparse(const char *text, const char *dflt)
{
    json_t *j = json_loads(text ? text : dflt, 0, NULL);
    return j ? j : json_loads(dflt, 0, NULL);
}

json_t *kw_api_cred_json(kw_server_t *srv, const kw_cred_t *c, int64_t now, kw_err_t *err)
{
    kw_keyrec_t *keys = NULL;
    size_t n = 0;
    if (kw_store_key_list_cred(srv->store, c->id, &keys, &n, err) != 0)
        return NULL;
    json_t *ka = json_array();
    for (size_t i = 0; ka && i < n; i++) {
        kw_lc_key_merge_usage(&srv->lc, &keys[i]);
        json_array_append_new(ka, kw_api_key_json(&keys[i], now));
    }
    free(keys);
    json_t *j = json_pack("{s:s, s:s, s:o, s:o, s:o, s:o, s:s, s:s, s:o, s:b, s:o, s:o, s:o}",
                          "id", c->id, "name", c->name ? c->name : "", "owner",
                          c->owner ? json_string(c->owner) : json_null(), "scopes",
                          jparse(c->scopes_json, "[]"), "allowed_cidrs",
                          jparse(c->cidrs_json, "[]"), "metadata",
                          jparse(c->metadata_json, "{}"), "policy", c->policy, "prefix",
                          c->prefix, "contacts", contacts_public(c->contacts_json), "disabled",
                          c->disabled, "created_at", jtime(c->created_at), "updated_at",
                          jtime(c->updated_at), "keys", ka ? ka : json_array());
    if (j == NULL)
        kw_err_set(err, KW_ENOMEM, NULL, "out of memory");
    return j;
}
