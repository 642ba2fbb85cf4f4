/* sink.h - alert channels (SPEC §6, §9): a webhook, an e-mail address or the log. Parses
 * the one-line form of a global sink (`--sink 'webhook https://… whsec_…'`) and checks the
 * fields shared with a credential's contacts. Pure: no sockets, no DNS, no allocation.
 *
 * A channel's *name* ("webhook https://x/y", "email ops@example.com", "log") identifies it
 * in the deliveries table and the API; it never contains the webhook secret. */
#ifndef KW_SINK_H
#define KW_SINK_H

#include <stddef.h>
#include <stdint.h>

#define KW_URL_MAX 2048
#define KW_ADDR_MAX 254
#define KW_WHSEC_MAX 128    /* "whsec_" + base64 of at most 64 bytes, with slack */
#define KW_WHSEC_KEY_MIN 16 /* decoded HMAC key, bytes */
#define KW_WHSEC_KEY_MAX 64
#define KW_CHAN_NAME_MAX (KW_URL_MAX + 16)

typedef enum { KW_CHAN_WEBHOOK = 1, KW_CHAN_EMAIL = 2, KW_CHAN_LOG = 3 } kw_chan_type_t;

typedef struct kw_chan {
    kw_chan_type_t type;
    char target[KW_URL_MAX + 1];   /* webhook URL or e-mail address; "" for log */
    char secret[KW_WHSEC_MAX + 1]; /* webhook "whsec_<base64>", "" if none */
} kw_chan_t;

/* Parse one sink line: "webhook URL SECRET", "email ADDR" or "log", words separated by
 * blanks. A global webhook sink must carry its secret (nobody could be shown a generated
 * one). Returns 0, or -1 with a reason ("must be ...", never the secret) in why: -1, not
 * KW_E*, as the one failure is "not a sink" and the reason is the whole answer. */
int kw_sink_parse(const char *s, size_t len, kw_chan_t *out, char *why, size_t whylen);

/* Every line of a newline-separated sink list (the "sink" setting) that parses, as a channel
 * to fn (wiped after the call); lines that do not parse are skipped. Stops at fn's first
 * non-zero return and returns it; 0 when fn never stopped the walk. */
int kw_sink_each(const char *list, int (*fn)(void *ud, const kw_chan_t *c), void *ud);

/* Field checks shared with contacts. Each returns 1 when valid. */
int kw_sink_url_ok(const char *url, size_t len);   /* http(s)://host[:port][/path] */
int kw_sink_addr_ok(const char *addr, size_t len); /* local@domain, printable, no <> */
/* "whsec_<base64>" whose decoded key is 16..64 bytes; key (may be NULL) receives it. */
int kw_sink_secret_decode(const char *s, size_t len, uint8_t key[KW_WHSEC_KEY_MAX], size_t *keylen);

/* The channel's name (see above) into out. */
void kw_chan_name(const kw_chan_t *c, char out[KW_CHAN_NAME_MAX]);
/* Parse a channel name back into type and target (secret ""); 0 or -1 (one failure: not
 * a channel name). */
int kw_chan_from_name(const char *name, kw_chan_t *out);

/* Standard base64 (RFC 4648 §4, with padding) of n bytes into out (4*ceil(n/3)+1 bytes). */
void kw_base64(const uint8_t *in, size_t n, char *out);

#endif
