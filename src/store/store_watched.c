/* store_watched.c - the public kw_store_watched_* calls (store_watched.h): argument checks,
 * then dispatch through the backend's kw_store_watched_ops_t (sqlite_watched.c,
 * postgres_watched.c); and the model's helpers. No SQL, no I/O. kw_watched_clear and
 * kw_watched_copy are in store_codec.c, driven by the watched row's field table. */
#include "store_watched.h"

#include <stdlib.h>

#include "store_impl.h"

/* ---- helpers of the model ---- */

void kw_watched_array_free(kw_watched_t *a, size_t n)
{
    for (size_t i = 0; a && i < n; i++)
        kw_watched_clear(&a[i]);
    free(a);
}

int64_t kw_watched_alert_expiry(const kw_watched_t *w)
{
    if (w->expires_at > 0 && (w->refresh_expires_at == 0 || w->expires_at <= w->refresh_expires_at))
        return w->expires_at;
    return w->refresh_expires_at;
}

/* ---- the public calls: argument checks and dispatch ---- */

#define NEED(cond) KW_STORE_NEED(cond, NULL)
#define OPS(s) ((s)->watched)

int kw_store_watched_insert(kw_store_t *s, kw_watched_t *w, kw_err_t *err)
{
    NEED(s && w && OPS(s));
    return OPS(s)->insert(s, w, err);
}

int kw_store_watched_update(kw_store_t *s, const kw_watched_t *w, kw_err_t *err)
{
    NEED(s && w && OPS(s));
    return OPS(s)->update(s, w, err);
}

int kw_store_watched_get(kw_store_t *s, const char *id, kw_watched_t *out, kw_err_t *err)
{
    NEED(s && id && out && OPS(s));
    return OPS(s)->get(s, id, out, err);
}

int kw_store_watched_list(kw_store_t *s, const kw_watched_filter_t *f, kw_watched_t **out,
                          size_t *n, kw_err_t *err)
{
    NEED(s && f && out && n && f->limit >= 1 && OPS(s));
    return OPS(s)->list(s, f, out, n, err);
}

int kw_store_watched_refresh_due(kw_store_t *s, int64_t now_ms, size_t limit, kw_watched_t **out,
                                 size_t *n, kw_err_t *err)
{
    NEED(s && out && n && limit >= 1 && OPS(s));
    return OPS(s)->refresh_due(s, now_ms, limit, out, n, err);
}

int kw_store_watched_refresh_next(kw_store_t *s, int64_t *next_ms, kw_err_t *err)
{
    NEED(s && next_ms && OPS(s));
    return OPS(s)->refresh_next(s, next_ms, err);
}

int kw_store_watched_alert_due(kw_store_t *s, int64_t now, size_t limit, kw_watched_t **out,
                               int **armed, size_t *n, kw_err_t *err)
{
    NEED(s && out && armed && n && limit >= 1 && OPS(s));
    return OPS(s)->alert_due(s, now, limit, out, armed, n, err);
}

int kw_store_watched_alert_done(kw_store_t *s, const char *id, int64_t expires_at, int64_t *done,
                                size_t max, size_t *n, kw_err_t *err)
{
    NEED(s && id && done && n && OPS(s));
    return OPS(s)->alert_done(s, id, expires_at, done, max, n, err);
}

int kw_store_watched_alert_record(kw_store_t *s, const char *id, int64_t expires_at,
                                  int64_t threshold, const char *event_id, int64_t at,
                                  kw_err_t *err)
{
    NEED(s && id && OPS(s));
    return OPS(s)->alert_record(s, id, expires_at, threshold, event_id, at, err);
}

int kw_store_watched_alert_set_next(kw_store_t *s, const char *id, int64_t next, kw_err_t *err)
{
    NEED(s && id && OPS(s));
    return OPS(s)->alert_set_next(s, id, next, err);
}
