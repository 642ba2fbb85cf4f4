/* seal.c - AES-256-GCM sealing of stored secrets under a key file (see seal.h). Keys live
 * only in memory here and in the 0600 key file; nothing in this file logs or formats a
 * secret into a message. */
#include "seal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include "util.h"

#define KEY_LEN 32
#define NONCE_LEN 12
#define TAG_LEN 16
#define KID_LEN 4
#define MAX_KEYS 64
#define LINE_TAG "kws1 "

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

static int push_key(kw_seal_t *s, const uint8_t key[KEY_LEN], kw_err_t *err)
{
    if (s->n == MAX_KEYS)
        return kw_err_set(err, KW_EINVAL, "", "key file holds more than %d keys", MAX_KEYS);
    memcpy(s->keys[s->n].key, key, KEY_LEN);
    set_kid(&s->keys[s->n]);
    s->n++;
    return 0;
}

/* "kws1 <hex>\n" for key into line (sizeof >= 5 + 64 + 2). */
static void key_line(const uint8_t key[KEY_LEN], char line[80])
{
    memcpy(line, LINE_TAG, 5);
    kw_hex_encode(key, KEY_LEN, line + 5);
    line[5 + 2 * KEY_LEN] = '\n';
    line[6 + 2 * KEY_LEN] = '\0';
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int create_file(const char *path, kw_seal_t *s, kw_err_t *err)
{
    uint8_t key[KEY_LEN];
    char line[80];
    int rc = 0;
    if (kw_random(key, sizeof key) != 0)
        return kw_err_set(err, KW_EINTERNAL, "", "no randomness for the secrets key");
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = kw_err_set(err, KW_EIO, "", "cannot create secrets key file %s: %s", path,
                        strerror(errno));
        goto out;
    }
    key_line(key, line);
    if (write_all(fd, line, strlen(line)) != 0 || fsync(fd) != 0) {
        rc = kw_err_set(err, KW_EIO, "", "cannot write secrets key file %s: %s", path,
                        strerror(errno));
        close(fd);
        unlink(path);
        goto out;
    }
    close(fd);
    rc = push_key(s, key, err);
out:
    OPENSSL_cleanse(key, sizeof key);
    OPENSSL_cleanse(line, sizeof line);
    return rc;
}

static int read_file(const char *path, int *wide_mode, kw_seal_t *s, kw_err_t *err)
{
    int rc = 0, lineno = 0;
    char line[256];
    FILE *f = fopen(path, "re");
    if (!f)
        return kw_err_set(err, KW_EIO, "", "cannot read secrets key file %s: %s", path,
                          strerror(errno));
    struct stat st;
    if (wide_mode)
        *wide_mode = fstat(fileno(f), &st) == 0 && (st.st_mode & 077) != 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        size_t len = strcspn(line, "\r\n");
        line[len] = '\0';
        if (len == 0 || line[0] == '#')
            continue;
        uint8_t key[KEY_LEN];
        if (len != 5 + 2 * KEY_LEN || memcmp(line, LINE_TAG, 5) != 0 ||
            kw_hex_decode(line + 5, KEY_LEN, key) != 0) {
            rc = kw_err_set(err, KW_EINVAL, "",
                            "secrets key file %s line %d: expected 'kws1 "
                            "<64 hex digits>'",
                            path, lineno);
            break;
        }
        rc = push_key(s, key, err);
        OPENSSL_cleanse(key, sizeof key);
        if (rc != 0)
            break;
    }
    OPENSSL_cleanse(line, sizeof line);
    fclose(f);
    if (rc == 0 && s->n == 0)
        rc = kw_err_set(err, KW_EINVAL, "", "secrets key file %s holds no key", path);
    return rc;
}

int kw_seal_load(const char *path, int create, int *wide_mode, kw_seal_t **out, kw_err_t *err)
{
    int rc;
    kw_seal_t *s = calloc(1, sizeof *s);
    if (!s)
        return kw_err_set(err, KW_ENOMEM, "", "out of memory");
    if (wide_mode)
        *wide_mode = 0;
    if (create && access(path, F_OK) != 0 && errno == ENOENT) {
        rc = create_file(path, s, err);
        /* Lost a race with another process creating it: read theirs. */
        if (rc == KW_EIO && access(path, F_OK) == 0)
            rc = read_file(path, wide_mode, s, err);
    } else {
        rc = read_file(path, wide_mode, s, err);
    }
    if (rc != 0) {
        kw_seal_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

void kw_seal_free(kw_seal_t *s)
{
    if (!s)
        return;
    OPENSSL_cleanse(s, sizeof *s);
    free(s);
}

int kw_seal_add_key(kw_seal_t *s, const char *path, kw_err_t *err)
{
    uint8_t key[KEY_LEN];
    char line[80];
    int rc = 0;
    if (s->n == MAX_KEYS)
        return kw_err_set(err, KW_EINVAL, "", "key file holds %d keys already", MAX_KEYS);
    if (kw_random(key, sizeof key) != 0)
        return kw_err_set(err, KW_EINTERNAL, "", "no randomness for the secrets key");
    int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd < 0) {
        rc = kw_err_set(err, KW_EIO, "", "cannot open secrets key file %s: %s", path,
                        strerror(errno));
        goto out;
    }
    key_line(key, line);
    if (fchmod(fd, 0600) != 0 || write_all(fd, line, strlen(line)) != 0 || fsync(fd) != 0) {
        rc = kw_err_set(err, KW_EIO, "", "cannot write secrets key file %s: %s", path,
                        strerror(errno));
        close(fd);
        goto out;
    }
    close(fd);
    rc = push_key(s, key, err);
out:
    OPENSSL_cleanse(key, sizeof key);
    OPENSSL_cleanse(line, sizeof line);
    return rc;
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
