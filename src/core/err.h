/* err.h - keyward's error codes and the error detail carried to the edge.
 *
 * Functions return 0 or a negative KW_E* code. Details (which field, why) travel in a
 * kw_err_t, rendered as problem+json by the server or as one line by the CLI.
 * An error message never contains a secret. */
#ifndef KW_ERR_H
#define KW_ERR_H

#include <stddef.h>

/* X(name, value, http status, title, problem type slug: urn:keyward:problem:SLUG) */
#define KW_ERRNO_MAP(X)                                                                            \
    X(OK, 0, 200, "OK", "internal-error")                                                          \
    X(EINVAL, -1, 400, "Invalid request", "invalid-request")                                       \
    X(ENOTFOUND, -2, 404, "Not found", "not-found")                                                \
    X(ECONFLICT, -3, 409, "Conflict", "conflict")                                                  \
    X(EUNAUTH, -4, 401, "Unauthorized", "unauthorized")                                            \
    X(EFORBIDDEN, -5, 403, "Forbidden", "forbidden")                                               \
    X(ETOOBIG, -6, 413, "Payload too large", "payload-too-large")                                  \
    X(ENOMEM, -7, 503, "Out of memory", "out-of-memory")                                           \
    X(ESTORE, -8, 503, "Store unavailable", "store-unavailable")                                   \
    X(EINTERNAL, -9, 500, "Internal error", "internal-error")                                      \
    X(EMETHOD, -10, 405, "Method not allowed", "method-not-allowed")                               \
    X(EMEDIA, -11, 415, "Unsupported media type", "unsupported-media-type")                        \
    X(ERATE, -12, 429, "Too many requests", "too-many-requests")                                   \
    X(EPOLICY, -13, 422, "Refused by policy", "policy-violation")                                  \
    X(EMALFORMED, -14, 400, "Malformed API key", "malformed-key")                                  \
    X(EIO, -15, 500, "I/O error", "internal-error")

enum {
#define KW__ENUM(name, val, http, title, slug) KW_##name = val,
    KW_ERRNO_MAP(KW__ENUM)
#undef KW__ENUM
};

#define KW_ERR_MSG_MAX 256
#define KW_ERR_FIELD_MAX 64

typedef struct kw_err {
    int code;                     /* KW_E* */
    char field[KW_ERR_FIELD_MAX]; /* offending request field, "" if none */
    char msg[KW_ERR_MSG_MAX];     /* human-readable detail, never a secret */
} kw_err_t;

/* Short title of a code ("Not found"), its HTTP status, and its problem type slug
 * ("not-found"). Unknown codes: 500, "internal-error". */
const char *kw_strerror(int code);
int kw_err_http_status(int code);
const char *kw_err_slug(int code);

/* Fill *e (if not NULL) and return code, so callers can write
 * `return kw_err_set(err, KW_EINVAL, "name", "must be a string");` */
int kw_err_set(kw_err_t *e, int code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void kw_err_clear(kw_err_t *e);

#endif
