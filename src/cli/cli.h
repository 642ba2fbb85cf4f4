/* cli.h - the `keyward <command>` client: every subcommand except `serve` talks to a
 * running keyward over its HTTP API (docs/api.md) and prints tables or, with --json, the
 * server's JSON. One file per command group (cli_cred.c, cli_key.c...), each command one
 * kw_cli_cmd_t row; cli.c dispatches, cli_args.c parses flags, cli_http.c talks HTTP,
 * cli_out.c prints. Nothing here prints the admin token, and buffers that may have held a
 * secret (response bodies, request bodies, jansson strings, the token) are wiped when freed. */
#ifndef KW_CLI_H
#define KW_CLI_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

/* Run `keyward <command> ...`: argv[0] is the program name, argv[1] the command (anything
 * but "serve"). Returns the process exit status: 0 success, 1 refused by the server (for
 * `verify`: the key is not valid), 2 usage error or server unreachable. Prints at most one
 * line, "keyward: <reason>", to stderr on failure.
 * It installs jansson allocation functions that wipe memory on free (still plain
 * malloc/free underneath, so values made before the call stay valid). */
int kw_cli_main(int argc, char **argv);

/* ---- everything below is internal to src/cli ---- */

enum {
    KW_CLI_OK = 0,
    KW_CLI_EAPI = 1,   /* the server refused (HTTP 4xx/5xx) or answered nonsense */
    KW_CLI_EUSAGE = 2, /* bad command line, no server, unreadable token file */
};

/* Option flags. */
#define KW_CLI_OPT_VALUE 0x1 /* takes a value: --name VALUE or --name=VALUE */
#define KW_CLI_OPT_MULTI 0x2 /* may repeat; every value is kept */

typedef struct kw_cli_opt {
    const char *name; /* long name without "--" */
    int flags;        /* KW_CLI_OPT_* */
    const char *arg;  /* value placeholder shown in help ("D", "JSON"), NULL for switches */
    const char *help; /* one line */
} kw_cli_opt_t;

/* The parsed command line of one command. Values point into argv. */
typedef struct kw_cli_args {
    const kw_cli_opt_t *opts; /* the command's table, NULL-terminated by name */
    const char **pos;         /* positional arguments */
    int npos;
    struct kw_cli_seen {
        int opt;         /* index into opts */
        const char *val; /* value, or "" for a switch */
    } * seen;            /* options in command-line order */
    int nseen;
    int json; /* --json */
    int help; /* --help / -h */
} kw_cli_args_t;

typedef struct kw_cli kw_cli_t;

/* One command: a row of the table in cli.c (tmux's struct cmd_entry). */
#define KW_CLI_CMD_ADMIN 0x1 /* needs the admin token */
#define KW_CLI_CMD_LOCAL 0x2 /* never contacts the server */
#define KW_CLI_CMD_CRED 0x4  /* the first argument is a credential: its id or its name */

typedef struct kw_cli_cmd {
    const char *group; /* "cred", "key"; NULL for a top-level command ("verify") */
    const char *name;
    int (*exec)(kw_cli_t *cli, const kw_cli_args_t *args);
    const char *usage;        /* arguments after "keyward [group] name" */
    const char *help;         /* one-line description */
    const kw_cli_opt_t *opts; /* NULL or terminated by {NULL}; --json and --help are implied */
    int npos_min, npos_max;
    int flags;         /* KW_CLI_CMD_* */
    const char *notes; /* NULL or more paragraphs for `--help` */
} kw_cli_cmd_t;

/* The commands, defined one per row in the group files. */
extern const kw_cli_cmd_t kw_cli_cmd_cred_create, kw_cli_cmd_cred_list, kw_cli_cmd_cred_show,
    kw_cli_cmd_cred_update, kw_cli_cmd_cred_disable, kw_cli_cmd_cred_enable, kw_cli_cmd_cred_delete;
extern const kw_cli_cmd_t kw_cli_cmd_key_new, kw_cli_cmd_key_roll, kw_cli_cmd_key_invalidate,
    kw_cli_cmd_key_show;
extern const kw_cli_cmd_t kw_cli_cmd_verify, kw_cli_cmd_expiring;
extern const kw_cli_cmd_t kw_cli_cmd_key_renew, kw_cli_cmd_renewal_list, kw_cli_cmd_renewal_show,
    kw_cli_cmd_renewal_approve, kw_cli_cmd_renewal_reject;
extern const kw_cli_cmd_t kw_cli_cmd_policy_list, kw_cli_cmd_policy_show, kw_cli_cmd_policy_create,
    kw_cli_cmd_policy_update;
extern const kw_cli_cmd_t kw_cli_cmd_audit_list, kw_cli_cmd_audit_verify;
extern const kw_cli_cmd_t kw_cli_cmd_audit_archive; /* security */
extern const kw_cli_cmd_t kw_cli_cmd_events_list, kw_cli_cmd_events_show, kw_cli_cmd_events_retry;
/* cli_watched.c: watched credentials (SPEC §12) and the secrets key */
extern const kw_cli_cmd_t kw_cli_cmd_watched_create, kw_cli_cmd_watched_list,
    kw_cli_cmd_watched_show, kw_cli_cmd_watched_update, kw_cli_cmd_watched_delete,
    kw_cli_cmd_watched_token, kw_cli_cmd_secrets_rotate_key;

/* ---- cli.c: the tables, for generated documents ---- */

/* Command i of the table (help order), NULL past the last. */
const kw_cli_cmd_t *kw_cli_cmd_at(size_t i);
/* Group i's name, with its title in *title; NULL past the last. */
const char *kw_cli_group_at(size_t i, const char **title);
/* The "Environment:" and "Exit status:" text of `keyward --help`. */
const char *kw_cli_env_text(void);

/* ---- cli_gen.c: `keyward help --man SECTION` and `keyward help --completion SHELL` ---- */

/* Write man page keyward(1), keyward-serve(8) or keyward.conf(5) (section "1", "8", "5")
 * in roff, from the command table and the settings table, to f. Returns 0 or KW_CLI_EUSAGE. */
int kw_cli_gen_man(FILE *f, const char *section);
/* Write the bash or zsh completion script (shell "bash" or "zsh") for the same tables. */
int kw_cli_gen_completion(FILE *f, const char *shell);

/* ---- cli_cred.c: credentials by name ---- */

/* The id of the credential ref names: ref itself when it is a credential id (cred_...),
 * else the one credential whose name is ref. *id is malloc'd. Returns 0, or prints one
 * line and returns KW_CLI_EAPI when no credential or more than one (listing their ids)
 * has that name. */
int kw_cli_cred_ref(kw_cli_t *cli, const char *ref, char **id);

/* ---- cli_renewal.c: lists ---- */

/* Fetch one page (or every page with all) of a list, starting at cursor (NULL: the first
 * page) into *items (owned by the caller); *next gets the cursor of the page after the last
 * fetched (malloc'd, NULL when there is none). Returns 0 or the kw_cli_call status. */
int kw_cli_list_pages(kw_cli_t *cli, const char *base, const char *cursor, int all, json_t **items,
                      char **next);
/* A list command: --limit, --cursor and --all from a, pages of base (consumed), printed with
 * table() or as {"items", "next"} with --json; `empty` when there is nothing. */
int kw_cli_list_cmd(kw_cli_t *cli, const kw_cli_args_t *a, char *base,
                    void (*table)(const json_t *), const char *empty);

/* ---- cli.c: errors ---- */

/* Print "keyward: <reason>" (one line, control characters replaced) to stderr and return
 * status, so handlers can write `return kw_cli_fail(KW_CLI_EUSAGE, "...")`. */
int kw_cli_fail(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A usage error for the running command: "keyward: <reason> (see 'keyward cred create
 * --help')". Returns KW_CLI_EUSAGE. */
int kw_cli_usage(const kw_cli_t *cli, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Allocation that cannot fail: on exhaustion print "keyward: out of memory" and exit(1). */
void *kw_cli_xmalloc(size_t n);
void *kw_cli_xcalloc(size_t n, size_t size);
char *kw_cli_xstrdup(const char *s);
char *kw_cli_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Wipe then free a NUL-terminated string (NULL allowed). */
void kw_cli_free_secret(char *s);

/* ---- cli_args.c: flags ---- */

/* Parse argv[0..argc) (the words after the command name) against opts. Returns 0, or
 * KW_CLI_EUSAGE after printing one line naming the unknown flag or missing value. On
 * success free a with kw_cli_args_free(). */
int kw_cli_args_parse(const kw_cli_t *cli, const kw_cli_opt_t *opts, int argc, char **argv,
                      kw_cli_args_t *a);
void kw_cli_args_free(kw_cli_args_t *a);

/* The last value of --name (or "" for a given switch), or NULL when absent.
 * name must be in the command's table (a typo aborts). */
const char *kw_cli_arg(const kw_cli_args_t *a, const char *name);
/* How many times --name was given, and its i-th value. */
int kw_cli_arg_count(const kw_cli_args_t *a, const char *name);
const char *kw_cli_arg_nth(const kw_cli_args_t *a, const char *name, int i);

/* Parse --name as a positive integer into *out. Returns 0 (also when absent, leaving *out)
 * or KW_CLI_EUSAGE after printing. */
int kw_cli_arg_posint(const kw_cli_t *cli, const kw_cli_args_t *a, const char *name, long *out);

/* Request bodies from flags: set body[field] to the string value of --opt when given;
 * a JSON array of every value of a repeatable --opt (empty array when absent). */
void kw_cli_body_str(json_t *body, const char *field, const kw_cli_args_t *a, const char *opt);
json_t *kw_cli_arg_array(const kw_cli_args_t *a, const char *opt);
/* --lifetime D|never / --expires-at T into body ("lifetime" / "expires_at"); both given
 * is a usage error. Returns 0 or KW_CLI_EUSAGE after printing. (cli_key.c) */
int kw_cli_body_expiry(const kw_cli_t *cli, const kw_cli_args_t *a, json_t *body);

/* ---- cli_http.c: the server ---- */

/* Context of one invocation; created by kw_cli_main. */
struct kw_cli {
    const kw_cli_cmd_t *cmd; /* running command, for usage hints */
    int json;                /* --json: print the server's JSON */
    int api_status;          /* exit status for an HTTP error answer (default KW_CLI_EAPI) */
    char *addr;              /* base URL without trailing '/', owned */
    char *token;             /* admin token, owned, wiped on free; NULL if none */
    const char *token_src;   /* where the token came from, for hints (never the token) */
    char *caller_key;        /* sent as Keyward-Caller-Key (verify), owned, wiped; or NULL */
    void *curl;              /* CURL *, reused across requests (keep-alive) */
    char *cred_id;           /* KW_CLI_CMD_CRED: the credential's id, owned */
};

/* Read KEYWARD_ADDR and, when need_token, the token (KEYWARD_TOKEN, else the file named by
 * KEYWARD_TOKEN_FILE, else ./keyward.admin-key if present and KEYWARD_TOKEN_FILE is unset:
 * KEYWARD_TOKEN_FILE= set empty means no token file at all). Returns 0 or KW_CLI_EUSAGE
 * after printing (unreadable token file, bad address). */
int kw_cli_http_init(kw_cli_t *cli, int need_token);
/* Trim whitespace around a key in place; -1 if it is then empty or holds a control
 * character (it goes into a header). */
int kw_cli_token_clean(char *s);
void kw_cli_http_cleanup(kw_cli_t *cli);

/* Send method to addr+path with body (NULL: none; POST without a body sends "{}").
 * On a 2xx answer returns 0 and sets *out to the parsed body (owned by the caller, NULL
 * when empty); otherwise prints one line - the problem's detail and status, or which
 * address could not be reached - and returns cli->api_status (HTTP error) or
 * KW_CLI_EUSAGE (transport). Request and response buffers are wiped before they are freed. */
int kw_cli_call(kw_cli_t *cli, const char *method, const char *path, json_t *body, json_t **out);

/* Build a request path from fmt where every %s argument is percent-escaped (only %s is
 * supported). Caller frees. */
char *kw_cli_path(const char *fmt, ...);
/* Append "name=value" (value escaped) to the query of *path, which is reallocated. */
void kw_cli_query_add(char **path, const char *name, const char *value);

/* ---- cli_out.c: printing ---- */

/* printf to stdout with control characters other than '\n' replaced by '?' (names and
 * details come from the server). The formatted buffer is wiped: it may hold a secret. */
void kw_cli_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A terminal-safe copy of s: C0 controls and DEL become '?'; C1 controls, bidi controls
 * (U+202A..U+202E, U+2066..U+2069, U+200E/F, U+061C) and U+2028/U+2029 are written as
 * "\u202E". Caller frees. */
char *kw_cli_clean(const char *s);

/* Print v pretty-printed (2-space indent, server order) and a newline to stdout. */
void kw_cli_print_json(const json_t *v);

/* An aligned text table. Cells are copied; control characters are replaced by '?'.
 * With headers == NULL it is a "key: value" block (first column gets a colon). */
typedef struct kw_cli_table kw_cli_table_t;
kw_cli_table_t *kw_cli_table_new(int ncols, const char *const *headers);
void kw_cli_table_row(kw_cli_table_t *t, const char *const *cells);
void kw_cli_table_print(const kw_cli_table_t *t, FILE *f);
void kw_cli_table_free(kw_cli_table_t *t);
/* Add one "label: value" row to a block; value is printf-formatted. */
void kw_cli_kv(kw_cli_table_t *t, const char *label, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Field helpers: a string member or "-" when absent/null. */
const char *kw_cli_jstr(const json_t *o, const char *key);
/* An RFC 3339 member as seconds since the epoch; 0 if absent, null or unparsable. */
int64_t kw_cli_jtime(const json_t *o, const char *key);

#define KW_CLI_REL_MAX 64
/* "in 29d 23h" or "2h 5m ago" (relative to now, two largest units), "never" when t == 0. */
void kw_cli_fmt_rel(int64_t t, char out[KW_CLI_REL_MAX]);
/* "2026-11-22T22:40:14Z (in 29d 23h)", or none for an absent or null member. */
void kw_cli_fmt_when(const json_t *o, const char *key, const char *none, char *out, size_t n);
/* A JSON array of strings joined with ", ", or `none` when empty. Caller frees. */
char *kw_cli_fmt_list(const json_t *arr, const char *none);

/* Print the key: value block of a key / credential (with its keys table). */
void kw_cli_print_key(const json_t *key);
void kw_cli_print_cred(const json_t *cred);
/* Print the secret on its own marked line, with the shown-only-once note. */
/* Webhook signing secrets generated by the server ("signing_secrets"), shown once. */
void kw_cli_print_signing_secrets(const json_t *resp);
void kw_cli_print_secret(const json_t *resp);

#endif
