/* fuzz_key.c - libFuzzer target for key text (src/core/key.c).
 *
 * Feeds raw bytes to kw_key_check and asserts its invariants; also builds a key from the
 * first 32 bytes and checks that it round-trips. Must not depend on anything outside
 * src/core (scripts/fuzz.sh links key.c, util.c and err.c by default). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/key.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    char hint[KW_HINT_MAX], key[KW_KEY_MAX + 1];
    uint8_t d1[KW_DIGEST_LEN], d2[KW_DIGEST_LEN];
    size_t plen = 0;

    if (kw_key_check(text, size, &plen) == 0) {
        /* A well-formed key has a valid prefix at the length it reports... */
        CHECK(plen >= 1 && plen <= KW_PREFIX_MAX);
        CHECK(size == plen + 1 + KW_SECRET_CHARS + KW_CHECK_CHARS);
        CHECK(kw_key_prefix_valid(text, plen));
        CHECK(text[plen] == '_');
        /* ...a hint that fits and starts with the prefix... */
        kw_key_hint(text, size, hint);
        CHECK(strlen(hint) == plen + 1 + 4 + 3 + 4);
        CHECK(memcmp(hint, text, plen + 1) == 0);
        /* ...and a stable digest. */
        CHECK(kw_key_digest(text, size, d1) == 0);
        CHECK(kw_key_digest(text, size, d2) == 0);
        CHECK(kw_ct_equal(d1, d2, sizeof(d1)));
    } else {
        CHECK(kw_key_check(text, size, NULL) == KW_EMALFORMED);
    }

    /* Any 32 bytes make a key that checks; flipping its last check char breaks it. */
    if (size >= 32) {
        CHECK(kw_key_from_bytes("kw", data, key) == 0);
        size_t n = strlen(key);
        CHECK(n == 2 + 1 + KW_SECRET_CHARS + KW_CHECK_CHARS);
        CHECK(kw_key_check(key, n, &plen) == 0 && plen == 2);
        key[n - 1] = key[n - 1] == '0' ? '1' : '0';
        CHECK(kw_key_check(key, n, NULL) == KW_EMALFORMED);
        kw_wipe(key, sizeof(key));
    }
    return 0;
}
