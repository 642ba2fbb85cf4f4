/* urlguard.c - the SSRF guard: the host of a URL keyward is about to call (a webhook, an
 * OAuth2 token endpoint) is resolved here, and every address must be public (unless
 * --webhook-allow-private); the caller pins its connection to the checked address so a
 * second DNS answer cannot redirect it (kw_url_pin). */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core/err.h"
#include "core/sink.h"
#include "urlguard.h"

static int v4_private(uint32_t a) /* host order */
{
    return (a >> 24) == 0 || (a >> 24) == 10 || (a >> 24) == 127 || /* 0/8, 10/8, 127/8 */
           (a >> 16) == 0xA9FE ||                                   /* 169.254/16 */
           (a >> 20) == 0xAC1 ||                                    /* 172.16/12 */
           (a >> 16) == 0xC0A8 ||                                   /* 192.168/16 */
           (a >> 22) == (100u << 2 | 1) ||                          /* 100.64/10 */
           (a >> 8) == 0xC00000 ||                                  /* 192.0.0/24 */
           (a >> 17) == (198u << 7 | 9) ||                          /* 198.18/15 */
           (a >> 28) >= 0xE;                                        /* multicast, 240/4 */
}

/* 1 when the address must not be reached without --webhook-allow-private. */
static int addr_private(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return v4_private(ntohl(((const struct sockaddr_in *)(const void *)sa)->sin_addr.s_addr));
    if (sa->sa_family != AF_INET6)
        return 1;
    const uint8_t *b = ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr;
    static const uint8_t zero[16];
    if (memcmp(b, zero, 15) == 0 && (b[15] == 0 || b[15] == 1)) /* :: and ::1 */
        return 1;
    if (memcmp(b, zero, 10) == 0 && b[10] == 0xff && b[11] == 0xff) /* ::ffff:a.b.c.d */
        return v4_private((uint32_t)b[12] << 24 | (uint32_t)b[13] << 16 | (uint32_t)b[14] << 8 |
                          b[15]);
    if (b[0] == 0x64 && b[1] == 0xff && b[2] == 0x9b) /* 64:ff9b::/96 NAT64 */
        return v4_private((uint32_t)b[12] << 24 | (uint32_t)b[13] << 16 | (uint32_t)b[14] << 8 |
                          b[15]);
    return (b[0] & 0xfe) == 0xfc ||                   /* fc00::/7 unique local */
           (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) || /* fe80::/10 link-local */
           (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0) || /* fec0::/10 site-local */
           b[0] == 0xff ||                            /* multicast */
           (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8); /* doc */
}

int kw_url_allowed(const char *url, int allow_private, char *why, size_t whylen, char *addr,
                   size_t addrlen, int *port, char *host, size_t hostlen)
{
    CURLU *u = curl_url();
    char *h = NULL, *p = NULL, *scheme = NULL;
    struct addrinfo hints, *res = NULL;
    int rc = KW_EINVAL;
    if (u == NULL) {
        snprintf(why, whylen, "out of memory");
        return KW_ENOMEM;
    }
    if (!kw_sink_url_ok(url, strlen(url)) || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &h, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PORT, &p, CURLU_DEFAULT_PORT) != CURLUE_OK) {
        snprintf(why, whylen, "url must be http(s)://HOST[:PORT][/PATH]");
        goto out;
    }
    /* [::1] comes back with its brackets */
    char bare[256];
    size_t hl = strlen(h);
    if (hl >= sizeof(bare)) {
        snprintf(why, whylen, "url host is too long");
        goto out;
    }
    if (h[0] == '[' && hl > 2)
        snprintf(bare, sizeof(bare), "%.*s", (int)(hl - 2), h + 1);
    else
        snprintf(bare, sizeof(bare), "%s", h);
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int g = getaddrinfo(bare, NULL, &hints, &res);
    if (g != 0 || res == NULL) {
        snprintf(why, whylen, "url host %.80s does not resolve: %s", bare, gai_strerror(g));
        rc = KW_ENOTFOUND;
        goto out;
    }
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        if (!allow_private && addr_private(ai->ai_addr)) {
            snprintf(why, whylen,
                     "url host %.80s resolves to a loopback, private, link-local or reserved "
                     "address (refused unless --webhook-allow-private)",
                     bare);
            goto out;
        }
    }
    if (addr) {
        const void *a =
            res->ai_family == AF_INET
                ? (const void *)&((struct sockaddr_in *)(void *)res->ai_addr)->sin_addr
                : (const void *)&((struct sockaddr_in6 *)(void *)res->ai_addr)->sin6_addr;
        if (inet_ntop(res->ai_family, a, addr, (socklen_t)addrlen) == NULL)
            addr[0] = '\0';
    }
    if (port)
        *port = atoi(p);
    if (host)
        snprintf(host, hostlen, "%s", bare);
    rc = 0;
out:
    if (res)
        freeaddrinfo(res);
    curl_free(h);
    curl_free(p);
    curl_free(scheme);
    curl_url_cleanup(u);
    return rc;
}

struct curl_slist *kw_url_pin(const char *host, int port, const char *addr)
{
    char pin[400];
    int v6 = strchr(addr, ':') != NULL;
    snprintf(pin, sizeof(pin), "%s:%d:%s%s%s", host, port, v6 ? "[" : "", addr, v6 ? "]" : "");
    return curl_slist_append(NULL, pin);
}
