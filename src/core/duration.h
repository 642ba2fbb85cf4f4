/* duration.h - durations as written in the API and config: 45s, 90m, 12h, 30d (also w).
 * Compound forms like "1d12h" are accepted. Nothing here allocates. */
#ifndef KW_DURATION_H
#define KW_DURATION_H

#include <stddef.h>
#include <stdint.h>

#define KW_DURATION_MAX_SECS (100LL * 365 * 86400) /* 100 years: larger is refused */
#define KW_DURATION_STR_MAX 32

/* Parse s[0..len) into seconds (> 0). Returns 0 or KW_EINVAL (empty, zero, unknown unit,
 * overflow, above KW_DURATION_MAX_SECS, trailing garbage). "never" is NOT a duration:
 * callers that allow it check for it first. */
int kw_duration_parse(const char *s, size_t len, int64_t *secs);

/* Format secs (> 0) in the largest single unit that divides it exactly (d, h, m, s),
 * e.g. 2592000 -> "30d", 90 -> "90s"... Writes NUL-terminated text into out. */
void kw_duration_format(int64_t secs, char out[KW_DURATION_STR_MAX]);

#endif
