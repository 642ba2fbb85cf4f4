/* test_mime.c - the exact pieces of e-mail (src/core/mime.c): quoted-printable bodies
 * (CRLF, 76 columns, round trip, "From " and dots), RFC 2047 subjects (75-character words
 * of whole UTF-8 characters, round trip), folding, and encoded display names. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/mime.h"
#include "t.h"

static int hexv(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Decode quoted-printable with CRLF lines into LF text (an independent reading of RFC 2045). */
static char *qp_decode(const char *s)
{
    char *out = malloc(strlen(s) + 1), *o = out;
    while (*s) {
        if (s[0] == '=' && s[1] == '\r' && s[2] == '\n') {
            s += 3;
        } else if (s[0] == '=' && hexv(s[1]) >= 0 && hexv(s[2]) >= 0) {
            *o++ = (char)(hexv(s[1]) * 16 + hexv(s[2]));
            s += 3;
        } else if (s[0] == '\r' && s[1] == '\n') {
            *o++ = '\n';
            s += 2;
        } else {
            *o++ = *s++;
        }
    }
    *o = '\0';
    return out;
}

static char *qp(const char *in)
{
    kw_buf_t b = {0};
    kw_mime_qp(&b, in, strlen(in));
    kw_mime_puts(&b, "");
    return b.p;
}

/* Every line ends in CRLF, is at most 76 characters, and is 7-bit. */
static void check_qp_shape(const char *enc)
{
    size_t col = 0;
    for (const char *p = enc; *p; p++) {
        T_CHECK((unsigned char)*p < 0x80);
        if (*p == '\n') {
            T_CHECK(p > enc && p[-1] == '\r');
            col = 0;
        } else if (*p != '\r') {
            col++;
            T_CHECK(col <= 76);
        }
    }
}

/* in must end with a line feed (the encoder ends an unfinished last line itself). */
static void roundtrip(const char *in)
{
    char *e = qp(in);
    T_REQUIRE(e != NULL); /* out of memory (t.h, T_OOM) */
    check_qp_shape(e);
    char *d = qp_decode(e);
    T_EQ_STR(d, in);
    free(d);
    free(e);
}

static void test_qp(void)
{
    char *e = qp("café\n");
    T_EQ_STR(e, "caf=C3=A9\r\n");
    free(e);
    e = qp("a = b \nx\t\n");
    T_EQ_STR(e, "a =3D b=20\r\nx=09\r\n");
    free(e);
    e = qp("From here\n.\n..x\nFrom:\n");
    T_EQ_STR(e, "=46rom here\r\n.\r\n..x\r\nFrom:\r\n");
    free(e);
    e = qp("cr\r\nlf\n");
    T_EQ_STR(e, "cr\r\nlf\r\n");
    free(e);
    e = qp("no newline at the end");
    T_EQ_STR(e, "no newline at the end\r\n");
    free(e);
    /* long lines: soft breaks, never inside an =XX */
    char line[1200];
    for (int i = 0; i < 300; i++)
        memcpy(line + 4 * i, i % 2 ? "éé" : "ab c", 4);
    memset(line + 1196, 'z', 2);
    line[1198] = '\n';
    line[1199] = '\0';
    roundtrip(line);
    char spaces[200];
    memset(spaces, ' ', 198);
    spaces[198] = '\n';
    spaces[199] = '\0';
    roundtrip(spaces);
    roundtrip("x\n\n\ny  \n");
}

static int b64v(char c)
{
    const char *a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char *p = strchr(a, c);
    return p && c ? (int)(p - a) : -1;
}

/* Decode one base64 text into out; returns its length. */
static size_t b64_decode(const char *s, size_t n, unsigned char *out)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t k = 0;
    for (size_t i = 0; i < n && s[i] != '='; i++) {
        acc = (acc << 6) | (uint32_t)b64v(s[i]);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[k++] = (unsigned char)(acc >> bits);
        }
    }
    return k;
}

/* A complete UTF-8 sequence set (no character cut at either end). */
static int whole_utf8(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        size_t l = s[i] < 0x80 ? 1 : s[i] >= 0xf0 ? 4 : s[i] >= 0xe0 ? 3 : s[i] >= 0xc0 ? 2 : 0;
        if (l == 0 || i + l > n)
            return 0;
        i += l;
    }
    return 1;
}

static void check_subject(const char *value)
{
    kw_buf_t b = {0};
    kw_mime_header_text(&b, "Subject", value);
    if (b.oom) { /* out of memory (t.h, T_OOM) */
        free(b.p);
        T_CHECK(!b.oom);
        return;
    }
    T_CHECK(b.p && strncmp(b.p, "Subject: ", 9) == 0);
    T_CHECK(b.n >= 2 && strcmp(b.p + b.n - 2, "\r\n") == 0);
    /* decode: encoded-words joined, folding removed */
    unsigned char dec[4096];
    size_t dn = 0;
    const char *p = b.p + 9;
    while ((p = strstr(p, "=?utf-8?B?")) != NULL) {
        const char *end = strstr(p + 10, "?=");
        T_CHECK(end != NULL);
        T_CHECK((size_t)(end + 2 - p) <= 75);
        size_t k = b64_decode(p + 10, (size_t)(end - p - 10), dec + dn);
        T_CHECK(whole_utf8(dec + dn, k));
        dn += k;
        p = end + 2;
    }
    dec[dn] = '\0';
    T_EQ_STR((char *)dec, value);
    for (const char *q = b.p; *q; q++)
        T_CHECK((unsigned char)*q < 0x80);
    free(b.p);
}

static void test_subject(void)
{
    kw_buf_t b = {0};
    kw_mime_header_text(&b, "Subject", "[keyward] plain ASCII");
    T_EQ_STR(b.p, "Subject: [keyward] plain ASCII\r\n");
    free(b.p);
    /* long ASCII: folded at spaces, lines near 78, unfolding restores it */
    const char *longv = "[keyward] API key kw_abcd...wxyz of \"a rather long credential name "
                        "for the billing system of the west region\" expires in 14 days";
    b = (kw_buf_t){0};
    kw_mime_header_text(&b, "Subject", longv);
    if (b.oom) {
        free(b.p);
        T_CHECK(!b.oom);
        return;
    }
    T_CHECK(strstr(b.p, "\r\n ") != NULL);
    for (char *line = b.p, *e; (e = strstr(line, "\r\n")) != NULL; line = e + 2)
        T_CHECK(e - line <= 78);
    char unf[512] = "";
    for (const char *q = b.p + 9; *q; q++)
        if (*q != '\r' && *q != '\n')
            strncat(unf, q, 1);
    T_EQ_STR(unf, longv);
    free(b.p);
    check_subject("[keyward] café");
    check_subject("[keyward] API key kw_4GfF…LMzW of \"café-billing ☕\" works until Sun 6 Dec "
                  "2026 08:02 UTC");
    /* 4-byte characters never cut */
    char emoji[400] = "";
    for (int i = 0; i < 60; i++)
        strcat(emoji, "\xf0\x9f\x94\x91"); /* U+1F511 key */
    check_subject(emoji);
    check_subject("é");
    /* ASCII that looks like an encoded-word is encoded, never passed for one */
    check_subject("=?utf-8?B?ZXZpbA==?= spoof");
}

static void test_address(void)
{
    kw_buf_t b = {0};
    kw_mime_header_addr(&b, "From", "Keyward Café <keyward@example.test>");
    T_EQ_STR(b.p, "From: =?utf-8?B?S2V5d2FyZCBDYWbDqQ==?= <keyward@example.test>\r\n");
    free(b.p);
    b = (kw_buf_t){0};
    kw_mime_header_addr(&b, "From", "keyward@example.test");
    T_EQ_STR(b.p, "From: keyward@example.test\r\n");
    free(b.p);
    b = (kw_buf_t){0};
    kw_mime_header_addr(&b, "Reply-To", "Platform <p@example.test>");
    T_EQ_STR(b.p, "Reply-To: Platform <p@example.test>\r\n");
    free(b.p);
}

static void test_printf(void)
{
    kw_buf_t b = {0};
    for (int i = 0; i < 1000; i++)
        kw_mime_printf(&b, "%d,", i);
    if (b.oom) { /* out of memory (t.h, T_OOM) */
        free(b.p);
        T_CHECK(!b.oom);
        return;
    }
    T_CHECK(!b.oom);
    T_CHECK(strncmp(b.p, "0,1,2,", 6) == 0);
    T_CHECK(strcmp(b.p + b.n - 4, "999,") == 0);
    free(b.p);
}

int main(void)
{
    T_RUN(test_qp);
    T_RUN(test_subject);
    T_RUN(test_address);
    T_RUN(test_printf);
    T_DONE();
}
