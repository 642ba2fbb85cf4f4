/* test_expstats.c - expiry figures for /metrics: states, buckets, windows, policies, and the
 * capped attention list (one entry per credential, soonest first, omitted counted). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/expstats.h"
#include "t.h"

#define NOW 1000000000LL
#define D 86400LL

static void test_states_and_buckets(void)
{
    kw_expstats_t st;
    int64_t w[] = {30 * D, 7 * D, 30 * D, 0, D};
    kw_expstats_init(&st, NOW, 10, w, 5);
    T_EQ_INT(st.nwindows, 3);                                         /* duplicates and 0 dropped */
    kw_expstats_add(&st, "cred_a", "default", 30 * D, NOW + 3600, 0); /* 1d */
    kw_expstats_add(&st, "cred_a", "default", 30 * D, NOW + D, 0);    /* 1d (edge) */
    kw_expstats_add(&st, "cred_b", "default", 30 * D, NOW + D + 1, 0);   /* 7d */
    kw_expstats_add(&st, "cred_c", "short", 7 * D, NOW + 20 * D, 0);     /* 30d, outside 7d */
    kw_expstats_add(&st, "cred_d", "default", 30 * D, NOW + 200 * D, 0); /* later */
    kw_expstats_add(&st, "cred_e", "default", 30 * D, 0, 0);             /* never */
    kw_expstats_add(&st, "cred_f", "default", 30 * D, NOW, 0);           /* expired */
    kw_expstats_add(&st, "cred_f", "default", 30 * D, NOW + 5, 1);       /* revoked */
    kw_expstats_finish(&st);
    T_EQ_INT(st.active, 6);
    T_EQ_INT(st.expired, 1);
    T_EQ_INT(st.revoked, 1);
    T_EQ_INT(st.bucket[KW_EXPB_D1], 2);
    T_EQ_INT(st.bucket[KW_EXPB_D7], 1);
    T_EQ_INT(st.bucket[KW_EXPB_D30], 1);
    T_EQ_INT(st.bucket[KW_EXPB_LATER], 1);
    T_EQ_INT(st.bucket[KW_EXPB_NEVER], 1);
    T_EQ_INT(st.bucket[KW_EXPB_EXPIRED], 1);
    T_EQ_INT(st.expiring[0], 4); /* 30d */
    T_EQ_INT(st.expiring[1], 3); /* 7d */
    T_EQ_INT(st.expiring[2], 2); /* 1d */
    T_EQ_INT(st.npols, 2);
    T_EQ_STR(st.pols[0].name, "default");
    T_EQ_INT(st.pols[0].active, 5);
    T_EQ_INT(st.pols[0].expired, 1);
    T_EQ_INT(st.pols[0].revoked, 1);
    T_EQ_INT(st.pols[1].active, 1);
    /* attention: a (twice), b; c is outside its policy's 7d */
    T_EQ_INT(st.attention_keys, 3);
    T_EQ_INT(st.attention_creds, 2);
    T_EQ_INT(st.ntop, 2);
    T_EQ_STR(st.top[0].id, "cred_a");
    T_EQ_INT(st.top[0].expires_at, NOW + 3600);
    T_EQ_STR(st.top[1].id, "cred_b");
    T_EQ_INT(st.omitted, 0);
    kw_expstats_free(&st);
}

static void test_cap(void)
{
    kw_expstats_t st;
    kw_expstats_init(&st, NOW, 50, NULL, 0);
    char id[32];
    /* 1000 credentials with two keys each inside the window, fed in a scrambled order */
    for (int k = 0; k < 2000; k++) {
        int i = (k * 7919) % 1000;
        snprintf(id, sizeof id, "cred_%04d", i);
        kw_expstats_add(&st, id, "p", 30 * D, NOW + 100 + i * 10 + (k >= 1000 ? 5 : 0), 0);
    }
    kw_expstats_finish(&st);
    T_EQ_INT(st.attention_keys, 2000);
    T_EQ_INT(st.attention_creds, 1000);
    T_EQ_INT(st.ntop, 50);
    T_EQ_INT(st.omitted, 950);
    int ok = 1;
    for (size_t i = 0; i < st.ntop; i++) {
        snprintf(id, sizeof id, "cred_%04zu", i);
        ok &= strcmp(st.top[i].id, id) == 0;
        /* the soonest of its two keys */
        ok &= st.top[i].expires_at == NOW + 100 + (int64_t)i * 10 ||
              st.top[i].expires_at == NOW + 100 + (int64_t)i * 10 + 5;
    }
    T_CHECK(ok);
    for (size_t i = 1; i < st.ntop; i++)
        T_CHECK(st.top[i - 1].expires_at <= st.top[i].expires_at);
    kw_expstats_free(&st);

    /* cap 0: counted, nothing listed */
    kw_expstats_init(&st, NOW, 0, NULL, 0);
    kw_expstats_add(&st, "cred_x", "p", 30 * D, NOW + 10, 0);
    kw_expstats_finish(&st);
    T_EQ_INT(st.attention_creds, 1);
    T_EQ_INT(st.ntop, 0);
    T_EQ_INT(st.omitted, 1);
    kw_expstats_free(&st);
}

static void test_many_policies(void)
{
    kw_expstats_t st;
    kw_expstats_init(&st, NOW, 1, NULL, 0);
    char name[32];
    for (int i = 0; i < KW_EXP_POLICIES + 10; i++) {
        snprintf(name, sizeof name, "p%d", i);
        kw_expstats_add(&st, "cred_a", name, 0, 0, 0);
    }
    kw_expstats_finish(&st);
    T_EQ_INT(st.npols, KW_EXP_POLICIES);
    T_EQ_STR(st.pols[KW_EXP_POLICIES - 1].name, "");
    T_EQ_INT(st.pols[KW_EXP_POLICIES - 1].active, 11);
    T_EQ_STR(kw_expstats_bucket_name(KW_EXPB_NEVER), "never");
    kw_expstats_free(&st);
}

int main(void)
{
    T_RUN(test_states_and_buckets);
    T_RUN(test_cap);
    T_RUN(test_many_policies);
    T_DONE();
}
