/* oauth.h - the OAuth2 side of the server (SPEC §13, h_oauth.c): the token signing key
 * (sealed in the store under --secrets-key-file), the token, introspection, revocation and
 * metadata endpoints, and the batched audit of issued tokens. */
#ifndef KW_OAUTH_H
#define KW_OAUTH_H

#include "api.h"
#include "core/token.h"

/* Load (or create, once, in the store) the token key and the revoked tokens; sets
 * s->oauth. Needs the store open. Returns 0 or KW_E* with err filled. */
int kw_oauth_start(kw_server_t *s, kw_err_t *err);
/* Write queued issuance records to the audit trail, reload revocations (other nodes'),
 * drop expired ones. Called by the usage thread; also at stop. */
void kw_oauth_flush(kw_server_t *s);
void kw_oauth_stop(kw_server_t *s); /* flushes, frees s->oauth */

/* The token state for verification (NULL before start: keys only). */
kw_tokens_t *kw_oauth_tokens(kw_server_t *s);

void kw_h_oauth_token(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs);
void kw_h_oauth_introspect(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs);
void kw_h_oauth_revoke(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs);
void kw_h_oauth_metadata(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs);

/* Metrics (metrics.c): issued tokens, refused token requests, revocations, introspections. */
enum { KW_OAUTH_ISSUED, KW_OAUTH_REFUSED, KW_OAUTH_REVOKED, KW_OAUTH_INTROSPECTED, KW_OAUTH_KINDS };
void kw_metrics_oauth(int kind);

#endif
