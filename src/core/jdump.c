/* jdump.c - compact JSON serialisation of jansson values in two passes (measure, then
 * write into one exact allocation), byte for byte what json_dumps(j, JSON_COMPACT) gives:
 * keys in insertion order, '"', '\\' and control bytes escaped as jansson escapes them. */
#include "jdump.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* Bytes of the escape of c (1 = copied as is). */
static size_t esc_len(unsigned char c)
{
    if (c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t')
        return 2;
    return c < 0x20 ? 6 : 1;
}

/* Valid UTF-8 (jansson refuses to dump anything else). */
static int utf8_ok(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        size_t k;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            k = 1, cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            k = 2, cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            k = 3, cp = c & 0x07;
        } else {
            return 0;
        }
        if (i + k >= n)
            return 0;
        for (size_t m = 1; m <= k; m++) {
            if ((s[i + m] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + m] & 0x3f);
        }
        if ((k == 2 && cp < 0x800) || (k == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += k + 1;
    }
    return 1;
}

/* The writer: out == NULL measures only; sorted: object keys in byte order, as
 * JSON_SORT_KEYS orders them. */
typedef struct {
    char *out;
    size_t len;
    int sorted;
} jw_t;

static void put(jw_t *w, const char *s, size_t n)
{
    if (w->out)
        memcpy(w->out + w->len, s, n);
    w->len += n;
}

static int put_str(jw_t *w, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    if (w->out == NULL && !utf8_ok((const unsigned char *)s, n)) /* checked when measuring */
        return -1;
    put(w, "\"", 1);
    size_t run = 0; /* bytes copied as they are, pending */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        size_t el = esc_len(c);
        if (el == 1) {
            run++;
            continue;
        }
        put(w, s + i - run, run);
        run = 0;
        char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
        if (el == 2)
            e[1] = c == '"'    ? '"'
                   : c == '\\' ? '\\'
                   : c == '\b' ? 'b'
                   : c == '\f' ? 'f'
                   : c == '\n' ? 'n'
                   : c == '\r' ? 'r'
                               : 't';
        put(w, e, el);
    }
    put(w, s + n - run, run);
    put(w, "\"", 1);
    return 0;
}

static int dump(jw_t *w, const json_t *j);

typedef struct {
    const char *key;
    size_t len;
    json_t *value;
} member_t;

/* jansson's order for JSON_SORT_KEYS: bytes, then the shorter key first */
static int member_cmp(const void *a, const void *b)
{
    const member_t *x = a, *y = b;
    int r = memcmp(x->key, y->key, x->len < y->len ? x->len : y->len);
    return r ? r : (x->len > y->len) - (x->len < y->len);
}

static int dump_sorted(jw_t *w, const json_t *j)
{
    member_t small[16], *m = small;
    size_t n = json_object_size(j), i = 0;
    if (n > sizeof(small) / sizeof(small[0]) && (m = malloc(n * sizeof(*m))) == NULL)
        return -1;
    for (void *it = json_object_iter((json_t *)j); it && i < n;
         it = json_object_iter_next((json_t *)j, it), i++)
        m[i] = (member_t){json_object_iter_key(it), json_object_iter_key_len(it),
                          json_object_iter_value(it)};
    qsort(m, i, sizeof(*m), member_cmp);
    int rc = 0;
    put(w, "{", 1);
    for (size_t k = 0; rc == 0 && k < i; k++) {
        if (k)
            put(w, ",", 1);
        if ((rc = put_str(w, m[k].key, m[k].len)) == 0) {
            put(w, ":", 1);
            rc = dump(w, m[k].value);
        }
    }
    put(w, "}", 1);
    if (m != small)
        free(m);
    return rc;
}

static int dump(jw_t *w, const json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        if (w->sorted)
            return dump_sorted(w, j);
        put(w, "{", 1);
        int first = 1;
        for (void *it = json_object_iter((json_t *)j); it;
             it = json_object_iter_next((json_t *)j, it)) {
            if (!first)
                put(w, ",", 1);
            first = 0;
            if (put_str(w, json_object_iter_key(it), json_object_iter_key_len(it)) != 0)
                return -1;
            put(w, ":", 1);
            if (dump(w, json_object_iter_value(it)) != 0)
                return -1;
        }
        put(w, "}", 1);
        return 0;
    }
    case JSON_ARRAY: {
        put(w, "[", 1);
        for (size_t i = 0, n = json_array_size(j); i < n; i++) {
            if (i)
                put(w, ",", 1);
            if (dump(w, json_array_get(j, i)) != 0)
                return -1;
        }
        put(w, "]", 1);
        return 0;
    }
    case JSON_STRING:
        return put_str(w, json_string_value(j), json_string_length(j));
    case JSON_INTEGER: {
        char t[32];
        int n = snprintf(t, sizeof(t), "%" JSON_INTEGER_FORMAT, json_integer_value(j));
        put(w, t, (size_t)n);
        return 0;
    }
    case JSON_REAL: { /* rare here: jansson's own formatting, to stay byte-identical */
        char *t = json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT);
        if (t == NULL)
            return -1;
        put(w, t, strlen(t));
        free(t);
        return 0;
    }
    case JSON_TRUE:
        put(w, "true", 4);
        return 0;
    case JSON_FALSE:
        put(w, "false", 5);
        return 0;
    case JSON_NULL:
        put(w, "null", 4);
        return 0;
    }
    return -1;
}

static char *dump_text(const json_t *j, int sorted)
{
    if (j == NULL || (!json_is_object(j) && !json_is_array(j)))
        return NULL;
    jw_t w = {NULL, 0, sorted};
    if (dump(&w, j) != 0)
        return NULL;
    w.out = malloc(w.len + 1);
    if (w.out == NULL)
        return NULL;
    size_t need = w.len;
    w.len = 0;
    if (dump(&w, j) != 0 || w.len != need) { /* changed under us: not expected */
        free(w.out);
        return NULL;
    }
    w.out[w.len] = '\0';
    return w.out;
}

char *kw_json_dump(const json_t *j)
{
    return dump_text(j, 0);
}

char *kw_json_dump_sorted(const json_t *j)
{
    return dump_text(j, 1);
}

json_t *kw_json_time(int64_t t)
{
    char ts[KW_TIME_STR_MAX];
    if (t == 0)
        return json_null();
    kw_time_format(t, ts);
    return json_string(ts);
}
