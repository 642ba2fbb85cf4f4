/* connguard.c - cuts connections whose current request outlives --request-timeout (see
 * connguard.h). One watcher thread, one mutex, a list of the open connections.
 * Must not: close an fd (libmicrohttpd owns them); it only shuts the socket down, which
 * the library sees as the peer leaving. The handle is removed under the same mutex before
 * libmicrohttpd closes the fd, so a shutdown never reaches a reused descriptor. */
#include "connguard.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <time.h>

#include "bgthread.h"
#include "log.h"

struct kw_guard_conn {
    LIST_ENTRY(kw_guard_conn) link;
    int fd;
    int cut;
    _Atomic long long deadline_ms; /* CLOCK_MONOTONIC; rearmed without the lock */
};

struct kw_guard {
    kw_bg_t bg; /* the watcher; bg.mu also guards the list */
    unsigned timeout_s;
    LIST_HEAD(, kw_guard_conn) conns; /* sys/queue.h; zeroed: empty */
    atomic_ulong cuts;
};

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void deadline_from_now(kw_guard_t *g, kw_guard_conn_t *c)
{
    atomic_store(&c->deadline_ms, mono_ms() + (long long)g->timeout_s * 1000);
}

static void *watch_main(void *arg)
{
    kw_guard_t *g = arg;
    pthread_mutex_lock(&g->bg.mu);
    while (!g->bg.stop) {
        kw_bg_sleep(&g->bg, 250); /* cut within a quarter second of the limit */
        long long now = mono_ms();
        unsigned n = 0;
        for (kw_guard_conn_t *c = LIST_FIRST(&g->conns); c; c = LIST_NEXT(c, link)) {
            if (c->cut || now < atomic_load(&c->deadline_ms))
                continue;
            shutdown(c->fd, SHUT_RDWR);
            c->cut = 1;
            n++;
        }
        if (n) {
            atomic_fetch_add(&g->cuts, n);
            kw_log(KW_LOG_INFO, "connection cut: request not finished in time", "{s:i, s:i}",
                   "connections", (int)n, "request_timeout_s", (int)g->timeout_s);
        }
    }
    pthread_mutex_unlock(&g->bg.mu);
    return NULL;
}

kw_guard_t *kw_guard_new(unsigned timeout_s)
{
    if (timeout_s == 0)
        return NULL;
    kw_guard_t *g = calloc(1, sizeof(*g));
    if (g == NULL)
        return NULL;
    g->timeout_s = timeout_s;
    atomic_init(&g->cuts, 0);
    if (kw_bg_start(&g->bg, 1, watch_main, g) != 0) {
        free(g);
        return NULL;
    }
    return g;
}

void kw_guard_free(kw_guard_t *g)
{
    if (g == NULL)
        return;
    kw_bg_stop(&g->bg);
    for (kw_guard_conn_t *c; (c = LIST_FIRST(&g->conns)) != NULL;) {
        LIST_REMOVE(c, link);
        free(c);
    }
    free(g);
}

kw_guard_conn_t *kw_guard_add(kw_guard_t *g, int fd)
{
    if (g == NULL || fd < 0)
        return NULL;
    kw_guard_conn_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->fd = fd;
    deadline_from_now(g, c);
    pthread_mutex_lock(&g->bg.mu);
    LIST_INSERT_HEAD(&g->conns, c, link);
    pthread_mutex_unlock(&g->bg.mu);
    return c;
}

void kw_guard_rearm(kw_guard_t *g, kw_guard_conn_t *c)
{
    if (g == NULL || c == NULL)
        return;
    deadline_from_now(g, c);
}

void kw_guard_remove(kw_guard_t *g, kw_guard_conn_t *c)
{
    if (g == NULL || c == NULL)
        return;
    pthread_mutex_lock(&g->bg.mu);
    LIST_REMOVE(c, link);
    pthread_mutex_unlock(&g->bg.mu);
    free(c);
}

unsigned long kw_guard_cuts(const kw_guard_t *g)
{
    return g ? atomic_load(&((kw_guard_t *)g)->cuts) : 0;
}
