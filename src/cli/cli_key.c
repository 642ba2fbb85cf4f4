/* cli_key.c - `keyward key ...`: new, roll, invalidate, show, through /v1/keys and
 * /v1/credentials/{id}/keys. new and roll print the new secret once; nothing else here
 * sees a secret. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli/cli_args.h"
#include "cli/cli_http.h"
#include "cli/cli_out.h"
#include "cli/cli_show.h"

/* The {"key", "secret"(, "previous")} answer of a new key; roll: of a roll. */
static void key_created(const json_t *resp, const char *roll)
{
    json_t *key = json_object_get(resp, "key"), *prev = json_object_get(resp, "previous");
    char when[128];

    if (roll && prev) {
        kw_cli_fmt_when(prev, "expires_at", "never", when, sizeof when);
        kw_cli_say("Rolled key %s: new key %s in slot %lld.\nThe previous key now expires %s.\n\n",
                   kw_cli_jstr(prev, "id"), kw_cli_jstr(key, "id"),
                   (long long)json_integer_value(json_object_get(key, "slot")), when);
    } else {
        kw_cli_say("Created key %s in slot %lld of credential %s.\n\n", kw_cli_jstr(key, "id"),
                   (long long)json_integer_value(json_object_get(key, "slot")),
                   kw_cli_jstr(key, "credential_id"));
    }
    kw_cli_print_key(key);
    kw_cli_print_secret(resp);
}

/* ---- new ---- */

static const kw_cli_opt_t key_new_opts[] = {
    KW_CLI_OPT("lifetime", "D|never", "lifetime of the key (default: policy's)"),
    KW_CLI_OPT("expires-at", "T", "expiry, RFC 3339"),
    KW_CLI_OPTS_END,
};

const kw_cli_cmd_t kw_cli_cmd_key_new = {
    KW_CLI_CRED_CMD("key", "new", kw_cli_send_cmd),
    KW_CLI_SEND("POST", "/v1/credentials/%s/keys", key_created, NULL),
    .build = kw_cli_body_expiry,
    .help = "issue a key in the credential's free slot",
    .opts = key_new_opts,
    .notes = "Refused (409) when both slots hold usable keys. The secret is shown only once.\n",
};

/* ---- roll ---- */

static const kw_cli_opt_t key_roll_opts[] = {
    KW_CLI_FLD("overlap", "D", "overlap", "old key stays valid for D more (default 24h)"),
    KW_CLI_OPT("lifetime", "D|never", "lifetime of the new key (default: policy's)"),
    KW_CLI_OPT("expires-at", "T", "expiry of the new key, RFC 3339"),
    KW_CLI_OPTS_END,
};

const kw_cli_cmd_t kw_cli_cmd_key_roll = {
    KW_CLI_CMD("key", "roll", kw_cli_send_cmd, "KEY_ID", 1, 1, KW_CLI_CMD_ADMIN),
    KW_CLI_SEND("POST", "/v1/keys/%s/roll", key_created, "roll"),
    .build = kw_cli_body_expiry,
    .help = "replace a key by a new one in the other slot",
    .opts = key_roll_opts,
    .notes = "The old key's expiry becomes min(current, now + overlap): both work meanwhile.\n"
             "The new key's secret is shown only once.\n",
};

/* ---- invalidate ---- */

static const kw_cli_opt_t key_invalidate_opts[] = {
    KW_CLI_FLD("reason", "R", "reason", "why (kept in the key's record and the audit trail)"),
    KW_CLI_FLD("unused-for", "D", "unused_for", "refuse if the key was used within D"),
    KW_CLI_OPTS_END,
};

static void key_invalidated(const json_t *key, const char *verb)
{
    kw_cli_say("Invalidated key %s (%s).\n\n", kw_cli_jstr(key, "id"), kw_cli_jstr(key, "hint"));
    kw_cli_print_key(key);
}

const kw_cli_cmd_t kw_cli_cmd_key_invalidate = {
    KW_CLI_CMD("key", "invalidate", kw_cli_send_cmd, "KEY_ID", 1, 1, KW_CLI_CMD_ADMIN),
    KW_CLI_SEND("POST", "/v1/keys/%s/invalidate", key_invalidated, NULL),
    .help = "revoke a key now",
    .opts = key_invalidate_opts,
    .notes = "With --unused-for the server refuses (409) if the key was used more recently:\n"
             "safe cleanup after a roll.\n",
};

/* ---- show ---- */

const kw_cli_cmd_t kw_cli_cmd_key_show = {
    KW_CLI_CMD("key", "show", kw_cli_show_cmd, "KEY_ID", 1, 1, KW_CLI_CMD_ADMIN),
    KW_CLI_GET("/v1/keys/%s", kw_cli_print_key),
    .help = "show a key (never its secret)",
};
