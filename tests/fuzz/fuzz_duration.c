/* fuzz_duration.c - libFuzzer target for kw_duration_parse / kw_duration_format.
 *
 * Invariants: a parsed duration is in (0, KW_DURATION_MAX_SECS] and formats back to text
 * that parses to the same value; parse(format(x)) == x for any x in range. */
// fuzz-sources: src/core/duration.c
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/duration.h"
#include "core/err.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

static void round_trip(int64_t x)
{
    char out[KW_DURATION_STR_MAX];
    int64_t y = 0;

    kw_duration_format(x, out);
    CHECK(strlen(out) < KW_DURATION_STR_MAX);
    CHECK(kw_duration_parse(out, strlen(out), &y) == 0);
    CHECK(y == x);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int64_t secs = 0;

    if (kw_duration_parse((const char *)data, size, &secs) == 0) {
        CHECK(secs > 0 && secs <= KW_DURATION_MAX_SECS);
        round_trip(secs);
    } else {
        CHECK(secs == 0); /* untouched on failure */
    }

    /* The first 8 bytes as a number, folded into range. */
    if (size >= 8) {
        uint64_t u;
        memcpy(&u, data, 8);
        round_trip(1 + (int64_t)(u % (uint64_t)KW_DURATION_MAX_SECS));
    }
    return 0;
}
