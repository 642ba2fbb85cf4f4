/* util.h - time, RFC 3339, random ids, small string helpers. */
#ifndef KW_UTIL_H
#define KW_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* ASCII character classes, whatever the locale: space or tab; 0-9; 0-9, a-z or A-Z. */
static inline int kw_is_blank(char c)
{
    return c == ' ' || c == '\t';
}
static inline int kw_is_digit(char c)
{
    return c >= '0' && c <= '9';
}
static inline int kw_is_alnum(char c)
{
    return kw_is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* A DNS host name of len bytes: labels of 1 to 63 letters, digits and inner '-' (and '_'
 * with underscore set) between dots, 253 bytes at most, a trailing dot allowed. 1 or 0. */
int kw_hostname_ok(const char *h, size_t len, int underscore);

/* Grow the malloc'd block *p of *cap bytes (NULL and 0 to start) to hold need bytes: to
 * first, then doubling; nothing to do when it already does. 0, or -1 when out of memory
 * (*p and *cap unchanged). */
int kw_grow(char **p, size_t *cap, size_t need, size_t first);

/* A growing NUL-terminated text buffer; zero it to start. After an allocation failure oom
 * is set and further writes are ignored. p is the caller's (free). */
typedef struct kw_buf {
    char *p;
    size_t n, cap;
    int oom;
} kw_buf_t;

/* Append s[0..n) (kw_grow: 256 bytes first, then doubling). */
void kw_buf_put(kw_buf_t *b, const char *s, size_t n);

#define KW_TIME_STR_MAX 32
#define KW_ID_MAX 40 /* "cred_" + 22 base62 + NUL fits */

/* Seconds since the epoch (CLOCK_REALTIME). */
int64_t kw_now(void);

/* RFC 3339 UTC "2026-11-22T22:40:14Z" into out. t is clamped to years 0000..9999. */
void kw_time_format(int64_t t, char out[KW_TIME_STR_MAX]);

/* HTTP-date (RFC 9110 IMF-fixdate) "Sun, 06 Nov 1994 08:49:37 GMT" into out (locale-
 * independent; t clamped as above). */
void kw_time_format_http(int64_t t, char out[KW_TIME_STR_MAX]);

/* Parse RFC 3339 ("2026-11-22T22:40:14Z", fractional seconds ignored, offsets like
 * "+02:00" honoured, "t"/"z" accepted) from s[0..len), no NUL needed. Refused: invalid
 * dates (Feb 30, hour 24), leap second :60, a space for "T", results outside years
 * 0000..9999 (so every parsed time formats back). Returns 0 or KW_EINVAL. */
int kw_time_parse(const char *s, size_t len, int64_t *out);

/* New random id "<prefix>_<22 base62 chars>" into out (uniform over base62, 131 bits).
 * prefix is [a-z][a-z0-9]{0,15}. Returns 0, KW_EINVAL for a bad prefix, or KW_EIO. */
int kw_id_new(const char *prefix, char out[KW_ID_MAX]);

/* As kw_id_new, but the first 8 characters are the creation time in milliseconds, in
 * base62 (the alphabet is in ASCII order), and the other 14 random (83 bits): ids made one
 * after another sort one after another, so the store's indexes on them grow at their right
 * edge (a batch of creations touches a few index pages, not one page per row). Keys and
 * events get these. */
int kw_id_new_ordered(const char *prefix, char out[KW_ID_MAX]);

/* 1 if NUL-terminated s is exactly prefix "_" 22 base62 chars ("cred", "key"...), else 0.
 * NULL arguments give 0. */
int kw_id_valid(const char *prefix, const char *s);

/* Fill buf with n bytes from getrandom(2), retrying on EINTR and short reads.
 * Returns 0 or KW_EIO. */
int kw_random(void *buf, size_t n);

/* Hex text: the value of one digit (either case) or -1; n bytes as 2n lower-case digits and
 * a NUL into out; exactly 2n digits from in into n bytes (0, or -1 with out partly written). */
int kw_hex_digit(char c);
void kw_hex_encode(const uint8_t *in, size_t n, char *out);
int kw_hex_decode(const char *in, size_t n, uint8_t *out);

#endif
