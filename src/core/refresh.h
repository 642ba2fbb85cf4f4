/* refresh.h - when the refresher (src/server/refresher.c) next asks a token endpoint (SPEC
 * §12): at 80 % of a token's lifetime with jitter, never later than 60 s before the expiry of
 * a token living over 5 min, and after a failure with exponential backoff. Pure: no clock,
 * no randomness of its own (the caller passes u, uniform in [0, 1)). */
#ifndef KW_REFRESH_H
#define KW_REFRESH_H

#include <stdint.h>

#define KW_REFRESH_FRACTION 0.80
#define KW_REFRESH_JITTER 0.03         /* ± this fraction of the lifetime */
#define KW_REFRESH_LONG_MS 300000      /* lifetimes over this ... */
#define KW_REFRESH_EARLY_MS 60000      /* ... refresh at least this long before expiry */
#define KW_REFRESH_BACKOFF_MIN_MS 5000 /* first retry after a failure */
#define KW_REFRESH_BACKOFF_MAX_MS 300000
#define KW_REFRESH_BACKOFF_JITTER 0.10 /* ± this fraction of the delay */

/* The moment (ms) to refresh a token obtained at obtained_ms that lives life_ms. */
int64_t kw_refresh_due_at(int64_t obtained_ms, int64_t life_ms, double u);

/* The delay (ms) before the next attempt after `failures` (>= 1) failures in a row:
 * 5 s doubling, capped at 5 min, ± 10 %. */
int64_t kw_refresh_backoff_ms(int64_t failures, double u);

#endif
