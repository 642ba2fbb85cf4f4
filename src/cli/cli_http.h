/* cli_http.h - the server, seen from the client: find it and the admin token, send one
 * JSON request and get the parsed answer, build escaped request paths. */
#ifndef KW_CLI_HTTP_H
#define KW_CLI_HTTP_H

#include <jansson.h>

#include "cli/cli_cmd.h"

/* Read KEYWARD_ADDR and, when need_token, the token (KEYWARD_TOKEN, else the file named by
 * KEYWARD_TOKEN_FILE, else ./keyward.admin-key if present and KEYWARD_TOKEN_FILE is unset:
 * KEYWARD_TOKEN_FILE= set empty means no token file at all). Returns 0 or KW_CLI_EUSAGE
 * after printing (unreadable token file, bad address). */
int kw_cli_http_init(kw_cli_t *cli, int need_token);
/* Trim whitespace around a key in place; -1 if it is then empty or holds a control
 * character (it goes into a header). */
int kw_cli_token_clean(char *s);
void kw_cli_http_cleanup(kw_cli_t *cli);

/* Send method to addr+path with body (NULL: none; POST without a body sends "{}").
 * On a 2xx answer returns 0 and sets *out to the parsed body (owned by the caller, NULL
 * when empty); otherwise prints one line - the problem's detail and status, or which
 * address could not be reached - and returns cli->api_status (HTTP error) or
 * KW_CLI_EUSAGE (transport). Request and response buffers are wiped before they are freed. */
int kw_cli_call(kw_cli_t *cli, const char *method, const char *path, json_t *body, json_t **out);

/* Build a request path from fmt where every %s argument is percent-escaped (only %s is
 * supported). Caller frees. */
char *kw_cli_path(const char *fmt, ...);
/* Append "name=value" (value escaped) to the query of *path, which is reallocated. */
void kw_cli_query_add(char **path, const char *name, const char *value);

#endif
