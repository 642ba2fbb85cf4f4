/* cli_expiring.c - `keyward expiring`: usable keys expiring within a window, soonest
 * first (GET /v1/expiring), so an operator sees what will lapse before it does. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli/cli_args.h"
#include "cli/cli_http.h"
#include "cli/cli_out.h"
#include "cli/cli_show.h"
#include "cli/cli_util.h"

static const kw_cli_opt_t expiring_opts[] = {
    KW_CLI_FLD("within", "D", "within", "window, a duration (default 30d)"),
    KW_CLI_LIST_OPTS("100"),
    KW_CLI_OPTS_END,
};

static void expiring_table_row(kw_cli_table_t *t, const json_t *k)
{
    char slot[24], in[KW_CLI_REL_MAX];
    const char *cells[6], *cred = json_string_value(json_object_get(k, "credential_name"));

    snprintf(slot, sizeof slot, "%lld", (long long)json_integer_value(json_object_get(k, "slot")));
    kw_cli_fmt_rel(kw_cli_jtime(k, "expires_at"), in);
    cells[0] = kw_cli_jstr(k, "id");
    cells[1] = cred ? cred : kw_cli_jstr(k, "credential_id");
    cells[2] = slot;
    cells[3] = kw_cli_jstr(k, "hint");
    cells[4] = kw_cli_jstr(k, "expires_at");
    cells[5] = in;
    kw_cli_table_row(t, cells);
}

static void expiring_table(const json_t *items)
{
    static const char *const hdr[] = {"KEY", "CREDENTIAL", "SLOT", "HINT", "EXPIRES", "IN"};
    kw_cli_table_list(items, 6, hdr, expiring_table_row);
}

static int expiring_exec(kw_cli_t *cli, const kw_cli_args_t *a)
{
    const char *within = kw_cli_arg(a, "within");
    char *base = kw_cli_path("/v1/expiring"),
         *empty = kw_cli_xasprintf("(no usable key expires within %s)", within ? within : "30d");
    int rc = kw_cli_list_cmd(cli, a, base, expiring_table, empty, "keys");
    free(empty);
    return rc;
}

const kw_cli_cmd_t kw_cli_cmd_expiring = {
    KW_CLI_CMD(NULL, "expiring", expiring_exec, "", 0, 0, KW_CLI_CMD_ADMIN),
    .help = "list keys expiring soon, soonest first",
    .opts = expiring_opts,
    .notes = "Columns: KEY CREDENTIAL (name) SLOT HINT EXPIRES (RFC 3339) IN (relative).\n",
};
