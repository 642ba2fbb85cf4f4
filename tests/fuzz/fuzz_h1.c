/* fuzz_h1.c - libFuzzer target for kw_h1_parse, the gateway fast path's recogniser.
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    kw_h1_req_t r, again;
    size_t max_body = 64;
    kw_h1_kind_t k = kw_h1_parse(buf, size, max_body, &r);
    CHECK(k == r.kind);
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
