/* events.c - the one builder of outbox events (see events.h): lifecycle changes
 * (key.created, key.rolled, key.invalidated, key.renewed, renewal.*) and the scheduler's
 * expiry alerts (key.expiring, key.expired) through kw_event_raise; the watched
 * credentials' events (watched.*) through kw_event_insert. */
#include "events.h"

#include <stdio.h>
#include <stdlib.h>

#include "jdump.h"
#include "util.h"

int kw_event_insert(kw_store_t *st, const char *type, int64_t now, json_t *subject, json_t *extra,
                    char *id_out, kw_err_t *err)
{
    char id[KW_ID_MAX], ts[KW_TIME_STR_MAX];
    int rc = KW_ENOMEM;
    char *text = NULL;
    json_t *ev = NULL;
    if (kw_id_new_ordered("evt", id)) {
        rc = kw_err_set(err, KW_EINTERNAL, NULL, "could not read the system random source");
        goto out;
    }
    kw_time_format(now, ts);
    ev = json_pack("{s:s, s:s, s:s}", "id", id, "type", type, "occurred_at", ts);
    if (ev == NULL || (subject && json_object_update(ev, subject)) ||
        (extra && json_object_update(ev, extra)))
        goto out;
    if ((text = kw_json_dump(ev)) == NULL) /* = json_dumps(JSON_COMPACT) */
        goto out;
    rc = kw_store_event_insert(st, id, type, now, text, err);
    if (rc == 0 && id_out)
        snprintf(id_out, KW_ID_MAX, "%s", id);
out:
    if (rc == KW_ENOMEM)
        kw_err_set(err, KW_ENOMEM, NULL, "out of memory");
    json_decref(subject);
    json_decref(extra);
    json_decref(ev);
    free(text);
    return rc;
}

int kw_event_raise(kw_store_t *st, const char *type, const kw_keyrec_t *k, int64_t now,
                   json_t *extra, char *id_out, kw_err_t *err)
{
    json_t *subject = json_pack("{s:s, s:s, s:s, s:i}", "credential_id", k->cred_id, "key_id",
                                k->id, "hint", k->hint, "slot", k->slot);
    if (subject == NULL) {
        json_decref(extra);
        return kw_err_set(err, KW_ENOMEM, NULL, "out of memory");
    }
    return kw_event_insert(st, type, now, subject, extra, id_out, err);
}
