/* http.h - the HTTP layer: libmicrohttpd glue, requests, responses, problem+json.
 * Handlers see kw_req_t / kw_resp_t only, so the library behind them can change. */
#ifndef KW_HTTP_H
#define KW_HTTP_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define KW_HTTP_MAX_HEADERS 8
#define KW_HTTP_MAX_SEGS 8

typedef struct kw_req {
    void *conn; /* struct MHD_Connection */
    const char *method;
    const char *path;
    char *body; /* NUL-terminated, owned */
    size_t body_len, body_cap;
    int too_big;
    char *path_copy; /* owned; segs point into it */
    const char *segs[KW_HTTP_MAX_SEGS];
    size_t nsegs;
    const char *caps[4]; /* path captures ("*" segments) */
    int64_t now;
    /* the authenticated principal, when the route needed one */
    char principal[40];
    unsigned roles;
    /* In-process requests (conn == NULL; the fuzz targets): headers and decoded query
     * arguments as name, value, name, value, ..., NULL; peer is the client address text. */
    const char *const *hdrs;
    const char *const *query;
    const char *peer;
} kw_req_t;

typedef struct kw_resp {
    int status;
    char *body; /* owned, malloc'd */
    size_t len;
    const char *ctype;
    const char *hname[KW_HTTP_MAX_HEADERS];
    char *hval[KW_HTTP_MAX_HEADERS]; /* owned: in hbuf, or malloc'd when hheap[i] */
    size_t nh;
    /* Header values are copied here while they fit, so the gateway path (/v1/auth)
     * answers without a heap allocation of its own. */
    char hbuf[1024];
    size_t hbuf_len;
    unsigned char hheap[KW_HTTP_MAX_HEADERS];
} kw_resp_t;

/* Header / query lookups (NULL if absent). */
const char *kw_req_header(const kw_req_t *rq, const char *name);
const char *kw_req_query(const kw_req_t *rq, const char *name);
/* The client's address as text ("127.0.0.1", "::1") in buf; "" if unknown. */
const char *kw_req_peer(const kw_req_t *rq, char *buf, size_t len);

/* Response builders. json is consumed (decref'd) in every case. */
void kw_resp_json(kw_resp_t *rs, int status, json_t *json);
void kw_resp_problem(kw_resp_t *rs, const kw_err_t *e);
void kw_resp_error(kw_resp_t *rs, int code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void kw_resp_header(kw_resp_t *rs, const char *name, const char *value); /* copies value */
/* A framing error found by the HTTP layer itself (h1.h): problem+json with that status
 * (400, 413, 417, 431, 501, 505) and a fixed detail. */
void kw_resp_framing(kw_resp_t *rs, int status, const char *detail);
/* Free (and wipe) what a response owns and reset it; for in-process callers (fuzz). */
void kw_resp_clear(kw_resp_t *rs);

typedef void (*kw_http_handler_fn)(void *ud, kw_req_t *rq, kw_resp_t *rs);

typedef struct kw_http_opts {
    const char *listen; /* HOST:PORT */
    int threads;
    size_t max_body;
    unsigned max_connections;
    unsigned idle_timeout;
    unsigned request_timeout; /* seconds a connection may take per request; 0 = off */
    /* Answers GET /v1/auth and POST /v1/keys/verify on the fast path (gate.h); NULL = the
     * general handler. */
    kw_http_handler_fn gateway;
    /* > 0: a socket already bound and listening, taken over by the server: one handed in by
     * the service manager (listenfd.h) or bound early by kw_http_bind; closed by
     * kw_http_stop (an inherited socket lives on in the service manager's copy), or by
     * kw_http_start when it fails. Else listen is bound. */
    int bound_fd;
    /* Counts each connection's path (gate.h, KW_CONN_*); NULL = not counted. */
    void (*count_conn)(int kind);
} kw_http_opts_t;

typedef struct kw_http kw_http_t;

/* Bind HOST:PORT and listen (non-blocking, SO_REUSEADDR): *fd, or KW_EINVAL / KW_EIO with
 * err naming the address (in use...). Start-up binds first, before it creates any file. */
int kw_http_bind(const char *listen, int *fd, kw_err_t *err);

/* Bind (unless o->bound_fd) and start serving. Returns 0 or KW_EIO with err explaining (address in
 * use...). */
int kw_http_start(const kw_http_opts_t *o, kw_http_handler_fn fn, void *ud, kw_http_t **out,
                  kw_err_t *err);
/* Stop accepting, answer what was sent (kw_gate_drain) and wait for in-flight requests,
 * each up to timeout_ms, then close everything. */
void kw_http_stop(kw_http_t *h, int timeout_ms);

#endif
