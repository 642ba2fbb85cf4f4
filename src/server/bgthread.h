/* bgthread.h - the shape every background thread of the server shares (bgthread.c): a
 * mutex, a condition and a stop flag; start n threads, sleep between passes until woken,
 * stopped or timed out, and stop: set the flag, wake everyone, join.
 *
 * Most threads make passes: an owner struct that begins with its kw_bg_t is allocated
 * (kw_bg_alloc), its threads started over a pass function (kw_bg_launch: each runs the one
 * wait/wake/stop loop), woken (kw_bg_wake) and stopped and freed (kw_bg_free). */
#ifndef KW_BGTHREAD_H
#define KW_BGTHREAD_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define KW_BG_MAX 8            /* threads per kw_bg_t */
#define KW_BG_UNTIL_WOKEN (-1) /* a pass's answer: sleep until woken or stopped */

struct kw_server;
typedef struct kw_bg kw_bg_t;

/* One pass of thread i (0..n-1) of owner, called with the owner's bg.mu released. Returns
 * the milliseconds to sleep before the next pass: 0 goes on at once, KW_BG_UNTIL_WOKEN (any
 * negative) sleeps until woken. A wake-up (kw_bg_wake) during the pass skips the sleep. */
typedef int64_t (*kw_bg_pass_fn)(void *owner, int i);

typedef struct kw_bg_thread {
    kw_bg_t *b;
    int i;
    pthread_t tid;
} kw_bg_thread_t;

struct kw_bg {
    pthread_mutex_t mu; /* guards stop and whatever the owner keeps beside it */
    pthread_cond_t cv;
    int stop;
    unsigned wakeups; /* kw_bg_wake calls, under mu */
    int n;            /* threads started */
    kw_bg_thread_t th[KW_BG_MAX];
    kw_bg_pass_fn pass;    /* kw_bg_launch */
    struct kw_server *srv; /* the server the threads work for (kw_bg_alloc) */
};

/* Initialise b and start n (1..KW_BG_MAX) threads running fn(arg). 0, or -1 when a thread
 * cannot be started: those already started are stopped and b is destroyed. */
int kw_bg_start(kw_bg_t *b, int n, void *(*fn)(void *), void *arg);
/* Set the stop flag, wake every thread, join them and destroy b. */
void kw_bg_stop(kw_bg_t *b);
/* Wake every thread sleeping in kw_bg_sleep or between passes (takes b->mu). */
void kw_bg_wake(kw_bg_t *b);
/* With b->mu held: sleep until woken, stopped, or ms milliseconds have passed (ms < 0: no
 * time limit). Returns 0 when woken (or spuriously), ETIMEDOUT when the time ran out. */
int kw_bg_sleep(kw_bg_t *b, int64_t ms);

/* A zeroed owner of size bytes whose first member is its kw_bg_t, bg.srv = srv; NULL with
 * KW_ENOMEM in err. */
void *kw_bg_alloc(size_t size, struct kw_server *srv, kw_err_t *err);
/* Start owner's n threads (1..KW_BG_MAX), thread i making passes pass(owner, i) until
 * stopped. owner, or NULL with KW_EINTERNAL "cannot start <what>" in err, owner freed (a
 * NULL owner, from a failed kw_bg_alloc, gives NULL). */
void *kw_bg_launch(void *owner, int n, kw_bg_pass_fn pass, const char *what, kw_err_t *err);
/* Stop owner's threads (kw_bg_stop) and free it; NULL: nothing to do. */
void kw_bg_free(void *owner);

#endif
