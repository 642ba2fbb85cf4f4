/* util.c - wall-clock time, RFC 3339 / HTTP-date text, random bytes and random ids.
 *
 * Parsers here take (pointer, length) and must not read past it or assume a NUL; nothing
 * here allocates, logs, or depends on the locale or the TZ environment variable. */
#include "util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "err.h"

/* The times RFC 3339 can write: 0000-01-01T00:00:00Z .. 9999-12-31T23:59:59Z. Formatting
 * clamps to this range and parsing refuses results outside it, so every parsed time
 * formats back to text that parses to the same value. */
#define KW__TIME_MIN (-62167219200LL)
#define KW__TIME_MAX (253402300799LL)

#define KW__ID_CHARS 22
#define KW__ID_PREFIX_MAX (KW_ID_MAX - 1 - KW__ID_CHARS - 1) /* 16 */

/* Same alphabet as key text (key.c); kept here so util.c does not depend on key.c. */
static const char kw__b62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

static int kw__is_b62(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

/* Id prefixes follow the key-prefix rule, [a-z][a-z0-9]*, short enough to fit KW_ID_MAX. */
static int kw__id_prefix_valid(const char *p, size_t len)
{
    if (len == 0 || len > KW__ID_PREFIX_MAX || p[0] < 'a' || p[0] > 'z')
        return 0;
    for (size_t i = 1; i < len; i++)
        if (!((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= '0' && p[i] <= '9')))
            return 0;
    return 1;
}

int64_t kw_now(void)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
        return (int64_t)time(NULL);
    return (int64_t)ts.tv_sec;
}

/* Broken-down UTC time of t, clamped to the RFC 3339 range: year, month, day, time of day
 * and weekday only (what the formatters read). Plain arithmetic (the proleptic Gregorian
 * calendar, H. Hinnant's civil_from_days), not gmtime_r, which takes glibc's time-zone lock
 * on every call - once per verify answer on every gate thread (speed, issue 17). */
static void kw__utc(int64_t t, struct tm *tm)
{
    if (t < KW__TIME_MIN)
        t = KW__TIME_MIN;
    if (t > KW__TIME_MAX)
        t = KW__TIME_MAX;
    int64_t days = t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
    int64_t sod = t - days * 86400;
    memset(tm, 0, sizeof(*tm));
    tm->tm_hour = (int)(sod / 3600);
    tm->tm_min = (int)(sod / 60 % 60);
    tm->tm_sec = (int)(sod % 60);
    tm->tm_wday = (int)((days % 7 + 11) % 7); /* 1970-01-01 was a Thursday (4) */
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t d = doy - (153 * mp + 2) / 5 + 1;
    int64_t m = mp < 10 ? mp + 3 : mp - 9;
    int64_t y = yoe + era * 400 + (m <= 2);
    tm->tm_year = (int)(y - 1900);
    tm->tm_mon = (int)(m - 1);
    tm->tm_mday = (int)d;
}

/* Write v as exactly width decimal digits (zero-padded, high digits dropped) at p. */
static char *kw__put(char *p, int v, int width)
{
    unsigned u = v < 0 ? 0u : (unsigned)v;

    for (int i = width - 1; i >= 0; i--) {
        p[i] = (char)('0' + u % 10);
        u /= 10;
    }
    return p + width;
}

static char *kw__puts(char *p, const char *s)
{
    size_t n = strlen(s);

    memcpy(p, s, n);
    return p + n;
}

void kw_time_format(int64_t t, char out[KW_TIME_STR_MAX])
{
    struct tm tm;
    char *p = out;

    /* Fields are in range after clamping, so the text is always 20 bytes + NUL. */
    kw__utc(t, &tm);
    p = kw__put(p, tm.tm_year + 1900, 4);
    *p++ = '-';
    p = kw__put(p, tm.tm_mon + 1, 2);
    *p++ = '-';
    p = kw__put(p, tm.tm_mday, 2);
    *p++ = 'T';
    p = kw__put(p, tm.tm_hour, 2);
    *p++ = ':';
    p = kw__put(p, tm.tm_min, 2);
    *p++ = ':';
    p = kw__put(p, tm.tm_sec, 2);
    *p++ = 'Z';
    *p = '\0';
}

void kw_time_format_http(int64_t t, char out[KW_TIME_STR_MAX])
{
    /* Fixed English names: strftime's %a/%b follow the locale, HTTP does not. */
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct tm tm;
    char *p = out;

    /* "Sun, 06 Nov 1994 08:49:37 GMT": always 29 bytes + NUL. */
    kw__utc(t, &tm);
    p = kw__puts(p, days[(unsigned)tm.tm_wday % 7]);
    p = kw__puts(p, ", ");
    p = kw__put(p, tm.tm_mday, 2);
    *p++ = ' ';
    p = kw__puts(p, months[(unsigned)tm.tm_mon % 12]);
    *p++ = ' ';
    p = kw__put(p, tm.tm_year + 1900, 4);
    *p++ = ' ';
    p = kw__put(p, tm.tm_hour, 2);
    *p++ = ':';
    p = kw__put(p, tm.tm_min, 2);
    *p++ = ':';
    p = kw__put(p, tm.tm_sec, 2);
    p = kw__puts(p, " GMT");
    *p = '\0';
}

/* n decimal digits at s as a number, or -1 if any is not a digit. */
static int kw__digits(const char *s, int n)
{
    int v = 0;

    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

static int kw__leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int kw__days_in_month(int y, int m)
{
    static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && kw__leap(y) ? 29 : dim[m - 1];
}

int kw_time_parse(const char *s, size_t len, int64_t *out)
{
    int y, mo, d, h, mi, sec, off = 0;
    struct tm tm;
    int64_t t;
    size_t i;

    /* date-time = YYYY-MM-DD "T" HH:MM:SS [.frac] ("Z" / ("+"|"-") HH:MM); T and Z may be
     * lower case (RFC 3339 §5.6). A space instead of T, and leap second 60, are refused. */
    if (s == NULL || len < 20)
        return KW_EINVAL;
    if (s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') || s[13] != ':' ||
        s[16] != ':')
        return KW_EINVAL;
    y = kw__digits(s, 4);
    mo = kw__digits(s + 5, 2);
    d = kw__digits(s + 8, 2);
    h = kw__digits(s + 11, 2);
    mi = kw__digits(s + 14, 2);
    sec = kw__digits(s + 17, 2);
    if (y < 0 || mo < 1 || mo > 12 || d < 1 || d > kw__days_in_month(y, mo) || h < 0 || h > 23 ||
        mi < 0 || mi > 59 || sec < 0 || sec > 59)
        return KW_EINVAL;
    i = 19;
    if (s[i] == '.') {
        size_t start = ++i;
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == start)
            return KW_EINVAL;
    }
    if (i >= len)
        return KW_EINVAL;
    if (s[i] == 'Z' || s[i] == 'z') {
        i++;
    } else if (s[i] == '+' || s[i] == '-') {
        int oh, om;
        if (len - i < 6 || s[i + 3] != ':')
            return KW_EINVAL;
        oh = kw__digits(s + i + 1, 2);
        om = kw__digits(s + i + 4, 2);
        if (oh < 0 || oh > 23 || om < 0 || om > 59)
            return KW_EINVAL;
        off = (oh * 60 + om) * 60;
        if (s[i] == '-')
            off = -off;
        i += 6;
    } else {
        return KW_EINVAL;
    }
    if (i != len)
        return KW_EINVAL;

    /* All fields were range-checked above, so timegm has nothing to normalise. */
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    t = (int64_t)timegm(&tm) - off;
    if (t < KW__TIME_MIN || t > KW__TIME_MAX)
        return KW_EINVAL;
    *out = t;
    return 0;
}

int kw_random(void *buf, size_t n)
{
    unsigned char *p = buf;
    size_t got = 0;

    /* getrandom may return short (above 256 bytes, or on a signal) or fail with EINTR
     * before the pool is ready: keep going until n bytes or a real error. */
    while (got < n) {
        ssize_t r = getrandom(p + got, n - got, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return KW_EIO;
        }
        got += (size_t)r;
    }
    return 0;
}

int kw_id_new(const char *prefix, char out[KW_ID_MAX])
{
    unsigned char rnd[48];
    size_t plen, o, r = sizeof(rnd);
    int rc;

    if (prefix == NULL)
        return KW_EINVAL;
    plen = strnlen(prefix, KW__ID_PREFIX_MAX + 1);
    if (!kw__id_prefix_valid(prefix, plen))
        return KW_EINVAL;
    memcpy(out, prefix, plen);
    out[plen] = '_';
    o = plen + 1;
    /* Rejection sampling: 248 = 4 * 62, so b % 62 over b < 248 is uniform. */
    while (o < plen + 1 + KW__ID_CHARS) {
        if (r == sizeof(rnd)) {
            rc = kw_random(rnd, sizeof(rnd));
            if (rc != 0)
                return rc;
            r = 0;
        }
        unsigned char b = rnd[r++];
        if (b < 248)
            out[o++] = kw__b62[b % 62];
    }
    out[o] = '\0';
    return 0;
}

int kw_id_new_ordered(const char *prefix, char out[KW_ID_MAX])
{
    struct timespec ts;
    int rc = kw_id_new(prefix, out);
    if (rc)
        return rc;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
    char *p = strchr(out, '_') + 1;
    for (int i = 7; i >= 0; i--) {
        p[i] = kw__b62[ms % 62];
        ms /= 62;
    }
    return 0;
}

int kw_id_valid(const char *prefix, const char *s)
{
    size_t plen;

    if (prefix == NULL || s == NULL)
        return 0;
    plen = strlen(prefix);
    if (plen == 0 || strncmp(s, prefix, plen) != 0 || s[plen] != '_')
        return 0;
    s += plen + 1;
    for (int i = 0; i < KW__ID_CHARS; i++) {
        if (!kw__is_b62((unsigned char)s[i])) /* a NUL fails here and stops the scan */
            return 0;
    }
    return s[KW__ID_CHARS] == '\0';
}

int kw_hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

void kw_hex_encode(const uint8_t *in, size_t n, char *out)
{
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hx[in[i] >> 4];
        out[2 * i + 1] = hx[in[i] & 15];
    }
    out[2 * n] = '\0';
}

int kw_hex_decode(const char *in, size_t n, uint8_t *out)
{
    for (size_t i = 0; i < n; i++) {
        int hi = kw_hex_digit(in[2 * i]), lo = kw_hex_digit(in[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

int kw_hostname_ok(const char *h, size_t len, int underscore)
{
    size_t label = 0;
    if (len == 0 || len > 253)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = h[i];
        if (c == '.') {
            if (label == 0 || h[i - 1] == '-')
                return 0;
            label = 0;
        } else if (kw_is_alnum(c) || ((c == '-' || (underscore && c == '_')) && label > 0)) {
            if (++label > 63)
                return 0;
        } else {
            return 0;
        }
    }
    /* a trailing '.' (fully qualified) is fine, a trailing '-' is not */
    return h[len - 1] != '-';
}

int kw_grow(char **p, size_t *cap, size_t need, size_t first)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap ? *cap : first;
    while (ncap < need)
        ncap *= 2;
    char *np = realloc(*p, ncap);
    if (np == NULL)
        return -1;
    *p = np;
    *cap = ncap;
    return 0;
}

void kw_buf_put(kw_buf_t *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (kw_grow(&b->p, &b->cap, b->n + n + 1, 256) != 0) {
        b->oom = 1;
        return;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}
