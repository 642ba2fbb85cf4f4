/* h1.c - the gateway fast path's request recogniser (see h1.h). Conservative by design:
 * whatever it is not sure of is KW_H1_OTHER, which costs only a hand-over. */
#include "h1.h"

#include <string.h>
#include <strings.h>

#include "core/util.h"

static const char LINE_AUTH[] = "GET /v1/auth HTTP/1.1\r\n";
static const char LINE_VERIFY[] = "POST /v1/keys/verify HTTP/1.1\r\n";
static const char LINE_TOKEN[] = "POST /oauth2/token HTTP/1.1\r\n"; /* oauth: SPEC §13 */

/* RFC 9110 tchar */
static int is_tchar(unsigned char c)
{
    static const char extra[] = "!#$%&'*+-.^_`|~";
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return 1;
    return c != '\0' && memchr(extra, c, sizeof(extra) - 1) != NULL;
}

/* 1: buf[0..len) starts with line; 0: could still (len shorter, a prefix); -1: cannot. */
static int line_match(const char *buf, size_t len, const char *line, size_t n)
{
    size_t m = len < n ? len : n;
    if (memcmp(buf, line, m) != 0)
        return -1;
    return len >= n ? 1 : 0;
}

static int name_is(const char *buf, const kw_h1_field_t *f, const char *name)
{
    size_t n = strlen(name);
    return f->name_len == n && strncasecmp(buf + f->name, name, n) == 0;
}

static int value_is(const char *buf, const kw_h1_field_t *f, const char *v)
{
    size_t n = strlen(v);
    return f->value_len == n && strncasecmp(buf + f->value, v, n) == 0;
}

/* Content-Length: 1 to 18 digits (no sign, no list); -1 if not that. */
static long long content_length(const char *p, size_t n)
{
    long long v = 0;
    if (n == 0 || n > 18)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        v = v * 10 + (p[i] - '0');
    }
    return v;
}

kw_h1_kind_t kw_h1_parse(const char *buf, size_t len, size_t max_body, kw_h1_req_t *r)
{
    memset(r, 0, offsetof(kw_h1_req_t, f));
    kw_h1_kind_t kind;
    size_t p;
    int a = line_match(buf, len, LINE_AUTH, sizeof(LINE_AUTH) - 1);
    int v = line_match(buf, len, LINE_VERIFY, sizeof(LINE_VERIFY) - 1);
    if (a == 1) {
        kind = KW_H1_AUTH;
        p = sizeof(LINE_AUTH) - 1;
    } else if (v == 1) {
        kind = KW_H1_VERIFY;
        p = sizeof(LINE_VERIFY) - 1;
    } else if (line_match(buf, len, LINE_TOKEN, sizeof(LINE_TOKEN) - 1) == 1) {
        kind = KW_H1_TOKEN;
        p = sizeof(LINE_TOKEN) - 1;
    } else if (a == 0 || v == 0 || line_match(buf, len, LINE_TOKEN, sizeof(LINE_TOKEN) - 1) == 0) {
        return r->kind = KW_H1_INCOMPLETE;
    } else {
        return r->kind = KW_H1_OTHER;
    }

    long long cl = -1;
    int hosts = 0;
    for (;;) {
        if (p >= len)
            return r->kind = KW_H1_INCOMPLETE;
        if (buf[p] == '\r') { /* the empty line ending the head */
            if (p + 1 >= len)
                return r->kind = KW_H1_INCOMPLETE;
            if (buf[p + 1] != '\n')
                return r->kind = KW_H1_OTHER;
            p += 2;
            break;
        }
        if (r->nf == KW_H1_MAX_FIELDS)
            return r->kind = KW_H1_OTHER;
        kw_h1_field_t *f = &r->f[r->nf];
        f->name = p;
        while (p < len && is_tchar((unsigned char)buf[p]))
            p++;
        if (p >= len)
            return r->kind = KW_H1_INCOMPLETE;
        if (buf[p] != ':' || p == f->name)
            return r->kind = KW_H1_OTHER; /* also obs-fold and whitespace before ':' */
        f->name_len = p - f->name;
        p++;
        while (p < len && (buf[p] == ' ' || buf[p] == '\t'))
            p++;
        f->value = p;
        while (p < len && buf[p] != '\r') {
            unsigned char c = (unsigned char)buf[p];
            if (c != '\t' && (c < 0x20 || c >= 0x7f))
                return r->kind = KW_H1_OTHER;
            p++;
        }
        if (p + 1 >= len)
            return r->kind = KW_H1_INCOMPLETE;
        if (buf[p + 1] != '\n')
            return r->kind = KW_H1_OTHER;
        size_t end = p;
        while (end > f->value && (buf[end - 1] == ' ' || buf[end - 1] == '\t'))
            end--;
        f->value_len = end - f->value;
        p += 2;
        r->nf++;

        if (name_is(buf, f, "content-length")) {
            if (cl >= 0 || (cl = content_length(buf + f->value, f->value_len)) < 0)
                return r->kind = KW_H1_OTHER;
        } else if (name_is(buf, f, "host")) {
            hosts++;
        } else if (name_is(buf, f, "connection")) {
            if (value_is(buf, f, "close"))
                r->close = 1;
            else if (!value_is(buf, f, "keep-alive"))
                return r->kind = KW_H1_OTHER;
        } else if (name_is(buf, f, "transfer-encoding") || name_is(buf, f, "expect") ||
                   name_is(buf, f, "upgrade")) {
            return r->kind = KW_H1_OTHER;
        }
    }
    if (hosts != 1)
        return r->kind = KW_H1_OTHER;
    if (cl < 0)
        cl = 0;
    if (kind == KW_H1_AUTH && cl != 0)
        return r->kind = KW_H1_OTHER;
    if ((unsigned long long)cl > max_body)
        return r->kind = KW_H1_OTHER;
    if (len - p < (size_t)cl)
        return r->kind = KW_H1_INCOMPLETE;
    r->body = p;
    r->body_len = (size_t)cl;
    r->len = p + (size_t)cl;
    return r->kind = kind;
}

/* ---- strict framing ---- */

static const struct {
    int status;
    const char *text;
} ERRS[KW_H1_E_COUNT] = {
    [KW_H1_OK] = {200, ""},
    [KW_H1_E_LINE] = {400, "malformed request line"},
    [KW_H1_E_TARGET] = {400, "request target must be an origin-form path of visible ASCII"},
    [KW_H1_E_NUL] = {400, "request target holds an encoded NUL (%00)"},
    [KW_H1_E_VERSION] = {505, "only HTTP/1.1 and HTTP/1.0 are served"},
    [KW_H1_E_FIELD] = {400, "malformed header field"},
    [KW_H1_E_WS_COLON] = {400, "whitespace between a header field name and its colon"},
    [KW_H1_E_FOLD] = {400, "obsolete line folding is not accepted"},
    [KW_H1_E_BARE_CR] = {400, "CR not followed by LF"},
    [KW_H1_E_BARE_LF] = {400, "line ends with a bare LF"},
    [KW_H1_E_CL_BAD] = {400, "Content-Length must be a decimal number"},
    [KW_H1_E_CL_DIFFER] = {400, "Content-Length values differ"},
    [KW_H1_E_TE_UNKNOWN] = {501, "only the chunked transfer coding is supported"},
    [KW_H1_E_TE_HTTP10] = {400, "Transfer-Encoding in an HTTP/1.0 request"},
    [KW_H1_E_HOST] = {400, "an HTTP/1.1 request needs exactly one Host header"},
    [KW_H1_E_EXPECT] = {417, "only the 100-continue expectation is supported"},
    [KW_H1_E_TOO_BIG] = {413, "request body exceeds --max-body"},
    [KW_H1_E_HEAD_LARGE] = {431, "request header section too large"},
    [KW_H1_E_CHUNK] = {400, "malformed chunked body"},
    [KW_H1_E_RESERVED] = {400, "reserved request target"},
};

int kw_h1_err_status(kw_h1_err_t e)
{
    return e > KW_H1_OK && e < KW_H1_E_COUNT ? ERRS[e].status : 400;
}

const char *kw_h1_err_text(kw_h1_err_t e)
{
    return e > KW_H1_OK && e < KW_H1_E_COUNT ? ERRS[e].text : "malformed request";
}

static int head_fail(kw_h1_head_t *h, kw_h1_err_t e)
{
    h->err = e;
    h->close = 1;
    return 1;
}

/* field-content bytes: HTAB, SP, VCHAR, obs-text */
static int is_fchar(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

/* The line break at buf[p] ('\r' or '\n'): 2 when it is CRLF, 0 when more bytes are
 * needed, or -error. */
static int crlf(const char *buf, size_t len, size_t p)
{
    if (buf[p] == '\n')
        return -KW_H1_E_BARE_LF;
    if (p + 1 >= len)
        return 0;
    return buf[p + 1] == '\n' ? 2 : -KW_H1_E_BARE_CR;
}

static int has_nul(const char *t, size_t n)
{
    for (size_t i = 0; i + 2 < n; i++)
        if (t[i] == '%' && t[i + 1] == '0' && t[i + 2] == '0')
            return 1;
    return 0;
}

/* Each element of a comma-separated list value (OWS trimmed, empty ones skipped). */
static void list_each(const char *v, size_t n, void (*fn)(void *, const char *, size_t), void *ud)
{
    size_t i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t s = i;
        while (i < n && v[i] != ',')
            i++;
        size_t e = i;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        if (e > s)
            fn(ud, v + s, e - s);
    }
}

typedef struct head_sem {
    int te_chunked, te_other, te_seen, conn_close, conn_keep;
} head_sem_t;

static int tok_is(const char *t, size_t n, const char *w)
{
    return strlen(w) == n && strncasecmp(t, w, n) == 0;
}

static void te_elem(void *ud, const char *t, size_t n)
{
    head_sem_t *s = ud;
    if (tok_is(t, n, "chunked") && !s->te_chunked)
        s->te_chunked = 1;
    else
        s->te_other = 1; /* another coding, or chunked twice */
}

static void conn_elem(void *ud, const char *t, size_t n)
{
    head_sem_t *s = ud;
    if (tok_is(t, n, "close"))
        s->conn_close = 1;
    else if (tok_is(t, n, "keep-alive"))
        s->conn_keep = 1;
}

int kw_h1_head(const char *buf, size_t len, size_t max_body, kw_h1_head_t *h)
{
    memset(h, 0, sizeof(*h));
    size_t p = 0;
    /* request-line = method SP request-target SP HTTP-version CRLF */
    while (p < len && is_tchar((unsigned char)buf[p]))
        p++;
    if (p >= len)
        return 0;
    if (buf[p] != ' ' || p == 0)
        return head_fail(h, KW_H1_E_LINE);
    size_t t0 = ++p;
    while (p < len && (unsigned char)buf[p] > 0x20 && (unsigned char)buf[p] < 0x7f)
        p++;
    if (p >= len)
        return p > KW_H1_MAX_HEAD ? head_fail(h, KW_H1_E_HEAD_LARGE) : 0;
    if (buf[p] != ' ' || p == t0)
        return head_fail(h, p == t0 ? KW_H1_E_LINE : KW_H1_E_TARGET);
    size_t tn = p - t0;
    if (!(buf[t0] == '/' || (tn == 1 && buf[t0] == '*')))
        return head_fail(h, KW_H1_E_TARGET);
    if (has_nul(buf + t0, tn))
        return head_fail(h, KW_H1_E_NUL);
    if (tn >= 5 && memcmp(buf + t0, "/_kw/", 5) == 0)
        return head_fail(h, KW_H1_E_RESERVED);
    p++;
    static const char V[] = "HTTP/";
    for (size_t i = 0; i < 5; i++, p++) {
        if (p >= len)
            return 0;
        if (buf[p] != V[i])
            return head_fail(h, KW_H1_E_LINE);
    }
    if (p + 3 > len)
        return 0;
    if (!(buf[p] >= '0' && buf[p] <= '9' && buf[p + 1] == '.' && buf[p + 2] >= '0' &&
          buf[p + 2] <= '9'))
        return head_fail(h, KW_H1_E_LINE);
    if (buf[p] != '1' || (buf[p + 2] != '0' && buf[p + 2] != '1'))
        return head_fail(h, KW_H1_E_VERSION);
    h->http10 = buf[p + 2] == '0';
    p += 3;
    if (p >= len)
        return 0;
    if (buf[p] != '\r' && buf[p] != '\n')
        return head_fail(h, KW_H1_E_LINE);
    int k = crlf(buf, len, p);
    if (k < 0)
        return head_fail(h, (kw_h1_err_t)-k);
    if (k == 0)
        return 0;
    h->line_len = p;
    p += 2;

    head_sem_t sem = {0};
    long long cl = -1;
    int hosts = 0;
    size_t nf = 0;
    for (;;) {
        if (p > KW_H1_MAX_HEAD)
            return head_fail(h, KW_H1_E_HEAD_LARGE);
        if (p >= len)
            return 0;
        if (buf[p] == '\r' || buf[p] == '\n') { /* the empty line ending the head */
            if ((k = crlf(buf, len, p)) < 0)
                return head_fail(h, (kw_h1_err_t)-k);
            if (k == 0)
                return 0;
            p += 2;
            break;
        }
        if (buf[p] == ' ' || buf[p] == '\t')
            return head_fail(h, KW_H1_E_FOLD);
        if (++nf > KW_H1_MAX_HEAD_FIELDS)
            return head_fail(h, KW_H1_E_HEAD_LARGE);
        size_t n0 = p;
        while (p < len && is_tchar((unsigned char)buf[p]))
            p++;
        if (p >= len)
            return 0;
        if (buf[p] == ' ' || buf[p] == '\t')
            return head_fail(h, p == n0 ? KW_H1_E_FIELD : KW_H1_E_WS_COLON);
        if (buf[p] != ':' || p == n0)
            return head_fail(h, KW_H1_E_FIELD);
        kw_h1_field_t f = {.name = n0, .name_len = p - n0};
        p++;
        while (p < len && (buf[p] == ' ' || buf[p] == '\t'))
            p++;
        f.value = p;
        while (p < len && buf[p] != '\r' && buf[p] != '\n') {
            if (!is_fchar((unsigned char)buf[p]))
                return head_fail(h, KW_H1_E_FIELD);
            p++;
        }
        if (p >= len)
            return p > KW_H1_MAX_HEAD ? head_fail(h, KW_H1_E_HEAD_LARGE) : 0;
        if ((k = crlf(buf, len, p)) < 0)
            return head_fail(h, (kw_h1_err_t)-k);
        if (k == 0)
            return 0;
        size_t end = p;
        while (end > f.value && (buf[end - 1] == ' ' || buf[end - 1] == '\t'))
            end--;
        f.value_len = end - f.value;
        p += 2;

        const char *v = buf + f.value;
        if (name_is(buf, &f, "content-length")) {
            long long x = content_length(v, f.value_len);
            if (x < 0)
                return head_fail(h, KW_H1_E_CL_BAD);
            if (cl >= 0 && x != cl)
                return head_fail(h, KW_H1_E_CL_DIFFER);
            cl = x;
        } else if (name_is(buf, &f, "transfer-encoding")) {
            sem.te_seen = 1;
            list_each(v, f.value_len, te_elem, &sem);
            if (sem.te_other)
                return head_fail(h, KW_H1_E_TE_UNKNOWN);
        } else if (name_is(buf, &f, "host")) {
            hosts++;
        } else if (name_is(buf, &f, "connection")) {
            list_each(v, f.value_len, conn_elem, &sem);
        } else if (name_is(buf, &f, "expect")) {
            if (!value_is(buf, &f, "100-continue"))
                return head_fail(h, KW_H1_E_EXPECT);
            h->expect_continue = 1;
        }
    }
    if (sem.te_seen && !sem.te_chunked)
        return head_fail(h, KW_H1_E_TE_UNKNOWN); /* an empty Transfer-Encoding */
    if (sem.te_seen && h->http10)
        return head_fail(h, KW_H1_E_TE_HTTP10);
    if (!h->http10 && hosts != 1)
        return head_fail(h, KW_H1_E_HOST);
    h->len = p;
    h->close = sem.conn_close || (h->http10 && !sem.conn_keep);
    if (sem.te_seen) {
        h->body = KW_H1_BODY_CHUNKED;
        if (cl >= 0) {
            h->cl_and_te = 1;
            h->close = 1;
        }
    } else if (cl >= 0) {
        if ((unsigned long long)cl > max_body)
            return head_fail(h, KW_H1_E_TOO_BIG);
        h->body = cl ? KW_H1_BODY_LENGTH : KW_H1_BODY_NONE;
        h->length = (unsigned long long)cl;
    }
    return 1;
}

void kw_h1_head_fields(const char *buf, const kw_h1_head_t *h,
                       void (*fn)(void *ud, const char *n, size_t nl, const char *v, size_t vl),
                       void *ud)
{
    size_t p = h->line_len + 2;
    while (p + 2 < h->len) {
        size_t n0 = p;
        while (buf[p] != ':')
            p++;
        size_t nl = p - n0;
        p++;
        while (buf[p] == ' ' || buf[p] == '\t')
            p++;
        size_t v0 = p;
        while (buf[p] != '\r')
            p++;
        size_t e = p;
        while (e > v0 && (buf[e - 1] == ' ' || buf[e - 1] == '\t'))
            e--;
        fn(ud, buf + n0, nl, buf + v0, e - v0);
        p += 2;
    }
}

enum {
    CS_SIZE,
    CS_EXT,
    CS_SIZE_LF,
    CS_DATA,
    CS_DATA_CR,
    CS_DATA_LF,
    CS_TR_START,
    CS_TR_LINE,
    CS_TR_LF,
    CS_END_LF
};

#define CHUNK_LINE_MAX 256
#define TRAILER_MAX 4096

/* The states that take one exact byte: that byte, the error for any other, the next state
 * (CS_SIZE_LF and CS_END_LF decide theirs in kw_h1_chunked). */
static const struct {
    char want;
    int err;
    int next;
} one_byte[] = {
    [CS_SIZE_LF] = {'\n', KW_H1_E_BARE_CR, CS_DATA},
    [CS_DATA_CR] = {'\r', KW_H1_E_CHUNK, CS_DATA_LF},
    [CS_DATA_LF] = {'\n', KW_H1_E_CHUNK, CS_SIZE},
    [CS_TR_LF] = {'\n', KW_H1_E_BARE_CR, CS_TR_START},
    [CS_END_LF] = {'\n', KW_H1_E_BARE_CR, CS_END_LF},
};

int kw_h1_chunked(kw_h1_chunked_t *s, const char *in, size_t len, size_t max_body, size_t *used,
                  void (*data)(void *ud, const char *p, size_t n), void *ud)
{
    size_t p = 0;
    int rc = 0;
    while (p < len && rc == 0) {
        char c = in[p];
        switch (s->st) {
        case CS_SIZE: {
            int x = kw_hex_digit(c);
            if (x >= 0) {
                if (++s->n > 15)
                    rc = -KW_H1_E_CHUNK;
                s->rem = s->rem * 16 + (unsigned)x;
                p++;
                break;
            }
            if (s->n == 0)
                rc = -KW_H1_E_CHUNK;
            else if ((s->total += s->rem) > max_body)
                rc = -KW_H1_E_TOO_BIG;
            else
                s->st = CS_EXT; /* re-read c there */
            break;
        }
        case CS_EXT: /* chunk-ext: visible ASCII, SP, HTAB up to CRLF */
            if (c == '\r') {
                s->st = CS_SIZE_LF;
            } else if (c == '\n') {
                rc = -KW_H1_E_BARE_LF;
                break;
            } else if ((c != '\t' && ((unsigned char)c < 0x20 || (unsigned char)c > 0x7e)) ||
                       ++s->n > CHUNK_LINE_MAX) {
                rc = -KW_H1_E_CHUNK;
                break;
            }
            p++;
            break;
        case CS_DATA: {
            size_t k = len - p;
            if (k > s->rem)
                k = (size_t)s->rem;
            if (data)
                data(ud, in + p, k);
            p += k;
            if ((s->rem -= k) == 0)
                s->st = CS_DATA_CR;
            break;
        }
        case CS_TR_START: /* a trailer field line, or the empty line ending the body */
            if (c == '\r') {
                p++;
                s->st = CS_END_LF;
                break;
            }
            if (c == '\n') {
                rc = -KW_H1_E_BARE_LF;
                break;
            }
            if (!is_tchar((unsigned char)c)) {
                rc = c == ' ' || c == '\t' ? -KW_H1_E_FOLD : -KW_H1_E_FIELD;
                break;
            }
            s->st = CS_TR_LINE;
            break;
        case CS_TR_LINE: /* checked loosely: the fields are dropped */
            if (++s->n > TRAILER_MAX) {
                rc = -KW_H1_E_HEAD_LARGE;
                break;
            }
            if (c == '\r')
                s->st = CS_TR_LF;
            else if (c == '\n')
                rc = -KW_H1_E_BARE_LF;
            else if (!is_fchar((unsigned char)c))
                rc = -KW_H1_E_FIELD;
            if (rc == 0)
                p++;
            break;
        default: /* CS_SIZE_LF, CS_DATA_CR, CS_DATA_LF, CS_TR_LF, CS_END_LF: one exact byte */
            if (c != one_byte[s->st].want) {
                rc = -one_byte[s->st].err;
                break;
            }
            p++;
            if (s->st == CS_END_LF) {
                rc = 1; /* the empty line after the last chunk (and trailers): done */
            } else if (s->st == CS_SIZE_LF) {
                s->n = 0;
                s->st = s->rem ? CS_DATA : CS_TR_START; /* size 0: the last chunk */
            } else {
                s->st = one_byte[s->st].next;
            }
            break;
        }
    }
    *used = p;
    return rc;
}
