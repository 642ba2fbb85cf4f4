/* events.h - every outbox event keyward raises is built here (SPEC §6): one shape, one id
 * scheme. An event is a compact JSON object: id (evt_, time-ordered, see
 * kw_id_new_ordered), type, occurred_at, then the fields naming its subject (a key:
 * credential_id, key_id, hint, slot; a watched credential: watched_id, name, ...), then
 * the fields particular to its type. It is inserted in the caller's open store transaction,
 * beside the change it reports. Must not: carry a secret (hints only). */
#ifndef KW_EVENTS_H
#define KW_EVENTS_H

#include <jansson.h>
#include <stdint.h>

#include "err.h"
#include "model.h"
#include "store/store.h"

/* Build the event `type` at now: id, type, occurred_at, then subject's fields, then
 * extra's (subject and extra may be NULL; both consumed), and insert it in the outbox.
 * id_out (may be NULL) gets the event's id. */
int kw_event_insert(kw_store_t *st, const char *type, int64_t now, json_t *subject, json_t *extra,
                    char *id_out, kw_err_t *err);

/* Build the event `type` about key k at now, merge extra (may be NULL; consumed) into it
 * and insert it in the outbox. id_out (may be NULL) gets the event's id. */
int kw_event_raise(kw_store_t *st, const char *type, const kw_keyrec_t *k, int64_t now,
                   json_t *extra, char *id_out, kw_err_t *err);

#endif
