/* events.h - every outbox event keyward raises about a key is built here (SPEC §6): one
 * shape, one id scheme. An event is a compact JSON object: id (evt_, time-ordered, see
 * kw_id_new_ordered), type, occurred_at, credential_id, key_id, hint, slot, then the
 * fields particular to its type. It is inserted in the caller's open store transaction,
 * beside the change it reports. Must not: carry a secret (hints only). */
#ifndef KW_EVENTS_H
#define KW_EVENTS_H

#include <jansson.h>
#include <stdint.h>

#include "err.h"
#include "model.h"
#include "store/store.h"

/* Build the event `type` about key k at now, merge extra (may be NULL; consumed) into it
 * and insert it in the outbox. id_out (may be NULL) gets the event's id. */
int kw_event_raise(kw_store_t *st, const char *type, const kw_keyrec_t *k, int64_t now,
                   json_t *extra, char *id_out, kw_err_t *err);

#endif
