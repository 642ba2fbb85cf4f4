/* parse.c - parsers for keyward's answers (see parse.h). Input is untrusted network
 * bytes: every read is bounded by len, nothing assumes a NUL, nothing allocates. */
#include "parse.h"

#include <string.h>
#include <strings.h>

#include "core/util.h"

/* Copy src[0..n) into dst (cap bytes with NUL), truncating. */
static void put(char *dst, size_t cap, const char *src, size_t n)
{
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static const char *find_crlf(const char *p, const char *end)
{
    for (; p + 1 < end; p++)
        if (p[0] == '\r' && p[1] == '\n')
            return p;
    return NULL;
}

int kwl_parse_response(const char *buf, size_t len, kwl_http_t *out, keyward_result_t *res)
{
    const char *end = buf + len, *p = buf;
    long long clen = -1;
    memset(out, 0, sizeof(*out));
    const char *eol = find_crlf(p, end);
    if (eol == NULL)
        return len > KWL_MAX_RESPONSE ? KEYWARD_EPROTO : 1;
    /* HTTP/1.x NNN reason */
    if (eol - p < 12 || memcmp(p, "HTTP/1.", 7) != 0 || (p[7] != '0' && p[7] != '1') || p[8] != ' ')
        return KEYWARD_EPROTO;
    for (int i = 9; i < 12; i++)
        if (p[i] < '0' || p[i] > '9')
            return KEYWARD_EPROTO;
    out->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    out->close = p[7] == '0';
    p = eol + 2;
    for (;;) {
        eol = find_crlf(p, end);
        if (eol == NULL)
            return len > KWL_MAX_RESPONSE ? KEYWARD_EPROTO : 1;
        if (eol == p) {
            p += 2;
            break;
        }
        const char *colon = memchr(p, ':', (size_t)(eol - p));
        if (colon == NULL || colon == p)
            return KEYWARD_EPROTO;
        size_t nlen = (size_t)(colon - p);
        const char *v = colon + 1, *ve = eol;
        while (v < ve && (*v == ' ' || *v == '\t'))
            v++;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        size_t vlen = (size_t)(ve - v);
#define IS(name) (nlen == sizeof(name) - 1 && strncasecmp(p, name, nlen) == 0)
        if (IS("Content-Length")) {
            if (vlen == 0 || vlen > 9 || clen >= 0)
                return KEYWARD_EPROTO;
            clen = 0;
            for (size_t i = 0; i < vlen; i++) {
                if (v[i] < '0' || v[i] > '9')
                    return KEYWARD_EPROTO;
                clen = clen * 10 + (v[i] - '0');
            }
        } else if (IS("Transfer-Encoding")) {
            return KEYWARD_EPROTO; /* keyward answers with a length */
        } else if (IS("Connection")) {
            if (vlen == 5 && strncasecmp(v, "close", 5) == 0)
                out->close = 1;
            else if (vlen == 10 && strncasecmp(v, "keep-alive", 10) == 0)
                out->close = 0;
        } else if (res) {
            if (IS("Keyward-Code"))
                put(res->code, sizeof(res->code), v, vlen);
            else if (IS("Keyward-Message"))
                put(res->message, sizeof(res->message), v, vlen);
            else if (IS("Keyward-Credential"))
                put(res->credential_id, sizeof(res->credential_id), v, vlen);
            else if (IS("Keyward-Key"))
                put(res->key_id, sizeof(res->key_id), v, vlen);
            else if (IS("Keyward-Scopes"))
                put(res->scopes, sizeof(res->scopes), v, vlen);
            else if (IS("Keyward-Expires"))
                put(res->expires_at, sizeof(res->expires_at), v, vlen);
            else if (IS("Sunset")) {
                put(res->sunset, sizeof(res->sunset), v, vlen);
                res->warning = 1;
            }
        }
#undef IS
        p = eol + 2;
    }
    out->header_len = (size_t)(p - buf);
    if (clen < 0)
        clen = 0; /* 204/304 and keyward's empty answers */
    if (clen > KWL_MAX_RESPONSE)
        return KEYWARD_EPROTO;
    if ((size_t)(end - p) < (size_t)clen)
        return 1;
    out->body = p;
    out->body_len = (size_t)clen;
    return 0;
}

/* ---- a flat JSON object reader ---- */

typedef struct jcur {
    const char *p, *end;
} jcur_t;

static void ws(jcur_t *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

/* Four hex digits at p as a number, or -1. */
static long hex4(const char *p)
{
    long v = 0;

    for (int i = 0; i < 4; i++) {
        int h = kw_hex_digit(p[i]);
        if (h < 0)
            return -1;
        v = v << 4 | h;
    }
    return v;
}

/* Code point cp as UTF-8 into out; returns its length (1 to 4). */
static size_t utf8_put(unsigned long cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | cp >> 12);
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | cp >> 18);
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* The \uXXXX escape whose hex digits start at c->p, as UTF-8 into out (a surrogate pair
 * joined, a lone surrogate as U+FFFD). Returns its length, or 0 when malformed. */
static size_t junicode(jcur_t *c, char out[4])
{
    long cp, lo;

    if (c->end - c->p < 4 || (cp = hex4(c->p)) < 0)
        return 0;
    c->p += 4;
    if (cp >= 0xD800 && cp <= 0xDBFF && c->end - c->p >= 6 && c->p[0] == '\\' && c->p[1] == 'u' &&
        (lo = hex4(c->p + 2)) >= 0xDC00 && lo <= 0xDFFF) {
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        c->p += 6;
    }
    if (cp >= 0xD800 && cp <= 0xDFFF)
        cp = 0xFFFD;
    return utf8_put((unsigned long)cp, out);
}

/* JSON's one-character escapes and what they stand for. */
static const char esc_in[] = "\"\\/bfnrt", esc_out[] = "\"\\/\b\f\n\r\t";

/* Read a JSON string at c->p (the opening quote) into dst (cap bytes, NUL-terminated,
 * truncated; dst may be NULL to skip). \uXXXX becomes UTF-8 (surrogate pairs joined, a
 * lone surrogate becomes U+FFFD). Returns 0 or -1. */
static int jstring(jcur_t *c, char *dst, size_t cap)
{
    size_t n = 0;
    if (c->p >= c->end || *c->p != '"')
        return -1;
    c->p++;
    while (c->p < c->end) {
        unsigned char ch = (unsigned char)*c->p++;
        char tmp[4];
        size_t tl = 0;
        if (ch == '"') {
            if (dst)
                dst[n < cap ? n : cap - 1] = '\0';
            return 0;
        }
        if (ch < 0x20)
            return -1;
        if (ch != '\\') {
            tmp[tl++] = (char)ch;
        } else {
            if (c->p >= c->end)
                return -1;
            char e = *c->p++;
            const char *x = e ? strchr(esc_in, e) : NULL;
            if (x != NULL)
                tmp[tl++] = esc_out[x - esc_in];
            else if (e != 'u' || (tl = junicode(c, tmp)) == 0)
                return -1;
        }
        /* whole characters only, so truncation never splits a UTF-8 sequence */
        if (dst && n + tl < cap) {
            memcpy(dst + n, tmp, tl);
            n += tl;
        } else if (dst) {
            n = cap; /* full: drop the rest */
        }
    }
    return -1;
}

/* After an element of an array or object: white space, then ',' (returns 1: another
 * element follows) or the closing character (returns 0); -1 for anything else. */
static int jnext(jcur_t *c, char close)
{
    ws(c);
    if (c->p >= c->end)
        return -1;
    if (*c->p == ',') {
        c->p++;
        return 1;
    }
    if (*c->p == close) {
        c->p++;
        return 0;
    }
    return -1;
}

/* Skip any JSON value (depth-limited). Returns 0 or -1. */
static int jskip(jcur_t *c, int depth)
{
    ws(c);
    if (c->p >= c->end || depth > 32)
        return -1;
    char ch = *c->p;
    if (ch == '"')
        return jstring(c, NULL, 0);
    if (ch == '{' || ch == '[') {
        char close = ch == '{' ? '}' : ']';
        c->p++;
        ws(c);
        if (c->p < c->end && *c->p == close) {
            c->p++;
            return 0;
        }
        for (;;) {
            if (ch == '{') {
                ws(c);
                if (jstring(c, NULL, 0) != 0)
                    return -1;
                ws(c);
                if (c->p >= c->end || *c->p++ != ':')
                    return -1;
            }
            if (jskip(c, depth + 1) != 0)
                return -1;
            int more = jnext(c, close);
            if (more <= 0)
                return more;
        }
    }
    /* number or literal: its characters up to a delimiter */
    const char *s = c->p;
    while (c->p < c->end && (strchr("+-.eE", *c->p) || (*c->p >= '0' && *c->p <= '9') ||
                             (*c->p >= 'a' && *c->p <= 'z')))
        c->p++;
    return c->p > s ? 0 : -1;
}

static int jlit(jcur_t *c, const char *lit)
{
    size_t n = strlen(lit);
    if ((size_t)(c->end - c->p) >= n && memcmp(c->p, lit, n) == 0) {
        c->p += n;
        return 1;
    }
    return 0;
}

/* scopes: an array of strings, joined with single spaces into res->scopes. */
static int jscopes(jcur_t *c, keyward_result_t *res)
{
    size_t n = 0;
    char one[256];
    if (*c->p != '[')
        return jskip(c, 0);
    c->p++;
    ws(c);
    if (c->p < c->end && *c->p == ']') {
        c->p++;
        return 0;
    }
    for (;;) {
        ws(c);
        if (jstring(c, one, sizeof(one)) != 0)
            return -1;
        size_t l = strlen(one);
        if (n + (n ? 1 : 0) + l < sizeof(res->scopes)) {
            if (n)
                res->scopes[n++] = ' ';
            memcpy(res->scopes + n, one, l);
            n += l;
            res->scopes[n] = '\0';
        }
        int more = jnext(c, ']');
        if (more <= 0)
            return more;
    }
}

int kwl_parse_verify_json(const char *body, size_t len, keyward_result_t *res)
{
    jcur_t c = {body, body + len};
    char key[32];
    ws(&c);
    if (c.p >= c.end || *c.p++ != '{')
        return KEYWARD_EPROTO;
    ws(&c);
    if (c.p < c.end && *c.p == '}')
        return KEYWARD_EPROTO; /* keyward always names code */
    for (;;) {
        ws(&c);
        if (jstring(&c, key, sizeof(key)) != 0)
            return KEYWARD_EPROTO;
        ws(&c);
        if (c.p >= c.end || *c.p++ != ':')
            return KEYWARD_EPROTO;
        ws(&c);
        if (c.p >= c.end)
            return KEYWARD_EPROTO;
        int rc = 0;
        char *dst = NULL;
        size_t cap = 0;
        if (strcmp(key, "code") == 0)
            dst = res->code, cap = sizeof(res->code);
        else if (strcmp(key, "message") == 0)
            dst = res->message, cap = sizeof(res->message);
        else if (strcmp(key, "credential_id") == 0)
            dst = res->credential_id, cap = sizeof(res->credential_id);
        else if (strcmp(key, "key_id") == 0)
            dst = res->key_id, cap = sizeof(res->key_id);
        else if (strcmp(key, "expires_at") == 0)
            dst = res->expires_at, cap = sizeof(res->expires_at);
        if (dst && *c.p == '"') {
            rc = jstring(&c, dst, cap);
        } else if (strcmp(key, "valid") == 0 && jlit(&c, "true")) {
            res->valid = 1;
        } else if (strcmp(key, "valid") == 0 && jlit(&c, "false")) {
            res->valid = 0;
        } else if (strcmp(key, "scopes") == 0) {
            rc = jscopes(&c, res);
        } else if (strcmp(key, "warnings") == 0 && *c.p == '[') {
            jcur_t in = {c.p + 1, c.end};
            ws(&in);
            rc = jskip(&c, 0);
            if (rc == 0 && in.p < in.end && *in.p != ']')
                res->warning = 1; /* a non-empty array */
        } else {
            rc = jskip(&c, 0);
        }
        if (rc != 0)
            return KEYWARD_EPROTO;
        ws(&c);
        if (c.p >= c.end)
            return KEYWARD_EPROTO;
        if (*c.p == ',') {
            c.p++;
            continue;
        }
        if (*c.p++ != '}')
            return KEYWARD_EPROTO;
        break;
    }
    return res->code[0] ? 0 : KEYWARD_EPROTO;
}
