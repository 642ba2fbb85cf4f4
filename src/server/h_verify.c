/* h_verify.c - the verification endpoints (SPEC §4): POST /v1/keys/verify (JSON, always
 * 200) and GET /v1/auth (headers only, for nginx auth_request).
 * Must not: echo the presented key anywhere, or touch the store. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api.h"
#include "core/cidr.h"
#include "core/duration.h"
#include "core/util.h"
#include "metrics.h"
#include "oauth.h"

#define MAX_KEY_TEXT KW_TOKEN_MAX /* keys are 66 at most; access tokens longer */

static void warning_text(const kw_verify_res_t *vr, int64_t now, char *out, size_t n)
{
    char when[KW_TIME_STR_MAX], left[KW_DURATION_STR_MAX];
    int64_t secs = vr->expires_at - now;
    kw_time_format(vr->expires_at, when);
    /* whole days when at least one day is left, else hours/minutes/seconds */
    int64_t shown = secs >= 86400  ? secs / 86400 * 86400
                    : secs >= 3600 ? secs / 3600 * 3600
                    : secs >= 60   ? secs / 60 * 60
                                   : secs;
    if (shown < 1)
        shown = 1;
    kw_duration_format(shown, left);
    snprintf(out, n, "API key expires at %s (in %s); roll or renew it before then", when, left);
}

void kw_h_verify(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs)
{
    static const char *const allowed[] = {"key", "scope", "ip", NULL};
    int64_t t0 = kw_metrics_now_ns(); /* verify latency histogram (relaxed atomics only) */
    kw_ip_t ip;
    kw_verify_res_t vr;
    kw_token_info_t ti;
    char msg[256];
    json_t *b = kw_api_body(rq, rs, allowed);
    if (b == NULL)
        return;
    json_t *k = json_object_get(b, "key"), *sc = json_object_get(b, "scope"),
           *ipj = json_object_get(b, "ip");
    if (!json_is_string(k)) {
        kw_resp_error(rs, KW_EINVAL, "key", "key is required and must be a string");
        goto out;
    }
    if (sc && !json_is_null(sc) && (!json_is_string(sc) || json_string_length(sc) > 128)) {
        kw_resp_error(rs, KW_EINVAL, "scope", "scope must be a string of at most 128 characters");
        goto out;
    }
    if (ipj && !json_is_null(ipj) &&
        (!json_is_string(ipj) ||
         kw_ip_parse(json_string_value(ipj), json_string_length(ipj), &ip) != 0)) {
        kw_resp_error(rs, KW_EINVAL, "ip", "ip must be an IPv4 or IPv6 address");
        goto out;
    }
    const char *scope = json_is_string(sc) ? json_string_value(sc) : NULL;
    kw_verify_req_t vq = {
        .key = json_string_value(k),
        .key_len = json_string_length(k) > MAX_KEY_TEXT ? 0 : json_string_length(k),
        .scope = scope,
        .scope_len = scope ? json_string_length(sc) : 0,
        .ip = json_is_string(ipj) ? &ip : NULL,
        .now = rq->now,
    };
    kw_verify_any(kw_oauth_tokens(s), s->index, &vq, &vr, &ti);
    kw_metrics_verify(vr.code, kw_metrics_now_ns() - t0);
    kw_verify_any_message(&vr, &ti, scope, msg, sizeof(msg));
    json_t *r = json_pack("{s:b, s:s, s:s}", "valid", vr.code == KW_V_VALID, "code",
                          kw_verify_code_name(vr.code), "message", msg);
    json_t *warnings = json_array();
    if (r && vr.cred) {
        char ts[KW_TIME_STR_MAX];
        if (ti.is_token) { /* a token: its own expiry unless its key goes first */
            if (vr.expires_at == 0 || ti.exp < vr.expires_at)
                vr.expires_at = ti.exp;
            vr.warn = 0;
            char tid[KW_TOKEN_ID_HEX];
            kw_token_id_hex(ti.c.id, tid);
            json_object_set_new(r, "token_id", json_string(tid));
        }
        kw_time_format(vr.expires_at, ts);
        json_object_set_new(r, "credential_id", json_string(vr.cred->id));
        json_object_set_new(r, "key_id", json_string(vr.key_id));
        json_object_set_new(r, "slot", json_integer(vr.slot));
        if (ti.is_token && ti.c.explicit_scopes) {
            json_t *sa = json_array();
            const char *p = ti.scopes ? ti.scopes : "";
            while (sa && *p) {
                const char *sp = strchr(p, ' ');
                size_t l = sp ? (size_t)(sp - p) : strlen(p);
                json_array_append_new(sa, json_stringn(p, l));
                p += l + (sp != NULL);
            }
            json_object_set_new(r, "scopes", sa);
        } else {
            json_object_set_new(r, "scopes", json_loads(vr.cred->facts->scopes_json, 0, NULL));
        }
        json_object_set_new(r, "expires_at", vr.expires_at ? json_string(ts) : json_null());
        json_object_set_new(r, "expires_in_s",
                            vr.expires_at ? json_integer(vr.expires_at - rq->now) : json_null());
        if (vr.warn && vr.code != KW_V_EXPIRED && vr.code != KW_V_REVOKED) {
            char w[256];
            warning_text(&vr, rq->now, w, sizeof(w));
            json_array_append_new(warnings, json_string(w));
        }
    }
    kw_verify_res_release(&vr);
    if (r)
        json_object_set_new(r, "warnings", warnings);
    else
        json_decref(warnings);
    kw_resp_json(rs, 200, r);
out:
    json_decref(b);
}

/* The scope as it may be echoed inside a quoted-string header parameter: printable ASCII
 * only, no '"' or '\\' (each other byte becomes '?'), at most 128 characters. The scope
 * comes from the request, so unfiltered it could close the quoted-string and forge
 * parameters in WWW-Authenticate. */
static const char *header_safe_scope(const char *in, char *out, size_t n)
{
    size_t j = 0;
    if (in == NULL)
        return NULL;
    for (size_t i = 0; in[i] && j + 1 < n && i < 128; i++) {
        unsigned char c = (unsigned char)in[i];
        out[j++] = (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') ? '?' : (char)c;
    }
    out[j] = '\0';
    return out;
}

#define NO_KEY_MSG "Authentication failed: no API key (Authorization: Bearer or X-API-Key)"

/* Header values are ASCII (RFC 9110 §5.5): the en dash of the EXPIRED message becomes
 * '-', any other non-ASCII character '?'. The JSON body keeps the message as written. */
static void header_ascii(char *m)
{
    size_t j = 0;
    for (size_t i = 0; m[i]; i++) {
        unsigned char c = (unsigned char)m[i];
        if (c < 0x80) {
            m[j++] = (char)c;
            continue;
        }
        int dash = c == 0xE2 && (unsigned char)m[i + 1] == 0x80 &&
                   ((unsigned char)m[i + 2] == 0x93 || (unsigned char)m[i + 2] == 0x94);
        while ((m[i + 1] & 0xC0) == 0x80) /* skip the continuation bytes */
            i++;
        m[j++] = dash ? '-' : '?';
    }
    m[j] = '\0';
}

void kw_h_auth(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs)
{
    char safe_scope[132];
    int64_t t0 = kw_metrics_now_ns();
    kw_verify_res_t vr;
    kw_token_info_t ti;
    kw_ip_t ip;
    int have_ip = 0;
    char msg[256], hdr[512];
    const char *key = kw_api_request_key(rq);
    const char *scope = kw_req_header(rq, "X-Keyward-Scope");
    if (s->cfg.trusted_ip_header[0]) {
        const char *a = kw_req_header(rq, s->cfg.trusted_ip_header);
        if (a) {
            /* X-Forwarded-For style lists: the last hop appended by the trusted proxy */
            const char *last = strrchr(a, ',');
            last = last ? last + 1 : a;
            while (*last == ' ')
                last++;
            have_ip = kw_ip_parse(last, strlen(last), &ip) == 0;
        }
    }
    size_t klen = key ? strlen(key) : 0;
    kw_verify_req_t vq = {.key = key ? key : "",
                          .key_len = klen > MAX_KEY_TEXT ? 0 : klen,
                          .scope = scope,
                          .scope_len = scope ? strlen(scope) : 0,
                          .ip = have_ip ? &ip : NULL,
                          .now = rq->now};
    kw_verify_any(kw_oauth_tokens(s), s->index, &vq, &vr, &ti);
    kw_metrics_verify(vr.code, kw_metrics_now_ns() - t0);
    rs->status = vr.code == KW_V_VALID ? 204 : kw_verify_http_status(vr.code);
    kw_resp_header(rs, "Keyward-Code", kw_verify_code_name(vr.code));
    if (vr.code == KW_V_VALID) {
        kw_resp_header(rs, "Keyward-Credential", vr.cred->id);
        kw_resp_header(rs, "Keyward-Key", vr.key_id);
        kw_resp_header(rs, "Keyward-Scopes",
                       ti.is_token && ti.c.explicit_scopes ? (ti.scopes ? ti.scopes : "")
                                                           : vr.cred->facts->scopes_hdr);
        if (ti.is_token) { /* a token: its own expiry unless its key goes first; no Sunset */
            if (vr.expires_at == 0 || ti.exp < vr.expires_at)
                vr.expires_at = ti.exp;
            vr.warn = 0;
        }
        if (vr.expires_at) {
            char ts[KW_TIME_STR_MAX];
            kw_time_format(vr.expires_at, ts);
            kw_resp_header(rs, "Keyward-Expires", ts);
            if (vr.warn) {
                kw_time_format_http(vr.expires_at, ts);
                kw_resp_header(rs, "Sunset", ts);
            }
        }
    } else if (klen == 0) {
        /* RFC 6750 §3.1: a request without credentials gets a bare challenge, no error code */
        kw_resp_error(rs, KW_EUNAUTH, NULL, "%s", NO_KEY_MSG);
        kw_resp_header(rs, "WWW-Authenticate", "Bearer");
        kw_resp_header(rs, "Keyward-Message", NO_KEY_MSG);
    } else {
        /* the SPEC messages hold no quote or backslash, and the scope is made safe */
        kw_verify_any_message(&vr, &ti, header_safe_scope(scope, safe_scope, sizeof(safe_scope)),
                              msg, sizeof(msg));
        kw_resp_error(rs, rs->status == 403 ? KW_EFORBIDDEN : KW_EUNAUTH, NULL, "%s", msg);
        header_ascii(msg);
        snprintf(hdr, sizeof(hdr), "Bearer error=\"invalid_token\", error_description=\"%s\"", msg);
        if (vr.code == KW_V_FORBIDDEN_SCOPE)
            snprintf(hdr, sizeof(hdr),
                     "Bearer error=\"insufficient_scope\", error_description=\"%s\"", msg);
        kw_resp_header(rs, "WWW-Authenticate", hdr);
        kw_resp_header(rs, "Keyward-Message", msg);
    }
    kw_verify_res_release(&vr);
}
