/* alerts.c - the expiry-alert rule (see alerts.h): at most one alert per look, the most
 * urgent one due; everything else due is recorded as skipped so it is never raised late. */
#include "alerts.h"

static int has(const int64_t *a, size_t n, int64_t v)
{
    for (size_t i = 0; i < n; i++)
        if (a[i] == v)
            return 1;
    return 0;
}

void kw_alert_plan(const int64_t *thr, size_t nthr, int64_t expires_at, int64_t now,
                   const int64_t *done, size_t ndone, int armed, int64_t expired_grace,
                   kw_alert_plan_t *out)
{
    int64_t cand[KW_MAX_THRESHOLDS + 1];
    size_t nc = 0;
    out->raise = KW_ALERT_NONE;
    out->nskip = 0;
    out->next_at = 0;
    if (expires_at <= 0)
        return;
    /* candidates: distinct positive thresholds, then key.expired */
    for (size_t i = 0; i < nthr && nc < KW_MAX_THRESHOLDS; i++)
        if (thr[i] > 0 && !has(cand, nc, thr[i]))
            cand[nc++] = thr[i];
    cand[nc++] = KW_ALERT_EXPIRED;

    int64_t best = KW_ALERT_NONE;
    for (size_t i = 0; i < nc; i++) {
        int64_t t = cand[i];
        if (has(done, ndone, t))
            continue;
        int64_t at = expires_at - t;
        if (at > now) {
            if (out->next_at == 0 || at < out->next_at)
                out->next_at = at;
            continue;
        }
        /* due */
        int fire = 1;
        if (armed)
            fire = t == KW_ALERT_EXPIRED && now - expires_at < expired_grace;
        if (fire && (best == KW_ALERT_NONE || t < best)) {
            if (best != KW_ALERT_NONE)
                out->skip[out->nskip++] = best;
            best = t;
        } else {
            out->skip[out->nskip++] = t;
        }
    }
    out->raise = best;
}

void kw_alert_plan_since(const int64_t *thr, size_t nthr, int64_t expires_at, int64_t now,
                         const int64_t *done, size_t ndone, int64_t armed_at, int64_t expired_grace,
                         kw_alert_plan_t *out)
{
    int64_t done2[2 * (KW_MAX_THRESHOLDS + 1)], pre[KW_MAX_THRESHOLDS + 1];
    size_t n2 = 0, npre = 0;
    for (size_t i = 0; i < ndone && n2 < KW_MAX_THRESHOLDS + 1; i++)
        done2[n2++] = done[i];
    for (size_t i = 0; i < nthr && npre < KW_MAX_THRESHOLDS; i++) {
        int64_t t = thr[i];
        if (t > 0 && !has(done2, n2, t) && expires_at - t <= armed_at) {
            pre[npre++] = t; /* crossed when (or before) the key was armed */
            done2[n2++] = t;
        }
    }
    kw_alert_plan(thr, nthr, expires_at, now, done2, n2, 0, expired_grace, out);
    for (size_t i = 0; i < npre && out->nskip < KW_MAX_THRESHOLDS + 1; i++)
        out->skip[out->nskip++] = pre[i];
}
