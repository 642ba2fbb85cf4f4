/* follow.h - a node on a shared (PostgreSQL) store follows the change feed: every change
 * another node commits reaches this node's verification index, in commit order, within
 * a NOTIFY round trip (or --sync-interval when notifications are lost). Also tracks
 * whether the store answers, for /readyz. Design: docs/internals/store.md. */
#ifndef KW_FOLLOW_H
#define KW_FOLLOW_H

#include <stdint.h>

#include "../core/err.h"

struct kw_server;
typedef struct kw_follow kw_follow_t;

/* Start following after feed seq `from` (read before the index was loaded, so nothing
 * committed during the load is missed; re-applying a row is harmless). */
int kw_follow_start(struct kw_server *srv, int64_t from, kw_follow_t **out, kw_err_t *err);
void kw_follow_stop(kw_follow_t *f); /* NULL allowed */
/* 1 while the last feed read succeeded (the store answers), 0 after it failed. */
int kw_follow_healthy(kw_follow_t *f);

#endif
