/* fuzz_h1.c - libFuzzer target for kw_h1_parse, the gateway fast path's recogniser, in
 * differential mode against kw_h1_head / kw_h1_chunked, the strict framing every other
 * request passes (the two parsers of h1.c).
 *
 * Differential: a request the fast path answers is one the strict framing accepts, with
 * the same head length, body length and close flag; a request the strict framing refuses
 * is never answered by the fast path. The chunked decoder gives the same result and the
 * same data whether the input comes in one piece or in two. kw_h1_head never reads past
 * the input and a decided head's length lies inside it.
 *
 * Invariants: offsets and lengths stay inside the input; a complete request's fields and
 * body lie inside its own length; the same bytes cut to that length parse the same way;
 * every strict prefix of a complete request is INCOMPLETE (never OTHER, never complete),
 * so the gate never hands over, or answers, a request before it has all of it. */
// fuzz-sources: src/server/h1.c
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/h1.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct sink {
    char buf[4096];
    size_t n;
} sink_t;

static void take(void *ud, const char *p, size_t n)
{
    sink_t *s = ud;
    CHECK(n > 0);
    for (size_t i = 0; i < n && s->n < sizeof(s->buf); i++)
        s->buf[s->n++] = p[i];
}

/* Decode in one piece and in two (split at `cut`): same outcome, same bytes. */
static void chunked_split(const char *buf, size_t size, size_t cut)
{
    kw_h1_chunked_t a = {0}, b = {0};
    sink_t *sa = calloc(1, sizeof(*sa)), *sb = calloc(1, sizeof(*sb));
    size_t ua = 0, ub1 = 0, ub2 = 0;
    int ra = kw_h1_chunked(&a, buf, size, 100000, &ua, take, sa);
    CHECK(ua <= size);
    int rb = kw_h1_chunked(&b, buf, cut, 100000, &ub1, take, sb);
    CHECK(ub1 <= cut);
    if (rb == 0) {
        /* the caller keeps the unconsumed bytes and appends the rest */
        rb = kw_h1_chunked(&b, buf + ub1, size - ub1, 100000, &ub2, take, sb);
        ub1 += ub2;
    }
    CHECK(ra == rb);
    if (ra == 1)
        CHECK(ua == ub1);
    if (ra >= 0)
        CHECK(sa->n == sb->n && memcmp(sa->buf, sb->buf, sa->n) == 0);
    free(sa);
    free(sb);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    kw_h1_req_t r, again;
    size_t max_body = 64;
    kw_h1_kind_t k = kw_h1_parse(buf, size, max_body, &r);
    CHECK(k == r.kind);

    kw_h1_head_t h;
    int decided = kw_h1_head(buf, size, max_body, &h);
    CHECK(decided == 0 || decided == 1);
    if (decided && h.err == KW_H1_OK) {
        CHECK(h.len <= size && h.len >= 4 && memcmp(buf + h.len - 4, "\r\n\r\n", 4) == 0);
        CHECK(h.line_len + 2 <= h.len);
        CHECK(h.body != KW_H1_BODY_LENGTH || (h.length > 0 && h.length <= max_body));
    }
    if (decided && h.err != KW_H1_OK) {
        int st = kw_h1_err_status(h.err);
        CHECK(st == 400 || st == 413 || st == 417 || st == 431 || st == 501 || st == 505);
        CHECK(kw_h1_err_text(h.err)[0] != '\0');
        CHECK(h.close);
        CHECK(k != KW_H1_AUTH && k != KW_H1_VERIFY); /* never answered by the fast path */
    }
    if (k == KW_H1_AUTH || k == KW_H1_VERIFY) { /* the fast path agrees with the framing */
        CHECK(decided == 1 && h.err == KW_H1_OK);
        CHECK(h.len == r.body);
        CHECK(h.body != KW_H1_BODY_CHUNKED && !h.http10);
        CHECK((h.body == KW_H1_BODY_LENGTH ? h.length : 0) == r.body_len);
        CHECK(h.close == r.close);
    }
    chunked_split(buf, size, size ? (size_t)data[0] % size : 0);

    CHECK(r.nf <= KW_H1_MAX_FIELDS);
    if (k != KW_H1_AUTH && k != KW_H1_VERIFY)
        return 0;
    CHECK(r.len <= size);
    CHECK(r.body + r.body_len == r.len);
    CHECK(r.body_len <= max_body);
    CHECK(k != KW_H1_AUTH || r.body_len == 0);
    for (size_t i = 0; i < r.nf; i++) {
        CHECK(r.f[i].name_len > 0 && r.f[i].name + r.f[i].name_len < r.body);
        CHECK(r.f[i].value + r.f[i].value_len < r.body);
        CHECK(buf[r.f[i].name + r.f[i].name_len] == ':');
        char end = buf[r.f[i].value + r.f[i].value_len];
        CHECK(end == '\r' || end == ' ' || end == '\t');
    }
    CHECK(kw_h1_parse(buf, r.len, max_body, &again) == k && again.len == r.len);
    for (size_t n = 0; n < r.len; n++)
        CHECK(kw_h1_parse(buf, n, max_body, &again) == KW_H1_INCOMPLETE);
    return 0;
}
