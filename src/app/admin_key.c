/* admin_key.c - the first start's admin key: the `admin` credential created through the
 * lifecycle and its key written once to a 0600 file (O_EXCL: never overwritten). The file is
 * the daemon's policy, so it lives here beside the settings, not in the core. */
#include "admin_key.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/key.h"
#include "core/model.h"
#include "store/store.h"

static int mark_bootstrapped(kw_store_t *st, void *cred_id, kw_err_t *err)
{
    return kw_store_meta_set(st, "admin_bootstrapped", cred_id, err);
}

int kw_admin_key_bootstrap(kw_lc_t *lc, const char *path, int *created, kw_err_t *err)
{
    char *flag = NULL;
    char secret[KW_KEY_MAX + 2];
    kw_cred_t c = {0};
    kw_keyrec_t k;
    int rc, fd = -1;
    *created = 0;
    rc = kw_store_meta_get(lc->store, "admin_bootstrapped", &flag, err);
    free(flag);
    if (rc == 0)
        return 0;
    if (rc != KW_ENOTFOUND)
        return rc;
    kw_err_clear(err);

    /* Claim the file first: O_EXCL never overwrites, and if it exists we stop before
     * creating a key nobody could read. */
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return kw_err_set(err, errno == EEXIST ? KW_ECONFLICT : KW_EIO, "admin-key-file",
                          "cannot create admin key file %s: %s%s", path, strerror(errno),
                          errno == EEXIST ? " (remove it, or point --admin-key-file elsewhere)"
                                          : "");
    kw_cred_in_t in = {
        .name = "admin", .scopes_json = "[\"keyward:admin\"]", .has_owner = 1, .owner = "keyward"};
    rc = kw_lc_cred_create(lc, "system", &in, NULL, &c, &k, secret, err);
    if (rc)
        goto out;
    size_t len = strlen(secret);
    secret[len] = '\n';
    if (write(fd, secret, len + 1) != (ssize_t)(len + 1) || fsync(fd) != 0) {
        rc = kw_err_set(err, KW_EIO, "admin-key-file", "cannot write admin key file %s: %s", path,
                        strerror(errno));
        goto out;
    }
    rc = kw_lc_tx(lc, mark_bootstrapped, NULL, c.id, err);
out:
    kw_wipe(secret, sizeof(secret));
    if (fd >= 0)
        close(fd);
    if (rc)
        unlink(path);
    else
        *created = 1;
    kw_cred_clear(&c);
    return rc;
}
