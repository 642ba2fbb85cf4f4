/* duration.c - durations as written in the API and config ("45s", "90m", "1d12h").
 *
 * Strict by design: a duration is one or more <digits><unit> groups with units in
 * strictly decreasing order (w, d, h, m, s). Must not allocate, read past len, or
 * accept anything that could be read two ways (signs, spaces, upper case, repeats). */
#include "duration.h"

#include <stdio.h>

#include "err.h"

/* Seconds per unit, and its rank: groups must go from larger to smaller units. */
static int kw__unit(char c, int64_t *mult, int *rank)
{
    switch (c) {
    case 'w':
        *mult = 7 * 86400;
        *rank = 5;
        return 0;
    case 'd':
        *mult = 86400;
        *rank = 4;
        return 0;
    case 'h':
        *mult = 3600;
        *rank = 3;
        return 0;
    case 'm':
        *mult = 60;
        *rank = 2;
        return 0;
    case 's':
        *mult = 1;
        *rank = 1;
        return 0;
    }
    return -1;
}

int kw_duration_parse(const char *s, size_t len, int64_t *secs)
{
    int64_t total = 0;
    int last_rank = 6;
    size_t i = 0;

    if (s == NULL || len == 0)
        return KW_EINVAL;
    while (i < len) {
        int64_t n = 0, mult;
        size_t start = i;
        int rank;

        while (i < len && s[i] >= '0' && s[i] <= '9') {
            n = n * 10 + (s[i] - '0');
            /* Bounding n here keeps it far from overflow however many digits follow. */
            if (n > KW_DURATION_MAX_SECS)
                return KW_EINVAL;
            i++;
        }
        if (i == start || i == len)
            return KW_EINVAL; /* no number, or a number without a unit */
        if (kw__unit(s[i], &mult, &rank) != 0 || rank >= last_rank)
            return KW_EINVAL;
        last_rank = rank;
        i++;
        if (n > (KW_DURATION_MAX_SECS - total) / mult)
            return KW_EINVAL;
        total += n * mult;
    }
    if (total <= 0)
        return KW_EINVAL;
    *secs = total;
    return 0;
}

void kw_duration_format(int64_t secs, char out[KW_DURATION_STR_MAX])
{
    /* Weeks are accepted on input but never written: "14d" reads better than "2w". */
    if (secs <= 0)
        snprintf(out, KW_DURATION_STR_MAX, "0s"); /* outside the contract; not parseable */
    else if (secs % 86400 == 0)
        snprintf(out, KW_DURATION_STR_MAX, "%lldd", (long long)(secs / 86400));
    else if (secs % 3600 == 0)
        snprintf(out, KW_DURATION_STR_MAX, "%lldh", (long long)(secs / 3600));
    else if (secs % 60 == 0)
        snprintf(out, KW_DURATION_STR_MAX, "%lldm", (long long)(secs / 60));
    else
        snprintf(out, KW_DURATION_STR_MAX, "%llds", (long long)secs);
}
