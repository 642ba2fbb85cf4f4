/* store_codec.c - pure column codecs shared by the store backends (store_codec.h). */
#include "store_codec.h"

#include <stdio.h>
#include <stdlib.h>

void kw_thresholds_format(const kw_policy_t *p, char *buf, size_t n)
{
    size_t off = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < p->nthresholds && i < KW_MAX_THRESHOLDS && off < n; i++)
        off += (size_t)snprintf(buf + off, n - off, "%s%lld", i ? "," : "",
                                (long long)p->thresholds[i]);
}

void kw_thresholds_parse(const char *s, kw_policy_t *p)
{
    p->nthresholds = 0;
    while (s && *s && p->nthresholds < KW_MAX_THRESHOLDS) {
        char *end;
        long long v = strtoll(s, &end, 10);
        if (end == s)
            break;
        p->thresholds[p->nthresholds++] = v;
        if (*end != ',')
            break;
        s = end + 1;
    }
}
