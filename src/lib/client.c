/* client.c - libkeyward's verify client: one kept-alive HTTP/1.1 connection to keyward,
 * GET /v1/auth and POST /v1/keys/verify, answers parsed by parse.c. Plain blocking
 * sockets with timeouts; one client per thread.
 * Must not: keep key text after a call returns (the request buffer is wiped), or send a
 * header value holding CR, LF or other control characters. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "core/key.h"
#include "keyward.h"
#include "parse.h"

#define KWL_TOKEN_MAX 1600 /* the longest OAuth2 access token (core/token.h KW_TOKEN_MAX) */

struct keyward_client {
    char host[256];
    char port[8];
    char hosthdr[280]; /* Host header value */
    char ip_header[64];
    char caller_key[KEYWARD_KEY_MAX + 1];
    int timeout_ms;
    int fd; /* -1 when not connected */
    char buf[KWL_MAX_RESPONSE + 1024];
    size_t have; /* unparsed bytes in buf */
};

KEYWARD_API int keyward_client_new(const char *addr, int timeout_ms, keyward_client_t **out)
{
    if (addr == NULL || out == NULL)
        return KEYWARD_EINVAL;
    if (strncmp(addr, "http://", 7) == 0)
        addr += 7;
    size_t alen = strcspn(addr, "/");
    const char *colon = NULL;
    for (size_t i = 0; i < alen; i++)
        if (addr[i] == ':')
            colon = addr + i;
    if (colon == NULL || colon == addr)
        return KEYWARD_EINVAL;
    size_t plen = alen - (size_t)(colon + 1 - addr), hlen = (size_t)(colon - addr);
    if (plen == 0 || plen > 5 || hlen >= 256)
        return KEYWARD_EINVAL;
    for (size_t i = 0; i < plen; i++)
        if (colon[1 + i] < '0' || colon[1 + i] > '9')
            return KEYWARD_EINVAL;
    keyward_client_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return KEYWARD_ENOMEM;
    memcpy(c->hosthdr, addr, alen < sizeof(c->hosthdr) ? alen : sizeof(c->hosthdr) - 1);
    const char *h = addr;
    if (hlen >= 2 && h[0] == '[' && h[hlen - 1] == ']') {
        h++;
        hlen -= 2;
    }
    memcpy(c->host, h, hlen);
    memcpy(c->port, colon + 1, plen);
    for (size_t i = 0; c->hosthdr[i]; i++)
        if ((unsigned char)c->hosthdr[i] <= 0x20 || c->hosthdr[i] == 0x7f) {
            free(c);
            return KEYWARD_EINVAL;
        }
    c->timeout_ms = timeout_ms > 0 ? timeout_ms : 5000;
    c->fd = -1;
    *out = c;
    return KEYWARD_OK;
}

static void disconnect(keyward_client_t *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->have = 0;
}

KEYWARD_API void keyward_client_free(keyward_client_t *c)
{
    if (c == NULL)
        return;
    disconnect(c);
    kw_wipe(c, sizeof(*c));
    free(c);
}

/* A header value we may send: printable ASCII (and tab/space) only. */
static int safe_value(const char *v)
{
    for (; *v; v++)
        if (((unsigned char)*v < 0x20 && *v != '\t') || (unsigned char)*v >= 0x7f)
            return 0;
    return 1;
}

KEYWARD_API int keyward_client_set_ip_header(keyward_client_t *c, const char *name)
{
    if (c == NULL)
        return KEYWARD_EINVAL;
    if (name == NULL || name[0] == '\0') {
        c->ip_header[0] = '\0';
        return KEYWARD_OK;
    }
    size_t n = strlen(name);
    if (n >= sizeof(c->ip_header))
        return KEYWARD_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= 'A' && name[i] <= 'Z') ||
              (name[i] >= '0' && name[i] <= '9') || name[i] == '-' || name[i] == '_'))
            return KEYWARD_EINVAL;
    memcpy(c->ip_header, name, n + 1);
    return KEYWARD_OK;
}

KEYWARD_API int keyward_client_set_caller_key(keyward_client_t *c, const char *key)
{
    if (c == NULL)
        return KEYWARD_EINVAL;
    kw_wipe(c->caller_key, sizeof(c->caller_key));
    if (key == NULL)
        return KEYWARD_OK;
    if (kw_key_check(key, strlen(key), NULL) != 0)
        return KEYWARD_EMALFORMED;
    memcpy(c->caller_key, key, strlen(key) + 1);
    return KEYWARD_OK;
}

static int connect_now(keyward_client_t *c)
{
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *ai = NULL, *a;
    if (getaddrinfo(c->host, c->port, &hints, &ai) != 0)
        return KEYWARD_EIO;
    int rc = KEYWARD_EIO;
    for (a = ai; a && rc != KEYWARD_OK; a = a->ai_next) {
        int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
            continue;
        if (connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
            struct pollfd pf = {.fd = fd, .events = POLLOUT};
            int err = 0;
            socklen_t el = sizeof(err);
            if (errno != EINPROGRESS || poll(&pf, 1, c->timeout_ms) != 1 ||
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0 || err != 0) {
                close(fd);
                continue;
            }
        }
        int fl = fcntl(fd, F_GETFL);
        fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
        struct timeval tv = {.tv_sec = c->timeout_ms / 1000,
                             .tv_usec = (c->timeout_ms % 1000) * 1000};
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        c->fd = fd;
        c->have = 0;
        rc = KEYWARD_OK;
    }
    freeaddrinfo(ai);
    return rc;
}

static int send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Send req and read one answer into res. *fresh tells whether the connection was new, so
 * a failure on a reused one (the server closed it while idle) can be retried. */
static int exchange(keyward_client_t *c, const char *req, size_t n, kwl_http_t *http,
                    keyward_result_t *res, int *fresh)
{
    *fresh = 0;
    if (c->fd < 0) {
        int rc = connect_now(c);
        if (rc)
            return rc;
        *fresh = 1;
    }
    if (send_all(c->fd, req, n) != 0) {
        disconnect(c);
        return KEYWARD_EIO;
    }
    c->have = 0;
    for (;;) {
        ssize_t r = recv(c->fd, c->buf + c->have, sizeof(c->buf) - c->have, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            disconnect(c);
            return KEYWARD_EIO;
        }
        c->have += (size_t)r;
        memset(res, 0, sizeof(*res));
        int pr = kwl_parse_response(c->buf, c->have, http, res);
        if (pr < 0 || (pr == 1 && c->have == sizeof(c->buf))) {
            disconnect(c);
            return KEYWARD_EPROTO;
        }
        if (pr == 0)
            break;
    }
    res->http_status = http->status;
    return KEYWARD_OK;
}

static int roundtrip(keyward_client_t *c, const char *req, size_t n, kwl_http_t *http,
                     keyward_result_t *res)
{
    int fresh, rc = exchange(c, req, n, http, res, &fresh);
    if (rc == KEYWARD_EIO && !fresh)
        rc = exchange(c, req, n, http, res, &fresh); /* stale keep-alive connection */
    return rc;
}

static void malformed(keyward_result_t *res)
{
    memset(res, 0, sizeof(*res));
    res->http_status = 401;
    snprintf(res->code, sizeof(res->code), "MALFORMED");
    snprintf(res->message, sizeof(res->message), "Authentication failed: malformed API key");
}

/* 1 when key has an OAuth2 access token's shape (SPEC §13, core/token.h): prefix "_at_"
 * then base62 words of 11 characters. Only keyward can check its MAC: it is sent. */
static int token_shaped(const char *key)
{
    size_t n = strlen(key), p = 0;
    while (p < n && p <= KW_PREFIX_MAX && key[p] != '_')
        p++;
    if (p == 0 || p > KW_PREFIX_MAX || !kw_key_prefix_valid(key, p) || n > KWL_TOKEN_MAX ||
        strncmp(key + p, "_at_", 4) != 0 || (n - p - 4) == 0 || (n - p - 4) % 11 != 0)
        return 0;
    for (size_t i = p + 4; i < n; i++) {
        char ch = key[i];
        if (!((ch >= '0' && ch <= '9') || (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z')))
            return 0;
    }
    return 1;
}

/* Common argument checks; returns 1 when the key is malformed (res filled). */
static int check_args(keyward_client_t *c, const char *key, const char *scope, const char *ip,
                      keyward_result_t *res, int *rc)
{
    *rc = KEYWARD_OK;
    if (c == NULL || res == NULL || (scope && (!safe_value(scope) || strlen(scope) > 256)) ||
        (ip && (!safe_value(ip) || strlen(ip) > 64))) {
        *rc = KEYWARD_EINVAL;
        return 1;
    }
    if (key == NULL || (kw_key_check(key, strlen(key), NULL) != 0 && !token_shaped(key))) {
        malformed(res);
        return 1;
    }
    return 0;
}

/* Append the NULL-ended strings to b at off (cap bytes in all); SIZE_MAX once full. */
static size_t app(char *b, size_t off, size_t cap, ...)
{
    va_list ap;
    va_start(ap, cap);
    for (const char *s = va_arg(ap, const char *); s && off != SIZE_MAX;
         s = va_arg(ap, const char *)) {
        size_t l = strlen(s);
        if (off + l >= cap)
            off = SIZE_MAX;
        else {
            memcpy(b + off, s, l);
            off += l;
        }
    }
    va_end(ap);
    return off;
}

KEYWARD_API int keyward_auth(keyward_client_t *c, const char *key, const char *scope,
                             const char *client_ip, keyward_result_t *res)
{
    char req[4096];
    kwl_http_t http;
    int rc;
    if (check_args(c, key, scope, client_ip, res, &rc))
        return rc;
    size_t n = app(req, 0, sizeof(req), "GET /v1/auth HTTP/1.1\r\nHost: ", c->hosthdr,
                   "\r\nAuthorization: Bearer ", key, "\r\n", (char *)NULL);
    if (scope)
        n = app(req, n, sizeof(req), "X-Keyward-Scope: ", scope, "\r\n", (char *)NULL);
    if (client_ip && c->ip_header[0])
        n = app(req, n, sizeof(req), c->ip_header, ": ", client_ip, "\r\n", (char *)NULL);
    if (c->caller_key[0])
        n = app(req, n, sizeof(req), "Keyward-Caller-Key: ", c->caller_key, "\r\n", (char *)NULL);
    n = app(req, n, sizeof(req), "\r\n", (char *)NULL);
    if (n == SIZE_MAX) {
        kw_wipe(req, sizeof(req));
        return KEYWARD_EINVAL;
    }
    rc = roundtrip(c, req, n, &http, res);
    kw_wipe(req, sizeof(req));
    if (rc)
        return rc;
    if (http.close)
        disconnect(c);
    if (res->code[0] == '\0') /* not keyward answering (a proxy's error page?) */
        return KEYWARD_EPROTO;
    res->valid = strcmp(res->code, "VALID") == 0 && http.status == 204;
    if (res->valid)
        snprintf(res->message, sizeof(res->message), "OK");
    return KEYWARD_OK;
}

/* Append s to b as JSON string content (the caller checked it is printable ASCII). */
static size_t json_put(char *b, size_t off, size_t cap, const char *s)
{
    for (; *s && off + 2 < cap; s++) {
        if (*s == '"' || *s == '\\')
            b[off++] = '\\';
        b[off++] = *s;
    }
    return off;
}

KEYWARD_API int keyward_verify(keyward_client_t *c, const char *key, const char *scope,
                               const char *client_ip, keyward_result_t *res)
{
    char body[KWL_TOKEN_MAX + 1024], req[KWL_TOKEN_MAX + 2048];
    kwl_http_t http;
    int rc;
    if (check_args(c, key, scope, client_ip, res, &rc))
        return rc;
    size_t bl = 0;
    bl += (size_t)snprintf(body, sizeof(body), "{\"key\":\"%s\"", key);
    if (scope) {
        bl += (size_t)snprintf(body + bl, sizeof(body) - bl, ",\"scope\":\"");
        bl = json_put(body, bl, sizeof(body) - 4, scope);
        body[bl++] = '"';
    }
    if (client_ip) {
        bl += (size_t)snprintf(body + bl, sizeof(body) - bl, ",\"ip\":\"");
        bl = json_put(body, bl, sizeof(body) - 4, client_ip);
        body[bl++] = '"';
    }
    body[bl++] = '}';
    body[bl] = '\0';
    int n = snprintf(req, sizeof(req),
                     "POST /v1/keys/verify HTTP/1.1\r\nHost: %s\r\n"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n%s%s%s\r\n%s",
                     c->hosthdr, bl, c->caller_key[0] ? "Keyward-Caller-Key: " : "",
                     c->caller_key[0] ? c->caller_key : "", c->caller_key[0] ? "\r\n" : "", body);
    kw_wipe(body, sizeof(body));
    if (n < 0 || (size_t)n >= sizeof(req)) {
        kw_wipe(req, sizeof(req));
        return KEYWARD_EINVAL;
    }
    rc = roundtrip(c, req, (size_t)n, &http, res);
    kw_wipe(req, sizeof(req));
    if (rc)
        return rc;
    if (http.close)
        disconnect(c);
    if (http.status != 200)
        return KEYWARD_EPROTO;
    memset(res, 0, sizeof(*res));
    res->http_status = 200;
    return kwl_parse_verify_json(http.body, http.body_len, res);
}
