/* notify_abort.c - the shutdown's hold on deliveries in flight: one process-wide flag,
 * set on SIGTERM, that every libcurl transfer (webhook, SMTP) checks from its progress
 * callback, and the sockets of those transfers, shut down by the abort so that a transfer
 * waiting on a silent peer wakes at once instead of at its next progress call (~1 s). */
#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include "notify_abort.h"

#define TRACKED_MAX 64 /* sockets of transfers in flight; beyond: the progress check only */

static atomic_int aborting;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static curl_socket_t tracked[TRACKED_MAX];
static int ntracked;

void kw_notify_abort(void)
{
    atomic_store(&aborting, 1);
    pthread_mutex_lock(&mu);
    for (int i = 0; i < ntracked; i++)
        shutdown(tracked[i], SHUT_RDWR); /* the peer sees a reset; curl sees an error */
    pthread_mutex_unlock(&mu);
}

int kw_notify_aborted(void)
{
    return atomic_load(&aborting);
}

/* libcurl calls this at least about once a second, also while nothing moves. */
static int progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)ud;
    (void)dt;
    (void)dn;
    (void)ut;
    (void)un;
    return atomic_load(&aborting) ? 1 : 0; /* non-zero: CURLE_ABORTED_BY_CALLBACK */
}

/* Sockets are opened and closed here so that kw_notify_abort() can shut them down; the
 * lock is held across close() so that a number reused by another thread is never hit. */
static curl_socket_t open_socket(void *ud, curlsocktype purpose, struct curl_sockaddr *a)
{
    (void)ud;
    (void)purpose;
    curl_socket_t fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
    if (fd == CURL_SOCKET_BAD)
        return fd;
    pthread_mutex_lock(&mu);
    if (atomic_load(&aborting)) {
        close(fd);
        fd = CURL_SOCKET_BAD;
    } else if (ntracked < TRACKED_MAX) {
        tracked[ntracked++] = fd;
    }
    pthread_mutex_unlock(&mu);
    return fd;
}

static int close_socket(void *ud, curl_socket_t fd)
{
    (void)ud;
    pthread_mutex_lock(&mu);
    for (int i = 0; i < ntracked; i++)
        if (tracked[i] == fd) {
            tracked[i] = tracked[--ntracked];
            break;
        }
    int rc = close(fd);
    pthread_mutex_unlock(&mu);
    return rc;
}

void kw_notify_abortable(void *curl)
{
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, progress);
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl, CURLOPT_OPENSOCKETFUNCTION, open_socket);
    curl_easy_setopt(curl, CURLOPT_CLOSESOCKETFUNCTION, close_socket);
}

int kw_notify_perform(void *curl, int *cc, long *status, char *error, size_t errlen)
{
    kw_notify_abortable(curl);
    CURLcode r = kw_notify_aborted() ? CURLE_ABORTED_BY_CALLBACK : curl_easy_perform(curl);
    *status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, status);
    *cc = (int)r;
    if (r != CURLE_OK && kw_notify_aborted()) {
        snprintf(error, errlen, "abandoned by the shutdown; sent again after it");
        return 1;
    }
    return 0;
}
