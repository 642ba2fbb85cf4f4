/* key.c - key text (SPEC §3): generate, check, hint, and the digest stored at rest.
 *
 * Must not log, allocate on the check path, or leave a secret in memory it owns: the
 * caller owns every key buffer and wipes it. kw_key_check is fed untrusted bytes on the
 * verification hot path, so it reads only text[0..len) and never assumes a NUL. */
/* SHA256_Init and friends are deprecated in OpenSSL 3 (see the digest section). */
#define OPENSSL_SUPPRESS_DEPRECATED
#include "key.h"

#include <pthread.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "err.h"
#include "util.h"

static const char kw__b62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/* Base62 of 2^256 - 1. The alphabet is in ASCII order, so fixed-width base62 strings
 * compare with memcmp exactly as the numbers do: a secret above this is no 32-byte value
 * (43 digits reach 62^43 > 2^256) and is refused, which keeps text <-> bytes one-to-one. */
static const char kw__secret_max[KW_SECRET_CHARS + 1] =
    "yhjskwdA6OZ1AL1YmHWZWm8LLG7HjnuCA2j5rOw8Xp1";

/* Shape of the text: prefix "_" secret check, so the prefix length follows from len. */
#define KW__KEY_MIN (1 + 1 + KW_SECRET_CHARS + KW_CHECK_CHARS) /* 51 */
#define KW__TAIL (1 + KW_SECRET_CHARS + KW_CHECK_CHARS)        /* "_" secret check: 50 */

static int kw__is_b62(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

int kw_key_prefix_valid(const char *p, size_t len)
{
    if (p == NULL || len == 0 || len > KW_PREFIX_MAX)
        return 0;
    if (p[0] < 'a' || p[0] > 'z')
        return 0;
    for (size_t i = 1; i < len; i++) {
        unsigned char c = (unsigned char)p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
            return 0;
    }
    return 1;
}

void kw_base62_encode_256(const uint8_t in[32], char out[KW_SECRET_CHARS + 1])
{
    uint32_t w[8];

    /* Long division of the 256-bit number by 62, one 32-bit limb at a time; each pass
     * yields the least significant remaining digit, written right to left. */
    for (int i = 0; i < 8; i++)
        w[i] = (uint32_t)in[4 * i] << 24 | (uint32_t)in[4 * i + 1] << 16 |
               (uint32_t)in[4 * i + 2] << 8 | (uint32_t)in[4 * i + 3];
    for (int d = KW_SECRET_CHARS - 1; d >= 0; d--) {
        uint64_t rem = 0;
        for (int i = 0; i < 8; i++) {
            uint64_t cur = rem << 32 | w[i];
            w[i] = (uint32_t)(cur / 62);
            rem = cur % 62;
        }
        out[d] = kw__b62[rem];
    }
    out[KW_SECRET_CHARS] = '\0';
    kw_wipe(w, sizeof(w));
}

void kw_base62_encode_u32(uint32_t v, char out[KW_CHECK_CHARS + 1])
{
    /* 62^6 > 2^32, so six digits always suffice. */
    for (int d = KW_CHECK_CHARS - 1; d >= 0; d--) {
        out[d] = kw__b62[v % 62];
        v /= 62;
    }
    out[KW_CHECK_CHARS] = '\0';
}

/* CRC-32 (IEEE, zlib's crc32) sliced eight bytes at a time: the key body is ~46 bytes and
 * zlib's byte-wise path for short inputs cost ~110 ns of the check. Tables built once. */
static uint32_t kw__crc_tab[8][256];
static pthread_once_t kw__crc_once = PTHREAD_ONCE_INIT;

static void kw__crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
        kw__crc_tab[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            kw__crc_tab[t][i] =
                kw__crc_tab[0][kw__crc_tab[t - 1][i] & 0xff] ^ (kw__crc_tab[t - 1][i] >> 8);
}

static uint32_t kw__crc32(const uint8_t *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    pthread_once(&kw__crc_once, kw__crc_init);
    for (; n >= 8; n -= 8, p += 8) {
        uint32_t lo = c ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                           (uint32_t)p[3] << 24);
        uint32_t hi =
            (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 | (uint32_t)p[7] << 24;
        c = kw__crc_tab[7][lo & 0xff] ^ kw__crc_tab[6][(lo >> 8) & 0xff] ^
            kw__crc_tab[5][(lo >> 16) & 0xff] ^ kw__crc_tab[4][lo >> 24] ^
            kw__crc_tab[3][hi & 0xff] ^ kw__crc_tab[2][(hi >> 8) & 0xff] ^
            kw__crc_tab[1][(hi >> 16) & 0xff] ^ kw__crc_tab[0][hi >> 24];
    }
    while (n--)
        c = kw__crc_tab[0][(c ^ *p++) & 0xff] ^ (c >> 8);
    return c ^ 0xffffffffu;
}

uint32_t kw_key_crc32(const void *p, size_t n)
{
    return kw__crc32(p, n);
}

/* CRC-32 of body[0..n) as the 6-char check. */
static void kw__check_chars(const char *body, size_t n, char out[KW_CHECK_CHARS + 1])
{
    kw_base62_encode_u32(kw__crc32((const uint8_t *)body, n), out);
}

int kw_key_from_bytes(const char *prefix, const uint8_t secret[32], char out[KW_KEY_MAX + 1])
{
    char check[KW_CHECK_CHARS + 1];
    size_t plen;

    if (prefix == NULL)
        prefix = KW_DEFAULT_PREFIX;
    plen = strnlen(prefix, KW_PREFIX_MAX + 1);
    if (!kw_key_prefix_valid(prefix, plen))
        return KW_EINVAL;
    memcpy(out, prefix, plen);
    out[plen] = '_';
    kw_base62_encode_256(secret, out + plen + 1);
    kw__check_chars(out, plen + 1 + KW_SECRET_CHARS, check);
    memcpy(out + plen + 1 + KW_SECRET_CHARS, check, sizeof(check)); /* with its NUL */
    return 0;
}

int kw_key_generate(const char *prefix, char out[KW_KEY_MAX + 1])
{
    uint8_t secret[32];
    int rc;

    if (prefix == NULL)
        prefix = KW_DEFAULT_PREFIX;
    if (!kw_key_prefix_valid(prefix, strnlen(prefix, KW_PREFIX_MAX + 1))) {
        rc = KW_EINVAL;
        goto out;
    }
    rc = kw_random(secret, sizeof(secret));
    if (rc != 0) {
        rc = KW_EIO;
        goto out;
    }
    rc = kw_key_from_bytes(prefix, secret, out);
out:
    kw_wipe(secret, sizeof(secret));
    return rc;
}

int kw_key_check(const char *text, size_t len, size_t *prefix_len)
{
    char check[KW_CHECK_CHARS + 1];
    size_t plen;

    if (text == NULL || len < KW__KEY_MIN || len > KW_KEY_MAX)
        return KW_EMALFORMED;
    plen = len - KW__TAIL;
    if (text[plen] != '_' || !kw_key_prefix_valid(text, plen))
        return KW_EMALFORMED;
    for (size_t i = plen + 1; i < len; i++)
        if (!kw__is_b62((unsigned char)text[i]))
            return KW_EMALFORMED;
    if (memcmp(text + plen + 1, kw__secret_max, KW_SECRET_CHARS) > 0)
        return KW_EMALFORMED;
    /* The check is public by design (offline scanners), so a plain compare is fine. */
    kw__check_chars(text, plen + 1 + KW_SECRET_CHARS, check);
    if (memcmp(text + plen + 1 + KW_SECRET_CHARS, check, KW_CHECK_CHARS) != 0)
        return KW_EMALFORMED;
    if (prefix_len)
        *prefix_len = plen;
    return 0;
}

void kw_key_hint(const char *text, size_t len, char out[KW_HINT_MAX])
{
    static const char ellipsis[] = "\xe2\x80\xa6"; /* U+2026 */
    size_t plen, o = 0;

    /* Contract says text is well formed; stay in bounds anyway if it is not. */
    if (text == NULL || len < KW__KEY_MIN || len > KW_KEY_MAX) {
        out[0] = '\0';
        return;
    }
    plen = len - KW__TAIL;
    memcpy(out + o, text, plen + 1 + 4); /* prefix "_" first 4 of the secret */
    o += plen + 1 + 4;
    memcpy(out + o, ellipsis, 3);
    o += 3;
    memcpy(out + o, text + len - 4, 4);
    o += 4;
    out[o] = '\0'; /* at most 16 + 5 + 3 + 4 + 1 = 29 bytes */
}

/* ---- digest ---------------------------------------------------------------------------
 * OpenSSL's low-level SHA-256 (SHA256_Init/Update/Final): the same assembly EVP reaches
 * (SHA-NI where the CPU has it) without EVP's per-call provider dispatch, which cost more
 * than the compression of a one- or two-block key (~52 ns against 110-185 ns through EVP,
 * bench/verify_bench.sh). The API is deprecated in OpenSSL 3 but present in every 3.x.
 * HMAC-SHA256 with the pepper (RFC 2104) starts from the two contexts after the pepper's
 * ipad and opad blocks, computed once in kw_digest_set_pepper, so a digest is two short
 * hashes. No per-thread state: a digest's context is on the stack and wiped after use. */

static SHA256_CTX kw__hmac_in, kw__hmac_out; /* set before any digest (start-up) */
static int kw__have_pepper;

static void kw__sha256(const void *p, size_t n, uint8_t out[KW_DIGEST_LEN])
{
    SHA256_CTX c;
    SHA256_Init(&c);
    SHA256_Update(&c, p, n);
    SHA256_Final(out, &c);
    kw_wipe(&c, sizeof(c));
}

int kw_digest_set_pepper(const uint8_t *pepper, size_t len)
{
    uint8_t k[64], pad[64];

    kw__have_pepper = 0;
    kw_wipe(&kw__hmac_in, sizeof(kw__hmac_in));
    kw_wipe(&kw__hmac_out, sizeof(kw__hmac_out));
    if (pepper == NULL || len == 0)
        return 0;
    memset(k, 0, sizeof(k));
    if (len > 64) /* a key longer than a block is hashed first */
        kw__sha256(pepper, len, k);
    else
        memcpy(k, pepper, len);
    for (int i = 0; i < 64; i++)
        pad[i] = k[i] ^ 0x36;
    SHA256_Init(&kw__hmac_in);
    SHA256_Update(&kw__hmac_in, pad, sizeof(pad));
    for (int i = 0; i < 64; i++)
        pad[i] = k[i] ^ 0x5c;
    SHA256_Init(&kw__hmac_out);
    SHA256_Update(&kw__hmac_out, pad, sizeof(pad));
    kw__have_pepper = 1;
    kw_wipe(k, sizeof(k));
    kw_wipe(pad, sizeof(pad));
    return 0;
}

int kw_key_digest(const char *text, size_t len, uint8_t out[KW_DIGEST_LEN])
{
    if (text == NULL && len > 0)
        return KW_EINTERNAL;
    if (!kw__have_pepper) {
        kw__sha256(text, len, out);
        return 0;
    }
    uint8_t inner[KW_DIGEST_LEN];
    SHA256_CTX c = kw__hmac_in;
    SHA256_Update(&c, text, len);
    SHA256_Final(inner, &c);
    c = kw__hmac_out;
    SHA256_Update(&c, inner, sizeof(inner));
    SHA256_Final(out, &c);
    kw_wipe(inner, sizeof(inner));
    kw_wipe(&c, sizeof(c));
    return 0;
}

void kw_digest_thread_cleanup(void)
{
    /* nothing per thread any more; kept so callers need not change */
}

int kw_ct_equal(const void *a, const void *b, size_t n)
{
    return CRYPTO_memcmp(a, b, n) == 0;
}

void kw_wipe(void *p, size_t n)
{
    if (p != NULL && n > 0)
        OPENSSL_cleanse(p, n);
}
