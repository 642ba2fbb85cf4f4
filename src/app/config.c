/* config.c - the settings table behind `keyward serve`: one row per setting drives the
 * defaults, the --flag parser, KEYWARD_<NAME> variables, the --config file and --help.
 * Pure parsing: no sockets, no logging, no allocation except while reading the file.
 * Values that may carry credentials (store, smtp) are never echoed in error messages. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/duration.h"
#include "core/sink.h"
#include "core/util.h"
#include "store/store.h"

#define CONFIG_FILE_MAX (1024 * 1024) /* a config file larger than this is refused */
#define VALUE_MAX 4096                /* longest value decoded from a file line */
#define ECHO_MAX 40                   /* longest bad value quoted back in an error */
#define ORIGIN_MAX 96                 /* longest file name shown before ":LINE:" */

/* T_LIST: a repeatable string; each value is checked and appended as one line of the
 * field, from the file, the environment and the flags alike; an empty value clears it. */
enum stype { T_STRING, T_DURATION, T_BOOL, T_INT, T_SIZE, T_LIST };

#define S_SECRET 1u /* the value may hold a password: never echo it */
#define S_NOFILE 2u /* not allowed inside a config file */
#define S_LIVE 4u   /* applied by SIGHUP without a restart (kw_config_apply_live) */
#define S_NOENV 8u  /* a command-line flag only: no KEYWARD_<NAME> variable */

/* Extra check for a string value, NUL-terminated in v (which it may normalise in place).
 * Returns 0, or KW_EINVAL with a reason ("must be ...") written into why. Every parser
 * and check here fails for that one reason: the value is not acceptable. */
typedef int (*check_fn)(char *v, char *why, size_t whylen);

typedef struct setting {
    const char *name; /* flag and config-file name; env is KEYWARD_ + upper, '-' -> '_' */
    enum stype type;
    size_t off, size;    /* the field in kw_config_t */
    const char *def;     /* default, as it would be written (parsed by kw_config_defaults) */
    int64_t min, max;    /* bounds for int, size, duration (seconds) */
    check_fn check;      /* strings only, may be NULL */
    unsigned flags;      /* S_* */
    const char *metavar; /* shown in --help */
    const char *help;
} setting_t;

static int check_listen(char *v, char *why, size_t whylen);
static int check_store(char *v, char *why, size_t whylen);
static int check_smtp(char *v, char *why, size_t whylen);
static int check_mail_from(char *v, char *why, size_t whylen);
static int check_header(char *v, char *why, size_t whylen);
static int check_log_level(char *v, char *why, size_t whylen);
static int check_sink(char *v, char *why, size_t whylen);
static int check_onoff(char *v, char *why, size_t whylen);
static int check_public_url(char *v, char *why, size_t whylen);

#define AT(f) offsetof(kw_config_t, f), sizeof(((kw_config_t *)0)->f)
#define DAY (24LL * 3600)

/* Every setting, in --help order. Keep docs/configuration.md in step (test_config checks). */
static const setting_t settings[] = {
    {"listen", T_STRING, AT(listen), "127.0.0.1:8420", 0, 0, check_listen, 0, "HOST:PORT",
     "Address and port of the HTTP API; IPv6 as [::1]:8420."},
    {"store", T_STRING, AT(store), "sqlite:./keyward.db", 0, 0, check_store, S_SECRET, "URL",
     "sqlite:PATH (one file, WAL mode), or postgresql://USER@HOST:PORT/DB for several "
     "nodes on one database (password: in the URL, PGPASSFILE or KEYWARD_STORE_PASSWORD)."},
    {"admin-key-file", T_STRING, AT(admin_key_file), "", 0, 0, NULL, 0, "PATH",
     "Where the first admin key is written (mode 0600, never overwritten); "
     "empty: beside the SQLite file."},
    {"config", T_STRING, AT(config), "", 0, 0, NULL, S_NOFILE, "FILE",
     "File of `name = value` lines holding these settings; read before the environment "
     "and the flags."},
    {"scheduler-interval", T_DURATION, AT(scheduler_interval), "60s", 1, DAY, NULL, S_LIVE,
     "DURATION", "How often the scheduler looks for expiring keys and due work (1s to 1d)."},
    /* pg: change feed */
    {"sync-interval", T_DURATION, AT(sync_interval), "1s", 1, DAY, NULL, 0, "DURATION",
     "PostgreSQL: how often a node polls the change feed besides LISTEN/NOTIFY (1s to 1d)."},
    {"smtp", T_STRING, AT(smtp), "", 0, 0, check_smtp, S_SECRET | S_LIVE, "URL",
     "Mail server for e-mail alerts, smtp://HOST:PORT (or smtps://); empty: no e-mail."},
    {"mail-from", T_STRING, AT(mail_from), "", 0, 0, check_mail_from, S_LIVE, "ADDR",
     "Sender address of e-mail alerts."},
    {"pepper-file", T_STRING, AT(pepper_file), "", 0, 0, NULL, 0, "PATH",
     "File holding the server pepper that keys the SHA-256 digests of stored keys."},
    {"retention", T_DURATION, AT(retention), "90d", 1, KW_DURATION_MAX_SECS, NULL, S_LIVE,
     "DURATION", "How long expired and revoked keys (and other history) are remembered."},
    {"verify-requires-role", T_BOOL, AT(verify_requires_role), "false", 0, 1, NULL, S_LIVE, NULL,
     "Verification callers must also present a keyward:verifier key (Keyward-Caller-Key)."},
    {"trusted-ip-header", T_STRING, AT(trusted_ip_header), "", 0, 0, check_header, 0, "NAME",
     "Request header holding the client address (e.g. X-Real-IP, which "
     "deploy/nginx sets from the TCP peer) when behind a trusted proxy; for a list, the "
     "last element is used. Empty: use the peer address."},
    {"webhook-allow-private", T_BOOL, AT(webhook_allow_private), "false", 0, 1, NULL, S_LIVE, NULL,
     "Allow webhook URLs that resolve to loopback, link-local or private addresses."},
    {"threads", T_INT, AT(threads), "2", 1, 64, NULL, 0, "N",
     "Event-loop threads answering verification (1 to 64); one per core is best. Other "
     "routes get a thread per connection."},
    {"max-body", T_SIZE, AT(max_body), "65536", 1024, 64LL * 1024 * 1024, NULL, 0, "BYTES",
     "Largest request body accepted (1k to 64m; suffixes k, m, g are powers of 1024)."},
    {"max-connections", T_INT, AT(max_connections), "1024", 1, 1000000, NULL, 0, "N",
     "Most HTTP connections open at once (1 to 1000000)."},
    {"idle-timeout", T_DURATION, AT(idle_timeout), "60s", 1, DAY, NULL, 0, "DURATION",
     "Close a client connection idle for this long (1s to 1d)."},
    {"request-timeout", T_DURATION, AT(request_timeout), "60s", 1, DAY, NULL, 0, "DURATION",
     "Cut a connection that has not finished its request this long after connecting or "
     "after its previous request (slow clients; 1s to 1d)."},
    {"usage-flush-interval", T_DURATION, AT(usage_flush), "10s", 1, 3600, NULL, S_LIVE, "DURATION",
     "How often keys' use_count and last_used_at are written to the store (1s to 1h); "
     "a crash loses at most this much usage."},
    {"auth-fail-limit", T_INT, AT(auth_fail_limit), "10", 0, 1000000, NULL, 0, "N",
     "Failed admin authentications allowed per client address in a burst before 429 "
     "(0 = no limit)."},
    {"auth-fail-window", T_DURATION, AT(auth_fail_window), "60s", 1, DAY, NULL, 0, "DURATION",
     "Time in which a client address regains its whole auth-fail-limit (1s to 1d)."},
    {"log-level", T_STRING, AT(log_level), "info", 0, 0, check_log_level, S_LIVE, "LEVEL",
     "Least severe log line written: debug, info, warn or error."},
    {"sink", T_LIST, AT(sinks), "", 0, 0, check_sink, S_SECRET | S_LIVE, "SINK",
     "Global alert channel, repeatable: 'webhook URL whsec_SECRET', 'email ADDR' or 'log'; "
     "gets every event besides the credential's contacts. Empty clears the list."},
    {"delivery-retry-min", T_DURATION, AT(delivery_retry_min), "5s", 1, 3600, NULL, S_LIVE,
     "DURATION", "First retry delay of a failed alert delivery; doubles up to 1h (1s to 1h)."},
    {"delivery-max-age", T_DURATION, AT(delivery_max_age), "3d", 10, 30 * DAY, NULL, S_LIVE,
     "DURATION", "Stop retrying a delivery this long after its event (then: failed; 10s to 30d)."},
    {"mail-daily-cap", T_INT, AT(mail_daily_cap), "50", 1, 100000, NULL, S_LIVE, "N",
     "Most alert e-mails sent to one recipient per UTC day (1 to 100000); later ones wait "
     "for the next."},
    {"metrics-per-credential", T_BOOL, AT(metrics_per_credential), "true", 0, 1, NULL, S_LIVE, NULL,
     "Export per-credential expiry series on /metrics for the credentials that need attention "
     "(a usable key inside its policy's first alert threshold), at most "
     "--metrics-expiry-series of them."},
    {"metrics-expiry-series", T_INT, AT(metrics_expiry_series), "1000", 0, 100000, NULL, 0, "N",
     "Most credentials given their own expiry series on /metrics, soonest first; the rest are "
     "counted in keyward_credential_expiry_series_omitted (0 to 100000)."},
    {"metrics-refresh", T_DURATION, AT(metrics_refresh), "10s", 1, 3600, NULL, 0, "DURATION",
     "How often the expiry figures of /metrics are recomputed in the background (1s to 1h); "
     "a scrape never walks the keys itself."},
    /* restart: */
    {"shutdown-timeout", T_DURATION, AT(shutdown_timeout), "10s", 1, 3600, NULL, S_LIVE, "DURATION",
     "On SIGTERM, exit within this long whatever receivers and mail servers do: requests "
     "already read are answered, unfinished deliveries stay queued (1s to 1h)."},
    /* opkit: a flag only, neither in a file nor in the environment */
    {"check-config", T_BOOL, AT(check_config), "false", 0, 1, NULL, S_NOFILE | S_NOENV, NULL,
     "Check the flags, the environment and the config file, print the result and exit (0 "
     "when valid) without opening the store or creating any file."},
    /* oauth, security, watched: one sealing key for every stored secret (SPEC §3) */
    {"secrets-key-file", T_STRING, AT(secrets_key_file), "", 0, 0, NULL, 0, "PATH",
     "Key file sealing stored secrets (webhook signing secrets, token keys, watched "
     "credentials' secrets) with AES-256-GCM; created mode 0600 on first start. Empty: beside "
     "the SQLite file (keyward.secrets-key); required with a PostgreSQL store."},
    /* console: */
    {"console", T_STRING, AT(console), "on", 0, 0, check_onoff, 0, "on|off",
     "Serve the web console at /console/ (on) or not (off)."},
    {"console-session-idle", T_DURATION, AT(console_session_idle), "30m", 1, DAY, NULL, 0,
     "DURATION", "A console session unused this long ends (1s to 1d)."},
    {"console-session-max", T_DURATION, AT(console_session_max), "12h", 1, 7 * DAY, NULL, 0,
     "DURATION", "A console session ends this long after sign-in, used or not (1s to 7d)."},
    /* messages: e-mail written for its reader (docs/mail.md) */
    {"public-url", T_STRING, AT(public_url), "", 0, 0, check_public_url, 0, "URL",
     "Where people reach keyward, http(s)://HOST[:PORT][/PATH]: e-mails link into its "
     "console (/console/...); empty: no links."},
    {"mail-templates", T_STRING, AT(mail_templates), "", 0, 0, NULL, 0, "DIR",
     "Directory of e-mail templates (<event type>.txt, .html) replacing the built-in ones; "
     "checked at start. Empty: the built-in templates."},
    {"mail-html", T_BOOL, AT(mail_html), "false", 0, 1, NULL, 0, NULL,
     "Send e-mails as multipart/alternative with an HTML part beside the plain text."},
    {"mail-reply-to", T_STRING, AT(mail_reply_to), "", 0, 0, check_mail_from, 0, "ADDR",
     "Reply-To of alert e-mails, and whom their readers are told to ask; empty: mail-from."},
    {"renewal-notify-admins", T_BOOL, AT(renewal_notify_admins), "false", 0, 1, NULL, 0, NULL,
     "Send renewal requests to the contacts of admin credentials too, not only to those of "
     "approver credentials."},
    /* watched: */
    {"ca-file", T_STRING, AT(ca_file), "", 0, 0, NULL, 0, "PATH",
     "PEM file of CA certificates trusted for OAuth2 token endpoints, besides the system's."},
};

#define NSETTINGS (sizeof(settings) / sizeof(settings[0]))

/* Where a value came from, for the error prefix. */
typedef struct source {
    const char *file; /* config file (origin) or NULL */
    unsigned line;
    const char *env; /* environment variable name or NULL */
} source_t;

/* ---------------------------------------------------------------------------------------
 * Small helpers */

static char to_lower(char ch)
{
    return (ch >= 'A' && ch <= 'Z') ? (char)(ch - 'A' + 'a') : ch;
}

static const setting_t *find_setting(const char *name, size_t len)
{
    for (size_t i = 0; i < NSETTINGS; i++)
        if (strlen(settings[i].name) == len && memcmp(settings[i].name, name, len) == 0)
            return &settings[i];
    return NULL;
}

/* "scheduler-interval" -> "KEYWARD_SCHEDULER_INTERVAL" */
static void env_name(const setting_t *s, char *out, size_t outlen)
{
    size_t n = (size_t)snprintf(out, outlen, "KEYWARD_");
    for (const char *p = s->name; *p && n + 1 < outlen; p++)
        out[n++] = (*p == '-') ? '_' : (char)(*p >= 'a' && *p <= 'z' ? *p - 'a' + 'A' : *p);
    out[n < outlen ? n : outlen - 1] = '\0';
}

/* Copy at most ECHO_MAX bytes of v, with anything unprintable shown as '?'. */
static void echo_value(const char *v, size_t vlen, char *out, size_t outlen)
{
    size_t n = 0;
    for (size_t i = 0; i < vlen && i < ECHO_MAX && n + 1 < outlen; i++) {
        unsigned char ch = (unsigned char)v[i];
        out[n++] = (ch < 0x20 || ch == 0x7f || ch == '"') ? '?' : (char)ch;
    }
    out[n] = '\0';
    if (vlen > ECHO_MAX && n + 4 < outlen)
        strcpy(out + n, "...");
}

/* A long path keeps its tail: "...ome/user/keyward.conf". */
static const char *short_origin(const char *origin, char *buf, size_t buflen)
{
    size_t len = strlen(origin);
    if (len <= ORIGIN_MAX)
        return origin;
    snprintf(buf, buflen, "...%s", origin + len - (ORIGIN_MAX - 3));
    return buf;
}

/* Set err to "<where>: <why>" where <where> is "FILE:LINE: name", "KEYWARD_NAME" or
 * "--name", and append the offending value unless the setting may hold a secret. */
static int bad_value(kw_err_t *err, const source_t *src, const setting_t *s, const char *v,
                     size_t vlen, const char *why)
{
    char where[ORIGIN_MAX + 96], got[ECHO_MAX + 8], obuf[ORIGIN_MAX + 1];

    if (src->file)
        snprintf(where, sizeof(where), "%s:%u: %s", short_origin(src->file, obuf, sizeof(obuf)),
                 src->line, s->name);
    else if (src->env)
        snprintf(where, sizeof(where), "%s", src->env);
    else
        snprintf(where, sizeof(where), "--%s", s->name);

    if (v && !(s->flags & S_SECRET)) {
        echo_value(v, vlen, got, sizeof(got));
        return kw_err_set(err, KW_EINVAL, s->name, "%s: %s (got \"%s\")", where, why, got);
    }
    return kw_err_set(err, KW_EINVAL, s->name, "%s: %s", where, why);
}

/* ---------------------------------------------------------------------------------------
 * Value parsers: each takes s[0..len) and returns 0 or -1. */

static int parse_int(const char *v, size_t len, int64_t *out)
{
    size_t i = 0;
    int neg = 0;
    uint64_t n = 0;

    if (len > 0 && v[0] == '-') {
        neg = 1;
        i = 1;
    }
    if (i == len)
        return KW_EINVAL;
    for (; i < len; i++) {
        if (!kw_is_digit(v[i]))
            return KW_EINVAL;
        n = n * 10 + (uint64_t)(v[i] - '0');
        if (n > (uint64_t)INT64_MAX)
            return KW_EINVAL;
    }
    *out = neg ? -(int64_t)n : (int64_t)n;
    return 0;
}

/* Bytes with an optional k/m/g suffix (powers of 1024), optionally followed by "b" or
 * "ib", in any case: 65536, 64k, 64KiB, 1M. */
static int parse_size(const char *v, size_t len, int64_t *out)
{
    size_t digits = 0;
    int64_t n, mult = 1;

    while (digits < len && kw_is_digit(v[digits]))
        digits++;
    if (digits == 0 || parse_int(v, digits, &n) != 0)
        return KW_EINVAL;
    if (digits < len) {
        const char *u = v + digits;
        size_t ulen = len - digits;
        switch (to_lower(u[0])) {
        case 'k':
            mult = 1024;
            break;
        case 'm':
            mult = 1024 * 1024;
            break;
        case 'g':
            mult = 1024 * 1024 * 1024;
            break;
        case 'b':
            mult = 1;
            break;
        default:
            return KW_EINVAL;
        }
        if (mult == 1) {
            if (ulen != 1)
                return KW_EINVAL;
        } else if (!(ulen == 1 || (ulen == 2 && to_lower(u[1]) == 'b') ||
                     (ulen == 3 && to_lower(u[1]) == 'i' && to_lower(u[2]) == 'b'))) {
            return KW_EINVAL;
        }
    }
    if (n > INT64_MAX / mult)
        return KW_EINVAL;
    *out = n * mult;
    return 0;
}

/* A duration as the API writes it (45s, 90m, 12h, 30d, 1d12h), or bare seconds. */
static int parse_duration(const char *v, size_t len, int64_t *out)
{
    size_t i = 0;
    while (i < len && kw_is_digit(v[i]))
        i++;
    if (len > 0 && i == len)
        return parse_int(v, len, out);
    return kw_duration_parse(v, len, out) == 0 ? 0 : KW_EINVAL;
}

static int parse_bool(const char *v, size_t len, int *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (strlen(yes[i]) == len && strncasecmp(v, yes[i], len) == 0) {
            *out = 1;
            return 0;
        }
        if (strlen(no[i]) == len && strncasecmp(v, no[i], len) == 0) {
            *out = 0;
            return 0;
        }
    }
    return KW_EINVAL;
}

/* ---------------------------------------------------------------------------------------
 * String validators */

static int check_listen(char *v, char *why, size_t whylen)
{
    const char *host = v, *port;
    size_t hostlen;

    if (v[0] == '[') {
        const char *close = strchr(v, ']');
        char addr[INET6_ADDRSTRLEN + 1];
        struct in6_addr a6;
        if (close == NULL || close[1] != ':')
            goto form;
        host = v + 1;
        hostlen = (size_t)(close - host);
        port = close + 2;
        if (hostlen == 0 || hostlen >= sizeof(addr))
            goto badhost;
        memcpy(addr, host, hostlen);
        addr[hostlen] = '\0';
        if (inet_pton(AF_INET6, addr, &a6) != 1)
            goto badhost;
    } else {
        const char *colon = strchr(v, ':');
        if (colon == NULL)
            goto form;
        if (strchr(colon + 1, ':') != NULL) {
            snprintf(why, whylen, "an IPv6 address needs brackets, e.g. [::1]:8420");
            return KW_EINVAL;
        }
        hostlen = (size_t)(colon - v);
        port = colon + 1;
        if (hostlen == 0) {
            snprintf(why, whylen, "needs a host, e.g. 0.0.0.0:8420 for every interface");
            return KW_EINVAL;
        }
        if (!kw_hostname_ok(host, hostlen, 0))
            goto badhost;
        /* all digits and dots: it must then be a real IPv4 address, not "1.2.3" */
        size_t i = 0;
        while (i < hostlen && (kw_is_digit(host[i]) || host[i] == '.'))
            i++;
        if (i == hostlen) {
            char addr[INET_ADDRSTRLEN + 1];
            struct in_addr a4;
            if (hostlen >= sizeof(addr))
                goto badhost;
            memcpy(addr, host, hostlen);
            addr[hostlen] = '\0';
            if (inet_pton(AF_INET, addr, &a4) != 1)
                goto badhost;
        }
    }

    size_t plen = strlen(port);
    int64_t p;
    if (plen == 0 || plen > 5 || port[0] == '-' || parse_int(port, plen, &p) != 0 || p < 1 ||
        p > 65535) {
        snprintf(why, whylen, "port must be a number from 1 to 65535");
        return KW_EINVAL;
    }
    return 0;

form:
    snprintf(why, whylen, "must be HOST:PORT, e.g. 127.0.0.1:8420 or [::1]:8420");
    return KW_EINVAL;
badhost:
    snprintf(why, whylen, "host must be a host name or an IP address");
    return KW_EINVAL;
}

static int check_store(char *v, char *why, size_t whylen)
{
    const char *rest;
    kw_store_scheme_t k = kw_store_scheme(v, &rest);
    if ((k == KW_STORE_SQLITE && rest[0] != '\0') || k == KW_STORE_POSTGRESQL)
        return 0;
    snprintf(why, whylen, "must be sqlite:PATH or postgresql://...");
    return KW_EINVAL;
}

static int check_smtp(char *v, char *why, size_t whylen)
{
    if (v[0] == '\0' || (strncmp(v, "smtp://", 7) == 0 && v[7] != '\0') ||
        (strncmp(v, "smtps://", 8) == 0 && v[8] != '\0'))
        return 0;
    snprintf(why, whylen, "must be smtp://HOST:PORT or smtps://HOST:PORT (or empty)");
    return KW_EINVAL;
}

static int check_mail_from(char *v, char *why, size_t whylen)
{
    const char *at = strchr(v, '@');
    if (v[0] == '\0' || (at != NULL && at != v && at[1] != '\0'))
        return 0;
    snprintf(why, whylen, "must be an e-mail address like keyward@example.com");
    return KW_EINVAL;
}

/* RFC 9110 field-name: a token */
static int check_header(char *v, char *why, size_t whylen)
{
    for (const char *p = v; *p; p++) {
        if (!kw_is_alnum(*p) && strchr("!#$%&'*+-.^_`|~", *p) == NULL) {
            snprintf(why, whylen, "must be an HTTP header name like X-Forwarded-For");
            return KW_EINVAL;
        }
    }
    return 0;
}

static int check_log_level(char *v, char *why, size_t whylen)
{
    static const char *const levels[] = {"debug", "info", "warn", "error"};
    for (char *p = v; *p; p++)
        *p = to_lower(*p);
    for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++)
        if (strcmp(v, levels[i]) == 0)
            return 0;
    snprintf(why, whylen, "must be debug, info, warn or error");
    return KW_EINVAL;
}

/* console: "on" or "off" (any case, normalised to lower case). */
static int check_onoff(char *v, char *why, size_t whylen)
{
    for (char *p = v; *p; p++)
        *p = to_lower(*p);
    if (strcmp(v, "on") == 0 || strcmp(v, "off") == 0)
        return 0;
    snprintf(why, whylen, "must be on or off");
    return KW_EINVAL;
}

/* http(s)://HOST[:PORT][/PATH] without user:password@, query or fragment; a trailing '/'
 * is dropped so links can append "/console/...". */
static int check_public_url(char *v, char *why, size_t whylen)
{
    size_t n = strlen(v);
    while (n > 0 && v[n - 1] == '/')
        v[--n] = '\0';
    if (n == 0)
        return 0;
    if (!kw_sink_url_ok(v, n) || strpbrk(v, "?#\"<> ") != NULL) {
        snprintf(why, whylen, "must be http(s)://HOST[:PORT][/PATH] (no query or fragment)");
        return KW_EINVAL;
    }
    return 0;
}

static int check_sink(char *v, char *why, size_t whylen)
{
    kw_chan_t c;
    if (v[0] == '\0')
        return 0;
    int rc = kw_sink_parse(v, strlen(v), &c, why, whylen);
    explicit_bzero(c.secret, sizeof(c.secret));
    return rc == 0 ? 0 : KW_EINVAL;
}

/* ---------------------------------------------------------------------------------------
 * Applying one value */

static void store_int(kw_config_t *c, const setting_t *s, int64_t n)
{
    char *field = (char *)c + s->off;
    if (s->size == sizeof(int)) {
        int i = (int)n;
        memcpy(field, &i, sizeof(i));
    } else {
        memcpy(field, &n, sizeof(n));
    }
}

/* v[0..vlen) into buf (vlen + 1 bytes at least) as a string: 0, or -1 when it holds a
 * control character (buf then unchanged). */
static int text_copy(char *buf, const char *v, size_t vlen)
{
    for (size_t i = 0; i < vlen; i++) {
        unsigned char ch = (unsigned char)v[i];
        if (ch < 0x20 || ch == 0x7f)
            return -1;
    }
    memcpy(buf, v, vlen);
    buf[vlen] = '\0';
    return 0;
}

/* Parse v[0..vlen) for s and store it into c. On failure c is unchanged. */
static int apply(kw_config_t *c, const setting_t *s, const char *v, size_t vlen,
                 const source_t *src, kw_err_t *err)
{
    char why[128];
    int64_t n;
    int b;

    switch (s->type) {
    case T_STRING: {
        char buf[KW_PATH_MAX];
        if (vlen >= s->size || vlen >= sizeof(buf)) {
            snprintf(why, sizeof(why), "too long (at most %zu bytes)", s->size - 1);
            return bad_value(err, src, s, v, vlen, why);
        }
        if (text_copy(buf, v, vlen) != 0)
            return bad_value(err, src, s, v, vlen, "must not contain control characters");
        if (s->check && s->check(buf, why, sizeof(why)) != 0)
            return bad_value(err, src, s, v, vlen, why);
        memcpy((char *)c + s->off, buf, vlen + 1);
        return 0;
    }
    case T_LIST: {
        char buf[KW_PATH_MAX];
        char *field = (char *)c + s->off;
        size_t have = strlen(field);
        if (vlen >= sizeof(buf))
            return bad_value(err, src, s, v, vlen, "too long (at most 1023 bytes)");
        if (text_copy(buf, v, vlen) != 0)
            return bad_value(err, src, s, v, vlen, "must not contain control characters");
        if (vlen == 0) { /* an empty value clears the list */
            field[0] = '\0';
            return 0;
        }
        if (s->check && s->check(buf, why, sizeof(why)) != 0)
            return bad_value(err, src, s, v, vlen, why);
        if (have + (have ? 1 : 0) + vlen + 1 > s->size)
            return bad_value(err, src, s, v, vlen, "too many values (the list is full)");
        if (have)
            field[have++] = '\n';
        memcpy(field + have, buf, vlen + 1);
        explicit_bzero(buf, sizeof(buf));
        return 0;
    }
    case T_BOOL:
        if (parse_bool(v, vlen, &b) != 0)
            return bad_value(err, src, s, v, vlen, "must be true or false (also yes/no, 1/0)");
        store_int(c, s, b);
        return 0;
    case T_INT:
    case T_SIZE: {
        int size = s->type == T_SIZE;
        if ((size ? parse_size(v, vlen, &n) : parse_int(v, vlen, &n)) != 0 || n < s->min ||
            n > s->max) {
            snprintf(why, sizeof(why),
                     size ? "must be a size from %lld to %lld bytes (e.g. 64k)"
                          : "must be a whole number from %lld to %lld",
                     (long long)s->min, (long long)s->max);
            return bad_value(err, src, s, v, vlen, why);
        }
        store_int(c, s, n);
        return 0;
    }
    case T_DURATION: {
        char lo[KW_DURATION_STR_MAX], hi[KW_DURATION_STR_MAX];
        if (parse_duration(v, vlen, &n) != 0 || n < s->min || n > s->max) {
            kw_duration_format(s->min, lo);
            kw_duration_format(s->max, hi);
            snprintf(why, sizeof(why), "must be a duration from %s to %s, e.g. 30s, 5m, 12h", lo,
                     hi);
            return bad_value(err, src, s, v, vlen, why);
        }
        store_int(c, s, n);
        return 0;
    }
    }
    return kw_err_set(err, KW_EINVAL, s->name, "%s: unknown setting type", s->name);
}

/* ---------------------------------------------------------------------------------------
 * Public entry points */

void kw_config_defaults(kw_config_t *c)
{
    source_t src = {"(built-in default)", 0, NULL};
    kw_err_t err;

    memset(c, 0, sizeof(*c));
    for (size_t i = 0; i < NSETTINGS; i++) {
        /* a default that fails its own validator is a bug in the table above */
        if (apply(c, &settings[i], settings[i].def, strlen(settings[i].def), &src, &err) != 0) {
            fprintf(stderr, "keyward: %s\n", err.msg);
            abort();
        }
    }
}

/* Decode the value part of a config-file line, p[0..len) with leading blanks already
 * skipped: a "quoted" value (\" and \\ are its only escapes) or bare text running to the
 * end of the line or to a '#' that starts it or follows a blank. Writes at most outlen
 * bytes. */
static int decode_value(const char *p, size_t len, char *out, size_t outlen, size_t *outn,
                        const char **why)
{
    size_t n = 0, i;

    if (len > 0 && p[0] == '"') {
        for (i = 1; i < len && p[i] != '"'; i++) {
            char ch = p[i];
            if (ch == '\\' && i + 1 < len && (p[i + 1] == '"' || p[i + 1] == '\\'))
                ch = p[++i];
            if (n == outlen) {
                *why = "value too long";
                return KW_EINVAL;
            }
            out[n++] = ch;
        }
        if (i == len) {
            *why = "missing closing quote";
            return KW_EINVAL;
        }
        for (i++; i < len && kw_is_blank(p[i]); i++)
            ;
        if (i < len && p[i] != '#') {
            *why = "unexpected text after the closing quote";
            return KW_EINVAL;
        }
        *outn = n;
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (p[i] == '#' && (i == 0 || kw_is_blank(p[i - 1])))
            break;
    }
    while (i > 0 && kw_is_blank(p[i - 1]))
        i--;
    if (i > outlen) {
        *why = "value too long";
        return KW_EINVAL;
    }
    memcpy(out, p, i);
    *outn = i;
    return 0;
}

static int file_error(kw_err_t *err, const source_t *src, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* "FILE:LINE: <message>" for problems with the line itself rather than with a value. */
static int file_error(kw_err_t *err, const source_t *src, const char *field, const char *fmt, ...)
{
    char obuf[ORIGIN_MAX + 1], msg[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return kw_err_set(err, KW_EINVAL, field, "%s:%u: %s",
                      short_origin(src->file, obuf, sizeof(obuf)), src->line, msg);
}

static int parse_line(kw_config_t *c, const char *p, size_t len, const source_t *src, kw_err_t *err)
{
    const char *name = p, *why = NULL;
    size_t namelen = 0, vlen = 0, i;
    int had_eq = 0;

    while (namelen < len && !kw_is_blank(p[namelen]) && p[namelen] != '=')
        namelen++;
    const setting_t *s = find_setting(name, namelen);
    if (s == NULL) {
        char shown[ECHO_MAX + 8];
        echo_value(name, namelen, shown, sizeof(shown));
        return file_error(err, src, "config", "unknown setting '%s'", shown);
    }
    if (s->flags & S_NOFILE)
        return file_error(err, src, s->name, "%s: not allowed inside a config file", s->name);

    i = namelen;
    while (i < len && kw_is_blank(p[i]))
        i++;
    if (i < len && p[i] == '=') {
        had_eq = 1;
        for (i++; i < len && kw_is_blank(p[i]); i++)
            ;
    }

    char buf[VALUE_MAX];
    if (decode_value(p + i, len - i, buf, sizeof(buf), &vlen, &why) != 0)
        return file_error(err, src, s->name, "%s: %s", s->name, why);
    int quoted = i < len && p[i] == '"';
    if (vlen == 0 && !quoted && !had_eq) {
        /* a bare name: "verify-requires-role" on its own line switches it on */
        if (s->type == T_BOOL)
            return apply(c, s, "true", 4, src, err);
        return file_error(err, src, s->name, "%s: missing value", s->name);
    }
    return apply(c, s, buf, vlen, src, err);
}

int kw_config_parse_text(kw_config_t *c, const char *text, size_t len, const char *origin,
                         kw_err_t *err)
{
    kw_config_t tmp = *c;
    source_t src = {origin ? origin : "config", 0, NULL};
    size_t pos = 0;

    /* a UTF-8 byte-order mark, as some editors write, is not part of the first name */
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        pos = 3;

    while (pos < len) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - text) : len;
        const char *p = text + pos;
        size_t n = end - pos;

        src.line++;
        pos = nl ? end + 1 : len;
        if (memchr(p, '\0', n) != NULL)
            return file_error(err, &src, "config", "NUL byte in line");
        if (n > 0 && p[n - 1] == '\r')
            n--;
        while (n > 0 && kw_is_blank(*p)) {
            p++;
            n--;
        }
        while (n > 0 && kw_is_blank(p[n - 1]))
            n--;
        if (n == 0 || p[0] == '#')
            continue;
        int rc = parse_line(&tmp, p, n, &src, err);
        if (rc != 0)
            return rc;
    }
    *c = tmp;
    return 0;
}

/* Read the whole file (at most CONFIG_FILE_MAX bytes) into a malloc'd buffer. */
static int read_file(const char *path, const char *what, char **out, size_t *outlen, kw_err_t *err)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int rc = 0;

    if (f == NULL)
        return kw_err_set(err, KW_EINVAL, "config", "%s: cannot open %s: %s", what, path,
                          strerror(errno));
    for (;;) {
        if (len == cap) {
            cap = cap ? cap * 2 : 4096;
            if (cap > CONFIG_FILE_MAX + 1)
                cap = CONFIG_FILE_MAX + 1;
            char *nb = realloc(buf, cap);
            if (nb == NULL) {
                rc = kw_err_set(err, KW_ENOMEM, "config", "%s: out of memory reading %s", what,
                                path);
                goto out;
            }
            buf = nb;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (len > CONFIG_FILE_MAX) {
            rc = kw_err_set(err, KW_EINVAL, "config", "%s: %s is larger than %d bytes", what, path,
                            CONFIG_FILE_MAX);
            goto out;
        }
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        rc = kw_err_set(err, KW_EINVAL, "config", "%s: cannot read %s: %s", what, path,
                        strerror(errno));
        goto out;
    }
    *out = buf;
    *outlen = len;
    buf = NULL;
out:
    free(buf);
    fclose(f);
    return rc;
}

/* One option from argv at *i: "--name value", "--name=value" or "--name" (booleans).
 * Advances *i past what it used. Returns 0, or KW_EINVAL for anything else. */
static int next_flag(int argc, char **argv, int *i, const setting_t **s, const char **v,
                     size_t *vlen, kw_err_t *err)
{
    const char *arg = argv[*i];
    char shown[ECHO_MAX + 8];

    if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0') {
        echo_value(arg, strlen(arg), shown, sizeof(shown));
        if (arg[0] == '-')
            return kw_err_set(err, KW_EINVAL, "", "unknown option %s (see keyward serve --help)",
                              shown);
        return kw_err_set(err, KW_EINVAL, "",
                          "unexpected argument \"%s\" (see keyward serve --help)", shown);
    }
    const char *name = arg + 2, *eq = strchr(name, '=');
    size_t namelen = eq ? (size_t)(eq - name) : strlen(name);

    *s = find_setting(name, namelen);
    if (*s == NULL) {
        echo_value(arg, eq ? (size_t)(eq - arg) : strlen(arg), shown, sizeof(shown));
        return kw_err_set(err, KW_EINVAL, "", "unknown option %s (see keyward serve --help)",
                          shown);
    }
    (*i)++;
    if (eq) {
        *v = eq + 1;
        *vlen = strlen(*v);
        return 0;
    }
    if ((*s)->type == T_BOOL) {
        *v = "true";
        *vlen = 4;
        return 0;
    }
    /* "--store --listen x" is a missing value, not a store called "--listen" */
    if (*i >= argc || argv[*i] == NULL || (strncmp(argv[*i], "--", 2) == 0 && argv[*i][2]))
        return kw_err_set(err, KW_EINVAL, (*s)->name, "--%s needs a value (%s)", (*s)->name,
                          (*s)->metavar ? (*s)->metavar : "VALUE");
    *v = argv[*i];
    *vlen = strlen(*v);
    (*i)++;
    return 0;
}

static const char *env_lookup(char **envp, const char *name)
{
    size_t n = strlen(name);
    if (envp == NULL)
        return NULL;
    for (char **e = envp; *e; e++)
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
            return *e + n + 1;
    return NULL;
}

/* argv holds only the flags (what follows `keyward serve`): no program or command name,
 * so `keyward serve stray` is an error rather than silently ignored. */
int kw_config_load(kw_config_t *c, int argc, char **argv, char **envp, kw_err_t *err)
{
    kw_config_t tmp = *c;
    const setting_t *s, *cfg = find_setting("config", 6);
    const char *v, *path = NULL, *what = "--config";
    size_t vlen;
    int rc;
    char envbuf[64];
    source_t flag = {NULL, 0, NULL};

    /* Pass 1: check the syntax of every flag and find --config (the last one wins). */
    for (int i = 0; i < argc && argv[i];) {
        if ((rc = next_flag(argc, argv, &i, &s, &v, &vlen, err)) != 0)
            return rc;
        if (s == cfg) {
            if ((rc = apply(&tmp, s, v, vlen, &flag, err)) != 0)
                return rc;
            path = tmp.config;
        }
    }
    if (path == NULL) {
        env_name(cfg, envbuf, sizeof(envbuf));
        const char *ev = env_lookup(envp, envbuf);
        source_t src = {NULL, 0, envbuf};
        if (ev && ev[0]) {
            if ((rc = apply(&tmp, cfg, ev, strlen(ev), &src, err)) != 0)
                return rc;
            path = tmp.config;
            what = envbuf;
        }
    }

    /* The file first, so that the environment and the flags override it. */
    if (path && path[0]) {
        char *text = NULL;
        size_t len = 0;
        if ((rc = read_file(path, what, &text, &len, err)) != 0)
            return rc;
        rc = kw_config_parse_text(&tmp, text, len, path, err);
        free(text);
        if (rc != 0)
            return rc;
    }

    /* The environment: an empty variable counts as unset. */
    for (size_t k = 0; k < NSETTINGS; k++) {
        if (settings[k].flags & S_NOENV)
            continue;
        env_name(&settings[k], envbuf, sizeof(envbuf));
        const char *ev = env_lookup(envp, envbuf);
        source_t src = {NULL, 0, envbuf};
        if (ev && ev[0] && (rc = apply(&tmp, &settings[k], ev, strlen(ev), &src, err)) != 0)
            return rc;
    }

    /* Pass 2: the flags, in order (a repeated flag: the last one wins). */
    for (int i = 0; i < argc && argv[i];) {
        if ((rc = next_flag(argc, argv, &i, &s, &v, &vlen, err)) != 0)
            return rc;
        if ((rc = apply(&tmp, s, v, vlen, &flag, err)) != 0)
            return rc;
    }
    *c = tmp;
    return 0;
}

/* Print text indented by indent, breaking at blanks so lines stay within width. */
static void print_wrapped(FILE *f, const char *text, int indent, int width)
{
    const char *p = text;
    while (*p) {
        size_t room = (size_t)(width - indent), n = strlen(p);
        if (n > room) {
            n = room;
            while (n > 0 && p[n] != ' ')
                n--;
            if (n == 0) /* one word longer than a line: let it overflow */
                n = strcspn(p, " ");
        }
        fprintf(f, "%*s%.*s\n", indent, "", (int)n, p);
        p += n;
        while (*p == ' ')
            p++;
    }
}

void kw_config_usage(FILE *f)
{
    char envbuf[64], flag[64];

    fprintf(f, "Settings (precedence: default < --config file < environment < flag).\n"
               "In a config file write `name = value`; booleans also take true/false.\n\n");
    for (size_t i = 0; i < NSETTINGS; i++) {
        const setting_t *s = &settings[i];
        env_name(s, envbuf, sizeof(envbuf));
        snprintf(flag, sizeof(flag), "--%s%s%s", s->name, s->metavar ? " " : "",
                 s->metavar ? s->metavar : "");
        if (s->flags & S_NOENV)
            snprintf(envbuf, sizeof(envbuf), "(flag only)");
        fprintf(f, "  %-34s %s, default: %s\n", flag, envbuf, s->def[0] ? s->def : "(empty)");
        print_wrapped(f, s->help, 6, 80);
    }
}

size_t kw_config_apply_live(kw_config_t *cur, const kw_config_t *next, kw_config_change_fn fn,
                            void *ud)
{
    size_t applied = 0;
    for (size_t i = 0; i < NSETTINGS; i++) {
        const setting_t *st = &settings[i];
        const char *a = (const char *)cur + st->off, *b = (const char *)next + st->off;
        int same = (st->type == T_STRING || st->type == T_LIST) ? strncmp(a, b, st->size) == 0
                                                                : memcmp(a, b, st->size) == 0;
        if (same)
            continue;
        int live = (st->flags & S_LIVE) != 0;
        if (live) {
            memcpy((char *)cur + st->off, b, st->size);
            applied++;
        }
        if (fn)
            fn(ud, st->name, live);
    }
    return applied;
}

int kw_config_info(size_t i, kw_config_info_t *out, char *env)
{
    if (i >= NSETTINGS)
        return -1;
    const setting_t *s = &settings[i];
    out->name = s->name;
    out->metavar = s->metavar;
    out->def = s->def;
    out->help = s->help;
    out->in_file = !(s->flags & S_NOFILE);
    out->in_env = !(s->flags & S_NOENV);
    if (env)
        env_name(s, env, 64);
    return 0;
}
