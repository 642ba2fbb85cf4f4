/* notify_abort.h - the shutdown's hold on deliveries in flight (notify_abort.c).
 *
 * After kw_notify_abort() every transfer armed with kw_notify_abortable() stops at once
 * (its sockets are shut down; libcurl's progress callback, called about once a second,
 * catches the rest), and no new one starts: a transfer that did not end in CURLE_OK while
 * kw_notify_aborted() holds is abandoned, not failed, and the channel answers
 * KW_SEND_ABORTED (notify_send.h) and the outbox leaves the delivery queued - never failed,
 * never delivered - so the next process sends it with the same webhook-id. */
#ifndef KW_NOTIFY_ABORT_H
#define KW_NOTIFY_ABORT_H

#include <stddef.h>

void kw_notify_abort(void);
int kw_notify_aborted(void);
void kw_notify_abortable(void *curl); /* a CURL * easy handle */
/* Arm the transfer (kw_notify_abortable) and perform it unless the shutdown has begun;
 * *cc gets its CURLcode, *status the response code. 1 when the shutdown abandoned it (error
 * says so: the channel answers KW_SEND_ABORTED), else 0. */
int kw_notify_perform(void *curl, int *cc, long *status, char *error, size_t errlen);

#endif
