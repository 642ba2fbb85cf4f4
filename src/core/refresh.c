/* refresh.c - the refresher's timing rules (refresh.h): 80 % of the lifetime with jitter and
 * a cap for long lifetimes, and exponential backoff after failures. Pure arithmetic. */
#include "refresh.h"

int64_t kw_refresh_due_at(int64_t obtained_ms, int64_t life_ms, double u)
{
    double f = KW_REFRESH_FRACTION + KW_REFRESH_JITTER * (2.0 * u - 1.0);
    int64_t at = obtained_ms + (int64_t)((double)life_ms * f);
    if (life_ms > KW_REFRESH_LONG_MS && at > obtained_ms + life_ms - KW_REFRESH_EARLY_MS)
        at = obtained_ms + life_ms - KW_REFRESH_EARLY_MS;
    return at;
}

int64_t kw_refresh_backoff_ms(int64_t failures, double u)
{
    int64_t d = KW_REFRESH_BACKOFF_MIN_MS;
    for (int64_t i = 1; i < failures && d < KW_REFRESH_BACKOFF_MAX_MS; i++)
        d *= 2;
    if (d > KW_REFRESH_BACKOFF_MAX_MS)
        d = KW_REFRESH_BACKOFF_MAX_MS;
    return d + (int64_t)((double)d * KW_REFRESH_BACKOFF_JITTER * (2.0 * u - 1.0));
}
