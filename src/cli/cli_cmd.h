/* cli_cmd.h - the contract between the dispatcher (cli.c) and the command group files
 * (cli_cred.c, cli_key.c...): the types of a command row, of its options and parsed command
 * line, and of one invocation's context, and the rows themselves. One file per command
 * group, each command one kw_cli_cmd_t row; types only, no functions. */
#ifndef KW_CLI_CMD_H
#define KW_CLI_CMD_H

struct json_t; /* jansson's */

/* Option flags. */
#define KW_CLI_OPT_VALUE 0x1 /* takes a value: --name VALUE or --name=VALUE */
#define KW_CLI_OPT_MULTI 0x2 /* may repeat; every value is kept */

typedef struct kw_cli_opt {
    const char *name; /* long name without "--" */
    int flags;        /* KW_CLI_OPT_* */
    const char *arg;  /* value placeholder shown in help ("D", "JSON"), NULL for switches */
    const char *help; /* one line */
} kw_cli_opt_t;

/* Option rows, one line each: a switch, an option with a value, one that may repeat; a table
 * ends with KW_CLI_OPTS_END. */
// clang-format off
#define KW_CLI_SW(name, help) {name, 0, NULL, help}
#define KW_CLI_OPT(name, arg, help) {name, KW_CLI_OPT_VALUE, arg, help}
#define KW_CLI_OPTN(name, arg, help) {name, KW_CLI_OPT_VALUE | KW_CLI_OPT_MULTI, arg, help}
#define KW_CLI_OPTS_END {NULL, 0, NULL, NULL}
// clang-format on

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

/* A command row's head, one line: "keyward group name usage" runs exec with npos_min to
 * npos_max positional arguments; .help, .opts and .notes follow it. */
#define KW_CLI_CMD(grp, nm, fn, use, min, max, fl)                                                 \
    .group = grp, .name = nm, .exec = fn, .usage = use, .npos_min = min, .npos_max = max,          \
    .flags = fl
/* The head of a command on one credential (cred show, key new...): its one argument is CRED,
 * the credential's id or name, and it needs the admin token. */
#define KW_CLI_CRED_CMD(grp, nm, fn)                                                               \
    KW_CLI_CMD(grp, nm, fn, "CRED", 1, 1, KW_CLI_CMD_ADMIN | KW_CLI_CMD_CRED)
/* What a "show" command (exec kw_cli_show_cmd) gets: path, its %s the first argument, and the
 * printer of the answer. */
#define KW_CLI_GET(path, printer) .show = path, .print = printer

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
    /* A "show" command (exec kw_cli_show_cmd, KW_CLI_GET): GET show, its %s the first
     * argument, and print the answer with print(). */
    const char *show;
    void (*print)(const struct json_t *answer);
} kw_cli_cmd_t;

/* Context of one invocation; made by the dispatcher, filled by kw_cli_http_init. */
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

#endif
