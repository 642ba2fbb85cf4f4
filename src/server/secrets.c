/* secrets.c - the server's secrets key (SPEC §3, §12): loads or creates the key file, seals
 * and opens stored secrets under a lock that key rotation takes exclusively, and re-seals
 * every stored watched secret after a rotation. Never logs a secret or puts one in an
 * error message. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/audit.h"
#include "app/seal_file.h"
#include "core/seal.h"
#include "core/util.h"
#include "log.h"
#include "watched.h"

static pthread_rwlock_t seal_lock = PTHREAD_RWLOCK_INITIALIZER;

void kw_secrets_path(const kw_server_t *srv, char *out, size_t n)
{
    kw_store_file_beside(srv->store, srv->cfg.secrets_key_file, "secrets-key", out, n);
}

int kw_secrets_start(kw_server_t *srv, kw_err_t *err)
{
    /* the process's one sealing key, opened before the store by atrest.c (SPEC §3) */
    if (srv->seal == NULL)
        return kw_err_set(err, KW_EINTERNAL, "secrets-key-file", "no secrets key is loaded");
    return 0;
}

void kw_secrets_stop(kw_server_t *srv)
{
    (void)srv; /* the seal is atrest's: serve.c frees it last */
}

int kw_secrets_seal(kw_server_t *srv, const char *ad, const char *text, char **out, kw_err_t *err)
{
    *out = NULL;
    if (text == NULL)
        return 0;
    pthread_rwlock_rdlock(&seal_lock);
    int rc = kw_seal_seal(srv->seal, ad, text, strlen(text), out, err);
    pthread_rwlock_unlock(&seal_lock);
    return rc;
}

int kw_secrets_open(kw_server_t *srv, const char *ad, const char *sealed, char **out, kw_err_t *err)
{
    uint8_t *pt = NULL;
    size_t n = 0;
    *out = NULL;
    if (sealed == NULL)
        return 0;
    pthread_rwlock_rdlock(&seal_lock);
    int rc = kw_seal_open(srv->seal, ad, sealed, &pt, &n, err);
    pthread_rwlock_unlock(&seal_lock);
    if (rc == 0)
        *out = (char *)pt;
    return rc;
}

void kw_secrets_free(char *p)
{
    if (p) {
        kw_wipe(p, strlen(p));
        free(p);
    }
}

void kw_secret_hint(const char *s, char out[KW_WATCHED_HINT_MAX])
{
    size_t n = s ? strlen(s) : 0;
    if (n >= 16)
        snprintf(out, KW_WATCHED_HINT_MAX, "%.4s\xe2\x80\xa6%s", s, s + n - 4);
    else if (n >= 8)
        snprintf(out, KW_WATCHED_HINT_MAX, "\xe2\x80\xa6%s", s + n - 2);
    else
        snprintf(out, KW_WATCHED_HINT_MAX, "%s", n ? "\xe2\x80\xa6" : "");
}

/* Re-seal *field (sealed under any key) under the current one; counts into *n. Called with
 * seal_lock held exclusively. */
static int reseal(kw_server_t *srv, const char *ad, char **field, size_t *n, kw_err_t *err)
{
    uint8_t *pt = NULL;
    size_t len = 0;
    char *fresh = NULL;
    if (*field == NULL || kw_seal_is_current(srv->seal, *field))
        return 0;
    int rc = kw_seal_open(srv->seal, ad, *field, &pt, &len, err);
    if (rc == 0)
        rc = kw_seal_seal(srv->seal, ad, pt, len, &fresh, err);
    if (pt) {
        kw_wipe(pt, len);
        free(pt);
    }
    if (rc == 0) {
        free(*field);
        *field = fresh;
        (*n)++;
    }
    return rc;
}

/* Inside the write: re-seal every watched credential's secrets under the current key, with
 * the audit record. Takes seal_lock exclusively for the run (lock order: lc->mu and the
 * store transaction, then the seal lock; nobody holds the seal lock while waiting for a
 * write: secrets are sealed and opened in short calls). */
typedef struct rotate_tx {
    kw_server_t *srv;
    const char *actor;
    int64_t now;
    size_t resealed; /* output, reset by every run */
} rotate_tx_t;

static int rotate_run(kw_store_t *st, void *ud, kw_err_t *err)
{
    rotate_tx_t *t = ud;
    kw_server_t *srv = t->srv;
    kw_watched_filter_t f = {.limit = 256};
    size_t n = 0;
    int rc;
    t->resealed = 0;
    pthread_rwlock_wrlock(&seal_lock);
    for (;;) {
        kw_watched_t *a = NULL;
        size_t cnt = 0;
        if ((rc = kw_store_watched_list(st, &f, &a, &cnt, err)))
            break;
        for (size_t i = 0; rc == 0 && i < cnt; i++) {
            kw_watched_t *w = &a[i];
            size_t before = n;
            rc = reseal(srv, w->id, &w->secret_sealed, &n, err);
            if (rc == 0)
                rc = reseal(srv, w->id, &w->client_secret_sealed, &n, err);
            if (rc == 0)
                rc = reseal(srv, w->id, &w->refresh_token_sealed, &n, err);
            if (rc == 0)
                rc = reseal(srv, w->id, &w->refresh_token_prev_sealed, &n, err);
            if (rc == 0)
                rc = reseal(srv, w->id, &w->access_token_sealed, &n, err);
            if (rc == 0 && n != before)
                rc = kw_store_watched_update(st, w, err);
        }
        f.after_seq = cnt ? a[cnt - 1].seq : f.after_seq;
        kw_watched_array_free(a, cnt);
        if (rc || cnt < f.limit)
            break;
    }
    pthread_rwlock_unlock(&seal_lock);
    if (rc == 0)
        rc = kw_audit_append(st, t->actor, "secrets.rotate_key", NULL, "ok",
                             json_pack("{s:I}", "resealed", (json_int_t)n), t->now, err);
    if (rc == 0)
        t->resealed = n;
    return rc;
}

int kw_secrets_rotate(kw_server_t *srv, const char *actor, int64_t now, size_t *resealed,
                      kw_err_t *err)
{
    char path[KW_PATH_MAX + 16];
    kw_secrets_path(srv, path, sizeof(path));
    /* The new key goes into the key file first, outside the write: a run may run again and
     * must not append a second key. Before, not after: a crash (or a failed write) between
     * the two leaves a key file with a new current key and rows still sealed under older
     * keys it also holds, all readable, as before this was an op; the other order could
     * commit rows sealed under a key the file never got. */
    pthread_rwlock_wrlock(&seal_lock);
    int rc = kw_seal_add_key(srv->seal, path, err);
    pthread_rwlock_unlock(&seal_lock);
    if (rc)
        return rc;
    rotate_tx_t t = {.srv = srv, .actor = actor, .now = now};
    rc = kw_lc_tx(&srv->lc, rotate_run, NULL, &t, err);
    if (rc == 0)
        *resealed = t.resealed;
    return rc;
}
