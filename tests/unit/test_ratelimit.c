/* test_ratelimit.c - the per-address token bucket behind --auth-fail-limit
 * (src/server/ratelimit.c, compiled in here: unit tests link the core only). */
#include <stdio.h>

#include "server/ratelimit.c"
#include "t.h"

static void test_burst_then_refill(void)
{
    kw_ratelimit_t *rl = kw_rl_new(3, 3); /* 3 failures, one regained per second */
    T_CHECK(rl != NULL);
    int64_t t = 1000000;
    for (int i = 0; i < 3; i++) {
        T_EQ_INT(kw_rl_check(rl, "192.0.2.1", t), 0);
        kw_rl_fail(rl, "192.0.2.1", t);
    }
    T_EQ_INT(kw_rl_check(rl, "192.0.2.1", t), 1);       /* at the limit: wait 1 s */
    T_EQ_INT(kw_rl_check(rl, "192.0.2.2", t), 0);       /* other addresses unaffected */
    T_EQ_INT(kw_rl_check(rl, "192.0.2.1", t + 999), 1); /* not yet */
    T_EQ_INT(kw_rl_check(rl, "192.0.2.1", t + 1000), 0);
    kw_rl_fail(rl, "192.0.2.1", t + 1000);
    T_CHECK(kw_rl_check(rl, "192.0.2.1", t + 1000) >= 1);
    /* a long quiet time restores the whole burst, no more */
    t += 3600 * 1000;
    for (int i = 0; i < 3; i++)
        kw_rl_fail(rl, "192.0.2.1", t);
    T_CHECK(kw_rl_check(rl, "192.0.2.1", t) >= 1);
    kw_rl_free(rl);
}

static void test_off_and_edges(void)
{
    T_CHECK(kw_rl_new(0, 60) == NULL); /* 0 = no limit */
    T_EQ_INT(kw_rl_check(NULL, "x", 0), 0);
    kw_rl_fail(NULL, "x", 0);
    kw_rl_free(NULL);
    kw_ratelimit_t *rl = kw_rl_new(1, 86400);
    char longaddr[300];
    memset(longaddr, 'a', sizeof(longaddr) - 1);
    longaddr[sizeof(longaddr) - 1] = '\0';
    kw_rl_fail(rl, longaddr, 5);
    T_CHECK(kw_rl_check(rl, longaddr, 5) >= 86399); /* retry after about a day */
    kw_rl_fail(rl, "", 5);
    T_CHECK(kw_rl_check(rl, "", 5) >= 1);
    kw_rl_free(rl);
}

static void test_table_full(void)
{
    /* far more addresses than slots: memory stays fixed, the newest are tracked */
    kw_ratelimit_t *rl = kw_rl_new(1, 60);
    char a[32];
    for (int i = 0; i < KW_RL_SLOTS * 4; i++) {
        snprintf(a, sizeof(a), "10.%d.%d.%d", (i >> 16) & 255, (i >> 8) & 255, i & 255);
        kw_rl_fail(rl, a, 1000 + i);
    }
    snprintf(a, sizeof(a), "10.%d.%d.%d", 0, ((KW_RL_SLOTS * 4 - 1) >> 8) & 255,
             (KW_RL_SLOTS * 4 - 1) & 255);
    T_CHECK(kw_rl_check(rl, a, 1000 + KW_RL_SLOTS * 4) >= 1);
    kw_rl_free(rl);
}

int main(void)
{
    T_RUN(test_burst_then_refill);
    T_RUN(test_off_and_edges);
    T_RUN(test_table_full);
    T_DONE();
}
