/* t.h - a tiny unit-test harness: each test_<module>.c is one program that runs its cases
 * and prints "ok"/"not ok" lines plus a closing "N passed, N failed"; exit 1 on failure. */
#ifndef KW_T_H
#define KW_T_H

#include <stdio.h>
#include <string.h>

static int t_pass, t_fail;
static const char *t_case = "";

#define T_CHECK(cond)                                                                              \
    do {                                                                                           \
        if (cond) {                                                                                \
            t_pass++;                                                                              \
        } else {                                                                                   \
            t_fail++;                                                                              \
            printf("not ok - %s: %s:%d: %s\n", t_case, __FILE__, __LINE__, #cond);                 \
        }                                                                                          \
    } while (0)

#define T_EQ_INT(a, b)                                                                             \
    do {                                                                                           \
        long long t_a_ = (long long)(a), t_b_ = (long long)(b);                                    \
        if (t_a_ == t_b_) {                                                                        \
            t_pass++;                                                                              \
        } else {                                                                                   \
            t_fail++;                                                                              \
            printf("not ok - %s: %s:%d: %s == %s (%lld != %lld)\n", t_case, __FILE__, __LINE__,    \
                   #a, #b, t_a_, t_b_);                                                            \
        }                                                                                          \
    } while (0)

#define T_EQ_STR(a, b)                                                                             \
    do {                                                                                           \
        const char *t_a_ = (a), *t_b_ = (b);                                                       \
        if (t_a_ && t_b_ && strcmp(t_a_, t_b_) == 0) {                                             \
            t_pass++;                                                                              \
        } else {                                                                                   \
            t_fail++;                                                                              \
            printf("not ok - %s: %s:%d: %s == %s (\"%s\" != \"%s\")\n", t_case, __FILE__,          \
                   __LINE__, #a, #b, t_a_ ? t_a_ : "(null)", t_b_ ? t_b_ : "(null)");              \
        }                                                                                          \
    } while (0)

#define T_RUN(fn)                                                                                  \
    do {                                                                                           \
        t_case = #fn;                                                                              \
        int t_before_ = t_fail;                                                                    \
        fn();                                                                                      \
        printf("%s - %s\n", t_fail == t_before_ ? "ok" : "not ok", #fn);                           \
    } while (0)

#define T_DONE()                                                                                   \
    do {                                                                                           \
        printf("%d passed, %d failed\n", t_pass, t_fail);                                          \
        return t_fail ? 1 : 0;                                                                     \
    } while (0)

#endif
