/* atrest.c - what keyward keeps on disk is readable by its owner only (SPEC section 3,
 * issue 11): default paths beside the SQLite file, one warning per file others may read,
 * the store directory made 0700, and the secrets key file opened (created 0600 on first
 * start) and given to the store, which seals stored secrets with it and migrates old ones. */
#include "atrest.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "app/seal_file.h"
#include "core/seal.h"
#include "log.h"

/* The SQLite file of the store URL ("sqlite:PATH"), or NULL (PostgreSQL). */
static const char *sqlite_path(const kw_config_t *c)
{
    return strncmp(c->store, "sqlite:", 7) == 0 ? c->store + 7 : NULL;
}

/* A path beside the SQLite file: keyward.db -> keyward<suffix>; "" without one. */
void kw_atrest_beside_db(const kw_config_t *c, const char *suffix, char *out, size_t n)
{
    const char *db = sqlite_path(c);
    out[0] = '\0';
    if (db == NULL)
        return;
    size_t l = strlen(db);
    if (l > 3 && strcmp(db + l - 3, ".db") == 0)
        snprintf(out, n, "%.*s%s", (int)(l - 3), db, suffix);
    else
        snprintf(out, n, "%s%s", db, suffix);
}

/* One warning line for a file that others may read (created by an older version, or by
 * hand); it is not changed behind the operator's back. */
static void warn_mode(const char *path)
{
    struct stat st;
    if (path[0] && stat(path, &st) == 0 && (st.st_mode & 077))
        kw_log(KW_LOG_WARN, "file is readable or writable by other users; chmod 600 it",
               "{s:s, s:s}", "file", path, "mode",
               (char[8]){'0', (char)('0' + ((st.st_mode >> 6) & 7)),
                         (char)('0' + ((st.st_mode >> 3) & 7)), (char)('0' + (st.st_mode & 7)),
                         '\0'});
}

void kw_atrest_warn_modes(const kw_config_t *c, const char *keypath, const char *secpath)
{
    const char *db = sqlite_path(c);
    if (db) {
        char p[KW_PATH_MAX + 8];
        warn_mode(db);
        snprintf(p, sizeof(p), "%s-wal", db);
        warn_mode(p);
        snprintf(p, sizeof(p), "%s-shm", db);
        warn_mode(p);
    }
    warn_mode(keypath);
    warn_mode(secpath);
}

/* The SQLite file's directory, created 0700 when it does not exist yet (one level). */
void kw_atrest_make_db_dir(const kw_config_t *c)
{
    const char *db = sqlite_path(c);
    const char *slash = db ? strrchr(db, '/') : NULL;
    if (slash == NULL || slash == db)
        return;
    char dir[KW_PATH_MAX];
    snprintf(dir, sizeof(dir), "%.*s", (int)(slash - db), db);
    if (mkdir(dir, 0700) == 0)
        kw_log(KW_LOG_INFO, "store directory created", "{s:s}", "dir", dir);
}

/* Open (or on first start create, 0600) the secrets key file and seal the store's secrets
 * with it: a store that already holds sealed secrets never gets a fresh key file. */
int kw_atrest_open_secrets(kw_server_t *s, const char *path, kw_err_t *err)
{
    if (path[0] == '\0')
        return kw_err_set(err, KW_EINVAL, "secrets-key-file",
                          "--secrets-key-file is required with a PostgreSQL store");
    struct stat st;
    int exists = stat(path, &st) == 0, rc;
    if (!exists) {
        int any = 0;
        if ((rc = kw_store_seal_scan(s->store, &any, err)) != 0)
            return rc;
        if (any)
            return kw_err_set(err, KW_EINVAL, "secrets-key-file",
                              "secrets key file %s does not exist, but the store holds secrets "
                              "sealed under one: restore it or point --secrets-key-file at it",
                              path);
    }
    if ((rc = kw_seal_load(path, 1, NULL, &s->seal, err)) != 0)
        return rc;
    if (!exists)
        kw_log(KW_LOG_INFO, "secrets key file created", "{s:s}", "file", path);
    kw_store_set_seal(s->store, s->seal);
    size_t n = 0;
    if ((rc = kw_store_seal_migrate(s->store, &n, err)) != 0)
        return rc;
    if (n)
        kw_log(KW_LOG_INFO, "stored secrets sealed (store migrated in place)", "{s:I}",
               "credentials", (json_int_t)n);
    return 0;
}
