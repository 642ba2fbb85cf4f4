/* t.h - a tiny unit-test harness: each test_<module>.c is one program that runs its cases
 * and prints "ok"/"not ok" lines plus a closing "N passed, N failed"; exit 1 on failure.
 *
 * `build/tests/test_x [CASE...]` runs only the named cases (T_RUN's function names); a name
 * that matches no case fails. Every case runs under a timeout (KW_TEST_TIMEOUT seconds,
 * default 120): a case that hangs prints "not ok - CASE: timed out" and the program exits 1.
 *
 * Built with -DT_OOM against a libkwcore.a whose allocation calls are renamed to t_oom_*
 * (the Makefile's oom tests, run under ASan by scripts/test.sh), each case runs once as
 * usual, then again and again with the core's allocation number N = 1, 2, ... failing (that
 * one only, as sqlite's malloc tests do), until a run sees no failure. Assertions are not counted
 * in the failing runs (a case may see ENOMEM); what must hold is no crash, no leak (checked after
 * every run when LeakSanitizer is there) and a last, undisturbed run that passes whole. */
#ifndef KW_T_H
#define KW_T_H

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int t_pass, t_fail, t_quiet;
static const char *t_case = "";
static int t_argc;
static char **t_argv;
static char *t_matched; /* per argv entry: did a case of that name run */

#define T__FAIL(...)                                                                               \
    do {                                                                                           \
        t_fail++;                                                                                  \
        if (!t_quiet)                                                                              \
            printf(__VA_ARGS__);                                                                   \
    } while (0)

#define T_CHECK(cond)                                                                              \
    do {                                                                                           \
        if (cond)                                                                                  \
            t_pass++;                                                                              \
        else                                                                                       \
            T__FAIL("not ok - %s: %s:%d: %s\n", t_case, __FILE__, __LINE__, #cond);                \
    } while (0)

#define T_EQ_INT(a, b)                                                                             \
    do {                                                                                           \
        long long t_a_ = (long long)(a), t_b_ = (long long)(b);                                    \
        if (t_a_ == t_b_)                                                                          \
            t_pass++;                                                                              \
        else                                                                                       \
            T__FAIL("not ok - %s: %s:%d: %s == %s (%lld != %lld)\n", t_case, __FILE__, __LINE__,   \
                    #a, #b, t_a_, t_b_);                                                           \
    } while (0)

#define T_EQ_STR(a, b)                                                                             \
    do {                                                                                           \
        const char *t_a_ = (a), *t_b_ = (b);                                                       \
        if (t_a_ && t_b_ && strcmp(t_a_, t_b_) == 0)                                               \
            t_pass++;                                                                              \
        else                                                                                       \
            T__FAIL("not ok - %s: %s:%d: %s == %s (\"%s\" != \"%s\")\n", t_case, __FILE__,         \
                    __LINE__, #a, #b, t_a_ ? t_a_ : "(null)", t_b_ ? t_b_ : "(null)");             \
    } while (0)

/* ---- the timeout: SIGALRM names the case and ends the program ---- */

static void t_alarm(int sig)
{
    (void)sig;
    static const char a[] = "not ok - ", b[] = ": timed out\n";
    ssize_t w = write(STDOUT_FILENO, a, sizeof(a) - 1);
    w += write(STDOUT_FILENO, t_case, strlen(t_case));
    w += write(STDOUT_FILENO, b, sizeof(b) - 1);
    (void)w;
    _exit(1);
}

__attribute__((unused)) static void t_arm(void)
{
    static unsigned secs;
    if (secs == 0) {
        const char *e = getenv("KW_TEST_TIMEOUT");
        secs = e && atoi(e) > 0 ? (unsigned)atoi(e) : 120;
        signal(SIGALRM, t_alarm);
    }
    alarm(secs);
}

/* ---- one case by name: argv reaches a constructor (glibc passes main's arguments) ---- */

__attribute__((constructor)) static void t_args(int argc, char **argv)
{
    t_argc = argc;
    t_argv = argv;
    t_matched = calloc(argc > 0 ? (size_t)argc : 1, 1);
    setvbuf(stdout, NULL, _IOLBF, 0); /* a timed-out or crashed case keeps what it printed */
}

__attribute__((unused)) static int t_selected(const char *name)
{
    if (t_argc < 2)
        return 1;
    for (int i = 1; i < t_argc; i++)
        if (strcmp(t_argv[i], name) == 0)
            return t_matched[i] = 1;
    return 0;
}

/* ---- allocation failure injection (T_OOM builds only) ---- */

#ifdef T_OOM
#include <errno.h>

static long t_oom_countdown; /* > 0: the allocation that brings it to 0 fails */
static int t_oom_hit;

static int t_oom_tick(void)
{
    if (t_oom_countdown > 0 && --t_oom_countdown == 0) {
        t_oom_hit = 1;
        errno = ENOMEM;
        return 1;
    }
    return 0;
}

/* the core's allocation calls, renamed by objcopy (Makefile: $(B)/oom/libkwcore.a) */
void *t_oom_malloc(size_t n);
void *t_oom_calloc(size_t m, size_t n);
void *t_oom_realloc(void *p, size_t n);
char *t_oom_strdup(const char *s);
char *t_oom_strndup(const char *s, size_t n);
void *t_oom_malloc(size_t n)
{
    return t_oom_tick() ? NULL : malloc(n);
}
void *t_oom_calloc(size_t m, size_t n)
{
    return t_oom_tick() ? NULL : calloc(m, n);
}
void *t_oom_realloc(void *p, size_t n)
{
    return t_oom_tick() ? NULL : realloc(p, n);
}
char *t_oom_strdup(const char *s)
{
    return t_oom_tick() ? NULL : strdup(s);
}
char *t_oom_strndup(const char *s, size_t n)
{
    return t_oom_tick() ? NULL : strndup(s, n);
}

/* LeakSanitizer's check, when the program has it (ASan builds) */
int __lsan_do_recoverable_leak_check(void) __attribute__((weak));

static long t_oom_runs;

#define T__OOM_LOOP(fn)                                                                            \
    do {                                                                                           \
        int t_p_ = t_pass, t_f_ = t_fail;                                                          \
        for (long t_n_ = 1;; t_n_++) {                                                             \
            int t_fb_ = t_fail;                                                                    \
            t_arm();                                                                               \
            t_quiet = 1;                                                                           \
            t_oom_hit = 0;                                                                         \
            t_oom_countdown = t_n_;                                                                \
            fn();                                                                                  \
            t_oom_countdown = 0;                                                                   \
            t_quiet = 0;                                                                           \
            t_oom_runs++;                                                                          \
            if (__lsan_do_recoverable_leak_check && __lsan_do_recoverable_leak_check()) {          \
                printf("not ok - %s: leak with allocation %ld failing\n", #fn, t_n_);              \
                t_f_++;                                                                            \
            }                                                                                      \
            if (!t_oom_hit) {                                                                      \
                if (t_fail != t_fb_) {                                                             \
                    printf("not ok - %s: the run after %ld failing ones fails\n", #fn, t_n_ - 1);  \
                    t_f_++;                                                                        \
                }                                                                                  \
                break;                                                                             \
            }                                                                                      \
        }                                                                                          \
        t_pass = t_p_;                                                                             \
        t_fail = t_f_;                                                                             \
    } while (0)
#define T__OOM_REPORT() printf("# %ld runs with one allocation failing\n", t_oom_runs)
#else
#define T__OOM_LOOP(fn)                                                                            \
    do {                                                                                           \
    } while (0)
#define T__OOM_REPORT()                                                                            \
    do {                                                                                           \
    } while (0)
#endif

/* Stop the case here when cond is false (what follows would only crash): with T_OOM a core
 * call may fail for want of memory. */
#define T_REQUIRE(cond)                                                                            \
    do {                                                                                           \
        if (cond) {                                                                                \
            t_pass++;                                                                              \
        } else {                                                                                   \
            T__FAIL("not ok - %s: %s:%d: %s\n", t_case, __FILE__, __LINE__, #cond);                \
            return;                                                                                \
        }                                                                                          \
    } while (0)

#define T_RUN(fn)                                                                                  \
    do {                                                                                           \
        if (!t_selected(#fn))                                                                      \
            break;                                                                                 \
        t_case = #fn;                                                                              \
        int t_before_ = t_fail;                                                                    \
        t_arm();                                                                                   \
        fn();                                                                                      \
        T__OOM_LOOP(fn);                                                                           \
        alarm(0);                                                                                  \
        printf("%s - %s\n", t_fail == t_before_ ? "ok" : "not ok", #fn);                           \
    } while (0)

#define T_DONE()                                                                                   \
    do {                                                                                           \
        for (int t_i_ = 1; t_i_ < t_argc; t_i_++)                                                  \
            if (!t_matched[t_i_]) {                                                                \
                printf("not ok - no case named %s\n", t_argv[t_i_]);                               \
                t_fail++;                                                                          \
            }                                                                                      \
        T__OOM_REPORT();                                                                           \
        printf("%d passed, %d failed\n", t_pass, t_fail);                                          \
        free(t_matched);                                                                           \
        return t_fail ? 1 : 0;                                                                     \
    } while (0)

#endif
