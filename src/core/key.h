/* key.h - key text (SPEC §3): generate, parse, checksum, digest, hint.
 *
 * Text form: <prefix>_<secret><check>. prefix is [a-z][a-z0-9]{0,15}; secret is 32 CSPRNG
 * bytes read as one big-endian number, base62 (0-9A-Za-z), left-padded with '0' to 43
 * characters; check is zlib's crc32 of everything before it, base62, left-padded to 6.
 * Nothing here logs, and buffers that held a secret are wiped by their owner. */
#ifndef KW_KEY_H
#define KW_KEY_H

#include <stddef.h>
#include <stdint.h>

#define KW_PREFIX_MAX 16
#define KW_SECRET_CHARS 43
#define KW_CHECK_CHARS 6
#define KW_KEY_MAX (KW_PREFIX_MAX + 1 + KW_SECRET_CHARS + KW_CHECK_CHARS) /* 66 */
#define KW_DIGEST_LEN 32
#define KW_HINT_MAX 40
#define KW_DEFAULT_PREFIX "kw"

/* 1 if p[0..len) is a valid prefix ([a-z][a-z0-9]{0,15}), else 0. */
int kw_key_prefix_valid(const char *p, size_t len);

/* Encode 32 bytes (big-endian number) as exactly 43 base62 chars + NUL into out[44]. */
void kw_base62_encode_256(const uint8_t in[32], char out[KW_SECRET_CHARS + 1]);

/* Encode a 32-bit value as exactly 6 base62 chars + NUL into out[7]. */
void kw_base62_encode_u32(uint32_t v, char out[KW_CHECK_CHARS + 1]);

/* Generate a new key with 32 bytes from getrandom(2). out must hold KW_KEY_MAX+1 bytes;
 * writes the NUL-terminated text. prefix NULL means KW_DEFAULT_PREFIX. Returns 0,
 * KW_EINVAL for a bad prefix, KW_EIO if the CSPRNG fails. The caller wipes out (kw_wipe)
 * when done. */
int kw_key_generate(const char *prefix, char out[KW_KEY_MAX + 1]);

/* The key text for a given 32-byte secret (what kw_key_generate does after drawing the
 * bytes); for tests, fuzzing and tooling. prefix NULL means KW_DEFAULT_PREFIX. Returns 0
 * or KW_EINVAL for a bad prefix (out untouched). The caller wipes out when done. */
int kw_key_from_bytes(const char *prefix, const uint8_t secret[32], char out[KW_KEY_MAX + 1]);

/* CRC-32 (IEEE; the same value as zlib's crc32(0, p, n)) of p[0..n). */
uint32_t kw_key_crc32(const void *p, size_t n);

/* Check the shape and the CRC of text[0..len). Returns 0 if well formed, KW_EMALFORMED
 * otherwise. No allocation, no lookup; safe on any bytes. If prefix_len is not NULL it
 * receives the prefix length on success. A secret above 2^256-1 (possible in 43 base62
 * digits, never generated) is malformed, so text and 32-byte secret map one-to-one. */
int kw_key_check(const char *text, size_t len, size_t *prefix_len);

/* hint = prefix "_" first 4 chars of the secret "…" last 4 chars of the key.
 * text must be well formed (kw_key_check == 0). Writes a NUL-terminated UTF-8 string. */
void kw_key_hint(const char *text, size_t len, char out[KW_HINT_MAX]);

/* Set the server pepper (copied) used by every later digest; NULL/0 = plain SHA-256.
 * Call once at start-up, before any thread digests. Returns 0 or KW_ENOMEM. */
int kw_digest_set_pepper(const uint8_t *pepper, size_t len);

/* SHA-256 (or HMAC-SHA256 with the pepper) of text[0..len) into out, computed in key.c
 * with the x86 SHA extensions when the CPU has them (~40 ns for a key), else portable C.
 * Thread-safe, no allocation. Returns 0 or KW_EINTERNAL (text NULL with len > 0). */
int kw_key_digest(const char *text, size_t len, uint8_t out[KW_DIGEST_LEN]);

/* Constant-time equality of two n-byte buffers: 1 if equal, 0 otherwise. */
int kw_ct_equal(const void *a, const void *b, size_t n);

/* Overwrite n bytes at p in a way the compiler cannot elide. NULL is allowed. */
void kw_wipe(void *p, size_t n);

/* Formerly freed per-thread digest state; digests keep none now. A no-op kept for callers. */
void kw_digest_thread_cleanup(void);

#endif
