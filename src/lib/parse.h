/* parse.h - libkeyward's parsers for keyward's answers: one HTTP/1.1 response (status,
 * headers, Content-Length body) and the flat JSON object of POST /v1/keys/verify.
 * Internal (kwl_ prefix); pure functions over bytes, fuzzed by tests/fuzz/fuzz_client.c. */
#ifndef KWL_PARSE_H
#define KWL_PARSE_H

#include <stddef.h>

#include "keyward.h"

#define KWL_MAX_RESPONSE 16384

typedef struct kwl_http {
    int status;
    int close;         /* the server will close the connection after this answer */
    size_t header_len; /* bytes up to and including the blank line */
    size_t body_len;
    const char *body; /* points into the buffer */
} kwl_http_t;

/* Parse one response at buf[0..len). Returns 1 if more bytes are needed, 0 when complete
 * (out filled; header_len + body_len bytes make the response), KEYWARD_EPROTO if it is
 * not a response keyward would send. When res is not NULL, the Keyward-* and Sunset
 * headers are copied into it (truncated to fit). */
int kwl_parse_response(const char *buf, size_t len, kwl_http_t *out, keyward_result_t *res);

/* Fill res from the verify answer body[0..len): a JSON object whose members valid, code,
 * message, credential_id, key_id, scopes (array of strings, joined with spaces),
 * expires_at and warnings (non-empty = warning) are read; others are skipped. Returns 0
 * or KEYWARD_EPROTO. */
int kwl_parse_verify_json(const char *body, size_t len, keyward_result_t *res);

#endif
