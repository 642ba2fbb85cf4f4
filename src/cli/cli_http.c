/* cli_http.c - the client side of the HTTP API: find the server (KEYWARD_ADDR) and the
 * admin token, send JSON with libcurl, turn problem+json answers into one line.
 * The token is never printed; every buffer here that held a request or response body,
 * or the token, is wiped before it is freed. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "cli/cli_http.h"
#include "cli/cli_util.h"

#define HTTP_DEFAULT_ADDR "http://127.0.0.1:8420"
#define HTTP_DEFAULT_TOKEN_FILE "keyward.admin-key"
#define HTTP_TOKEN_MAX 4096
#define HTTP_BODY_MAX (64L << 20) /* refuse answers above 64 MiB */

/* ---- address and token ---- */

static int http_addr(kw_cli_t *cli)
{
    const char *env = getenv("KEYWARD_ADDR");
    size_t n;

    if (env == NULL || *env == '\0')
        env = HTTP_DEFAULT_ADDR;
    for (const char *p = env; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return kw_cli_fail(KW_CLI_EUSAGE, "KEYWARD_ADDR contains a space or control character");
    /* "127.0.0.1:8420" is what `serve --listen` takes: accept it here too. */
    if (strstr(env, "://") == NULL)
        cli->addr = kw_cli_xasprintf("http://%s", env);
    else
        cli->addr = kw_cli_xstrdup(env);
    n = strlen(cli->addr);
    while (n > 0 && cli->addr[n - 1] == '/')
        cli->addr[--n] = '\0';
    return 0;
}

int kw_cli_token_clean(char *s)
{
    size_t n = strlen(s), start = 0;

    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = '\0';
    while (s[start] == ' ' || s[start] == '\t' || s[start] == '\n' || s[start] == '\r')
        start++;
    memmove(s, s + start, n - start + 1);
    if (*s == '\0')
        return -1;
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return -1;
    return 0;
}

/* Read the token from path into cli->token. missing_ok: a file that does not exist is
 * not an error (the ./keyward.admin-key fallback). */
static int http_token_file(kw_cli_t *cli, const char *path, const char *what, int missing_ok)
{
    char buf[HTTP_TOKEN_MAX + 1];
    size_t len = 0;
    ssize_t r;
    int fd, rc = 0;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (missing_ok && errno == ENOENT)
            return 0;
        return kw_cli_fail(KW_CLI_EUSAGE, "cannot read %s '%s': %s", what, path, strerror(errno));
    }
    while (len < HTTP_TOKEN_MAX && (r = read(fd, buf + len, HTTP_TOKEN_MAX - len)) != 0) {
        if (r < 0) {
            if (errno == EINTR)
                continue;
            rc = kw_cli_fail(KW_CLI_EUSAGE, "cannot read %s '%s': %s", what, path, strerror(errno));
            goto out;
        }
        len += (size_t)r;
    }
    buf[len] = '\0';
    if (len == HTTP_TOKEN_MAX || strlen(buf) != len || kw_cli_token_clean(buf) != 0) {
        rc = kw_cli_fail(KW_CLI_EUSAGE, "%s '%s' does not hold a key", what, path);
        goto out;
    }
    cli->token = kw_cli_xstrdup(buf);
    cli->token_src = what;
out:
    explicit_bzero(buf, sizeof buf);
    close(fd);
    return rc;
}

static int http_token(kw_cli_t *cli)
{
    const char *env = getenv("KEYWARD_TOKEN");

    if (env && *env) {
        cli->token = kw_cli_xstrdup(env);
        if (kw_cli_token_clean(cli->token) != 0)
            return kw_cli_fail(KW_CLI_EUSAGE, "KEYWARD_TOKEN does not hold a key");
        cli->token_src = "KEYWARD_TOKEN";
        return 0;
    }
    env = getenv("KEYWARD_TOKEN_FILE");
    if (env && *env)
        return http_token_file(cli, env, "KEYWARD_TOKEN_FILE", 0);
    if (env) /* set but empty: "no token file", not "the default one" */
        return 0;
    return http_token_file(cli, HTTP_DEFAULT_TOKEN_FILE, "admin key file", 1);
}

int kw_cli_http_init(kw_cli_t *cli, int need_token)
{
    int rc;

    if ((rc = http_addr(cli)) != 0)
        return rc;
    if (need_token && (rc = http_token(cli)) != 0)
        return rc;
    cli->curl = curl_easy_init();
    if (cli->curl == NULL)
        return kw_cli_fail(KW_CLI_EUSAGE, "cannot initialise libcurl");
    return 0;
}

void kw_cli_http_cleanup(kw_cli_t *cli)
{
    if (cli->curl)
        curl_easy_cleanup(cli->curl);
    cli->curl = NULL;
    kw_cli_free_secret(cli->token);
    cli->token = NULL;
    kw_cli_free_secret(cli->caller_key);
    cli->caller_key = NULL;
    free(cli->addr);
    cli->addr = NULL;
}

/* ---- paths ---- */

char *kw_cli_path(const char *fmt, ...)
{
    char *out = NULL;
    size_t outlen = 0;
    FILE *f = open_memstream(&out, &outlen);
    va_list ap;

    if (f == NULL)
        return kw_cli_xstrdup("/"); /* unreachable in practice; the request then 404s */
    va_start(ap, fmt);
    for (const char *p = fmt; *p; p++) {
        if (p[0] == '%' && p[1] == 's') {
            char *e = curl_easy_escape(NULL, va_arg(ap, const char *), 0);

            fputs(e ? e : "", f);
            curl_free(e);
            p++;
        } else {
            fputc(*p, f);
        }
    }
    va_end(ap);
    if (fclose(f) != 0 || out == NULL) {
        free(out);
        return kw_cli_xstrdup("/");
    }
    return out;
}

void kw_cli_query_add(char **path, const char *name, const char *value)
{
    char *e = curl_easy_escape(NULL, value, 0), *n;

    if (e == NULL)
        return;
    n = kw_cli_xasprintf("%s%c%s=%s", *path, strchr(*path, '?') ? '&' : '?', name, e);
    curl_free(e);
    free(*path);
    *path = n;
}

/* ---- requests ---- */

typedef struct http_buf {
    char *p;
    size_t len, cap;
} http_buf_t;

static void http_buf_wipe(http_buf_t *b)
{
    if (b->p) {
        explicit_bzero(b->p, b->cap);
        free(b->p);
    }
    memset(b, 0, sizeof *b);
}

/* curl write callback: grow by copying so no old block is freed holding the answer. */
static size_t http_write(char *data, size_t size, size_t nmemb, void *ud)
{
    http_buf_t *b = ud;
    size_t n = size * nmemb;

    if (n > (size_t)HTTP_BODY_MAX - b->len)
        return 0;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        char *p;

        while (cap < b->len + n + 1)
            cap *= 2;
        p = malloc(cap);
        if (p == NULL)
            return 0;
        if (b->p) {
            memcpy(p, b->p, b->len);
            explicit_bzero(b->p, b->cap);
            free(b->p);
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
    return n;
}

/* Print the one line for an HTTP error answer. */
static int http_problem(kw_cli_t *cli, long status, const json_t *prob)
{
    const char *detail = NULL;
    json_t *d;

    if (json_is_object(prob)) {
        d = json_object_get(prob, "detail");
        if (!json_is_string(d) || json_string_length(d) == 0)
            d = json_object_get(prob, "title");
        if (json_is_string(d) && json_string_length(d) > 0)
            detail = json_string_value(d);
    }
    if (status == 401 && cli->token == NULL && (cli->cmd->flags & KW_CLI_CMD_ADMIN))
        return kw_cli_fail(cli->api_status,
                           "%s (HTTP 401); no admin key found: set KEYWARD_TOKEN or "
                           "KEYWARD_TOKEN_FILE",
                           detail ? detail : "unauthorized");
    if (status == 401 && cli->token)
        return kw_cli_fail(cli->api_status, "%s (HTTP 401, admin key from %s)",
                           detail ? detail : "unauthorized", cli->token_src);
    if (detail)
        return kw_cli_fail(cli->api_status, "%s (HTTP %ld)", detail, status);
    return kw_cli_fail(cli->api_status, "the server answered HTTP %ld", status);
}

int kw_cli_call(kw_cli_t *cli, const char *method, const char *path, json_t *body, json_t **out)
{
    CURL *h = cli->curl;
    struct curl_slist *hdrs = NULL, *tmp;
    http_buf_t resp = {0};
    char *url = NULL, *req = NULL, *auth = NULL, *caller = NULL;
    json_t *parsed = NULL;
    json_error_t jerr;
    CURLcode cc;
    long status = 0;
    int rc = 0;

    *out = NULL;
    url = kw_cli_xasprintf("%s%s", cli->addr, path);
    if (body) {
        req = json_dumps(body, JSON_COMPACT);
        if (req == NULL) {
            rc = kw_cli_fail(KW_CLI_EAPI, "cannot encode the request (arguments must be UTF-8)");
            goto out;
        }
    } else if (strcmp(method, "POST") == 0 || strcmp(method, "PATCH") == 0) {
        req = kw_cli_xstrdup("{}");
    }

    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_USERAGENT, "keyward-cli");
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, http_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &resp);
    if (req) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, req);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(req));
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0)
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);

    tmp = curl_slist_append(hdrs, "Accept: application/json, application/problem+json");
    if (tmp)
        hdrs = tmp;
    if (req && (tmp = curl_slist_append(hdrs, "Content-Type: application/json")))
        hdrs = tmp;
    if (cli->token) {
        auth = kw_cli_xasprintf("Authorization: Bearer %s", cli->token);
        if ((tmp = curl_slist_append(hdrs, auth)))
            hdrs = tmp;
    }
    if (cli->caller_key) {
        caller = kw_cli_xasprintf("Keyward-Caller-Key: %s", cli->caller_key);
        if ((tmp = curl_slist_append(hdrs, caller)))
            hdrs = tmp;
    }
    if (req && strcmp(method, "POST") == 0 && (tmp = curl_slist_append(hdrs, "Expect:")))
        hdrs = tmp; /* no 100-continue round trip */
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);

    cc = curl_easy_perform(h);
    if (cc == CURLE_WRITE_ERROR) {
        rc = kw_cli_fail(KW_CLI_EAPI, "the answer from %s was too large", cli->addr);
        goto out;
    }
    if (cc != CURLE_OK) {
        rc = kw_cli_fail(KW_CLI_EUSAGE, "cannot reach the server at %s: %s", cli->addr,
                         curl_easy_strerror(cc));
        goto out;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (resp.len > 0)
        parsed = json_loadb(resp.p, resp.len, 0, &jerr);
    if (status < 200 || status > 299) {
        rc = http_problem(cli, status, parsed);
        goto out;
    }
    if (resp.len > 0 && parsed == NULL) {
        rc = kw_cli_fail(KW_CLI_EAPI, "the server answered HTTP %ld with invalid JSON: %s", status,
                         jerr.text);
        goto out;
    }
    *out = parsed;
    parsed = NULL;
out:
    /* Drop the handle's pointers to the header list and body freed below; the connection
     * stays cached for the next request. */
    curl_easy_reset(h);
    for (tmp = hdrs; tmp; tmp = tmp->next)
        explicit_bzero(tmp->data, strlen(tmp->data));
    curl_slist_free_all(hdrs);
    json_decref(parsed);
    http_buf_wipe(&resp);
    kw_cli_free_secret(req);
    kw_cli_free_secret(auth);
    kw_cli_free_secret(caller);
    free(url);
    return rc;
}
