/* cli_out.c - what the client prints: aligned tables, "key: value" blocks, relative times,
 * and the shared views of a key and a credential. Anything from the server may hold
 * terminal controls, so every cell is sanitised. Only kw_cli_print_secret prints a secret. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli/cli_out.h"
#include "cli/cli_util.h"
#include "core/util.h"

void kw_cli_say(const char *fmt, ...)
{
    char *s;
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0) {
        fputs("keyward: out of memory\n", stderr);
        exit(KW_CLI_EAPI);
    }
    char *c = kw_cli_clean_lines(s);
    fputs(c, stdout);
    explicit_bzero(s, (size_t)n);
    free(s);
    kw_cli_free_secret(c);
}

/* ---- JSON ---- */

void kw_cli_print_json(const json_t *v)
{
    if (v == NULL) {
        puts("null");
        return;
    }
    json_dumpf(v, stdout, JSON_INDENT(2));
    putchar('\n');
}

const char *kw_cli_jstr(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));

    return s ? s : "-";
}

int64_t kw_cli_jtime(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    int64_t t;

    if (s == NULL || kw_time_parse(s, strlen(s), &t) != 0)
        return 0;
    return t;
}

/* ---- tables ---- */

struct kw_cli_table {
    int ncols;
    int kv;       /* a key: value block, no header */
    char **cells; /* rows * ncols, row 0 the header unless kv */
    size_t nrows, cap;
};

/* Columns a UTF-8 string takes (one per code point; good enough for names and hints). */
static size_t out_width(const char *s)
{
    size_t w = 0;

    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        w += (*p & 0xc0) != 0x80;
    return w;
}

static void out_add(kw_cli_table_t *t, const char *const *cells, const char *suffix0)
{
    if (t->nrows == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        char **c = realloc(t->cells, cap * (size_t)t->ncols * sizeof *c);

        if (c == NULL) {
            fputs("keyward: out of memory\n", stderr);
            exit(KW_CLI_EAPI);
        }
        t->cells = c;
        t->cap = cap;
    }
    for (int i = 0; i < t->ncols; i++) {
        const char *s = cells[i] ? cells[i] : "-";
        char *c;

        if (i == 0 && suffix0) {
            char *tmp = kw_cli_xasprintf("%s%s", s, suffix0);

            c = kw_cli_clean(tmp);
            free(tmp);
        } else {
            c = kw_cli_clean(s);
        }
        t->cells[t->nrows * (size_t)t->ncols + (size_t)i] = c;
    }
    t->nrows++;
}

kw_cli_table_t *kw_cli_table_new(int ncols, const char *const *headers)
{
    kw_cli_table_t *t = kw_cli_xcalloc(1, sizeof *t);

    t->ncols = headers ? ncols : 2;
    t->kv = headers == NULL;
    if (headers)
        out_add(t, headers, NULL);
    return t;
}

void kw_cli_table_row(kw_cli_table_t *t, const char *const *cells)
{
    out_add(t, cells, t->kv ? ":" : NULL);
}

void kw_cli_kv(kw_cli_table_t *t, const char *label, const char *fmt, ...)
{
    char *v;
    va_list ap;
    const char *cells[2];

    va_start(ap, fmt);
    if (vasprintf(&v, fmt, ap) < 0) {
        fputs("keyward: out of memory\n", stderr);
        exit(KW_CLI_EAPI);
    }
    va_end(ap);
    cells[0] = label;
    cells[1] = v;
    kw_cli_table_row(t, cells);
    free(v);
}

void kw_cli_table_print(const kw_cli_table_t *t, FILE *f)
{
    size_t *w = kw_cli_xcalloc((size_t)t->ncols, sizeof *w);

    for (size_t r = 0; r < t->nrows; r++)
        for (int c = 0; c < t->ncols; c++) {
            size_t cw = out_width(t->cells[r * (size_t)t->ncols + (size_t)c]);

            if (cw > w[c])
                w[c] = cw;
        }
    for (size_t r = 0; r < t->nrows; r++) {
        for (int c = 0; c < t->ncols; c++) {
            const char *s = t->cells[r * (size_t)t->ncols + (size_t)c];

            fputs(s, f);
            if (c + 1 < t->ncols)
                for (size_t pad = out_width(s); pad < w[c] + 2; pad++)
                    fputc(' ', f);
        }
        fputc('\n', f);
    }
    free(w);
}

void kw_cli_table_free(kw_cli_table_t *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->nrows * (size_t)t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    free(t);
}

void kw_cli_table_list(const json_t *items, int ncols, const char *const *headers,
                       void (*row)(kw_cli_table_t *t, const json_t *item))
{
    kw_cli_table_t *t = kw_cli_table_new(ncols, headers);

    for (size_t i = 0; i < json_array_size(items); i++)
        row(t, json_array_get(items, i));
    kw_cli_table_print(t, stdout);
    kw_cli_table_free(t);
}

/* ---- times and lists ---- */

void kw_cli_fmt_rel(int64_t t, char out[KW_CLI_REL_MAX])
{
    static const struct {
        int64_t secs;
        char unit;
    } units[] = {{86400, 'd'}, {3600, 'h'}, {60, 'm'}, {1, 's'}};
    int64_t d, a;
    size_t u = 0;
    char span[48];

    if (t == 0) {
        snprintf(out, KW_CLI_REL_MAX, "never");
        return;
    }
    d = t - kw_now();
    a = d < 0 ? -d : d;
    if (a == 0) {
        snprintf(out, KW_CLI_REL_MAX, "now");
        return;
    }
    while (a < units[u].secs)
        u++;
    if (u + 1 < sizeof units / sizeof units[0] && (a % units[u].secs) / units[u + 1].secs > 0)
        snprintf(span, sizeof span, "%lld%c %lld%c", (long long)(a / units[u].secs), units[u].unit,
                 (long long)((a % units[u].secs) / units[u + 1].secs), units[u + 1].unit);
    else
        snprintf(span, sizeof span, "%lld%c", (long long)(a / units[u].secs), units[u].unit);
    if (d > 0)
        snprintf(out, KW_CLI_REL_MAX, "in %s", span);
    else
        snprintf(out, KW_CLI_REL_MAX, "%s ago", span);
}

void kw_cli_fmt_when(const json_t *o, const char *key, const char *none, char *out, size_t n)
{
    const char *s = json_string_value(json_object_get(o, key));
    char rel[KW_CLI_REL_MAX];
    int64_t t = kw_cli_jtime(o, key);

    if (s == NULL)
        snprintf(out, n, "%s", none);
    else if (t == 0)
        snprintf(out, n, "%s", s);
    else {
        kw_cli_fmt_rel(t, rel);
        snprintf(out, n, "%s (%s)", s, rel);
    }
}

char *kw_cli_fmt_list(const json_t *arr, const char *none)
{
    char *out = NULL;
    size_t len = 0;
    FILE *f;
    size_t i;
    json_t *v;

    if (json_array_size(arr) == 0)
        return kw_cli_xstrdup(none);
    f = open_memstream(&out, &len);
    if (f == NULL)
        return kw_cli_xstrdup("?");
    json_array_foreach(arr, i, v)
    {
        if (json_is_string(v))
            fprintf(f, "%s%s", i ? ", " : "", json_string_value(v));
        else {
            char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

            fprintf(f, "%s%s", i ? ", " : "", s ? s : "?");
            free(s);
        }
    }
    if (fclose(f) != 0 || out == NULL) {
        free(out);
        return kw_cli_xstrdup("?");
    }
    return out;
}

/* "email ops@example.com, webhook https://..., log". Caller frees. */
static char *out_contacts(const json_t *arr)
{
    json_t *names = json_array(), *c;
    char *s;
    size_t i;

    json_array_foreach(arr, i, c)
    {
        const char *type = json_string_value(json_object_get(c, "type"));
        char *one;

        if (type && strcmp(type, "email") == 0)
            one = kw_cli_xasprintf("email %s", kw_cli_jstr(c, "to"));
        else if (type && strcmp(type, "webhook") == 0)
            one = kw_cli_xasprintf("webhook %s", kw_cli_jstr(c, "url"));
        else if (type)
            one = kw_cli_xstrdup(type);
        else
            one = json_dumps(c, JSON_COMPACT | JSON_ENCODE_ANY);
        json_array_append_new(names, json_string(one ? one : "?"));
        free(one);
    }
    s = kw_cli_fmt_list(names, "none");
    json_decref(names);
    return s;
}

/* ---- keys and credentials ---- */

static const char *out_yesno(const json_t *o, const char *key)
{
    return json_is_true(json_object_get(o, key)) ? "yes" : "no";
}

void kw_cli_print_key(const json_t *key)
{
    kw_cli_table_t *t = kw_cli_table_new(2, NULL);
    json_int_t slot = json_integer_value(json_object_get(key, "slot"));
    char when[128];

    kw_cli_kv(t, "key", "%s", kw_cli_jstr(key, "id"));
    kw_cli_kv(t, "credential", "%s", kw_cli_jstr(key, "credential_id"));
    kw_cli_kv(t, "slot", "%lld%s", (long long)slot,
              slot == 1   ? " (primary)"
              : slot == 2 ? " (secondary)"
                          : "");
    kw_cli_kv(t, "hint", "%s", kw_cli_jstr(key, "hint"));
    kw_cli_kv(t, "state", "%s", kw_cli_jstr(key, "state"));
    kw_cli_fmt_when(key, "created_at", "-", when, sizeof when);
    kw_cli_kv(t, "created", "%s", when);
    kw_cli_fmt_when(key, "expires_at", "never", when, sizeof when);
    kw_cli_kv(t, "expires", "%s", when);
    if (json_is_string(json_object_get(key, "revoked_at"))) {
        kw_cli_fmt_when(key, "revoked_at", "-", when, sizeof when);
        kw_cli_kv(t, "revoked", "%s", when);
        kw_cli_kv(t, "revoke reason", "%s", kw_cli_jstr(key, "revoke_reason"));
    }
    kw_cli_fmt_when(key, "last_used_at", "never", when, sizeof when);
    kw_cli_kv(t, "last used", "%s", when);
    kw_cli_kv(t, "uses", "%lld", (long long)json_integer_value(json_object_get(key, "use_count")));
    kw_cli_table_print(t, stdout);
    kw_cli_table_free(t);
}

static void out_keys_table_row(kw_cli_table_t *t, const json_t *k)
{
    char slot[24], exp[KW_CLI_REL_MAX], used[KW_CLI_REL_MAX], uses[24];
    const char *cells[7];

    snprintf(slot, sizeof slot, "%lld", (long long)json_integer_value(json_object_get(k, "slot")));
    kw_cli_fmt_rel(kw_cli_jtime(k, "expires_at"), exp);
    kw_cli_fmt_rel(kw_cli_jtime(k, "last_used_at"), used);
    if (!json_is_string(json_object_get(k, "last_used_at")))
        snprintf(used, sizeof used, "never");
    snprintf(uses, sizeof uses, "%lld",
             (long long)json_integer_value(json_object_get(k, "use_count")));
    cells[0] = kw_cli_jstr(k, "id");
    cells[1] = slot;
    cells[2] = kw_cli_jstr(k, "hint");
    cells[3] = kw_cli_jstr(k, "state");
    cells[4] = exp;
    cells[5] = used;
    cells[6] = uses;
    kw_cli_table_row(t, cells);
}

/* The keys of a credential, newest first as the server sends them. */
static void out_keys_table(const json_t *keys)
{
    static const char *const hdr[] = {"KEY",     "SLOT",      "HINT", "STATE",
                                      "EXPIRES", "LAST-USED", "USES"};
    kw_cli_table_list(keys, 7, hdr, out_keys_table_row);
}

void kw_cli_print_cred(const json_t *cred)
{
    kw_cli_table_t *t = kw_cli_table_new(2, NULL);
    json_t *keys = json_object_get(cred, "keys");
    char when[128], *s;

    kw_cli_kv(t, "credential", "%s", kw_cli_jstr(cred, "id"));
    kw_cli_kv(t, "name", "%s", kw_cli_jstr(cred, "name"));
    kw_cli_kv(t, "owner", "%s", kw_cli_jstr(cred, "owner"));
    s = kw_cli_fmt_list(json_object_get(cred, "scopes"), "none");
    kw_cli_kv(t, "scopes", "%s", s);
    free(s);
    s = kw_cli_fmt_list(json_object_get(cred, "allowed_cidrs"), "any");
    kw_cli_kv(t, "allowed cidrs", "%s", s);
    free(s);
    s = json_dumps(json_object_get(cred, "metadata"), JSON_COMPACT | JSON_ENCODE_ANY);
    kw_cli_kv(t, "metadata", "%s", s ? s : "{}");
    free(s);
    kw_cli_kv(t, "policy", "%s", kw_cli_jstr(cred, "policy"));
    kw_cli_kv(t, "prefix", "%s", kw_cli_jstr(cred, "prefix"));
    s = out_contacts(json_object_get(cred, "contacts"));
    kw_cli_kv(t, "contacts", "%s", s);
    free(s);
    kw_cli_kv(t, "disabled", "%s", out_yesno(cred, "disabled"));
    kw_cli_fmt_when(cred, "created_at", "-", when, sizeof when);
    kw_cli_kv(t, "created", "%s", when);
    if (json_object_get(cred, "updated_at")) {
        kw_cli_fmt_when(cred, "updated_at", "-", when, sizeof when);
        kw_cli_kv(t, "updated", "%s", when);
    }
    kw_cli_table_print(t, stdout);
    kw_cli_table_free(t);
    if (json_is_array(keys)) {
        putchar('\n');
        if (json_array_size(keys) == 0)
            puts("(no keys)");
        else
            out_keys_table(keys);
    }
}

void kw_cli_print_signing_secrets(const json_t *resp)
{
    const json_t *ss = json_object_get(resp, "signing_secrets");
    size_t i;
    const json_t *s;
    json_array_foreach(ss, i, s)
    {
        const char *url = json_string_value(json_object_get(s, "url"));
        const char *sec = json_string_value(json_object_get(s, "signing_secret"));
        if (url == NULL || sec == NULL)
            continue;
        kw_cli_say("\nwebhook signing secret for %s:\n  %s\n"
                   "  ^ shown only once: configure the receiver to verify webhook-signature "
                   "with it.\n",
                   url, sec);
    }
}

void kw_cli_print_secret(const json_t *resp)
{
    const char *secret = json_string_value(json_object_get(resp, "secret"));

    kw_cli_print_signing_secrets(resp);

    if (secret == NULL) {
        puts("\n(the server sent no secret)");
        return;
    }
    kw_cli_say("\nsecret: %s\n"
               "        ^ shown only once: store it now. keyward keeps only a digest and cannot "
               "show it again.\n",
               secret);
}
