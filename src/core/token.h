/* token.h - OAuth2 access tokens (SPEC §13): self-contained, MAC'd tokens obtained with a
 * key, verified from memory through the key that obtained them, and a small set of tokens
 * revoked one by one. See docs/internals/tokens.md for the format and the trade-off.
 *
 * Text form: <prefix>_at_<payload>, prefix as a key's ([a-z][a-z0-9]{0,15}, the prefix of
 * the key that obtained it). payload is a byte string written as base62 words: every 8
 * bytes (a big-endian 64-bit number) become exactly 11 characters. Bytes:
 *   0 version (1) | 1 flags (bit 0: explicit scopes) | 2-3 scope text length
 *   4-11 issued at | 12-19 expires at (unix seconds)
 *   20-31 token id (random) | 32-63 the key's digest XOR HMAC(mask key, token id)
 *   64.. scope text (space-separated), zero padding to a multiple of 8
 *   last 16: HMAC-SHA256(mac key, prefix "_at_" everything before)[0..16)
 * A key's secret is base62 (no '_'), so "<prefix>_at_" never begins a key.
 * Nothing here logs; token text is a secret and is never kept. */
#ifndef KW_TOKEN_H
#define KW_TOKEN_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "index.h"
#include "key.h"

#define KW_TOKEN_ID_LEN 12
#define KW_TOKEN_ID_HEX (2 * KW_TOKEN_ID_LEN + 1)
#define KW_TOKEN_SCOPES_MAX 1024 /* bytes of scope text a token may carry */
#define KW_TOKEN_MAX 1600        /* longest token text, NUL excluded */
#define KW_TOKEN_LIFETIME_DEFAULT 3600
#define KW_TOKEN_LIFETIME_MAX 86400
#define KW_TOKEN_EXPIRED_MSG "The access token provided has expired"

typedef struct kw_tokens kw_tokens_t;

/* What a token says (after its MAC was checked). scopes points into the caller's claims
 * buffer. */
typedef struct kw_token_claims {
    uint8_t id[KW_TOKEN_ID_LEN];
    int64_t iat, exp;
    uint8_t digest[KW_DIGEST_LEN]; /* the obtaining key's digest (unmasked) */
    int explicit_scopes;           /* 0: every scope of the credential */
    char scopes[KW_TOKEN_SCOPES_MAX + 1];
    size_t scopes_len;
    char prefix[KW_PREFIX_MAX + 1];
} kw_token_claims_t;

/* New token state from the 32-byte server secret (copied; the MAC and mask keys are derived
 * from it and their HMAC contexts precomputed). *out owned by the caller (kw_tokens_free).
 * Returns 0 or KW_ENOMEM. */
int kw_tokens_new(const uint8_t secret[32], kw_tokens_t **out);
void kw_tokens_free(kw_tokens_t *t); /* NULL allowed; wipes the keys */

/* 1 when text[0..len) has a token's shape up to its payload ("<prefix>_at_"), else 0.
 * Cheap (no MAC); used to route a presented credential to the token path. */
int kw_token_looks(const char *text, size_t len);

/* Write a token into out (n bytes, NUL-terminated). scopes NULL = every scope of the
 * credential, else space-separated text of at most KW_TOKEN_SCOPES_MAX bytes. id_out gets
 * the new token id (random). Returns 0, KW_EINVAL (bad prefix, scopes too long, n too
 * small) or KW_EIO (no randomness). The caller wipes out when done. */
int kw_token_issue(const kw_tokens_t *t, const char *prefix, const uint8_t digest[KW_DIGEST_LEN],
                   const char *scopes, int64_t iat, int64_t exp, char *out, size_t n,
                   uint8_t id_out[KW_TOKEN_ID_LEN]);

/* Parse and authenticate text[0..len). Returns 0 (c filled), KW_EMALFORMED (not a token's
 * shape) or KW_ENOTFOUND (well formed but the MAC does not match: forged, or made under
 * another server secret). No allocation. */
int kw_token_parse(const kw_tokens_t *t, const char *text, size_t len, kw_token_claims_t *c);

/* The revocation set (RFC 7009): token ids until their expiry. add returns 0 or KW_ENOMEM;
 * revoked is 1/0 and takes no lock while the set is empty; prune drops ids past their
 * expiry and returns how many. */
int kw_tokens_revoke(kw_tokens_t *t, const uint8_t id[KW_TOKEN_ID_LEN], int64_t exp);
int kw_tokens_revoked(kw_tokens_t *t, const uint8_t id[KW_TOKEN_ID_LEN]);
size_t kw_tokens_prune(kw_tokens_t *t, int64_t now);
size_t kw_tokens_revoked_count(kw_tokens_t *t);

/* Token id as 24 lowercase hex characters, and back (0 or KW_EINVAL). */
void kw_token_id_hex(const uint8_t id[KW_TOKEN_ID_LEN], char out[KW_TOKEN_ID_HEX]);
int kw_token_id_parse(const char *hex, uint8_t id[KW_TOKEN_ID_LEN]);

/* What a verify learned beyond kw_verify_res_t. */
typedef struct kw_token_info {
    int is_token;      /* the presented text was a token (else a key) */
    int token_expired; /* EXPIRED because of the token's own expiry: KW_TOKEN_EXPIRED_MSG */
    int64_t exp;       /* the token's expiry */
    /* VALID or FORBIDDEN_SCOPE with explicit scopes: the token's scopes the credential still
     * holds, space-separated; NULL = the credential's (res.cred->facts) */
    const char *scopes;
    char buf[KW_TOKEN_SCOPES_MAX + 1];
    kw_token_claims_t c;
} kw_token_info_t;

/* Verify a key or a token (t may be NULL: keys only). For a token: MALFORMED (shape),
 * NOT_FOUND (bad MAC, or its key is unknown), then the key's REVOKED / EXPIRED, the
 * token's own revocation (REVOKED) and expiry (EXPIRED, info->token_expired), then the
 * credential's DISABLED / FORBIDDEN_IP, and FORBIDDEN_SCOPE against the token's scopes.
 * A token's use counts as a use of its key. res is released as kw_index_verify's. */
void kw_verify_any(kw_tokens_t *t, kw_index_t *ix, const kw_verify_req_t *rq, kw_verify_res_t *res,
                   kw_token_info_t *info);

/* The message for a result (kw_verify_message, or the token's expiry message). */
const char *kw_verify_any_message(const kw_verify_res_t *res, const kw_token_info_t *info,
                                  const char *scope, char *out, size_t n);

#endif
