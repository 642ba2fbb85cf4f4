/* mime.c - the pieces of an Internet message that must be exact (RFC 5322, RFC 2045,
 * RFC 2047): a growing buffer, unstructured and address headers with non-ASCII text as
 * encoded-words, and quoted-printable bodies with CRLF line ends. Pure: no I/O. */
#include "mime.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sink.h"
#include "util.h"

#define QP_LINE 76

void kw_mime_puts(kw_buf_t *b, const char *s)
{
    kw_buf_put(b, s, strlen(s));
}

void kw_mime_printf(kw_buf_t *b, const char *fmt, ...)
{
    char tmp[2048];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (k > 0)
        kw_buf_put(b, tmp, (size_t)k < sizeof(tmp) ? (size_t)k : sizeof(tmp) - 1);
}

static int ascii_printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
            return 0;
    return 1;
}

/* A header "Name: value" for unstructured text (RFC 5322 §2.2.3, RFC 2047): printable
 * ASCII is folded at spaces; anything else becomes UTF-8 base64 encoded-words of at most
 * 39 bytes each (whole characters), one per folded line. */
void kw_mime_header_text(kw_buf_t *b, const char *name, const char *v)
{
    size_t col = strlen(name) + 2;
    kw_mime_puts(b, name);
    kw_mime_puts(b, ": ");
    /* text that looks like an encoded-word would be decoded by the reader's client: such
     * text is encoded itself (RFC 2047 §5: "=?" never stands for itself) */
    if (ascii_printable(v) && strstr(v, "=?") == NULL) {
        const char *w = v;
        while (*w) {
            const char *sp = strchr(w + 1, ' ');
            size_t wl = sp ? (size_t)(sp - w) : strlen(w);
            if (col + wl > 78 && w != v && *w == ' ') {
                kw_mime_puts(b, "\r\n");
                col = 0;
            }
            kw_buf_put(b, w, wl);
            col += wl;
            w += wl;
        }
        kw_mime_puts(b, "\r\n");
        return;
    }
    size_t len = strlen(v), pos = 0;
    int first = 1;
    while (pos < len) {
        size_t take = len - pos > 39 ? 39 : len - pos;
        /* back off to a character boundary */
        while (take > 0 && pos + take < len && ((unsigned char)v[pos + take] & 0xc0) == 0x80)
            take--;
        if (take == 0)
            take = len - pos < 39 ? len - pos : 39;
        char b64[64];
        kw_base64((const uint8_t *)v + pos, take, b64);
        if (!first)
            kw_mime_puts(b, "\r\n ");
        kw_mime_printf(b, "=?utf-8?B?%s?=", b64);
        first = 0;
        pos += take;
    }
    kw_mime_puts(b, "\r\n");
}

/* From / Reply-To: "Display Name <addr>" with a non-ASCII display name encoded. */
void kw_mime_header_addr(kw_buf_t *b, const char *name, const char *v)
{
    const char *lt = strchr(v, '<');
    char disp[256];
    if (lt == NULL || ascii_printable(v)) {
        kw_mime_printf(b, "%s: %s\r\n", name, v);
        return;
    }
    size_t dl = (size_t)(lt - v);
    while (dl && v[dl - 1] == ' ')
        dl--;
    snprintf(disp, sizeof(disp), "%.*s", (int)dl, v);
    char b64[400];
    kw_base64((const uint8_t *)disp, strlen(disp) > 280 ? 280 : strlen(disp), b64);
    kw_mime_printf(b, "%s: =?utf-8?B?%s?= %s\r\n", name, b64, lt);
}

/* Quoted-printable (RFC 2045 §6.7) of LF-separated UTF-8 text, CRLF line ends, lines of at
 * most 76 characters with soft breaks. */
void kw_mime_qp(kw_buf_t *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t col = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\r')
            continue;
        if (c == '\n') {
            kw_mime_puts(b, "\r\n");
            col = 0;
            continue;
        }
        int last = i + 1 == n || s[i + 1] == '\n' || s[i + 1] == '\r';
        /* "From " opening a line is mangled to ">From " by some mail stores: encode it */
        int from_ = col == 0 && c == 'F' && n - i >= 5 && strncmp(s + i, "From ", 5) == 0;
        char enc[4];
        size_t el;
        if (!from_ && ((c >= 33 && c <= 126 && c != '=') || ((c == ' ' || c == '\t') && !last))) {
            enc[0] = (char)c;
            el = 1;
        } else {
            enc[0] = '=';
            enc[1] = hex[c >> 4];
            enc[2] = hex[c & 15];
            el = 3;
        }
        if (col + el > QP_LINE - 1) {
            kw_mime_puts(b, "=\r\n");
            col = 0;
        }
        kw_buf_put(b, enc, el);
        col += el;
    }
    if (col)
        kw_mime_puts(b, "\r\n");
}
