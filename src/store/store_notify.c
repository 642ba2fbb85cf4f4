/* store_notify.c - the public kw_store_* calls of store_notify.h: argument checks, then
 * dispatch through the backend's kw_store_notify_ops_t. No SQL, no I/O. */
#include "store_notify.h"

#include "store_impl.h"

#define NEED(cond) KW_STORE_NEED(cond, NULL)
#define OPS(s) ((s)->notify)
#define HAVE(s)                                                                                    \
    do {                                                                                           \
        if ((s) == NULL || (s)->notify == NULL)                                                    \
            return kw_err_set(err, KW_EINTERNAL, NULL, "store: backend has no outbox");            \
    } while (0)

int kw_store_alert_due(kw_store_t *s, int64_t now, size_t limit, kw_alert_key_t **out, size_t *n,
                       kw_err_t *err)
{
    HAVE(s);
    NEED(out && n && limit >= 1);
    return OPS(s)->alert_due(s, now, limit, out, n, err);
}

int kw_store_alert_done(kw_store_t *s, const char *key_id, int64_t expires_at, int64_t *done,
                        size_t max, size_t *n, kw_err_t *err)
{
    HAVE(s);
    NEED(key_id && done && n);
    return OPS(s)->alert_done(s, key_id, expires_at, done, max, n, err);
}

int kw_store_alert_record(kw_store_t *s, const char *key_id, int64_t expires_at, int64_t threshold,
                          const char *event_id, int64_t at, kw_err_t *err)
{
    HAVE(s);
    NEED(key_id && threshold >= 0);
    return OPS(s)->alert_record(s, key_id, expires_at, threshold, event_id, at, err);
}

int kw_store_alert_set_next(kw_store_t *s, const char *key_id, int64_t next, kw_err_t *err)
{
    HAVE(s);
    NEED(key_id);
    return OPS(s)->alert_set_next(s, key_id, next, err);
}

int kw_store_event_unfanned(kw_store_t *s, size_t limit, kw_event_t **out, size_t *n, kw_err_t *err)
{
    HAVE(s);
    NEED(out && n && limit >= 1);
    return OPS(s)->event_unfanned(s, limit, out, n, err);
}

int kw_store_delivery_add(kw_store_t *s, const char *event_id, const char *channel, int64_t now,
                          kw_err_t *err)
{
    HAVE(s);
    NEED(event_id && channel && *channel);
    return OPS(s)->delivery_add(s, event_id, channel, now, err);
}

int kw_store_event_fanned(kw_store_t *s, const char *event_id, const char *cred_id, int64_t now,
                          kw_err_t *err)
{
    HAVE(s);
    NEED(event_id);
    return OPS(s)->event_fanned(s, event_id, cred_id, now, err);
}

int kw_store_delivery_claim(kw_store_t *s, int64_t now, int64_t lease_until, size_t limit,
                            kw_delivery_t **out, size_t *n, kw_err_t *err)
{
    HAVE(s);
    NEED(out && n && limit >= 1 && lease_until > now);
    return OPS(s)->delivery_claim(s, now, lease_until, limit, out, n, err);
}

int kw_store_delivery_finish(kw_store_t *s, const kw_delivery_t *d, kw_err_t *err)
{
    HAVE(s);
    NEED(d);
    return OPS(s)->delivery_finish(s, d, err);
}

int kw_store_delivery_release(kw_store_t *s, int64_t now, size_t *n, kw_err_t *err)
{
    HAVE(s);
    NEED(n);
    return OPS(s)->delivery_release(s, now, n, err);
}

int kw_store_event_list(kw_store_t *s, const kw_event_filter_t *f, kw_event_t **out, size_t *n,
                        kw_err_t *err)
{
    HAVE(s);
    NEED(f && out && n && f->limit >= 1);
    return OPS(s)->event_list(s, f, out, n, err);
}

int kw_store_event_get(kw_store_t *s, const char *id, kw_event_t *out, kw_err_t *err)
{
    HAVE(s);
    NEED(id && out);
    return OPS(s)->event_get(s, id, out, err);
}

int kw_store_delivery_list(kw_store_t *s, const char *event_id, kw_delivery_t **out, size_t *n,
                           kw_err_t *err)
{
    HAVE(s);
    NEED(event_id && out && n);
    return OPS(s)->delivery_list(s, event_id, out, n, err);
}

int kw_store_event_retry(kw_store_t *s, const char *event_id, int64_t now, size_t *n, kw_err_t *err)
{
    HAVE(s);
    NEED(event_id && n);
    return OPS(s)->event_retry(s, event_id, now, n, err);
}

int kw_store_channel_disable(kw_store_t *s, const char *channel, const char *event_id, int64_t now,
                             kw_err_t *err)
{
    HAVE(s);
    NEED(channel);
    return OPS(s)->channel_disable(s, channel, event_id, now, err);
}

int kw_store_channel_disabled(kw_store_t *s, const char *channel, int *disabled, kw_err_t *err)
{
    HAVE(s);
    NEED(channel && disabled);
    return OPS(s)->channel_disabled(s, channel, disabled, err);
}

int kw_store_mail_quota_take(kw_store_t *s, const char *rcpt, int64_t day, int64_t cap, int *ok,
                             kw_err_t *err)
{
    HAVE(s);
    NEED(rcpt && ok);
    return OPS(s)->mail_quota_take(s, rcpt, day, cap, ok, err);
}

int kw_store_notify_stats(kw_store_t *s, int64_t now, kw_notify_stats_t *st, kw_err_t *err)
{
    HAVE(s);
    NEED(st);
    return OPS(s)->stats(s, now, st, err);
}
