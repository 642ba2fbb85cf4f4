/* urlguard.h - the SSRF guard for the URLs keyward calls out to (webhooks, OAuth2 token
 * endpoints): the host is resolved and every address must be public. */
#ifndef KW_URLGUARD_H
#define KW_URLGUARD_H

#include <stddef.h>

/* 0 when url's host resolves only to public addresses (or allow_private); KW_ENOTFOUND when
 * the host does not resolve (callers that check again later accept it); else KW_EINVAL (or
 * KW_ENOMEM) with a reason in why. addr (may be NULL) receives the first address as text,
 * port the port, host the bare host name, for pinning the connection to what was checked. */
int kw_url_allowed(const char *url, int allow_private, char *why, size_t whylen, char *addr,
                   size_t addrlen, int *port, char *host, size_t hostlen);

/* The CURLOPT_RESOLVE list that pins a transfer to the address kw_url_allowed checked:
 * "host:port:addr" ("[addr]" for IPv6). NULL when out of memory; curl_slist_free_all. */
struct curl_slist *kw_url_pin(const char *host, int port, const char *addr);

#endif
