/* test_refresh.c - the refresher's timing rules (core/refresh.h): 80 % of the lifetime
 * within ±3 %, never later than 60 s before the expiry of a token living over 5 min, and
 * backoff from 5 s doubling to 5 min with ±10 % jitter. */
#include "core/refresh.h"
#include "t.h"

static void test_due_at_80_percent(void)
{
    /* 10 s token obtained at t = 1000 ms: 7.7 s .. 8.3 s after */
    T_EQ_INT(kw_refresh_due_at(1000, 10000, 0.5), 1000 + 8000);
    T_EQ_INT(kw_refresh_due_at(1000, 10000, 0.0), 1000 + 7700);
    T_CHECK(kw_refresh_due_at(1000, 10000, 0.999999) <= 1000 + 8300);
    T_CHECK(kw_refresh_due_at(1000, 10000, 0.999999) >= 1000 + 8299);
    for (int i = 0; i < 100; i++) {
        double u = i / 100.0;
        int64_t at = kw_refresh_due_at(0, 10000, u);
        T_CHECK(at >= 7500 && at <= 8500); /* the 0.75-0.85 band with room */
    }
}

static void test_long_lifetimes_refresh_a_minute_early(void)
{
    /* 5 min exactly is not "over 5 min": 80 % applies (240 s) */
    T_EQ_INT(kw_refresh_due_at(0, 300000, 0.5), 240000);
    /* 1 h: 80 % = 48 min, well before the cap */
    T_EQ_INT(kw_refresh_due_at(0, 3600000, 0.5), 2880000);
    /* 6 min: at most 83 % = 298.8 s, under the cap of 360 - 60 = 300 s */
    T_CHECK(kw_refresh_due_at(0, 360000, 0.999) <= 360000 - 60000);
    /* 5 min 10 s: 83 % would be 257.3 s, the cap is 250 s */
    T_EQ_INT(kw_refresh_due_at(0, 310000, 0.999999), 250000);
    /* short tokens are never capped below their 80 % (a 2 s token) */
    T_EQ_INT(kw_refresh_due_at(0, 2000, 0.5), 1600);
}

static void test_backoff(void)
{
    const int64_t want[] = {5000, 10000, 20000, 40000, 80000, 160000, 300000, 300000};
    for (int f = 1; f <= 8; f++)
        T_EQ_INT(kw_refresh_backoff_ms(f, 0.5), want[f - 1]);
    T_EQ_INT(kw_refresh_backoff_ms(1000, 0.5), 300000); /* no overflow after many failures */
    T_EQ_INT(kw_refresh_backoff_ms(1, 0.0), 4500);
    T_CHECK(kw_refresh_backoff_ms(1, 0.999999) <= 5500);
    T_EQ_INT(kw_refresh_backoff_ms(20, 0.0), 270000);
}

int main(void)
{
    T_RUN(test_due_at_80_percent);
    T_RUN(test_long_lifetimes_refresh_a_minute_early);
    T_RUN(test_backoff);
    T_DONE();
}
