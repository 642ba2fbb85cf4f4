// fuzz-sources: src/app/*.c src/core/*.c src/store/*.c src/server/[a-r]*.c
// fuzz-sources: src/server/scheduler.c src/server/secrets.c src/server/textbuf.c
// fuzz-sources: src/server/urlguard.c src/server/watched_alerts.c build/gen/mail_builtin.c
// fuzz-libs: libmicrohttpd jansson sqlite3 libcurl
/* fuzz_http.c - libFuzzer target for the HTTP request path, in process: request bytes in,
 * response out, no sockets. A small HTTP/1.1 parser (used only here) turns the bytes into
 * a kw_req_t the way libmicrohttpd would - request line, headers, Content-Length or
 * chunked body, percent-decoded path and query - and kw_api_handle answers it against a
 * real server state (inproc.h: temporary SQLite store, index, lifecycle). Inputs the
 * parser refuses are dropped (libmicrohttpd would answer 400 itself).
 * Placeholders @A @V @C @K stand for the admin key, a usable key, its credential and its
 * key id (see inproc.h). */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "inproc.h"

#define MAX_LINE 8192

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    inproc_init();
    return 0;
}

static int is_tchar(unsigned char c)
{
    return isalnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decode s in place ('+' is a space when plus); a decoded NUL ends the string. */
static void unescape(char *s, int plus)
{
    char *w = s;
    for (char *r = s; *r; r++) {
        if (*r == '%' && hexval(r[1]) >= 0 && hexval(r[2]) >= 0) {
            *w++ = (char)(hexval(r[1]) * 16 + hexval(r[2]));
            r += 2;
        } else if (plus && *r == '+') {
            *w++ = ' ';
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
}

/* Next line (CRLF or LF) from buf[*pos..n) into a NUL-terminated copy; NULL at the end or
 * for a line that is too long or holds a NUL. */
static char *next_line(const char *buf, size_t n, size_t *pos)
{
    size_t s = *pos, e = s;
    while (e < n && buf[e] != '\n')
        e++;
    if (e >= n || e - s > MAX_LINE)
        return NULL;
    *pos = e + 1;
    if (e > s && buf[e - 1] == '\r')
        e--;
    if (memchr(buf + s, '\0', e - s))
        return NULL;
    char *l = malloc(e - s + 1);
    INPROC_CHECK(l != NULL);
    memcpy(l, buf + s, e - s);
    l[e - s] = '\0';
    return l;
}

/* Decode a chunked body from buf[pos..n). Returns the body (malloc'd) or NULL. */
static char *dechunk(const char *buf, size_t n, size_t pos, size_t *blen)
{
    size_t cap = 64, len = 0;
    char *out = malloc(cap);
    INPROC_CHECK(out != NULL);
    for (;;) {
        char *line = next_line(buf, n, &pos);
        if (line == NULL)
            goto bad;
        char *end;
        unsigned long long sz = strtoull(line, &end, 16);
        int ok = end != line && (*end == '\0' || *end == ';') && isxdigit((unsigned char)*line);
        free(line);
        if (!ok || sz > 1024 * 1024)
            goto bad;
        if (sz == 0)
            break;
        if (n - pos < sz + 2 || buf[pos + sz] != '\r' || buf[pos + sz + 1] != '\n')
            goto bad;
        if (len + sz + 1 > cap) {
            while (len + sz + 1 > cap)
                cap *= 2;
            char *nb = realloc(out, cap);
            INPROC_CHECK(nb != NULL);
            out = nb;
        }
        memcpy(out + len, buf + pos, sz);
        len += sz;
        pos += sz + 2;
    }
    *blen = len;
    return out;
bad:
    free(out);
    return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t n, pos = 0, nh = 0, nq = 0, blen = 0;
    char *buf = inproc_subst(data, size, &n);
    char *reqline = NULL, *lines[INPROC_MAX_HDRS];
    const char *hdrs[2 * INPROC_MAX_HDRS + 1], *query[2 * INPROC_MAX_QUERY + 1];
    char *body = NULL;
    const char *cl = NULL, *te = NULL;

    reqline = next_line(buf, n, &pos);
    if (reqline == NULL)
        goto out;
    /* METHOD SP request-target SP HTTP/1.x */
    char *sp1 = strchr(reqline, ' ');
    char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    if (sp1 == NULL || sp2 == NULL || sp1 == reqline || sp2 == sp1 + 1 ||
        (strcmp(sp2 + 1, "HTTP/1.1") != 0 && strcmp(sp2 + 1, "HTTP/1.0") != 0))
        goto out;
    *sp1 = *sp2 = '\0';
    for (char *m = reqline; *m; m++)
        if (!is_tchar((unsigned char)*m))
            goto out;
    char *target = sp1 + 1;
    if (target[0] != '/')
        goto out;

    for (;;) {
        char *l = next_line(buf, n, &pos);
        if (l == NULL)
            goto out;
        if (l[0] == '\0') {
            free(l);
            break;
        }
        char *colon = strchr(l, ':');
        int ok = nh < INPROC_MAX_HDRS && colon && colon != l;
        for (char *c = l; ok && c < colon; c++)
            ok = is_tchar((unsigned char)*c);
        if (!ok) {
            free(l);
            goto out;
        }
        lines[nh] = l;
        *colon = '\0';
        char *v = colon + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        size_t vl = strlen(v);
        while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
            v[--vl] = '\0';
        hdrs[2 * nh] = l;
        hdrs[2 * nh + 1] = v;
        if (strcasecmp(l, "Content-Length") == 0)
            cl = v;
        if (strcasecmp(l, "Transfer-Encoding") == 0)
            te = v;
        nh++;
    }
    hdrs[2 * nh] = NULL;

    if (te && strcasecmp(te, "chunked") == 0) {
        body = dechunk(buf, n, pos, &blen);
        if (body == NULL)
            goto out;
    } else if (te) {
        goto out;
    } else if (cl) {
        char *end;
        unsigned long long want = strtoull(cl, &end, 10);
        if (*cl < '0' || *cl > '9' || *end != '\0' || want > n - pos)
            goto out;
        blen = (size_t)want;
        body = malloc(blen + 1);
        INPROC_CHECK(body != NULL);
        memcpy(body, buf + pos, blen);
    }

    char *qs = strchr(target, '?');
    if (qs) {
        *qs++ = '\0';
        char *save = NULL;
        for (char *a = strtok_r(qs, "&", &save); a && nq < INPROC_MAX_QUERY;
             a = strtok_r(NULL, "&", &save)) {
            char *eq = strchr(a, '=');
            if (eq)
                *eq++ = '\0';
            unescape(a, 1);
            if (eq)
                unescape(eq, 1);
            query[2 * nq] = a;
            query[2 * nq + 1] = eq ? eq : "";
            nq++;
        }
    }
    query[2 * nq] = NULL;
    unescape(target, 0);
    inproc_request(reqline, target, hdrs, query, body, blen);

out:
    for (size_t i = 0; i < nh; i++)
        free(lines[i]);
    free(body);
    free(reqline);
    free(buf);
    return 0;
}
