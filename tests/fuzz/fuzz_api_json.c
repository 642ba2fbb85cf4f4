// fuzz-sources: src/app/*.c src/core/*.c src/store/*.c src/server/[a-r]*.c
// fuzz-sources: src/server/scheduler.c src/server/secrets.c src/server/textbuf.c
// fuzz-sources: src/server/urlguard.c src/server/watched_alerts.c build/gen/mail_builtin.c
// fuzz-libs: libmicrohttpd jansson sqlite3 libcurl
/* fuzz_api_json.c - libFuzzer target for JSON request bodies, per endpoint: the first byte
 * of an input picks the endpoint, the rest is its body, sent as application/json with the
 * admin key to kw_api_handle against a real server state (inproc.h). Checks what inproc.h
 * checks: bad bodies are 4xx problem+json, never 5xx, and no secret in an answer.
 * Placeholders @A @V @C @K inside a body are replaced (see inproc.h). */
#include <stdint.h>
#include <string.h>

#include "inproc.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    inproc_init();
    return 0;
}

/* %C / %K in a path become the pool's credential / key id. */
static const struct {
    const char *method, *path;
} endpoints[] = {
    {"POST", "/v1/credentials"},
    {"PATCH", "/v1/credentials/%C"},
    {"POST", "/v1/credentials/%C/keys"},
    {"POST", "/v1/keys/%K/roll"},
    {"POST", "/v1/keys/%K/invalidate"},
    {"POST", "/v1/keys/%K/renew"},
    {"POST", "/v1/keys/verify"},
    {"POST", "/v1/policies"},
    {"PATCH", "/v1/policies/fz"},
    {"PATCH", "/v1/policies/default"},
    {"DELETE", "/v1/credentials/%C"},
    {"POST", "/v1/renewals/ren_0000000000000000000000/approve"},
};

#define NENDPOINTS (sizeof(endpoints) / sizeof(endpoints[0]))

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[128];
    size_t blen;
    if (size < 1)
        return 0;
    unsigned which = data[0] % NENDPOINTS;
    const char *p = endpoints[which].path, *mark = strchr(p, '%');
    if (mark)
        snprintf(path, sizeof(path), "%.*s%s%s", (int)(mark - p), p,
                 mark[1] == 'C' ? g_cred : g_kid, mark + 2);
    else
        snprintf(path, sizeof(path), "%s", p);
    char *body = inproc_subst(data + 1, size - 1, &blen);
    char auth[KW_KEY_MAX + 16];
    snprintf(auth, sizeof(auth), "Bearer %s", g_admin);
    const char *hdrs[] = {"Content-Type", "application/json", "Authorization", auth, NULL};
    const char *query[] = {NULL};
    inproc_request(endpoints[which].method, path, hdrs, query, body, blen);
    free(body);
    return 0;
}
