/* textbuf.h - growing buffers: a text buffer for answers built piece by piece (/metrics),
 * and the append that grows a buffer which may hold a secret (request bodies, relayed
 * requests, token answers) without leaving a copy in freed memory. */
#ifndef KW_TEXTBUF_H
#define KW_TEXTBUF_H

#include <stddef.h>

/* printf-style appends; an allocation failure is remembered (oom) and makes every later
 * append a no-op, so the builder checks once at the end. */
typedef struct kw_textbuf {
    char *p; /* NUL-terminated once anything was put; the owner frees it */
    size_t len, cap;
    int oom;
} kw_textbuf_t;

void kw_textbuf_put(kw_textbuf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Append n bytes of data to the buffer *p holding *len bytes in *cap, and keep a NUL after
 * them. When it must grow (to first_cap, then doubling) the bytes move to a new block and
 * the old one is wiped before it is freed. 0, or -1 when out of memory (nothing changed). */
int kw_wipebuf_append(char **p, size_t *len, size_t *cap, const void *data, size_t n,
                      size_t first_cap);

#endif
