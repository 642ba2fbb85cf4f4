/* fuzz_mime.c - libFuzzer target for the e-mail encoders (src/core/mime.c).
 *
 * Invariants: quoted-printable output is 7-bit, CRLF-only, at most 76 characters a line,
 * and decodes back to the input (CRs dropped, a final line feed added); a header from any
 * one-line text is 7-bit, CRLF-terminated, its continuation lines start with a blank, and
 * no encoded-word is longer than 75 characters. */
// fuzz-sources: src/core/mime.c src/core/sink.c
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/mime.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

static int hexv(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static void check_qp(const char *in, size_t n)
{
    kw_buf_t b = {0};
    kw_mime_qp(&b, in, n);
    if (b.oom || b.p == NULL) {
        size_t crs = 0;
        while (crs < n && in[crs] == '\r')
            crs++;
        CHECK(b.oom || crs == n); /* nothing written: nothing but CRs given */
        free(b.p);
        return;
    }
    /* shape */
    size_t col = 0;
    for (size_t i = 0; i < b.n; i++) {
        unsigned char c = (unsigned char)b.p[i];
        CHECK(c < 0x80 && c != 0);
        if (c == '\n') {
            CHECK(i > 0 && b.p[i - 1] == '\r');
            col = 0;
        } else if (c == '\r') {
            CHECK(i + 1 < b.n && b.p[i + 1] == '\n');
        } else {
            CHECK(++col <= 76);
        }
    }
    /* round trip */
    char *d = malloc(b.n + 1);
    size_t k = 0;
    for (size_t i = 0; i < b.n;) {
        if (b.p[i] == '=' && i + 2 < b.n + 1 && b.p[i + 1] == '\r') {
            i += 3;
        } else if (b.p[i] == '=') {
            CHECK(i + 2 < b.n && hexv(b.p[i + 1]) >= 0 && hexv(b.p[i + 2]) >= 0);
            d[k++] = (char)(hexv(b.p[i + 1]) * 16 + hexv(b.p[i + 2]));
            i += 3;
        } else if (b.p[i] == '\r') {
            d[k++] = '\n';
            i += 2;
        } else {
            d[k++] = b.p[i++];
        }
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (in[i] != '\r')
            CHECK(m < k && d[m++] == in[i]);
    if (m && d[m - 1] != '\n')
        CHECK(m < k && d[m++] == '\n');
    CHECK(m == k);
    free(d);
    free(b.p);
}

static void check_header(const char *v)
{
    kw_buf_t b = {0};
    kw_mime_header_text(&b, "Subject", v);
    if (b.oom) {
        free(b.p);
        return;
    }
    CHECK(b.n >= 11 && memcmp(b.p, "Subject: ", 9) == 0);
    CHECK(memcmp(b.p + b.n - 2, "\r\n", 2) == 0);
    for (size_t i = 0; i < b.n; i++) {
        CHECK((unsigned char)b.p[i] < 0x80);
        if (b.p[i] == '\n' && i + 1 < b.n)
            CHECK(b.p[i + 1] == ' ');
    }
    for (const char *p = b.p; (p = strstr(p, "=?utf-8?B?")) != NULL;) {
        const char *e = strstr(p + 10, "?=");
        CHECK(e && e + 2 - p <= 75);
        p = e + 2;
    }
    free(b.p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_qp((const char *)data, size);
    /* headers get one line of text without NUL, CR or LF (what the templates render) */
    char *v = malloc(size + 1);
    size_t k = 0;
    for (size_t i = 0; i < size && k < 900; i++)
        if (data[i] != 0 && data[i] != '\r' && data[i] != '\n')
            v[k++] = (char)data[i];
    v[k] = '\0';
    check_header(v);
    free(v);
    return 0;
}
