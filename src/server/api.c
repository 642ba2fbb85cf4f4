/* api.c - routing, admin authentication (SPEC §8), request bodies and renderers.
 * Must not: put a presented key into any log or error message. */
#include "api.h"
#include "follow.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "console.h"
#include "core/duration.h"
#include "core/key.h"
#include "core/jdump.h"
#include "core/util.h"
#include "log.h"
#include "metrics.h"
#include "oauth.h"
#include "ratelimit.h"
#include "watched.h"

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
    if (!kw_follow_healthy(s->follow)) { /* verification still answers from memory */
        kw_resp_json(rs, 200,
                     json_pack("{s:s, s:s, s:I}", "status", "degraded", "store", "unreachable",
                               "keys", (json_int_t)kw_index_count(s->index)));
        return;
    }
    kw_resp_json(
        rs, 200,
        json_pack("{s:s, s:I}", "status", "ok", "keys", (json_int_t)kw_index_count(s->index)));
}

static const route_t routes[] = {
    {"GET", "healthz", KW_NEED_OPEN, h_health},
    {"GET", "readyz", KW_NEED_OPEN, h_ready},
    {"GET", "metrics", KW_NEED_OPEN, kw_h_metrics},
    {"GET", "v1/events", KW_NEED_READ, kw_h_event_list},
    {"GET", "v1/events/*", KW_NEED_READ, kw_h_event_get},
    {"POST", "v1/events/*/retry", KW_NEED_CRED_WRITE, kw_h_event_retry},
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
    {"POST", "v1/keys/*/renew", KW_NEED_RENEW, kw_h_key_renew},
    {"GET", "v1/renewals", KW_NEED_READ, kw_h_renewal_list},
    {"GET", "v1/renewals/*", KW_NEED_READ, kw_h_renewal_get},
    {"POST", "v1/renewals/*/approve", KW_NEED_DECIDE, kw_h_renewal_approve},
    {"POST", "v1/renewals/*/reject", KW_NEED_DECIDE, kw_h_renewal_reject},
    {"GET", "v1/audit", KW_NEED_AUDIT, kw_h_audit_list},
    {"GET", "v1/audit/verify", KW_NEED_AUDIT, kw_h_audit_verify},
    /* opkit: the OpenAPI document (docs/openapi.yaml) */
    {"GET", "v1/openapi.json", KW_NEED_OPEN, kw_h_openapi},
    /* oauth: SPEC §13 (h_oauth.c) */
    {"POST", "oauth2/token", KW_NEED_OPEN, kw_h_oauth_token},
    {"POST", "oauth2/introspect", KW_ROLE_VERIFIER | KW_ROLE_ADMIN, kw_h_oauth_introspect},
    {"POST", "oauth2/revoke", KW_NEED_OPEN, kw_h_oauth_revoke},
    {"GET", ".well-known/oauth-authorization-server", KW_NEED_OPEN, kw_h_oauth_metadata},
    /* console (SPEC §11): assets and sessions; console.c */
    {"GET", "console", KW_NEED_OPEN, kw_h_console_asset},
    {"GET", "console/*", KW_NEED_OPEN, kw_h_console_asset},
    {"GET", "console/api/session", KW_NEED_OPEN, kw_h_console_whoami},
    {"POST", "console/api/session", KW_NEED_READ, kw_h_console_signin},
    {"DELETE", "console/api/session", KW_NEED_OPEN, kw_h_console_signout},
    {"POST", "v1/audit/archive", KW_NEED_ADMIN, kw_h_audit_archive}, /* security */
    /* watched credentials (SPEC §12; h_watched.c). /token checks its own scope. */
    {"POST", "v1/watched", KW_NEED_CRED_WRITE, kw_h_watched_create},
    {"GET", "v1/watched", KW_NEED_READ, kw_h_watched_list},
    {"GET", "v1/watched/*", KW_NEED_READ, kw_h_watched_get},
    {"PATCH", "v1/watched/*", KW_NEED_CRED_WRITE, kw_h_watched_patch},
    {"DELETE", "v1/watched/*", KW_NEED_CRED_WRITE, kw_h_watched_delete},
    {"GET", "v1/watched/*/token", KW_NEED_OPEN, kw_h_watched_token},
    {"POST", "v1/secrets/rotate-key", KW_NEED_ADMIN, kw_h_secrets_rotate},
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

/* speed: the length of the pattern's next segment, *p moved past the '/' before it */
static size_t seg_next(const char **p)
{
    while (**p == '/')
        (*p)++;
    return strcspn(*p, "/");
}

/* Does the request's path match pattern ('/'-separated segments, '*' captures one, into
 * rq->caps in order)? Walks the pattern in place: it runs for every route on every request. */
static int match(const char *pattern, kw_req_t *rq)
{
    size_t n = 0, ncap = 0, len, i = 0;
    for (const char *p = pattern; (len = seg_next(&p)) > 0; p += len)
        n++;
    if (n != rq->nsegs)
        return 0;
    for (const char *p = pattern; (len = seg_next(&p)) > 0; p += len, i++) {
        if (len == 1 && *p == '*') {
            if (ncap < 4)
                rq->caps[ncap++] = rq->segs[i];
        } else if (strncmp(p, rq->segs[i], len) != 0 || rq->segs[i][len] != '\0') {
            return 0;
        }
    }
    return 1;
}

unsigned kw_api_role_of(const char *s)
{
    if (strcmp(s, "keyward:admin") == 0)
        return KW_ROLE_ADMIN;
    if (strcmp(s, "keyward:operator") == 0)
        return KW_ROLE_OPERATOR;
    if (strcmp(s, "keyward:approver") == 0)
        return KW_ROLE_APPROVER;
    if (strcmp(s, "keyward:auditor") == 0)
        return KW_ROLE_AUDITOR;
    if (strcmp(s, "keyward:verifier") == 0)
        return KW_ROLE_VERIFIER;
    return 0;
}

unsigned kw_api_roles(const kw_icred_t *c)
{
    unsigned r = 0;
    for (size_t i = 0; i < c->facts->nscopes; i++)
        r |= kw_api_role_of(c->facts->scopes[i]);
    return r;
}

const char *kw_api_request_key(kw_req_t *rq)
{
    const char *v = kw_req_header(rq, "Authorization");
    if (v && strncasecmp(v, "Bearer ", 7) == 0) {
        v += 7;
        while (*v == ' ')
            v++;
        return v;
    }
    return kw_req_header(rq, "X-API-Key");
}

int kw_api_query_limit(kw_req_t *rq, kw_resp_t *rs, size_t dflt, size_t max, size_t *out)
{
    const char *l = kw_req_query(rq, "limit");
    *out = dflt;
    if (l == NULL)
        return 0;
    char *end;
    long v = strtol(l, &end, 10);
    if (*l == '\0' || *end != '\0' || v < 1 || (size_t)v > max) {
        kw_resp_error(rs, KW_EINVAL, "limit", "limit must be an integer from 1 to %zu", max);
        return -1;
    }
    *out = (size_t)v;
    return 0;
}

void kw_api_page(kw_resp_t *rs, json_t *items, const char *next)
{
    kw_resp_json(rs, 200,
                 json_pack("{s:o, s:o}", "items", items ? items : json_array(), "next",
                           next && next[0] ? json_string(next) : json_null()));
}

void kw_api_page_seq(kw_resp_t *rs, json_t *items, int more, int64_t seq)
{
    char next[24];
    snprintf(next, sizeof(next), "%lld", (long long)seq);
    kw_api_page(rs, items, more ? next : NULL);
}

/* The address failed authentications are counted against: the trusted proxy's header
 * (its last hop) when configured and present, else the peer. */
static const char *client_addr(kw_server_t *s, kw_req_t *rq, char *buf, size_t len)
{
    const char *a =
        s->cfg.trusted_ip_header[0] ? kw_req_header(rq, s->cfg.trusted_ip_header) : NULL;
    if (a) {
        const char *last = strrchr(a, ',');
        last = last ? last + 1 : a;
        while (*last == ' ')
            last++;
        snprintf(buf, len, "%s", last);
        return buf;
    }
    return kw_req_peer(rq, buf, len);
}

static int authenticate(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs, unsigned need,
                        const char *header)
{
    char addr[64] = "";
    if (s->authrl) {
        int64_t wait =
            kw_rl_check(s->authrl, client_addr(s, rq, addr, sizeof(addr)), kw_rl_now_ms());
        if (wait > 0) {
            char ra[24];
            snprintf(ra, sizeof(ra), "%lld", (long long)wait);
            kw_resp_error(rs, KW_ERATE, NULL,
                          "too many failed authentications from this address; retry in %lld s",
                          (long long)wait);
            kw_resp_header(rs, "Retry-After", ra);
            return -1;
        }
    }
    const char *key = strcasecmp(header, "Authorization") == 0 ? kw_api_request_key(rq)
                                                               : kw_req_header(rq, header);
    unsigned roles;
    /* console: a browser signed in presents its session cookie instead of a key */
    if ((key == NULL || *key == '\0') && strcasecmp(header, "Authorization") == 0 &&
        kw_console_has_session(s, rq)) {
        if (kw_console_auth(s, rq, rs) != 0)
            return -1;
        roles = rq->roles;
        goto check;
    }
    if (key == NULL || *key == '\0') {
        kw_resp_error(rs, KW_EUNAUTH, NULL,
                      "this endpoint needs an admin-role key (Authorization: Bearer <key>)");
        kw_resp_header(rs, "WWW-Authenticate", "Bearer realm=\"keyward\"");
        kw_rl_fail(s->authrl, addr, kw_rl_now_ms());
        return -1;
    }
    kw_verify_req_t vq = {.key = key, .key_len = strlen(key), .now = rq->now};
    kw_verify_res_t vr;
    kw_index_verify(s->index, &vq, &vr);
    if (vr.code != KW_V_VALID && vr.code != KW_V_FORBIDDEN_IP && vr.code != KW_V_FORBIDDEN_SCOPE) {
        char msg[128];
        kw_verify_message(vr.code, NULL, msg, sizeof(msg));
        kw_resp_error(rs, KW_EUNAUTH, NULL, "%s", msg);
        kw_resp_header(rs, "WWW-Authenticate", "Bearer realm=\"keyward\", error=\"invalid_token\"");
        if (vr.cred) /* a known but unusable key: the audit trail names whose it was */
            snprintf(rq->principal, sizeof(rq->principal), "%s", vr.cred->id);
        kw_verify_res_release(&vr);
        kw_rl_fail(s->authrl, addr, kw_rl_now_ms());
        return -1;
    }
    roles = kw_api_roles(vr.cred);
    snprintf(rq->principal, sizeof(rq->principal), "%s", vr.cred->id);
    kw_verify_res_release(&vr);
    rq->roles = roles;
check:
    if ((roles & need) == 0) {
        static const char *const names[] = {"keyward:admin", "keyward:operator", "keyward:approver",
                                            "keyward:auditor", "keyward:verifier"};
        char want[128] = "";
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
            size_t l = strlen(want);
            if (need & (1u << i))
                snprintf(want + l, sizeof(want) - l, "%s%s", l ? " or " : "", names[i]);
        }
        kw_resp_error(rs, KW_EFORBIDDEN, NULL, "principal %s lacks the role this needs (%s)",
                      rq->principal, want);
        return -1;
    }
    return 0;
}

const char *kw_api_echo(const char *in, char *out, size_t n)
{
    size_t o = 0, run = 0;
    const char *p = in;
    for (; *p && o + 4 < n && p - in < 200; p++) {
        int alnum =
            (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z');
        run = alnum ? run + 1 : 0;
        if (run == KW_API_ECHO_RUN) { /* looks like a secret: drop the run, say so */
            o -= KW_API_ECHO_RUN - 1;
            memcpy(out + o, "...", 3);
            o += 3;
            while (p[1] && ((p[1] >= '0' && p[1] <= '9') || (p[1] >= 'a' && p[1] <= 'z') ||
                            (p[1] >= 'A' && p[1] <= 'Z')))
                p++;
            run = 0;
            continue;
        }
        out[o++] = *p;
    }
    if (*p && run >= 8) { /* cut short inside a run: do not show its start either */
        o -= run;
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
    return out;
}

/* The verification routes, from the router or the gateway fast path alike. */
static void verify_route(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs, handler_fn fn)
{
    if (s->cfg.verify_requires_role &&
        authenticate(s, rq, rs, KW_ROLE_VERIFIER | KW_ROLE_ADMIN, "Keyward-Caller-Key") != 0)
        return;
    kw_resp_header(rs, "Cache-Control", "no-store");
    fn(s, rq, rs);
}

static void api_handle(void *ud, kw_req_t *rq, kw_resp_t *rs);

void kw_api_handle(void *ud, kw_req_t *rq, kw_resp_t *rs)
{
    api_handle(ud, rq, rs);
    kw_console_headers(rs); /* SPEC §11: CSP and frame denial on every answer */
}

static void api_handle(void *ud, kw_req_t *rq, kw_resp_t *rs)
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
            char m[40];
            kw_resp_error(rs, KW_EMETHOD, NULL, "%s is not allowed here; use %s",
                          kw_api_echo(rq->method, m, sizeof(m)), allow);
            kw_resp_header(rs, "Allow", allow);
        } else {
            char echo[128];
            kw_resp_error(rs, KW_ENOTFOUND, NULL, "no such path: %s",
                          kw_api_echo(rq->path, echo, sizeof(echo)));
        }
        return;
    }
    /* re-run the match so captures belong to the chosen route */
    match(hit->pattern, rq);
    if (hit->need != KW_NEED_OPEN && authenticate(s, rq, rs, hit->need, "Authorization") != 0) {
        if (rs->status == 401 || rs->status == 403) { /* SPEC §7: refusals are audited too */
            char addr[64] = "";
            kw_api_audit_denied(s, rq, hit->pattern, rs->status,
                                client_addr(s, rq, addr, sizeof(addr)));
        }
        return;
    }
    if (hit->fn == kw_h_verify || hit->fn == kw_h_auth) {
        verify_route(s, rq, rs, hit->fn);
        return;
    }
    if (strncmp(rq->path, "/v1/", 4) == 0)
        kw_resp_header(rs, "Cache-Control", "no-store");
    hit->fn(s, rq, rs);
}

const char *kw_api_client_addr(kw_server_t *s, kw_req_t *rq, char *buf, size_t len)
{
    return client_addr(s, rq, buf, len);
}

void kw_api_gateway(void *ud, kw_req_t *rq, kw_resp_t *rs)
{
    if (strcmp(rq->path, "/oauth2/token") == 0) { /* oauth: no store access, never blocks */
        kw_h_oauth_token(ud, rq, rs);
        return;
    }
    verify_route(ud, rq, rs, strcmp(rq->path, "/v1/auth") == 0 ? kw_h_auth : kw_h_verify);
}

/* ---- bodies ---- */

/* Deepest nesting of arrays/objects in JSON text (strings skipped), counting no further
 * than limit + 1: checked before parsing, so a deep document costs one linear scan and
 * never reaches jansson's recursion (whose own limit is 2048). */
static int json_depth(const char *p, size_t n, int limit)
{
    int depth = 0, max = 0, in_str = 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = 0;
        } else if (c == '"') {
            in_str = 1;
        } else if (c == '[' || c == '{') {
            if (++depth > max && (max = depth) > limit)
                return max;
        } else if (c == ']' || c == '}') {
            depth--;
        }
    }
    return max;
}

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
    if (json_depth(rq->body, rq->body_len, KW_API_JSON_MAX_DEPTH) > KW_API_JSON_MAX_DEPTH) {
        kw_resp_error(rs, KW_EINVAL, NULL, "JSON nested deeper than %d levels",
                      KW_API_JSON_MAX_DEPTH);
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

json_t *kw_api_key_json(const kw_keyrec_t *k, int64_t now)
{
    return json_pack("{s:s, s:s, s:i, s:s, s:o, s:o, s:s, s:o, s:o, s:o, s:I}", "id", k->id,
                     "credential_id", k->cred_id, "slot", k->slot, "hint", k->hint, "created_at",
                     kw_json_time(k->created_at), "expires_at", kw_json_time(k->expires_at),
                     "state", kw_key_state_name(kw_keyrec_state(k, now)), "revoked_at",
                     kw_json_time(k->revoked_at), "revoke_reason",
                     k->revoked_at ? json_string(k->revoke_reason) : json_null(), "last_used_at",
                     kw_json_time(k->last_used_at), "use_count", (json_int_t)k->use_count);
}

/* speed: the empty forms most stored lists and maps hold, without the parser (~1.7 k
 * instructions each); the same value json_loads gives. NULL for any other text. */
static json_t *jempty(const char *text)
{
    return strcmp(text, "[]") == 0 ? json_array() : strcmp(text, "{}") == 0 ? json_object() : NULL;
}

json_t *kw_api_contacts_public(const char *text)
{
    if (text == NULL || strcmp(text, "[]") == 0) /* speed: no contacts, no parse */
        return json_array();
    json_t *a = json_loads(text, 0, NULL);
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
    json_t *j = jempty(text ? text : dflt);
    if (j)
        return j;
    j = json_loads(text ? text : dflt, 0, NULL);
    return j ? j : json_loads(dflt, 0, NULL);
}

json_t *kw_api_cred_json(kw_server_t *srv, const kw_cred_t *c, int64_t now, kw_err_t *err)
{
    kw_keyrec_t *keys = NULL;
    size_t n = 0;
    if (kw_store_key_list_cred(srv->store, c->id, &keys, &n, err) != 0)
        return NULL;
    json_t *j = kw_api_cred_json_keys(srv, c, keys, n, now, err);
    free(keys);
    return j;
}

json_t *kw_api_cred_json_keys(kw_server_t *srv, const kw_cred_t *c, kw_keyrec_t *keys, size_t n,
                              int64_t now, kw_err_t *err)
{
    json_t *ka = json_array();
    for (size_t i = 0; ka && i < n; i++) {
        kw_lc_key_merge_usage(&srv->lc, &keys[i]);
        json_array_append_new(ka, kw_api_key_json(&keys[i], now));
    }
    json_t *j = json_pack(
        "{s:s, s:s, s:o, s:o, s:o, s:o, s:s, s:s, s:o, s:b, s:o, s:o, s:o}", "id", c->id, "name",
        c->name ? c->name : "", "owner", c->owner ? json_string(c->owner) : json_null(), "scopes",
        jparse(c->scopes_json, "[]"), "allowed_cidrs", jparse(c->cidrs_json, "[]"), "metadata",
        jparse(c->metadata_json, "{}"), "policy", c->policy, "prefix", c->prefix, "contacts",
        kw_api_contacts_public(c->contacts_json), "disabled", c->disabled, "created_at",
        kw_json_time(c->created_at), "updated_at", kw_json_time(c->updated_at), "keys",
        ka ? ka : json_array());
    if (j == NULL)
        kw_err_set(err, KW_ENOMEM, NULL, "out of memory");
    return j;
}
