/* bgthread.h - the shape every background thread of the server shares (bgthread.c): a
 * mutex, a condition and a stop flag; start n threads, sleep between passes until woken,
 * stopped or timed out, and stop: set the flag, wake everyone, join. */
#ifndef KW_BGTHREAD_H
#define KW_BGTHREAD_H

#include <pthread.h>
#include <stdint.h>

#define KW_BG_MAX 4 /* threads per kw_bg_t */

typedef struct kw_bg {
    pthread_mutex_t mu; /* guards stop and whatever the owner keeps beside it */
    pthread_cond_t cv;
    int stop;
    int n; /* threads started */
    pthread_t tid[KW_BG_MAX];
} kw_bg_t;

/* Initialise b and start n (1..KW_BG_MAX) threads running fn(arg). 0, or -1 when a thread
 * cannot be started: those already started are stopped and b is destroyed. */
int kw_bg_start(kw_bg_t *b, int n, void *(*fn)(void *), void *arg);
/* Set the stop flag, wake every thread, join them and destroy b. */
void kw_bg_stop(kw_bg_t *b);
/* Wake every thread sleeping in kw_bg_sleep (takes b->mu). */
void kw_bg_wake(kw_bg_t *b);
/* With b->mu held: sleep until woken, stopped, or ms milliseconds have passed. Returns 0 when
 * woken (or spuriously), ETIMEDOUT when the time ran out. */
int kw_bg_sleep(kw_bg_t *b, int64_t ms);

#endif
