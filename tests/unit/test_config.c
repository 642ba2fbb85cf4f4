/* test_config.c - the `keyward serve` settings: defaults, every type, file < env < flag,
 * error messages that name the setting (and FILE:LINE), and docs/configuration.md kept in
 * step with kw_config_usage(). */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app/config.h"
#include "t.h"

#define MAXARGS 32

/* kw_config_load on defaults with env (NULL-terminated array, may be NULL) and the flags
 * given as NULL-terminated varargs (argv holds only what follows `keyward serve`). */
static int load(kw_config_t *c, kw_err_t *e, char **env, ...)
{
    char *argv[MAXARGS];
    int argc = 0;
    va_list ap;

    va_start(ap, env);
    for (char *a; argc < MAXARGS - 1 && (a = va_arg(ap, char *)) != NULL;)
        argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;
    kw_config_defaults(c);
    kw_err_clear(e);
    return kw_config_load(c, argc, argv, env, e);
}

static int parse(kw_config_t *c, kw_err_t *e, const char *text)
{
    kw_config_defaults(c);
    kw_err_clear(e);
    return kw_config_parse_text(c, text, strlen(text), "test.conf", e);
}

static char tmp_paths[8][64];
static int ntmp;

/* Eight slots, reused in turn (a case may run more than once: t.h, T_OOM). */
static const char *write_tmp(const char *text)
{
    char *path = tmp_paths[ntmp++ % 8];
    if (ntmp > 8)
        unlink(path);
    snprintf(path, 64, "/tmp/kw_test_config_XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
        perror("write_tmp");
        exit(1);
    }
    close(fd);
    return path;
}

#define CONTAINS(hay, needle) (strstr((hay), (needle)) != NULL)

static void test_defaults(void)
{
    kw_config_t c;
    memset(&c, 0x5a, sizeof(c));
    kw_config_defaults(&c);
    T_EQ_STR(c.listen, "127.0.0.1:8420");
    T_EQ_STR(c.store, "sqlite:./keyward.db");
    T_EQ_STR(c.admin_key_file, "");
    T_EQ_STR(c.config, "");
    T_EQ_INT(c.scheduler_interval, 60);
    T_EQ_STR(c.smtp, "");
    T_EQ_STR(c.mail_from, "");
    T_EQ_STR(c.pepper_file, "");
    T_EQ_INT(c.retention, 90LL * 86400);
    T_EQ_INT(c.verify_requires_role, 0);
    T_EQ_STR(c.trusted_ip_header, "");
    T_EQ_INT(c.webhook_allow_private, 0);
    T_EQ_INT(c.threads, 2);
    T_EQ_INT(c.max_body, 65536);
    T_EQ_INT(c.max_connections, 1024);
    T_EQ_INT(c.idle_timeout, 60);
    T_EQ_STR(c.log_level, "info");

    /* nothing given: defaults survive a load */
    kw_err_t e;
    char *env[] = {"PATH=/bin", "KEYWARD_ADDR=http://x:1", "KEYWARD_TOKEN=kw_x", NULL};
    T_EQ_INT(load(&c, &e, env, NULL), 0);
    T_EQ_STR(c.listen, "127.0.0.1:8420");
    T_EQ_INT(c.threads, 2);
}

static void test_types(void)
{
    kw_config_t c;
    kw_err_t e;

    /* string */
    T_EQ_INT(load(&c, &e, NULL, "--store", "postgresql://db.internal/keyward", "--mail-from",
                  "Keyward <keyward@example.com>", "--admin-key-file=/var/lib/keyward/admin.key",
                  "--pepper-file", "/etc/keyward/pepper", "--smtp", "smtp://mail:25",
                  "--trusted-ip-header", "X-Forwarded-For", NULL),
             0);
    T_EQ_STR(c.store, "postgresql://db.internal/keyward");
    T_EQ_STR(c.mail_from, "Keyward <keyward@example.com>");
    T_EQ_STR(c.admin_key_file, "/var/lib/keyward/admin.key");
    T_EQ_STR(c.pepper_file, "/etc/keyward/pepper");
    T_EQ_STR(c.smtp, "smtp://mail:25");
    T_EQ_STR(c.trusted_ip_header, "X-Forwarded-For");

    /* an empty string clears a setting that allows it */
    T_EQ_INT(load(&c, &e, NULL, "--smtp", "smtp://mail:25", "--smtp=", NULL), 0);
    T_EQ_STR(c.smtp, "");

    /* duration: units, compound, bare seconds */
    T_EQ_INT(load(&c, &e, NULL, "--scheduler-interval", "1s", "--retention", "30d",
                  "--idle-timeout", "2m", NULL),
             0);
    T_EQ_INT(c.scheduler_interval, 1);
    T_EQ_INT(c.retention, 30LL * 86400);
    T_EQ_INT(c.idle_timeout, 120);
    T_EQ_INT(load(&c, &e, NULL, "--retention=1d12h", "--scheduler-interval=90", NULL), 0);
    T_EQ_INT(c.retention, 36LL * 3600);
    T_EQ_INT(c.scheduler_interval, 90);
    T_EQ_INT(load(&c, &e, NULL, "--retention", "2w", NULL), 0);
    T_EQ_INT(c.retention, 14LL * 86400);

    /* int, at both bounds */
    T_EQ_INT(load(&c, &e, NULL, "--threads", "1", "--max-connections", "1000000", NULL), 0);
    T_EQ_INT(c.threads, 1);
    T_EQ_INT(c.max_connections, 1000000);
    T_EQ_INT(load(&c, &e, NULL, "--threads=64", NULL), 0);
    T_EQ_INT(c.threads, 64);

    /* size: plain bytes and suffixes (powers of 1024) */
    static const struct {
        const char *in;
        int64_t want;
    } sizes[] = {
        {"1024", 1024},  {"64k", 65536},    {"64K", 65536},    {"64KiB", 65536}, {"64kb", 65536},
        {"1m", 1048576}, {"2MiB", 2097152}, {"64m", 67108864}, {"4096b", 4096},
    };
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        T_EQ_INT(load(&c, &e, NULL, "--max-body", sizes[i].in, NULL), 0);
        T_EQ_INT(c.max_body, sizes[i].want);
    }

    /* log level is normalised to lower case */
    T_EQ_INT(load(&c, &e, NULL, "--log-level", "WARN", NULL), 0);
    T_EQ_STR(c.log_level, "warn");
    T_EQ_INT(load(&c, &e, NULL, "--log-level=debug", NULL), 0);
    T_EQ_STR(c.log_level, "debug");

    /* a repeated flag: the last one wins */
    T_EQ_INT(load(&c, &e, NULL, "--threads", "3", "--threads", "5", NULL), 0);
    T_EQ_INT(c.threads, 5);
}

static void test_booleans(void)
{
    kw_config_t c;
    kw_err_t e;
    static const struct {
        const char *v;
        int want;
    } forms[] = {
        {"true", 1}, {"false", 0}, {"yes", 1}, {"no", 0},   {"1", 1},
        {"0", 0},    {"on", 1},    {"off", 0}, {"TRUE", 1}, {"No", 0},
    };

    T_EQ_INT(load(&c, &e, NULL, "--verify-requires-role", "--webhook-allow-private", NULL), 0);
    T_EQ_INT(c.verify_requires_role, 1);
    T_EQ_INT(c.webhook_allow_private, 1);
    for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
        char flag[64];
        snprintf(flag, sizeof(flag), "--verify-requires-role=%s", forms[i].v);
        T_EQ_INT(load(&c, &e, NULL, "--verify-requires-role", flag, NULL), 0);
        T_EQ_INT(c.verify_requires_role, forms[i].want);
    }

    T_EQ_INT(load(&c, &e, NULL, "--verify-requires-role=maybe", NULL), KW_EINVAL);
    T_EQ_STR(e.field, "verify-requires-role");
    T_CHECK(CONTAINS(e.msg, "--verify-requires-role"));

    /* booleans take no separate value: "false" is then a stray argument, not ignored */
    T_EQ_INT(load(&c, &e, NULL, "--verify-requires-role", "false", NULL), KW_EINVAL);
    T_CHECK(CONTAINS(e.msg, "unexpected argument \"false\""));

    /* file: bare name switches on, explicit values work */
    T_EQ_INT(parse(&c, &e, "verify-requires-role\nwebhook-allow-private = yes\n"), 0);
    T_EQ_INT(c.verify_requires_role, 1);
    T_EQ_INT(c.webhook_allow_private, 1);
    T_EQ_INT(parse(&c, &e, "verify-requires-role = false\n"), 0);
    T_EQ_INT(c.verify_requires_role, 0);

    /* environment */
    char *env[] = {"KEYWARD_WEBHOOK_ALLOW_PRIVATE=yes", "KEYWARD_VERIFY_REQUIRES_ROLE=0", NULL};
    T_EQ_INT(load(&c, &e, env, NULL), 0);
    T_EQ_INT(c.webhook_allow_private, 1);
    T_EQ_INT(c.verify_requires_role, 0);
}

static void test_precedence(void)
{
    kw_config_t c;
    kw_err_t e;
    const char *path = write_tmp("# keyward test config\n"
                                 "listen = 127.0.0.1:9001\n"
                                 "threads = 3\n"
                                 "log-level = debug\n"
                                 "retention = 7d\n"
                                 "mail-from = file@example.com\n");
    char cfgenv[128];
    snprintf(cfgenv, sizeof(cfgenv), "KEYWARD_CONFIG=%s", path);

    /* file only */
    T_EQ_INT(load(&c, &e, NULL, "--config", path, NULL), 0);
    T_EQ_STR(c.config, path);
    T_EQ_STR(c.listen, "127.0.0.1:9001");
    T_EQ_INT(c.threads, 3);
    T_EQ_STR(c.log_level, "debug");
    T_EQ_INT(c.retention, 7LL * 86400);

    /* file < env < flag */
    char *env[] = {"KEYWARD_THREADS=4", "KEYWARD_LISTEN=127.0.0.1:9002", "KEYWARD_LOG_LEVEL=warn",
                   NULL};
    T_EQ_INT(load(&c, &e, env, "--listen", "127.0.0.1:9003", "--config", path, NULL), 0);
    T_EQ_STR(c.listen, "127.0.0.1:9003"); /* flag over env over file */
    T_EQ_INT(c.threads, 4);               /* env over file */
    T_EQ_STR(c.log_level, "warn");        /* env over file */
    T_EQ_INT(c.retention, 7LL * 86400);   /* file over default */
    T_EQ_STR(c.mail_from, "file@example.com");

    /* the file can come from KEYWARD_CONFIG */
    char *env2[] = {cfgenv, "KEYWARD_THREADS=6", NULL};
    T_EQ_INT(load(&c, &e, env2, NULL), 0);
    T_EQ_STR(c.listen, "127.0.0.1:9001");
    T_EQ_INT(c.threads, 6);
    T_EQ_STR(c.config, path);

    /* --config beats KEYWARD_CONFIG: the env names a file that does not exist */
    char *env3[] = {"KEYWARD_CONFIG=/nonexistent/keyward.conf", NULL};
    T_EQ_INT(load(&c, &e, env3, "--config", path, NULL), 0);
    T_EQ_STR(c.listen, "127.0.0.1:9001");
    T_EQ_STR(c.config, path);

    /* a missing file is an error that names its source */
    T_EQ_INT(load(&c, &e, env3, NULL), KW_EINVAL);
    T_CHECK(CONTAINS(e.msg, "KEYWARD_CONFIG"));
    T_CHECK(CONTAINS(e.msg, "/nonexistent/keyward.conf"));
    T_EQ_INT(load(&c, &e, NULL, "--config=/nonexistent/x.conf", NULL), KW_EINVAL);
    T_CHECK(CONTAINS(e.msg, "--config"));

    /* an empty variable counts as unset */
    char *env4[] = {"KEYWARD_THREADS=", "KEYWARD_LISTEN=", NULL};
    T_EQ_INT(load(&c, &e, env4, NULL), 0);
    T_EQ_INT(c.threads, 2);
    T_EQ_STR(c.listen, "127.0.0.1:8420");

    /* an error in the file carries its path and line */
    const char *badpath = write_tmp("listen = 127.0.0.1:1\n\n# comment\nthreads = 99\n");
    T_EQ_INT(load(&c, &e, NULL, "--config", badpath, NULL), KW_EINVAL);
    char want[128];
    snprintf(want, sizeof(want), "%s:4: threads:", badpath);
    T_CHECK(strncmp(e.msg, want, strlen(want)) == 0);
    T_EQ_STR(e.field, "threads");
}

/* One bad value per setting, tried as a flag, a variable and a file line. */
static void test_bad_values(void)
{
    static const struct {
        const char *name, *env, *value;
    } bad[] = {
        {"listen", "KEYWARD_LISTEN", "localhost"},
        {"listen", "KEYWARD_LISTEN", "127.0.0.1:0"},
        {"store", "KEYWARD_STORE", "mysql://db/keyward"},
        {"store", "KEYWARD_STORE", "sqlite:"},
        {"admin-key-file", "KEYWARD_ADMIN_KEY_FILE", "/tmp/a\tb"},
        {"config", "KEYWARD_CONFIG", "/tmp/a\nb"},
        {"scheduler-interval", "KEYWARD_SCHEDULER_INTERVAL", "0s"},
        {"scheduler-interval", "KEYWARD_SCHEDULER_INTERVAL", "2d"},
        {"scheduler-interval", "KEYWARD_SCHEDULER_INTERVAL", "soon"},
        {"smtp", "KEYWARD_SMTP", "mail.example.com:25"},
        {"mail-from", "KEYWARD_MAIL_FROM", "nobody"},
        {"pepper-file", "KEYWARD_PEPPER_FILE", "/etc/\x7fpepper"},
        {"retention", "KEYWARD_RETENTION", "-5d"},
        {"retention", "KEYWARD_RETENTION", "forever"},
        {"verify-requires-role", "KEYWARD_VERIFY_REQUIRES_ROLE", "2"},
        {"trusted-ip-header", "KEYWARD_TRUSTED_IP_HEADER", "X Forwarded For"},
        {"webhook-allow-private", "KEYWARD_WEBHOOK_ALLOW_PRIVATE", "perhaps"},
        {"threads", "KEYWARD_THREADS", "0"},
        {"threads", "KEYWARD_THREADS", "65"},
        {"threads", "KEYWARD_THREADS", "two"},
        {"threads", "KEYWARD_THREADS", "99999999999999999999999"},
        {"max-body", "KEYWARD_MAX_BODY", "512"},
        {"max-body", "KEYWARD_MAX_BODY", "1t"},
        {"max-body", "KEYWARD_MAX_BODY", "65m"},
        {"max-connections", "KEYWARD_MAX_CONNECTIONS", "0"},
        {"max-connections", "KEYWARD_MAX_CONNECTIONS", "1e3"},
        {"idle-timeout", "KEYWARD_IDLE_TIMEOUT", "0"},
        {"idle-timeout", "KEYWARD_IDLE_TIMEOUT", "5 s"},
        {"log-level", "KEYWARD_LOG_LEVEL", "verbose"},
    };
    kw_config_t c, before;
    kw_err_t e;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char flag[256], envvar[256], line[256], want[96];

        snprintf(flag, sizeof(flag), "--%s=%s", bad[i].name, bad[i].value);
        T_EQ_INT(load(&c, &e, NULL, flag, NULL), KW_EINVAL);
        T_EQ_STR(e.field, bad[i].name);
        snprintf(want, sizeof(want), "--%s: ", bad[i].name);
        if (strncmp(e.msg, want, strlen(want)) != 0)
            printf("# flag %s: %s\n", flag, e.msg);
        T_CHECK(strncmp(e.msg, want, strlen(want)) == 0);

        snprintf(envvar, sizeof(envvar), "%s=%s", bad[i].env, bad[i].value);
        char *env[] = {envvar, NULL};
        T_EQ_INT(load(&c, &e, env, NULL), KW_EINVAL);
        T_EQ_STR(e.field, bad[i].name);
        T_CHECK(CONTAINS(e.msg, bad[i].env));

        if (strcmp(bad[i].name, "config") == 0)
            continue; /* not allowed in a file at all: see test_file_errors */
        snprintf(line, sizeof(line), "# first line\n%s = \"%s\"\n", bad[i].name, bad[i].value);
        T_EQ_INT(parse(&c, &e, line), KW_EINVAL);
        T_EQ_STR(e.field, bad[i].name);
        snprintf(want, sizeof(want), "test.conf:2: %s: ", bad[i].name);
        if (strncmp(e.msg, want, strlen(want)) != 0)
            printf("# file %s: %s\n", bad[i].name, e.msg);
        T_CHECK(strncmp(e.msg, want, strlen(want)) == 0);
    }

    /* a failed load or parse leaves the config as it was */
    kw_config_defaults(&before);
    c = before;
    char *argv[] = {"--threads", "8", "--listen", "nope", NULL};
    T_EQ_INT(kw_config_load(&c, 4, argv, NULL, &e), KW_EINVAL);
    T_CHECK(memcmp(&c, &before, sizeof(c)) == 0);
    const char *text = "threads = 8\nlisten = nope\n";
    T_EQ_INT(kw_config_parse_text(&c, text, strlen(text), "x", &e), KW_EINVAL);
    T_CHECK(memcmp(&c, &before, sizeof(c)) == 0);

    /* the bad value is quoted back, but never for settings that may hold a password */
    T_EQ_INT(load(&c, &e, NULL, "--threads", "seven", NULL), KW_EINVAL);
    T_CHECK(CONTAINS(e.msg, "\"seven\""));
    T_EQ_INT(load(&c, &e, NULL, "--store", "mysql://root:hunter2@db/keyward", NULL), KW_EINVAL);
    T_CHECK(!CONTAINS(e.msg, "hunter2"));
    T_EQ_INT(load(&c, &e, NULL, "--smtp", "ftp://me:hunter2@mail", NULL), KW_EINVAL);
    T_CHECK(!CONTAINS(e.msg, "hunter2"));
    T_EQ_INT(parse(&c, &e, "store = mysql://root:hunter2@db\n"), KW_EINVAL);
    T_CHECK(!CONTAINS(e.msg, "hunter2"));

    /* too long for the field */
    char longpath[KW_PATH_MAX + 8];
    memset(longpath, 'a', sizeof(longpath));
    longpath[0] = '/';
    longpath[KW_PATH_MAX - 1] = '\0'; /* 1023 bytes: fits */
    T_EQ_INT(load(&c, &e, NULL, "--pepper-file", longpath, NULL), 0);
    T_EQ_INT(strlen(c.pepper_file), KW_PATH_MAX - 1);
    longpath[KW_PATH_MAX - 1] = 'a';
    longpath[KW_PATH_MAX] = '\0'; /* 1024 bytes: one too many */
    T_EQ_INT(load(&c, &e, NULL, "--pepper-file", longpath, NULL), KW_EINVAL);
    T_CHECK(CONTAINS(e.msg, "too long"));
    T_EQ_STR(e.field, "pepper-file");
}

static void test_file_syntax(void)
{
    kw_config_t c;
    kw_err_t e;

    /* both separators, comments, blank lines, CRLF, indentation, a BOM */
    T_EQ_INT(parse(&c, &e,
                   "\xEF\xBB\xBF# keyward.conf\r\n"
                   "\r\n"
                   "   listen 0.0.0.0:8421\r\n"
                   "threads=7\n"
                   "\tmax-body   =   1m   # inline comment\n"
                   "   # indented comment\n"
                   "log-level error"),
             0);
    T_EQ_STR(c.listen, "0.0.0.0:8421");
    T_EQ_INT(c.threads, 7);
    T_EQ_INT(c.max_body, 1048576);
    T_EQ_STR(c.log_level, "error");

    /* quoted values: spaces, '#', escaped quote and backslash kept */
    T_EQ_INT(parse(&c, &e,
                   "admin-key-file = \"/var/lib/key ward/#admin.key\"  # comment\n"
                   "mail-from = \"\\\"Keyward\\\" <k@example.com>\"\n"
                   "pepper-file \"C:\\\\pepper\\x\"\n"),
             0);
    T_EQ_STR(c.admin_key_file, "/var/lib/key ward/#admin.key");
    T_EQ_STR(c.mail_from, "\"Keyward\" <k@example.com>");
    T_EQ_STR(c.pepper_file, "C:\\pepper\\x");

    /* a '#' inside an unquoted value stays, an empty quoted value clears */
    T_EQ_INT(parse(&c, &e, "admin-key-file = /tmp/a#b\nsmtp = \"\"\n"), 0);
    T_EQ_STR(c.admin_key_file, "/tmp/a#b");
    T_EQ_STR(c.smtp, "");
    T_EQ_INT(parse(&c, &e, "mail-from =\n"), 0);
    T_EQ_STR(c.mail_from, "");

    /* a comment right after the name or the '=' is no value */
    T_EQ_INT(parse(&c, &e, "verify-requires-role   # switch it on\n"), 0);
    T_EQ_INT(c.verify_requires_role, 1);
    T_EQ_INT(parse(&c, &e, "threads # four\n"), KW_EINVAL);
    T_CHECK(CONTAINS(e.msg, "test.conf:1: threads: missing value"));
    T_EQ_INT(parse(&c, &e, "mail-from = # none\n"), 0);
    T_EQ_STR(c.mail_from, "");

    /* a file with no final newline, and an empty file */
    T_EQ_INT(parse(&c, &e, "threads = 9"), 0);
    T_EQ_INT(c.threads, 9);
    T_EQ_INT(parse(&c, &e, ""), 0);
    T_EQ_INT(c.threads, 2);
}

static void test_file_errors(void)
{
    static const struct {
        const char *text, *prefix, *field;
    } cases[] = {
        {"listen = 127.0.0.1:1\nbogus = 1\n", "test.conf:2: unknown setting 'bogus'", "config"},
        {"# c\n\n\nthreads = 0\n", "test.conf:4: threads: must be", "threads"},
        {"listen\n", "test.conf:1: listen: missing value", "listen"},
        {"threads =\n", "test.conf:1: threads: must be", "threads"},
        {"store = \"sqlite:/x\n", "test.conf:1: store: missing closing quote", "store"},
        {"store = \"sqlite:/x\" junk\n", "test.conf:1: store: unexpected text", "store"},
        {"config = /etc/other.conf\n", "test.conf:1: config: not allowed", "config"},
        {"Listen = 127.0.0.1:1\n", "test.conf:1: unknown setting 'Listen'", "config"},
        {"\n\nlog-level = loud\r\n", "test.conf:3: log-level: must be", "log-level"},
        {"listen = [::1:80\n", "test.conf:1: listen: must be HOST:PORT", "listen"},
    };
    kw_config_t c;
    kw_err_t e;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        T_EQ_INT(parse(&c, &e, cases[i].text), KW_EINVAL);
        if (strncmp(e.msg, cases[i].prefix, strlen(cases[i].prefix)) != 0)
            printf("# case %zu: %s\n", i, e.msg);
        T_CHECK(strncmp(e.msg, cases[i].prefix, strlen(cases[i].prefix)) == 0);
        T_EQ_STR(e.field, cases[i].field);
    }

    /* a NUL byte inside the text is an error on its line, not the end of the file */
    static const char nul[] = "threads = 3\nlisten = 1\0.0.0.1:80\n";
    kw_config_defaults(&c);
    T_EQ_INT(kw_config_parse_text(&c, nul, sizeof(nul) - 1, "n.conf", &e), KW_EINVAL);
    T_CHECK(strncmp(e.msg, "n.conf:2: ", 10) == 0);

    /* a very long file name keeps its tail, so ":LINE:" survives */
    char origin[600];
    memset(origin, 'd', sizeof(origin));
    memcpy(origin + sizeof(origin) - 12, "/keyward.cnf", 12);
    origin[sizeof(origin) - 1] = '\0';
    kw_config_defaults(&c);
    T_EQ_INT(kw_config_parse_text(&c, "threads = 0", 11, origin, &e), KW_EINVAL);
    T_CHECK(CONTAINS(e.msg, "/keyward.cn:1: threads: must be"));
}

static void test_unknown_option(void)
{
    kw_config_t c;
    kw_err_t e;

    T_EQ_INT(load(&c, &e, NULL, "--nope", NULL), KW_EINVAL);
    T_EQ_STR(e.msg, "unknown option --nope (see keyward serve --help)");
    T_EQ_INT(load(&c, &e, NULL, "--threads", "3", "--nope=1", NULL), KW_EINVAL);
    T_EQ_STR(e.msg, "unknown option --nope (see keyward serve --help)");
    T_EQ_INT(load(&c, &e, NULL, "-x", NULL), KW_EINVAL);
    T_EQ_STR(e.msg, "unknown option -x (see keyward serve --help)");
    T_EQ_INT(load(&c, &e, NULL, "--", NULL), KW_EINVAL);
    T_EQ_STR(e.msg, "unknown option -- (see keyward serve --help)");
    T_EQ_INT(load(&c, &e, NULL, "--help", NULL), KW_EINVAL); /* the caller handles --help */
    T_EQ_INT(load(&c, &e, NULL, "stray", NULL), KW_EINVAL);
    T_CHECK(CONTAINS(e.msg, "unexpected argument \"stray\""));

    /* a missing value */
    T_EQ_INT(load(&c, &e, NULL, "--listen", NULL), KW_EINVAL);
    T_EQ_STR(e.msg, "--listen needs a value (HOST:PORT)");
    T_EQ_STR(e.field, "listen");
    T_EQ_INT(load(&c, &e, NULL, "--store", "--listen", "127.0.0.1:1", NULL), KW_EINVAL);
    T_EQ_STR(e.msg, "--store needs a value (URL)");

    /* unknown options are reported before a config file is read */
    T_EQ_INT(load(&c, &e, NULL, "--config", "/nonexistent", "--nope", NULL), KW_EINVAL);
    T_CHECK(CONTAINS(e.msg, "unknown option --nope"));

    /* argv is the flags only: a command name in front is a stray argument */
    T_EQ_INT(load(&c, &e, NULL, "serve", "--threads", "9", NULL), KW_EINVAL);
    T_CHECK(CONTAINS(e.msg, "unexpected argument \"serve\""));
    char *argv0[] = {NULL};
    T_EQ_INT(kw_config_load(&c, 0, argv0, NULL, &e), 0);
}

static void test_listen_forms(void)
{
    static const char *good[] = {
        "127.0.0.1:8420",
        "0.0.0.0:1",
        "[::1]:8420",
        "[::]:65535",
        "localhost:8420",
        "keyward.internal:443",
        "[fe80::1]:80",
        "[::ffff:10.0.0.1]:8420",
        "my-host.example.com.:8080",
    };
    static const char *bad[] = {
        "127.0.0.1",      ":8420",         "127.0.0.1:",       "127.0.0.1:0", "127.0.0.1:65536",
        "127.0.0.1:-1",   "127.0.0.1:80a", "127.0.0.1:008420", "::1:8420",    "[::1]",
        "[::1]8420",      "[::1:8420",     "[zz::1]:80",       "[]:80",       "1.2.3:80",
        "999.1.1.1:80",   "bad host:80",   "-host:80",         "host-:80",    "a..b:80",
        "[127.0.0.1]:80",
    };
    kw_config_t c;
    kw_err_t e;

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        if (load(&c, &e, NULL, "--listen", good[i], NULL) != 0)
            printf("# rejected %s: %s\n", good[i], e.msg);
        T_EQ_STR(c.listen, good[i]);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = load(&c, &e, NULL, "--listen", bad[i], NULL);
        if (rc != KW_EINVAL)
            printf("# accepted %s\n", bad[i]);
        T_EQ_INT(rc, KW_EINVAL);
        T_EQ_STR(e.field, "listen");
    }
    T_EQ_INT(load(&c, &e, NULL, "--listen", "::1:8420", NULL), KW_EINVAL);
    T_CHECK(CONTAINS(e.msg, "[::1]:8420"));
}

static void test_store_forms(void)
{
    static const char *good[] = {"sqlite:./keyward.db", "sqlite:/var/lib/keyward/k.db",
                                 "postgresql://kw@db/keyward", "postgres://db/keyward",
                                 "postgresql:///keyward"};
    kw_config_t c;
    kw_err_t e;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        T_EQ_INT(load(&c, &e, NULL, "--store", good[i], NULL), 0);
        T_EQ_STR(c.store, good[i]);
    }
    T_EQ_INT(load(&c, &e, NULL, "--store", "./keyward.db", NULL), KW_EINVAL);
    T_EQ_STR(e.field, "store");
    T_CHECK(CONTAINS(e.msg, "sqlite:PATH"));
}

/* Every setting in kw_config_usage() has a row in docs/configuration.md giving its flag,
 * variable and default. Skipped when the docs are not where the source tree puts them. */
static void test_usage_matches_docs(void)
{
    char *usage = NULL, docpath[512];
    size_t usage_len = 0;
    FILE *m = open_memstream(&usage, &usage_len);
    kw_config_usage(m);
    fclose(m);
    T_CHECK(usage_len > 0);

    /* __FILE__ is ".../tests/unit/test_config.c": the repo root is what comes before it */
    const char *self = __FILE__, *tail = strstr(self, "tests/unit/test_config.c");
    snprintf(docpath, sizeof(docpath), "%.*sdocs/configuration.md", (int)(tail ? tail - self : 0),
             self);
    FILE *f = fopen(docpath, "r");
    if (f == NULL) {
        printf("# skip: %s not found\n", docpath);
        free(usage);
        return;
    }
    static char doc[65536];
    size_t doclen = fread(doc, 1, sizeof(doc) - 1, f);
    doc[doclen] = '\0';
    fclose(f);

    int settings = 0;
    for (char *line = strtok(usage, "\n"); line; line = strtok(NULL, "\n")) {
        /* "  --name METAVAR      KEYWARD_NAME, default: VALUE" */
        char flag[64], env[64], def[128], row[256];
        if (strncmp(line, "  --", 4) != 0)
            continue;
        if (sscanf(line, " %63s", flag) != 1)
            continue;
        if (strstr(line, "(flag only)")) /* --check-config: a row of its own in the docs */
            continue;
        char *envp = strstr(line, "KEYWARD_"), *defp = strstr(line, ", default: ");
        T_CHECK(envp && defp);
        if (!envp || !defp)
            continue;
        snprintf(env, sizeof(env), "%.*s", (int)(defp - envp), envp);
        snprintf(def, sizeof(def), "%s", defp + 11);
        settings++;

        /* the doc row: "| `--name` | `KEYWARD_NAME` | `name` | `default` | meaning |"
         * (the config-file column is free text: --config has none) */
        snprintf(row, sizeof(row), "| `%s` | `%s` | ", flag, env);
        char *at = strstr(doc, row);
        if (at == NULL)
            printf("# docs/configuration.md lacks a row starting %s\n", row);
        T_CHECK(at != NULL);
        if (at == NULL)
            continue;
        char *cell = strchr(at + strlen(row), '|');
        char want[160];
        if (strcmp(def, "(empty)") == 0)
            snprintf(want, sizeof(want), "| (empty) |");
        else
            snprintf(want, sizeof(want), "| `%.128s` |", def);
        if (cell == NULL || strncmp(cell, want, strlen(want)) != 0)
            printf("# docs/configuration.md: default of %s should read: %s\n", flag, want);
        T_CHECK(cell != NULL && strncmp(cell, want, strlen(want)) == 0);
    }
    /* and no row for a setting that does not exist: as many "| `--" rows as settings */
    int rows = 0;
    for (const char *p = doc; (p = strstr(p, "\n| `--")) != NULL; p++) {
        const char *eol = strchr(p + 1, '\n');
        const char *fo = strstr(p, "| (flag only) |"); /* counted apart, like the usage lines */
        rows += !(fo && (!eol || fo < eol));
    }
    T_EQ_INT(settings, rows);
    T_CHECK(settings > 20);
    free(usage);
}

/* restart: SIGHUP applies the rows marked live, reports the others and leaves them. */
static int live_n, restart_n;
static char names[256];
static void note_change(void *ud, const char *name, int live)
{
    (void)ud;
    live ? live_n++ : restart_n++;
    strncat(names, name, sizeof(names) - strlen(names) - 2);
    strcat(names, live ? "+" : "-");
}

static void test_apply_live(void)
{
    kw_config_t cur, next;
    kw_err_t e;
    live_n = restart_n = 0; /* the case may run more than once (t.h, T_OOM) */
    names[0] = '\0';
    T_EQ_INT(load(&cur, &e, NULL, "--listen", "127.0.0.1:1", NULL), 0);
    T_EQ_INT(load(&next, &e, NULL, "--listen", "127.0.0.1:2", "--log-level", "debug", "--sink",
                  "log", "--shutdown-timeout", "3s", NULL),
             0);
    T_EQ_INT(next.shutdown_timeout, 3);
    T_EQ_INT(cur.shutdown_timeout, 10); /* the default */
    T_EQ_INT((int)kw_config_apply_live(&cur, &next, note_change, NULL), 3);
    T_EQ_INT(live_n, 3);
    T_EQ_INT(restart_n, 1);
    T_CHECK(strcmp(names, "listen-log-level+sink+shutdown-timeout+") == 0);
    T_CHECK(strcmp(cur.listen, "127.0.0.1:1") == 0); /* needs a restart: unchanged */
    T_CHECK(strcmp(cur.log_level, "debug") == 0);
    T_CHECK(strcmp(cur.sinks, "log") == 0);
    T_EQ_INT(cur.shutdown_timeout, 3);
    /* nothing changed: nothing reported */
    live_n = restart_n = 0;
    T_EQ_INT((int)kw_config_apply_live(&cur, &cur, note_change, NULL), 0);
    T_EQ_INT(live_n + restart_n, 0);
}

int main(void)
{
    T_RUN(test_defaults);
    T_RUN(test_types);
    T_RUN(test_booleans);
    T_RUN(test_precedence);
    T_RUN(test_bad_values);
    T_RUN(test_file_syntax);
    T_RUN(test_file_errors);
    T_RUN(test_unknown_option);
    T_RUN(test_listen_forms);
    T_RUN(test_store_forms);
    T_RUN(test_usage_matches_docs);
    T_RUN(test_apply_live);
    for (int i = 0; i < ntmp && i < 8; i++)
        unlink(tmp_paths[i]);
    T_DONE();
}
