/* cli.c - `keyward <command>`: the command table, dispatch and help. Commands live one per
 * row in the group files (cli_cmd.h); the helpers they share are in cli_util.c, cli_args.c,
 * cli_http.c, cli_show.c and cli_out.c, never here. This file must not know any command's
 * flags or talk HTTP itself. */
#include <ctype.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "cli/cli.h"
#include "cli/cli_args.h"
#include "cli/cli_cred.h"
#include "cli/cli_gen.h"
#include "cli/cli_http.h"
#include "cli/cli_out.h"
#include "cli/cli_util.h"
#include "server/serve.h"

#ifndef KW_VERSION
#define KW_VERSION "0.1.0"
#endif

/* The table: help lists the commands in this order. */
// clang-format off
static const kw_cli_cmd_t *const cli_cmds[] = {
    &kw_cli_cmd_cred_create,    &kw_cli_cmd_cred_list,       &kw_cli_cmd_cred_show,
    &kw_cli_cmd_cred_update,    &kw_cli_cmd_cred_disable,    &kw_cli_cmd_cred_enable,
    &kw_cli_cmd_cred_delete,    &kw_cli_cmd_key_new,         &kw_cli_cmd_key_roll,
    &kw_cli_cmd_key_invalidate, &kw_cli_cmd_key_show,        &kw_cli_cmd_verify,
    &kw_cli_cmd_expiring,       &kw_cli_cmd_key_renew,       &kw_cli_cmd_renewal_list,
    &kw_cli_cmd_renewal_show,   &kw_cli_cmd_renewal_approve, &kw_cli_cmd_renewal_reject,
    &kw_cli_cmd_policy_list,    &kw_cli_cmd_policy_show,     &kw_cli_cmd_policy_create,
    &kw_cli_cmd_policy_update,  &kw_cli_cmd_audit_list,      &kw_cli_cmd_audit_verify,
    &kw_cli_cmd_audit_archive, /* security */
    &kw_cli_cmd_events_list,    &kw_cli_cmd_events_show,     &kw_cli_cmd_events_retry,
    &kw_cli_cmd_watched_create, &kw_cli_cmd_watched_list,   &kw_cli_cmd_watched_show,
    &kw_cli_cmd_watched_update, &kw_cli_cmd_watched_delete, &kw_cli_cmd_watched_token,
    &kw_cli_cmd_secrets_rotate_key,
};
// clang-format on
#define CLI_NCMDS (sizeof cli_cmds / sizeof cli_cmds[0])

static const struct {
    const char *name, *title;
} cli_groups[] = {
    {"cred", "Credentials (a consumer's access; holds up to two usable keys)"},
    {"key", "Keys (secrets of a credential, in slot 1 or 2)"},
    {"renewal", "Renewal requests (keys whose policy needs an approver to renew)"},
    {"policy", "Policies (lifetimes, renewal rules, alert thresholds)"},
    {"audit", "Audit trail (every change and refused request, hash-chained)"},
    {"events", "Events and alert deliveries (the outbox: webhooks, e-mail, log)"},
    {"watched", "Watched credentials (keys and OAuth2 clients others issued; SPEC 12)"},
    {"secrets", "The secrets key file (encryption of stored secrets)"},
};

const kw_cli_cmd_t *kw_cli_cmd_at(size_t i)
{
    return i < CLI_NCMDS ? cli_cmds[i] : NULL;
}

const char *kw_cli_group_at(size_t i, const char **title)
{
    if (i >= sizeof cli_groups / sizeof cli_groups[0])
        return NULL;
    *title = cli_groups[i].title;
    return cli_groups[i].name;
}

/* jansson keeps copies of every string it parses, secrets included: wipe them on free.
 * Both functions stay compatible with plain malloc/free, so values allocated before the
 * switch are still freed correctly. */
static void *cli_json_malloc(size_t n)
{
    return malloc(n);
}

static void cli_json_free(void *p)
{
    if (p == NULL)
        return;
    explicit_bzero(p, malloc_usable_size(p));
    free(p);
}

/* ---- help ---- */

static const char cli_env_help[] =
    "Environment:\n"
    "  KEYWARD_ADDR        server address (default http://127.0.0.1:8420)\n"
    "  KEYWARD_TOKEN       admin key sent as 'Authorization: Bearer'\n"
    "  KEYWARD_TOKEN_FILE  file holding the admin key when KEYWARD_TOKEN is unset\n"
    "                      (default: ./keyward.admin-key if it exists; set it empty\n"
    "                      to read no file)\n"
    "  KEYWARD_CALLER_KEY  verify only: a keyward:verifier key for servers run with\n"
    "                      --verify-requires-role\n"
    "\n"
    "Exit status: 0 success; 1 refused by the server (verify: the key is not valid);\n"
    "2 usage error or server unreachable.\n";

const char *kw_cli_env_text(void)
{
    return cli_env_help;
}

static void cli_cmd_line(const kw_cli_cmd_t *c, char *out, size_t n, int with_group)
{
    if (with_group && c->group)
        snprintf(out, n, "%s %s%s%s", c->group, c->name, *c->usage ? " " : "", c->usage);
    else
        snprintf(out, n, "%s%s%s", c->name, *c->usage ? " " : "", c->usage);
}

/* The width of the command column: the longest "group name USAGE" (or without the group),
 * so that no entry runs into its description. */
static int cli_cmd_col(const char *group, int with_group)
{
    char line[128];
    int w = 16;

    for (size_t i = 0; i < CLI_NCMDS; i++) {
        if (group && (cli_cmds[i]->group == NULL || strcmp(cli_cmds[i]->group, group) != 0))
            continue;
        cli_cmd_line(cli_cmds[i], line, sizeof line, with_group);
        if ((int)strlen(line) > w)
            w = (int)strlen(line);
    }
    return w;
}

static void cli_help_main(FILE *f)
{
    char line[128];
    int w = cli_cmd_col(NULL, 1);

    fprintf(f, "usage: keyward <command> [arguments] [--json]\n\n"
               "keyward runs the life of API keys: issue, verify, rotate, expire, revoke.\n");
    for (size_t g = 0; g <= sizeof cli_groups / sizeof cli_groups[0]; g++) {
        const char *grp = g < sizeof cli_groups / sizeof cli_groups[0] ? cli_groups[g].name : NULL;

        fprintf(f, "\n%s:\n", grp ? cli_groups[g].title : "Checks");
        for (size_t i = 0; i < CLI_NCMDS; i++) {
            const kw_cli_cmd_t *c = cli_cmds[i];

            if ((grp == NULL) != (c->group == NULL) || (grp && strcmp(grp, c->group) != 0))
                continue;
            cli_cmd_line(c, line, sizeof line, 1);
            fprintf(f, "  %-*s  %s\n", w, line, c->help);
        }
    }
    fprintf(f,
            "\nOther:\n"
            "  %-*s  %s\n  %-*s  %s\n  %-*s  %s\n\n",
            w, "serve [options]", "run the server (see 'keyward serve --help')", w, "version",
            "print the version (--json: as JSON)", w, "help [command]",
            "show help for a command or group");
    fprintf(f,
            "Run 'keyward <group> --help' or 'keyward <command> --help' for details.\n"
            "--json prints the server's JSON instead of tables.\n\n%s",
            cli_env_help);
}

static const char *cli_group_title(const char *group)
{
    for (size_t g = 0; g < sizeof cli_groups / sizeof cli_groups[0]; g++)
        if (strcmp(cli_groups[g].name, group) == 0)
            return cli_groups[g].title;
    return NULL;
}

static void cli_help_group(FILE *f, const char *group)
{
    char line[128];
    int w = cli_cmd_col(group, 0);

    fprintf(f, "usage: keyward %s <command> [arguments] [--json]\n\n%s\n\nCommands:\n", group,
            cli_group_title(group));
    for (size_t i = 0; i < CLI_NCMDS; i++) {
        if (cli_cmds[i]->group == NULL || strcmp(cli_cmds[i]->group, group) != 0)
            continue;
        cli_cmd_line(cli_cmds[i], line, sizeof line, 0);
        fprintf(f, "  %-*s  %s\n", w, line, cli_cmds[i]->help);
    }
    fprintf(f, "\nRun 'keyward %s <command> --help' for its options.\n", group);
}

static void cli_help_cmd(FILE *f, const kw_cli_cmd_t *c)
{
    char title[64], lhs[64];

    kw_cli_cmd_title(c, title, sizeof title);
    fprintf(f, "usage: %s%s%s [options]\n\n%c%s.\n", title, *c->usage ? " " : "", c->usage,
            toupper((unsigned char)c->help[0]), c->help + 1);
    if (c->notes)
        fprintf(f, "\n%s", c->notes);
    if (c->flags & KW_CLI_CMD_CRED)
        fprintf(f, "\nCRED is the credential's id (cred_...) or its name; a name held by several\n"
                   "credentials is an error listing their ids.\n");
    fprintf(f, "\nOptions:\n");
    int w = 12;
    for (const kw_cli_opt_t *o = c->opts; o && o->name; o++) {
        snprintf(lhs, sizeof lhs, "--%s%s%s", o->name, o->arg ? " " : "", o->arg ? o->arg : "");
        if ((int)strlen(lhs) > w)
            w = (int)strlen(lhs);
    }
    for (const kw_cli_opt_t *o = c->opts; o && o->name; o++) {
        snprintf(lhs, sizeof lhs, "--%s%s%s", o->name, o->arg ? " " : "", o->arg ? o->arg : "");
        fprintf(f, "  %-*s  %s%s\n", w, lhs, o->help,
                (o->flags & KW_CLI_OPT_MULTI) ? " (repeatable)" : "");
    }
    fprintf(f, "  %-*s  %s\n  %-*s  %s\n", w, "--json", "print the server's JSON", w, "-h, --help",
            "show this help");
}

/* ---- dispatch ---- */

static int cli_is_group(const char *w)
{
    return cli_group_title(w) != NULL;
}

static const kw_cli_cmd_t *cli_find(const char *group, const char *name)
{
    for (size_t i = 0; i < CLI_NCMDS; i++) {
        const kw_cli_cmd_t *c = cli_cmds[i];

        if ((group == NULL) != (c->group == NULL))
            continue;
        if (group && strcmp(group, c->group) != 0)
            continue;
        if (strcmp(name, c->name) == 0)
            return c;
    }
    return NULL;
}

static int cli_is_help(const char *w)
{
    return strcmp(w, "--help") == 0 || strcmp(w, "-h") == 0 || strcmp(w, "help") == 0;
}

/* The n-th positional name in a usage string ("CRED_ID [KEY]" -> "CRED_ID"). */
static void cli_pos_name(const char *usage, int n, char *out, size_t len)
{
    const char *p = usage;

    snprintf(out, len, "argument");
    for (int i = 0; *p; i++) {
        size_t w;

        while (*p == ' ')
            p++;
        w = strcspn(p, " ");
        if (w == 0 || *p == '[')
            return;
        if (i == n) {
            snprintf(out, len, "%.*s", (int)w, p);
            return;
        }
        p += w;
    }
}

static int cli_run(const kw_cli_cmd_t *c, int argc, char **argv, int json)
{
    kw_cli_t cli = {.cmd = c, .json = json, .api_status = KW_CLI_EAPI};
    kw_cli_args_t a;
    char name[32];
    int rc;

    rc = kw_cli_args_parse(&cli, c->opts, argc, argv, &a);
    if (rc != 0)
        return rc;
    if (a.help) {
        cli_help_cmd(stdout, c);
        rc = KW_CLI_OK;
        goto out;
    }
    cli.json |= a.json;
    if (a.npos < c->npos_min) {
        cli_pos_name(c->usage, a.npos, name, sizeof name);
        rc = kw_cli_usage(&cli, "missing %s", name);
        goto out;
    }
    if (a.npos > c->npos_max) {
        rc = kw_cli_usage(&cli, "unexpected argument '%s'", a.pos[c->npos_max]);
        goto out;
    }
    if (!(c->flags & KW_CLI_CMD_LOCAL)) {
        rc = kw_cli_http_init(&cli, (c->flags & KW_CLI_CMD_ADMIN) != 0);
        if (rc != 0)
            goto out;
    }
    if ((c->flags & KW_CLI_CMD_CRED) && a.npos > 0) { /* a credential by id or by name */
        if ((rc = kw_cli_cred_ref(&cli, a.pos[0], &cli.cred_id)) != 0)
            goto out;
        a.pos[0] = cli.cred_id;
    }
    rc = c->exec(&cli, &a);
out:
    free(cli.cred_id);
    kw_cli_http_cleanup(&cli);
    kw_cli_args_free(&a);
    return rc;
}

static int cli_help_topic(int argc, char **argv)
{
    const kw_cli_cmd_t *c;

    if (argc == 0) {
        cli_help_main(stdout);
        return KW_CLI_OK;
    }
    /* hidden: what `make` generates the man pages and completion scripts from */
    if (argc == 2 && strcmp(argv[0], "--man") == 0)
        return kw_cli_gen_man(stdout, argv[1]);
    if (argc == 2 && strcmp(argv[0], "--completion") == 0)
        return kw_cli_gen_completion(stdout, argv[1]);
    if (cli_is_group(argv[0])) {
        if (argc == 1) {
            cli_help_group(stdout, argv[0]);
            return KW_CLI_OK;
        }
        if ((c = cli_find(argv[0], argv[1])) != NULL) {
            cli_help_cmd(stdout, c);
            return KW_CLI_OK;
        }
        return kw_cli_fail(KW_CLI_EUSAGE, "no help for '%s %s' (see 'keyward help %s')", argv[0],
                           argv[1], argv[0]);
    }
    if ((c = cli_find(NULL, argv[0])) != NULL) {
        cli_help_cmd(stdout, c);
        return KW_CLI_OK;
    }
    if (strcmp(argv[0], "serve") == 0) {
        char *av[] = {"serve", "--help", NULL};
        return kw_serve_main(2, av);
    }
    if (strcmp(argv[0], "version") == 0 || strcmp(argv[0], "help") == 0) {
        cli_help_main(stdout);
        return KW_CLI_OK;
    }
    return kw_cli_fail(KW_CLI_EUSAGE, "no help for '%s' (see 'keyward --help')", argv[0]);
}

static int cli_version(int json)
{
    const curl_version_info_data *cv = curl_version_info(CURLVERSION_NOW);

    if (json) {
        json_t *v = json_pack("{s:s, s:s, s:s}", "version", KW_VERSION, "libcurl",
                              cv ? cv->version : "?", "jansson", jansson_version_str());
        kw_cli_print_json(v);
        json_decref(v);
        return KW_CLI_OK;
    }
    printf("keyward %s (libcurl %s, jansson %s)\n", KW_VERSION, cv ? cv->version : "?",
           jansson_version_str());
    return KW_CLI_OK;
}

/* `keyward version [--json]` */
static int cli_version_cmd(int argc, char **argv, int json)
{
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = 1;
        else if (cli_is_help(argv[i]))
            return cli_help_topic(0, NULL);
        else
            return kw_cli_fail(KW_CLI_EUSAGE, "version: unexpected argument '%s'", argv[i]);
    }
    return cli_version(json);
}

static int cli_dispatch(int argc, char **argv)
{
    const kw_cli_cmd_t *c;
    int i = 1, json = 0;

    /* Flags before the command: --json applies to it, --help/--version stand alone. */
    for (; i < argc && argv[i][0] == '-' && argv[i][1] != '\0'; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = 1;
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return cli_help_topic(0, NULL);
        else if (strcmp(argv[i], "--version") == 0)
            return cli_version(json);
        else
            return kw_cli_fail(KW_CLI_EUSAGE, "unknown flag '%s' (see 'keyward --help')", argv[i]);
    }
    if (i >= argc)
        return kw_cli_fail(KW_CLI_EUSAGE, "missing command (see 'keyward --help')");
    if (strcmp(argv[i], "help") == 0)
        return cli_help_topic(argc - i - 1, argv + i + 1);
    if (strcmp(argv[i], "version") == 0)
        return cli_version_cmd(argc - i - 1, argv + i + 1, json);
    if (cli_is_group(argv[i])) {
        const char *group = argv[i];

        if (i + 1 >= argc)
            return kw_cli_fail(KW_CLI_EUSAGE, "%s: missing command (see 'keyward %s --help')",
                               group, group);
        if (cli_is_help(argv[i + 1])) {
            cli_help_group(stdout, group);
            return KW_CLI_OK;
        }
        c = cli_find(group, argv[i + 1]);
        if (c == NULL)
            return kw_cli_fail(KW_CLI_EUSAGE, "unknown command '%s %s' (see 'keyward %s --help')",
                               group, argv[i + 1], group);
        return cli_run(c, argc - i - 2, argv + i + 2, json);
    }
    c = cli_find(NULL, argv[i]);
    if (c == NULL)
        return kw_cli_fail(KW_CLI_EUSAGE, "unknown command '%s' (see 'keyward --help')", argv[i]);
    return cli_run(c, argc - i - 1, argv + i + 1, json);
}

int kw_cli_main(int argc, char **argv)
{
    int rc;

    json_set_alloc_funcs(cli_json_malloc, cli_json_free);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return kw_cli_fail(KW_CLI_EUSAGE, "cannot initialise libcurl");
    rc = cli_dispatch(argc, argv);
    curl_global_cleanup();
    if (fflush(stdout) != 0 && rc == KW_CLI_OK)
        rc = kw_cli_fail(KW_CLI_EAPI, "cannot write output");
    return rc;
}
