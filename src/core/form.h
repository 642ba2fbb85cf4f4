/* form.h - application/x-www-form-urlencoded bodies (the OAuth2 endpoints, RFC 6749
 * Appendix B): name=value pairs split on '&', '+' and %XX decoded. Strict: a malformed
 * escape, a decoded NUL or control byte, a repeated name (RFC 6749 §3.2) or more than
 * KW_FORM_MAX pairs is an error. Values may hold secrets: kw_form_free wipes them. */
#ifndef KW_FORM_H
#define KW_FORM_H

#include <stddef.h>

#include "err.h"

#define KW_FORM_MAX 32

typedef struct kw_form {
    size_t n;
    char *name[KW_FORM_MAX];  /* decoded, NUL-terminated, into buf */
    char *value[KW_FORM_MAX]; /* decoded, NUL-terminated, into buf */
    char *buf;                /* owned: every decoded string */
    size_t cap;
} kw_form_t;

/* Parse body[0..len) into f (zeroed first). An empty body gives no pairs. Returns 0,
 * KW_EINVAL (err names the problem, never a value) or KW_ENOMEM. f must be freed with
 * kw_form_free in every case. */
int kw_form_parse(const char *body, size_t len, kw_form_t *f, kw_err_t *err);

/* The value of name, or NULL when absent; an empty value counts as absent (RFC 6749 §3.1). */
const char *kw_form_get(const kw_form_t *f, const char *name);

/* Wipe and free f's buffer (f may be zeroed). */
void kw_form_free(kw_form_t *f);

/* Decode in[0..n) (%XX, and '+' as a space when plus is 1) into out (at least n + 1 bytes,
 * NUL-terminated). Returns the decoded length, or -1 for a malformed escape or a decoded
 * byte below 0x20 or 0x7f. */
long kw_form_decode(const char *in, size_t n, int plus, char *out);

#endif
