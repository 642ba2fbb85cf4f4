/* textbuf.h - a growing text buffer for answers built piece by piece (/metrics): printf-style
 * appends; an allocation failure is remembered (oom) and makes every later append a no-op,
 * so the builder checks once at the end. */
#ifndef KW_TEXTBUF_H
#define KW_TEXTBUF_H

#include <stddef.h>

typedef struct kw_textbuf {
    char *p; /* NUL-terminated once anything was put; the owner frees it */
    size_t len, cap;
    int oom;
} kw_textbuf_t;

void kw_textbuf_put(kw_textbuf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
