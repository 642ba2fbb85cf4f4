/* test_util.c - time text (RFC 3339, HTTP-date), random bytes and ids. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/err.h"
#include "core/util.h"
#include "t.h"

#define T_MIN (-62167219200LL) /* 0000-01-01T00:00:00Z */
#define T_MAX (253402300799LL) /* 9999-12-31T23:59:59Z */

static int64_t tp(const char *s)
{
    int64_t v = -424242;

    if (kw_time_parse(s, strlen(s), &v) != 0)
        return -424242;
    return v;
}

static const char *tf(int64_t t)
{
    static char out[KW_TIME_STR_MAX];
    kw_time_format(t, out);
    return out;
}

static void test_format(void)
{
    char out[KW_TIME_STR_MAX];

    T_EQ_STR(tf(0), "1970-01-01T00:00:00Z");
    T_EQ_STR(tf(1795387214), "2026-11-22T22:40:14Z");
    T_EQ_STR(tf(951782400), "2000-02-29T00:00:00Z");
    T_EQ_STR(tf(-1), "1969-12-31T23:59:59Z");
    T_EQ_STR(tf(T_MIN), "0000-01-01T00:00:00Z");
    T_EQ_STR(tf(T_MAX), "9999-12-31T23:59:59Z");
    T_EQ_STR(tf(INT64_MAX), "9999-12-31T23:59:59Z"); /* clamped */
    T_EQ_STR(tf(INT64_MIN), "0000-01-01T00:00:00Z");
    kw_time_format_http(784111777, out);
    T_EQ_STR(out, "Sun, 06 Nov 1994 08:49:37 GMT");
    kw_time_format_http(0, out);
    T_EQ_STR(out, "Thu, 01 Jan 1970 00:00:00 GMT");
    kw_time_format_http(1795387214, out);
    T_EQ_STR(out, "Sun, 22 Nov 2026 22:40:14 GMT");
    kw_time_format_http(INT64_MAX, out);
    T_EQ_STR(out, "Fri, 31 Dec 9999 23:59:59 GMT");
}

static void test_parse(void)
{
    T_EQ_INT(tp("1970-01-01T00:00:00Z"), 0);
    T_EQ_INT(tp("2026-11-22T22:40:14Z"), 1795387214);
    T_EQ_INT(tp("2026-11-22t22:40:14z"), 1795387214);
    T_EQ_INT(tp("2026-11-22T22:40:14.5Z"), 1795387214);
    T_EQ_INT(tp("2026-11-22T22:40:14.999999999Z"), 1795387214); /* truncated, not rounded */
    T_EQ_INT(tp("2000-02-29T00:00:00Z"), 951782400);
    T_EQ_INT(tp("2024-02-29T12:00:00Z"), 1709208000);
    T_EQ_INT(tp("1969-12-31T23:59:59Z"), -1);
    T_EQ_INT(tp("0000-01-01T00:00:00Z"), T_MIN);
    T_EQ_INT(tp("9999-12-31T23:59:59Z"), T_MAX);
}

static void test_offsets(void)
{
    T_EQ_INT(tp("2026-11-23T00:40:14+02:00"), 1795387214);
    T_EQ_INT(tp("2026-11-22T17:10:14-05:30"), 1795387214);
    T_EQ_INT(tp("2026-11-22T22:40:14+00:00"), 1795387214);
    T_EQ_INT(tp("2026-11-22T22:40:14-00:00"), 1795387214);
    T_EQ_INT(tp("2026-11-22T22:40:14.25+00:00"), 1795387214);
    T_EQ_INT(tp("2026-11-23T22:39:14+23:59"), 1795387214);
    T_EQ_INT(tp("1970-01-01T00:00:00+01:00"), -3600);
    /* results that would fall outside 0000..9999 are refused */
    T_EQ_INT(tp("9999-12-31T23:59:59-00:01"), -424242);
    T_EQ_INT(tp("0000-01-01T00:00:00+00:01"), -424242);
    T_EQ_INT(tp("9999-12-31T23:59:59+00:01"), T_MAX - 60);
}

static void test_invalid(void)
{
    int64_t v = 5;

    T_EQ_INT(kw_time_parse(NULL, 0, &v), KW_EINVAL);
    T_EQ_INT(kw_time_parse("", 0, &v), KW_EINVAL);
    T_EQ_INT(v, 5);
    T_EQ_INT(tp("2026-02-30T00:00:00Z"), -424242); /* Feb 30 */
    T_EQ_INT(tp("2026-02-29T00:00:00Z"), -424242); /* not a leap year */
    T_EQ_INT(tp("1900-02-29T00:00:00Z"), -424242); /* century, not leap */
    T_EQ_INT(tp("2026-04-31T00:00:00Z"), -424242);
    T_EQ_INT(tp("2026-13-01T00:00:00Z"), -424242);
    T_EQ_INT(tp("2026-00-01T00:00:00Z"), -424242);
    T_EQ_INT(tp("2026-01-00T00:00:00Z"), -424242);
    T_EQ_INT(tp("2026-01-32T00:00:00Z"), -424242);
    T_EQ_INT(tp("2026-01-01T24:00:00Z"), -424242); /* hour 24 */
    T_EQ_INT(tp("2026-01-01T23:60:00Z"), -424242);
    T_EQ_INT(tp("2026-12-31T23:59:60Z"), -424242); /* leap second */
    T_EQ_INT(tp("2026-01-01T00:00:00"), -424242);  /* no zone */
    T_EQ_INT(tp("2026-01-01 00:00:00Z"), -424242); /* space */
    T_EQ_INT(tp("2026-01-01T00:00:00ZZ"), -424242);
    T_EQ_INT(tp("2026-01-01T00:00:00Z "), -424242);
    T_EQ_INT(tp(" 2026-01-01T00:00:00Z"), -424242);
    T_EQ_INT(tp("2026-01-01T00:00:00.Z"), -424242);
    T_EQ_INT(tp("2026-01-01T00:00:00+0200"), -424242);
    T_EQ_INT(tp("2026-01-01T00:00:00+02"), -424242);
    T_EQ_INT(tp("2026-01-01T00:00:00+24:00"), -424242);
    T_EQ_INT(tp("2026-01-01T00:00:00+02:60"), -424242);
    T_EQ_INT(tp("2026-01-01T00:00:00+02:00x"), -424242);
    T_EQ_INT(tp("26-01-01T00:00:00Z"), -424242);
    T_EQ_INT(tp("+2026-01-01T00:00:00Z"), -424242);
    T_EQ_INT(tp("2026-1-01T00:00:00Z"), -424242);
    T_EQ_INT(tp("2026-01-01T0:00:00Z"), -424242);
    T_EQ_INT(tp("2026-01-01"), -424242);
    T_EQ_INT(tp("-026-01-01T00:00:00Z"), -424242);
    T_EQ_INT(tp("2026-01-01T00:00:00+-1:00"), -424242);
    T_EQ_INT(kw_time_parse("2026-01-01T00:00:00Z", 19, &v), KW_EINVAL); /* len honoured */
    T_EQ_INT(kw_time_parse("2026-01-01T00:00:00Z\0", 21, &v), KW_EINVAL);
}

static void test_round_trip(void)
{
    static const int64_t vals[] = {
        0, 1, -1, 86399, 951782400, 1795387214, 4102444800LL, T_MIN, T_MAX, -2208988800LL};
    int bad = 0;

    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        const char *s = tf(vals[i]);
        if (tp(s) != vals[i])
            bad++;
    }
    /* and a spread of pseudo-random times across the whole range */
    uint64_t x = 88172645463325252ULL;
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        int64_t t = T_MIN + (int64_t)(x % (uint64_t)(T_MAX - T_MIN + 1));
        if (tp(tf(t)) != t)
            bad++;
    }
    T_EQ_INT(bad, 0);
}

static void test_now(void)
{
    int64_t a = kw_now(), b = (int64_t)time(NULL);

    T_CHECK(a > 1700000000);
    T_CHECK(llabs(a - b) <= 1);
}

static int b62(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static void test_ids(void)
{
    char id[KW_ID_MAX], id2[KW_ID_MAX];
    int bad = 0;

    T_EQ_INT(kw_id_new("cred", id), 0);
    T_EQ_INT(strlen(id), 5 + 22);
    T_CHECK(strncmp(id, "cred_", 5) == 0);
    for (int i = 5; i < 27; i++)
        if (!b62(id[i]))
            bad++;
    T_EQ_INT(bad, 0);
    T_EQ_INT(kw_id_valid("cred", id), 1);
    T_EQ_INT(kw_id_valid("key", id), 0);
    T_EQ_INT(kw_id_valid("cre", id), 0);
    T_EQ_INT(kw_id_new("cred", id2), 0);
    T_CHECK(strcmp(id, id2) != 0);
    T_EQ_INT(kw_id_new("abcdefghijklmnop", id), 0); /* longest prefix fits */
    T_EQ_INT(strlen(id), 16 + 1 + 22);
    T_EQ_INT(kw_id_valid("abcdefghijklmnop", id), 1);

    T_EQ_INT(kw_id_new("abcdefghijklmnopq", id), KW_EINVAL);
    T_EQ_INT(kw_id_new("", id), KW_EINVAL);
    T_EQ_INT(kw_id_new("Cred", id), KW_EINVAL);
    T_EQ_INT(kw_id_new(NULL, id), KW_EINVAL);

    T_EQ_INT(kw_id_valid("key", "key_0123456789ABCDEFabcdef"), 1);
    T_EQ_INT(kw_id_valid("key", "key_0123456789ABCDEFabcde"), 0);   /* 21 */
    T_EQ_INT(kw_id_valid("key", "key_0123456789ABCDEFabcdefg"), 0); /* 23 */
    T_EQ_INT(kw_id_valid("key", "key_0123456789ABCDEF-bcdef"), 0);
    T_EQ_INT(kw_id_valid("key", "key-0123456789ABCDEFabcdef"), 0);
    T_EQ_INT(kw_id_valid("key", "kex_0123456789ABCDEFabcdef"), 0);
    T_EQ_INT(kw_id_valid("key", ""), 0);
    T_EQ_INT(kw_id_valid("key", NULL), 0);
    T_EQ_INT(kw_id_valid(NULL, "key_0123456789ABCDEFabcdef"), 0);
    T_EQ_INT(kw_id_valid("", "_0123456789ABCDEFabcdef"), 0);

    /* the characters are roughly uniform over the alphabet */
    int counts[128] = {0};
    for (int i = 0; i < 2000; i++) {
        kw_id_new("x", id);
        for (int j = 2; j < 24; j++)
            counts[(unsigned char)id[j] & 127]++;
    }
    int lo = 1 << 30, hi = 0;
    for (int c = 0; c < 128; c++) {
        if (!b62((char)c))
            continue;
        lo = counts[c] < lo ? counts[c] : lo;
        hi = counts[c] > hi ? counts[c] : hi;
    }
    T_CHECK(lo > 500 && hi < 930); /* expected 44000 / 62 = 710 each */
}

/* speed: kw_time_format computes the calendar itself; it must agree with glibc's gmtime_r
 * over the whole range (days before 1970, leap years, centuries, 0000 and 9999). */
static void test_format_matches_gmtime(void)
{
    static const char *days[7] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *mons[12] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    int bad = 0;
    for (int64_t i = 0; i < 400000; i++) {
        /* a sweep of the whole range with an odd step, then every day around 1970 */
        int64_t t = i < 200000 ? -62167219200LL + i * 1267011 + i % 86400
                               : (i - 300000) * 86400 + (i * 7919) % 86400;
        char a[KW_TIME_STR_MAX], b[64], c[KW_TIME_STR_MAX], d[64];
        time_t tt = (time_t)t;
        struct tm tm;
        gmtime_r(&tt, &tm);
        kw_time_format(t, a);
        kw_time_format_http(t, c);
        snprintf(b, sizeof(b), "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        snprintf(d, sizeof(d), "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday], tm.tm_mday,
                 mons[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
        if ((strcmp(a, b) != 0 || strcmp(c, d) != 0) && bad++ < 3)
            printf("# t=%lld: %s / %s, %s / %s\n", (long long)t, a, b, c, d);
    }
    T_EQ_INT(bad, 0);
}

static void test_random(void)
{
    unsigned char a[1000], b[1000], z[1000];

    memset(z, 0, sizeof(z));
    T_EQ_INT(kw_random(a, sizeof(a)), 0); /* above getrandom's 256-byte atomic size */
    T_EQ_INT(kw_random(b, sizeof(b)), 0);
    T_CHECK(memcmp(a, b, sizeof(a)) != 0);
    T_CHECK(memcmp(a, z, sizeof(a)) != 0);
    T_EQ_INT(kw_random(a, 0), 0);
}

int main(void)
{
    T_RUN(test_format);
    T_RUN(test_parse);
    T_RUN(test_offsets);
    T_RUN(test_invalid);
    T_RUN(test_round_trip);
    T_RUN(test_now);
    T_RUN(test_ids);
    T_RUN(test_random);
    T_RUN(test_format_matches_gmtime);
    T_DONE();
}
