/* h1.h - the gateway fast path's HTTP/1.1 request recogniser.
 *
 * It recognises exactly the plain, complete requests the fast path answers itself:
 * "GET /v1/auth HTTP/1.1" without a body and "POST /v1/keys/verify HTTP/1.1" with a
 * Content-Length body, each with well-formed header fields. Everything else - other
 * routes, query strings, HTTP/1.0, chunked bodies, Expect, Upgrade, odd syntax - is
 * KW_H1_OTHER and is handed, unread, to the general HTTP server (libmicrohttpd), which
 * answers it exactly as before. Pure: no allocation, no I/O; the input is never written. */
#ifndef KW_H1_H
#define KW_H1_H

#include <stddef.h>

typedef enum {
    KW_H1_INCOMPLETE = 0, /* a prefix of a request the fast path may answer: wait for more */
    KW_H1_AUTH,           /* complete GET /v1/auth */
    KW_H1_VERIFY,         /* complete POST /v1/keys/verify, body included */
    KW_H1_OTHER,          /* not for the fast path (or not valid): hand it over */
    KW_H1_TOKEN,          /* oauth: complete POST /oauth2/token, body included */
} kw_h1_kind_t;

#define KW_H1_MAX_FIELDS 24

typedef struct kw_h1_field {
    size_t name, name_len; /* offsets into the input */
    size_t value, value_len;
} kw_h1_field_t;

typedef struct kw_h1_req {
    kw_h1_kind_t kind;
    size_t len;            /* bytes of the whole request, head and body (complete kinds) */
    size_t body, body_len; /* offset and length of the body */
    int close;             /* Connection: close */
    size_t nf;             /* header fields, in order */
    kw_h1_field_t f[KW_H1_MAX_FIELDS];
} kw_h1_req_t;

/* Recognise the request at the start of buf[0..len). max_body bounds Content-Length
 * (larger: KW_H1_OTHER, so the general server refuses it with its 413). Fills r and
 * returns r->kind. */
kw_h1_kind_t kw_h1_parse(const char *buf, size_t len, size_t max_body, kw_h1_req_t *r);

#endif
