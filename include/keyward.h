/* keyward.h - the embeddable keyward library (libkeyward): check, hint and digest keyward
 * API keys offline, and ask a running keyward about a key over one kept-alive connection.
 *
 *   pkg-config --cflags --libs keyward        (static: add --static)
 *
 * Everything public is prefixed keyward_ / KEYWARD_. Functions return 0 on success or a
 * negative KEYWARD_E* code (keyward_strerror names it). Nothing here logs, and no key
 * text is kept or copied by the library beyond the call that receives it.
 * See docs/library.md. */
#ifndef KEYWARD_H
#define KEYWARD_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KEYWARD_VERSION_MAJOR 0
#define KEYWARD_VERSION_MINOR 1
#define KEYWARD_VERSION_PATCH 0
#define KEYWARD_VERSION "0.1.0"
/* 0xMMmmpp: compare with >= in #if */
#define KEYWARD_VERSION_NUM                                                                        \
    ((KEYWARD_VERSION_MAJOR << 16) | (KEYWARD_VERSION_MINOR << 8) | KEYWARD_VERSION_PATCH)

#if defined(__GNUC__)
#define KEYWARD_API __attribute__((visibility("default")))
#else
#define KEYWARD_API
#endif

/* Sizes (with the terminating NUL where text). */
#define KEYWARD_KEY_MAX 66 /* longest key text, without NUL */
#define KEYWARD_PREFIX_MAX 16
#define KEYWARD_DIGEST_LEN 32
#define KEYWARD_HINT_MAX 40

/* Error codes. */
#define KEYWARD_OK 0
#define KEYWARD_EMALFORMED (-1) /* not a keyward key (shape or check characters) */
#define KEYWARD_EINVAL (-2)     /* a bad argument */
#define KEYWARD_ENOMEM (-3)
#define KEYWARD_EIO (-4)     /* connect/send/receive failed or timed out */
#define KEYWARD_EPROTO (-5)  /* the server's answer could not be understood */
#define KEYWARD_ECRYPTO (-6) /* the digest could not be computed */

/* The library's version text (KEYWARD_VERSION of the build you linked). */
KEYWARD_API const char *keyward_version(void);
/* A constant English description of an error code. */
KEYWARD_API const char *keyward_strerror(int code);

/* ---- key text, offline (SPEC §3) ---- */

/* 0 if key[0..len) is a well-formed keyward key (prefix, 43-character secret and CRC-32
 * check characters all right), KEYWARD_EMALFORMED otherwise. No allocation, no lookup,
 * safe on any bytes: reject junk before spending a network round trip on it. */
KEYWARD_API int keyward_key_check(const char *key, size_t len);

/* The key's prefix (e.g. "kw") into out (NUL-terminated). KEYWARD_EMALFORMED if the key
 * is not well formed. */
KEYWARD_API int keyward_key_prefix(const char *key, size_t len, char out[KEYWARD_PREFIX_MAX + 1]);

/* The key's hint, as keyward shows it (prefix "_" first 4 secret chars "…" last 4), into
 * out (UTF-8, NUL-terminated): safe to log. KEYWARD_EMALFORMED if not well formed. */
KEYWARD_API int keyward_key_hint(const char *key, size_t len, char out[KEYWARD_HINT_MAX]);

/* The digest keyward stores for the key: SHA-256 of the key text, or HMAC-SHA256 when
 * pepper is given (pepper_len > 0; the same bytes as keyward's --pepper-file). Works on
 * any bytes (it does not check the key). Thread-safe. 0 or KEYWARD_ECRYPTO. */
KEYWARD_API int keyward_key_digest(const char *key, size_t len, const uint8_t *pepper,
                                   size_t pepper_len, uint8_t out[KEYWARD_DIGEST_LEN]);

/* ---- asking a running keyward (SPEC §4) ---- */

typedef struct keyward_client keyward_client_t;

/* The answer to one check. Text fields are NUL-terminated and empty when absent. */
typedef struct keyward_result {
    int valid;         /* 1 when code is VALID */
    int http_status;   /* the HTTP status keyward answered with */
    char code[24];     /* VALID, MALFORMED, NOT_FOUND, REVOKED, EXPIRED, DISABLED,
                          FORBIDDEN_IP, FORBIDDEN_SCOPE */
    char message[256]; /* SPEC §4 message, for the caller's 401/403 */
    char credential_id[64];
    char key_id[64];
    char scopes[512];    /* space-separated */
    char expires_at[40]; /* RFC 3339 UTC, "" = never or unknown */
    char sunset[40];     /* /v1/auth: HTTP-date when the key expires soon, else "" */
    int warning;         /* 1 when keyward warned that the key expires soon */
} keyward_result_t;

/* A client for the keyward at addr ("http://HOST:PORT", "HOST:PORT"; IPv6 as [::1]:PORT).
 * Connects lazily and keeps one connection alive, reconnecting once when the server
 * closed it. timeout_ms bounds each connect, send and receive (0 = 5000). Not
 * thread-safe: use one client per thread. *out is owned by the caller (keyward_client_free).
 * Returns 0, KEYWARD_EINVAL (bad address) or KEYWARD_ENOMEM. */
KEYWARD_API int keyward_client_new(const char *addr, int timeout_ms, keyward_client_t **out);
KEYWARD_API void keyward_client_free(keyward_client_t *c); /* NULL allowed */

/* The request header keyward was started with as --trusted-ip-header (e.g. "X-Real-IP"):
 * keyward_auth sends the client address in it. NULL/"" = send no address. Copied.
 * KEYWARD_EINVAL if the name is not a plain header token. */
KEYWARD_API int keyward_client_set_ip_header(keyward_client_t *c, const char *name);

/* GET /v1/auth: the gateway form, headers only. scope and client_ip may be NULL. A key
 * that fails keyward_key_check is answered locally (MALFORMED, no request). Returns 0 when
 * keyward answered (res filled, res->valid says the verdict), else KEYWARD_EIO /
 * KEYWARD_EPROTO / KEYWARD_EINVAL (res->code is empty then). */
KEYWARD_API int keyward_auth(keyward_client_t *c, const char *key, const char *scope,
                             const char *client_ip, keyward_result_t *res);

/* POST /v1/keys/verify: the JSON form (always HTTP 200 from keyward). Same contract as
 * keyward_auth; client_ip is sent as "ip" in the body. */
KEYWARD_API int keyward_verify(keyward_client_t *c, const char *key, const char *scope,
                               const char *client_ip, keyward_result_t *res);

/* Send this Keyward-Caller-Key with every check (for keyward's --verify-requires-role).
 * NULL clears it. Copied; the copy is wiped on free. */
KEYWARD_API int keyward_client_set_caller_key(keyward_client_t *c, const char *key);

#ifdef __cplusplus
}
#endif
#endif
