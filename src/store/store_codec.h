/* store_codec.h - pure encode/decode of column values shared by the store backends (no I/O,
 * no database library): how a policy's alert thresholds are kept in one TEXT column, and
 * the row decoders both backends read their results with (through kw_row_src_t). */
#ifndef KW_STORE_CODEC_H
#define KW_STORE_CODEC_H

#include "../core/model.h"
#include "../core/renewal.h"
#include "store_notify.h"
#include "store_watched.h"

#include <stddef.h>
#include <stdint.h>

/* Buffer size that always holds kw_thresholds_format's output. */
#define KW_THRESHOLDS_TEXT_MAX (KW_MAX_THRESHOLDS * 22)

/* p's thresholds as "a,b,c" (decimal seconds, in order) into buf (always terminated). */
void kw_thresholds_format(const kw_policy_t *p, char *buf, size_t n);

/* The reverse: fills p->thresholds / p->nthresholds from s (NULL or "" = none); stops at
 * the first malformed item or at KW_MAX_THRESHOLDS. */
void kw_thresholds_parse(const char *s, kw_policy_t *p);

/* One result row, whichever backend read it. text: column col as text into *out, NULL for
 * SQL NULL; returns KW_ENOMEM when the backend could not produce the text (then *out is
 * NULL). i64: column col as an integer, 0 for NULL. The backend embeds this as the first
 * member of its own row struct (sqlite_watched.c, postgres_watched.c). */
typedef struct kw_row_src {
    int (*text)(const struct kw_row_src *r, int col, const char **out);
    int64_t (*i64)(const struct kw_row_src *r, int col);
} kw_row_src_t;

/* A KW_COLS_POLICY, KW_COLS_REN (or _R) or KW_COLS_DLV row into *out (zeroed first); never
 * fail (return 0), for the backends' row-type tables. */
int kw_row_policy(const kw_row_src_t *r, kw_policy_t *p);
int kw_row_renewal(const kw_row_src_t *r, kw_renewal_t *x);
int kw_row_delivery(const kw_row_src_t *r, kw_delivery_t *d);

/* An event row (seq, id, type, occurred_at, payload) into *e (zeroed first); a NULL payload
 * reads as "{}". e->payload is malloc'd: 0, or KW_ENOMEM with it NULL. */
int kw_row_event(const kw_row_src_t *r, kw_event_t *e);

/* A KW_COLS_WATCHED row (columns 0-37, store_cols.h) into *w (zeroed first). 0, or
 * KW_ENOMEM with *w cleared. */
int kw_row_watched(const kw_row_src_t *r, kw_watched_t *w);

#endif
