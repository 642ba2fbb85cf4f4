/* key.c - key text (SPEC §3): generate, check, hint, and the digest stored at rest.
 *
 * Must not log, allocate on the check path, or leave a secret in memory it owns: the
 * caller owns every key buffer and wipes it. kw_key_check is fed untrusted bytes on the
 * verification hot path, so it reads only text[0..len) and never assumes a NUL. */
#include "key.h"

#include <pthread.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <zlib.h>

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

/* CRC-32 of body[0..n) as the 6-char check. */
static void kw__check_chars(const char *body, size_t n, char out[KW_CHECK_CHARS + 1])
{
    uLong crc = crc32(0L, (const Bytef *)body, (uInt)n);
    kw_base62_encode_u32((uint32_t)crc, out);
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
 * SHA-256 is fetched once per process; each thread keeps its own EVP_MD_CTX and reuses it,
 * which avoids the provider lookup and allocation of a one-shot digest. With a pepper, a
 * template HMAC context keyed once at start-up is duplicated into each thread, and
 * re-initialised with a NULL key per digest (OpenSSL then restarts from the keyed state).
 * A thread's state is freed by kw_digest_thread_cleanup or, failing that, at thread exit. */

static pthread_once_t kw__once = PTHREAD_ONCE_INIT;
static EVP_MD *kw__sha256;       /* process-wide, never freed (reachable) */
static pthread_key_t kw__tl_key; /* its destructor frees a thread's state at exit */
static int kw__tl_key_ok;
static EVP_MAC_CTX *kw__hmac_tmpl; /* NULL = no pepper */
static unsigned kw__pepper_gen;    /* bumped on every kw_digest_set_pepper */

static _Thread_local EVP_MD_CTX *kw__tl_md;
static _Thread_local EVP_MAC_CTX *kw__tl_mac;
static _Thread_local unsigned kw__tl_mac_gen;

static void kw__tl_destructor(void *unused)
{
    (void)unused;
    kw_digest_thread_cleanup();
}

static void kw__init_once(void)
{
    kw__sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    kw__tl_key_ok = pthread_key_create(&kw__tl_key, kw__tl_destructor) == 0;
}

/* Ready the process-wide state, and arrange for this thread's state to be freed when it
 * exits, so threads that never call kw_digest_thread_cleanup do not leak. */
static int kw__thread_init(void)
{
    if (pthread_once(&kw__once, kw__init_once) != 0 || kw__sha256 == NULL)
        return KW_EINTERNAL;
    if (kw__tl_key_ok && pthread_getspecific(kw__tl_key) == NULL)
        pthread_setspecific(kw__tl_key, (void *)1); /* any non-NULL value runs the dtor */
    return 0;
}

int kw_digest_set_pepper(const uint8_t *pepper, size_t len)
{
    EVP_MAC *mac = NULL;
    EVP_MAC_CTX *ctx = NULL;
    OSSL_PARAM params[2];
    int rc = KW_ENOMEM;

    if (pepper != NULL && len > 0) {
        mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
        if (mac == NULL)
            goto out;
        ctx = EVP_MAC_CTX_new(mac);
        if (ctx == NULL)
            goto out;
        params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
        params[1] = OSSL_PARAM_construct_end();
        /* The provider keeps its own (cleansed on free) copy of the key. */
        if (EVP_MAC_init(ctx, pepper, len, params) != 1)
            goto out;
    }
    EVP_MAC_CTX_free(kw__hmac_tmpl);
    kw__hmac_tmpl = ctx;
    ctx = NULL;
    kw__pepper_gen++;
    rc = 0;
out:
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
    return rc;
}

static int kw__digest_hmac(const char *text, size_t len, uint8_t out[KW_DIGEST_LEN])
{
    size_t n = 0;

    if (kw__tl_mac != NULL && kw__tl_mac_gen != kw__pepper_gen) {
        EVP_MAC_CTX_free(kw__tl_mac);
        kw__tl_mac = NULL;
    }
    if (kw__tl_mac == NULL) {
        if (kw__thread_init() != 0)
            return KW_EINTERNAL;
        kw__tl_mac = EVP_MAC_CTX_dup(kw__hmac_tmpl);
        if (kw__tl_mac == NULL)
            return KW_EINTERNAL;
        kw__tl_mac_gen = kw__pepper_gen;
    }
    if (EVP_MAC_init(kw__tl_mac, NULL, 0, NULL) != 1 ||
        EVP_MAC_update(kw__tl_mac, (const unsigned char *)text, len) != 1 ||
        EVP_MAC_final(kw__tl_mac, out, &n, KW_DIGEST_LEN) != 1 || n != KW_DIGEST_LEN)
        return KW_EINTERNAL;
    return 0;
}

int kw_key_digest(const char *text, size_t len, uint8_t out[KW_DIGEST_LEN])
{
    unsigned int n = 0;

    if (text == NULL && len > 0)
        return KW_EINTERNAL;
    if (kw__hmac_tmpl != NULL)
        return kw__digest_hmac(text, len, out);
    if (kw__tl_md == NULL) {
        if (kw__thread_init() != 0)
            return KW_EINTERNAL;
        kw__tl_md = EVP_MD_CTX_new();
        if (kw__tl_md == NULL)
            return KW_EINTERNAL;
    }
    if (EVP_DigestInit_ex2(kw__tl_md, kw__sha256, NULL) != 1 ||
        EVP_DigestUpdate(kw__tl_md, text, len) != 1 ||
        EVP_DigestFinal_ex(kw__tl_md, out, &n) != 1 || n != KW_DIGEST_LEN)
        return KW_EINTERNAL;
    return 0;
}

void kw_digest_thread_cleanup(void)
{
    EVP_MD_CTX_free(kw__tl_md);
    kw__tl_md = NULL;
    EVP_MAC_CTX_free(kw__tl_mac);
    kw__tl_mac = NULL;
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
