/* shutdown.c - the watchdog that keeps a stop within --shutdown-timeout whatever other
 * servers do, and lets a second SIGTERM/SIGINT end the process at once. */
#include "shutdown.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static void *watch_main(void *arg)
{
    int64_t ms = *(int64_t *)arg;
    free(arg);
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    struct timespec end, now;
    clock_gettime(CLOCK_MONOTONIC, &end);
    end.tv_sec += (time_t)(ms / 1000);
    end.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (end.tv_nsec >= 1000000000L) {
        end.tv_sec++;
        end.tv_nsec -= 1000000000L;
    }
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        struct timespec left = {end.tv_sec - now.tv_sec, end.tv_nsec - now.tv_nsec};
        if (left.tv_nsec < 0) {
            left.tv_sec--;
            left.tv_nsec += 1000000000L;
        }
        if (left.tv_sec < 0)
            break;
        int sig = sigtimedwait(&sigs, NULL, &left);
        if (sig == SIGTERM || sig == SIGINT) {
            kw_log(KW_LOG_WARN, "second signal: exiting now; unfinished deliveries stay queued",
                   "{s:s}", "signal", sig == SIGTERM ? "SIGTERM" : "SIGINT");
            _exit(1);
        }
        if (sig < 0 && errno != EINTR && errno != EAGAIN)
            break;
    }
    kw_log(KW_LOG_WARN,
           "shutdown timeout reached: exiting now; unfinished deliveries stay queued, "
           "usage not yet written is lost",
           "{s:I}", "timeout_ms", (json_int_t)ms);
    _exit(0);
    return NULL;
}

int kw_shutdown_watch(int64_t timeout_ms)
{
    pthread_t t;
    int64_t *arg = malloc(sizeof(*arg));
    if (arg == NULL)
        return -1;
    *arg = timeout_ms;
    if (pthread_create(&t, NULL, watch_main, arg) != 0) {
        free(arg);
        return -1;
    }
    pthread_detach(t);
    return 0;
}
