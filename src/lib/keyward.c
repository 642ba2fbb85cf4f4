/* keyward.c - libkeyward's offline half: version, errors, and key text (check, prefix,
 * hint, digest) wrapped around src/core/key.c. Must not log or keep key text. */
#include "keyward.h"

#include <openssl/evp.h>
#include <string.h>

#include "core/err.h"
#include "core/key.h"

KEYWARD_API const char *keyward_version(void)
{
    return KEYWARD_VERSION;
}

KEYWARD_API const char *keyward_strerror(int code)
{
    switch (code) {
    case KEYWARD_OK:
        return "success";
    case KEYWARD_EMALFORMED:
        return "not a well-formed keyward key";
    case KEYWARD_EINVAL:
        return "invalid argument";
    case KEYWARD_ENOMEM:
        return "out of memory";
    case KEYWARD_EIO:
        return "cannot reach keyward (connect, send or receive failed)";
    case KEYWARD_EPROTO:
        return "keyward's answer could not be understood";
    case KEYWARD_ECRYPTO:
        return "digest computation failed";
    default:
        return "unknown error";
    }
}

KEYWARD_API int keyward_key_check(const char *key, size_t len)
{
    if (key == NULL)
        return KEYWARD_EMALFORMED;
    return kw_key_check(key, len, NULL) == 0 ? KEYWARD_OK : KEYWARD_EMALFORMED;
}

KEYWARD_API int keyward_key_prefix(const char *key, size_t len, char out[KEYWARD_PREFIX_MAX + 1])
{
    size_t plen;
    if (key == NULL || kw_key_check(key, len, &plen) != 0)
        return KEYWARD_EMALFORMED;
    memcpy(out, key, plen);
    out[plen] = '\0';
    return KEYWARD_OK;
}

KEYWARD_API int keyward_key_hint(const char *key, size_t len, char out[KEYWARD_HINT_MAX])
{
    if (key == NULL || kw_key_check(key, len, NULL) != 0)
        return KEYWARD_EMALFORMED;
    kw_key_hint(key, len, out);
    return KEYWARD_OK;
}

KEYWARD_API int keyward_key_digest(const char *key, size_t len, const uint8_t *pepper,
                                   size_t pepper_len, uint8_t out[KEYWARD_DIGEST_LEN])
{
    if (key == NULL && len > 0)
        return KEYWARD_EINVAL;
    if (pepper == NULL || pepper_len == 0)
        /* the core keeps a per-thread context; libkeyward never sets a global pepper */
        return kw_key_digest(key ? key : "", len, out) == 0 ? KEYWARD_OK : KEYWARD_ECRYPTO;
    size_t n = 0;
    if (EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, pepper, pepper_len,
                  (const unsigned char *)(key ? key : ""), len, out, KEYWARD_DIGEST_LEN,
                  &n) == NULL ||
        n != KEYWARD_DIGEST_LEN)
        return KEYWARD_ECRYPTO;
    return KEYWARD_OK;
}
