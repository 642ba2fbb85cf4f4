/* api.h - the server's shared state and the handlers of the /v1 API (SPEC §4, §5, §8). */
#ifndef KW_API_H
#define KW_API_H

#include "app/config.h"
#include "core/index.h"
#include "core/lifecycle.h"
#include "http.h"
#include "store/store.h"

/* Roles (SPEC §8) as bits of kw_req_t.roles. */
enum {
    KW_ROLE_ADMIN = 1u << 0,
    KW_ROLE_OPERATOR = 1u << 1,
    KW_ROLE_APPROVER = 1u << 2,
    KW_ROLE_AUDITOR = 1u << 3,
    KW_ROLE_VERIFIER = 1u << 4,
};

/* What a route needs: a set of roles, any of which suffices (0 = open). */
#define KW_NEED_OPEN 0u
#define KW_NEED_READ (KW_ROLE_ADMIN | KW_ROLE_OPERATOR | KW_ROLE_APPROVER | KW_ROLE_AUDITOR)
#define KW_NEED_CRED_WRITE (KW_ROLE_ADMIN | KW_ROLE_OPERATOR)
#define KW_NEED_ADMIN KW_ROLE_ADMIN
#define KW_NEED_RENEW (KW_ROLE_ADMIN | KW_ROLE_OPERATOR)  /* renew / request renewal */
#define KW_NEED_DECIDE (KW_ROLE_ADMIN | KW_ROLE_APPROVER) /* approve / reject renewals */
#define KW_NEED_AUDIT (KW_ROLE_ADMIN | KW_ROLE_AUDITOR)   /* read and verify the trail */

typedef struct kw_server {
    kw_config_t cfg;
    kw_store_t *store;
    kw_index_t *index;
    kw_lc_t lc;
    int ready;
    struct kw_ratelimit *authrl; /* failed admin authentication per address; NULL = off */
    struct kw_outbox *outbox;    /* alert delivery workers (outbox.h); NULL until started */
    struct kw_oauth *oauth;      /* OAuth2 tokens (oauth.h); NULL until started */
    struct kw_mail_set *mail;    /* e-mail templates (mail_msg.h), loaded at start */
    /* Seals stored secrets (core/seal.h) under --secrets-key-file; opened at start-up,
     * before the store is used, and given to the store (kw_store_set_seal). */
    struct kw_seal *seal;
    struct kw_follow *follow; /* change feed follower (follow.h); NULL: single node */
    struct kw_refresher
        *refresher; /* OAuth2 refresher of watched credentials; NULL until started */
} kw_server_t;

/* The HTTP entry point (kw_http_handler_fn): routing, authentication, dispatch. */
void kw_api_handle(void *srv, kw_req_t *rq, kw_resp_t *rs);

/* The gateway fast path's entry point (kw_http_opts_t.gateway): GET /v1/auth or
 * POST /v1/keys/verify, already recognised, answered exactly as kw_api_handle would. */
void kw_api_gateway(void *srv, kw_req_t *rq, kw_resp_t *rs);

/* Deepest array/object nesting a request body may have (the body object itself is 1). */
#define KW_API_JSON_MAX_DEPTH 32

/* Parse the request body as a JSON object allowing only the listed fields (NULL-ended).
 * Empty body = {}; nesting deeper than KW_API_JSON_MAX_DEPTH is refused before parsing.
 * On failure fills rs with a problem and returns NULL. */
json_t *kw_api_body(kw_req_t *rq, kw_resp_t *rs, const char *const *allowed);

/* Copy request text into out (n bytes) for an error message, with any run of
 * KW_API_ECHO_RUN or more letters and digits - a key's secret, never an id - replaced by
 * "...". Returns out. */
#define KW_API_ECHO_RUN 32
const char *kw_api_echo(const char *in, char *out, size_t n);

/* Renderers (new references; NULL on allocation failure). */
json_t *kw_api_key_json(const kw_keyrec_t *k, int64_t now);
/* Contacts (JSON text; NULL = none) as shown to readers: a webhook's secret is never echoed
 * back, "has_secret": true stands for it. */
json_t *kw_api_contacts_public(const char *text);
json_t *kw_api_cred_json(kw_server_t *srv, const kw_cred_t *c, int64_t now, kw_err_t *err);
/* The same from keys the caller has (newest first; usage not yet flushed is merged into
 * them), without reading the store: for an answer about a change just committed. */
json_t *kw_api_cred_json_keys(kw_server_t *srv, const kw_cred_t *c, kw_keyrec_t *keys, size_t n,
                              int64_t now, kw_err_t *err);

/* Handlers: credentials (h_creds.c), keys and expiring (h_keys.c), policies (h_policies.c),
 * verification (h_verify.c). */
void kw_h_cred_create(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs);
void kw_h_cred_list(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs);
void kw_h_cred_get(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs);
void kw_h_cred_patch(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs);
void kw_h_cred_delete(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs);
void kw_h_key_new(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs);
void kw_h_key_get(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs);
void kw_h_key_roll(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs);
void kw_h_key_invalidate(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs);
void kw_h_expiring(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs);
void kw_h_policy_list(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs);
void kw_h_policy_get(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs);
void kw_h_policy_create(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs);
void kw_h_policy_patch(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs);
void kw_h_verify(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs);
/* Renewals (h_renewals.c) and the audit trail (h_audit.c). */
void kw_h_key_renew(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs);
void kw_h_renewal_list(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs);
void kw_h_renewal_get(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs);
void kw_h_renewal_approve(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs);
void kw_h_renewal_reject(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs);
void kw_h_audit_list(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs);
void kw_h_audit_verify(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs);
void kw_h_audit_archive(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs); /* security */
/* Events and their deliveries (h_events.c). */
void kw_h_event_list(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs);
void kw_h_event_get(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs);
void kw_h_event_retry(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs);
/* Append an "admin.request" record with outcome "denied" for a refused request (its own
 * transaction; a failure is logged, the refusal stands). route is the matched pattern;
 * the actor is rq->principal when the presented key was known, else "anonymous". */
void kw_api_audit_denied(kw_server_t *s, kw_req_t *rq, const char *route, int status,
                         const char *client);
void kw_h_auth(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs);
/* GET /v1/openapi.json (h_openapi.c): the embedded OpenAPI document. */
void kw_h_openapi(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs);

/* The key a request presents: Authorization: Bearer <key>, else X-API-Key; NULL if none.
 * Points into the request's headers. */
const char *kw_api_request_key(kw_req_t *rq);

/* The `limit` query parameter: dflt when absent, else an integer in 1..max; otherwise fills
 * rs with a 400 naming the field and returns -1. */
int kw_api_query_limit(kw_req_t *rq, kw_resp_t *rs, size_t dflt, size_t max, size_t *out);
/* A list page: 200 with {"items": items (taken; NULL answers []), "next": next}, next being
 * null when NULL or empty. kw_api_page_seq: the cursor is seq when more is set, else null. */
void kw_api_page(kw_resp_t *rs, json_t *items, const char *next);
void kw_api_page_seq(kw_resp_t *rs, json_t *items, int more, int64_t seq);

/* The address failed authentications are counted against (trusted header, else the peer). */
const char *kw_api_client_addr(kw_server_t *s, kw_req_t *rq, char *buf, size_t len);
/* A contacts array from a request (shape-checked, as credentials take it; h_creds.c):
 * *out gets its compact JSON text (malloc'd). 0, or -1 with a 400 in rs (h_common.h's
 * convention: the answer carries the code). */
int kw_api_parse_contacts(json_t *v, char **out, kw_resp_t *rs);

/* Roles carried by a credential's scopes. */
unsigned kw_api_roles(const kw_icred_t *c);
/* The role bit one scope string grants (0 for none). */
unsigned kw_api_role_of(const char *scope);

#endif
