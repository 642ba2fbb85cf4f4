/* store_watched.h - durable state of watched credentials (SPEC §12): keys and OAuth2 clients
 * that others issued, their sealed secrets (core/seal.h: the store never sees plaintext),
 * the refresher's state, and which expiry alerts each has had.
 * Same rules as store.h: writes need the caller's transaction (kw_store_begin); reads from
 * another thread see committed data; out-params are written only on success; arrays are
 * malloc'd and owned by the caller (kw_watched_array_free). Backends implement
 * kw_store_watched_ops_t (sqlite_watched.c, postgres_watched.c); the calls below check
 * their arguments and dispatch in store_watched.c. */
#ifndef KW_STORE_WATCHED_H
#define KW_STORE_WATCHED_H

#include "store.h"

#define KW_WATCHED_HINT_MAX 24

/* One watched credential. Owned strings (char *) are malloc'd, NULL when absent; free with
 * kw_watched_clear. *_sealed hold sealed text (core/seal.h), never a plaintext secret.
 * Times ending in _ms are unix milliseconds (the refresher's precision), others seconds;
 * 0 = none. */
typedef struct kw_watched {
    int64_t seq;
    char id[KW_ID_MAX]; /* wat_... */
    char name[201];
    char *provider, *owner;
    char *contacts_json; /* JSON array, as credentials' contacts */
    char policy[KW_NAME_MAX];
    char kind[8]; /* "static" | "oauth2" */
    char *secret_sealed;
    char secret_hint[KW_WATCHED_HINT_MAX];
    int64_t expires_at; /* the secret's (or client secret's) expiry as the provider said */
    /* oauth2 */
    char *token_url;
    char grant_type[24]; /* client_credentials | refresh_token */
    char *client_id;
    char *client_secret_sealed;
    char client_secret_hint[KW_WATCHED_HINT_MAX];
    char *refresh_token_sealed;      /* the one to use next */
    char *refresh_token_prev_sealed; /* the one it replaced, kept until the new one is
                                        confirmed by a successful refresh */
    char refresh_token_hint[KW_WATCHED_HINT_MAX];
    int64_t refresh_expires_at; /* refresh grant's own end (refresh_expires_in), 0 = unknown */
    char *scope;
    char auth_method[8]; /* basic | post */
    char *token_file;
    /* the current access token */
    char *access_token_sealed;
    char token_type[32];
    int64_t token_obtained_ms, token_expires_ms;
    int token_lapse_raised; /* watched.expired raised for this token's lapse */
    /* refresher state */
    int64_t next_refresh_ms; /* 0 = now */
    int64_t failures;
    char last_error[256];
    int64_t last_status; /* HTTP status of the last attempt, 0 = none/transport */
    int64_t last_attempt_ms, last_success_ms;
    int64_t gen; /* bumped by every change through the API: the refresher drops a result
                    obtained under an older configuration */
    int64_t created_at, updated_at, deleted_at;
} kw_watched_t;

void kw_watched_clear(kw_watched_t *w);                          /* frees owned strings, zeroes */
void kw_watched_array_free(kw_watched_t *a, size_t n);           /* NULL allowed */
int kw_watched_copy(kw_watched_t *dst, const kw_watched_t *src); /* 0 or KW_ENOMEM */

/* insert sets w->seq (KW_ECONFLICT for an existing id, KW_EINVAL field "policy" for an
 * unknown policy). update writes every field but id/seq/created_at (KW_ENOTFOUND for an
 * unknown id). A change of expires_at or refresh_expires_at re-arms the expiry alerts
 * (schema trigger). get: KW_ENOTFOUND for unknown or deleted ids. */
int kw_store_watched_insert(kw_store_t *s, kw_watched_t *w, kw_err_t *err);
int kw_store_watched_update(kw_store_t *s, const kw_watched_t *w, kw_err_t *err);
int kw_store_watched_get(kw_store_t *s, const char *id, kw_watched_t *out, kw_err_t *err);

typedef struct kw_watched_filter {
    const char *owner;       /* exact, NULL = any */
    const char *kind;        /* exact, NULL = any */
    int64_t expiring_before; /* 0 = no filter; else now < alert expiry <= expiring_before */
    int64_t now;
    int64_t after_seq; /* cursor */
    size_t limit;      /* >= 1 */
} kw_watched_filter_t;
/* Non-deleted watched credentials matching f, by seq ascending. */
int kw_store_watched_list(kw_store_t *s, const kw_watched_filter_t *f, kw_watched_t **out,
                          size_t *n, kw_err_t *err);

/* The refresher: non-deleted oauth2 rows with next_refresh_ms <= now_ms, soonest first;
 * and the soonest next_refresh_ms of all (0 when there is none). */
int kw_store_watched_refresh_due(kw_store_t *s, int64_t now_ms, size_t limit, kw_watched_t **out,
                                 size_t *n, kw_err_t *err);
int kw_store_watched_refresh_next(kw_store_t *s, int64_t *next_ms, kw_err_t *err);

/* Expiry alerts, as store_notify.h's for keys. The alert expiry of a row is the sooner of
 * expires_at and refresh_expires_at (non-zero ones). alert_due: rows whose next_alert_at
 * <= now (0 = re-armed since the last look, reported in *armed per row). */
int kw_store_watched_alert_due(kw_store_t *s, int64_t now, size_t limit, kw_watched_t **out,
                               int **armed, size_t *n, kw_err_t *err);
int kw_store_watched_alert_done(kw_store_t *s, const char *id, int64_t expires_at, int64_t *done,
                                size_t max, size_t *n, kw_err_t *err);
int kw_store_watched_alert_record(kw_store_t *s, const char *id, int64_t expires_at,
                                  int64_t threshold, const char *event_id, int64_t at,
                                  kw_err_t *err);
int kw_store_watched_alert_set_next(kw_store_t *s, const char *id, int64_t next, kw_err_t *err);

/* The alert expiry of w (see above); 0 = none. */
int64_t kw_watched_alert_expiry(const kw_watched_t *w);

typedef struct kw_store_watched_ops {
    int (*insert)(kw_store_t *, kw_watched_t *, kw_err_t *);
    int (*update)(kw_store_t *, const kw_watched_t *, kw_err_t *);
    int (*get)(kw_store_t *, const char *, kw_watched_t *, kw_err_t *);
    int (*list)(kw_store_t *, const kw_watched_filter_t *, kw_watched_t **, size_t *, kw_err_t *);
    int (*refresh_due)(kw_store_t *, int64_t, size_t, kw_watched_t **, size_t *, kw_err_t *);
    int (*refresh_next)(kw_store_t *, int64_t *, kw_err_t *);
    int (*alert_due)(kw_store_t *, int64_t, size_t, kw_watched_t **, int **, size_t *, kw_err_t *);
    int (*alert_done)(kw_store_t *, const char *, int64_t, int64_t *, size_t, size_t *, kw_err_t *);
    int (*alert_record)(kw_store_t *, const char *, int64_t, int64_t, const char *, int64_t,
                        kw_err_t *);
    int (*alert_set_next)(kw_store_t *, const char *, int64_t, kw_err_t *);
} kw_store_watched_ops_t;

/* The ops by name, in the order above: see KW_STORE_NOTIFY_OPS (store_notify.h). */
#define KW_STORE_WATCHED_OPS(X, p)                                                                 \
    X(p, insert)                                                                                   \
    X(p, update)                                                                                   \
    X(p, get)                                                                                      \
    X(p, list)                                                                                     \
    X(p, refresh_due)                                                                              \
    X(p, refresh_next)                                                                             \
    X(p, alert_due)                                                                                \
    X(p, alert_done)                                                                               \
    X(p, alert_record)                                                                             \
    X(p, alert_set_next)

#endif
