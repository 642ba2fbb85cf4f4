/* h1.c - the gateway fast path's request recogniser (see h1.h). Conservative by design:
 * whatever it is not sure of is KW_H1_OTHER, which costs only a hand-over. */
#include "h1.h"

#include <string.h>
#include <strings.h>

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
