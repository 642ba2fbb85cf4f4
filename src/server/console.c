/* console.c - the web console (SPEC §11): serves the embedded assets at /console/, signs a
 * browser in with a keyward key and keeps its session in the store (store_session.h), and
 * authenticates /v1 calls made with the session cookie, CSRF token required for changes.
 * Must not: keep or log the key, or the session id (only its SHA-256 is stored). */
#include "console.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/audit.h"
#include "core/util.h"
#include "log.h"
#include "store/store_session.h"

#pragma weak kw_web_assets
#pragma weak kw_web_nassets

#define SID_BYTES 32 /* session id: 256 random bits, 64 hex digits in the cookie */
#define SID_HEX (2 * SID_BYTES)
#define TOUCH_EVERY 60 /* seconds between writes of last_seen_at */

int kw_console_enabled(const kw_server_t *s)
{
    return strcmp(s->cfg.console, "off") != 0;
}

static void hex(const uint8_t *b, size_t n, char *out)
{
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = d[b[i] >> 4];
        out[2 * i + 1] = d[b[i] & 15];
    }
    out[2 * n] = '\0';
}

static int sha256(const char *a, const char *b, uint8_t out[32])
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    unsigned n = 0;
    int ok = c && EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1 &&
             EVP_DigestUpdate(c, a, strlen(a)) == 1 && EVP_DigestUpdate(c, b, strlen(b)) == 1 &&
             EVP_DigestFinal_ex(c, out, &n) == 1 && n == 32;
    EVP_MD_CTX_free(c);
    return ok ? 0 : -1;
}

/* The session id from the Cookie header into sid (SID_HEX + 1 bytes); 0, or -1 if none or
 * malformed. */
static int cookie_sid(kw_req_t *rq, char *sid)
{
    const char *c = kw_req_header(rq, "Cookie");
    static const char name[] = KW_CONSOLE_COOKIE "=";
    for (const char *p = c; p && *p;) {
        while (*p == ' ' || *p == ';')
            p++;
        const char *end = strchr(p, ';');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == sizeof(name) - 1 + SID_HEX && strncmp(p, name, sizeof(name) - 1) == 0) {
            memcpy(sid, p + sizeof(name) - 1, SID_HEX);
            sid[SID_HEX] = '\0';
            for (size_t i = 0; i < SID_HEX; i++)
                if (!((sid[i] >= '0' && sid[i] <= '9') || (sid[i] >= 'a' && sid[i] <= 'f')))
                    return -1;
            return 0;
        }
        p = end;
    }
    return -1;
}

int kw_console_has_session(const kw_server_t *s, kw_req_t *rq)
{
    char sid[SID_HEX + 1];
    int has = kw_console_enabled(s) && cookie_sid(rq, sid) == 0;
    explicit_bzero(sid, sizeof(sid));
    return has;
}

/* The session's digest and CSRF token, both derived from the id. */
static int derive(const char *sid, uint8_t digest[KW_SESSION_DIGEST_LEN], char csrf[SID_HEX + 1])
{
    uint8_t t[32];
    if (sha256("keyward-session:", sid, digest) != 0 || sha256("keyward-csrf:", sid, t) != 0)
        return -1;
    hex(t, sizeof(t), csrf);
    return 0;
}

static unsigned roles_of(const kw_cred_t *c)
{
    unsigned r = 0;
    json_t *a = json_loads(c->scopes_json ? c->scopes_json : "[]", 0, NULL);
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v)
    {
        if (json_is_string(v))
            r |= kw_api_role_of(json_string_value(v));
    }
    json_decref(a);
    return r;
}

static json_t *role_names(unsigned r)
{
    static const char *const names[] = {"admin", "operator", "approver", "auditor", "verifier"};
    json_t *a = json_array();
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (r & (1u << i))
            json_array_append_new(a, json_string(names[i]));
    return a;
}

typedef struct end_tx {
    const uint8_t *digest;
    const char *actor, *key_id, *why;
    int64_t now;
} end_tx_t;

static int end_run(kw_store_t *st, void *ud, kw_err_t *err)
{
    const end_tx_t *t = ud;
    int rc = kw_store_session_delete(st, t->digest, err);
    if (rc == 0 && t->actor)
        rc = kw_audit_append(st, t->actor, "console.signout", t->key_id, "ok",
                             json_pack("{s:s}", "why", t->why), t->now, err);
    return rc;
}

/* Remove a session in a write of its own (failures logged: it ends anyway). */
static void session_end(kw_server_t *s, const uint8_t *digest, const char *actor,
                        const char *key_id, const char *why, int64_t now)
{
    kw_err_t e = {0};
    end_tx_t t = {.digest = digest, .actor = actor, .key_id = key_id, .why = why, .now = now};
    int rc = kw_lc_tx(&s->lc, end_run, NULL, &t, &e);
    if (rc)
        kw_log(KW_LOG_ERROR, "console session not removed", "{s:s}", "error", e.msg);
}

typedef struct touch_tx {
    const uint8_t *digest;
    int64_t now;
} touch_tx_t;

static int touch_run(kw_store_t *st, void *ud, kw_err_t *err)
{
    const touch_tx_t *t = ud;
    return kw_store_session_touch(st, t->digest, t->now, err);
}

static int is_safe_method(const char *m)
{
    return strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0;
}

static void unauth(kw_resp_t *rs, const char *msg)
{
    kw_resp_error(rs, KW_EUNAUTH, NULL, "%s", msg);
}

/* Look the session up and check it is live; fills *x, *cred_roles. 0 or -1 (rs filled). */
static int session_check(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs, const char *sid,
                         kw_session_t *x, char csrf[SID_HEX + 1])
{
    kw_err_t e = {0};
    uint8_t digest[KW_SESSION_DIGEST_LEN];
    if (derive(sid, digest, csrf) != 0) {
        kw_resp_error(rs, KW_EINTERNAL, NULL, "could not check the session");
        return -1;
    }
    int rc = kw_store_session_get(s->store, digest, x, &e);
    if (rc == KW_ENOTFOUND) {
        unauth(rs, "the console session has ended; sign in again");
        return -1;
    }
    if (rc) {
        kw_resp_problem(rs, &e);
        return -1;
    }
    int64_t now = rq->now;
    const char *ended = NULL;
    if (now >= x->expires_at)
        ended = "the console session reached its maximum age; sign in again";
    else if (now - x->last_seen_at >= s->cfg.console_session_idle)
        ended = "the console session was idle too long; sign in again";
    kw_keyrec_t k;
    kw_cred_t c = {0};
    if (ended == NULL) {
        rc = kw_store_key_get(s->store, x->key_id, &k, &e);
        if (rc == 0 && kw_keyrec_state(&k, now) != KW_KEY_ACTIVE)
            rc = KW_ENOTFOUND;
        if (rc == 0)
            rc = kw_store_cred_get(s->store, x->cred_id, &c, &e);
        if (rc == 0 && c.disabled)
            rc = KW_ENOTFOUND;
        if (rc == KW_ENOTFOUND)
            ended = "the key that signed this console session in is no longer valid";
        else if (rc) {
            kw_cred_clear(&c);
            kw_resp_problem(rs, &e);
            return -1;
        }
    }
    if (ended) {
        kw_cred_clear(&c);
        /* the refusal's audit record names whose session it was */
        snprintf(rq->principal, sizeof(rq->principal), "%s", x->cred_id);
        session_end(s, digest, x->cred_id, x->key_id, "ended", now);
        unauth(rs, ended);
        return -1;
    }
    unsigned roles = roles_of(&c);
    kw_cred_clear(&c);
    if ((roles & KW_NEED_READ) == 0) {
        unauth(rs, "the key that signed this console session in no longer has a console role");
        return -1;
    }
    snprintf(rq->principal, sizeof(rq->principal), "%s", x->cred_id);
    rq->roles = roles;
    /* idle time is kept to within a quarter of the timeout, writing at most once a minute */
    int64_t every = s->cfg.console_session_idle / 4;
    if (every > TOUCH_EVERY)
        every = TOUCH_EVERY;
    if (now - x->last_seen_at >= (every > 0 ? every : 1)) {
        touch_tx_t t = {.digest = digest, .now = now};
        rc = kw_lc_tx(&s->lc, touch_run, NULL, &t, &e);
        if (rc) { /* an idle timeout that cannot move is a store failure: say so */
            kw_resp_problem(rs, &e);
            return -1;
        }
    }
    return 0;
}

int kw_console_auth(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs)
{
    char sid[SID_HEX + 1], csrf[SID_HEX + 1];
    kw_session_t x;
    int rc = -1;
    if (cookie_sid(rq, sid) != 0) {
        unauth(rs, "the console session cookie is malformed; sign in again");
        goto out;
    }
    if (session_check(s, rq, rs, sid, &x, csrf) != 0)
        goto out;
    if (!is_safe_method(rq->method)) {
        const char *t = kw_req_header(rq, "X-CSRF-Token");
        if (t == NULL || strlen(t) != SID_HEX || CRYPTO_memcmp(t, csrf, SID_HEX) != 0) {
            kw_resp_error(rs, KW_EFORBIDDEN, NULL,
                          "this change needs the console session's X-CSRF-Token header");
            goto out;
        }
    }
    rc = 0;
out:
    explicit_bzero(sid, sizeof(sid));
    explicit_bzero(csrf, sizeof(csrf));
    return rc;
}

void kw_console_headers(kw_resp_t *rs)
{
    kw_resp_header(rs, "Content-Security-Policy", "default-src 'self'");
    kw_resp_header(rs, "X-Frame-Options", "DENY");
    kw_resp_header(rs, "X-Content-Type-Options", "nosniff");
}

/* ---- assets ---- */

void kw_h_console_asset(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs)
{
    const char *name = rq->nsegs >= 2 ? rq->segs[1] : "index.html";
    const kw_asset_t *a = NULL;
    size_t n = &kw_web_nassets ? kw_web_nassets : 0;
    for (size_t i = 0; kw_console_enabled(s) && i < n && a == NULL; i++)
        if (strcmp(kw_web_assets[i].name, name) == 0)
            a = &kw_web_assets[i];
    if (a == NULL) {
        kw_resp_error(rs, KW_ENOTFOUND, NULL,
                      kw_console_enabled(s) ? "no such console file"
                                            : "the console is off (--console off)");
        return;
    }
    char *b = malloc(a->len ? a->len : 1);
    if (b == NULL) {
        kw_resp_error(rs, KW_ENOMEM, NULL, "out of memory");
        return;
    }
    memcpy(b, a->data, a->len);
    free(rs->body);
    rs->body = b;
    rs->len = a->len;
    rs->status = 200;
    rs->ctype = a->ctype;
    kw_resp_header(rs, "Cache-Control", "no-cache");
    kw_resp_header(rs, "Referrer-Policy", "no-referrer");
}

/* ---- sessions ---- */

static int over_https(kw_server_t *s, kw_req_t *rq)
{
    const char *p = s->cfg.trusted_ip_header[0] ? kw_req_header(rq, "X-Forwarded-Proto") : NULL;
    return p && strcasecmp(p, "https") == 0;
}

static void set_cookie(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs, const char *sid,
                       int64_t max_age)
{
    char c[256];
    snprintf(c, sizeof(c),
             KW_CONSOLE_COOKIE "=%s; Path=/; Max-Age=%lld; HttpOnly; SameSite=Strict%s", sid,
             (long long)max_age, over_https(s, rq) ? "; Secure" : "");
    kw_resp_header(rs, "Set-Cookie", c);
    explicit_bzero(c, sizeof(c));
}

static json_t *session_json(kw_server_t *s, const kw_session_t *x, unsigned roles, const char *csrf)
{
    char exp[KW_TIME_STR_MAX];
    kw_time_format(x->expires_at, exp);
    return json_pack("{s:b, s:s, s:s, s:o, s:s, s:s, s:I}", "signed_in", 1, "principal", x->cred_id,
                     "key_id", x->key_id, "roles", role_names(roles), "csrf_token", csrf,
                     "expires_at", exp, "idle_timeout_s", (json_int_t)s->cfg.console_session_idle);
}

/* Inside the write: purge idle and ended sessions, insert x, audit the sign-in. */
typedef struct signin_tx {
    const kw_session_t *x;
    int64_t idle, now;
    const char *client;
} signin_tx_t;

static int signin_run(kw_store_t *st, void *ud, kw_err_t *err)
{
    const signin_tx_t *t = ud;
    int rc = kw_store_session_purge(st, t->now - t->idle, t->now, NULL, err);
    if (rc == 0)
        rc = kw_store_session_insert(st, t->x, err);
    if (rc == 0)
        rc = kw_audit_append(st, t->x->cred_id, "console.signin", t->x->key_id, "ok",
                             json_pack("{s:s}", "client", t->client), t->now, err);
    return rc;
}

void kw_h_console_signin(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs)
{
    kw_err_t e = {0};
    char sid[SID_HEX + 1] = "", csrf[SID_HEX + 1] = "", addr[64] = "";
    uint8_t raw[SID_BYTES];
    kw_session_t x = {0};
    const char *key = kw_api_request_key(rq);
    if (!kw_console_enabled(s)) {
        kw_resp_error(rs, KW_ENOTFOUND, NULL, "the console is off (--console off)");
        return;
    }
    if (key == NULL || *key == '\0') {
        kw_resp_error(rs, KW_EINVAL, NULL, "sign in with a key (Authorization: Bearer <key>)");
        return;
    }
    /* authenticate() let it through: look the key up once more for its id */
    kw_verify_req_t vq = {.key = key, .key_len = strlen(key), .now = rq->now};
    kw_verify_res_t vr;
    kw_index_verify(s->index, &vq, &vr);
    if (vr.cred == NULL || vr.key_id == NULL || vr.key_id[0] == '\0') {
        kw_verify_res_release(&vr);
        kw_resp_error(rs, KW_EUNAUTH, NULL, "the key is not known");
        return;
    }
    snprintf(x.key_id, sizeof(x.key_id), "%s", vr.key_id);
    kw_verify_res_release(&vr);
    snprintf(x.cred_id, sizeof(x.cred_id), "%s", rq->principal);
    if (kw_random(raw, sizeof(raw)) != 0) {
        kw_resp_error(rs, KW_EINTERNAL, NULL, "no randomness for a session id");
        goto out;
    }
    hex(raw, sizeof(raw), sid);
    if (derive(sid, x.digest, csrf) != 0) {
        kw_resp_error(rs, KW_EINTERNAL, NULL, "could not make a session");
        goto out;
    }
    x.created_at = x.last_seen_at = rq->now;
    x.expires_at = rq->now + s->cfg.console_session_max;
    kw_req_peer(rq, addr, sizeof(addr));
    signin_tx_t t = {.x = &x, .idle = s->cfg.console_session_idle, .client = addr, .now = rq->now};
    int rc = kw_lc_tx(&s->lc, signin_run, NULL, &t, &e);
    if (rc) {
        kw_resp_problem(rs, &e);
        goto out;
    }
    kw_resp_json(rs, 201, session_json(s, &x, rq->roles, csrf));
    set_cookie(s, rq, rs, sid, s->cfg.console_session_max);
    kw_resp_header(rs, "Cache-Control", "no-store");
out:
    explicit_bzero(raw, sizeof(raw));
    explicit_bzero(sid, sizeof(sid));
    explicit_bzero(csrf, sizeof(csrf));
}

void kw_h_console_whoami(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs)
{
    char sid[SID_HEX + 1], csrf[SID_HEX + 1] = "";
    kw_session_t x;
    kw_resp_header(rs, "Cache-Control", "no-store");
    if (!kw_console_enabled(s)) {
        kw_resp_error(rs, KW_ENOTFOUND, NULL, "the console is off (--console off)");
        return;
    }
    if (cookie_sid(rq, sid) != 0) {
        kw_resp_json(rs, 200, json_pack("{s:b}", "signed_in", 0));
        return;
    }
    kw_resp_t probe = {0};
    if (session_check(s, rq, &probe, sid, &x, csrf) != 0) {
        if (probe.status == 401)
            kw_resp_json(rs, 200,
                         json_pack("{s:b, s:s}", "signed_in", 0, "detail", "session ended"));
        else
            kw_resp_error(rs, KW_ESTORE, NULL, "could not read the session");
        kw_resp_clear(&probe);
    } else {
        kw_resp_json(rs, 200, session_json(s, &x, rq->roles, csrf));
    }
    explicit_bzero(sid, sizeof(sid));
    explicit_bzero(csrf, sizeof(csrf));
}

void kw_h_console_signout(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs)
{
    char sid[SID_HEX + 1], csrf[SID_HEX + 1];
    uint8_t digest[KW_SESSION_DIGEST_LEN];
    if (!kw_console_enabled(s)) {
        kw_resp_error(rs, KW_ENOTFOUND, NULL, "the console is off (--console off)");
        return;
    }
    if (cookie_sid(rq, sid) == 0) {
        kw_session_t x;
        if (kw_console_auth(s, rq, rs) != 0) {
            if (rs->status == 403) /* no CSRF token: a cross-site sign-out attempt */
                goto out;
            kw_resp_clear(rs); /* already ended: clear the cookie all the same */
        } else if (derive(sid, digest, csrf) == 0 &&
                   kw_store_session_get(s->store, digest, &x, &(kw_err_t){0}) == 0) {
            session_end(s, digest, x.cred_id, x.key_id, "signed out", rq->now);
        }
    }
    kw_resp_json(rs, 200, json_pack("{s:b}", "signed_in", 0));
    set_cookie(s, rq, rs, "", 0);
    kw_resp_header(rs, "Cache-Control", "no-store");
out:
    explicit_bzero(sid, sizeof(sid));
    explicit_bzero(csrf, sizeof(csrf));
}
