/* store_seal.c - secrets in credential contacts sealed at rest (SPEC section 3): the store
 * API seals each webhook contact's "secret" (core/seal.h, the credential id as associated
 * data) before a backend writes the row, and opens it after a backend reads it, so no
 * backend ever stores one in clear. Also the start-up pass that seals what an older
 * version stored in clear. Must not: put a secret in an error message. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/seal.h"
#include "core/key.h"
#include "core/util.h"
#include "sqlite.h"
#include "store_impl.h"

const struct kw_seal *kw_store_seal(const kw_store_t *s)
{
    return s ? s->seal : NULL;
}

void kw_store_set_seal(kw_store_t *s, const struct kw_seal *seal)
{
    if (s)
        s->seal = seal;
}

/* Does json (contacts) hold a secret in clear (want_clear) or a sealed one? Cheap text test
 * first: most credentials have no webhook. */
static int holds(const char *json, int want_clear)
{
    if (json == NULL || strstr(json, "\"secret\"") == NULL)
        return 0;
    json_t *a = json_loads(json, 0, NULL);
    int yes = 0;
    size_t i;
    json_t *o;
    json_array_foreach(a, i, o)
    {
        const char *v = json_string_value(json_object_get(o, "secret"));
        if (v && v[0] && kw_seal_is_sealed(v) == !want_clear)
            yes = 1;
    }
    json_decref(a);
    return yes;
}

int kw_store_contacts_xform(const kw_store_t *s, const char *cred_id, const char *json, int seal,
                            char **out, kw_err_t *err)
{
    *out = NULL;
    if (s->seal == NULL || json == NULL || strstr(json, "\"secret\"") == NULL)
        return 0;
    json_t *a = json_loads(json, 0, NULL);
    if (!json_is_array(a)) {
        json_decref(a);
        return 0;
    }
    int changed = 0, rc = 0;
    size_t i;
    json_t *o;
    json_array_foreach(a, i, o)
    {
        const char *v = json_string_value(json_object_get(o, "secret"));
        if (v == NULL || v[0] == '\0')
            continue;
        int sealed = kw_seal_is_sealed(v);
        if (seal && sealed && kw_seal_is_current(s->seal, v))
            continue;
        if (!seal && !sealed)
            continue;
        char *nv = NULL;
        if (seal) {
            uint8_t *pt = NULL;
            size_t n = 0;
            if (sealed) { /* under an older key: open, then seal under the current one */
                if (kw_seal_open(s->seal, cred_id, v, &pt, &n, NULL) != 0)
                    continue;
                rc = kw_seal_seal(s->seal, cred_id, pt, n, &nv, err);
                kw_wipe(pt, n);
                free(pt);
            } else {
                rc = kw_seal_seal(s->seal, cred_id, v, strlen(v), &nv, err);
            }
            if (rc)
                break;
        } else {
            uint8_t *pt = NULL;
            size_t n = 0;
            if (kw_seal_open(s->seal, cred_id, v, &pt, &n, NULL) != 0) {
                nv = strdup(""); /* another key file: the secret is lost, not guessed */
            } else {
                nv = (char *)pt;
            }
            if (nv == NULL) {
                rc = kw_err_set(err, KW_ENOMEM, NULL, "out of memory");
                break;
            }
        }
        json_object_set_new(o, "secret", json_string(nv));
        kw_wipe(nv, strlen(nv));
        free(nv);
        changed = 1;
    }
    if (rc == 0 && changed && (*out = json_dumps(a, JSON_COMPACT)) == NULL)
        rc = kw_err_set(err, KW_ENOMEM, NULL, "out of memory");
    json_decref(a); /* jansson's free wipes (serve.c sets wipe_free) */
    return rc;
}

typedef struct scan {
    char (*ids)[KW_ID_MAX];
    size_t n, cap;
    int any_sealed;
    int oom;
} scan_t;

static int scan_cb(void *ud, const kw_cred_t *c, const kw_keyrec_t *keys, size_t nkeys)
{
    (void)keys;
    (void)nkeys;
    scan_t *sc = ud; /* secret_scan: credentials only */
    if (holds(c->contacts_json, 0))
        sc->any_sealed = 1;
    if (!holds(c->contacts_json, 1) && !holds(c->contacts_json, 0))
        return 0;
    if (sc->n == sc->cap) {
        size_t cap = sc->cap ? sc->cap * 2 : 64;
        void *p = realloc(sc->ids, cap * sizeof(*sc->ids));
        if (p == NULL) {
            sc->oom = 1;
            return 0;
        }
        sc->ids = p;
        sc->cap = cap;
    }
    memcpy(sc->ids[sc->n++], c->id, KW_ID_MAX);
    return 0;
}

int kw_store_seal_scan(kw_store_t *s, int *any_sealed, kw_err_t *err)
{
    scan_t sc = {0};
    int rc = s->ops->secret_scan(s, scan_cb, &sc, err);
    free(sc.ids);
    *any_sealed = sc.any_sealed;
    return rc;
}

int kw_store_seal_migrate(kw_store_t *s, size_t *resealed, kw_err_t *err)
{
    scan_t sc = {0};
    *resealed = 0;
    if (s->seal == NULL)
        return 0;
    int rc = s->ops->secret_scan(s, scan_cb, &sc, err);
    if (rc == 0 && sc.oom)
        rc = kw_err_set(err, KW_ENOMEM, NULL, "out of memory");
    for (size_t i = 0; rc == 0 && i < sc.n; i++) {
        kw_cred_t c = {0};
        char *sealed = NULL;
        if ((rc = s->ops->begin(s, err)) != 0)
            break;
        rc = s->ops->cred_get(s, sc.ids[i], &c, err);
        if (rc == 0)
            rc = kw_store_contacts_xform(s, c.id, c.contacts_json, 1, &sealed, err);
        if (rc == 0 && sealed) {
            char *clear = c.contacts_json;
            c.contacts_json = sealed;
            rc = s->ops->cred_update(s, &c, err);
            c.contacts_json = clear;
            if (rc == 0)
                (*resealed)++;
        }
        if (sealed) {
            kw_wipe(sealed, strlen(sealed));
            free(sealed);
        }
        if (c.contacts_json)
            kw_wipe(c.contacts_json, strlen(c.contacts_json));
        kw_cred_clear(&c);
        if (rc == 0)
            rc = s->ops->commit(s, err);
        else
            s->ops->rollback(s);
    }
    free(sc.ids);
    /* the clear text the rows held before may linger in free pages and in the WAL */
    if (rc == 0 && *resealed)
        rc = kw_store_sqlite_scrub(s, err);
    return rc;
}
