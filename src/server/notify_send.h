/* notify_send.h - the channels the outbox delivers through: one attempt's context and
 * outcome, and the three channels (notify_webhook.c, notify_email.c, notify_log.c). */
#ifndef KW_NOTIFY_SEND_H
#define KW_NOTIFY_SEND_H

#include <stdint.h>

#include "api.h"
#include "core/sink.h"

/* The outcome of one attempt. */
typedef enum {
    KW_SEND_OK = 0,  /* delivered */
    KW_SEND_RETRY,   /* try again later (timeout, 5xx, refused connection, ...) */
    KW_SEND_GONE,    /* 410: disable this webhook */
    KW_SEND_FAIL,    /* permanent: give up now */
    KW_SEND_LATER,   /* not now (e-mail quota): retry at *later_at, attempt not counted */
    KW_SEND_ABORTED, /* abandoned by the shutdown (notify_abort.h): stays queued, due now */
} kw_send_t;

typedef struct kw_send_ctx {
    kw_server_t *srv;
    const char *event_id, *type, *payload; /* payload: the event JSON */
    int64_t now;
    char error[256];  /* why, on anything but OK (never a secret) */
    int64_t later_at; /* KW_SEND_LATER */
} kw_send_ctx_t;

kw_send_t kw_notify_webhook(kw_send_ctx_t *c, const kw_chan_t *ch);
kw_send_t kw_notify_email(kw_send_ctx_t *c, const kw_chan_t *ch);
kw_send_t kw_notify_log(kw_send_ctx_t *c, const kw_chan_t *ch);

#endif
