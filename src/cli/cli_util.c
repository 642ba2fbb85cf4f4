/* cli_util.c - what every part of the client shares and nothing in it depends on: the
 * one-line error convention ("keyward: <reason>" on stderr), allocation that cannot fail,
 * wiping a secret before freeing it, and making server text safe for a terminal. It knows
 * no command, no flag and no HTTP. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_util.h"

/* The length of a UTF-8 sequence at p that must not reach a terminal raw, with its code
 * point in *cp; 0 when p starts a harmless character. Unsafe: C1 controls, and the
 * characters that reorder or break lines (bidi embeddings, overrides and isolates, the
 * directional marks, U+2028/U+2029): "Trojan Source"-style names would otherwise print
 * text other than what they hold. (C0 controls and DEL are handled by the caller.) */
static size_t util_unsafe(const unsigned char *p, unsigned *cp)
{
    if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
        *cp = p[1];
        return 2;
    }
    if (p[0] == 0xd8 && p[1] == 0x9c) { /* U+061C ARABIC LETTER MARK */
        *cp = 0x61c;
        return 2;
    }
    if (p[0] == 0xe2 && (p[1] == 0x80 || p[1] == 0x81) && (p[2] & 0xc0) == 0x80) {
        unsigned c = 0x2000u | ((unsigned)(p[1] & 0x3f) << 6) | (p[2] & 0x3fu);
        if (c == 0x200e || c == 0x200f || (c >= 0x2028 && c <= 0x202e) ||
            (c >= 0x2066 && c <= 0x2069)) {
            *cp = c;
            return 3;
        }
    }
    return 0;
}

/* s made terminal-safe: C0 controls (but '\n' when keep_nl) and DEL become '?', C1
 * controls, bidi and line-separator characters are written as \u202E. Caller frees. */
static char *util_clean(const char *s, int keep_nl)
{
    char *d = kw_cli_xmalloc(strlen(s) * 3 + 1), *q = d;
    const unsigned char *p = (const unsigned char *)s;
    unsigned cp;
    size_t n;

    while (*p) {
        if ((*p < 0x20 && !(keep_nl && *p == '\n')) || *p == 0x7f) {
            *q++ = '?';
            p++;
        } else if ((n = util_unsafe(p, &cp)) != 0) {
            q += sprintf(q, "\\u%04X", cp);
            p += n;
        } else {
            *q++ = (char)*p++;
        }
    }
    *q = '\0';
    return d;
}

char *kw_cli_clean(const char *s)
{
    return util_clean(s, 0);
}

char *kw_cli_clean_lines(const char *s)
{
    return util_clean(s, 1);
}

/* ---- errors and memory ---- */

/* Write msg to stderr as "keyward: msg\n", on one line, without terminal controls: a
 * server's detail or a name may carry anything. */
static void util_errline(const char *msg)
{
    char *line = kw_cli_clean(msg);

    fprintf(stderr, "keyward: %s\n", line);
    free(line);
}

int kw_cli_fail(int status, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    util_errline(msg);
    return status;
}

void kw_cli_cmd_title(const kw_cli_cmd_t *c, char *out, size_t n)
{
    if (c == NULL)
        snprintf(out, n, "keyward");
    else if (c->group)
        snprintf(out, n, "keyward %s %s", c->group, c->name);
    else
        snprintf(out, n, "keyward %s", c->name);
}

int kw_cli_usage(const kw_cli_t *cli, const char *fmt, ...)
{
    char msg[768], title[64];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    kw_cli_cmd_title(cli ? cli->cmd : NULL, title, sizeof title);
    return kw_cli_fail(KW_CLI_EUSAGE, "%s (see '%s --help')", msg, title);
}

static void util_oom(void)
{
    fputs("keyward: out of memory\n", stderr);
    exit(KW_CLI_EAPI);
}

void *kw_cli_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);

    if (p == NULL)
        util_oom();
    return p;
}

void *kw_cli_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);

    if (p == NULL)
        util_oom();
    return p;
}

char *kw_cli_xstrdup(const char *s)
{
    char *p = strdup(s);

    if (p == NULL)
        util_oom();
    return p;
}

char *kw_cli_xasprintf(const char *fmt, ...)
{
    char *p;
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vasprintf(&p, fmt, ap);
    va_end(ap);
    if (n < 0)
        util_oom();
    return p;
}

void kw_cli_free_secret(char *s)
{
    if (s == NULL)
        return;
    explicit_bzero(s, strlen(s));
    free(s);
}
