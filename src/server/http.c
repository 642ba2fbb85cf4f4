/* http.c - the HTTP layer: the listening socket, the gateway fast path (gate.c) that
 * accepts every connection, and libmicrohttpd, which is handed every connection the gate
 * does not answer itself: one request context per request, the body collected up to the
 * limit, one dispatch when the request is complete, graceful stop.
 *
 * MHD trap (see shared/BASELINES.md): the response is queued on a later call than the
 * first, or MHD closes keep-alive connections. */
#include "http.h"

#include <errno.h>
#include <malloc.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "connguard.h"
#include "gate.h"
#include "h1.h"
#include "core/jdump.h"
#include "core/util.h"
#include "log.h"
#include "textbuf.h"

struct kw_http {
    struct MHD_Daemon *d;
    kw_http_handler_fn fn;
    void *ud;
    size_t max_body;
    atomic_int inflight;
    kw_guard_t *guard; /* --request-timeout; NULL = off */
    int lfd;           /* the listening socket */
    kw_gate_t *gate;   /* accepts every connection; answers the gateway's requests */
    atomic_uint conns; /* client connections open, in the gate or in MHD */
    /* "/_kw/framing/<random>/": the gate asks MHD to answer a framing error in order on a
     * relayed connection with GET <inject><error number>; no client can reach it (the gate
     * refuses every /_kw/ target). */
    char inject[64];
    size_t inject_len;
};

/* In-process requests (no MHD connection): look name up in a NULL-ended pair list. */
static const char *pairs_lookup(const char *const *kv, const char *name, int nocase)
{
    for (size_t i = 0; kv && kv[i] && kv[i + 1]; i += 2)
        if ((nocase ? strcasecmp(kv[i], name) : strcmp(kv[i], name)) == 0)
            return kv[i + 1];
    return NULL;
}

const char *kw_req_header(const kw_req_t *rq, const char *name)
{
    if (rq->conn == NULL)
        return pairs_lookup(rq->hdrs, name, 1);
    return MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, name);
}

const char *kw_req_query(const kw_req_t *rq, const char *name)
{
    if (rq->conn == NULL)
        return pairs_lookup(rq->query, name, 0);
    return MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *kw_req_peer(const kw_req_t *rq, char *buf, size_t len)
{
    buf[0] = '\0';
    if (rq->conn == NULL) {
        snprintf(buf, len, "%s", rq->peer ? rq->peer : "");
        return buf;
    }
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(rq->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci == NULL || ci->client_addr == NULL)
        return buf;
    const struct sockaddr *sa = ci->client_addr;
    socklen_t sl =
        sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    if (getnameinfo(sa, sl, buf, (socklen_t)len, NULL, 0, NI_NUMERICHOST) != 0)
        buf[0] = '\0';
    return buf;
}

void kw_resp_json(kw_resp_t *rs, int status, json_t *json)
{
    free(rs->body);
    rs->status = status;
    rs->ctype = "application/json";
    rs->body = json ? kw_json_dump(json) : NULL; /* = json_dumps(JSON_COMPACT) */
    rs->len = rs->body ? strlen(rs->body) : 0;
    json_decref(json);
    if (json && rs->body == NULL)
        kw_resp_error(rs, KW_ENOMEM, NULL, "out of memory");
}

void kw_resp_problem(kw_resp_t *rs, const kw_err_t *e)
{
    char type[96];
    kw_err_t fallback;
    if (kw_err_http_status(e->code) < 400) {
        /* a failure path that forgot its code: never answer a problem with 2xx */
        fallback = *e;
        fallback.code = KW_EINTERNAL;
        e = &fallback;
    }
    int status = kw_err_http_status(e->code);
    snprintf(type, sizeof(type), "urn:keyward:problem:%s", kw_err_slug(e->code));
    json_t *j = json_pack("{s:s, s:s, s:i, s:s}", "type", type, "title", kw_strerror(e->code),
                          "status", status, "detail", e->msg[0] ? e->msg : kw_strerror(e->code));
    if (j && e->field[0])
        json_object_set_new(j, "field", json_string(e->field));
    free(rs->body);
    rs->status = status;
    rs->ctype = "application/problem+json";
    rs->body = j ? kw_json_dump(j) : NULL;
    rs->len = rs->body ? strlen(rs->body) : 0;
    json_decref(j);
}

void kw_resp_error(kw_resp_t *rs, int code, const char *field, const char *fmt, ...)
{
    kw_err_t e = {.code = code};
    snprintf(e.field, sizeof(e.field), "%s", field ? field : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e.msg, sizeof(e.msg), fmt, ap);
    va_end(ap);
    kw_resp_problem(rs, &e);
}

void kw_resp_framing(kw_resp_t *rs, int status, const char *detail)
{
    const char *slug = "invalid-request", *title = "Bad Request";
    switch (status) {
    case 413:
        slug = "payload-too-large";
        title = "Payload Too Large";
        break;
    case 417:
        slug = "expectation-failed";
        title = "Expectation Failed";
        break;
    case 431:
        slug = "header-fields-too-large";
        title = "Request Header Fields Too Large";
        break;
    case 501:
        slug = "not-implemented";
        title = "Not Implemented";
        break;
    case 505:
        slug = "http-version-not-supported";
        title = "HTTP Version Not Supported";
        break;
    default:
        status = 400;
    }
    char type[96];
    snprintf(type, sizeof(type), "urn:keyward:problem:%s", slug);
    json_t *j = json_pack("{s:s, s:s, s:i, s:s}", "type", type, "title", title, "status", status,
                          "detail", detail && detail[0] ? detail : title);
    free(rs->body);
    rs->status = status;
    rs->ctype = "application/problem+json";
    rs->body = j ? json_dumps(j, JSON_COMPACT) : NULL;
    rs->len = rs->body ? strlen(rs->body) : 0;
    json_decref(j);
}

void kw_resp_header(kw_resp_t *rs, const char *name, const char *value)
{
    if (rs->nh >= KW_HTTP_MAX_HEADERS)
        return;
    size_t n = strlen(value) + 1;
    char *v;
    if (n <= sizeof(rs->hbuf) - rs->hbuf_len) {
        v = memcpy(rs->hbuf + rs->hbuf_len, value, n);
        rs->hbuf_len += n;
        rs->hheap[rs->nh] = 0;
    } else {
        if ((v = strdup(value)) == NULL)
            return;
        rs->hheap[rs->nh] = 1;
    }
    rs->hname[rs->nh] = name;
    rs->hval[rs->nh++] = v;
}

/* Response bodies may carry a new key's secret: wiped before MHD frees them. */
static void body_free(void *p)
{
    if (p) {
        explicit_bzero(p, malloc_usable_size(p));
        free(p);
    }
}

static void resp_clear(kw_resp_t *rs)
{
    body_free(rs->body);
    for (size_t i = 0; i < rs->nh; i++)
        if (rs->hheap[i])
            free(rs->hval[i]);
    memset(rs, 0, offsetof(kw_resp_t, hbuf)); /* hbuf needs no clearing */
    rs->hbuf_len = 0;
    memset(rs->hheap, 0, sizeof(rs->hheap));
}

void kw_resp_clear(kw_resp_t *rs)
{
    resp_clear(rs);
}

/* Set by kw_http_stop: the general server's answers, like the gate's, say Connection:
 * close, so keep-alive clients reconnect (to the next process) between two requests. */
static atomic_int stopping;

static enum MHD_Result send_resp(struct MHD_Connection *conn, kw_resp_t *rs)
{
    struct MHD_Response *r;
    if (rs->body) {
        r = MHD_create_response_from_buffer_with_free_callback(rs->len, rs->body, body_free);
        if (r)
            rs->body = NULL; /* MHD owns it now */
    } else {
        r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    }
    if (r == NULL)
        return MHD_NO;
    if (rs->ctype && rs->len)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, rs->ctype);
    for (size_t i = 0; i < rs->nh; i++)
        MHD_add_response_header(r, rs->hname[i], rs->hval[i]);
    if (atomic_load(&stopping))
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)rs->status, r);
    MHD_destroy_response(r);
    return ret;
}

static void req_free(kw_req_t *rq)
{
    if (rq == NULL)
        return;
    if (rq->body) {
        explicit_bzero(rq->body, rq->body_cap); /* bodies may carry keys */
        free(rq->body);
    }
    free(rq->path_copy);
    free(rq);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    kw_http_t *h = cls;
    kw_req_t *rq = *con_cls;

    if (rq == NULL) {
        rq = calloc(1, sizeof(*rq));
        if (rq == NULL)
            return MHD_NO;
        *con_cls = rq;
        atomic_fetch_add(&h->inflight, 1);
        rq->conn = conn;
        rq->method = method;
        rq->path = url;
        const char *cl =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > h->max_body) {
            /* Refuse before reading the body; MHD closes the connection after this. */
            kw_resp_t rs = {0};
            kw_resp_error(&rs, KW_ETOOBIG, NULL, "request body exceeds %zu bytes", h->max_body);
            enum MHD_Result ret = send_resp(conn, &rs);
            resp_clear(&rs);
            rq->too_big = 2; /* answered */
            return ret;
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (rq->too_big)
            return MHD_YES;
        if (rq->body_len + n > h->max_body) {
            rq->too_big = 1;
            return MHD_YES;
        }
        /* bodies may carry keys: a grown body leaves no copy behind */
        if (kw_wipebuf_append(&rq->body, &rq->body_len, &rq->body_cap, upload_data, n, 1024))
            return MHD_NO;
        return MHD_YES;
    }
    if (rq->too_big == 2)
        return MHD_YES;

    kw_resp_t rs = {0};
    if (strncmp(url, h->inject, h->inject_len) == 0) { /* the gate's, in order (gate.c) */
        int e = atoi(url + h->inject_len);
        kw_resp_framing(&rs, kw_h1_err_status((kw_h1_err_t)e), kw_h1_err_text((kw_h1_err_t)e));
    } else if (rq->too_big) {
        kw_resp_error(&rs, KW_ETOOBIG, NULL, "request body exceeds %zu bytes", h->max_body);
    } else {
        rq->now = kw_now();
        h->fn(h->ud, rq, &rs);
    }
    enum MHD_Result ret = send_resp(conn, &rs);
    resp_clear(&rs);
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    kw_http_t *h = cls;
    if (*con_cls) {
        req_free(*con_cls);
        *con_cls = NULL;
        atomic_fetch_sub(&h->inflight, 1);
    }
    if (h->guard) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        if (ci)
            kw_guard_rearm(h->guard, ci->socket_context);
    }
}

/* Connections open and close: watched by the request-time guard while open. */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    kw_http_t *h = cls;
    if (toe == MHD_CONNECTION_NOTIFY_CLOSED) /* every MHD connection came from the gate */
        atomic_fetch_sub(&h->conns, 1);
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        *socket_context = ci ? kw_guard_add(h->guard, ci->connect_fd) : NULL;
    } else if (*socket_context) {
        kw_guard_remove(h->guard, *socket_context);
        *socket_context = NULL;
    }
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char buf[512];
    vsnprintf(buf, sizeof(buf), fmt, ap);
    size_t n = strlen(buf);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    kw_log(KW_LOG_DEBUG, "http library", "{s:s}", "detail", buf);
}

/* The listening socket (the gate accepts on it): address reuse after a restart, IPv6 only
 * when an IPv6 address was given, non-blocking. */
static int listen_on(const struct addrinfo *ai)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (ai->ai_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, SOMAXCONN) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

static void handoff(void *hctx, int fd, const struct sockaddr *sa, socklen_t sl)
{
    kw_http_t *h = hctx;
    if (MHD_add_connection(h->d, fd, sa, sl) != MHD_YES) { /* MHD has closed fd */
        atomic_fetch_sub(&h->conns, 1);
        kw_log(KW_LOG_WARN, "connection dropped: the HTTP library refused it", "{s:s}", "error",
               strerror(errno));
    }
}

int kw_http_bind(const char *listen, int *fd, kw_err_t *err)
{
    char host[256];
    const char *colon = strrchr(listen, ':');
    if (colon == NULL || (size_t)(colon - listen) >= sizeof(host))
        return kw_err_set(err, KW_EINVAL, "listen", "listen address must be HOST:PORT");
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = '\0';
    char *h0 = host;
    size_t hl = strlen(h0);
    if (hl >= 2 && h0[0] == '[' && h0[hl - 1] == ']') {
        h0[hl - 1] = '\0';
        h0++;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    int gai = getaddrinfo(h0[0] ? h0 : NULL, colon + 1, &hints, &ai);
    if (gai != 0)
        return kw_err_set(err, KW_EINVAL, "listen", "cannot resolve %s: %s", listen,
                          gai_strerror(gai));
    *fd = listen_on(ai);
    int lerr = errno;
    freeaddrinfo(ai);
    if (*fd < 0)
        return kw_err_set(err, KW_EIO, "listen", "cannot listen on %s: %s", listen, strerror(lerr));
    return 0;
}

int kw_http_start(const kw_http_opts_t *o, kw_http_handler_fn fn, void *ud, kw_http_t **out,
                  kw_err_t *err)
{
    int lfd = o->bound_fd;
    if (lfd <= 0) {
        int rc = kw_http_bind(o->listen, &lfd, err);
        if (rc)
            return rc;
    }
    kw_http_t *h = calloc(1, sizeof(*h));
    if (h == NULL) {
        close(lfd);
        return kw_err_set(err, KW_ENOMEM, NULL, "out of memory");
    }
    h->fn = fn;
    h->ud = ud;
    h->max_body = o->max_body;
    h->lfd = lfd; /* closed by kw_http_stop */
    unsigned char tok[16];
    if (kw_random(tok, sizeof(tok)) != 0) {
        kw_http_stop(h, 0);
        return kw_err_set(err, KW_EIO, NULL, "cannot read random bytes");
    }
    h->inject_len = (size_t)snprintf(h->inject, sizeof(h->inject), "/_kw/framing/");
    for (size_t i = 0; i < sizeof(tok); i++)
        h->inject_len += (size_t)snprintf(h->inject + h->inject_len,
                                          sizeof(h->inject) - h->inject_len, "%02x", tok[i]);
    h->inject[h->inject_len++] = '/';
    h->inject[h->inject_len] = '\0';
    atomic_init(&h->inflight, 0);
    atomic_init(&h->conns, 0);
    if (o->request_timeout && (h->guard = kw_guard_new(o->request_timeout)) == NULL) {
        kw_http_stop(h, 0);
        return kw_err_set(err, KW_ENOMEM, NULL, "cannot start the request-timeout guard");
    }
    /* Every route but the gateway's: libmicrohttpd, a thread per connection it is handed
     * (admin traffic is light, and its handlers may wait on the store). */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                     MHD_USE_POLL | MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ITC | MHD_USE_ERROR_LOG;
    h->d =
        MHD_start_daemon(flags, 0, NULL, NULL, on_request, h, MHD_OPTION_CONNECTION_LIMIT,
                         /* the gate enforces --max-connections (h->conns); MHD must never
                          * refuse one silently, or its count would not be released */
                         o->max_connections + 1024u, MHD_OPTION_CONNECTION_TIMEOUT, o->idle_timeout,
                         /* the largest head the gate forwards (32 KiB, 100 fields) and
                          * the answer's header fit with room (40 KiB was measured enough,
                          * 36 KiB not); MHD zeroes the pool per request, so no larger */
                         MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(48 * 1024),
                         MHD_OPTION_NOTIFY_COMPLETED, on_completed, h, MHD_OPTION_NOTIFY_CONNECTION,
                         on_connection, h, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, h, MHD_OPTION_END);
    if (h->d == NULL) {
        kw_http_stop(h, 0);
        return kw_err_set(err, KW_EIO, "listen", "cannot start the HTTP library");
    }
    kw_gate_opts_t go = {.listen_fd = h->lfd,
                         .threads = o->threads > 0 ? o->threads : 2,
                         .max_body = o->max_body,
                         .max_connections = o->max_connections,
                         .idle_timeout = o->idle_timeout,
                         .guard = h->guard,
                         .fn = o->gateway ? o->gateway : fn,
                         .ud = ud,
                         .handoff = handoff,
                         .hctx = h,
                         .inject = h->inject,
                         .conns = &h->conns,
                         .inflight = &h->inflight,
                         .count = o->count_conn};
    if (kw_gate_start(&go, &h->gate) != 0) {
        kw_http_stop(h, 0);
        return kw_err_set(err, KW_EIO, "listen", "cannot start the HTTP workers: %s",
                          strerror(errno));
    }
    *out = h;
    return 0;
}

void kw_http_stop(kw_http_t *h, int timeout_ms)
{
    if (h == NULL)
        return;
    if (timeout_ms > 0) { /* stop accepting, answer what was sent, let clients go */
        atomic_store(&stopping, 1);
        kw_gate_drain(h->gate, timeout_ms);
    }
    kw_gate_stop(h->gate); /* no new connections; the gate's own are answered and closed */
    if (h->lfd >= 0)
        close(h->lfd); /* an inherited socket lives on in the service manager's copy */
    for (int waited = 0; h->d && atomic_load(&h->inflight) > 0 && waited < timeout_ms;
         waited += 10) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (h->d)
        MHD_stop_daemon(h->d);
    kw_guard_free(h->guard);
    free(h);
}
