/* fuzz_tmpl.c - libFuzzer target for the mail template language (kw_tmpl_parse/render).
 *
 * Invariants: parse either fails with a "FILE:LINE:" message or yields a template that
 * renders in every escaping mode without overrun; a HEADER rendering of values holds no CR
 * or LF that the template text did not; an HTML rendering of a value holds no '<'. */
// fuzz-sources: src/core/tmpl.c
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/tmpl.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

static const char *value(void *ud, const char *name)
{
    (void)ud;
    /* hostile values: line breaks, markup, controls; empty for names starting with 'e' */
    return name[0] == 'e' ? "" : "a\r\nBcc: x@y <b>&\x01\n.\n";
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kw_tmpl_t *t = NULL;
    kw_err_t err = {0};
    int rc = kw_tmpl_parse((const char *)data, size, "f", 1, NULL, NULL, &t, &err);
    if (rc != 0) {
        CHECK(t == NULL);
        CHECK(strncmp(err.msg, "f:", 2) == 0 || strstr(err.msg, "out of memory"));
        return 0;
    }
    int has_nl = memchr(data, '\n', size) || memchr(data, '\r', size);
    int has_lt = memchr(data, '<', size) != NULL;
    for (int esc = KW_TMPL_TEXT; esc <= KW_TMPL_HTML; esc++) {
        char *out = NULL;
        size_t n = 0;
        if (kw_tmpl_render(t, (kw_tmpl_esc_t)esc, value, NULL, &out, &n, &err) == 0) {
            CHECK(strlen(out) == n);
            if (esc == KW_TMPL_HEADER && !has_nl)
                CHECK(strchr(out, '\n') == NULL && strchr(out, '\r') == NULL);
            if (esc == KW_TMPL_HTML && !has_lt)
                CHECK(strchr(out, '<') == NULL);
            if (esc == KW_TMPL_TEXT)
                CHECK(strchr(out, '\x01') == NULL || memchr(data, '\x01', size));
            free(out);
        }
    }
    kw_tmpl_free(t);
    return 0;
}
