/* seal_file.c - the secrets key file (seal_file.h): created once with one random key
 * (O_EXCL, mode 0600), read line by line into a key ring (core/seal.h), a rotation appended
 * as a new last line. The file is the daemon's policy, so it lives here, not in the core. */
#include "seal_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "core/util.h"

#define KEY_LEN KW_SEAL_KEY_LEN
#define MAX_KEYS KW_SEAL_KEYS_MAX
#define LINE_TAG "kws1 "

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

/* A fresh random key written as a new line of the key file at path - a new file (create:
 * O_EXCL, mode 0600, removed again if the write fails) or the end of the existing one (kept
 * 0600) - then added to s as its current key. */
static int append_key(const char *path, int create, kw_seal_t *s, kw_err_t *err)
{
    uint8_t key[KEY_LEN];
    char line[80];
    int rc = 0;
    if (kw_random(key, sizeof key) != 0)
        return kw_err_set(err, KW_EINTERNAL, "", "no randomness for the secrets key");
    int fd = create ? open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)
                    : open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd < 0) {
        rc = kw_err_set(err, KW_EIO, "", "cannot %s secrets key file %s: %s",
                        create ? "create" : "open", path, strerror(errno));
        goto out;
    }
    key_line(key, line);
    if ((!create && fchmod(fd, 0600) != 0) || write_all(fd, line, strlen(line)) != 0 ||
        fsync(fd) != 0) {
        rc = kw_err_set(err, KW_EIO, "", "cannot write secrets key file %s: %s", path,
                        strerror(errno));
        close(fd);
        if (create)
            unlink(path);
        goto out;
    }
    close(fd);
    rc = kw_seal_push(s, key, err);
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
        rc = kw_seal_push(s, key, err);
        OPENSSL_cleanse(key, sizeof key);
        if (rc != 0)
            break;
    }
    OPENSSL_cleanse(line, sizeof line);
    fclose(f);
    if (rc == 0 && kw_seal_count(s) == 0)
        rc = kw_err_set(err, KW_EINVAL, "", "secrets key file %s holds no key", path);
    return rc;
}

int kw_seal_load(const char *path, int create, int *wide_mode, kw_seal_t **out, kw_err_t *err)
{
    int rc;
    kw_seal_t *s = NULL;
    if ((rc = kw_seal_new(&s, err)) != 0)
        return rc;
    if (wide_mode)
        *wide_mode = 0;
    if (create && access(path, F_OK) != 0 && errno == ENOENT) {
        rc = append_key(path, 1, s, err);
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

int kw_seal_add_key(kw_seal_t *s, const char *path, kw_err_t *err)
{
    if (kw_seal_count(s) == MAX_KEYS)
        return kw_err_set(err, KW_EINVAL, "", "key file holds %d keys already", MAX_KEYS);
    return append_key(path, 0, s, err);
}
