/* refresher.c - keeps the access tokens of OAuth2 watched credentials fresh (SPEC §12): a
 * dispatcher thread sleeps on a condition variable until the soonest next_refresh_ms in the
 * store (or a wake-up from the API) and hands due rows to WORKERS workers (so one slow
 * endpoint holds up one of them), which call the token endpoint (RFC 6749 §4.4
 * client_credentials or §6 refresh_token) with libcurl - TLS verified, timeouts, no redirects, the
 * SSRF guard and a size cap on the answer - and commits the sealed result. A refresh is due at 80 %
 * of the lifetime (± up to 3 % jitter; lifetimes over 5 min never later than 60 s before expiry);
 * failures retry from 5 s doubling to 5 min for as long as the credential exists.
 *
 * Rotated refresh tokens: the old one is kept (refresh_token_prev_sealed) in the same
 * transaction that stores the new one, and dropped only after the new one has been used
 * successfully; a refresh that fails with invalid_grant retries with the kept one. So a
 * crash after the provider answered but before the commit leaves the old token in place
 * (still the one on record), and a crash after the commit leaves both.
 * Must not: hold a store transaction while talking to the network; log or store a secret. */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bgthread.h"
#include "core/key.h"
#include "core/refresh.h"
#include "core/sink.h"
#include "core/util.h"
#include "log.h"
#include "store/store_cluster.h"
#include "textbuf.h"
#include "urlguard.h"
#include "watched.h"

#define ANSWER_MAX (64 * 1024)
#define CONNECT_S 5L
#define TIMEOUT_S 15L
/* a claim outlives the two requests a refresh may make (store_cluster.h: several nodes) */
#define CLAIM_MS (2 * TIMEOUT_S * 1000 + 5000)
#define MAX_SLEEP_MS 30000  /* look at the store at least this often */
#define SPREAD_MAX_MS 60000 /* after a restart, overdue refreshes spread over up to this */

#define WORKERS 4 /* token requests in flight at once: a slow endpoint holds up one */

/* One dispatcher (thread 0) picks due rows and hands each to a free worker (threads 1 to
 * WORKERS, job i - 1); a row in flight is not handed out again. All fields under bg.mu. */
struct kw_refresher {
    kw_bg_t bg; /* first (bgthread.h); bg.srv */
    int spread; /* the dispatcher's own: overdue refreshes spread out (once, at start) */
    int store_failed;
    kw_watched_t job[WORKERS];
    int busy[WORKERS]; /* 0 free, 1 handed out, 2 running */
};
_Static_assert(offsetof(struct kw_refresher, bg) == 0, "bgthread.h: the kw_bg_t comes first");

static _Atomic int stopping; /* aborts token requests in flight at shutdown */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Uniform in [0, 1). */
static double uniform(void)
{
    uint64_t r = 0;
    if (kw_random(&r, sizeof(r)) != 0)
        r = (uint64_t)now_ms() * 2654435761u;
    return (double)(r >> 11) / 9007199254740992.0;
}

static json_t *jtime_ms(int64_t ms)
{
    char ts[KW_TIME_STR_MAX];
    if (ms == 0)
        return json_null();
    kw_time_format(ms / 1000, ts);
    return json_string(ts);
}

/* ---- metrics: refresh outcomes per watched credential ---- */

typedef struct rcount {
    char id[KW_ID_MAX];
    uint64_t ok, fail;
} rcount_t;

static pthread_mutex_t mmu = PTHREAD_MUTEX_INITIALIZER;
static rcount_t *rcounts;
static size_t nrcounts, caprcounts;

void kw_metrics_oauth_refresh(const char *id, int ok)
{
    pthread_mutex_lock(&mmu);
    size_t i = 0;
    while (i < nrcounts && strcmp(rcounts[i].id, id) != 0)
        i++;
    if (i == nrcounts) {
        if (nrcounts == caprcounts) {
            size_t ncap = caprcounts ? caprcounts * 2 : 64;
            rcount_t *p = realloc(rcounts, ncap * sizeof(*p));
            if (p == NULL) {
                pthread_mutex_unlock(&mmu);
                return;
            }
            rcounts = p;
            caprcounts = ncap;
        }
        memset(&rcounts[i], 0, sizeof(rcounts[i]));
        snprintf(rcounts[i].id, sizeof(rcounts[i].id), "%s", id);
        nrcounts++;
    }
    if (ok)
        rcounts[i].ok++;
    else
        rcounts[i].fail++;
    pthread_mutex_unlock(&mmu);
}

static void label(const char *v, char *out, size_t n)
{
    size_t o = 0;
    for (; *v && o + 3 < n; v++) {
        if (*v == '\\' || *v == '"') {
            out[o++] = '\\';
            out[o++] = *v;
        } else if (*v == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
        } else {
            out[o++] = *v;
        }
    }
    out[o] = '\0';
}

char *kw_metrics_watched_text(kw_server_t *srv, int64_t now)
{
    kw_textbuf_t b = {0};
    kw_err_t e = {0};
    kw_watched_filter_t f = {.limit = 512};
    kw_textbuf_t tok = {0};
    kw_textbuf_put(
        &b, "# HELP keyward_watched_expiry_timestamp_seconds Expiry (unix time) of each watched "
            "credential: its secret's, or its refresh grant's when sooner.\n"
            "# TYPE keyward_watched_expiry_timestamp_seconds gauge\n");
    kw_textbuf_put(&tok,
                   "# HELP keyward_oauth_token_expiry_timestamp_seconds Expiry (unix time) of the "
                   "current access token of each OAuth2 watched credential (0: none).\n"
                   "# TYPE keyward_oauth_token_expiry_timestamp_seconds gauge\n");
    for (;;) {
        kw_watched_t *a = NULL;
        size_t n = 0;
        if (kw_store_watched_list(srv->store, &f, &a, &n, &e) != 0)
            break;
        for (size_t i = 0; i < n; i++) {
            char l1[64], l2[512];
            label(a[i].id, l1, sizeof(l1));
            label(a[i].name, l2, sizeof(l2));
            int64_t x = kw_watched_alert_expiry(&a[i]);
            if (x)
                kw_textbuf_put(
                    &b, "keyward_watched_expiry_timestamp_seconds{id=\"%s\",name=\"%s\"} %lld\n",
                    l1, l2, (long long)x);
            if (strcmp(a[i].kind, "oauth2") == 0)
                kw_textbuf_put(
                    &tok,
                    "keyward_oauth_token_expiry_timestamp_seconds{id=\"%s\",name=\"%s\"} %lld\n",
                    l1, l2, (long long)(a[i].token_expires_ms / 1000));
        }
        f.after_seq = n ? a[n - 1].seq : f.after_seq;
        kw_watched_array_free(a, n);
        if (n < f.limit)
            break;
    }
    (void)now;
    kw_textbuf_put(&b, "%s", tok.p ? tok.p : "");
    free(tok.p);
    kw_textbuf_put(
        &b, "# HELP keyward_oauth_refresh_total OAuth2 token requests by watched credential and "
            "result (since start).\n# TYPE keyward_oauth_refresh_total counter\n");
    pthread_mutex_lock(&mmu);
    for (size_t i = 0; i < nrcounts; i++) {
        kw_textbuf_put(&b, "keyward_oauth_refresh_total{id=\"%s\",result=\"success\"} %llu\n",
                       rcounts[i].id, (unsigned long long)rcounts[i].ok);
        kw_textbuf_put(&b, "keyward_oauth_refresh_total{id=\"%s\",result=\"failure\"} %llu\n",
                       rcounts[i].id, (unsigned long long)rcounts[i].fail);
    }
    pthread_mutex_unlock(&mmu);
    if (b.oom || tok.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

/* ---- token file ---- */

int kw_watched_write_token_file(const char *path, const char *token, kw_err_t *err)
{
    char tmp[KW_PATH_MAX + 32];
    snprintf(tmp, sizeof(tmp), "%s.tmpXXXXXX", path);
    int fd = mkstemp(tmp); /* mode 0600 */
    if (fd < 0)
        return kw_err_set(err, KW_EIO, "token_file", "cannot create a file beside %s: %s", path,
                          strerror(errno));
    size_t n = strlen(token), off = 0;
    int rc = fchmod(fd, 0600);
    while (rc == 0 && off < n) {
        ssize_t w = write(fd, token + off, n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            rc = -1;
        else
            off += (size_t)w;
    }
    if (rc == 0)
        rc = fsync(fd);
    if (close(fd) != 0)
        rc = -1;
    if (rc == 0)
        rc = rename(tmp, path);
    if (rc != 0) {
        int er = errno;
        unlink(tmp);
        return kw_err_set(err, KW_EIO, "token_file", "cannot write %s: %s", path, strerror(er));
    }
    return 0;
}

/* ---- one token request ---- */

typedef struct answer {
    char *p;
    size_t n, cap;
    int too_big;
} answer_t;

static size_t on_data(char *p, size_t sz, size_t nm, void *ud)
{
    answer_t *a = ud;
    size_t add = sz * nm;
    if (a->n + add > ANSWER_MAX) {
        a->too_big = 1;
        return 0; /* aborts the transfer */
    }
    return kw_wipebuf_append(&a->p, &a->n, &a->cap, p, add, 4096) ? 0 : add;
}

static int on_progress(void *ud, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
    return atomic_load(&stopping) ? 1 : 0; /* non-zero aborts the transfer */
}

typedef struct result {
    int ok;
    long status; /* HTTP status, 0 = none */
    char error[256];
    int invalid_grant;
    char *access_token;  /* owned, wiped */
    char *refresh_token; /* owned, wiped; a rotated one, NULL if none */
    char token_type[32];
    int64_t expires_in, refresh_expires_in; /* seconds */
} result_t;

static void result_clear(result_t *r)
{
    kw_secrets_free(r->access_token);
    kw_secrets_free(r->refresh_token);
    memset(r, 0, sizeof(*r));
}

/* A short, printable copy of a provider's text (no long runs that might be a secret). */
static void provider_text(const char *in, char *out, size_t n)
{
    kw_api_echo(in, out, n);
    for (char *p = out; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
}

static int64_t json_seconds(json_t *v, int *ok)
{
    *ok = 0;
    if (json_is_integer(v) && json_integer_value(v) > 0) {
        *ok = 1;
        return json_integer_value(v);
    }
    if (json_is_real(v) && json_real_value(v) >= 1 && json_real_value(v) < 1e12) {
        *ok = 1;
        return (int64_t)json_real_value(v);
    }
    const char *s = json_string_value(v); /* some providers send "3600" */
    if (s && *s >= '0' && *s <= '9') {
        char *end;
        long long x = strtoll(s, &end, 10);
        if (*end == '\0' && x > 0) {
            *ok = 1;
            return x;
        }
    }
    return 0;
}

static void parse_answer(const answer_t *a, result_t *r)
{
    json_error_t je;
    json_t *j = a->n ? json_loadb(a->p, a->n, 0, &je) : NULL;
    const char *err = json_string_value(json_object_get(j, "error"));
    if (r->status < 200 || r->status > 299) {
        char e1[64] = "", e2[128] = "";
        if (err)
            provider_text(err, e1, sizeof(e1));
        const char *d = json_string_value(json_object_get(j, "error_description"));
        if (d)
            provider_text(d, e2, sizeof(e2));
        snprintf(r->error, sizeof(r->error), "token endpoint answered HTTP %ld%s%s%s%s", r->status,
                 err ? ": " : "", e1, d ? " - " : "", e2);
        r->invalid_grant = err && strcmp(err, "invalid_grant") == 0;
        json_decref(j);
        return;
    }
    if (!json_is_object(j)) {
        snprintf(r->error, sizeof(r->error),
                 "token endpoint answered HTTP %ld with a body that is not a JSON object",
                 r->status);
        json_decref(j);
        return;
    }
    json_t *at = json_object_get(j, "access_token"), *tt = json_object_get(j, "token_type");
    json_t *rt = json_object_get(j, "refresh_token");
    int ok;
    r->expires_in = json_seconds(json_object_get(j, "expires_in"), &ok);
    if (!json_is_string(at) || json_string_length(at) == 0 || json_string_length(at) > 16384 ||
        strlen(json_string_value(at)) != json_string_length(at)) {
        snprintf(r->error, sizeof(r->error), "token answer has no usable access_token");
    } else if (!ok) {
        snprintf(r->error, sizeof(r->error),
                 "token answer has no usable expires_in (a positive number of seconds)");
    } else if (tt && (!json_is_string(tt) || json_string_length(tt) >= sizeof(r->token_type))) {
        snprintf(r->error, sizeof(r->error), "token answer has an invalid token_type");
    } else if (rt && (!json_is_string(rt) || json_string_length(rt) == 0 ||
                      json_string_length(rt) > 16384)) {
        snprintf(r->error, sizeof(r->error), "token answer has an invalid refresh_token");
    } else {
        r->access_token = strdup(json_string_value(at));
        r->refresh_token = rt ? strdup(json_string_value(rt)) : NULL;
        snprintf(r->token_type, sizeof(r->token_type), "%s", tt ? json_string_value(tt) : "Bearer");
        r->refresh_expires_in = json_seconds(json_object_get(j, "refresh_expires_in"), &ok);
        if (r->access_token == NULL || (rt && r->refresh_token == NULL))
            snprintf(r->error, sizeof(r->error), "out of memory");
        else
            r->ok = 1;
    }
    json_decref(j);
}

/* Append "&name=value" (value percent-encoded) to the form body *b. */
static int form_add(CURL *cu, char **b, const char *name, const char *value)
{
    char *ev = curl_easy_escape(cu, value, 0);
    if (ev == NULL)
        return -1;
    size_t old = *b ? strlen(*b) : 0, need = old + strlen(name) + strlen(ev) + 3;
    char *nb = malloc(need);
    if (nb == NULL) {
        kw_wipe(ev, strlen(ev));
        curl_free(ev);
        return -1;
    }
    snprintf(nb, need, "%s%s%s=%s", *b ? *b : "", old ? "&" : "", name, ev);
    kw_wipe(ev, strlen(ev));
    curl_free(ev);
    kw_secrets_free(*b);
    *b = nb;
    return 0;
}

/* POST one token request for w with the given plaintext client secret and refresh token
 * (either may be NULL); fills r. */
static void token_request(kw_server_t *srv, const kw_watched_t *w, const char *secret,
                          const char *refresh, result_t *r)
{
    char addr[64] = "", host[256], why[200];
    int port = 0;
    char *body = NULL, *auth = NULL;
    answer_t a = {0};
    struct curl_slist *h = NULL, *resolve = NULL;
    memset(r, 0, sizeof(*r));
    if (kw_url_allowed(w->token_url, srv->cfg.webhook_allow_private, why, sizeof(why), addr,
                       sizeof(addr), &port, host, sizeof(host)) != 0) {
        snprintf(r->error, sizeof(r->error), "token_url: %s", why);
        return;
    }
    CURL *cu = curl_easy_init();
    if (cu == NULL) {
        snprintf(r->error, sizeof(r->error), "out of memory");
        return;
    }
    int bad = 0;
    int rt_grant = strcmp(w->grant_type, "refresh_token") == 0;
    bad |= form_add(cu, &body, "grant_type", rt_grant ? "refresh_token" : "client_credentials");
    if (rt_grant)
        bad |= form_add(cu, &body, "refresh_token", refresh ? refresh : "");
    if (w->scope)
        bad |= form_add(cu, &body, "scope", w->scope);
    if (secret && strcmp(w->auth_method, "basic") == 0) {
        /* RFC 6749 §2.3.1: both form-urlencoded, then base64 of id:secret */
        char *eid = curl_easy_escape(cu, w->client_id, 0), *esec = curl_easy_escape(cu, secret, 0);
        size_t ln = (eid ? strlen(eid) : 0) + (esec ? strlen(esec) : 0) + 2;
        char *pair = malloc(ln);
        char *b64 = malloc(4 * (ln / 3 + 2) + 32);
        if (eid && esec && pair && b64) {
            snprintf(pair, ln, "%s:%s", eid, esec);
            strcpy(b64, "Authorization: Basic ");
            kw_base64((const uint8_t *)pair, strlen(pair), b64 + strlen(b64));
            auth = b64;
            b64 = NULL;
        } else {
            bad = 1;
        }
        if (esec)
            kw_wipe(esec, strlen(esec));
        if (pair)
            kw_wipe(pair, strlen(pair));
        curl_free(eid);
        curl_free(esec);
        free(pair);
        free(b64);
    } else {
        bad |= form_add(cu, &body, "client_id", w->client_id);
        if (secret)
            bad |= form_add(cu, &body, "client_secret", secret);
    }
    if (bad) {
        snprintf(r->error, sizeof(r->error), "out of memory");
        goto out;
    }
    resolve = kw_url_pin(host, port, addr);
    h = curl_slist_append(h, "Content-Type: application/x-www-form-urlencoded");
    h = curl_slist_append(h, "Accept: application/json");
    h = curl_slist_append(h, "User-Agent: keyward");
    if (auth)
        h = curl_slist_append(h, auth);
    curl_easy_setopt(cu, CURLOPT_URL, w->token_url);
    curl_easy_setopt(cu, CURLOPT_RESOLVE, resolve);
    curl_easy_setopt(cu, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(cu, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(cu, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    curl_easy_setopt(cu, CURLOPT_TIMEOUT, TIMEOUT_S);
    curl_easy_setopt(cu, CURLOPT_CONNECTTIMEOUT, CONNECT_S);
    curl_easy_setopt(cu, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(cu, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(cu, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(cu, CURLOPT_SSL_VERIFYHOST, 2L);
    if (srv->cfg.ca_file[0])
        curl_easy_setopt(cu, CURLOPT_CAINFO, srv->cfg.ca_file);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(cu, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(cu, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    curl_easy_setopt(cu, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(cu, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(cu, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(cu, CURLOPT_WRITEDATA, &a);
    CURLcode cc = curl_easy_perform(cu);
    curl_easy_getinfo(cu, CURLINFO_RESPONSE_CODE, &r->status);
    if (a.too_big)
        snprintf(r->error, sizeof(r->error), "token endpoint answer larger than %d bytes: refused",
                 ANSWER_MAX);
    else if (cc != CURLE_OK)
        snprintf(r->error, sizeof(r->error), "token endpoint unreachable: %s",
                 curl_easy_strerror(cc));
    else
        parse_answer(&a, r);
out:
    if (a.p) {
        kw_wipe(a.p, a.cap);
        free(a.p);
    }
    kw_secrets_free(body);
    kw_secrets_free(auth);
    curl_slist_free_all(h);
    curl_slist_free_all(resolve);
    curl_easy_cleanup(cu);
}

/* ---- one refresh ---- */

/* *out = a copy of sealed (NULL stays NULL). */
static int copy_sealed(const char *sealed, char **out, kw_err_t *err)
{
    *out = NULL;
    if (sealed && (*out = strdup(sealed)) == NULL)
        return kw_err_set(err, KW_ENOMEM, NULL, "out of memory");
    return 0;
}

/* Inside the write: re-read w0's row and record on it the outcome r of a request made at
 * t_send, with its events; a result for a row deleted or reconfigured meanwhile (another
 * gen) is dropped. used_prev: the kept previous refresh token was the one that worked. The
 * sealed tokens stay the caller's (a run may run again: each run copies them). */
typedef struct result_tx {
    kw_server_t *srv;
    const kw_watched_t *w0;
    const result_t *r;
    const char *sealed_at, *sealed_rt;
    int used_prev;
    int64_t t_send, t_now;
    kw_watched_t *w; /* output (the row as read, then as written), reset by every run */
} result_tx_t;

static int result_run(kw_store_t *st, void *ud, kw_err_t *err)
{
    result_tx_t *t = ud;
    kw_watched_t *w = t->w;
    char evid[KW_ID_MAX];
    kw_watched_clear(w);
    int rc = kw_store_watched_get(st, t->w0->id, w, err);
    if (rc == KW_ENOTFOUND || (rc == 0 && w->gen != t->w0->gen))
        return 0; /* deleted or reconfigured meanwhile: this result is for something gone */
    if (rc)
        return rc;
    w->last_attempt_ms = t->t_send;
    w->last_status = t->r->status;
    if (t->r->ok) {
        int recovered = w->failures > 0;
        int64_t life = t->r->expires_in * 1000;
        free(w->access_token_sealed);
        w->access_token_sealed = NULL;
        if (copy_sealed(t->sealed_at, &w->access_token_sealed, err) != 0)
            return KW_ENOMEM;
        snprintf(w->token_type, sizeof(w->token_type), "%s", t->r->token_type);
        w->token_obtained_ms = t->t_send;
        w->token_expires_ms = t->t_send + life;
        w->token_lapse_raised = 0;
        w->next_refresh_ms = kw_refresh_due_at(t->t_send, life, uniform());
        if (strcmp(w->grant_type, "refresh_token") == 0) {
            if (t->sealed_rt) { /* rotated: keep the one that worked until the new one has */
                char *worked =
                    t->used_prev ? w->refresh_token_prev_sealed : w->refresh_token_sealed;
                if (t->used_prev) {
                    free(w->refresh_token_sealed);
                    w->refresh_token_sealed = NULL;
                } else {
                    free(w->refresh_token_prev_sealed);
                    w->refresh_token_prev_sealed = NULL;
                }
                w->refresh_token_prev_sealed = worked;
                if (copy_sealed(t->sealed_rt, &w->refresh_token_sealed, err) != 0)
                    return KW_ENOMEM;
                kw_secret_hint(t->r->refresh_token, w->refresh_token_hint);
            } else if (t->used_prev) { /* the kept one works and was not rotated */
                free(w->refresh_token_sealed);
                w->refresh_token_sealed = w->refresh_token_prev_sealed;
                w->refresh_token_prev_sealed = NULL;
            } else { /* the current one is confirmed: the kept one can go */
                free(w->refresh_token_prev_sealed);
                w->refresh_token_prev_sealed = NULL;
            }
            if (t->r->refresh_expires_in > 0)
                w->refresh_expires_at = t->t_send / 1000 + t->r->refresh_expires_in;
        }
        w->last_success_ms = t->t_now;
        if (recovered) {
            json_t *x =
                json_pack("{s:I, s:i, s:o}", "failures", (json_int_t)w->failures, "http_status",
                          (int)t->r->status, "token_expires_at", jtime_ms(w->token_expires_ms));
            rc = kw_watched_event(t->srv, "watched.recovered", w, t->t_now / 1000, x, evid, err);
        }
        w->failures = 0;
        w->last_error[0] = '\0';
    } else {
        w->failures++;
        snprintf(w->last_error, sizeof(w->last_error), "%s", t->r->error);
        int64_t next = t->t_now + kw_refresh_backoff_ms(w->failures, uniform());
        int lapsed = w->access_token_sealed && w->token_expires_ms <= t->t_now;
        if (w->access_token_sealed && !lapsed && w->token_expires_ms < next)
            next = w->token_expires_ms; /* be there when it lapses */
        w->next_refresh_ms = next;
        json_t *x = json_pack("{s:o, s:s, s:I, s:o, s:o}", "http_status",
                              t->r->status ? json_integer(t->r->status) : json_null(), "error",
                              t->r->error, "failures", (json_int_t)w->failures, "next_attempt_at",
                              jtime_ms(next), "token_expires_at", jtime_ms(w->token_expires_ms));
        rc = kw_watched_event(t->srv, "watched.refresh_failed", w, t->t_now / 1000, x, evid, err);
        if (rc == 0 && lapsed && !w->token_lapse_raised) {
            json_t *y =
                json_pack("{s:s, s:o, s:s, s:o}", "subject", "access_token", "expires_at",
                          jtime_ms(w->token_expires_ms), "error", t->r->error, "http_status",
                          t->r->status ? json_integer(t->r->status) : json_null());
            rc = kw_watched_event(t->srv, "watched.expired", w, t->t_now / 1000, y, evid, err);
            w->token_lapse_raised = 1;
        }
    }
    if (rc == 0)
        rc = kw_store_watched_update(st, w, err);
    return rc;
}

/* Commit the outcome r of a request made at t_send for w0 (as read before the request), then
 * write the token file on success. */
static int commit_result(kw_server_t *srv, const kw_watched_t *w0, result_t *r, int used_prev,
                         int64_t t_send, kw_err_t *err)
{
    kw_watched_t w = {0};
    char *sealed_at = NULL, *sealed_rt = NULL;
    result_tx_t t = {.srv = srv,
                     .w0 = w0,
                     .r = r,
                     .used_prev = used_prev,
                     .t_send = t_send,
                     .t_now = now_ms(),
                     .w = &w};
    int rc;
    /* sealed before the write: a seal is a short, self-contained call */
    if (r->ok && ((rc = kw_secrets_seal(srv, w0->id, r->access_token, &sealed_at, err)) != 0 ||
                  (rc = kw_secrets_seal(srv, w0->id, r->refresh_token, &sealed_rt, err)) != 0))
        goto done;
    t.sealed_at = sealed_at;
    t.sealed_rt = sealed_rt;
    rc = kw_lc_tx(&srv->lc, result_run, NULL, &t, err);
done:
    free(sealed_at);
    free(sealed_rt);
    if (rc == 0 && r->ok && w.token_file && w.id[0]) {
        kw_err_t fe = {0};
        if (kw_watched_write_token_file(w.token_file, r->access_token, &fe) != 0)
            kw_log(KW_LOG_WARN, "token file not written", "{s:s, s:s}", "watched", w.id, "error",
                   fe.msg);
    }
    kw_watched_clear(&w);
    return rc;
}

/* Inside the write (several nodes): claim w0's row if it is still due and unchanged. */
typedef struct claim_tx {
    const kw_watched_t *w0;
    kw_watched_t *fresh; /* outputs, reset by every run */
    int claimed;
} claim_tx_t;

static int claim_run(kw_store_t *st, void *ud, kw_err_t *err)
{
    claim_tx_t *t = ud;
    kw_watched_clear(t->fresh);
    t->claimed = 0;
    int g = kw_store_watched_get(st, t->w0->id, t->fresh, err);
    if (g == 0 && t->fresh->gen == t->w0->gen && t->fresh->next_refresh_ms <= now_ms()) {
        t->fresh->next_refresh_ms = now_ms() + CLAIM_MS;
        g = kw_store_watched_update(st, t->fresh, err);
        t->claimed = g == 0;
    }
    return g;
}

static int refresh_one(kw_server_t *srv, const kw_watched_t *w0)
{
    char *secret = NULL, *rt = NULL, *prev = NULL;
    result_t r;
    kw_err_t e = {0};
    int used_prev = 0;
    kw_watched_t fresh = {0};
    memset(&r, 0, sizeof(r));
    /* the dispatcher's list may be a moment old: is it still due, and the same? */
    int g = kw_store_watched_get(srv->store, w0->id, &fresh, &e);
    if (g == KW_ENOTFOUND ||
        (g == 0 && (fresh.gen != w0->gen || fresh.next_refresh_ms > now_ms()))) {
        kw_watched_clear(&fresh);
        return 0;
    }
    if (g != 0)
        return g;
    /* pg2: several nodes on one store each run a refresher; the first to claim the row
     * (its next refresh moved past this attempt, the row locked while it does) refreshes,
     * the others find it no longer due. A node that dies mid-way leaves the claim to lapse. */
    if (kw_store_shared(srv->store)) {
        claim_tx_t ct = {.w0 = w0, .fresh = &fresh};
        g = kw_lc_tx(&srv->lc, claim_run, NULL, &ct, &e);
        int claimed = g == 0 && ct.claimed;
        if (!claimed || g != 0) {
            kw_watched_clear(&fresh);
            return g == KW_ENOTFOUND ? 0 : g;
        }
    }
    const kw_watched_t *w = &fresh;
    int64_t t_send = now_ms();
    if (kw_secrets_open(srv, w->id, w->client_secret_sealed, &secret, &e) != 0 ||
        kw_secrets_open(srv, w->id, w->refresh_token_sealed, &rt, &e) != 0 ||
        kw_secrets_open(srv, w->id, w->refresh_token_prev_sealed, &prev, &e) != 0) {
        snprintf(r.error, sizeof(r.error),
                 "stored secrets cannot be opened with the secrets key file");
    } else {
        token_request(srv, w, secret, rt, &r);
        if (!r.ok && r.invalid_grant && prev) { /* a rotation whose new token never took */
            result_t r2;
            token_request(srv, w, secret, prev, &r2);
            if (r2.ok) {
                result_clear(&r);
                r = r2;
                used_prev = 1;
            } else {
                result_clear(&r2);
            }
        }
    }
    kw_secrets_free(secret);
    kw_secrets_free(rt);
    kw_secrets_free(prev);
    if (atomic_load(&stopping)) { /* cut short by shutdown: not the provider's failure */
        result_clear(&r);
        kw_watched_clear(&fresh);
        return 0;
    }
    kw_metrics_oauth_refresh(w->id, r.ok);
    if (!r.ok)
        kw_log(KW_LOG_WARN, "token refresh failed", "{s:s, s:I, s:s}", "watched", w->id,
               "http_status", (json_int_t)r.status, "error", r.error);
    int rc = commit_result(srv, w, &r, used_prev, t_send, &e);
    if (rc)
        kw_log(KW_LOG_WARN, "token refresh outcome not stored; will retry", "{s:s, s:s}", "watched",
               w->id, "error", e.msg);
    result_clear(&r);
    kw_watched_clear(&fresh);
    return rc;
}

/* ---- the thread ---- */

/* After a restart: refreshes already due are spread over a window instead of all at once;
 * those whose token is still valid over up to half of its remaining life. */
typedef struct spread_tx {
    int64_t now;
    size_t n; /* outputs, reset by every run */
    int64_t window;
} spread_tx_t;

static int spread_run(kw_store_t *st, void *ud, kw_err_t *err)
{
    spread_tx_t *sp = ud;
    int64_t t = sp->now;
    kw_watched_t *a = NULL;
    size_t n = 0;
    int rc = kw_store_watched_refresh_due(st, t, 100000, &a, &n, err);
    int64_t window = (int64_t)n * 20; /* ~50 requests a second at most */
    if (window > SPREAD_MAX_MS)
        window = SPREAD_MAX_MS;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        int64_t w = window;
        if (a[i].access_token_sealed && a[i].token_expires_ms > t) {
            int64_t half = (a[i].token_expires_ms - t) / 2;
            w = half < SPREAD_MAX_MS ? half : SPREAD_MAX_MS;
        }
        a[i].next_refresh_ms = t + (int64_t)(uniform() * (double)w);
        rc = kw_store_watched_update(st, &a[i], err);
    }
    kw_watched_array_free(a, n);
    sp->n = n;
    sp->window = window;
    return rc;
}

static void spread_overdue(kw_server_t *srv)
{
    kw_err_t e = {0};
    spread_tx_t t = {.now = now_ms()};
    if (kw_lc_tx(&srv->lc, spread_run, NULL, &t, &e) == 0 && t.n)
        kw_log(KW_LOG_INFO, "overdue token refreshes spread out", "{s:I, s:I}", "count",
               (json_int_t)t.n, "window_ms", (json_int_t)t.window);
}

/* Worker j: run the job handed out to it, if any, then wake the dispatcher. */
static int64_t worker_pass(kw_refresher_t *r, int j)
{
    pthread_mutex_lock(&r->bg.mu);
    int mine = r->busy[j] == 1;
    if (mine)
        r->busy[j] = 2;
    pthread_mutex_unlock(&r->bg.mu);
    if (!mine)
        return KW_BG_UNTIL_WOKEN;
    int rc = refresh_one(r->bg.srv, &r->job[j]);
    pthread_mutex_lock(&r->bg.mu);
    kw_watched_clear(&r->job[j]);
    r->busy[j] = 0;
    if (rc)
        r->store_failed = 1;
    pthread_mutex_unlock(&r->bg.mu);
    kw_bg_wake(&r->bg);
    return 0;
}

static int in_flight(const kw_refresher_t *r, const char *id)
{
    for (int i = 0; i < WORKERS; i++)
        if (r->busy[i] && strcmp(r->job[i].id, id) == 0)
            return 1;
    return 0;
}

/* The dispatcher: hand the due rows to free workers; sleep until the next is due (at most
 * MAX_SLEEP_MS), a worker finishes or the API changes a row. */
static int64_t dispatch_pass(kw_refresher_t *r)
{
    kw_server_t *srv = r->bg.srv;
    if (!r->spread) {
        r->spread = 1;
        spread_overdue(srv);
    }
    /* the soonest rows, in flight or not: enough to see past those in flight */
    kw_watched_t *due = NULL;
    size_t n = 0;
    kw_err_t e = {0};
    int64_t wait_ms = MAX_SLEEP_MS;
    int failed = kw_store_watched_refresh_due(srv->store, now_ms() + MAX_SLEEP_MS, WORKERS + 4,
                                              &due, &n, &e);
    int handed = 0;
    pthread_mutex_lock(&r->bg.mu);
    int64_t t = now_ms();
    for (size_t k = 0; failed == 0 && k < n; k++) {
        if (in_flight(r, due[k].id))
            continue;
        if (due[k].next_refresh_ms > t) {
            wait_ms = due[k].next_refresh_ms - t;
            break;
        }
        int f = 0;
        while (f < WORKERS && r->busy[f])
            f++;
        if (f == WORKERS) /* all busy: a worker's completion wakes us */
            break;
        r->job[f] = due[k];
        memset(&due[k], 0, sizeof(due[k]));
        r->busy[f] = 1;
        handed = 1;
    }
    if (failed || r->store_failed) {
        wait_ms = 1000; /* the store failed: no tight loop */
        r->store_failed = 0;
    }
    pthread_mutex_unlock(&r->bg.mu);
    kw_watched_array_free(due, n);
    if (handed)
        kw_bg_wake(&r->bg);
    return wait_ms > 0 ? wait_ms : 0;
}

static int64_t refresher_pass(void *owner, int i)
{
    return i == 0 ? dispatch_pass(owner) : worker_pass(owner, i - 1);
}

int kw_refresher_start(kw_server_t *srv, kw_refresher_t **out, kw_err_t *err)
{
    atomic_store(&stopping, 0);
    *out = kw_bg_launch(kw_bg_alloc(sizeof(kw_refresher_t), srv, err), 1 + WORKERS, refresher_pass,
                        "the token refresher threads", err);
    return *out ? 0 : KW_EINTERNAL;
}

void kw_refresher_wake(kw_refresher_t *r)
{
    if (r)
        kw_bg_wake(&r->bg);
}

void kw_refresher_stop(kw_refresher_t *r)
{
    if (r == NULL)
        return;
    atomic_store(&stopping, 1);
    kw_bg_stop(&r->bg);
    for (int i = 0; i < WORKERS; i++)
        kw_watched_clear(&r->job[i]);
    free(r);
}
