/* config.h - every `keyward serve` setting in one table (name, type, default, bounds,
 * help) driving the flag parser, KEYWARD_<NAME> environment variables, the --config file
 * and `keyward serve --help`. Precedence: defaults < config file < environment < flags. */
#ifndef KW_CONFIG_H
#define KW_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/err.h"

#define KW_PATH_MAX 1024

typedef struct kw_config {
    char listen[256];                 /* --listen HOST:PORT, default 127.0.0.1:8420 */
    char store[KW_PATH_MAX];          /* --store sqlite:PATH, default sqlite:./keyward.db */
    char admin_key_file[KW_PATH_MAX]; /* --admin-key-file, "" = beside the SQLite file */
    char config[KW_PATH_MAX];         /* --config FILE */
    int64_t scheduler_interval;       /* --scheduler-interval, seconds, default 60, min 1 */
    int64_t sync_interval;            /* --sync-interval, seconds, default 1 (PostgreSQL feed) */
    char smtp[512];                   /* --smtp smtp://HOST:PORT, "" = no e-mail */
    char mail_from[256];              /* --mail-from ADDR */
    char pepper_file[KW_PATH_MAX];    /* --pepper-file: server pepper for key digests */
    int64_t retention;                /* --retention, seconds, default 90d */
    int verify_requires_role;         /* --verify-requires-role (bool) */
    char trusted_ip_header[128];      /* --trusted-ip-header, "" = off */
    int webhook_allow_private;        /* --webhook-allow-private (bool) */
    int threads;                      /* --threads, gateway event-loop threads, default 2 */
    int64_t max_body;                 /* --max-body bytes, default 65536 */
    int64_t max_connections;          /* --max-connections, default 1024 */
    int64_t idle_timeout;             /* --idle-timeout seconds, default 60 */
    int64_t request_timeout;          /* --request-timeout seconds, default 60 */
    int64_t usage_flush;              /* --usage-flush-interval seconds, default 10 */
    int64_t auth_fail_limit;          /* --auth-fail-limit, default 10, 0 = off */
    int64_t auth_fail_window;         /* --auth-fail-window seconds, default 60 */
    char log_level[16];               /* --log-level debug|info|warn|error, default info */
    char sinks[8192];                 /* --sink (repeatable): one sink per line, "" = none */
    int64_t delivery_retry_min;       /* --delivery-retry-min, seconds, default 5 */
    int64_t delivery_max_age;         /* --delivery-max-age, seconds, default 3d */
    int64_t mail_daily_cap;           /* --mail-daily-cap, e-mails per recipient per day */
    int metrics_per_credential;       /* --metrics-per-credential (bool), default true */
    int64_t metrics_expiry_series;    /* --metrics-expiry-series, default 1000 */
    int64_t metrics_refresh;          /* --metrics-refresh, seconds, default 10 */
    int64_t shutdown_timeout;         /* --shutdown-timeout seconds, default 10 */
    int check_config;                 /* --check-config (flag only): validate and exit */
    /* --secrets-key-file: sealing key of stored secrets, "" = beside the SQLite file */
    char secrets_key_file[KW_PATH_MAX];
    char console[8];              /* --console on|off, default on */
    int64_t console_session_idle; /* --console-session-idle seconds, default 30m */
    int64_t console_session_max;  /* --console-session-max seconds, default 12h */
    /* messages: e-mail written for its reader (docs/mail.md) */
    char public_url[512];             /* --public-url https://HOST[/PATH], "" = no console links */
    char mail_templates[KW_PATH_MAX]; /* --mail-templates DIR, "" = the built-in ones */
    int mail_html;                    /* --mail-html (bool): add an HTML alternative part */
    char mail_reply_to[256];          /* --mail-reply-to ADDR: Reply-To, and whom readers ask */
    int renewal_notify_admins;        /* --renewal-notify-admins (bool): admins hear requests */
    char ca_file[KW_PATH_MAX];        /* --ca-file: extra CA for token endpoints */
} kw_config_t;

void kw_config_defaults(kw_config_t *c);

/* Apply, in order: the file named by --config / KEYWARD_CONFIG (if any), the environment
 * (KEYWARD_LISTEN, KEYWARD_STORE, KEYWARD_SCHEDULER_INTERVAL, ...), then argv (flags
 * after `serve`: "--name value" or "--name=value"; booleans take no value).
 * envp may be NULL to skip the environment. Returns 0, or KW_EINVAL with err naming the
 * setting (and the file line for config-file errors). */
int kw_config_load(kw_config_t *c, int argc, char **argv, char **envp, kw_err_t *err);

/* Parse config-file text (lines "name = value" or "name value", '#' comments, blank lines)
 * into c. origin names the file in errors. Returns 0 or KW_EINVAL ("FILE:LINE: ..."). */
int kw_config_parse_text(kw_config_t *c, const char *text, size_t len, const char *origin,
                         kw_err_t *err);

/* SIGHUP: for every setting whose value differs between cur and next (a freshly loaded
 * configuration), copy it into cur when the table marks it live-reloadable, and tell fn
 * (may be NULL) its name and whether it was applied (live = 1) or needs a restart (0).
 * The values themselves are never passed (they may hold secrets). Returns how many were
 * applied. The caller keeps readers of cur's strings out meanwhile (serve's reload lock). */
typedef void (*kw_config_change_fn)(void *ud, const char *name, int live);
size_t kw_config_apply_live(kw_config_t *cur, const kw_config_t *next, kw_config_change_fn fn,
                            void *ud);

/* Print the settings table (flag, env var, default, help) for `keyward serve --help`. */
void kw_config_usage(FILE *f);

/* One row of the settings table, for generated documents (man pages, completion). */
typedef struct kw_config_info {
    const char *name;    /* flag without "--", and the config-file name */
    const char *metavar; /* NULL for booleans */
    const char *def;     /* default as written, "" when empty */
    const char *help;
    int in_file; /* may appear in a config file */
    int in_env;  /* has a KEYWARD_<NAME> variable */
} kw_config_info_t;

/* Fill *out with row i (0-based) of the table and, when env is not NULL, its variable name
 * (at least 64 bytes). Returns 0, or -1 past the last row (the end, not an error). */
int kw_config_info(size_t i, kw_config_info_t *out, char *env);

#endif
