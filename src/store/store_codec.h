/* store_codec.h - pure encode/decode of column values shared by the store backends (no I/O,
 * no database library): how a policy's alert thresholds are kept in one TEXT column. */
#ifndef KW_STORE_CODEC_H
#define KW_STORE_CODEC_H

#include "../core/model.h"

#include <stddef.h>

/* Buffer size that always holds kw_thresholds_format's output. */
#define KW_THRESHOLDS_TEXT_MAX (KW_MAX_THRESHOLDS * 22)

/* p's thresholds as "a,b,c" (decimal seconds, in order) into buf (always terminated). */
void kw_thresholds_format(const kw_policy_t *p, char *buf, size_t n);

/* The reverse: fills p->thresholds / p->nthresholds from s (NULL or "" = none); stops at
 * the first malformed item or at KW_MAX_THRESHOLDS. */
void kw_thresholds_parse(const char *s, kw_policy_t *p);

#endif
