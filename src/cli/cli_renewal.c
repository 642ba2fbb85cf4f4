/* cli_renewal.c - `keyward renewal ...` (list, show, approve, reject) and `keyward key
 * renew`, through /v1/renewals and /v1/keys/{id}/renew. Nothing here sees a secret. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli/cli_args.h"
#include "cli/cli_http.h"
#include "cli/cli_out.h"
#include "cli/cli_show.h"
#include "cli/cli_util.h"

static void renewal_block(const json_t *r)
{
    kw_cli_table_t *t = kw_cli_table_new(2, NULL);
    char when[128];
    kw_cli_kv(t, "renewal", "%s", kw_cli_jstr(r, "id"));
    kw_cli_kv(t, "key", "%s", kw_cli_jstr(r, "key_id"));
    kw_cli_kv(t, "state", "%s", kw_cli_jstr(r, "state"));
    kw_cli_kv(t, "requested by", "%s", kw_cli_jstr(r, "requested_by"));
    if (json_is_string(json_object_get(r, "extend_by")))
        kw_cli_kv(t, "extend by", "%s", kw_cli_jstr(r, "extend_by"));
    else
        kw_cli_kv(t, "until", "%s", kw_cli_jstr(r, "expires_at"));
    kw_cli_kv(t, "reason", "%s", kw_cli_jstr(r, "reason"));
    kw_cli_fmt_when(r, "created_at", "-", when, sizeof when);
    kw_cli_kv(t, "requested", "%s", when);
    kw_cli_kv(t, "decided by", "%s", kw_cli_jstr(r, "decided_by"));
    kw_cli_fmt_when(r, "decided_at", "-", when, sizeof when);
    kw_cli_kv(t, "decided", "%s", when);
    kw_cli_kv(t, "note", "%s", kw_cli_jstr(r, "note"));
    kw_cli_table_print(t, stdout);
    kw_cli_table_free(t);
}

static void renewal_table_row(kw_cli_table_t *t, const json_t *r)
{
    char asks[64], rel[KW_CLI_REL_MAX];
    if (json_is_string(json_object_get(r, "extend_by")))
        snprintf(asks, sizeof asks, "+%s", kw_cli_jstr(r, "extend_by"));
    else
        snprintf(asks, sizeof asks, "until %s", kw_cli_jstr(r, "expires_at"));
    kw_cli_fmt_rel(kw_cli_jtime(r, "created_at"), rel);
    const char *cells[7] = {kw_cli_jstr(r, "id"),
                            kw_cli_jstr(r, "key_id"),
                            kw_cli_jstr(r, "state"),
                            kw_cli_jstr(r, "requested_by"),
                            asks,
                            kw_cli_jstr(r, "reason"),
                            rel};
    kw_cli_table_row(t, cells);
}

static void renewal_table(const json_t *items)
{
    static const char *const hdr[] = {"RENEWAL", "KEY",    "STATE",    "REQUESTED-BY",
                                      "ASKS",    "REASON", "REQUESTED"};
    kw_cli_table_list(items, 7, hdr, renewal_table_row);
}

/* ---- key renew ---- */

static const kw_cli_opt_t key_renew_opts[] = {
    KW_CLI_FLD("extend-by", "D", "extend_by", "add D to the current expiry (capped by the policy)"),
    KW_CLI_FLD("expires-at", "T", "expires_at", "new expiry, RFC 3339 (within the policy maximum)"),
    KW_CLI_FLD("reason", "R", "reason", "why (shown to approvers, kept in the audit trail)"),
    KW_CLI_OPTS_END,
};

/* The answer of a renewal: a pending request, or the extended key. */
static void renewed(const json_t *resp, const char *verb)
{
    json_t *key, *ren;
    char when[128];

    if ((ren = json_object_get(resp, "renewal")) != NULL) {
        kw_cli_say("Renewal request %s is pending approval; key %s is unchanged until an "
                   "approver decides.\n\n",
                   kw_cli_jstr(ren, "id"), kw_cli_jstr(ren, "key_id"));
        renewal_block(ren);
        return;
    }
    key = json_object_get(resp, "key");
    kw_cli_fmt_when(key, "expires_at", "never", when, sizeof when);
    kw_cli_say("Renewed key %s: it now expires %s%s.\n\n", kw_cli_jstr(key, "id"), when,
               json_is_true(json_object_get(resp, "capped"))
                   ? " (capped at now + the policy's max_lifetime)"
                   : "");
    kw_cli_print_key(key);
}

/* Exactly one of --extend-by and --expires-at. */
static int renew_check(const kw_cli_t *cli, const kw_cli_args_t *a, json_t *body)
{
    if (kw_cli_arg(a, "extend-by") && kw_cli_arg(a, "expires-at"))
        return kw_cli_usage(cli, "give --extend-by D or --expires-at T, not both");
    if (!kw_cli_arg(a, "extend-by") && !kw_cli_arg(a, "expires-at"))
        return kw_cli_usage(cli, "give --extend-by D or --expires-at T");
    return 0;
}

const kw_cli_cmd_t kw_cli_cmd_key_renew = {
    KW_CLI_CMD("key", "renew", kw_cli_send_cmd, "KEY_ID", 1, 1, KW_CLI_CMD_ADMIN),
    KW_CLI_SEND("POST", "/v1/keys/%s/renew", renewed, NULL),
    .build = renew_check,
    .help = "extend a key's expiry (or ask an approver to)",
    .opts = key_renew_opts,
    .notes = "New expiry = max(current expiry, now) + D, capped at now + the policy's\n"
             "max_lifetime. When the policy requires approval this files a renewal request\n"
             "(see 'keyward renewal --help') and the key is unchanged until it is approved.\n",
};

/* ---- renewal list / show ---- */

static const kw_cli_opt_t renewal_list_opts[] = {
    KW_CLI_OPT("state", "S", "pending (default), approved, rejected, cancelled or all"),
    KW_CLI_FLD("key", "KEY_ID", "key_id", "only requests for this key"),
    KW_CLI_LIST_OPTS("100"),
    KW_CLI_OPTS_END,
};

static int renewal_list(kw_cli_t *cli, const kw_cli_args_t *a)
{
    char *base = kw_cli_path("/v1/renewals");
    const char *st = kw_cli_arg(a, "state") ? kw_cli_arg(a, "state") : "pending";
    if (strcmp(st, "all") != 0)
        kw_cli_query_add(&base, "state", st);
    return kw_cli_list_cmd(cli, a, base, renewal_table, "(no renewal requests)", NULL);
}

const kw_cli_cmd_t kw_cli_cmd_renewal_list = {
    KW_CLI_CMD("renewal", "list", renewal_list, "", 0, 0, KW_CLI_CMD_ADMIN),
    .help = "list renewal requests, oldest first (pending ones by default)",
    .opts = renewal_list_opts,
};

const kw_cli_cmd_t kw_cli_cmd_renewal_show = {
    KW_CLI_CMD("renewal", "show", kw_cli_show_cmd, "RENEWAL_ID", 1, 1, KW_CLI_CMD_ADMIN),
    KW_CLI_GET("/v1/renewals/%s", renewal_block),
    .help = "show one renewal request",
};

/* ---- approve / reject ---- */

static const kw_cli_opt_t decide_opts[] = {
    KW_CLI_FLD("note", "N", "note", "a note kept with the decision and in the audit trail"),
    KW_CLI_OPTS_END,
};

/* The answer of an approval (it carries the extended key) or a rejection. */
static void decided(const json_t *resp, const char *verb)
{
    json_t *key = json_object_get(resp, "key");
    char when[128];

    if (key != NULL) {
        kw_cli_fmt_when(key, "expires_at", "never", when, sizeof when);
        kw_cli_say("Approved renewal %s: key %s now expires %s.\n\n", kw_cli_jstr(resp, "id"),
                   kw_cli_jstr(key, "id"), when);
    } else {
        kw_cli_say("Rejected renewal %s: key %s is unchanged.\n\n", kw_cli_jstr(resp, "id"),
                   kw_cli_jstr(resp, "key_id"));
    }
    renewal_block(resp);
}

const kw_cli_cmd_t kw_cli_cmd_renewal_approve = {
    KW_CLI_CMD("renewal", "approve", kw_cli_send_cmd, "RENEWAL_ID", 1, 1, KW_CLI_CMD_ADMIN),
    KW_CLI_SEND("POST", "/v1/renewals/%s/approve", decided, NULL),
    .help = "approve a pending request: the key is extended now",
    .opts = decide_opts,
    .notes =
        "Needs keyward:approver (or admin). Nobody may decide a request they made. The\n"
        "extension is re-checked against the key's policy as it is now; a decision is final.\n",
};

const kw_cli_cmd_t kw_cli_cmd_renewal_reject = {
    KW_CLI_CMD("renewal", "reject", kw_cli_send_cmd, "RENEWAL_ID", 1, 1, KW_CLI_CMD_ADMIN),
    KW_CLI_SEND("POST", "/v1/renewals/%s/reject", decided, NULL),
    .help = "reject a pending request: the key keeps its expiry",
    .opts = decide_opts,
    .notes = "Needs keyward:approver (or admin). Nobody may decide a request they made.\n",
};
