// fuzz-sources: src/core/sink.c
/* fuzz_sink.c - libFuzzer target for the --sink grammar (core/sink.c). Besides memory
 * errors it checks the contract: on success the channel's target and secret are
 * terminated inside their fields, its name parses back to the same type and target, and a
 * webhook's secret decodes to 16..64 bytes; on failure the reason is one terminated line. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/sink.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kw_chan_t c, back;
    char why[128], name[KW_CHAN_NAME_MAX];
    memset(why, 'x', sizeof(why));
    if (kw_sink_parse((const char *)data, size, &c, why, sizeof(why)) != 0) {
        if (memchr(why, '\0', sizeof(why)) == NULL || strchr(why, '\n'))
            abort();
        return 0;
    }
    if (memchr(c.target, '\0', sizeof(c.target)) == NULL ||
        memchr(c.secret, '\0', sizeof(c.secret)) == NULL)
        abort();
    kw_chan_name(&c, name);
    if (kw_chan_from_name(name, &back) != 0 || back.type != c.type ||
        strcmp(back.target, c.target) != 0)
        abort();
    if (c.type == KW_CHAN_WEBHOOK) {
        uint8_t key[KW_WHSEC_KEY_MAX];
        size_t n = 0;
        if (!kw_sink_secret_decode(c.secret, strlen(c.secret), key, &n) || n < 16 || n > 64)
            abort();
        if (strstr(name, "whsec_") && strstr(c.target, "whsec_") == NULL)
            abort(); /* the secret must never be part of the name */
    }
    return 0;
}
