/* watched.h - watched credentials on the server side (SPEC §12): the /v1/watched handlers
 * (h_watched.c), the OAuth2 refresher thread (refresher.c), their expiry alerts
 * (watched_alerts.c), the secrets key (secrets.c) and their /metrics series. */
#ifndef KW_WATCHED_H
#define KW_WATCHED_H

#include <stdint.h>

#include "api.h"
#include "store/store_watched.h"

/* ---- secrets.c: the server's sealing key (core/seal.h) ---- */

/* Load (with create = 1: create, mode 0600) the key file: cfg.secrets_key_file, else
 * beside the SQLite file as keyward.secrets-key. Sets srv->seal. */
int kw_secrets_start(kw_server_t *srv, kw_err_t *err);
void kw_secrets_stop(kw_server_t *srv);
/* The key file's path (for messages), into out. */
void kw_secrets_path(const kw_server_t *srv, char *out, size_t n);
/* Seal text (NUL-terminated) with ad; *out malloc'd sealed text, NULL when text is NULL. */
int kw_secrets_seal(kw_server_t *srv, const char *ad, const char *text, char **out, kw_err_t *err);
/* Open sealed (NULL gives *out = NULL); *out malloc'd plaintext the caller wipes
 * (kw_secrets_free). */
int kw_secrets_open(kw_server_t *srv, const char *ad, const char *sealed, char **out,
                    kw_err_t *err);
void kw_secrets_free(char *p); /* wipes and frees; NULL allowed */
/* Add a key to the key file and re-seal every stored secret under it, in one store
 * transaction (audited as secrets.rotate_key by actor). *resealed = values re-sealed. */
int kw_secrets_rotate(kw_server_t *srv, const char *actor, int64_t now, size_t *resealed,
                      kw_err_t *err);
/* "first4…last4" style hint of a secret (never more than 8 of its characters, fewer for
 * short ones). */
void kw_secret_hint(const char *secret, char out[KW_WATCHED_HINT_MAX]);

/* ---- h_watched.c ---- */
void kw_h_watched_create(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs);
void kw_h_watched_list(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs);
void kw_h_watched_get(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs);
void kw_h_watched_patch(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs);
void kw_h_watched_delete(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs);
void kw_h_watched_token(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs);
void kw_h_secrets_rotate(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs);

/* ---- refresher.c ---- */
typedef struct kw_refresher kw_refresher_t;
/* Start the thread; due refreshes left by a previous process are spread out. */
int kw_refresher_start(kw_server_t *srv, kw_refresher_t **out, kw_err_t *err);
void kw_refresher_stop(kw_refresher_t *r); /* NULL allowed; joins */
void kw_refresher_wake(kw_refresher_t *r); /* a watched credential changed; NULL allowed */
/* The token file of w (if any) now holds token, written atomically with mode 0600. */
int kw_watched_write_token_file(const char *path, const char *token, kw_err_t *err);

/* ---- watched_alerts.c ---- */
/* One scheduler pass over watched credentials whose expiry alerts are due. Returns alerts
 * raised or KW_E*. */
int kw_watched_alerts_run(kw_server_t *srv, int64_t now, kw_err_t *err);
/* Insert a watched.* event for w inside the caller's transaction; extra (consumed, may be
 * NULL) adds fields. evid receives the event id. */
int kw_watched_event(kw_server_t *srv, const char *type, const kw_watched_t *w, int64_t now,
                     json_t *extra, char evid[KW_ID_MAX], kw_err_t *err);

/* ---- metrics (refresher.c) ---- */
void kw_metrics_oauth_refresh(const char *id, int ok);
/* The §12 series as Prometheus text (malloc'd, caller frees; NULL when out of memory). */
char *kw_metrics_watched_text(kw_server_t *srv, int64_t now);

#endif
