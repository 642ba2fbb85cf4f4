/* console.h - the web console (SPEC §11): the assets built into the binary, served at
 * /console/, and the console's sessions, which make a signed-in browser an admin principal
 * of the /v1 API (cookie + X-CSRF-Token). Design: docs/internals/console.md. */
#ifndef KW_CONSOLE_H
#define KW_CONSOLE_H

#include <stddef.h>

#include "api.h"

/* One file of web/, embedded by scripts/embed-web.sh into $(B)/gen/web_assets.c. */
typedef struct kw_asset {
    const char *name; /* "index.html", "app.js", ... */
    const char *ctype;
    const unsigned char *data;
    size_t len;
} kw_asset_t;
extern const kw_asset_t kw_web_assets[]; /* weak in console.c: absent = no files */
extern const size_t kw_web_nassets;

#define KW_CONSOLE_COOKIE "kw_session"

/* Is the console on (--console on)? */
int kw_console_enabled(const kw_server_t *s);

/* Does the request carry a console session cookie (and the console is on)? */
int kw_console_has_session(const kw_server_t *s, kw_req_t *rq);

/* Authenticate rq by its session cookie: on success sets rq->principal (the credential
 * of the key that signed in) and rq->roles (that credential's roles now) and returns 0.
 * A session that has ended (signed out, idle, past its absolute end, its key revoked or
 * expired, its credential disabled or deleted) is 401; a state-changing method without
 * the session's X-CSRF-Token is 403. Returns -1 with rs filled then. */
int kw_console_auth(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs);

/* Headers every response of kw_api_handle carries (CSP, frame denial, nosniff). */
void kw_console_headers(kw_resp_t *rs);

/* Handlers (routes in api.c). asset: GET /console/ and /console/FILE (open).
 * signin: POST /console/api/session with the key as Bearer (any reading role).
 * whoami: GET /console/api/session (open; {"signed_in": false} without a session).
 * signout: DELETE /console/api/session (open; needs the CSRF token when signed in). */
void kw_h_console_asset(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs);
void kw_h_console_signin(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs);
void kw_h_console_whoami(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs);
void kw_h_console_signout(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs);

#endif
