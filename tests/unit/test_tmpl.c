/* test_tmpl.c - the message template language (src/core/tmpl.c): substitution, sections,
 * standalone tag lines, escaping per destination, and parse errors with FILE:LINE. */
#include <stdlib.h>
#include <string.h>

#include "core/tmpl.h"
#include "t.h"

static const char *const KNOWN[] = {"credential.name", "key.hint", "note", "link.console",
                                    "empty",           "x",        NULL};

static int known(void *ud, const char *name)
{
    (void)ud;
    for (size_t i = 0; KNOWN[i]; i++)
        if (strcmp(KNOWN[i], name) == 0)
            return 1;
    return 0;
}

static const char *value(void *ud, const char *name)
{
    const char *const *kv = ud;
    for (size_t i = 0; kv[i]; i += 2)
        if (strcmp(kv[i], name) == 0)
            return kv[i + 1];
    return NULL;
}

/* Render src with the key/value list; NULL on any error (err copied to last_err). */
static kw_err_t last_err;
static char *render(const char *src, kw_tmpl_esc_t esc, const char *const *kv)
{
    kw_tmpl_t *t = NULL;
    char *out = NULL;
    memset(&last_err, 0, sizeof(last_err));
    if (kw_tmpl_parse(src, strlen(src), "t.txt", 1, known, NULL, &t, &last_err) != 0)
        return NULL;
    if (kw_tmpl_render(t, esc, value, (void *)kv, &out, NULL, &last_err) != 0)
        out = NULL;
    kw_tmpl_free(t);
    return out;
}

static void check_render(const char *src, kw_tmpl_esc_t esc, const char *const *kv,
                         const char *want)
{
    char *got = render(src, esc, kv);
    T_EQ_STR(got, want);
    if (got == NULL)
        printf("#   error: %s\n", last_err.msg);
    free(got);
}

static void check_error(const char *src, const char *want_msg)
{
    kw_tmpl_t *t = NULL;
    kw_err_t e = {0};
    int rc = kw_tmpl_parse(src, strlen(src), "dir/key.expiring.txt", 3, known, NULL, &t, &e);
    T_EQ_INT(rc, KW_EINVAL);
    T_CHECK(t == NULL);
    T_CHECK(strstr(e.msg, want_msg) != NULL);
    if (strstr(e.msg, want_msg) == NULL)
        printf("#   got: %s\n   want: %s\n", e.msg, want_msg);
    kw_tmpl_free(t);
}

static void test_substitution(void)
{
    const char *kv[] = {"credential.name", "café", "key.hint", "kw_ab…cd", NULL};
    check_render("Key {{key.hint}} of {{ credential.name }}.", KW_TMPL_TEXT, kv,
                 "Key kw_ab…cd of café.");
    check_render("no tags at all\n", KW_TMPL_TEXT, kv, "no tags at all\n");
    check_render("", KW_TMPL_TEXT, kv, "");
    check_render("[{{empty}}]", KW_TMPL_TEXT, kv, "[]");
    check_render("a {{\"{{\"}}b}} c", KW_TMPL_TEXT, kv, "a {{b}} c");
    check_render("x{{! a comment }}y", KW_TMPL_TEXT, kv, "xy");
}

static void test_sections(void)
{
    const char *with[] = {"note", "Looks fine", NULL};
    const char *without[] = {"note", "", NULL};
    const char *src = "Decided.\n"
                      "{{#note}}\n"
                      "Note: {{note}}\n"
                      "{{/note}}\n"
                      "{{^note}}\n"
                      "  (no note)\n"
                      "{{/note}}\n"
                      "Bye.\n";
    check_render(src, KW_TMPL_TEXT, with, "Decided.\nNote: Looks fine\nBye.\n");
    check_render(src, KW_TMPL_TEXT, without, "Decided.\n  (no note)\nBye.\n");
    /* inline sections keep their surroundings */
    check_render("a{{#note}}[{{note}}]{{/note}}b", KW_TMPL_TEXT, with, "a[Looks fine]b");
    check_render("a{{#note}}[{{note}}]{{/note}}b", KW_TMPL_TEXT, without, "ab");
    /* nested */
    const char *both[] = {"note", "n", "x", "y", NULL};
    check_render("{{#note}}1{{#x}}2{{/x}}{{^x}}3{{/x}}{{/note}}", KW_TMPL_TEXT, both, "12");
    check_render("{{#note}}1{{#x}}2{{/x}}{{^x}}3{{/x}}{{/note}}", KW_TMPL_TEXT, with, "13");
    /* a standalone comment line disappears, blanks and CR included */
    check_render("a\n  {{! c }}  \r\nb\n", KW_TMPL_TEXT, with, "a\nb\n");
    /* last line without a newline */
    check_render("a\n{{#note}}\nb\n{{/note}}", KW_TMPL_TEXT, with, "a\nb\n");
}

static void test_escaping(void)
{
    const char *kv[] = {"note", "line1\r\nline2\x01<b>&\"'", NULL};
    check_render("{{note}}", KW_TMPL_TEXT, kv, "line1\nline2<b>&\"'");
    check_render("Subject: {{note}}", KW_TMPL_HEADER, kv, "Subject: line1  line2 <b>&\"'");
    check_render("<p>{{note}}</p>", KW_TMPL_HTML, kv,
                 "<p>line1\nline2&lt;b&gt;&amp;&quot;&#39;</p>");
    /* the template's own text is not escaped: the operator wrote it */
    check_render("<b>{{x}}</b>", KW_TMPL_HTML, kv, "<b></b>");
}

static void test_errors(void)
{
    check_error("Hi {{credentail.name}}",
                "dir/key.expiring.txt:3: unknown field 'credentail.name'");
    check_error("a\nb\nHi {{key.hint", "dir/key.expiring.txt:5: '{{' without '}}'");
    check_error("a {{key.hint\n}}", ":3: '{{' without '}}' on the same line");
    check_error("{{}}", ":3: empty tag");
    check_error("{{Key.Hint}}", ":3: bad field name 'Key.Hint'");
    check_error("{{a..b}}", "bad field name");
    check_error("{{a.}}", "bad field name");
    check_error("{{1x}}", "bad field name");
    check_error("{{x y}}", "bad field name");
    check_error("\n{{#note}}\nx\n", ":4: section 'note' is never closed");
    check_error("{{/note}}", ":3: '{{/note}}' closes no section");
    check_error("{{#note}}\n{{#x}}\n{{/note}}\n{{/x}}\n",
                ":5: '{{/note}}' closes the section 'x' opened on line 4");
    check_error("{{\"a\"b\"}}", "literal");
    check_error("{{\"}}", "literal");
    check_error("ok\n\xff\n", ":4: not valid UTF-8");
    check_error("ok\xc3\x28", ":3: not valid UTF-8");
    check_error("\xed\xa0\x80", "not valid UTF-8"); /* a surrogate */
    check_error("\xc0\xaf", "not valid UTF-8");     /* overlong */
    const char nul[] = "ok\n\0x";
    kw_tmpl_t *t = NULL;
    kw_err_t e = {0};
    T_EQ_INT(kw_tmpl_parse(nul, sizeof(nul) - 1, "f", 1, known, NULL, &t, &e), KW_EINVAL);
    T_CHECK(strstr(e.msg, "f:2: NUL byte") != NULL);
    /* too deep */
    char deep[512] = "";
    for (int i = 0; i <= KW_TMPL_DEPTH_MAX; i++)
        strcat(deep, "{{#x}}");
    check_error(deep, "nested deeper than");
    /* too big */
    size_t big = KW_TMPL_TEXT_MAX + 1;
    char *b = malloc(big);
    memset(b, 'a', big);
    T_EQ_INT(kw_tmpl_parse(b, big, "f", 1, known, NULL, &t, &e), KW_EINVAL);
    free(b);
    /* known == NULL accepts any well-formed name */
    T_EQ_INT(kw_tmpl_parse("{{any.thing}}", 13, "f", 1, NULL, NULL, &t, &e), 0);
    kw_tmpl_free(t);
}

static void test_output_cap(void)
{
    /* a value repeated until the rendering passes the cap: KW_ETOOBIG, not a crash */
    size_t vlen = 64 * 1024;
    char *v = malloc(vlen + 1);
    memset(v, 'v', vlen);
    v[vlen] = '\0';
    const char *kv[] = {"x", v, NULL};
    char src[256] = "";
    for (int i = 0; i < 9; i++)
        strcat(src, "{{x}}");
    kw_tmpl_t *t = NULL;
    kw_err_t e = {0};
    char *out = NULL;
    T_EQ_INT(kw_tmpl_parse(src, strlen(src), "f", 1, known, NULL, &t, &e), 0);
    if (t == NULL) { /* out of memory (t.h, T_OOM) */
        free(v);
        return;
    }
    T_EQ_INT(kw_tmpl_render(t, KW_TMPL_TEXT, value, (void *)kv, &out, NULL, &e), KW_ETOOBIG);
    T_CHECK(out == NULL);
    kw_tmpl_free(t);
    free(v);
}

static int nnames;
static void count_name(void *ud, const char *name)
{
    (void)ud;
    (void)name;
    nnames++;
}

static void test_names(void)
{
    kw_tmpl_t *t = NULL;
    kw_err_t e = {0};
    const char *src = "{{x}}{{#note}}{{x}}{{note}}{{/note}}{{key.hint}}";
    T_EQ_INT(kw_tmpl_parse(src, strlen(src), "f", 1, known, NULL, &t, &e), 0);
    if (t == NULL) /* out of memory (t.h, T_OOM) */
        return;
    nnames = 0;
    kw_tmpl_names(t, count_name, NULL);
    T_EQ_INT(nnames, 3);
    kw_tmpl_free(t);
}

int main(void)
{
    T_RUN(test_substitution);
    T_RUN(test_sections);
    T_RUN(test_escaping);
    T_RUN(test_errors);
    T_RUN(test_output_cap);
    T_RUN(test_names);
    T_DONE();
}
