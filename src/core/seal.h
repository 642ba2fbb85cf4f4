/* seal.h - secrets at rest (SPEC §3): AES-256-GCM under keys kept in a key file, so that a
 * copy of the database alone reveals no secret. Pure crypto on keys held in memory (the key
 * file is app/seal_file.h's); it never logs and never puts a secret into an error message.
 *
 * Key file: text, one key per line, "kws1 <64 hex digits>"; the LAST line is the current key
 * (new secrets are sealed under it), earlier lines stay usable for opening older secrets, so
 * a rotation appends a line and then re-seals every stored secret.
 *
 * Sealed text (what the store keeps): "kws1.<kid>.<hex(nonce 12 | ciphertext | tag 16)>",
 * kid = first 4 bytes of SHA-256(key) in hex. The associated data (the owning row's id) is
 * bound into the tag: a sealed value moved to another row does not open. */
#ifndef KW_SEAL_H
#define KW_SEAL_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define KW_SEAL_PREFIX "kws1."

typedef struct kw_seal kw_seal_t;

#define KW_SEAL_KEY_LEN 32  /* AES-256 */
#define KW_SEAL_KEYS_MAX 64 /* keys in one ring */

/* An empty key ring: KW_ENOMEM. Keys come from the key file (app/seal_file.h: kw_seal_load)
 * or from kw_seal_push. *out owned by the caller (kw_seal_free). */
int kw_seal_new(kw_seal_t **out, kw_err_t *err);
void kw_seal_free(kw_seal_t *s); /* NULL allowed; wipes the keys */
/* Add key as the current key: KW_EINVAL when the ring holds KW_SEAL_KEYS_MAX already. */
int kw_seal_push(kw_seal_t *s, const uint8_t key[KW_SEAL_KEY_LEN], kw_err_t *err);
size_t kw_seal_count(const kw_seal_t *s); /* keys in the ring */

/* Seal n bytes of plaintext under the current key with associated data ad (a NUL-terminated
 * string, e.g. the row id; may be ""). *out: malloc'd NUL-terminated sealed text, owned by
 * the caller. Errors: KW_ENOMEM, KW_EINTERNAL (OpenSSL failure). */
int kw_seal_seal(const kw_seal_t *s, const char *ad, const void *pt, size_t n, char **out,
                 kw_err_t *err);

/* Open sealed text produced by kw_seal_seal with the same ad. *pt: malloc'd plaintext with a
 * NUL appended (not counted in *n), owned by the caller, who wipes it before freeing.
 * Errors: KW_EINVAL (not sealed text, unknown key id, or authentication failed: wrong ad,
 * wrong key, tampered), KW_ENOMEM. */
int kw_seal_open(const kw_seal_t *s, const char *ad, const char *sealed, uint8_t **pt, size_t *n,
                 kw_err_t *err);

/* 1 when text looks like sealed text (starts with KW_SEAL_PREFIX), else 0. */
int kw_seal_is_sealed(const char *text);

/* 1 when sealed was made under the current key (no re-seal needed after a rotation). */
int kw_seal_is_current(const kw_seal_t *s, const char *sealed);

#endif
