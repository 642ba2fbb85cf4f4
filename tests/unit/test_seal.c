/* test_seal.c - sealing secrets at rest: round trip, associated data, tamper, key file
 * creation (mode 0600, never overwritten), bad key files, rotation. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app/seal_file.h"
#include "core/err.h"
#include "core/seal.h"
#include "t.h"

static char dir[64];
static char path[128];

static kw_seal_t *load(int create)
{
    kw_seal_t *s = NULL;
    kw_err_t e;
    int wide = -1;
    if (kw_seal_load(path, create, &wide, &s, &e) != 0)
        return NULL;
    T_EQ_INT(wide, 0);
    return s;
}

static void test_create_and_roundtrip(void)
{
    kw_seal_t *s = load(1);
    T_CHECK(s != NULL);
    if (!s)
        return;
    struct stat st;
    T_EQ_INT(stat(path, &st), 0);
    T_EQ_INT(st.st_mode & 0777, 0600);

    char *sealed = NULL;
    kw_err_t e;
    const char *secret = "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ=";
    T_EQ_INT(kw_seal_seal(s, "cred_1", secret, strlen(secret), &sealed, &e), 0);
    if (sealed == NULL) { /* out of memory (t.h, T_OOM) */
        kw_seal_free(s);
        return;
    }
    T_CHECK(kw_seal_is_sealed(sealed));
    T_CHECK(strstr(sealed, "whsec") == NULL);
    T_CHECK(kw_seal_is_current(s, sealed));

    uint8_t *pt = NULL;
    size_t n = 0;
    T_EQ_INT(kw_seal_open(s, "cred_1", sealed, &pt, &n, &e), 0);
    T_EQ_INT(n, strlen(secret));
    T_EQ_STR((char *)pt, secret);
    free(pt);

    /* Another row's id does not open it. */
    T_EQ_INT(kw_seal_open(s, "cred_2", sealed, &pt, &n, &e), KW_EINVAL);
    /* A flipped ciphertext digit does not open. */
    size_t len = strlen(sealed);
    sealed[len - 3] = sealed[len - 3] == '0' ? '1' : '0';
    T_EQ_INT(kw_seal_open(s, "cred_1", sealed, &pt, &n, &e), KW_EINVAL);
    T_EQ_INT(kw_seal_open(s, "cred_1", "kws1.zz", &pt, &n, &e), KW_EINVAL);
    T_EQ_INT(kw_seal_open(s, "cred_1", "plain", &pt, &n, &e), KW_EINVAL);
    free(sealed);
    sealed = NULL;
    pt = NULL;

    /* Empty plaintext round-trips too. */
    T_EQ_INT(kw_seal_seal(s, "", "", 0, &sealed, &e), 0);
    if (sealed)
        T_EQ_INT(kw_seal_open(s, "", sealed, &pt, &n, &e), 0);
    T_EQ_INT(n, 0);
    free(pt);
    free(sealed);
    kw_seal_free(s);
}

static void test_reload_same_key(void)
{
    kw_seal_t *a = load(1), *b = load(0);
    T_CHECK(a && b);
    if (!a || !b) {
        kw_seal_free(a);
        kw_seal_free(b);
        return;
    }
    char *sealed = NULL;
    kw_err_t e;
    T_EQ_INT(kw_seal_seal(a, "x", "abc", 3, &sealed, &e), 0);
    uint8_t *pt = NULL;
    size_t n;
    T_EQ_INT(kw_seal_open(b, "x", sealed, &pt, &n, &e), 0);
    free(pt);
    free(sealed);
    kw_seal_free(a);
    kw_seal_free(b);
}

static void test_rotate(void)
{
    kw_seal_t *s = load(0);
    T_CHECK(s != NULL);
    if (!s)
        return;
    char *old = NULL, *fresh = NULL;
    kw_err_t e;
    T_EQ_INT(kw_seal_seal(s, "w", "old", 3, &old, &e), 0);
    T_EQ_INT(kw_seal_add_key(s, path, &e), 0);
    T_CHECK(!kw_seal_is_current(s, old));
    T_EQ_INT(kw_seal_seal(s, "w", "new", 3, &fresh, &e), 0);
    T_CHECK(kw_seal_is_current(s, fresh));
    kw_seal_free(s);

    s = load(0);
    uint8_t *pt = NULL;
    size_t n;
    T_EQ_INT(kw_seal_open(s, "w", old, &pt, &n, &e), 0);
    T_EQ_STR((char *)pt, "old");
    free(pt);
    T_EQ_INT(kw_seal_open(s, "w", fresh, &pt, &n, &e), 0);
    T_EQ_STR((char *)pt, "new");
    free(pt);
    T_CHECK(kw_seal_is_current(s, fresh));
    free(old);
    free(fresh);
    kw_seal_free(s);
}

static void test_bad_files(void)
{
    kw_seal_t *s = NULL;
    kw_err_t e;
    char bad[160];
    snprintf(bad, sizeof bad, "%s/bad", dir);
    T_EQ_INT(kw_seal_load(bad, 0, NULL, &s, &e), KW_EIO);
    FILE *f = fopen(bad, "w");
    fputs("kws1 00zz\n", f);
    fclose(f);
    T_EQ_INT(kw_seal_load(bad, 1, NULL, &s, &e), KW_EINVAL);
    T_CHECK(strstr(e.msg, "line 1") != NULL);
    f = fopen(bad, "w");
    fputs("# only a comment\n", f);
    fclose(f);
    T_EQ_INT(kw_seal_load(bad, 0, NULL, &s, &e), KW_EINVAL);
    /* A wide mode is reported. */
    chmod(path, 0644);
    int wide = 0;
    T_EQ_INT(kw_seal_load(path, 0, &wide, &s, &e), 0);
    T_EQ_INT(wide, 1);
    kw_seal_free(s);
    chmod(path, 0600);
    unlink(bad);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/kw-seal-XXXXXX");
    if (!mkdtemp(dir))
        return 1;
    snprintf(path, sizeof path, "%s/keyward.secrets-key", dir);
    T_RUN(test_create_and_roundtrip);
    T_RUN(test_reload_same_key);
    T_RUN(test_rotate);
    T_RUN(test_bad_files);
    unlink(path);
    rmdir(dir);
    T_DONE();
}
