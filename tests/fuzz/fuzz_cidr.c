/* fuzz_cidr.c - libFuzzer target for kw_ip_parse / kw_cidr_parse / kw_cidr_format.
 *
 * Invariants: a parsed block has no host bits (its network address matches it, and
 * re-parsing its canonical text gives the same block); a parsed address matches its own
 * /128. Must not allocate or resolve names. */
// fuzz-sources: src/core/cidr.c
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/cidr.h"
#include "core/err.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    char out[KW_CIDR_STR_MAX];
    kw_cidr_t c, c2;
    kw_ip_t ip;

    if (kw_cidr_parse(s, size, &c) == 0) {
        CHECK(c.bits <= 128);
        CHECK(!c.v4 || c.bits >= 96);
        CHECK(kw_cidr_match(&c, &c.net));
        kw_cidr_format(&c, out);
        CHECK(strlen(out) < KW_CIDR_STR_MAX);
        CHECK(kw_cidr_parse(out, strlen(out), &c2) == 0);
        CHECK(memcmp(&c, &c2, sizeof(c)) == 0);
        /* the block's last address is in it; the one after it (if any) is not */
        ip = c.net;
        for (unsigned b = c.bits; b < 128; b++)
            ip.a[b / 8] |= (uint8_t)(0x80 >> (b % 8));
        CHECK(kw_cidr_match(&c, &ip));
    }

    if (kw_ip_parse(s, size, &ip) == 0) {
        kw_cidr_t host = {.net = ip, .bits = 128, .v4 = 0};
        CHECK(kw_cidr_match(&host, &ip));
        CHECK(kw_cidr_parse(s, size, &c) == 0 && c.bits == 128); /* bare address = /128 */
    }
    return 0;
}
