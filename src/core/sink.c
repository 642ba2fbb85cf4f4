/* sink.c - parsing and checking alert channels (webhook, e-mail, log). Strict on purpose:
 * a value that is not clearly one of the three forms is refused with a reason, and a
 * webhook secret is never copied into a reason. Pure: no DNS (the SSRF guard resolves
 * hosts at delivery time, in src/server/notify_webhook.c). */
#include "sink.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "key.h"
#include "util.h"

static int host_ok(const char *h, size_t len)
{
    if (len > 0 && h[0] == '[') {
        char a[64];
        struct in6_addr a6;
        if (len < 3 || h[len - 1] != ']' || len - 2 >= sizeof(a))
            return 0;
        memcpy(a, h + 1, len - 2);
        a[len - 2] = '\0';
        return inet_pton(AF_INET6, a, &a6) == 1;
    }
    return kw_hostname_ok(h, len, 1);
}

int kw_sink_url_ok(const char *url, size_t len)
{
    size_t i;
    if (len > KW_URL_MAX)
        return 0;
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)url[i];
        if (c <= 0x20 || c >= 0x7f || c == '"' || c == '<' || c == '>' || c == '\\')
            return 0;
    }
    if (len >= 7 && strncmp(url, "http://", 7) == 0)
        i = 7;
    else if (len >= 8 && strncmp(url, "https://", 8) == 0)
        i = 8;
    else
        return 0;
    size_t end = i;
    while (end < len && url[end] != '/' && url[end] != '?' && url[end] != '#')
        end++;
    const char *auth = url + i;
    size_t alen = end - i;
    /* no user:password@ in the authority: it would end up in channel names and logs */
    if (memchr(auth, '@', alen) != NULL || alen == 0)
        return 0;
    size_t hlen = alen;
    const char *colon = NULL;
    if (auth[0] == '[') {
        const char *close = memchr(auth, ']', alen);
        if (close == NULL)
            return 0;
        hlen = (size_t)(close - auth) + 1;
        if (hlen < alen) {
            if (auth[hlen] != ':')
                return 0;
            colon = auth + hlen;
        }
    } else {
        colon = memchr(auth, ':', alen);
        if (colon)
            hlen = (size_t)(colon - auth);
    }
    if (!host_ok(auth, hlen))
        return 0;
    if (colon) {
        size_t plen = alen - hlen - 1;
        unsigned port = 0;
        if (plen == 0 || plen > 5)
            return 0;
        for (size_t k = 0; k < plen; k++) {
            if (!kw_is_digit(colon[1 + k]))
                return 0;
            port = port * 10 + (unsigned)(colon[1 + k] - '0');
        }
        if (port < 1 || port > 65535)
            return 0;
    }
    return 1;
}

int kw_sink_addr_ok(const char *a, size_t len)
{
    const char *at = NULL;
    if (len < 3 || len > KW_ADDR_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)a[i];
        if (c <= 0x20 || c >= 0x7f || strchr("<>()[]\\,;:\"", c) != NULL)
            return 0;
        if (c == '@') {
            if (at)
                return 0;
            at = a + i;
        }
    }
    if (at == NULL || at == a || at == a + len - 1)
        return 0;
    return host_ok(at + 1, len - (size_t)(at + 1 - a)) && at[1] != '[';
}

static int b64val(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (kw_is_digit(c))
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

int kw_sink_secret_decode(const char *s, size_t len, uint8_t key[KW_WHSEC_KEY_MAX], size_t *keylen)
{
    uint8_t buf[KW_WHSEC_KEY_MAX + 3];
    size_t n = 0;
    if (len < 6 || len > KW_WHSEC_MAX || strncmp(s, "whsec_", 6) != 0)
        return 0;
    s += 6;
    len -= 6;
    if (len == 0 || len % 4 != 0)
        return 0;
    for (size_t i = 0; i < len; i += 4) {
        int v[4], pad = 0;
        for (int k = 0; k < 4; k++) {
            char c = s[i + (size_t)k];
            if (c == '=' && i + 4 == len && k >= 2) {
                v[k] = 0;
                pad++;
            } else if (pad || (v[k] = b64val(c)) < 0) {
                return 0; /* a character after '=' or outside the alphabet */
            }
        }
        uint32_t w =
            (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        if (n + 3 > sizeof(buf))
            return 0;
        buf[n++] = (uint8_t)(w >> 16);
        if (pad < 2)
            buf[n++] = (uint8_t)(w >> 8);
        if (pad < 1)
            buf[n++] = (uint8_t)w;
    }
    if (n < KW_WHSEC_KEY_MIN || n > KW_WHSEC_KEY_MAX) {
        memset(buf, 0, sizeof(buf));
        return 0;
    }
    if (key)
        memcpy(key, buf, n);
    if (keylen)
        *keylen = n;
    memset(buf, 0, sizeof(buf));
    return 1;
}

void kw_base64(const uint8_t *in, size_t n, char *out)
{
    static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t w = (uint32_t)in[i] << 16;
        if (i + 1 < n)
            w |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n)
            w |= in[i + 2];
        out[o++] = al[(w >> 18) & 63];
        out[o++] = al[(w >> 12) & 63];
        out[o++] = i + 1 < n ? al[(w >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? al[w & 63] : '=';
    }
    out[o] = '\0';
}

/* Next blank-separated word of s[*pos..len). */
static int word(const char *s, size_t len, size_t *pos, const char **w, size_t *wl)
{
    size_t i = *pos;
    while (i < len && kw_is_blank(s[i]))
        i++;
    if (i == len)
        return 0;
    size_t st = i;
    while (i < len && !kw_is_blank(s[i]))
        i++;
    *w = s + st;
    *wl = i - st;
    *pos = i;
    return 1;
}

static int reason(char *why, size_t whylen, const char *msg)
{
    snprintf(why, whylen, "%s", msg);
    return -1;
}

int kw_sink_parse(const char *s, size_t len, kw_chan_t *out, char *why, size_t whylen)
{
    const char *w[4];
    size_t wl[4], nw = 0, pos = 0;
    kw_chan_t c;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 && !kw_is_blank(s[i]))
            return reason(why, whylen, "must not contain control characters");
    while (nw < 4 && word(s, len, &pos, &w[nw], &wl[nw]))
        nw++;
    if (nw == 0)
        return reason(why, whylen, "must be 'webhook URL SECRET', 'email ADDRESS' or 'log'");
    memset(&c, 0, sizeof(c));
    if (wl[0] == 3 && memcmp(w[0], "log", 3) == 0) {
        if (nw != 1)
            return reason(why, whylen, "'log' takes nothing after it");
        c.type = KW_CHAN_LOG;
    } else if (wl[0] == 5 && memcmp(w[0], "email", 5) == 0) {
        if (nw != 2)
            return reason(why, whylen, "must be 'email ADDRESS' (one address per sink)");
        if (!kw_sink_addr_ok(w[1], wl[1]))
            return reason(why, whylen, "email: not an address like ops@example.com");
        c.type = KW_CHAN_EMAIL;
        memcpy(c.target, w[1], wl[1]);
    } else if (wl[0] == 7 && memcmp(w[0], "webhook", 7) == 0) {
        if (nw != 3)
            return reason(why, whylen, "must be 'webhook URL SECRET' (SECRET is whsec_<base64>)");
        if (!kw_sink_url_ok(w[1], wl[1]))
            return reason(why, whylen,
                          "webhook: URL must be http(s)://HOST[:PORT][/PATH], no user:password@");
        if (!kw_sink_secret_decode(w[2], wl[2], NULL, NULL))
            return reason(why, whylen, "webhook: secret must be whsec_ + base64 of 16 to 64 bytes");
        c.type = KW_CHAN_WEBHOOK;
        memcpy(c.target, w[1], wl[1]);
        memcpy(c.secret, w[2], wl[2]);
    } else {
        return reason(why, whylen, "type must be webhook, email or log");
    }
    *out = c;
    return 0;
}

void kw_chan_name(const kw_chan_t *c, char out[KW_CHAN_NAME_MAX])
{
    switch (c->type) {
    case KW_CHAN_WEBHOOK:
        snprintf(out, KW_CHAN_NAME_MAX, "webhook %s", c->target);
        break;
    case KW_CHAN_EMAIL:
        snprintf(out, KW_CHAN_NAME_MAX, "email %s", c->target);
        break;
    default:
        snprintf(out, KW_CHAN_NAME_MAX, "log");
        break;
    }
}

int kw_chan_from_name(const char *name, kw_chan_t *out)
{
    memset(out, 0, sizeof(*out));
    if (strcmp(name, "log") == 0) {
        out->type = KW_CHAN_LOG;
        return 0;
    }
    if (strncmp(name, "webhook ", 8) == 0)
        out->type = KW_CHAN_WEBHOOK;
    else if (strncmp(name, "email ", 6) == 0)
        out->type = KW_CHAN_EMAIL;
    else
        return -1;
    const char *t = strchr(name, ' ') + 1;
    if (strlen(t) > KW_URL_MAX)
        return -1;
    snprintf(out->target, sizeof(out->target), "%s", t);
    return 0;
}

int kw_sink_each(const char *list, int (*fn)(void *ud, const kw_chan_t *c), void *ud)
{
    for (const char *p = list; *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        kw_chan_t c;
        char why[128];
        int rc = kw_sink_parse(p, len, &c, why, sizeof(why)) == 0 ? fn(ud, &c) : 0;
        kw_wipe(&c, sizeof(c));
        if (rc)
            return rc;
        p += len + (nl ? 1 : 0);
    }
    return 0;
}
