/* cli_watched.c - `keyward watched ...` (create, list, show, update, delete, token) over
 * /v1/watched, and `keyward secrets rotate-key`. Secrets are read from files (--secret-file,
 * --client-secret-file, --refresh-token-file; "-" = standard input), never from the command
 * line where other users could see them; they are wiped after the request. Output shows
 * hints and expiries; `watched token` prints the current access token, for scripts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli/cli_args.h"
#include "cli/cli_http.h"
#include "cli/cli_out.h"
#include "cli/cli_show.h"
#include "cli/cli_util.h"

/* The contents of path ("-" = stdin) without trailing newlines; NULL after printing. */
static char *read_secret(const kw_cli_t *cli, const char *opt, const char *path)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (f == NULL) {
        kw_cli_usage(cli, "--%s: cannot read %s", opt, path);
        return NULL;
    }
    char *buf = kw_cli_xmalloc(16385);
    size_t n = fread(buf, 1, 16384, f);
    if (f != stdin)
        fclose(f);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    buf[n] = '\0';
    if (n == 0) {
        kw_cli_free_secret(buf);
        kw_cli_usage(cli, "--%s: %s is empty", opt, path);
        return NULL;
    }
    return buf;
}

/* body[field] = contents of --opt's file, when given. Returns 0 or a usage status. */
static int body_secret(const kw_cli_t *cli, const kw_cli_args_t *a, json_t *o, const char *field,
                       const char *opt)
{
    const char *p = kw_cli_arg(a, opt);
    if (p == NULL)
        return 0;
    char *s = read_secret(cli, opt, p);
    if (s == NULL)
        return KW_CLI_EUSAGE;
    json_object_set_new(o, field, json_string_nocheck(s));
    kw_cli_free_secret(s);
    return 0;
}

/* The request body from the flags shared by create and update that have no field. */
static int build_body(const kw_cli_t *cli, const kw_cli_args_t *a, json_t *body)
{
    json_t *o = json_object();
    int rc = 0;
    kw_cli_body_contacts(body, a, 0);
    if ((rc = body_secret(cli, a, body, "secret", "secret-file")) != 0)
        goto out;
    kw_cli_body_str(o, "token_url", a, "token-url");
    kw_cli_body_str(o, "grant_type", a, "grant-type");
    kw_cli_body_str(o, "client_id", a, "client-id");
    kw_cli_body_str(o, "scope", a, "scope");
    kw_cli_body_str(o, "auth_method", a, "auth-method");
    if ((rc = body_secret(cli, a, o, "client_secret", "client-secret-file")) != 0 ||
        (rc = body_secret(cli, a, o, "refresh_token", "refresh-token-file")) != 0)
        goto out;
    if (json_object_size(o))
        json_object_set(body, "oauth2", o);
out:
    json_decref(o);
    return rc;
}

static void print_watched(const json_t *w)
{
    kw_cli_table_t *t = kw_cli_table_new(2, NULL);
    char when[128];
    const json_t *o = json_object_get(w, "oauth2"), *tok = json_object_get(w, "token"),
                 *r = json_object_get(w, "refresh");
    kw_cli_kv(t, "watched", "%s", kw_cli_jstr(w, "id"));
    kw_cli_kv(t, "name", "%s", kw_cli_jstr(w, "name"));
    kw_cli_kv(t, "kind", "%s", kw_cli_jstr(w, "kind"));
    kw_cli_kv(t, "provider", "%s", kw_cli_jstr(w, "provider"));
    kw_cli_kv(t, "owner", "%s", kw_cli_jstr(w, "owner"));
    kw_cli_kv(t, "policy", "%s", kw_cli_jstr(w, "policy"));
    kw_cli_kv(t, "secret", "%s", kw_cli_jstr(w, "secret_hint"));
    kw_cli_fmt_when(w, "expires_at", "never", when, sizeof when);
    kw_cli_kv(t, "expires", "%s", when);
    if (json_is_object(o)) {
        kw_cli_kv(t, "token url", "%s", kw_cli_jstr(o, "token_url"));
        kw_cli_kv(t, "grant", "%s (%s)", kw_cli_jstr(o, "grant_type"),
                  kw_cli_jstr(o, "auth_method"));
        kw_cli_kv(t, "client id", "%s", kw_cli_jstr(o, "client_id"));
        kw_cli_kv(t, "client secret", "%s", kw_cli_jstr(o, "client_secret_hint"));
        kw_cli_kv(t, "refresh token", "%s", kw_cli_jstr(o, "refresh_token_hint"));
        kw_cli_kv(t, "scope", "%s", kw_cli_jstr(o, "scope"));
        kw_cli_kv(t, "token file", "%s", kw_cli_jstr(w, "token_file"));
        kw_cli_fmt_when(tok, "expires_at", "-", when, sizeof when);
        kw_cli_kv(t, "token", "%s, expires %s", kw_cli_jstr(tok, "state"), when);
        kw_cli_fmt_when(r, "next_at", "-", when, sizeof when);
        kw_cli_kv(t, "next refresh", "%s", when);
        kw_cli_kv(t, "failures", "%lld",
                  (long long)json_integer_value(json_object_get(r, "failures")));
        kw_cli_kv(t, "last error", "%s", kw_cli_jstr(r, "last_error"));
    }
    kw_cli_table_print(t, stdout);
    kw_cli_table_free(t);
}

/* A watched credential; verb: what was done to it ("Created"...), NULL for show. */
static void watched_answer(const json_t *w, const char *verb)
{
    if (verb)
        kw_cli_say("%s watched credential %s.\n\n", verb, kw_cli_jstr(w, "id"));
    print_watched(w);
    kw_cli_print_signing_secrets(w);
}

// clang-format off
#define COMMON_OPTS                                                                                \
    KW_CLI_FLD("provider", "P", "provider", "who issued it (e.g. AdaptiveWork, Azure)"),           \
    KW_CLI_FLD("owner", "O", "owner", "owner, free text (e.g. an e-mail)"),                        \
    KW_CLI_FLD("policy", "P", "policy", "policy whose alert thresholds apply"),                    \
    KW_CLI_FLD("expires-at", "T", "expires_at", "when the secret expires (RFC 3339)"),             \
    KW_CLI_OPT("secret-file", "F", "read the secret from F ('-': stdin)"),                         \
    KW_CLI_OPT("token-url", "URL", "oauth2: token endpoint"),                                      \
    KW_CLI_OPT("grant-type", "G", "oauth2: client_credentials or refresh_token"),                  \
    KW_CLI_OPT("client-id", "ID", "oauth2: client id"),                                            \
    KW_CLI_OPT("client-secret-file", "F", "oauth2: read the client secret from F"),                \
    KW_CLI_OPT("refresh-token-file", "F", "oauth2: read the refresh token from F"),                \
    KW_CLI_OPT("scope", "S", "oauth2: scope to request"),                                          \
    KW_CLI_OPT("auth-method", "M", "oauth2: basic (default) or post"),                             \
    KW_CLI_FLD("token-file", "PATH", "token_file", "oauth2: keep the access token in PATH (0600)"), \
    KW_CLI_OPTN("contact-email", "ADDR", "send alerts to ADDR"),                                   \
    KW_CLI_OPTN("contact-webhook", "URL", "send alerts to URL"),                                   \
    KW_CLI_SW("contact-log", "write alerts to the server's log")
// clang-format on

/* ---- create ---- */

static const kw_cli_opt_t create_opts[] = {
    KW_CLI_FLD("kind", "K", "kind", "static (a key) or oauth2 (a client); default static"),
    COMMON_OPTS,
    KW_CLI_OPTS_END,
};

const kw_cli_cmd_t kw_cli_cmd_watched_create = {
    KW_CLI_CMD("watched", "create", kw_cli_send_cmd, "NAME", 1, 1, KW_CLI_CMD_ADMIN),
    KW_CLI_SEND("POST", "/v1/watched", watched_answer, "Created"),
    .body = "{\"kind\": \"static\"}",
    .arg_field = "name",
    .build = build_body,
    .help = "watch a key or OAuth2 client that someone else issued",
    .opts = create_opts,
    .notes = "Secrets are read from files (or stdin with '-'), never from the command line.\n"
             "keyward keeps them encrypted and shows only hints. An oauth2 client gets an\n"
             "access token at once and a fresh one at 80 % of each token's lifetime.\n",
};

/* ---- list ---- */

static const kw_cli_opt_t list_opts[] = {
    KW_CLI_FLD("owner", "O", "owner", "only those of this owner"),
    KW_CLI_FLD("kind", "K", "kind", "only static or oauth2"),
    KW_CLI_FLD("expiring-within", "D", "expiring_within", "only those expiring within D"),
    KW_CLI_LIST_OPTS("100"),
    KW_CLI_OPTS_END,
};

static void list_table_row(kw_cli_table_t *t, const json_t *w)
{
    char exp[KW_CLI_REL_MAX], tok[KW_CLI_REL_MAX + 16] = "-", fails[24] = "-";
    int64_t e = kw_cli_jtime(w, "expires_at");
    if (e)
        kw_cli_fmt_rel(e, exp);
    else
        snprintf(exp, sizeof exp, "never");
    const json_t *tk = json_object_get(w, "token");
    if (json_is_object(tk)) {
        char rel[KW_CLI_REL_MAX] = "";
        int64_t te = kw_cli_jtime(tk, "expires_at");
        if (te)
            kw_cli_fmt_rel(te, rel);
        snprintf(tok, sizeof tok, "%s%s%s", kw_cli_jstr(tk, "state"), te ? " " : "", rel);
        snprintf(fails, sizeof fails, "%lld",
                 (long long)json_integer_value(
                     json_object_get(json_object_get(w, "refresh"), "failures")));
    }
    const char *cells[7] = {kw_cli_jstr(w, "id"),
                            kw_cli_jstr(w, "name"),
                            kw_cli_jstr(w, "kind"),
                            kw_cli_jstr(w, "provider"),
                            exp,
                            tok,
                            fails};
    kw_cli_table_row(t, cells);
}

static void list_table(const json_t *items)
{
    static const char *const hdr[] = {"ID",      "NAME",  "KIND",    "PROVIDER",
                                      "EXPIRES", "TOKEN", "FAILURES"};
    kw_cli_table_list(items, 7, hdr, list_table_row);
}

const kw_cli_cmd_t kw_cli_cmd_watched_list = {
    KW_CLI_CMD("watched", "list", kw_cli_list_exec, "", 0, 0, KW_CLI_CMD_ADMIN),
    KW_CLI_LIST("/v1/watched", list_table, "(no watched credentials)", NULL),
    .help = "list watched credentials",
    .opts = list_opts,
    .notes = "Columns: ID NAME KIND PROVIDER EXPIRES (the secret's) TOKEN (oauth2: state and\n"
             "expiry of the current access token) FAILURES (refreshes failed in a row).\n",
};

/* ---- show, delete ---- */

const kw_cli_cmd_t kw_cli_cmd_watched_show = {
    KW_CLI_CMD("watched", "show", kw_cli_send_cmd, "ID", 1, 1, KW_CLI_CMD_ADMIN),
    KW_CLI_SEND("GET", "/v1/watched/%s", watched_answer, NULL),
    .help = "show a watched credential (hints and expiries, never a secret)",
};

const kw_cli_cmd_t kw_cli_cmd_watched_delete = {
    KW_CLI_CMD("watched", "delete", kw_cli_send_cmd, "ID", 1, 1, KW_CLI_CMD_ADMIN),
    KW_CLI_SEND("DELETE", "/v1/watched/%s", watched_answer, "Deleted"),
    .help = "stop watching (its stored secrets are erased)",
};

/* ---- update ---- */

static const kw_cli_opt_t update_opts[] = {
    KW_CLI_FLD("name", "N", "name", "new name"),
    COMMON_OPTS,
    KW_CLI_OPTS_END,
};

const kw_cli_cmd_t kw_cli_cmd_watched_update = {
    KW_CLI_CMD("watched", "update", kw_cli_send_cmd, "ID", 1, 1, KW_CLI_CMD_ADMIN),
    KW_CLI_SEND("PATCH", "/v1/watched/%s", watched_answer, "Updated"),
    .build = build_body,
    .if_empty = "nothing to change",
    .help = "change a watched credential or record its replacement",
    .opts = update_opts,
    .notes = "Recording a replacement: --secret-file NEW --expires-at T. The expiry alerts\n"
             "are re-armed for the new expiry.\n",
};

/* ---- token ---- */

static int w_token(kw_cli_t *cli, const kw_cli_args_t *a)
{
    char *path = kw_cli_path("/v1/watched/%s/token", a->pos[0]);
    json_t *resp = NULL;
    int rc = kw_cli_call(cli, "GET", path, NULL, &resp);
    if (rc == 0) {
        if (cli->json) {
            kw_cli_print_json(resp);
        } else {
            const char *t = json_string_value(json_object_get(resp, "access_token"));
            if (t == NULL)
                rc = kw_cli_fail(KW_CLI_EAPI, "unexpected answer: no access_token");
            else
                fprintf(stdout, "%s\n", t);
        }
    }
    json_decref(resp);
    free(path);
    return rc;
}

const kw_cli_cmd_t kw_cli_cmd_watched_token = {
    KW_CLI_CMD("watched", "token", w_token, "ID", 1, 1, KW_CLI_CMD_ADMIN),
    .help = "print the current access token of an oauth2 watched credential",
    .notes = "KEYWARD_TOKEN may be any key with the scope keyward:token:ID (or an admin key).\n"
             "Exits 1 while no valid token is held (the server answers 503).\n",
};

/* ---- secrets rotate-key ---- */

static void rotated(const json_t *resp, const char *verb)
{
    kw_cli_say("Added a new secrets key; %lld stored secrets re-sealed under it.\n",
               (long long)json_integer_value(json_object_get(resp, "resealed")));
}

const kw_cli_cmd_t kw_cli_cmd_secrets_rotate_key = {
    KW_CLI_CMD("secrets", "rotate-key", kw_cli_send_cmd, "", 0, 0, KW_CLI_CMD_ADMIN),
    KW_CLI_SEND("POST", "/v1/secrets/rotate-key", rotated, NULL),
    .help = "add a key to the secrets key file and re-seal every stored secret",
    .notes = "The server appends the new key to its --secrets-key-file (older keys stay in the\n"
             "file so a backup of the database taken earlier can still be opened) and\n"
             "re-encrypts every stored secret under it in one transaction.\n",
};
