/* alerts.h - what the scheduler owes a key (SPEC §6): given its policy's thresholds, its
 * expiry and which alerts it already had at that expiry, which one alert to raise now,
 * which to record as skipped, and when to look again. Pure: no store, no clock. */
#ifndef KW_ALERTS_H
#define KW_ALERTS_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"

#define KW_ALERT_EXPIRED 0 /* the "threshold" of the key.expired alert */
#define KW_ALERT_NONE (-1)

typedef struct kw_alert_plan {
    int64_t raise;                       /* threshold seconds, KW_ALERT_EXPIRED, or NONE */
    int64_t skip[KW_MAX_THRESHOLDS + 1]; /* record these as skipped */
    size_t nskip;
    int64_t next_at; /* when to look again; 0 = nothing ahead */
} kw_alert_plan_t;

/* thr: the policy's thresholds (seconds, any order, values <= 0 ignored); done: those
 * already raised or skipped at this expires_at (0 = key.expired).
 *
 * armed = 1 when the key was (re)armed since the last look (created, renewed, rolled,
 * policy changed): thresholds already behind it are skipped silently, since they were
 * crossed before the current expiry existed, and key.expired is raised only if the key
 * expired less than expired_grace seconds ago. armed = 0 (a scheduled look, possibly late
 * after downtime): every passed threshold is due; the most urgent one is raised and the
 * rest skipped. */
void kw_alert_plan(const int64_t *thr, size_t nthr, int64_t expires_at, int64_t now,
                   const int64_t *done, size_t ndone, int armed, int64_t expired_grace,
                   kw_alert_plan_t *out);

/* As kw_alert_plan for a key armed at a known time armed_at (> 0; a new key: its creation):
 * thresholds crossed at or before armed_at are behind the key and skipped silently, those crossed
 * since are due even though no look happened in between (the service was down), so they
 * are raised late rather than never (SPEC section 6). */
void kw_alert_plan_since(const int64_t *thr, size_t nthr, int64_t expires_at, int64_t now,
                         const int64_t *done, size_t ndone, int64_t armed_at, int64_t expired_grace,
                         kw_alert_plan_t *out);

#endif
