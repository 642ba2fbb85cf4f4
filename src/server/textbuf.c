/* textbuf.c - growing buffers (textbuf.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "textbuf.h"

#define FIRST_CAP 8192

void kw_textbuf_put(kw_textbuf_t *b, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        if (b->oom)
            return;
        va_start(ap, fmt);
        int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = 1;
            return;
        }
        if (b->p && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        if (kw_grow(&b->p, &b->cap, b->len + (size_t)n + 1, FIRST_CAP) != 0) {
            b->oom = 1;
            return;
        }
    }
}

int kw_wipebuf_append(char **p, size_t *len, size_t *cap, const void *data, size_t n,
                      size_t first_cap)
{
    if (*len + n + 1 > *cap) {
        size_t ncap = *cap ? *cap : first_cap;
        while (ncap < *len + n + 1)
            ncap *= 2;
        char *np = malloc(ncap);
        if (np == NULL)
            return -1;
        if (*p) {
            memcpy(np, *p, *len);
            explicit_bzero(*p, *cap);
            free(*p);
        }
        *p = np;
        *cap = ncap;
    }
    memcpy(*p + *len, data, n);
    *len += n;
    (*p)[*len] = '\0';
    return 0;
}
