/* bgthread.c - start, sleep and stop for the server's background threads (bgthread.h). */
#include <errno.h>
#include <time.h>

#include "bgthread.h"

int kw_bg_start(kw_bg_t *b, int n, void *(*fn)(void *), void *arg)
{
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->cv, NULL);
    b->stop = 0;
    b->n = 0;
    for (int i = 0; i < n && i < KW_BG_MAX; i++) {
        if (pthread_create(&b->tid[i], NULL, fn, arg) != 0) {
            kw_bg_stop(b);
            return -1;
        }
        b->n++;
    }
    return 0;
}

void kw_bg_stop(kw_bg_t *b)
{
    pthread_mutex_lock(&b->mu);
    b->stop = 1;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
    for (int i = 0; i < b->n; i++)
        pthread_join(b->tid[i], NULL);
    b->n = 0;
    pthread_mutex_destroy(&b->mu);
    pthread_cond_destroy(&b->cv);
}

void kw_bg_wake(kw_bg_t *b)
{
    pthread_mutex_lock(&b->mu);
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
}

int kw_bg_sleep(kw_bg_t *b, int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    ts.tv_sec += ts.tv_nsec / 1000000000L;
    ts.tv_nsec %= 1000000000L;
    return pthread_cond_timedwait(&b->cv, &b->mu, &ts) == ETIMEDOUT ? ETIMEDOUT : 0;
}
