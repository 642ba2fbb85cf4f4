/* contacts.h - what a credential's alert contacts must satisfy beyond their JSON shape
 * (contacts.c). */
#ifndef KW_CONTACTS_H
#define KW_CONTACTS_H

#include "api.h"

/* Credential contacts from a request (a JSON array already shape-checked by
 * kw_api_parse_contacts): webhook URLs pass the SSRF guard (urlguard.h), a given secret must
 * be whsec_<base64 of 16..64 bytes>, a webhook without one keeps the secret of the existing
 * contact with the same URL (existing_json, may be NULL) or gets a new one, listed in
 * *generated (a JSON array of {"url", "signing_secret"}, NULL if none; caller decrefs).
 * *text is replaced. Returns 0, or -1 with rs filled (400 naming contacts): -1, not a KW_E*,
 * because the answer already carries the error and the caller only stops. */
int kw_contacts_prepare(kw_server_t *srv, char **text, const char *existing_json,
                        json_t **generated, kw_resp_t *rs);
/* Add "signing_secrets" to a 2xx JSON answer already in rs (consumes generated). */
void kw_contacts_attach(kw_resp_t *rs, json_t *generated);

#endif
