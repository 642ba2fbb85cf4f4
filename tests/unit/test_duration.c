/* test_duration.c - duration parse/format: every unit, compounds, and what is refused. */
#include <stdint.h>
#include <string.h>

#include "core/duration.h"
#include "core/err.h"
#include "t.h"

static int64_t parse(const char *s)
{
    int64_t v = -12345;

    if (kw_duration_parse(s, strlen(s), &v) != 0)
        return -1;
    return v;
}

static void test_units(void)
{
    T_EQ_INT(parse("45s"), 45);
    T_EQ_INT(parse("90m"), 5400);
    T_EQ_INT(parse("12h"), 43200);
    T_EQ_INT(parse("30d"), 2592000);
    T_EQ_INT(parse("2w"), 1209600);
    T_EQ_INT(parse("1s"), 1);
    T_EQ_INT(parse("365d"), 31536000);
    T_EQ_INT(parse("007m"), 420); /* leading zeros are harmless */
}

static void test_compound(void)
{
    T_EQ_INT(parse("1d12h"), 129600);
    T_EQ_INT(parse("1h30m"), 5400);
    T_EQ_INT(parse("1w2d3h4m5s"), 7 * 86400 + 2 * 86400 + 3 * 3600 + 4 * 60 + 5);
    T_EQ_INT(parse("2m30s"), 150);
    T_EQ_INT(parse("1d0h"), 86400); /* a zero group is fine if the total is not */
    T_EQ_INT(parse("1d1s"), 86401); /* skipping units is fine */
}

static void test_limits(void)
{
    char buf[64];

    T_EQ_INT(parse("36500d"), KW_DURATION_MAX_SECS);
    T_EQ_INT(parse("3153600000s"), KW_DURATION_MAX_SECS);
    T_EQ_INT(parse("36500d1s"), -1);
    T_EQ_INT(parse("3153600001s"), -1);
    T_EQ_INT(parse("5214w"), 5214LL * 7 * 86400);
    T_EQ_INT(parse("5214w2d"), 36500LL * 86400);
    T_EQ_INT(parse("5215w"), -1);
    T_EQ_INT(parse("5214w3d"), -1); /* 36501 days */
    T_EQ_INT(parse("99999999999999999999999999s"), -1);
    T_EQ_INT(parse("9223372036854775807s"), -1);
    T_EQ_INT(parse("18446744073709551617s"), -1);
    T_EQ_INT(parse("1000000000000000d"), -1);
    /* many leading zeros do not overflow */
    memset(buf, '0', sizeof(buf));
    buf[sizeof(buf) - 3] = '5';
    buf[sizeof(buf) - 2] = 's';
    buf[sizeof(buf) - 1] = '\0';
    T_EQ_INT(parse(buf), 5);
}

static void test_rejects(void)
{
    int64_t v = 77;

    T_EQ_INT(kw_duration_parse(NULL, 0, &v), KW_EINVAL);
    T_EQ_INT(kw_duration_parse("", 0, &v), KW_EINVAL);
    T_EQ_INT(v, 77); /* untouched on failure */
    T_EQ_INT(parse("0s"), -1);
    T_EQ_INT(parse("0d0h"), -1);
    T_EQ_INT(parse("-5s"), -1);
    T_EQ_INT(parse("+5s"), -1);
    T_EQ_INT(parse("5"), -1);
    T_EQ_INT(parse("s"), -1);
    T_EQ_INT(parse("5x"), -1);
    T_EQ_INT(parse("5S"), -1);
    T_EQ_INT(parse("5D"), -1);
    T_EQ_INT(parse(" 5s"), -1);
    T_EQ_INT(parse("5s "), -1);
    T_EQ_INT(parse("5 s"), -1);
    T_EQ_INT(parse("1d 12h"), -1);
    T_EQ_INT(parse("1.5h"), -1);
    T_EQ_INT(parse("12h1d"), -1); /* out of order */
    T_EQ_INT(parse("1h1h"), -1);  /* repeated */
    T_EQ_INT(parse("1d12"), -1);  /* trailing number without unit */
    T_EQ_INT(parse("1dd"), -1);
    T_EQ_INT(parse("never"), -1);
    T_EQ_INT(parse("1ms"), -1);
    T_EQ_INT(parse("1y"), -1);
    T_EQ_INT(kw_duration_parse("5s\0", 3, &v), KW_EINVAL); /* embedded NUL */
    T_EQ_INT(kw_duration_parse("5s9", 2, &v), 0);          /* length is honoured */
    T_EQ_INT(v, 5);
}

static void test_format(void)
{
    char out[KW_DURATION_STR_MAX];

    kw_duration_format(2592000, out);
    T_EQ_STR(out, "30d");
    kw_duration_format(90, out);
    T_EQ_STR(out, "90s");
    kw_duration_format(5400, out);
    T_EQ_STR(out, "90m");
    kw_duration_format(43200, out);
    T_EQ_STR(out, "12h");
    kw_duration_format(129600, out);
    T_EQ_STR(out, "36h");
    kw_duration_format(604800, out);
    T_EQ_STR(out, "7d");
    kw_duration_format(1, out);
    T_EQ_STR(out, "1s");
    kw_duration_format(86401, out);
    T_EQ_STR(out, "86401s");
    kw_duration_format(KW_DURATION_MAX_SECS, out);
    T_EQ_STR(out, "36500d");
    kw_duration_format(INT64_MAX, out); /* outside the contract, but in bounds */
    T_EQ_STR(out, "9223372036854775807s");
    kw_duration_format(0, out);
    T_EQ_STR(out, "0s");
}

static void test_round_trip(void)
{
    static const int64_t vals[] = {1,
                                   59,
                                   60,
                                   61,
                                   3599,
                                   3600,
                                   3660,
                                   86399,
                                   86400,
                                   90061,
                                   604800,
                                   31536000,
                                   KW_DURATION_MAX_SECS - 1,
                                   KW_DURATION_MAX_SECS};
    char out[KW_DURATION_STR_MAX];
    int bad = 0;

    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        kw_duration_format(vals[i], out);
        if (parse(out) != vals[i])
            bad++;
    }
    T_EQ_INT(bad, 0);
}

int main(void)
{
    T_RUN(test_units);
    T_RUN(test_compound);
    T_RUN(test_limits);
    T_RUN(test_rejects);
    T_RUN(test_format);
    T_RUN(test_round_trip);
    T_DONE();
}
