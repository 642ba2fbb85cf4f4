/* notify_log.c - the log channel: one JSON line per event on the daemon's log (kw_log),
 * {"msg":"event","event":{...}} - the event as stored, which never holds a secret. */
#include <jansson.h>
#include <stdio.h>

#include "log.h"
#include "notify_send.h"

kw_send_t kw_notify_log(kw_send_ctx_t *c, const kw_chan_t *ch)
{
    (void)ch;
    json_t *ev = json_loads(c->payload, 0, NULL);
    if (ev == NULL) {
        snprintf(c->error, sizeof(c->error), "event payload is not JSON");
        return KW_SEND_FAIL;
    }
    kw_log(KW_LOG_INFO, "event", "{s:o}", "event", ev); /* "o" steals ev */
    return KW_SEND_OK;
}
