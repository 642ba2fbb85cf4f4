/* duration.h - durations as written in the API and config: 45s, 90m, 12h, 30d (also w).
 * Compound forms like "1d12h" are accepted. Nothing here allocates. */
#ifndef KW_DURATION_H
#define KW_DURATION_H

#include <stddef.h>
#include <stdint.h>

#define KW_DURATION_MAX_SECS (100LL * 365 * 86400) /* 100 years: larger is refused */
#define KW_DURATION_STR_MAX 32

/* Parse s[0..len) into seconds (> 0). Units w, d, h, m, s (lower case); compound groups
 * must go from larger to smaller units ("1d12h", not "12h1d" or "1h1h"). Returns 0 or
 * KW_EINVAL (empty, zero, unknown unit, sign, space, overflow, above KW_DURATION_MAX_SECS,
 * trailing garbage). "never" is NOT a duration: callers that allow it check for it first. */
int kw_duration_parse(const char *s, size_t len, int64_t *secs);

/* Format secs (> 0) in the largest single unit that divides it exactly (d, h, m, s),
 * e.g. 2592000 -> "30d", 90 -> "90s"... Writes NUL-terminated text into out. Weeks are
 * never written. secs <= 0 gives "0s" (which parse refuses). */
void kw_duration_format(int64_t secs, char out[KW_DURATION_STR_MAX]);

#endif
