/* h1.h - the gateway fast path's HTTP/1.1 request recogniser.
 *
 * It recognises exactly the plain, complete requests the fast path answers itself:
 * "GET /v1/auth HTTP/1.1" without a body and "POST /v1/keys/verify HTTP/1.1" with a
 * Content-Length body, each with well-formed header fields. Everything else - other
 * routes, query strings, HTTP/1.0, chunked bodies, Expect, Upgrade, odd syntax - is
 * KW_H1_OTHER: framed strictly (kw_h1_head below) and then refused or relayed to the
 * general HTTP server (libmicrohttpd). Pure: no allocation, no I/O; the input is never
 * written. */
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

/* ---- strict framing (RFC 9112 sections 2-7) for every other request ----
 *
 * Every request the fast path does not answer is framed by kw_h1_head (and, for a
 * chunked body, kw_h1_chunked) before libmicrohttpd sees a byte of it: the gate forwards
 * only well-framed requests, re-serialised (one Content-Length, no Transfer-Encoding), and
 * answers everything else itself with one problem+json and a close. */

#define KW_H1_MAX_HEAD 32768      /* request line and fields, the empty line included */
#define KW_H1_MAX_HEAD_FIELDS 100 /* more: 431 */

typedef enum {
    KW_H1_OK = 0,
    KW_H1_E_LINE,       /* malformed request line */
    KW_H1_E_TARGET,     /* request target not in origin form, or with bytes not allowed */
    KW_H1_E_NUL,        /* %00 in the request target */
    KW_H1_E_VERSION,    /* HTTP/x.y other than 1.0 and 1.1: 505 */
    KW_H1_E_FIELD,      /* malformed field line */
    KW_H1_E_WS_COLON,   /* whitespace between a field name and its colon */
    KW_H1_E_FOLD,       /* obsolete line folding */
    KW_H1_E_BARE_CR,    /* CR not followed by LF */
    KW_H1_E_BARE_LF,    /* LF not preceded by CR */
    KW_H1_E_CL_BAD,     /* Content-Length not 1*DIGIT */
    KW_H1_E_CL_DIFFER,  /* several Content-Length values that differ */
    KW_H1_E_TE_UNKNOWN, /* a transfer coding other than chunked: 501 */
    KW_H1_E_TE_HTTP10,  /* Transfer-Encoding in an HTTP/1.0 request */
    KW_H1_E_HOST,       /* HTTP/1.1 without exactly one Host */
    KW_H1_E_EXPECT,     /* an expectation other than 100-continue: 417 */
    KW_H1_E_TOO_BIG,    /* body over --max-body: 413 */
    KW_H1_E_HEAD_LARGE, /* head over KW_H1_MAX_HEAD or too many fields: 431 */
    KW_H1_E_CHUNK,      /* malformed chunked body */
    KW_H1_E_RESERVED,   /* a target under the gate's own /_kw/ prefix */
    KW_H1_E_COUNT
} kw_h1_err_t;

/* The HTTP status and the problem detail (static text, no request bytes) for e. */
int kw_h1_err_status(kw_h1_err_t e);
const char *kw_h1_err_text(kw_h1_err_t e);

typedef enum { KW_H1_BODY_NONE, KW_H1_BODY_LENGTH, KW_H1_BODY_CHUNKED } kw_h1_body_t;

typedef struct kw_h1_head {
    size_t len;                /* bytes of the head, its empty line included (complete heads) */
    kw_h1_err_t err;           /* KW_H1_OK, or what is wrong (answer it and close) */
    kw_h1_body_t body;         /* how the body is framed */
    unsigned long long length; /* KW_H1_BODY_LENGTH */
    int close;                 /* the connection closes after the answer (asked, HTTP/1.0, CL+TE) */
    int http10;
    int cl_and_te;       /* both were present: Transfer-Encoding wins (RFC 9112 6.3) */
    int expect_continue; /* Expect: 100-continue */
    size_t line_len;     /* the request line, without its CRLF */
} kw_h1_head_t;

/* Frame the request head at buf[0..len). Returns 1 when it is decided (complete and well
 * framed: h->err == KW_H1_OK; or wrong, possibly before its end: h->err set), 0 when
 * buf is a prefix of a head that may still be valid (wait for more bytes; a caller that
 * has KW_H1_MAX_HEAD bytes and still 0 answers KW_H1_E_HEAD_LARGE). max_body bounds a
 * Content-Length (larger: KW_H1_E_TOO_BIG). */
int kw_h1_head(const char *buf, size_t len, size_t max_body, kw_h1_head_t *h);

/* Field lines of a complete, well-framed head, in order, for re-serialising it: calls
 * fn(ud, name, name_len, value, value_len) for each field (value without OWS). */
void kw_h1_head_fields(const char *buf, const kw_h1_head_t *h,
                       void (*fn)(void *ud, const char *n, size_t nl, const char *v, size_t vl),
                       void *ud);

/* Incremental chunked-body decoder (RFC 9112 7.1); trailer fields are checked and dropped. */
typedef struct kw_h1_chunked {
    int st;
    unsigned n;             /* bytes in the current size or trailer line */
    unsigned long long rem; /* data bytes left in the current chunk */
    unsigned long long total;
} kw_h1_chunked_t;

/* Decode from in[0..len): returns 0 when more bytes are needed (*used may be > 0), 1 when
 * the body ended (*used bytes consumed, the last CRLF included), or -KW_H1_E_* on a
 * framing error. Data bytes are reported through data(ud, p, n) as they are consumed;
 * a total over max_body is -KW_H1_E_TOO_BIG. */
int kw_h1_chunked(kw_h1_chunked_t *s, const char *in, size_t len, size_t max_body, size_t *used,
                  void (*data)(void *ud, const char *p, size_t n), void *ud);

#endif
