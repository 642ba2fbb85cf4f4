/* cli_cred.c - `keyward cred ...`: create, list, show, update, disable, enable, delete
 * credentials through /v1/credentials. One kw_cli_cmd_t per command; flags map one to
 * one onto the request fields of docs/api.md. The only secret here is the one
 * `cred create` prints once. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "cli/cli_args.h"
#include "cli/cli_cred.h"
#include "cli/cli_http.h"
#include "cli/cli_out.h"
#include "cli/cli_show.h"
#include "cli/cli_util.h"
#include "core/util.h"

/* ---- shared ---- */

int kw_cli_cred_ref(kw_cli_t *cli, const char *ref, char **id)
{
    json_t *items = NULL, *c;
    char *next = NULL, *ids = NULL;
    const char *found = NULL;
    size_t i, n = 0;
    int rc;

    *id = NULL;
    if (kw_id_valid("cred", ref)) {
        *id = kw_cli_xstrdup(ref);
        return 0;
    }
    /* a name: the server has no name index for clients, so page through every credential */
    if ((rc = kw_cli_list_pages(cli, "/v1/credentials?limit=1000", NULL, 1, &items, &next)) != 0)
        return rc;
    json_array_foreach(items, i, c)
    {
        const char *name = json_string_value(json_object_get(c, "name"));
        const char *cid = json_string_value(json_object_get(c, "id"));
        char *more;

        if (name == NULL || cid == NULL || strcmp(name, ref) != 0)
            continue;
        found = cid;
        more = kw_cli_xasprintf("%s%s%s", ids ? ids : "", ids ? ", " : "", cid);
        free(ids);
        ids = more;
        n++;
    }
    if (n == 1)
        *id = kw_cli_xstrdup(found);
    else if (n == 0)
        rc = kw_cli_fail(KW_CLI_EAPI, "no credential with id or name '%s'", ref);
    else
        rc = kw_cli_fail(KW_CLI_EAPI, "%zu credentials are named '%s': %s (give the id)", n, ref,
                         ids);
    free(ids);
    free(next);
    json_decref(items);
    return rc;
}

/* --metadata JSON into body["metadata"]; it must be an object. */
static int cred_metadata(const kw_cli_t *cli, const kw_cli_args_t *a, json_t *body)
{
    const char *m = kw_cli_arg(a, "metadata");
    json_error_t jerr;
    json_t *v;

    if (m == NULL)
        return 0;
    v = json_loads(m, JSON_DECODE_ANY, &jerr);
    if (v == NULL)
        return kw_cli_usage(cli, "--metadata: not JSON (%s)", jerr.text);
    if (!json_is_object(v)) {
        json_decref(v);
        return kw_cli_usage(cli, "--metadata: must be a JSON object, like '{\"team\":\"x\"}'");
    }
    json_object_set_new(body, "metadata", v);
    return 0;
}

/* ---- create ---- */

static const kw_cli_opt_t cred_create_opts[] = {
    KW_CLI_FLD("owner", "O", "owner", "owner, free text (e.g. an e-mail)"),
    KW_CLI_FLDN("scope", "S", "scopes", "grant a scope"),
    KW_CLI_FLDN("cidr", "C", "allowed_cidrs", "allow clients in C only (default: any)"),
    KW_CLI_OPT("metadata", "JSON", "metadata, a JSON object"),
    KW_CLI_FLD("policy", "P", "policy", "policy name (default: default)"),
    KW_CLI_FLD("prefix", "P", "prefix", "key prefix, [a-z][a-z0-9]{0,15} (default: kw)"),
    KW_CLI_OPT("lifetime", "D|never", "first key's lifetime (default: policy's)"),
    KW_CLI_OPT("expires-at", "T", "first key's expiry, RFC 3339"),
    KW_CLI_OPTN("contact-email", "ADDR", "send alerts to ADDR"),
    KW_CLI_OPTN("contact-webhook", "URL", "send alerts to URL"),
    KW_CLI_SW("contact-log", "write alerts to the server's log"),
    KW_CLI_OPTS_END,
};

/* The {"credential", "key", "secret"} answer of a create. */
static void cred_created(const json_t *resp, const char *verb)
{
    json_t *key = json_object_get(resp, "key");

    kw_cli_say("Created credential %s with key %s in slot %lld.\n\n",
               kw_cli_jstr(json_object_get(resp, "credential"), "id"), kw_cli_jstr(key, "id"),
               (long long)json_integer_value(json_object_get(key, "slot")));
    kw_cli_print_cred(json_object_get(resp, "credential"));
    kw_cli_print_secret(resp);
}

/* create: --metadata, the first key's expiry and the contacts. */
static int cred_create_body(const kw_cli_t *cli, const kw_cli_args_t *a, json_t *body)
{
    int rc;

    if ((rc = cred_metadata(cli, a, body)) != 0 || (rc = kw_cli_body_expiry(cli, a, body)) != 0)
        return rc;
    kw_cli_body_contacts(body, a, 0);
    return 0;
}

const kw_cli_cmd_t kw_cli_cmd_cred_create = {
    KW_CLI_CMD("cred", "create", kw_cli_send_cmd, "NAME", 1, 1, KW_CLI_CMD_ADMIN),
    KW_CLI_SEND("POST", "/v1/credentials", cred_created, NULL),
    .arg_field = "name",
    .build = cred_create_body,
    .help = "create a credential and its first key",
    .opts = cred_create_opts,
    .notes = "Prints the credential, its key and the key's secret. The secret is shown only\n"
             "once: keyward keeps a digest, so store it now (--json puts it in .secret).\n",
};

/* ---- list ---- */

static const kw_cli_opt_t cred_list_opts[] = {
    KW_CLI_FLD("owner", "O", "owner", "only credentials of this owner"),
    KW_CLI_FLD("expiring-within", "D", "expiring_within",
               "only those with a key expiring within D"),
    KW_CLI_LIST_OPTS("100"),
    KW_CLI_OPTS_END,
};

/* Usable keys of a credential and the soonest expiry among them (0 = none/never). */
static void cred_key_summary(const json_t *cred, char keys[16], char next[KW_CLI_REL_MAX])
{
    json_t *arr = json_object_get(cred, "keys"), *k;
    int n = 0, never = 0;
    int64_t soonest = 0;
    size_t i;

    if (!json_is_array(arr)) {
        snprintf(keys, 16, "-");
        snprintf(next, KW_CLI_REL_MAX, "-");
        return;
    }
    json_array_foreach(arr, i, k)
    {
        const char *st = json_string_value(json_object_get(k, "state"));
        int64_t t;

        if (st == NULL || strcmp(st, "active") != 0)
            continue;
        n++;
        t = kw_cli_jtime(k, "expires_at");
        if (t == 0)
            never = 1;
        else if (soonest == 0 || t < soonest)
            soonest = t;
    }
    snprintf(keys, 16, "%d", n);
    if (soonest)
        kw_cli_fmt_rel(soonest, next);
    else
        snprintf(next, KW_CLI_REL_MAX, "%s", never ? "never" : "-");
}

static void cred_table_row(kw_cli_table_t *t, const json_t *c)
{
    char keys[16], next[KW_CLI_REL_MAX];
    const char *cells[6];

    cred_key_summary(c, keys, next);
    cells[0] = kw_cli_jstr(c, "id");
    cells[1] = kw_cli_jstr(c, "name");
    cells[2] = kw_cli_jstr(c, "owner");
    cells[3] = keys;
    cells[4] = next;
    cells[5] = json_is_true(json_object_get(c, "disabled")) ? "yes" : "no";
    kw_cli_table_row(t, cells);
}

static void cred_table(const json_t *items)
{
    static const char *const hdr[] = {"ID", "NAME", "OWNER", "KEYS", "NEXT-EXPIRY", "DISABLED"};
    kw_cli_table_list(items, 6, hdr, cred_table_row);
}

const kw_cli_cmd_t kw_cli_cmd_cred_list = {
    KW_CLI_CMD("cred", "list", kw_cli_list_exec, "", 0, 0, KW_CLI_CMD_ADMIN),
    KW_CLI_LIST("/v1/credentials", cred_table, "(no credentials)", "credentials"),
    .help = "list credentials",
    .opts = cred_list_opts,
    .notes = "Columns: ID NAME OWNER KEYS (usable keys) NEXT-EXPIRY (soonest usable key)\n"
             "DISABLED.\n",
};

/* ---- show ---- */

const kw_cli_cmd_t kw_cli_cmd_cred_show = {
    KW_CLI_CRED_CMD("cred", "show", kw_cli_show_cmd),
    KW_CLI_GET("/v1/credentials/%s", kw_cli_print_cred),
    .help = "show a credential and its keys",
};

/* ---- update, disable, enable ---- */

static const kw_cli_opt_t cred_update_opts[] = {
    KW_CLI_FLD("name", "NAME", "name", "rename"),
    KW_CLI_OPT("owner", "O", "set the owner ('' clears it)"),
    KW_CLI_FLDN("scope", "S", "scopes", "replace the scopes with these"),
    KW_CLI_SW("clear-scopes", "remove every scope"),
    KW_CLI_FLDN("cidr", "C", "allowed_cidrs", "replace the allowed CIDRs with these"),
    KW_CLI_SW("clear-cidrs", "allow any client address"),
    KW_CLI_OPT("metadata", "JSON", "replace the metadata (a JSON object)"),
    KW_CLI_FLD("policy", "P", "policy", "switch to policy P"),
    KW_CLI_OPTN("contact-email", "ADDR", "alert ADDR (replaces the contacts)"),
    KW_CLI_OPTN("contact-webhook", "URL", "alert URL (replaces the contacts)"),
    KW_CLI_SW("contact-log", "alert in the server's log (replaces the contacts)"),
    KW_CLI_SW("clear-contacts", "remove every contact"),
    KW_CLI_SW("enable", "enable the credential"),
    KW_CLI_SW("disable", "disable the credential (its keys stop verifying)"),
    KW_CLI_OPTS_END,
};

/* The answer of a PATCH. verb: "Updated", "Disabled", "Enabled". */
static void cred_patched(const json_t *cred, const char *verb)
{
    if (strcmp(verb, "Updated") == 0) {
        kw_cli_say("Updated credential %s.\n\n", kw_cli_jstr(cred, "id"));
        kw_cli_print_cred(cred);
        kw_cli_print_signing_secrets(cred);
    } else {
        kw_cli_say("%s credential %s (%s).\n", verb, kw_cli_jstr(cred, "id"),
                   kw_cli_jstr(cred, "name"));
    }
}

/* update: what the options with a field do not give, once no two of them contradict each
 * other. */
static int cred_update_body(const kw_cli_t *cli, const kw_cli_args_t *a, json_t *body)
{
    static const char *const clash[][2] = {
        {"enable", "disable"}, {"clear-scopes", "scope"}, {"clear-cidrs", "cidr"}};
    const char *owner = kw_cli_arg(a, "owner");
    int rc;

    for (size_t i = 0; i < sizeof clash / sizeof clash[0]; i++)
        if (kw_cli_arg(a, clash[i][0]) && kw_cli_arg(a, clash[i][1]))
            return kw_cli_usage(cli, "--%s and --%s contradict each other", clash[i][0],
                                clash[i][1]);
    if (kw_cli_arg(a, "clear-contacts") && kw_cli_contacts_given(a))
        return kw_cli_usage(cli, "--clear-contacts and --contact-* contradict each other");
    if (owner)
        json_object_set_new(body, "owner", *owner ? json_string_nocheck(owner) : json_null());
    if (kw_cli_arg(a, "clear-scopes"))
        json_object_set_new(body, "scopes", json_array());
    if (kw_cli_arg(a, "clear-cidrs"))
        json_object_set_new(body, "allowed_cidrs", json_array());
    if ((rc = cred_metadata(cli, a, body)) != 0)
        return rc;
    kw_cli_body_contacts(body, a, kw_cli_arg(a, "clear-contacts") != NULL);
    if (kw_cli_arg(a, "enable") || kw_cli_arg(a, "disable"))
        json_object_set_new(body, "disabled", json_boolean(kw_cli_arg(a, "disable") != NULL));
    return 0;
}

const kw_cli_cmd_t kw_cli_cmd_cred_update = {
    KW_CLI_CRED_CMD("cred", "update", kw_cli_send_cmd),
    KW_CLI_SEND("PATCH", "/v1/credentials/%s", cred_patched, "Updated"),
    .build = cred_update_body,
    .if_empty = "nothing to update",
    .help = "change a credential's fields",
    .opts = cred_update_opts,
};

const kw_cli_cmd_t kw_cli_cmd_cred_disable = {
    KW_CLI_CRED_CMD("cred", "disable", kw_cli_send_cmd),
    KW_CLI_SEND("PATCH", "/v1/credentials/%s", cred_patched, "Disabled"),
    .body = "{\"disabled\": true}",
    .help = "disable a credential (its keys stop verifying)",
};

const kw_cli_cmd_t kw_cli_cmd_cred_enable = {
    KW_CLI_CRED_CMD("cred", "enable", kw_cli_send_cmd),
    KW_CLI_SEND("PATCH", "/v1/credentials/%s", cred_patched, "Enabled"),
    .body = "{\"disabled\": false}",
    .help = "enable a disabled credential",
};

/* ---- delete ---- */

static const kw_cli_opt_t cred_delete_opts[] = {
    KW_CLI_SW("yes", "do not ask (required when stdin is not a terminal)"),
    KW_CLI_OPTS_END,
};

/* Ask on the terminal. Returns 1 for yes. */
static int cred_confirm(const json_t *cred)
{
    char line[64], *id, *name;
    size_t n = 0;
    json_t *k;
    size_t i;

    json_array_foreach(json_object_get(cred, "keys"), i, k) n +=
        json_is_string(json_object_get(k, "state")) &&
        strcmp(json_string_value(json_object_get(k, "state")), "active") == 0;
    id = kw_cli_clean(kw_cli_jstr(cred, "id"));
    name = kw_cli_clean(kw_cli_jstr(cred, "name"));
    fprintf(stderr, "Delete credential %s (%s) and revoke its %zu active key%s? [y/N] ", id, name,
            n, n == 1 ? "" : "s");
    fflush(stderr);
    free(id);
    free(name);
    if (fgets(line, sizeof line, stdin) == NULL)
        return 0;
    line[strcspn(line, "\r\n")] = '\0';
    return strcmp(line, "y") == 0 || strcmp(line, "Y") == 0 || strcmp(line, "yes") == 0;
}

static int cred_delete(kw_cli_t *cli, const kw_cli_args_t *a)
{
    char *path = kw_cli_path("/v1/credentials/%s", a->pos[0]);
    json_t *cred = NULL, *resp = NULL;
    int rc = 0;

    if (kw_cli_arg(a, "yes") == NULL) {
        if (!isatty(STDIN_FILENO)) {
            rc = kw_cli_usage(cli, "refusing to delete %s without --yes (not a terminal)",
                              a->pos[0]);
            goto out;
        }
        if ((rc = kw_cli_call(cli, "GET", path, NULL, &cred)) != 0)
            goto out;
        if (!cred_confirm(cred)) {
            rc = kw_cli_fail(KW_CLI_EAPI, "not deleted");
            goto out;
        }
    }
    if ((rc = kw_cli_call(cli, "DELETE", path, NULL, &resp)) != 0)
        goto out;
    if (cli->json)
        kw_cli_print_json(resp);
    else
        kw_cli_say("Deleted credential %s (%s); all its keys are revoked.\n",
                   resp ? kw_cli_jstr(resp, "id") : a->pos[0], kw_cli_jstr(resp, "name"));
out:
    json_decref(cred);
    json_decref(resp);
    free(path);
    return rc;
}

const kw_cli_cmd_t kw_cli_cmd_cred_delete = {
    KW_CLI_CRED_CMD("cred", "delete", cred_delete),
    .help = "delete a credential, revoking every key",
    .opts = cred_delete_opts,
    .notes = "Asks for confirmation on a terminal; without a terminal it refuses unless --yes.\n",
};
