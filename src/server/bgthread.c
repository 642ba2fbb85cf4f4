/* bgthread.c - start, sleep, the pass loop and stop for the server's background threads
 * (bgthread.h). */
#include "bgthread.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>

/* Start n threads: fn(arg), or with arg NULL fn(&b->th[i]). */
static int spawn(kw_bg_t *b, int n, void *(*fn)(void *), void *arg)
{
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->cv, NULL);
    b->stop = 0;
    b->wakeups = 0;
    b->n = 0;
    for (int i = 0; i < n && i < KW_BG_MAX; i++) {
        b->th[i].b = b;
        b->th[i].i = i;
        if (pthread_create(&b->th[i].tid, NULL, fn, arg ? arg : &b->th[i]) != 0) {
            kw_bg_stop(b);
            return -1;
        }
        b->n++;
    }
    return 0;
}

int kw_bg_start(kw_bg_t *b, int n, void *(*fn)(void *), void *arg)
{
    return spawn(b, n, fn, arg);
}

void kw_bg_stop(kw_bg_t *b)
{
    pthread_mutex_lock(&b->mu);
    b->stop = 1;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
    for (int i = 0; i < b->n; i++)
        pthread_join(b->th[i].tid, NULL);
    b->n = 0;
    pthread_mutex_destroy(&b->mu);
    pthread_cond_destroy(&b->cv);
}

void kw_bg_wake(kw_bg_t *b)
{
    pthread_mutex_lock(&b->mu);
    b->wakeups++;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
}

int kw_bg_sleep(kw_bg_t *b, int64_t ms)
{
    if (ms < 0) {
        pthread_cond_wait(&b->cv, &b->mu);
        return 0;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    ts.tv_sec += ts.tv_nsec / 1000000000L;
    ts.tv_nsec %= 1000000000L;
    return pthread_cond_timedwait(&b->cv, &b->mu, &ts) == ETIMEDOUT ? ETIMEDOUT : 0;
}

/* The one loop of a thread making passes: a pass, then a sleep unless stopped or woken
 * meanwhile, until stopped. The owner begins with its kw_bg_t: b is the owner. */
static void *pass_main(void *arg)
{
    kw_bg_thread_t *t = arg;
    kw_bg_t *b = t->b;
    pthread_mutex_lock(&b->mu);
    while (!b->stop) {
        unsigned seen = b->wakeups;
        pthread_mutex_unlock(&b->mu);
        int64_t ms = b->pass(b, t->i);
        pthread_mutex_lock(&b->mu);
        if (!b->stop && ms != 0 && b->wakeups == seen)
            kw_bg_sleep(b, ms);
    }
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

void *kw_bg_alloc(size_t size, struct kw_server *srv, kw_err_t *err)
{
    kw_bg_t *b = calloc(1, size);
    if (b == NULL) {
        kw_err_set(err, KW_ENOMEM, NULL, "out of memory");
        return NULL;
    }
    b->srv = srv;
    return b;
}

void *kw_bg_launch(void *owner, int n, kw_bg_pass_fn pass, const char *what, kw_err_t *err)
{
    kw_bg_t *b = owner;
    if (b == NULL)
        return NULL;
    b->pass = pass;
    if (spawn(b, n, pass_main, NULL) != 0) {
        free(b);
        kw_err_set(err, KW_EINTERNAL, NULL, "cannot start %s", what);
        return NULL;
    }
    return b;
}

void kw_bg_free(void *owner)
{
    if (owner == NULL)
        return;
    kw_bg_stop(owner);
    free(owner);
}
