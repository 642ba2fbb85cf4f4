/* cli_args.c - flag parsing for one command against its option table: "--name VALUE",
 * "--name=VALUE", switches, repeatable flags, "--" to end flags, and the implied --json
 * and --help. It prints usage errors but never validates what a value means. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_args.h"
#include "cli/cli_util.h"

static int args_find(const kw_cli_opt_t *opts, const char *name, size_t len)
{
    for (int i = 0; opts && opts[i].name; i++)
        if (strlen(opts[i].name) == len && strncmp(opts[i].name, name, len) == 0)
            return i;
    return -1;
}

int kw_cli_args_parse(const kw_cli_t *cli, const kw_cli_opt_t *opts, int argc, char **argv,
                      kw_cli_args_t *a)
{
    int rc = 0, only_pos = 0;

    memset(a, 0, sizeof *a);
    a->opts = opts;
    a->pos = kw_cli_xcalloc((size_t)argc, sizeof *a->pos);
    a->seen = kw_cli_xcalloc((size_t)argc, sizeof *a->seen);
    for (int i = 0; i < argc; i++) {
        const char *w = argv[i], *eq, *val = NULL;
        size_t len;
        int o;

        /* A lone "-" is an argument (verify reads the key from stdin). */
        if (only_pos || w[0] != '-' || w[1] == '\0') {
            a->pos[a->npos++] = w;
            continue;
        }
        if (strcmp(w, "--") == 0) {
            only_pos = 1;
            continue;
        }
        if (strcmp(w, "-h") == 0 || strcmp(w, "--help") == 0) {
            a->help = 1;
            continue;
        }
        if (strcmp(w, "--json") == 0) {
            a->json = 1;
            continue;
        }
        if (w[1] != '-') {
            rc = kw_cli_usage(cli, "unknown flag '%s'", w);
            goto out;
        }
        w += 2;
        eq = strchr(w, '=');
        len = eq ? (size_t)(eq - w) : strlen(w);
        o = args_find(opts, w, len);
        if (o < 0) {
            rc = kw_cli_usage(cli, "unknown flag '--%.*s'", (int)len, w);
            goto out;
        }
        if (opts[o].flags & KW_CLI_OPT_VALUE) {
            if (eq)
                val = eq + 1;
            else if (i + 1 < argc)
                val = argv[++i];
            else {
                rc = kw_cli_usage(cli, "--%s needs a value (%s)", opts[o].name, opts[o].arg);
                goto out;
            }
        } else {
            if (eq) {
                rc = kw_cli_usage(cli, "--%s takes no value", opts[o].name);
                goto out;
            }
            val = "";
        }
        a->seen[a->nseen].opt = o;
        a->seen[a->nseen].val = val;
        a->nseen++;
    }
out:
    if (rc != 0)
        kw_cli_args_free(a);
    return rc;
}

void kw_cli_args_free(kw_cli_args_t *a)
{
    if (a == NULL)
        return;
    free(a->pos);
    free(a->seen);
    memset(a, 0, sizeof *a);
}

/* Index of name in the command's table; a name not in it is a bug in the handler. */
static int args_index(const kw_cli_args_t *a, const char *name)
{
    int o = args_find(a->opts, name, strlen(name));

    if (o < 0) {
        fprintf(stderr, "keyward: internal error: option --%s not declared\n", name);
        abort();
    }
    return o;
}

const char *kw_cli_arg(const kw_cli_args_t *a, const char *name)
{
    int o = args_index(a, name);

    for (int i = a->nseen - 1; i >= 0; i--)
        if (a->seen[i].opt == o)
            return a->seen[i].val;
    return NULL;
}

int kw_cli_arg_count(const kw_cli_args_t *a, const char *name)
{
    int o = args_index(a, name), n = 0;

    for (int i = 0; i < a->nseen; i++)
        n += a->seen[i].opt == o;
    return n;
}

const char *kw_cli_arg_nth(const kw_cli_args_t *a, const char *name, int nth)
{
    int o = args_index(a, name);

    for (int i = 0; i < a->nseen; i++)
        if (a->seen[i].opt == o && nth-- == 0)
            return a->seen[i].val;
    return NULL;
}

int kw_cli_arg_posint(const kw_cli_t *cli, const kw_cli_args_t *a, const char *name, long *out)
{
    const char *s = kw_cli_arg(a, name);
    char *end;
    long v;

    if (s == NULL)
        return 0;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v <= 0)
        return kw_cli_usage(cli, "--%s: '%s' is not a positive integer", name, s);
    *out = v;
    return 0;
}

void kw_cli_body_str(json_t *body, const char *field, const kw_cli_args_t *a, const char *opt)
{
    const char *v = kw_cli_arg(a, opt);

    if (v)
        json_object_set_new(body, field, json_string_nocheck(v));
}

void kw_cli_body_fields(json_t *body, const kw_cli_args_t *a)
{
    for (const kw_cli_opt_t *o = a->opts; o && o->name; o++) {
        if (o->field == NULL || kw_cli_arg(a, o->name) == NULL)
            continue;
        if (o->flags & KW_CLI_OPT_MULTI)
            json_object_set_new(body, o->field, kw_cli_arg_array(a, o->name));
        else
            json_object_set_new(body, o->field, json_string_nocheck(kw_cli_arg(a, o->name)));
    }
}

json_t *kw_cli_arg_array(const kw_cli_args_t *a, const char *opt)
{
    json_t *arr = json_array();
    int n = kw_cli_arg_count(a, opt);

    for (int i = 0; i < n; i++)
        json_array_append_new(arr, json_string_nocheck(kw_cli_arg_nth(a, opt, i)));
    return arr;
}

int kw_cli_contacts_given(const kw_cli_args_t *a)
{
    return kw_cli_arg_count(a, "contact-email") + kw_cli_arg_count(a, "contact-webhook") +
           kw_cli_arg_count(a, "contact-log");
}

/* Every value of a repeatable --opt as a contact {"type": type, field: value} on arr. */
static void args_contacts(json_t *arr, const kw_cli_args_t *a, const char *opt, const char *type,
                          const char *field)
{
    int n = kw_cli_arg_count(a, opt);

    for (int i = 0; i < n; i++) {
        json_t *o = json_object();

        json_object_set_new(o, "type", json_string(type));
        json_object_set_new(o, field, json_string_nocheck(kw_cli_arg_nth(a, opt, i)));
        json_array_append_new(arr, o);
    }
}

void kw_cli_body_contacts(json_t *body, const kw_cli_args_t *a, int clear)
{
    json_t *arr;

    if (!clear && kw_cli_contacts_given(a) == 0)
        return;
    arr = json_array();
    args_contacts(arr, a, "contact-email", "email", "to");
    args_contacts(arr, a, "contact-webhook", "webhook", "url");
    if (kw_cli_arg(a, "contact-log"))
        json_array_append_new(arr, json_pack("{s:s}", "type", "log"));
    json_object_set_new(body, "contacts", arr);
}

int kw_cli_body_expiry(const kw_cli_t *cli, const kw_cli_args_t *a, json_t *body)
{
    if (kw_cli_arg(a, "lifetime") && kw_cli_arg(a, "expires-at"))
        return kw_cli_usage(cli, "use either --lifetime or --expires-at, not both");
    kw_cli_body_str(body, "lifetime", a, "lifetime");
    kw_cli_body_str(body, "expires_at", a, "expires-at");
    return 0;
}
