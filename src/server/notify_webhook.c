/* notify_webhook.c - the webhook channel: POST the event JSON signed as Standard Webhooks
 * (webhook-id = the event id, stable across retries; webhook-timestamp; webhook-signature
 * "v1,<base64 HMAC-SHA256 of id.timestamp.body>" keyed with the base64-decoded part of the
 * whsec_ secret). The host passes the SSRF guard (urlguard.h) and the connection is pinned
 * to the checked address, so a second DNS answer cannot redirect it. No redirects are
 * followed.
 * Must not: put the secret or the signature in a log line or an error. */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core/key.h"
#include "notify_abort.h"
#include "notify_send.h"
#include "urlguard.h"

#define WEBHOOK_TIMEOUT_S 10L
#define WEBHOOK_CONNECT_S 5L

/* Standard Webhooks signature "v1,<base64>" of id.ts.body with the whsec_ secret: 0, or -1
 * when the secret is not a whsec_ secret or the MAC cannot be computed. */
static int webhook_sign(const char *secret, const char *id, int64_t ts, const char *body, char *out,
                        size_t outlen)
{
    uint8_t key[KW_WHSEC_KEY_MAX], mac[32];
    size_t klen = 0;
    char tsbuf[24], b64[64];
    if (!kw_sink_secret_decode(secret, strlen(secret), key, &klen))
        return -1;
    snprintf(tsbuf, sizeof(tsbuf), "%lld", (long long)ts);
    int ok = 0;
    /* HMAC over "id.ts.body" without building the joined string */
    EVP_MAC *m = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *c = m ? EVP_MAC_CTX_new(m) : NULL;
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", (char *)"SHA256", 0),
                           OSSL_PARAM_construct_end()};
    size_t outl = 0;
    if (c && EVP_MAC_init(c, key, klen, params) &&
        EVP_MAC_update(c, (const uint8_t *)id, strlen(id)) &&
        EVP_MAC_update(c, (const uint8_t *)".", 1) &&
        EVP_MAC_update(c, (const uint8_t *)tsbuf, strlen(tsbuf)) &&
        EVP_MAC_update(c, (const uint8_t *)".", 1) &&
        EVP_MAC_update(c, (const uint8_t *)body, strlen(body)) &&
        EVP_MAC_final(c, mac, &outl, sizeof(mac)) && outl == 32)
        ok = 1;
    EVP_MAC_CTX_free(c);
    EVP_MAC_free(m);
    kw_wipe(key, sizeof(key));
    if (!ok)
        return -1;
    kw_base64(mac, 32, b64);
    snprintf(out, outlen, "v1,%s", b64);
    return 0;
}

static size_t discard(char *p, size_t sz, size_t n, void *ud)
{
    (void)p;
    (void)ud;
    return sz * n;
}

kw_send_t kw_notify_webhook(kw_send_ctx_t *c, const kw_chan_t *ch)
{
    char addr[INET6_ADDRSTRLEN + 1], host[256], why[200], sig[80], hdr[160];
    int port = 0;
    kw_send_t r = KW_SEND_RETRY;
    struct curl_slist *h = NULL, *resolve = NULL;
    CURL *cu = NULL;
    if (!ch->secret[0]) {
        snprintf(c->error, sizeof(c->error), "no signing secret for this webhook");
        return KW_SEND_FAIL;
    }
    if (kw_url_allowed(ch->target, c->srv->cfg.webhook_allow_private, why, sizeof(why), addr,
                       sizeof(addr), &port, host, sizeof(host)) != 0) {
        snprintf(c->error, sizeof(c->error), "%s", why);
        return KW_SEND_RETRY; /* DNS may recover; a private address stays refused */
    }
    if (webhook_sign(ch->secret, c->event_id, c->now, c->payload, sig, sizeof(sig)) != 0) {
        snprintf(c->error, sizeof(c->error), "the webhook secret is not a valid whsec_ secret");
        return KW_SEND_FAIL;
    }
    cu = curl_easy_init();
    if (cu == NULL) {
        snprintf(c->error, sizeof(c->error), "out of memory");
        return KW_SEND_RETRY;
    }
    resolve = kw_url_pin(host, port, addr);
    h = curl_slist_append(h, "Content-Type: application/json");
    h = curl_slist_append(h, "User-Agent: keyward");
    snprintf(hdr, sizeof(hdr), "webhook-id: %s", c->event_id);
    h = curl_slist_append(h, hdr);
    snprintf(hdr, sizeof(hdr), "webhook-timestamp: %lld", (long long)c->now);
    h = curl_slist_append(h, hdr);
    snprintf(hdr, sizeof(hdr), "webhook-signature: %s", sig);
    h = curl_slist_append(h, hdr);
    kw_wipe(hdr, sizeof(hdr));
    curl_easy_setopt(cu, CURLOPT_URL, ch->target);
    curl_easy_setopt(cu, CURLOPT_RESOLVE, resolve);
    curl_easy_setopt(cu, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(cu, CURLOPT_POSTFIELDS, c->payload);
    curl_easy_setopt(cu, CURLOPT_POSTFIELDSIZE, (long)strlen(c->payload));
    curl_easy_setopt(cu, CURLOPT_TIMEOUT, WEBHOOK_TIMEOUT_S);
    curl_easy_setopt(cu, CURLOPT_CONNECTTIMEOUT, WEBHOOK_CONNECT_S);
    curl_easy_setopt(cu, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(cu, CURLOPT_FOLLOWLOCATION, 0L);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(cu, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(cu, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    curl_easy_setopt(cu, CURLOPT_WRITEFUNCTION, discard);
    int cc;
    long status;
    if (kw_notify_perform(cu, &cc, &status, c->error, sizeof(c->error))) {
        r = KW_SEND_ABORTED;
    } else if (cc != CURLE_OK) {
        snprintf(c->error, sizeof(c->error), "%s", curl_easy_strerror((CURLcode)cc));
    } else if (status >= 200 && status < 300) {
        r = KW_SEND_OK;
    } else if (status == 410) {
        snprintf(c->error, sizeof(c->error), "HTTP 410 Gone: webhook disabled");
        r = KW_SEND_GONE;
    } else {
        snprintf(c->error, sizeof(c->error), "HTTP %ld", status);
    }
    kw_wipe(sig, sizeof(sig));
    curl_slist_free_all(h);
    curl_slist_free_all(resolve);
    curl_easy_cleanup(cu);
    return r;
}
