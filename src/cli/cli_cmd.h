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
    /* The request field the value goes to, or NULL when the command reads the option itself:
     * a member of the body (a string; a repeatable option: an array of every value) of a
     * command sent by kw_cli_send_cmd, a query parameter of a list (kw_cli_list_cmd). */
    const char *field;
} kw_cli_opt_t;

/* Option rows, one line each: a switch, an option with a value, one that may repeat, and
 * the last two with the request field they fill (KW_CLI_FLD, KW_CLI_FLDN); a table ends
 * with KW_CLI_OPTS_END. */
// clang-format off
#define KW_CLI_SW(name, help) {name, 0, NULL, help, NULL}
#define KW_CLI_OPT(name, arg, help) {name, KW_CLI_OPT_VALUE, arg, help, NULL}
#define KW_CLI_OPTN(name, arg, help) {name, KW_CLI_OPT_VALUE | KW_CLI_OPT_MULTI, arg, help, NULL}
#define KW_CLI_FLD(name, arg, field, help) {name, KW_CLI_OPT_VALUE, arg, help, field}
#define KW_CLI_FLDN(name, arg, field, help)                                                        \
    {name, KW_CLI_OPT_VALUE | KW_CLI_OPT_MULTI, arg, help, field}
#define KW_CLI_OPTS_END {NULL, 0, NULL, NULL, NULL}
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
/* The rest of the head of a command that is one request, run by a generic exec of
 * cli_show.c; path's %s is the first argument. A "show" command (exec kw_cli_show_cmd): GET
 * path, print the answer. */
#define KW_CLI_GET(p, printer) .path = p, .print = printer
/* A command sent with kw_cli_send_cmd: method path with the body made of the row's .body,
 * .arg_field, the options that have a field and what .build adds (an update: refused with
 * .if_empty when that is nothing); the answer goes to fn(answer, verb). */
#define KW_CLI_SEND(m, p, fn, v) .method = m, .path = p, .answer = fn, .verb = v
/* A list command (exec kw_cli_list_exec): the pages of GET path, queried with the options
 * that have a field, printed by table; `empty` when there is nothing, `what` the items'
 * name in the "(more ...)" hint. */
#define KW_CLI_LIST(p, tbl, none, items) .path = p, .table = tbl, .empty = none, .what = items

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
    /* The request of a command run by a generic exec of cli_show.c, for KW_CLI_GET (path,
     * print), KW_CLI_SEND (the rest but table, empty, what) and KW_CLI_LIST (path, table,
     * empty, what). */
    const char *method; /* "POST", "PATCH", "GET", "DELETE" */
    const char *path;   /* its %s the first argument */
    void (*print)(const struct json_t *answer);
    void (*answer)(const struct json_t *answer, const char *verb);
    const char *verb; /* answer's second argument */
    /* The body of a POST or PATCH: the fixed members .body (JSON text; NULL: none), the
     * first argument as member .arg_field (NULL: not), the options that have a field, then
     * what build() adds (NULL: nothing), which returns 0 or KW_CLI_EUSAGE after printing;
     * an update with .if_empty set is refused with that usage error when the body is empty. */
    const char *body;
    const char *arg_field;
    int (*build)(const kw_cli_t *cli, const kw_cli_args_t *a, struct json_t *body);
    const char *if_empty;
    void (*table)(const struct json_t *items);
    const char *empty, *what;
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
