/* cli_policy.c - `keyward policy ...`: list, show, create, update through /v1/policies.
 * Policies set lifetimes, renewal rules (approval) and alert thresholds; only an admin may
 * change them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "cli/cli_args.h"
#include "cli/cli_http.h"
#include "cli/cli_out.h"
#include "cli/cli_show.h"
#include "cli/cli_util.h"

static char *jbool(const json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return kw_cli_xstrdup(json_is_boolean(v) ? (json_is_true(v) ? "yes" : "no") : "-");
}

static void policy_block(const json_t *p)
{
    kw_cli_table_t *t = kw_cli_table_new(2, NULL);
    char *th = kw_cli_fmt_list(json_object_get(p, "alert_thresholds"), "none");
    char *b1 = jbool(p, "allow_never_expire"), *b2 = jbool(p, "renewable"),
         *b3 = jbool(p, "renewal_requires_approval");
    kw_cli_kv(t, "policy", "%s", kw_cli_jstr(p, "name"));
    kw_cli_kv(t, "default lifetime", "%s", kw_cli_jstr(p, "default_lifetime"));
    kw_cli_kv(t, "max lifetime", "%s", kw_cli_jstr(p, "max_lifetime"));
    kw_cli_kv(t, "never-expiring keys", "%s", b1);
    kw_cli_kv(t, "renewable", "%s", b2);
    kw_cli_kv(t, "renewal approval", "%s", b3);
    kw_cli_kv(t, "alert thresholds", "%s", th);
    kw_cli_kv(t, "max roll overlap", "%s", kw_cli_jstr(p, "max_roll_overlap"));
    kw_cli_kv(t, "token lifetime", "%s", kw_cli_jstr(p, "token_lifetime"));
    kw_cli_table_print(t, stdout);
    kw_cli_table_free(t);
    free(th);
    free(b1);
    free(b2);
    free(b3);
}

static void policy_row(kw_cli_table_t *t, const json_t *p)
{
    char *th = kw_cli_fmt_list(json_object_get(p, "alert_thresholds"), "none");
    char *b1 = jbool(p, "allow_never_expire"), *b2 = jbool(p, "renewable"),
         *b3 = jbool(p, "renewal_requires_approval");
    const char *cells[8] = {kw_cli_jstr(p, "name"),
                            kw_cli_jstr(p, "default_lifetime"),
                            kw_cli_jstr(p, "max_lifetime"),
                            b1,
                            b2,
                            b3,
                            th,
                            kw_cli_jstr(p, "max_roll_overlap")};
    kw_cli_table_row(t, cells);
    free(th);
    free(b1);
    free(b2);
    free(b3);
}

static void policy_table(const json_t *resp)
{
    static const char *const hdr[] = {"NAME",      "DEFAULT",  "MAX",        "NEVER",
                                      "RENEWABLE", "APPROVAL", "THRESHOLDS", "OVERLAP"};
    kw_cli_table_list(json_object_get(resp, "items"), 8, hdr, policy_row);
}

const kw_cli_cmd_t kw_cli_cmd_policy_list = {
    KW_CLI_CMD("policy", "list", kw_cli_show_cmd, "", 0, 0, KW_CLI_CMD_ADMIN),
    KW_CLI_GET("/v1/policies", policy_table),
    .help = "list policies",
};

const kw_cli_cmd_t kw_cli_cmd_policy_show = {
    KW_CLI_CMD("policy", "show", kw_cli_show_cmd, "NAME", 1, 1, KW_CLI_CMD_ADMIN),
    KW_CLI_GET("/v1/policies/%s", policy_block),
    .help = "show a policy",
};

static const kw_cli_opt_t policy_opts[] = {
    KW_CLI_FLD("default-lifetime", "D", "default_lifetime",
               "lifetime of new keys when none is given"),
    KW_CLI_FLD("max-lifetime", "D", "max_lifetime",
               "longest lifetime a key may get (and renew to)"),
    KW_CLI_OPT("allow-never-expire", "yes|no", "allow keys that never expire"),
    KW_CLI_OPT("renewable", "yes|no", "allow renewing keys"),
    KW_CLI_OPT("approval", "yes|no", "renewals need an approver (renewal_requires_approval)"),
    KW_CLI_OPT("alert-thresholds", "LIST", "comma-separated durations, e.g. 30d,14d,7d,1d"),
    KW_CLI_FLD("max-roll-overlap", "D", "max_roll_overlap",
               "longest overlap a roll may give the old key"),
    KW_CLI_FLD("token-lifetime", "D", "token_lifetime",
               "lifetime of OAuth2 access tokens (max 24h)"),
    KW_CLI_OPTS_END,
};

/* The flags of policy_opts that have no field into body; usage error for a bad yes|no. */
static int policy_body(const kw_cli_t *cli, const kw_cli_args_t *a, json_t *body)
{
    static const char *const bools[][2] = {{"allow-never-expire", "allow_never_expire"},
                                           {"renewable", "renewable"},
                                           {"approval", "renewal_requires_approval"}};
    for (size_t i = 0; i < 3; i++) {
        const char *v = kw_cli_arg(a, bools[i][0]);
        if (v == NULL)
            continue;
        if (!strcasecmp(v, "yes") || !strcasecmp(v, "true") || !strcmp(v, "1"))
            json_object_set_new(body, bools[i][1], json_true());
        else if (!strcasecmp(v, "no") || !strcasecmp(v, "false") || !strcmp(v, "0"))
            json_object_set_new(body, bools[i][1], json_false());
        else
            return kw_cli_usage(cli, "--%s takes yes or no, not '%s'", bools[i][0], v);
    }
    const char *th = kw_cli_arg(a, "alert-thresholds");
    if (th) {
        json_t *arr = json_array();
        char *copy = kw_cli_xstrdup(th), *save = NULL;
        for (char *t = strtok_r(copy, ", ", &save); t; t = strtok_r(NULL, ", ", &save))
            json_array_append_new(arr, json_string(t));
        free(copy);
        json_object_set_new(body, "alert_thresholds", arr);
    }
    return 0;
}

static void policy_written(const json_t *p, const char *verb)
{
    kw_cli_say("%s policy %s.\n\n", verb, kw_cli_jstr(p, "name"));
    policy_block(p);
}

const kw_cli_cmd_t kw_cli_cmd_policy_create = {
    KW_CLI_CMD("policy", "create", kw_cli_send_cmd, "NAME", 1, 1, KW_CLI_CMD_ADMIN),
    KW_CLI_SEND("POST", "/v1/policies", policy_written, "Created"),
    .arg_field = "name",
    .build = policy_body,
    .help = "create a policy (unset options take the default policy's values)",
    .opts = policy_opts,
    .notes = "Needs keyward:admin. Durations are written 45s, 90m, 12h, 30d.\n",
};

const kw_cli_cmd_t kw_cli_cmd_policy_update = {
    KW_CLI_CMD("policy", "update", kw_cli_send_cmd, "NAME", 1, 1, KW_CLI_CMD_ADMIN),
    KW_CLI_SEND("PATCH", "/v1/policies/%s", policy_written, "Updated"),
    .build = policy_body,
    .if_empty = "nothing to change: give at least one option",
    .help = "change a policy (keys already issued keep their expiry)",
    .opts = policy_opts,
    .notes = "Needs keyward:admin. A lower max lifetime applies to keys created or renewed\n"
             "after the change.\n",
};
