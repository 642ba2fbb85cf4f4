/* notify_abort.c - the shutdown's hold on deliveries in flight: one process-wide flag,
 * set on SIGTERM, that every libcurl transfer (webhook, SMTP) checks from its progress
 * callback, so that no receiver or mail server can delay the exit. */
#include <curl/curl.h>
#include <stdatomic.h>

#include "notify.h"

static atomic_int aborting;

void kw_notify_abort(void)
{
    atomic_store(&aborting, 1);
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

void kw_notify_abortable(void *curl)
{
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, progress);
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
}
