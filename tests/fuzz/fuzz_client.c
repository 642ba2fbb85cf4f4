/* fuzz_client.c - libFuzzer target for libkeyward's answer parsers (src/lib/parse.c):
 * HTTP responses from the network and the verify JSON object.
 *
 * Invariants: never reads outside the input, always NUL-terminates every text field of
 * the result, and a complete response lies within the input. */
// fuzz-sources: src/lib/parse.c
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/parse.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

static void check_terminated(const keyward_result_t *r)
{
    CHECK(memchr(r->code, 0, sizeof(r->code)));
    CHECK(memchr(r->message, 0, sizeof(r->message)));
    CHECK(memchr(r->credential_id, 0, sizeof(r->credential_id)));
    CHECK(memchr(r->key_id, 0, sizeof(r->key_id)));
    CHECK(memchr(r->scopes, 0, sizeof(r->scopes)));
    CHECK(memchr(r->expires_at, 0, sizeof(r->expires_at)));
    CHECK(memchr(r->sunset, 0, sizeof(r->sunset)));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* a private copy so reads past the end are caught by ASan */
    char *buf = malloc(size ? size : 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    keyward_result_t r;
    kwl_http_t h;
    memset(&r, 0, sizeof(r));
    int rc = kwl_parse_response(buf, size, &h, &r);
    CHECK(rc == 0 || rc == 1 || rc == KEYWARD_EPROTO);
    if (rc == 0) {
        CHECK(h.header_len + h.body_len <= size);
        CHECK(h.status >= 0 && h.status <= 999);
        if (h.body_len)
            CHECK(h.body == buf + h.header_len);
    }
    check_terminated(&r);
    memset(&r, 0, sizeof(r));
    rc = kwl_parse_verify_json(buf, size, &r);
    CHECK(rc == 0 || rc == KEYWARD_EPROTO);
    check_terminated(&r);
    free(buf);
    return 0;
}
