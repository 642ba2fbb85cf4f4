/* h_openapi.c - GET /v1/openapi.json: the OpenAPI 3.1 document of every route, embedded at
 * build time (docs/openapi.yaml -> $(B)/gen/openapi.json by scripts/openapi-json.py; the
 * Makefile names the file in KW_OPENAPI_JSON). Builds that do not embed it (the fuzz
 * harnesses, which never serve it) answer 404 naming why. */
#include <stdlib.h>
#include <string.h>

#include "api.h"

#ifdef KW_OPENAPI_JSON
__asm__(".section .rodata\n"
        ".balign 16\n"
        "kw_openapi_doc:\n"
        ".incbin \"" KW_OPENAPI_JSON "\"\n"
        "kw_openapi_doc_end:\n"
        ".byte 0\n"
        ".previous\n");
extern const char kw_openapi_doc[] __asm__("kw_openapi_doc");
extern const char kw_openapi_doc_end[] __asm__("kw_openapi_doc_end");
#endif

void kw_h_openapi(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs)
{
#ifdef KW_OPENAPI_JSON
    size_t n = (size_t)(kw_openapi_doc_end - kw_openapi_doc);
    char *body = malloc(n + 1);
    if (body == NULL) {
        kw_resp_error(rs, KW_ENOMEM, NULL, "out of memory");
        return;
    }
    memcpy(body, kw_openapi_doc, n);
    body[n] = '\0';
    free(rs->body);
    rs->status = 200;
    rs->ctype = "application/json";
    rs->body = body;
    rs->len = n;
#else
    kw_resp_error(rs, KW_ENOTFOUND, NULL, "this build does not embed the OpenAPI document");
#endif
}
