/* metrics_expiry.h - the expiry figures of /metrics (keys by state, policy and time to
 * expiry; the credentials that need attention, capped), computed by a background thread from
 * the verification index every --metrics-refresh, so that a scrape copies a snapshot and never
 * walks the keys itself. */
#ifndef KW_METRICS_EXPIRY_H
#define KW_METRICS_EXPIRY_H

#include "api.h"

/* Start the refresher thread; it takes the first snapshot at once (until then a scrape has
 * no expiry figures). Returns 0 or KW_EINTERNAL. */
int kw_metrics_expiry_start(kw_server_t *s, kw_err_t *err);
void kw_metrics_expiry_stop(void); /* no-op when not started */

/* Append the snapshot's series to the scrape text via put(ud, text). Returns the age of
 * the snapshot in seconds, or -1 when there is none yet (nothing appended). */
typedef void (*kw_metrics_put_fn)(void *ud, const char *text, size_t len);
int64_t kw_metrics_expiry_render(int64_t now, kw_metrics_put_fn put, void *ud);

/* Take a snapshot now, in the caller's thread (tests and the first refresh). */
void kw_metrics_expiry_refresh(kw_server_t *s);

#endif
