/* checkconf.c - `keyward serve --check-config`: after the settings parsed (flags,
 * environment, config file), look at what the start would touch without touching it: the
 * pepper file, the SQLite file's directory, the admin key file's directory. Nothing is
 * opened for writing and nothing is created. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "serve.h"
#include "mail_msg.h"

/* The directory part of path ("." when there is none) into out. */
static void dir_of(const char *path, char *out, size_t n)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        snprintf(out, n, ".");
    else if (slash == path)
        snprintf(out, n, "/");
    else
        snprintf(out, n, "%.*s", (int)(slash - path), path);
}

/* The directory of path must exist and be writable (the start creates the file there). */
static int dir_ok(const char *setting, const char *path, FILE *err)
{
    char dir[KW_PATH_MAX];
    struct stat st;
    dir_of(path, dir, sizeof(dir));
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(err, "keyward: %s: directory %s does not exist\n", setting, dir);
        return -1;
    }
    /* SQLite creates its -wal and -shm files beside the database, so the directory itself
     * must be writable even when the file exists */
    if (access(dir, W_OK | X_OK) != 0) {
        fprintf(err, "keyward: %s: directory %s is not writable: %s\n", setting, dir,
                strerror(errno));
        return -1;
    }
    return 0;
}

int kw_serve_check_config(const kw_config_t *c, FILE *out, FILE *err)
{
    int bad = 0;
    struct stat st;
    if (c->pepper_file[0]) {
        FILE *f = fopen(c->pepper_file, "rb");
        if (f == NULL) {
            fprintf(err, "keyward: pepper-file: cannot read %s: %s\n", c->pepper_file,
                    strerror(errno));
            bad = 1;
        } else {
            fclose(f);
        }
    }
    if (strncmp(c->store, "sqlite:", 7) == 0) {
        const char *db = c->store + 7;
        if (stat(db, &st) == 0 && !S_ISREG(st.st_mode)) {
            fprintf(err, "keyward: store: %s is not a regular file\n", db);
            bad = 1;
        } else if (dir_ok("store", db, err) != 0) {
            bad = 1;
        }
    }
    if (c->admin_key_file[0] && dir_ok("admin-key-file", c->admin_key_file, err) != 0)
        bad = 1;
    if (c->mail_templates[0]) { /* the same check as at start: every file, every field */
        kw_mail_set_t *ms = NULL;
        kw_err_t e = {0};
        if (kw_mail_set_load(c->mail_templates, &ms, &e) != 0) {
            fprintf(err, "keyward: mail-templates: %s\n", e.msg);
            bad = 1;
        }
        kw_mail_set_free(ms);
    }
    if ((c->smtp[0] == '\0') != (c->mail_from[0] == '\0'))
        fprintf(err, "keyward: warning: e-mail needs both smtp and mail-from; it is off\n");
    if (bad)
        return 2;
    if (c->config[0])
        fprintf(out, "keyward: configuration OK (config file %s)\n", c->config);
    else
        fprintf(out, "keyward: configuration OK\n");
    return 0;
}
