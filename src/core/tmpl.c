/* tmpl.c - the message template language of tmpl.h: a parser that checks every tag and
 * field name up front (errors carry FILE:LINE) and a renderer that only substitutes named
 * values, escaped for their place. Must not: evaluate anything, read files, or let a value
 * add a line to a header. */
#include "tmpl.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

enum node_kind { N_TEXT, N_VAR, N_IF, N_IFNOT, N_END };

typedef struct node {
    enum node_kind kind;
    size_t off, len; /* N_TEXT: bytes of t->text */
    size_t jump;     /* N_IF / N_IFNOT: index of the matching N_END */
    unsigned line;
    char name[KW_TMPL_NAME_MAX + 1];
} node_t;

struct kw_tmpl {
    char *text;
    size_t len;
    node_t *nodes;
    size_t n, cap;
};

void kw_tmpl_free(kw_tmpl_t *t)
{
    if (t == NULL)
        return;
    free(t->text);
    free(t->nodes);
    free(t);
}

static node_t *push(kw_tmpl_t *t)
{
    if (t->n == t->cap) {
        size_t nc = t->cap ? t->cap * 2 : 16;
        node_t *nn = realloc(t->nodes, nc * sizeof(*nn));
        if (nn == NULL)
            return NULL;
        t->nodes = nn;
        t->cap = nc;
    }
    node_t *nd = &t->nodes[t->n++];
    memset(nd, 0, sizeof(*nd));
    return nd;
}

static int add_text(kw_tmpl_t *t, size_t off, size_t len)
{
    if (len == 0)
        return 0;
    node_t *nd = push(t);
    if (nd == NULL)
        return KW_ENOMEM;
    nd->kind = N_TEXT;
    nd->off = off;
    nd->len = len;
    return 0;
}

static unsigned lines_in(const char *s, size_t n)
{
    unsigned k = 0;
    for (size_t i = 0; i < n; i++)
        k += s[i] == '\n';
    return k;
}

/* Length of the valid UTF-8 prefix of s[0..n). */
static size_t utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i], need, min;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf)
            need = 1, min = 0x80;
        else if (c >= 0xe0 && c <= 0xef)
            need = 2, min = 0x800;
        else if (c >= 0xf0 && c <= 0xf4)
            need = 3, min = 0x10000;
        else
            return i;
        if (i + need >= n)
            return i;
        uint32_t cp = c & (0x3f >> need);
        for (unsigned k = 1; k <= need; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return i;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return i;
        i += need + 1;
    }
    return n;
}

static int name_ok(const char *s, size_t n)
{
    if (n == 0 || n > KW_TMPL_NAME_MAX)
        return 0;
    int at_start = 1;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '.') {
            if (at_start)
                return 0;
            at_start = 1;
            continue;
        }
        if (at_start ? !(c >= 'a' && c <= 'z')
                     : !((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            return 0;
        at_start = 0;
    }
    return !at_start;
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

int kw_tmpl_parse(const char *text, size_t len, const char *origin, unsigned first_line,
                  kw_tmpl_known_fn known, void *ud, kw_tmpl_t **out, kw_err_t *err)
{
    kw_tmpl_t *t = NULL;
    size_t open[KW_TMPL_DEPTH_MAX];
    size_t depth = 0, pos = 0;
    unsigned line = first_line;
    int rc = 0;
    const char *org = origin ? origin : "template";
    if (len > KW_TMPL_TEXT_MAX)
        return kw_err_set(err, KW_EINVAL, NULL, "%s: template larger than %d bytes", org,
                          KW_TMPL_TEXT_MAX);
    const char *nul = memchr(text, '\0', len);
    if (nul)
        return kw_err_set(err, KW_EINVAL, NULL, "%s:%u: NUL byte in template", org,
                          first_line + lines_in(text, (size_t)(nul - text)));
    size_t ok = utf8_valid((const unsigned char *)text, len);
    if (ok < len)
        return kw_err_set(err, KW_EINVAL, NULL, "%s:%u: not valid UTF-8", org,
                          first_line + lines_in(text, ok));
    if ((t = calloc(1, sizeof(*t))) == NULL || (t->text = malloc(len + 1)) == NULL) {
        rc = KW_ENOMEM;
        goto out;
    }
    memcpy(t->text, text, len);
    t->text[len] = '\0';
    t->len = len;
    const char *s = t->text;

    while (pos < len) {
        const char *p = strstr(s + pos, "{{");
        if (p == NULL) {
            if ((rc = add_text(t, pos, len - pos)) != 0)
                goto out;
            break;
        }
        size_t tag = (size_t)(p - s);
        unsigned tag_line = line + lines_in(s + pos, tag - pos);
        const char *q = strstr(p + 2, "}}");
        const char *nl = memchr(p + 2, '\n', len - (tag + 2));
        if (q == NULL || (nl && nl < q)) {
            rc = kw_err_set(err, KW_EINVAL, NULL, "%s:%u: '{{' without '}}' on the same line", org,
                            tag_line);
            goto out;
        }
        size_t end = (size_t)(q - s) + 2; /* just past "}}" */
        /* the tag's inside, blanks trimmed */
        const char *in = p + 2, *ine = q;
        while (in < ine && is_blank(*in))
            in++;
        while (ine > in && is_blank(ine[-1]))
            ine--;
        if (in == ine) {
            rc = kw_err_set(err, KW_EINVAL, NULL, "%s:%u: empty tag '{{}}'", org, tag_line);
            goto out;
        }
        enum node_kind kind = N_VAR;
        int comment = 0, literal = 0;
        switch (*in) {
        case '!':
            comment = 1;
            break;
        case '#':
            kind = N_IF;
            in++;
            break;
        case '^':
            kind = N_IFNOT;
            in++;
            break;
        case '/':
            kind = N_END;
            in++;
            break;
        case '"':
            literal = 1;
            break;
        default:
            break;
        }
        if (literal) {
            if (ine - in < 2 || ine[-1] != '"' || memchr(in + 1, '"', (size_t)(ine - in - 2))) {
                rc = kw_err_set(err, KW_EINVAL, NULL,
                                "%s:%u: a literal is one \"quoted string\" without quotes in it",
                                org, tag_line);
                goto out;
            }
            if ((rc = add_text(t, pos, tag - pos)) != 0 ||
                (rc = add_text(t, (size_t)(in + 1 - s), (size_t)(ine - in - 2))) != 0)
                goto out;
            line = tag_line;
            pos = end;
            continue;
        }
        char name[KW_TMPL_NAME_MAX + 1] = "";
        if (!comment) {
            while (in < ine && is_blank(*in))
                in++;
            size_t nlen = (size_t)(ine - in);
            if (!name_ok(in, nlen)) {
                rc = kw_err_set(err, KW_EINVAL, NULL,
                                "%s:%u: bad field name '%.*s' (want words of a-z, 0-9, _ "
                                "joined by '.', like credential.name)",
                                org, tag_line, (int)(nlen > 40 ? 40 : nlen), in);
                goto out;
            }
            memcpy(name, in, nlen);
            name[nlen] = '\0';
            if (kind != N_END && known && !known(ud, name)) {
                rc = kw_err_set(err, KW_EINVAL, NULL, "%s:%u: unknown field '%s'", org, tag_line,
                                name);
                goto out;
            }
        }
        /* A section or comment tag alone on its line takes the whole line with it. */
        size_t before = tag, after = end;
        if (kind != N_VAR || comment) {
            size_t ls = tag;
            while (ls > 0 && s[ls - 1] != '\n' && is_blank(s[ls - 1]))
                ls--;
            size_t le = end;
            while (le < len && is_blank(s[le]))
                le++;
            if ((ls == 0 || s[ls - 1] == '\n') && ls >= pos && (le == len || s[le] == '\n')) {
                before = ls;
                after = le < len ? le + 1 : le;
            }
        }
        if ((rc = add_text(t, pos, before - pos)) != 0)
            goto out;
        if (!comment) {
            if (kind == N_END) {
                if (depth == 0) {
                    rc = kw_err_set(err, KW_EINVAL, NULL, "%s:%u: '{{/%s}}' closes no section", org,
                                    tag_line, name);
                    goto out;
                }
                node_t *op = &t->nodes[open[depth - 1]];
                if (strcmp(op->name, name) != 0) {
                    rc = kw_err_set(err, KW_EINVAL, NULL,
                                    "%s:%u: '{{/%s}}' closes the section '%s' opened on line %u",
                                    org, tag_line, name, op->name, op->line);
                    goto out;
                }
                op->jump = t->n;
                depth--;
            } else if (kind != N_VAR && depth == KW_TMPL_DEPTH_MAX) {
                rc = kw_err_set(err, KW_EINVAL, NULL, "%s:%u: sections nested deeper than %d", org,
                                tag_line, KW_TMPL_DEPTH_MAX);
                goto out;
            }
            node_t *nd = push(t);
            if (nd == NULL) {
                rc = KW_ENOMEM;
                goto out;
            }
            nd->kind = kind;
            nd->line = tag_line;
            memcpy(nd->name, name, sizeof(name));
            if (kind == N_IF || kind == N_IFNOT)
                open[depth++] = t->n - 1;
        }
        line = tag_line + lines_in(s + tag, after - tag);
        pos = after;
    }
    if (depth) {
        node_t *op = &t->nodes[open[depth - 1]];
        rc = kw_err_set(err, KW_EINVAL, NULL, "%s:%u: section '%s' is never closed ('{{/%s}}')",
                        org, op->line, op->name, op->name);
        goto out;
    }
    *out = t;
    t = NULL;
out:
    if (rc == KW_ENOMEM)
        kw_err_set(err, KW_ENOMEM, NULL, "out of memory");
    kw_tmpl_free(t);
    return rc;
}

typedef struct buf {
    kw_buf_t t;
    int over; /* KW_TMPL_OUT_MAX reached */
} buf_t;

static int put(buf_t *b, const char *s, size_t n)
{
    if (b->t.n + n + 1 > KW_TMPL_OUT_MAX) {
        b->over = 1;
        return -1;
    }
    kw_buf_put(&b->t, s, n);
    return b->t.oom ? -1 : 0;
}

static int put_value(buf_t *b, const char *v, kw_tmpl_esc_t esc)
{
    for (const char *s = v; *s;) {
        /* copy the longest run that needs no escaping at once */
        size_t run = 0;
        while (s[run]) {
            unsigned char c = (unsigned char)s[run];
            if (c < 0x20 || c == 0x7f)
                break;
            if (esc == KW_TMPL_HTML && strchr("&<>\"'", c))
                break;
            run++;
        }
        if (run && put(b, s, run))
            return -1;
        s += run;
        if (*s == '\0')
            break;
        unsigned char c = (unsigned char)*s++;
        const char *rep = NULL;
        if (esc == KW_TMPL_HEADER)
            rep = " ";
        else if (c == '\n' || c == '\t')
            rep = c == '\n' ? "\n" : "\t";
        else if (esc == KW_TMPL_HTML)
            rep = c == '&'    ? "&amp;"
                  : c == '<'  ? "&lt;"
                  : c == '>'  ? "&gt;"
                  : c == '"'  ? "&quot;"
                  : c == '\'' ? "&#39;"
                              : NULL;
        if (rep && put(b, rep, strlen(rep)))
            return -1;
    }
    return 0;
}

int kw_tmpl_render(const kw_tmpl_t *t, kw_tmpl_esc_t esc, kw_tmpl_value_fn value, void *ud,
                   char **out, size_t *outlen, kw_err_t *err)
{
    buf_t b = {0};
    int rc = 0;
    if (put(&b, "", 0)) {
        rc = KW_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < t->n; i++) {
        const node_t *nd = &t->nodes[i];
        const char *v;
        switch (nd->kind) {
        case N_TEXT:
            if (put(&b, t->text + nd->off, nd->len))
                rc = b.over ? KW_ETOOBIG : KW_ENOMEM;
            break;
        case N_VAR:
            v = value ? value(ud, nd->name) : NULL;
            if (v && put_value(&b, v, esc))
                rc = b.over ? KW_ETOOBIG : KW_ENOMEM;
            break;
        case N_IF:
        case N_IFNOT:
            v = value ? value(ud, nd->name) : NULL;
            if ((v && *v) != (nd->kind == N_IF))
                i = nd->jump; /* the loop's i++ steps past the N_END */
            break;
        case N_END:
            break;
        }
        if (rc)
            goto out;
    }
    *out = b.t.p;
    if (outlen)
        *outlen = b.t.n;
    b.t.p = NULL;
out:
    if (rc == KW_ETOOBIG)
        kw_err_set(err, rc, NULL, "rendered template larger than %d bytes", KW_TMPL_OUT_MAX);
    else if (rc)
        kw_err_set(err, rc, NULL, "out of memory");
    free(b.t.p);
    return rc;
}

void kw_tmpl_names(const kw_tmpl_t *t, void (*fn)(void *ud, const char *name), void *ud)
{
    for (size_t i = 0; i < t->n; i++) {
        const node_t *nd = &t->nodes[i];
        if (nd->kind == N_TEXT || nd->kind == N_END)
            continue;
        size_t j = 0;
        for (; j < i; j++)
            if (t->nodes[j].kind != N_TEXT && t->nodes[j].kind != N_END &&
                strcmp(t->nodes[j].name, nd->name) == 0)
                break;
        if (j == i)
            fn(ud, nd->name);
    }
}
