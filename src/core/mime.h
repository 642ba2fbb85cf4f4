/* mime.h - exact pieces of an Internet message for the e-mail channel (mail_msg.c):
 * text appended to a kw_buf_t (util.h), RFC 2047 header text, quoted-printable bodies, CRLF
 * throughout. Pure: no I/O, no allocation but the buffer's. */
#ifndef KW_MIME_H
#define KW_MIME_H

#include <stddef.h>

#include "util.h"

/* Append the string s (kw_buf_put). */
void kw_mime_puts(kw_buf_t *b, const char *s);
/* printf into the buffer; one call writes at most 2047 bytes. */
void kw_mime_printf(kw_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* "Name: value\r\n" for unstructured text (RFC 5322 §2.2.1): printable ASCII is folded at
 * spaces near 78 columns; anything else (or text holding "=?") becomes "=?utf-8?B?...?="
 * encoded-words (RFC 2047) of at most 39 bytes of whole UTF-8 characters each (75 characters), one
 * per line. value must hold no CR or LF (the caller's templates render headers on one line). */
void kw_mime_header_text(kw_buf_t *b, const char *name, const char *value);
/* "Name: Display <addr>\r\n" with a non-ASCII display name as one encoded-word; a value
 * without '<' or all ASCII is written as it is. */
void kw_mime_header_addr(kw_buf_t *b, const char *name, const char *value);
/* Quoted-printable (RFC 2045 §6.7) of text[0..n) whose lines end in LF (CR is dropped):
 * CRLF line ends, at most 76 characters per line with "=" soft breaks, '=' and bytes
 * outside printable ASCII encoded, blanks before a line end encoded, a line opening with
 * "From " encoded as "=46rom " (mail stores mangle it). The result is 7-bit. */
void kw_mime_qp(kw_buf_t *b, const char *text, size_t n);

#endif
