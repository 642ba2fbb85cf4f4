/* store_notify.h - the durable state of alerts (SPEC §6): which expiry alerts a key has had,
 * the outbox's fan-out into per-channel deliveries and their retry state machine, disabled
 * webhooks, the e-mail quota, and the aggregate figures /metrics exports.
 * Same rules as store.h: writes need the caller's transaction (kw_store_begin), reads from
 * another thread see committed data; out-params only on success; arrays are malloc'd and
 * owned by the caller (free()). Backends implement kw_store_notify_ops_t. Design notes:
 * docs/internals/alerts.md. */
#ifndef KW_STORE_NOTIFY_H
#define KW_STORE_NOTIFY_H

#include "core/sink.h"
#include "store.h"

/* ---- expiry alerts (the scheduler) ---- */

typedef struct kw_alert_key {
    kw_keyrec_t key;
    char policy[KW_NAME_MAX];
    char cred_name[201];
    int64_t next_alert_at; /* as found: <= 0 = armed (see the rule below), > 0 = scheduled */
} kw_alert_key_t;

/* Alert arming: the contract every backend implements (SPEC §6, docs/internals/alerts.md).
 * A key's next_alert_at says when the scheduler must next look at it:
 *   NULL - nothing ahead: the key is revoked or never expires (alert_due never returns it);
 *   <= 0 - armed: due now, the scheduler recomputes the plan at its next look. 0 after a
 *        change; -created_at for a new key, so that a threshold crossed before the first
 *        look (service down) is raised late instead of skipped;
 *   > 0  - the time the scheduler chose (kw_store_alert_set_next).
 * Whatever code path writes (lifecycle, renewal, an admin tool, another node), the backend
 * arms in the same transaction as the write, with no help from the caller:
 *   1. key inserted with expires_at set and revoked_at unset: next_alert_at = -created_at
 *      (else it stays NULL);
 *   2. key updated with expires_at or revoked_at changed: 0 when revoked_at is unset and
 *      expires_at set (renewal, roll overlap), else NULL (revoked, made never-expiring);
 *   3. a credential's policy changed: 0 on each of its keys with revoked_at unset and
 *      expires_at set;
 *   4. a policy's thresholds changed: 0 on each such key of every credential using it.
 * Nothing else writes next_alert_at but kw_store_alert_set_next. SQLite does 1-4 with the
 * triggers keys_alert_arm_insert (rule 1, migration 6 in sqlite.c), keys_alert_arm_update,
 * credentials_alert_arm and policies_alert_arm (migration 3, sqlite_notify.c); PostgreSQL
 * with keys_alert_arm (kw_keys_arm), credentials_alert_arm and policies_alert_arm
 * (postgres_schema.c). Triggers stay the best way: they also cover writes made outside this
 * process. Watched credentials follow the same rule on their own column (store_watched.h).
 *
 * kw_store_alert_due: keys whose next_alert_at <= now, soonest first (armed ones first),
 * at most limit. Call inside the transaction that handles them. */
int kw_store_alert_due(kw_store_t *s, int64_t now, size_t limit, kw_alert_key_t **out, size_t *n,
                       kw_err_t *err);
/* Thresholds (seconds; 0 = the key.expired alert) already raised or skipped for this key
 * at this expires_at, into done[] (at most max). */
int kw_store_alert_done(kw_store_t *s, const char *key_id, int64_t expires_at, int64_t *done,
                        size_t max, size_t *n, kw_err_t *err);
/* Record one threshold as raised (event_id set) or skipped (event_id NULL). Needs a tx. */
int kw_store_alert_record(kw_store_t *s, const char *key_id, int64_t expires_at, int64_t threshold,
                          const char *event_id, int64_t at, kw_err_t *err);
/* The key's next alert time; 0 = nothing ahead (NULL). Needs a tx. */
int kw_store_alert_set_next(kw_store_t *s, const char *key_id, int64_t next, kw_err_t *err);

/* ---- outbox ---- */

typedef struct kw_event {
    int64_t seq;
    char id[KW_ID_MAX];
    char type[48];
    int64_t occurred_at;
    char *payload; /* owned JSON text */
} kw_event_t;
void kw_event_array_free(kw_event_t *a, size_t n); /* NULL allowed */

typedef struct kw_delivery {
    char event_id[KW_ID_MAX];
    char channel[KW_CHAN_NAME_MAX];
    char state[16]; /* pending, sending, delivered, failed, disabled, cancelled */
    int64_t attempts;
    int64_t next_attempt_at; /* 0 = none */
    int64_t delivered_at;    /* 0 = not delivered */
    int64_t created_at;
    char last_error[256];
    /* filled by claim: the event */
    char type[48];
    int64_t occurred_at;
    char *payload; /* owned by claim's array; free with kw_delivery_array_free */
} kw_delivery_t;
void kw_delivery_array_free(kw_delivery_t *a, size_t n);

/* Events not yet fanned out, oldest first. */
int kw_store_event_unfanned(kw_store_t *s, size_t limit, kw_event_t **out, size_t *n,
                            kw_err_t *err);
/* One delivery row per (event, channel), pending and due now; an existing row is kept
 * (idempotent). Needs a tx. */
int kw_store_delivery_add(kw_store_t *s, const char *event_id, const char *channel, int64_t now,
                          kw_err_t *err);
/* Mark the event fanned out (and remember its credential for the list filter). Needs a tx. */
int kw_store_event_fanned(kw_store_t *s, const char *event_id, const char *cred_id, int64_t now,
                          kw_err_t *err);
/* Claim due work: pending rows with next_attempt_at <= now and sending rows whose lease
 * ran out; each becomes sending, attempts + 1, next_attempt_at = lease_until. Needs a tx
 * (the claim is atomic: two workers or nodes never get the same row). */
int kw_store_delivery_claim(kw_store_t *s, int64_t now, int64_t lease_until, size_t limit,
                            kw_delivery_t **out, size_t *n, kw_err_t *err);
/* Write d's state, next_attempt_at, last_error and delivered_at. Needs a tx. */
int kw_store_delivery_finish(kw_store_t *s, const kw_delivery_t *d, kw_err_t *err);
/* After a restart of the only node: every sending row is due again now. Needs a tx. */
int kw_store_delivery_release(kw_store_t *s, int64_t now, size_t *n, kw_err_t *err);

typedef struct kw_event_filter {
    const char *type;    /* exact, NULL = any */
    const char *cred_id; /* exact, NULL = any */
    int64_t before_seq;  /* cursor: only seq < before_seq; 0 = newest */
    size_t limit;
} kw_event_filter_t;
/* Newest first. */
int kw_store_event_list(kw_store_t *s, const kw_event_filter_t *f, kw_event_t **out, size_t *n,
                        kw_err_t *err);
int kw_store_event_get(kw_store_t *s, const char *id, kw_event_t *out, kw_err_t *err);
/* An event's deliveries (payload NULL), by channel. */
int kw_store_delivery_list(kw_store_t *s, const char *event_id, kw_delivery_t **out, size_t *n,
                           kw_err_t *err);
/* Deliveries of the event that are failed, disabled or cancelled become pending, due now,
 * attempts 0; their channels are re-enabled. *n = rows reset. Needs a tx. */
int kw_store_event_retry(kw_store_t *s, const char *event_id, int64_t now, size_t *n,
                         kw_err_t *err);

/* ---- channels, quota ---- */

/* A webhook that answered 410 Gone: disabled until an event retry re-enables it. */
int kw_store_channel_disable(kw_store_t *s, const char *channel, const char *event_id, int64_t now,
                             kw_err_t *err);
int kw_store_channel_disabled(kw_store_t *s, const char *channel, int *disabled, kw_err_t *err);
/* Count one e-mail to rcpt on UTC day `day` if fewer than cap were sent; *ok = 1 when
 * counted, 0 when the cap is reached. Needs a tx. */
int kw_store_mail_quota_take(kw_store_t *s, const char *rcpt, int64_t day, int64_t cap, int *ok,
                             kw_err_t *err);

/* ---- figures for /metrics ---- */

/* Cheap figures only: each is one indexed query. Figures about keys come from the
 * verification index (src/server/metrics_expiry.c), never from a scan of the keys table. */
typedef struct kw_notify_stats {
    int64_t outbox_unfanned;    /* events not yet fanned out */
    int64_t deliveries_pending; /* pending + sending */
    int64_t oldest_pending_at;  /* occurred_at of the oldest, 0 = none */
    int64_t deliveries_failed;  /* failed + disabled, all time */
    int64_t renewals_pending;
    int64_t alerts_due; /* keys with next_alert_at <= now */
} kw_notify_stats_t;
/* Fill st. */
int kw_store_notify_stats(kw_store_t *s, int64_t now, kw_notify_stats_t *st, kw_err_t *err);

/* ---- backend ---- */

typedef struct kw_store_notify_ops {
    int (*alert_due)(kw_store_t *, int64_t, size_t, kw_alert_key_t **, size_t *, kw_err_t *);
    int (*alert_done)(kw_store_t *, const char *, int64_t, int64_t *, size_t, size_t *, kw_err_t *);
    int (*alert_record)(kw_store_t *, const char *, int64_t, int64_t, const char *, int64_t,
                        kw_err_t *);
    int (*alert_set_next)(kw_store_t *, const char *, int64_t, kw_err_t *);
    int (*event_unfanned)(kw_store_t *, size_t, kw_event_t **, size_t *, kw_err_t *);
    int (*delivery_add)(kw_store_t *, const char *, const char *, int64_t, kw_err_t *);
    int (*event_fanned)(kw_store_t *, const char *, const char *, int64_t, kw_err_t *);
    int (*delivery_claim)(kw_store_t *, int64_t, int64_t, size_t, kw_delivery_t **, size_t *,
                          kw_err_t *);
    int (*delivery_finish)(kw_store_t *, const kw_delivery_t *, kw_err_t *);
    int (*delivery_release)(kw_store_t *, int64_t, size_t *, kw_err_t *);
    int (*event_list)(kw_store_t *, const kw_event_filter_t *, kw_event_t **, size_t *, kw_err_t *);
    int (*event_get)(kw_store_t *, const char *, kw_event_t *, kw_err_t *);
    int (*delivery_list)(kw_store_t *, const char *, kw_delivery_t **, size_t *, kw_err_t *);
    int (*event_retry)(kw_store_t *, const char *, int64_t, size_t *, kw_err_t *);
    int (*channel_disable)(kw_store_t *, const char *, const char *, int64_t, kw_err_t *);
    int (*channel_disabled)(kw_store_t *, const char *, int *, kw_err_t *);
    int (*mail_quota_take)(kw_store_t *, const char *, int64_t, int64_t, int *, kw_err_t *);
    int (*stats)(kw_store_t *, int64_t, kw_notify_stats_t *, kw_err_t *);
} kw_store_notify_ops_t;

/* The ops by name, in the order above. A backend whose functions are named <p><op> (n_alert_due,
 * ...) fills its table with {KW_STORE_NOTIFY_OPS(KW_STORE_OP_INIT, n_)} (store_impl.h). */
#define KW_STORE_NOTIFY_OPS(X, p)                                                                  \
    X(p, alert_due)                                                                                \
    X(p, alert_done)                                                                               \
    X(p, alert_record)                                                                             \
    X(p, alert_set_next)                                                                           \
    X(p, event_unfanned)                                                                           \
    X(p, delivery_add)                                                                             \
    X(p, event_fanned)                                                                             \
    X(p, delivery_claim)                                                                           \
    X(p, delivery_finish)                                                                          \
    X(p, delivery_release)                                                                         \
    X(p, event_list)                                                                               \
    X(p, event_get)                                                                                \
    X(p, delivery_list)                                                                            \
    X(p, event_retry)                                                                              \
    X(p, channel_disable)                                                                          \
    X(p, channel_disabled)                                                                         \
    X(p, mail_quota_take)                                                                          \
    X(p, stats)

#endif
