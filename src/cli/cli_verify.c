/* cli_verify.c - `keyward verify KEY`: ask POST /v1/keys/verify whether a key is good and
 * why not. Exit 0 only when valid, 1 when the server says it is not, 2 when it could not
 * be asked. The key itself is never printed; read from stdin ("-") it stays out of shell
 * history, and every copy this file makes is wiped. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli/cli_args.h"
#include "cli/cli_http.h"
#include "cli/cli_out.h"
#include "cli/cli_util.h"

#define VERIFY_STDIN_MAX 4096

static const kw_cli_opt_t verify_opts[] = {
    KW_CLI_OPT("scope", "S", "also require scope S"),
    KW_CLI_OPT("ip", "A", "check as if the request came from address A"),
    KW_CLI_OPTS_END,
};

/* Read the key from stdin into buf, trimmed. Returns 0 or KW_CLI_EUSAGE after printing. */
static int verify_read_stdin(const kw_cli_t *cli, char *buf, size_t cap)
{
    size_t len = 0, start = 0, r;

    while (len < cap - 1 && (r = fread(buf + len, 1, cap - 1 - len, stdin)) > 0)
        len += r;
    buf[len] = '\0';
    if (ferror(stdin))
        return kw_cli_usage(cli, "cannot read the key from stdin");
    if (len == cap - 1 && fgetc(stdin) != EOF)
        return kw_cli_usage(cli, "the key on stdin is too long");
    while (len > 0 && strchr(" \t\r\n", buf[len - 1]))
        buf[--len] = '\0';
    while (buf[start] && strchr(" \t\r\n", buf[start]))
        start++;
    memmove(buf, buf + start, len - start + 1);
    if (*buf == '\0')
        return kw_cli_usage(cli, "no key on stdin");
    return 0;
}

static void verify_print(const json_t *r)
{
    kw_cli_table_t *t = kw_cli_table_new(2, NULL);
    json_t *w;
    size_t i;
    char when[128], *s;

    kw_cli_kv(t, "code", "%s", kw_cli_jstr(r, "code"));
    kw_cli_kv(t, "message", "%s", kw_cli_jstr(r, "message"));
    if (json_object_get(r, "key_id")) {
        kw_cli_kv(t, "credential", "%s", kw_cli_jstr(r, "credential_id"));
        kw_cli_kv(t, "key", "%s", kw_cli_jstr(r, "key_id"));
        kw_cli_kv(t, "slot", "%lld", (long long)json_integer_value(json_object_get(r, "slot")));
        s = kw_cli_fmt_list(json_object_get(r, "scopes"), "none");
        kw_cli_kv(t, "scopes", "%s", s);
        free(s);
        kw_cli_fmt_when(r, "expires_at", "never", when, sizeof when);
        kw_cli_kv(t, "expires", "%s", when);
    }
    json_array_foreach(json_object_get(r, "warnings"), i, w)
        kw_cli_kv(t, "warning", "%s", json_is_string(w) ? json_string_value(w) : "?");
    kw_cli_table_print(t, stdout);
    kw_cli_table_free(t);
}

static int verify_exec(kw_cli_t *cli, const kw_cli_args_t *a)
{
    char buf[VERIFY_STDIN_MAX];
    const char *key = a->pos[0];
    json_t *body = NULL, *resp = NULL;
    int rc;

    /* An answer other than 200 means the question could not be asked: not "invalid". */
    cli->api_status = KW_CLI_EUSAGE;
    /* With `serve --verify-requires-role` the asker shows a keyward:verifier key. */
    if (getenv("KEYWARD_CALLER_KEY") && *getenv("KEYWARD_CALLER_KEY")) {
        cli->caller_key = kw_cli_xstrdup(getenv("KEYWARD_CALLER_KEY"));
        if (kw_cli_token_clean(cli->caller_key) != 0) {
            rc = kw_cli_fail(KW_CLI_EUSAGE, "KEYWARD_CALLER_KEY does not hold a key");
            goto out;
        }
    }
    if (strcmp(key, "-") == 0) {
        if ((rc = verify_read_stdin(cli, buf, sizeof buf)) != 0)
            goto out;
        key = buf;
    }
    body = json_object();
    json_object_set_new(body, "key", json_string_nocheck(key));
    kw_cli_body_str(body, "scope", a, "scope");
    kw_cli_body_str(body, "ip", a, "ip");
    if ((rc = kw_cli_call(cli, "POST", "/v1/keys/verify", body, &resp)) != 0)
        goto out;
    if (!json_is_boolean(json_object_get(resp, "valid"))) {
        rc = kw_cli_fail(KW_CLI_EUSAGE, "unexpected answer from the server: no 'valid'");
        goto out;
    }
    if (cli->json)
        kw_cli_print_json(resp);
    else
        verify_print(resp);
    rc = json_is_true(json_object_get(resp, "valid")) ? KW_CLI_OK : KW_CLI_EAPI;
out:
    json_decref(resp);
    json_decref(body);
    explicit_bzero(buf, sizeof buf);
    return rc;
}

const kw_cli_cmd_t kw_cli_cmd_verify = {
    KW_CLI_CMD(NULL, "verify", verify_exec, "KEY", 1, 1, 0),
    .help = "check a key ('-' reads it from stdin)",
    .opts = verify_opts,
    .notes = "Prints the outcome code and message, and the key's credential, slot, scopes\n"
             "and expiry when it was found. Needs no admin key. Pass '-' as KEY to read\n"
             "the key from stdin, keeping it out of shell history and the process list.\n"
             "If the server runs with --verify-requires-role, KEYWARD_CALLER_KEY must hold\n"
             "a key with the keyward:verifier scope (sent as Keyward-Caller-Key).\n"
             "Exit status: 0 valid; 1 not valid (MALFORMED, NOT_FOUND, REVOKED, EXPIRED,\n"
             "DISABLED, FORBIDDEN_IP, FORBIDDEN_SCOPE); 2 usage error, server unreachable\n"
             "or refusing the request.\n",
};
