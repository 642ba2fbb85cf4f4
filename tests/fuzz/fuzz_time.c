/* fuzz_time.c - libFuzzer target for kw_time_parse / kw_time_format(_http) / kw_id_valid.
 *
 * Invariants: a parsed time formats to 20 chars that parse back to the same value; any
 * int64 formats in bounds (clamped). Links util.c only (part of the default set). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/util.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char out[KW_TIME_STR_MAX], http[KW_TIME_STR_MAX], z[64];
    int64_t t = 0, t2 = 0;

    if (kw_time_parse((const char *)data, size, &t) == 0) {
        kw_time_format(t, out);
        CHECK(strlen(out) == 20);
        CHECK(kw_time_parse(out, strlen(out), &t2) == 0);
        CHECK(t == t2);
        kw_time_format_http(t, http);
        CHECK(strlen(http) == 29);
    }

    if (size >= 8) {
        int64_t x;
        memcpy(&x, data, 8);
        kw_time_format(x, out);
        CHECK(strlen(out) == 20);
        CHECK(kw_time_parse(out, strlen(out), &t2) == 0); /* clamped, still valid */
        kw_time_format_http(x, http);
        CHECK(strlen(http) == 29);
    }

    /* kw_id_valid takes NUL-terminated text: try the input up to its first NUL. */
    size_t n = size < sizeof(z) - 1 ? size : sizeof(z) - 1;
    memcpy(z, data, n);
    z[n] = '\0';
    if (kw_id_valid("key", z))
        CHECK(strlen(z) == 4 + 22 && memcmp(z, "key_", 4) == 0);
    return 0;
}
