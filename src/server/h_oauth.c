/* h_oauth.c - OAuth2 for keyward's credentials (SPEC §13): POST /oauth2/token
 * (client_credentials, RFC 6749 §4.4 / §2.3.1), /oauth2/introspect (RFC 7662),
 * /oauth2/revoke (RFC 7009), the RFC 8414 metadata, the sealed token key and the batched
 * audit of issued tokens. Issuing writes nothing to disk on the request path.
 * Must not: put a key, client secret or token into a log, error, audit record or metric. */
#include "oauth.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/audit.h"
#include "core/cidr.h"
#include "core/form.h"
#include "core/key.h"
#include "core/seal.h"
#include "core/util.h"
#include "log.h"
#include "ratelimit.h"
#include "store/store_oauth.h"

#define META_TOKEN_KEY "oauth_token_key"
#define ISSUED_QUEUE_MAX 100000
#define SCOPE_TOKENS_MAX 64
#define AUDIT_BATCH 2000 /* issuance records per transaction */

typedef struct issued {
    char token_id[KW_TOKEN_ID_HEX];
    char cred_id[KW_ID_MAX];
    char key_id[KW_ID_MAX];
    int64_t iat, exp;
    char *scope; /* owned; NULL = every scope of the credential */
} issued_t;

struct kw_oauth {
    kw_tokens_t *tokens;
    pthread_mutex_t mu; /* the issuance queue */
    issued_t *q;
    size_t n, cap, dropped;
};

kw_tokens_t *kw_oauth_tokens(kw_server_t *s)
{
    return s->oauth ? s->oauth->tokens : NULL;
}

/* Inside the write: the token key's sealed text, or (when still absent) a new key. */
typedef struct token_key_tx {
    const kw_seal_t *seal;
    uint8_t *key;
    char *sealed; /* outputs */
    int created;
} token_key_tx_t;

static int token_key_run(kw_store_t *st, void *ud, kw_err_t *err)
{
    token_key_tx_t *t = ud;
    free(t->sealed);
    t->sealed = NULL;
    t->created = 0;
    int rc = kw_store_meta_get(st, META_TOKEN_KEY, &t->sealed, err);
    if (rc != KW_ENOTFOUND)
        return rc;
    kw_err_clear(err);
    rc = kw_random(t->key, 32) ? kw_err_set(err, KW_EIO, NULL, "no randomness") : 0;
    if (rc == 0)
        rc = kw_seal_seal(t->seal, META_TOKEN_KEY, t->key, 32, &t->sealed, err);
    if (rc == 0)
        rc = kw_store_meta_set(st, META_TOKEN_KEY, t->sealed, err);
    if (rc == 0)
        rc = kw_audit_append(st, "system", "oauth.token_key.create", META_TOKEN_KEY, "ok", NULL,
                             kw_now(), err);
    t->created = rc == 0;
    return rc;
}

/* The token key from the store, created (inside one transaction, so two nodes starting at
 * once agree on one) when absent. */
static int token_key(kw_server_t *s, const kw_seal_t *seal, uint8_t key[32], kw_err_t *err)
{
    char *sealed = NULL;
    uint8_t *pt = NULL;
    size_t n = 0;
    int rc = kw_store_meta_get(s->store, META_TOKEN_KEY, &sealed, err);
    if (rc == KW_ENOTFOUND) {
        kw_err_clear(err);
        token_key_tx_t t = {.seal = seal, .key = key};
        rc = kw_lc_tx(&s->lc, token_key_run, NULL, &t, err);
        if (rc == 0 && t.created) {
            free(t.sealed);
            return 0;
        }
        sealed = t.sealed;
    }
    if (rc == 0)
        rc = kw_seal_open(seal, META_TOKEN_KEY, sealed, &pt, &n, err);
    if (rc == KW_EINVAL)
        kw_err_set(err, KW_EINVAL, "secrets-key-file",
                   "the stored OAuth2 token key does not open with --secrets-key-file "
                   "(another file than the one it was sealed with?); if that file is lost, "
                   "delete the meta row oauth_token_key (every access token then stops working)");
    if (rc == 0 && n != 32)
        rc = kw_err_set(err, KW_EINVAL, NULL, "the stored OAuth2 token key has a wrong length");
    if (rc == 0)
        memcpy(key, pt, 32);
    if (pt) {
        kw_wipe(pt, n);
        free(pt);
    }
    free(sealed);
    return rc;
}

static int load_rev(void *ud, const char *token_id, int64_t exp)
{
    uint8_t id[KW_TOKEN_ID_LEN];
    if (kw_token_id_parse(token_id, id) != 0)
        return 0; /* not ours to judge: skip */
    return kw_tokens_revoke(ud, id, exp);
}

int kw_oauth_start(kw_server_t *s, kw_err_t *err)
{
    uint8_t key[32];
    int rc;
    /* the process's one sealing key (--secrets-key-file), opened by atrest.c at start-up */
    if (s->seal == NULL)
        return kw_err_set(err, KW_EINTERNAL, "secrets-key-file", "no secrets key is loaded");
    struct kw_oauth *o = calloc(1, sizeof(*o));
    if (o == NULL)
        return kw_err_set(err, KW_ENOMEM, NULL, "out of memory");
    pthread_mutex_init(&o->mu, NULL);
    rc = token_key(s, s->seal, key, err);
    if (rc == 0 && kw_tokens_new(key, &o->tokens) != 0)
        rc = kw_err_set(err, KW_ENOMEM, NULL, "out of memory");
    kw_wipe(key, sizeof(key));
    if (rc == 0)
        rc = kw_store_token_revoked(s->store, kw_now(), load_rev, o->tokens, err);
    if (rc) {
        kw_tokens_free(o->tokens);
        pthread_mutex_destroy(&o->mu);
        free(o);
        return rc;
    }
    s->oauth = o;
    return 0;
}

/* Inside the write: token.issue records for q[from..to), and one for the dropped ones. */
typedef struct audit_tx {
    const issued_t *q;
    size_t from, to, dropped;
} audit_tx_t;

static int audit_run(kw_store_t *st, void *ud, kw_err_t *err)
{
    const audit_tx_t *t = ud;
    const issued_t *q = t->q;
    int rc = 0;
    for (size_t i = t->from; rc == 0 && i < t->to; i++) {
        json_t *d =
            json_pack("{s:s, s:s, s:o, s:I, s:I}", "token_id", q[i].token_id, "credential_id",
                      q[i].cred_id, "scope", q[i].scope ? json_string(q[i].scope) : json_null(),
                      "issued_at", (json_int_t)q[i].iat, "expires_at", (json_int_t)q[i].exp);
        /* recorded now (the trail's times follow its order); issued_at in the detail */
        rc = kw_audit_append(st, q[i].cred_id, "token.issue", q[i].key_id, "ok", d, kw_now(), err);
    }
    if (rc == 0 && t->dropped)
        rc = kw_audit_append(st, "system", "token.issue", NULL, "not_recorded",
                             json_pack("{s:I}", "tokens", (json_int_t)t->dropped), kw_now(), err);
    return rc;
}

void kw_oauth_flush(kw_server_t *s)
{
    struct kw_oauth *o = s->oauth;
    kw_err_t e = {0};
    if (o == NULL)
        return;
    pthread_mutex_lock(&o->mu);
    issued_t *q = o->q;
    size_t n = o->n, dropped = o->dropped;
    o->q = NULL;
    o->n = o->cap = o->dropped = 0;
    pthread_mutex_unlock(&o->mu);
    /* in transactions of AUDIT_BATCH records, so lifecycle changes never wait long */
    int rc = 0;
    for (size_t done = 0; rc == 0 && (done < n || dropped);) {
        size_t end = n - done > AUDIT_BATCH ? done + AUDIT_BATCH : n;
        audit_tx_t t = {.q = q, .from = done, .to = end, .dropped = end == n ? dropped : 0};
        if ((rc = kw_lc_tx(&s->lc, audit_run, NULL, &t, &e)) != 0)
            break;
        if (end == n)
            dropped = 0;
        done = end;
    }
    if (rc)
        kw_log(KW_LOG_WARN, "issued tokens could not be audited", "{s:s, s:I}", "error", e.msg,
               "tokens", (json_int_t)(n + dropped));
    for (size_t i = 0; i < n; i++)
        free(q[i].scope);
    free(q);
    /* other nodes' revocations, and the end of expired ones */
    kw_tokens_prune(o->tokens, kw_now());
    (void)kw_store_token_revoked(s->store, kw_now(), load_rev, o->tokens, &e);
}

void kw_oauth_stop(kw_server_t *s)
{
    if (s->oauth == NULL)
        return;
    kw_oauth_flush(s);
    kw_tokens_free(s->oauth->tokens);
    pthread_mutex_destroy(&s->oauth->mu);
    free(s->oauth);
    s->oauth = NULL;
}

static void queue_issued(struct kw_oauth *o, const issued_t *it)
{
    pthread_mutex_lock(&o->mu);
    if (o->n == o->cap && o->cap < ISSUED_QUEUE_MAX) {
        size_t cap = o->cap ? 2 * o->cap : 256;
        issued_t *q = realloc(o->q, cap * sizeof(*q));
        if (q) {
            o->q = q;
            o->cap = cap;
        }
    }
    if (o->n < o->cap) {
        o->q[o->n] = *it;
        o->q[o->n].scope = it->scope ? strdup(it->scope) : NULL;
        o->n++;
    } else {
        o->dropped++;
    }
    pthread_mutex_unlock(&o->mu);
}

/* ---- answers ---- */

static void no_store(kw_resp_t *rs)
{
    kw_resp_header(rs, "Cache-Control", "no-store");
    kw_resp_header(rs, "Pragma", "no-cache");
}

/* RFC 6749 §5.2 error answer. */
static void oerr(kw_resp_t *rs, int status, const char *error, const char *desc)
{
    kw_resp_json(rs, status, json_pack("{s:s, s:s}", "error", error, "error_description", desc));
    no_store(rs);
    if (status == 401)
        kw_resp_header(rs, "WWW-Authenticate", "Basic realm=\"keyward\"");
}

/* The form field name, or NULL after a 400 invalid_request "NAME is required". */
static const char *form_need(const kw_form_t *f, const char *name, kw_resp_t *rs)
{
    const char *v = kw_form_get(f, name);
    if (v == NULL) {
        char desc[64];
        snprintf(desc, sizeof(desc), "%s is required", name);
        oerr(rs, 400, "invalid_request", desc);
    }
    return v;
}

/* The form body, after the content type check; NULL (rs filled) when refused. */
static int read_form(kw_req_t *rq, kw_resp_t *rs, kw_form_t *f)
{
    kw_err_t e = {0};
    const char *ct = kw_req_header(rq, "Content-Type");
    memset(f, 0, sizeof(*f));
    if (ct == NULL || strncasecmp(ct, "application/x-www-form-urlencoded", 33) != 0 ||
        (ct[33] != '\0' && ct[33] != ';' && ct[33] != ' ')) {
        oerr(rs, 400, "invalid_request",
             "the request body must be application/x-www-form-urlencoded");
        return -1;
    }
    if (kw_form_parse(rq->body ? rq->body : "", rq->body_len, f, &e) != 0) {
        oerr(rs, 400, "invalid_request", e.msg);
        kw_form_free(f);
        return -1;
    }
    return 0;
}

/* ---- client authentication (RFC 6749 §2.3.1) ---- */

typedef struct client {
    char id[KW_ID_MAX + 8];
    char secret[KW_KEY_MAX + 8];
    int basic; /* came in an Authorization: Basic header */
} client_t;

/* Decode "Basic <base64(urlencode(id) ':' urlencode(secret))>". 0, or -1 when malformed. */
static int parse_basic(const char *v, client_t *c)
{
    char raw[512], dec[512];
    while (*v == ' ')
        v++;
    size_t n = strlen(v);
    while (n && v[n - 1] == ' ')
        n--;
    if (n == 0 || n % 4 != 0 || n >= 4 * (sizeof(raw) / 3))
        return -1;
    for (size_t i = 0; i < n; i++) {
        char ch = v[i];
        int ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
                 ch == '+' || ch == '/' || (ch == '=' && i >= n - 2);
        if (!ok || (v[n - 2] == '=' && v[n - 1] != '='))
            return -1;
    }
    int len = EVP_DecodeBlock((unsigned char *)raw, (const unsigned char *)v, (int)n);
    if (len < 0)
        return -1;
    len -= (v[n - 1] == '=') + (v[n - 2] == '=');
    raw[len] = '\0';
    int rc = -1;
    char *colon = memchr(raw, ':', (size_t)len);
    if (colon == NULL || strlen(raw) != (size_t)len)
        goto out;
    size_t il = (size_t)(colon - raw), sl = (size_t)len - il - 1;
    if (il >= sizeof(c->id) || sl >= sizeof(c->secret) + 0)
        goto out;
    long a = kw_form_decode(raw, il, 1, dec);
    if (a < 0 || (size_t)a >= sizeof(c->id))
        goto out;
    memcpy(c->id, dec, (size_t)a + 1);
    long b = kw_form_decode(colon + 1, sl, 1, dec);
    if (b < 0 || (size_t)b >= sizeof(c->secret))
        goto out;
    memcpy(c->secret, dec, (size_t)b + 1);
    c->basic = 1;
    rc = 0;
out:
    kw_wipe(raw, sizeof(raw));
    kw_wipe(dec, sizeof(dec));
    return rc;
}

/* The client's credentials from the request; -1 with an RFC error in rs when the request
 * is malformed (two methods, bad header). *given = 0 when no authentication at all. */
static int get_client(kw_req_t *rq, const kw_form_t *f, client_t *c, int *given, kw_resp_t *rs)
{
    memset(c, 0, sizeof(*c));
    *given = 0;
    const char *auth = kw_req_header(rq, "Authorization");
    const char *fid = kw_form_get(f, "client_id"), *fsec = kw_form_get(f, "client_secret");
    if (auth && strncasecmp(auth, "Basic ", 6) == 0) {
        if (fsec) {
            oerr(rs, 400, "invalid_request",
                 "use one client authentication method: HTTP Basic or client_secret, not both");
            return -1;
        }
        if (parse_basic(auth + 6, c) != 0) {
            oerr(rs, 401, "invalid_client", "malformed HTTP Basic credentials");
            return -1;
        }
        if (fid && strcmp(fid, c->id) != 0) {
            oerr(rs, 400, "invalid_request", "client_id differs from the HTTP Basic user");
            return -1;
        }
        *given = 1;
        return 0;
    }
    if (fid == NULL && fsec == NULL)
        return 0;
    if (fid == NULL || fsec == NULL) {
        oerr(rs, fid ? 401 : 400, fid ? "invalid_client" : "invalid_request",
             fid ? "client_secret is required" : "client_id is required");
        return -1;
    }
    if (strlen(fid) >= sizeof(c->id) || strlen(fsec) >= sizeof(c->secret)) {
        oerr(rs, 401, "invalid_client", "client authentication failed");
        return -1;
    }
    memcpy(c->id, fid, strlen(fid) + 1);
    memcpy(c->secret, fsec, strlen(fsec) + 1);
    *given = 1;
    return 0;
}

/* Verify the client: its secret must be a usable key of credential c->id. On success
 * *vr holds the index read section (release it). -1 with rs filled otherwise. */
static int auth_client(kw_server_t *s, kw_req_t *rq, const client_t *c, const char *addr,
                       kw_verify_res_t *vr, kw_resp_t *rs)
{
    kw_ip_t ip;
    int have_ip = addr && kw_ip_parse(addr, strlen(addr), &ip) == 0;
    kw_verify_req_t vq = {
        .key = c->secret, .key_len = strlen(c->secret), .ip = have_ip ? &ip : NULL, .now = rq->now};
    char msg[160];
    memset(vr, 0, sizeof(*vr));
    kw_index_verify(s->index, &vq, vr);
    if (vr->code == KW_V_VALID && strcmp(vr->cred->id, c->id) == 0)
        return 0;
    if (vr->code == KW_V_VALID || vr->code == KW_V_NOT_FOUND || vr->code == KW_V_MALFORMED)
        snprintf(msg, sizeof(msg), "client authentication failed");
    else /* a known key of this client that cannot be used: say why (SPEC §4 message) */
        kw_verify_message(vr->code, NULL, msg, sizeof(msg));
    if (vr->cred && strcmp(vr->cred->id, c->id) != 0)
        snprintf(msg, sizeof(msg), "client authentication failed");
    kw_verify_res_release(vr);
    kw_rl_fail(s->authrl, addr, kw_rl_now_ms());
    kw_metrics_oauth(KW_OAUTH_REFUSED);
    oerr(rs, 401, "invalid_client", msg);
    return -1;
}

/* Rate limit check for client authentication: -1 (429 in rs) when the address is blocked. */
static int rate_ok(kw_server_t *s, const char *addr, kw_resp_t *rs)
{
    int64_t wait = kw_rl_check(s->authrl, addr, kw_rl_now_ms());
    if (wait <= 0)
        return 0;
    char ra[24];
    snprintf(ra, sizeof(ra), "%lld", (long long)wait);
    oerr(rs, 429, "invalid_request",
         "too many failed client authentications from this address; retry later");
    kw_resp_header(rs, "Retry-After", ra);
    return -1;
}

/* ---- scopes ---- */

static int scope_char_ok(unsigned char ch)
{
    return ch == 0x21 || (ch >= 0x23 && ch <= 0x5b) || (ch >= 0x5d && ch <= 0x7e);
}

/* The requested scope (RFC 6749 §3.3) checked against the credential's: written,
 * deduplicated, into out. -1 with an RFC error in rs. */
static int select_scopes(const char *want, const kw_icred_t *cred, char *out, size_t n,
                         kw_resp_t *rs)
{
    size_t len = strlen(want), o = 0, count = 0;
    if (len > KW_TOKEN_SCOPES_MAX) {
        oerr(rs, 400, "invalid_scope", "the scope list is too long");
        return -1;
    }
    const char *p = want, *end = want + len;
    while (p < end) {
        const char *sp = memchr(p, ' ', (size_t)(end - p));
        size_t l = sp ? (size_t)(sp - p) : (size_t)(end - p);
        if (l == 0) {
            oerr(rs, 400, "invalid_scope", "scope must be scope names separated by single spaces");
            return -1;
        }
        for (size_t i = 0; i < l; i++)
            if (!scope_char_ok((unsigned char)p[i])) {
                oerr(rs, 400, "invalid_scope", "a scope name holds a character RFC 6749 forbids");
                return -1;
            }
        int held = 0;
        for (size_t i = 0; i < cred->facts->nscopes && !held; i++)
            held = strlen(cred->facts->scopes[i]) == l && memcmp(cred->facts->scopes[i], p, l) == 0;
        if (!held) {
            char d[200], name[72], shown[80];
            snprintf(name, sizeof(name), "%.*s", (int)(l > 64 ? 64 : l), p);
            /* kw_api_echo: a secret-looking run (a key pasted as a scope) is not shown */
            snprintf(d, sizeof(d), "the client does not hold scope '%s'",
                     kw_api_echo(name, shown, sizeof(shown)));
            oerr(rs, 400, "invalid_scope", d);
            return -1;
        }
        int dup = 0;
        for (const char *q = out; !dup && q < out + o;) {
            const char *qs = memchr(q, ' ', (size_t)(out + o - q));
            size_t ql = qs ? (size_t)(qs - q) : (size_t)(out + o - q);
            dup = ql == l && memcmp(q, p, l) == 0;
            q += ql + 1;
        }
        if (!dup) {
            if (++count > SCOPE_TOKENS_MAX || o + l + 2 > n) {
                oerr(rs, 400, "invalid_scope", "too many scopes");
                return -1;
            }
            if (o)
                out[o++] = ' ';
            memcpy(out + o, p, l);
            o += l;
        }
        p += l + 1;
        if (sp && p == end) {
            oerr(rs, 400, "invalid_scope", "scope must be scope names separated by single spaces");
            return -1;
        }
    }
    out[o] = '\0';
    return 0;
}

/* ---- POST /oauth2/token ---- */

/* The rate limit, then the client's credentials (get_client): malformed or missing ones
 * count as a failed authentication from addr; missing is the detail when none were given.
 * 0, or -1 with rs filled. */
static int require_client(kw_server_t *s, kw_req_t *rq, const kw_form_t *f, const char *addr,
                          const char *missing, client_t *c, kw_resp_t *rs)
{
    int given = 0;
    if (rate_ok(s, addr, rs) != 0)
        return -1;
    if (get_client(rq, f, c, &given, rs) != 0) {
        if (rs->status == 401)
            kw_rl_fail(s->authrl, addr, kw_rl_now_ms());
        return -1;
    }
    if (!given) {
        kw_rl_fail(s->authrl, addr, kw_rl_now_ms());
        oerr(rs, 401, "invalid_client", missing);
        return -1;
    }
    return 0;
}

void kw_h_oauth_token(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs)
{
    kw_form_t f;
    client_t c;
    kw_verify_res_t vr = {0};
    char addr[64] = "", scopes[KW_TOKEN_SCOPES_MAX + 2], tok[KW_TOKEN_MAX + 1];
    uint8_t digest[KW_DIGEST_LEN], tid[KW_TOKEN_ID_LEN];
    int held = 0;
    memset(&c, 0, sizeof(c));
    if (read_form(rq, rs, &f) != 0)
        return;
    const char *grant = form_need(&f, "grant_type", rs);
    if (grant == NULL)
        goto out;
    if (strcmp(grant, "client_credentials") != 0) {
        oerr(rs, 400, "unsupported_grant_type", "only grant_type=client_credentials is supported");
        goto out;
    }
    kw_api_client_addr(s, rq, addr, sizeof(addr));
    if (require_client(s, rq, &f, addr,
                       "client authentication is required (HTTP Basic, or client_id and "
                       "client_secret)",
                       &c, rs) != 0)
        goto out;
    if (s->oauth == NULL) {
        oerr(rs, 503, "temporarily_unavailable", "the token service is not ready");
        goto out;
    }
    if (auth_client(s, rq, &c, addr, &vr, rs) != 0)
        goto out;
    held = 1;
    const char *want = kw_form_get(&f, "scope");
    if (want && select_scopes(want, vr.cred, scopes, sizeof(scopes), rs) != 0)
        goto out;
    const kw_ipolicy_t *pol = vr.cred->policy;
    int64_t life = pol ? atomic_load_explicit(&pol->token_lifetime, memory_order_relaxed)
                       : KW_TOKEN_LIFETIME_DEFAULT;
    if (life <= 0 || life > KW_TOKEN_LIFETIME_MAX)
        life = KW_TOKEN_LIFETIME_DEFAULT;
    int64_t exp = rq->now + life;
    if (vr.expires_at && vr.expires_at < exp) /* a token never outlives its key */
        exp = vr.expires_at;
    size_t plen = 0;
    if (kw_key_check(c.secret, strlen(c.secret), &plen) != 0 || plen > KW_PREFIX_MAX ||
        kw_key_digest(c.secret, strlen(c.secret), digest) != 0) {
        oerr(rs, 401, "invalid_client", "client authentication failed");
        goto out;
    }
    char prefix[KW_PREFIX_MAX + 1];
    memcpy(prefix, c.secret, plen);
    prefix[plen] = '\0';
    if (kw_token_issue(s->oauth->tokens, prefix, digest, want ? scopes : NULL, rq->now, exp, tok,
                       sizeof(tok), tid) != 0) {
        oerr(rs, 400, "invalid_request", "the token could not be made");
        goto out;
    }
    issued_t it = {.iat = rq->now, .exp = exp, .scope = want ? scopes : NULL};
    kw_token_id_hex(tid, it.token_id);
    snprintf(it.cred_id, sizeof(it.cred_id), "%s", vr.cred->id);
    snprintf(it.key_id, sizeof(it.key_id), "%s", vr.key_id);
    const char *shown = want ? scopes : vr.cred->facts->scopes_hdr;
    json_t *j = json_pack("{s:s, s:s, s:I}", "access_token", tok, "token_type", "Bearer",
                          "expires_in", (json_int_t)(exp - rq->now));
    if (j && shown && shown[0])
        json_object_set_new(j, "scope", json_string(shown));
    kw_verify_res_release(&vr);
    held = 0;
    kw_resp_json(rs, 200, j);
    no_store(rs);
    queue_issued(s->oauth, &it);
    kw_metrics_oauth(KW_OAUTH_ISSUED);
out:
    if (held)
        kw_verify_res_release(&vr);
    kw_wipe(tok, sizeof(tok));
    kw_wipe(&c, sizeof(c));
    kw_wipe(digest, sizeof(digest));
    kw_form_free(&f);
}

static void issuer(kw_server_t *s, kw_req_t *rq, char *base, size_t n);

/* ---- POST /oauth2/introspect (RFC 7662) ---- */

void kw_h_oauth_introspect(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs)
{
    kw_form_t f;
    kw_verify_res_t vr;
    kw_token_info_t *info = NULL;
    if (read_form(rq, rs, &f) != 0)
        return;
    const char *tok = form_need(&f, "token", rs);
    if (tok == NULL)
        goto out;
    kw_metrics_oauth(KW_OAUTH_INTROSPECTED);
    info = malloc(sizeof(*info));
    if (info == NULL || s->oauth == NULL || strlen(tok) > KW_TOKEN_MAX ||
        !kw_token_looks(tok, strlen(tok))) {
        kw_resp_json(rs, 200, json_pack("{s:b}", "active", 0));
        no_store(rs);
        goto out;
    }
    kw_verify_req_t vq = {.key = tok, .key_len = strlen(tok), .now = rq->now};
    kw_verify_any(s->oauth->tokens, s->index, &vq, &vr, info);
    /* FORBIDDEN_IP: the token is good; only where it is used decides the address */
    if (vr.code != KW_V_VALID && vr.code != KW_V_FORBIDDEN_IP) {
        kw_verify_res_release(&vr);
        kw_resp_json(rs, 200, json_pack("{s:b}", "active", 0));
        no_store(rs);
        goto out;
    }
    char jti[KW_TOKEN_ID_HEX], iss[300];
    kw_token_id_hex(info->c.id, jti);
    issuer(s, rq, iss, sizeof(iss));
    const char *sc =
        info->c.explicit_scopes ? (info->scopes ? info->scopes : "") : vr.cred->facts->scopes_hdr;
    json_t *j = json_pack("{s:b, s:s, s:s, s:s, s:s, s:I, s:I, s:s, s:s, s:s}", "active", 1,
                          "scope", sc ? sc : "", "client_id", vr.cred->id, "sub", vr.cred->id,
                          "token_type", "Bearer", "exp", (json_int_t)info->c.exp, "iat",
                          (json_int_t)info->c.iat, "jti", jti, "key_id", vr.key_id, "iss", iss);
    kw_verify_res_release(&vr);
    kw_resp_json(rs, 200, j);
    no_store(rs);
out:
    if (info) {
        kw_wipe(info, sizeof(*info));
        free(info);
    }
    kw_form_free(&f);
}

/* ---- POST /oauth2/revoke (RFC 7009) ---- */

/* An admin-role key in Authorization: Bearer. */
static int bearer_admin(kw_server_t *s, kw_req_t *rq)
{
    const char *k = kw_api_request_key(rq);
    const char *auth = kw_req_header(rq, "Authorization");
    if (k == NULL || auth == NULL || strncasecmp(auth, "Bearer ", 7) != 0)
        return 0;
    kw_verify_req_t vq = {.key = k, .key_len = strlen(k), .now = rq->now};
    kw_verify_res_t vr;
    kw_index_verify(s->index, &vq, &vr);
    int ok = vr.code == KW_V_VALID && (kw_api_roles(vr.cred) & KW_ROLE_ADMIN);
    if (ok)
        snprintf(rq->principal, sizeof(rq->principal), "%s", vr.cred->id);
    kw_verify_res_release(&vr);
    return ok;
}

/* The revocation: recorded and audited in one write; the in-memory set learns it after
 * the commit. */
typedef struct revoke_tx {
    kw_tokens_t *tokens;
    const kw_token_claims_t *cl;
    const char *tid, *cred_id, *key_id, *actor;
    int64_t now;
} revoke_tx_t;

static int revoke_run(kw_store_t *st, void *ud, kw_err_t *err)
{
    const revoke_tx_t *t = ud;
    int rc = kw_store_token_revoke(st, t->tid, t->cred_id, t->cl->exp, t->now, err);
    if (rc == 0)
        rc = kw_audit_append(st, t->actor, "token.revoke", t->key_id, "ok",
                             json_pack("{s:s, s:s, s:I}", "token_id", t->tid, "credential_id",
                                       t->cred_id, "expires_at", (json_int_t)t->cl->exp),
                             t->now, err);
    return rc;
}

static int revoke_post(kw_store_t *st, void *ud, kw_err_t *err)
{
    const revoke_tx_t *t = ud;
    return kw_tokens_revoke(t->tokens, t->cl->id, t->cl->exp);
}

void kw_h_oauth_revoke(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs)
{
    kw_form_t f;
    client_t c;
    kw_verify_res_t vr = {0};
    kw_token_claims_t *cl = NULL;
    kw_err_t e = {0};
    char addr[64] = "";
    memset(&c, 0, sizeof(c));
    if (read_form(rq, rs, &f) != 0)
        return;
    kw_api_client_addr(s, rq, addr, sizeof(addr));
    int admin = 0;
    const char *auth = kw_req_header(rq, "Authorization");
    if (auth && strncasecmp(auth, "Bearer ", 7) == 0) {
        if (rate_ok(s, addr, rs) != 0)
            goto out;
        admin = bearer_admin(s, rq);
        if (!admin) {
            kw_rl_fail(s->authrl, addr, kw_rl_now_ms());
            oerr(rs, 401, "invalid_client",
                 "revocation needs client authentication or an admin key");
            goto out;
        }
    } else {
        if (require_client(s, rq, &f, addr, "client authentication is required", &c, rs) != 0)
            goto out;
        if (auth_client(s, rq, &c, addr, &vr, rs) != 0)
            goto out;
        snprintf(rq->principal, sizeof(rq->principal), "%s", vr.cred->id);
        kw_verify_res_release(&vr);
    }
    const char *tok = form_need(&f, "token", rs);
    if (tok == NULL)
        goto out;
    if (kw_key_check(tok, strlen(tok), NULL) == 0) {
        oerr(rs, 400, "unsupported_token_type",
             "API keys are revoked with POST /v1/keys/{id}/invalidate, not here");
        goto out;
    }
    cl = malloc(sizeof(*cl));
    if (cl == NULL) {
        oerr(rs, 503, "temporarily_unavailable", "out of memory");
        goto out;
    }
    /* invalid, forged or already expired tokens: nothing to do, and 200 (RFC 7009 §2.2) */
    if (s->oauth == NULL || strlen(tok) > KW_TOKEN_MAX ||
        kw_token_parse(s->oauth->tokens, tok, strlen(tok), cl) != 0 || cl->exp <= rq->now) {
        kw_resp_json(rs, 200, json_object());
        no_store(rs);
        goto out;
    }
    /* whose token: the credential of the key that obtained it */
    kw_verify_req_t vq = {.key = "", .key_len = 0, .now = rq->now};
    kw_index_verify_digest(s->index, cl->digest, &vq, 0, &vr);
    char cred_id[KW_ID_MAX] = "", key_id[KW_ID_MAX] = "";
    if (vr.cred) {
        snprintf(cred_id, sizeof(cred_id), "%s", vr.cred->id);
        snprintf(key_id, sizeof(key_id), "%s", vr.key_id);
    }
    kw_verify_res_release(&vr);
    if (!admin && strcmp(cred_id, rq->principal) != 0) {
        oerr(rs, 400, "invalid_grant", "the token was not issued to this client");
        goto out;
    }
    char tid[KW_TOKEN_ID_HEX];
    kw_token_id_hex(cl->id, tid);
    revoke_tx_t t = {.tokens = s->oauth->tokens,
                     .cl = cl,
                     .tid = tid,
                     .cred_id = cred_id,
                     .key_id = key_id[0] ? key_id : NULL,
                     .actor = rq->principal,
                     .now = rq->now};
    int rc = kw_lc_tx(&s->lc, revoke_run, revoke_post, &t, &e);
    if (rc) {
        /* RFC 7009 §2.2.1: 503 means "try again" */
        oerr(rs, 503, "temporarily_unavailable", "the revocation could not be recorded");
        kw_resp_header(rs, "Retry-After", "1");
        goto out;
    }
    kw_metrics_oauth(KW_OAUTH_REVOKED);
    kw_resp_json(rs, 200, json_object());
    no_store(rs);
out:
    if (cl) {
        kw_wipe(cl, sizeof(*cl));
        free(cl);
    }
    kw_wipe(&c, sizeof(c));
    kw_form_free(&f);
}

/* ---- GET /.well-known/oauth-authorization-server (RFC 8414) ---- */

/* The issuer identifier (RFC 8414 §2): this server as the client reached it. */
static void issuer(kw_server_t *s, kw_req_t *rq, char *base, size_t n)
{
    const char *host = kw_req_header(rq, "Host");
    const char *proto = kw_req_header(rq, "X-Forwarded-Proto");
    int ok = host && *host && strlen(host) < 256;
    for (const char *p = host; ok && *p; p++)
        ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
             strchr(".-:[]", *p) != NULL;
    snprintf(base, n, "%s://%s", proto && strcasecmp(proto, "https") == 0 ? "https" : "http",
             ok ? host : s->cfg.listen);
}

void kw_h_oauth_metadata(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs)
{
    char base[300], u[4][340];
    issuer(s, rq, base, sizeof(base));
    snprintf(u[0], sizeof(u[0]), "%s/oauth2/token", base);
    snprintf(u[1], sizeof(u[1]), "%s/oauth2/introspect", base);
    snprintf(u[2], sizeof(u[2]), "%s/oauth2/revoke", base);
    json_t *j = json_pack(
        "{s:s, s:s, s:s, s:s, s:[s], s:[s,s], s:[s,s], s:[s], s:[]}", "issuer", base,
        "token_endpoint", u[0], "introspection_endpoint", u[1], "revocation_endpoint", u[2],
        "grant_types_supported", "client_credentials", "token_endpoint_auth_methods_supported",
        "client_secret_basic", "client_secret_post", "revocation_endpoint_auth_methods_supported",
        "client_secret_basic", "client_secret_post",
        "introspection_endpoint_auth_methods_supported", "bearer", "response_types_supported");
    kw_resp_json(rs, 200, j);
}
