/* cli_util.h - shared by every part of the client, depending on none of them: exit
 * statuses, the one-line error convention, allocation that cannot fail, wiping secrets,
 * terminal-safe text. */
#ifndef KW_CLI_UTIL_H
#define KW_CLI_UTIL_H

#include <stddef.h>

#include "cli/cli_cmd.h"

/* Exit statuses of `keyward <command>`. */
enum {
    KW_CLI_OK = 0,
    KW_CLI_EAPI = 1,   /* the server refused (HTTP 4xx/5xx) or answered nonsense */
    KW_CLI_EUSAGE = 2, /* bad command line, no server, unreadable token file */
};

/* Print "keyward: <reason>" (one line, control characters replaced) to stderr and return
 * status, so handlers can write `return kw_cli_fail(KW_CLI_EUSAGE, "...")`. */
int kw_cli_fail(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A usage error for the running command: "keyward: <reason> (see 'keyward cred create
 * --help')". Returns KW_CLI_EUSAGE. */
int kw_cli_usage(const kw_cli_t *cli, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* "keyward cred create", "keyward verify", or "keyward" for c == NULL. */
void kw_cli_cmd_title(const kw_cli_cmd_t *c, char *out, size_t n);

/* Allocation that cannot fail: on exhaustion print "keyward: out of memory" and exit(1). */
void *kw_cli_xmalloc(size_t n);
void *kw_cli_xcalloc(size_t n, size_t size);
char *kw_cli_xstrdup(const char *s);
char *kw_cli_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Wipe then free a NUL-terminated string (NULL allowed). */
void kw_cli_free_secret(char *s);

/* A terminal-safe copy of s: C0 controls and DEL become '?'; C1 controls, bidi controls
 * (U+202A..U+202E, U+2066..U+2069, U+200E/F, U+061C) and U+2028/U+2029 are written as
 * "\u202E". kw_cli_clean_lines keeps '\n'. Caller frees. */
char *kw_cli_clean(const char *s);
char *kw_cli_clean_lines(const char *s);

#endif
