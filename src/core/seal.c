/* seal.c - AES-256-GCM sealing of stored secrets under a ring of keys (see seal.h). Keys
 * live only in memory here (the key file is src/app/seal_file.c's); nothing in this file
 * logs or formats a secret into a message. */
#include "seal.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include "util.h"

#define KEY_LEN KW_SEAL_KEY_LEN
#define NONCE_LEN 12
#define TAG_LEN 16
#define KID_LEN 4
#define MAX_KEYS KW_SEAL_KEYS_MAX

typedef struct seal_key {
    uint8_t key[KEY_LEN];
    char kid[KID_LEN * 2 + 1];
} seal_key_t;

struct kw_seal {
    seal_key_t keys[MAX_KEYS];
    size_t n; /* keys[n-1] is current */
};

static void set_kid(seal_key_t *k)
{
    uint8_t d[SHA256_DIGEST_LENGTH];
    SHA256(k->key, KEY_LEN, d);
    kw_hex_encode(d, KID_LEN, k->kid);
}

int kw_seal_push(kw_seal_t *s, const uint8_t key[KW_SEAL_KEY_LEN], kw_err_t *err)
{
    if (s->n == MAX_KEYS)
        return kw_err_set(err, KW_EINVAL, "", "key file holds more than %d keys", MAX_KEYS);
    memcpy(s->keys[s->n].key, key, KEY_LEN);
    set_kid(&s->keys[s->n]);
    s->n++;
    return 0;
}

int kw_seal_new(kw_seal_t **out, kw_err_t *err)
{
    kw_seal_t *s = calloc(1, sizeof *s);
    if (!s)
        return kw_err_set(err, KW_ENOMEM, "", "out of memory");
    *out = s;
    return 0;
}

size_t kw_seal_count(const kw_seal_t *s)
{
    return s->n;
}

void kw_seal_free(kw_seal_t *s)
{
    if (!s)
        return;
    OPENSSL_cleanse(s, sizeof *s);
    free(s);
}

/* GCM in one direction; returns 0 or -1. For decryption, tag is read; else written. */
static int gcm(int enc, const uint8_t *key, const uint8_t *nonce, const char *ad, const uint8_t *in,
               size_t n, uint8_t *out, uint8_t *tag)
{
    int ok = 0, len = 0;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    if (!c)
        return -1;
    if (EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) != 1 ||
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) != 1 ||
        EVP_CipherInit_ex(c, NULL, NULL, key, nonce, enc) != 1)
        goto out;
    size_t adlen = strlen(ad);
    if (adlen > 0 && EVP_CipherUpdate(c, NULL, &len, (const uint8_t *)ad, (int)adlen) != 1)
        goto out;
    if (n > 0 && EVP_CipherUpdate(c, out, &len, in, (int)n) != 1)
        goto out;
    if (!enc && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, TAG_LEN, tag) != 1)
        goto out;
    if (EVP_CipherFinal_ex(c, out + len, &len) != 1)
        goto out;
    if (enc && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, TAG_LEN, tag) != 1)
        goto out;
    ok = 1;
out:
    EVP_CIPHER_CTX_free(c);
    return ok ? 0 : -1;
}

int kw_seal_seal(const kw_seal_t *s, const char *ad, const void *pt, size_t n, char **out,
                 kw_err_t *err)
{
    const seal_key_t *k = &s->keys[s->n - 1];
    size_t blob = NONCE_LEN + n + TAG_LEN;
    size_t head = strlen(KW_SEAL_PREFIX) + KID_LEN * 2 + 1;
    if (n > (1u << 24))
        return kw_err_set(err, KW_ETOOBIG, "", "secret too large to seal");
    uint8_t *buf = malloc(blob);
    char *text = malloc(head + 2 * blob + 1);
    if (!buf || !text) {
        free(buf);
        free(text);
        return kw_err_set(err, KW_ENOMEM, "", "out of memory");
    }
    if (kw_random(buf, NONCE_LEN) != 0 ||
        gcm(1, k->key, buf, ad ? ad : "", pt, n, buf + NONCE_LEN, buf + NONCE_LEN + n) != 0) {
        OPENSSL_cleanse(buf, blob);
        free(buf);
        free(text);
        return kw_err_set(err, KW_EINTERNAL, "", "sealing a secret failed");
    }
    snprintf(text, head + 1, "%s%s.", KW_SEAL_PREFIX, k->kid);
    kw_hex_encode(buf, blob, text + head);
    free(buf);
    *out = text;
    return 0;
}

int kw_seal_is_sealed(const char *text)
{
    return text && strncmp(text, KW_SEAL_PREFIX, strlen(KW_SEAL_PREFIX)) == 0;
}

static const seal_key_t *find_key(const kw_seal_t *s, const char *sealed)
{
    size_t pl = strlen(KW_SEAL_PREFIX);
    if (!kw_seal_is_sealed(sealed) || strlen(sealed) < pl + KID_LEN * 2 + 1 ||
        sealed[pl + KID_LEN * 2] != '.')
        return NULL;
    for (size_t i = s->n; i-- > 0;)
        if (memcmp(s->keys[i].kid, sealed + pl, KID_LEN * 2) == 0)
            return &s->keys[i];
    return NULL;
}

int kw_seal_is_current(const kw_seal_t *s, const char *sealed)
{
    return find_key(s, sealed) == &s->keys[s->n - 1];
}

int kw_seal_open(const kw_seal_t *s, const char *ad, const char *sealed, uint8_t **pt, size_t *n,
                 kw_err_t *err)
{
    const seal_key_t *k = find_key(s, sealed);
    if (!k)
        return kw_err_set(err, KW_EINVAL, "", "sealed secret: unknown format or key id");
    const char *hex = sealed + strlen(KW_SEAL_PREFIX) + KID_LEN * 2 + 1;
    size_t hl = strlen(hex);
    if (hl % 2 != 0 || hl / 2 < NONCE_LEN + TAG_LEN)
        return kw_err_set(err, KW_EINVAL, "", "sealed secret: truncated");
    size_t blob = hl / 2, ptlen = blob - NONCE_LEN - TAG_LEN;
    uint8_t *buf = malloc(blob), *plain = malloc(ptlen + 1);
    if (!buf || !plain) {
        free(buf);
        free(plain);
        return kw_err_set(err, KW_ENOMEM, "", "out of memory");
    }
    int rc = 0;
    if (kw_hex_decode(hex, blob, buf) != 0) {
        rc = kw_err_set(err, KW_EINVAL, "", "sealed secret: not hex");
    } else if (gcm(0, k->key, buf, ad ? ad : "", buf + NONCE_LEN, ptlen, plain,
                   buf + NONCE_LEN + ptlen) != 0) {
        rc = kw_err_set(err, KW_EINVAL, "", "sealed secret: authentication failed");
    }
    free(buf);
    if (rc != 0) {
        OPENSSL_cleanse(plain, ptlen + 1);
        free(plain);
        return rc;
    }
    plain[ptlen] = '\0';
    *pt = plain;
    *n = ptlen;
    return 0;
}
