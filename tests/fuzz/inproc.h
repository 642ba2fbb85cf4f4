/* inproc.h - a real keyward server state inside a fuzz target: a temporary SQLite store,
 * the verification index and the lifecycle, created in LLVMFuzzerInitialize, and requests
 * handed to kw_api_handle with no socket and no libmicrohttpd connection (kw_req_t's
 * hdrs/query arrays stand in for it). Shared by fuzz_http.c and fuzz_api_json.c.
 *
 * Placeholders in an input are replaced before it is used, so a mutated input can reach
 * the authenticated routes and real ids:
 *   @A  the admin key          @V  a usable (non-admin) key
 *   @C  that key's credential  @K  that key's id
 * The pool follows what the server hands out (a created credential or key becomes @C/@K).
 *
 * Every answer is checked: no 5xx (bad input is a 4xx), every 4xx body is problem+json
 * whose status matches, every JSON body parses, and no error answer holds the admin key.
 * The store is thrown away and rebuilt every INPROC_RESET_EVERY inputs so a long run does
 * not grow without bound. */
#ifndef KW_FUZZ_INPROC_H
#define KW_FUZZ_INPROC_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "app/admin_key.h"
#include "core/key.h"
#include "core/util.h"
#include "server/api.h"
#include "server/log.h"
#include "server/ratelimit.h"

#define INPROC_RESET_EVERY 20000
#define INPROC_MAX_HDRS 32
#define INPROC_MAX_QUERY 16

#define INPROC_CHECK(cond)                                                                         \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "inproc check failed: %s (line %d)\n", #cond, __LINE__);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static kw_server_t *g_srv;
static char g_dir[256];
static char g_admin[KW_KEY_MAX + 1];
static char g_vkey[KW_KEY_MAX + 1];
static char g_cred[KW_ID_MAX], g_kid[KW_ID_MAX];
static unsigned long g_runs;

static void inproc_rm(void)
{
    static const char *const files[] = {"fuzz.db", "fuzz.db-wal", "fuzz.db-shm", "admin-key"};
    char p[512];
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(p, sizeof(p), "%s/%s", g_dir, files[i]);
        unlink(p);
    }
}

static void inproc_down(void)
{
    if (g_srv == NULL)
        return;
    kw_lc_destroy(&g_srv->lc);
    kw_index_free(g_srv->index);
    kw_store_close(g_srv->store);
    kw_rl_free(g_srv->authrl);
    free(g_srv);
    g_srv = NULL;
    inproc_rm();
}

static void inproc_up(void)
{
    kw_err_t e = {0};
    char url[600], path[512];
    int created = 0;

    g_srv = calloc(1, sizeof(*g_srv));
    INPROC_CHECK(g_srv != NULL);
    kw_config_defaults(&g_srv->cfg);
    snprintf(g_srv->cfg.trusted_ip_header, sizeof(g_srv->cfg.trusted_ip_header), "X-Forwarded-For");
    snprintf(url, sizeof(url), "sqlite:%s/fuzz.db", g_dir);
    INPROC_CHECK(kw_store_open(url, &g_srv->store, &e) == 0);
    g_srv->index = kw_index_new(1024);
    INPROC_CHECK(g_srv->index != NULL);
    INPROC_CHECK(kw_lc_init(&g_srv->lc, g_srv->store, g_srv->index) == 0);
    INPROC_CHECK(kw_lc_load_index(&g_srv->lc, kw_now() - g_srv->cfg.retention, &e) == 0);
    snprintf(path, sizeof(path), "%s/admin-key", g_dir);
    INPROC_CHECK(kw_admin_key_bootstrap(&g_srv->lc, path, &created, &e) == 0 && created);
    FILE *f = fopen(path, "r");
    INPROC_CHECK(f != NULL);
    INPROC_CHECK(fgets(g_admin, sizeof(g_admin), f) != NULL);
    fclose(f);
    g_admin[strcspn(g_admin, "\r\n")] = '\0';
    /* A burst no fuzz run reaches: the limiter is exercised but never locks the run out. */
    g_srv->authrl = kw_rl_new(1000000000, 1);

    kw_cred_in_t in = {.name = "fuzz", .scopes_json = "[\"read\",\"write\"]"};
    kw_expiry_in_t exp = {.kind = KW_EXP_DEFAULT};
    kw_cred_t c = {0};
    kw_keyrec_t k;
    INPROC_CHECK(kw_lc_cred_create(&g_srv->lc, "fuzz", &in, &exp, &c, &k, g_vkey, &e) == 0);
    snprintf(g_cred, sizeof(g_cred), "%s", c.id);
    snprintf(g_kid, sizeof(g_kid), "%s", k.id);
    kw_cred_clear(&c);
    kw_policy_t p;
    INPROC_CHECK(kw_store_policy_get(g_srv->store, "default", &p, &e) == 0);
    snprintf(p.name, sizeof(p.name), "fz");
    kw_lc_policy_put(&g_srv->lc, "fuzz", &p, 1, &e);
    g_srv->ready = 1;
}

static void inproc_exit(void)
{
    inproc_down();
    rmdir(g_dir);
}

static void inproc_init(void)
{
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(g_dir, sizeof(g_dir), "%s/kw-fuzz-XXXXXX", base);
    INPROC_CHECK(mkdtemp(g_dir) != NULL);
    kw_log_set_level(KW_LOG_ERROR + 1); /* quiet: the fuzzer's output is the report */
    inproc_up();
    atexit(inproc_exit);
}

/* Copy in[0..n) to a new NUL-terminated buffer with the placeholders replaced. */
static char *inproc_subst(const uint8_t *in, size_t n, size_t *out_len)
{
    size_t cap = n * (KW_KEY_MAX / 2) + 1, len = 0;
    char *out = malloc(cap);
    INPROC_CHECK(out != NULL);
    for (size_t i = 0; i < n; i++) {
        const char *rep = NULL;
        if (in[i] == '@' && i + 1 < n) {
            switch (in[i + 1]) {
            case 'A':
                rep = g_admin;
                break;
            case 'V':
                rep = g_vkey;
                break;
            case 'C':
                rep = g_cred;
                break;
            case 'K':
                rep = g_kid;
                break;
            }
        }
        if (rep) {
            size_t rl = strlen(rep);
            memcpy(out + len, rep, rl);
            len += rl;
            i++;
        } else {
            out[len++] = (char)in[i];
        }
    }
    out[len] = '\0';
    *out_len = len;
    return out;
}

/* Follow what the server handed out, so later inputs act on live objects. */
static void inproc_follow(const kw_resp_t *rs)
{
    if (rs->status != 201 || rs->body == NULL)
        return;
    json_t *j = json_loads(rs->body, 0, NULL);
    const char *secret = json_string_value(json_object_get(j, "secret"));
    const char *kid = json_string_value(json_object_get(json_object_get(j, "key"), "id"));
    const char *cid =
        json_string_value(json_object_get(json_object_get(j, "key"), "credential_id"));
    if (secret && kid && cid && strlen(secret) <= KW_KEY_MAX) {
        snprintf(g_vkey, sizeof(g_vkey), "%s", secret);
        snprintf(g_kid, sizeof(g_kid), "%s", kid);
        snprintf(g_cred, sizeof(g_cred), "%s", cid);
    }
    json_decref(j);
}

static void inproc_check(const kw_resp_t *rs)
{
    INPROC_CHECK(rs->status >= 100 && rs->status <= 599);
    if (rs->status >= 500 && rs->body)
        fprintf(stderr, "5xx answer: %d %s\n", rs->status, rs->body);
    INPROC_CHECK(rs->status < 500);
    INPROC_CHECK(rs->nh <= KW_HTTP_MAX_HEADERS);
    if (rs->body) {
        INPROC_CHECK(strlen(rs->body) == rs->len);
        /* An error never echoes a key. (A 2xx may: an input can store the key text in a
         * name, and reading it back is not a leak.) */
        INPROC_CHECK(rs->status < 400 || strstr(rs->body, g_admin) == NULL);
        if (rs->status < 400 && !(rs->ctype && strstr(rs->ctype, "json")))
            goto headers; /* /metrics: Prometheus text */
        json_error_t je;
        json_t *j = json_loadb(rs->body, rs->len, 0, &je);
        INPROC_CHECK(j != NULL);
        if (rs->status >= 400) {
            INPROC_CHECK(rs->ctype && strcmp(rs->ctype, "application/problem+json") == 0);
            INPROC_CHECK(json_integer_value(json_object_get(j, "status")) == rs->status);
            INPROC_CHECK(json_is_string(json_object_get(j, "detail")));
        }
        json_decref(j);
    }
headers:
    for (size_t i = 0; i < rs->nh; i++) {
        INPROC_CHECK(rs->hname[i] && rs->hval[i]);
        INPROC_CHECK(strpbrk(rs->hval[i], "\r\n") == NULL); /* no header injection */
    }
}

/* One request through kw_api_handle. body (may be NULL) is copied; hdrs and query are
 * NULL-ended name/value lists. */
static void inproc_request(const char *method, const char *path, const char *const *hdrs,
                           const char *const *query, const char *body, size_t blen)
{
    kw_req_t rq;
    kw_resp_t rs;
    memset(&rq, 0, sizeof(rq));
    memset(&rs, 0, sizeof(rs));
    rq.method = method;
    rq.path = path;
    rq.hdrs = hdrs;
    rq.query = query;
    rq.peer = "192.0.2.7";
    rq.now = kw_now();
    if (blen > (size_t)g_srv->cfg.max_body) {
        /* http.c answers this before the handler sees it */
        kw_resp_error(&rs, KW_ETOOBIG, NULL, "request body exceeds %lld bytes",
                      (long long)g_srv->cfg.max_body);
    } else {
        if (blen) {
            rq.body = malloc(blen + 1);
            INPROC_CHECK(rq.body != NULL);
            memcpy(rq.body, body, blen);
            rq.body[blen] = '\0';
            rq.body_len = blen;
            rq.body_cap = blen + 1;
        }
        kw_api_handle(g_srv, &rq, &rs);
    }
    inproc_check(&rs);
    inproc_follow(&rs);
    free(rq.body);
    free(rq.path_copy);
    kw_resp_clear(&rs);
    if (++g_runs % INPROC_RESET_EVERY == 0) {
        inproc_down();
        inproc_up();
    }
}

#endif
