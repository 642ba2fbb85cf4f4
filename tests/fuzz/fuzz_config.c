// fuzz-sources: src/app/config.c src/core/duration.c src/core/err.c src/core/sink.c
/* fuzz_config.c - libFuzzer target for the --config file parser: arbitrary bytes into
 * kw_config_parse_text. Besides memory errors it checks the contract: on failure the config
 * is untouched and the error is one NUL-terminated line; on success every value is within
 * its bounds and every string is terminated inside its field. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "app/config.h"

static void check_str(const char *field, size_t size)
{
    if (memchr(field, '\0', size) == NULL)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kw_config_t c, before;
    kw_err_t err;

    kw_config_defaults(&c);
    before = c;
    kw_err_clear(&err);
    int rc = kw_config_parse_text(&c, (const char *)data, size, "fuzz.conf", &err);

    if (rc != 0) {
        if (rc != KW_EINVAL && rc != KW_ENOMEM)
            abort();
        if (memcmp(&c, &before, sizeof(c)) != 0)
            abort(); /* a failed parse must not leave half a config behind */
        check_str(err.msg, sizeof(err.msg));
        check_str(err.field, sizeof(err.field));
        if (err.msg[0] == '\0' || strchr(err.msg, '\n') != NULL)
            abort();
        return 0;
    }

    check_str(c.listen, sizeof(c.listen));
    check_str(c.store, sizeof(c.store));
    check_str(c.admin_key_file, sizeof(c.admin_key_file));
    check_str(c.config, sizeof(c.config));
    check_str(c.smtp, sizeof(c.smtp));
    check_str(c.mail_from, sizeof(c.mail_from));
    check_str(c.pepper_file, sizeof(c.pepper_file));
    check_str(c.trusted_ip_header, sizeof(c.trusted_ip_header));
    check_str(c.log_level, sizeof(c.log_level));
    if (c.config[0] != '\0' || c.listen[0] == '\0' || c.store[0] == '\0')
        abort(); /* "config" is refused inside a file; listen and store are never empty */
    if (c.scheduler_interval < 1 || c.scheduler_interval > 86400)
        abort();
    if (c.retention < 1 || c.idle_timeout < 1 || c.idle_timeout > 86400)
        abort();
    if (c.threads < 1 || c.threads > 64 || c.max_connections < 1 || c.max_connections > 1000000 ||
        c.max_body < 1024 || c.max_body > 64LL * 1024 * 1024)
        abort();
    if ((c.verify_requires_role | c.webhook_allow_private) & ~1)
        abort();
    if (strcmp(c.log_level, "debug") && strcmp(c.log_level, "info") &&
        strcmp(c.log_level, "warn") && strcmp(c.log_level, "error"))
        abort();
    return 0;
}
