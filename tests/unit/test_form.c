/* test_form.c - application/x-www-form-urlencoded parsing (core/form.h): decoding, the
 * strict refusals (bad escapes, control bytes, repeated names, too many pairs) and RFC 6749
 * §3.1's empty value = absent. */
#include <string.h>

#include "core/form.h"
#include "t.h"

static int parse(const char *body, kw_form_t *f)
{
    kw_err_t e = {0};
    return kw_form_parse(body, strlen(body), f, &e);
}

static void test_good(void)
{
    kw_form_t f;
    T_EQ_INT(parse("grant_type=client_credentials&scope=a+b%20c&client_id=cred_x", &f), 0);
    T_EQ_INT((int)f.n, 3);
    T_EQ_STR(kw_form_get(&f, "grant_type"), "client_credentials");
    T_EQ_STR(kw_form_get(&f, "scope"), "a b c");
    T_CHECK(kw_form_get(&f, "nope") == NULL);
    kw_form_free(&f);
    T_EQ_INT(parse("a=&b&&c=%2B%3d", &f), 0);
    T_CHECK(kw_form_get(&f, "a") == NULL); /* empty = absent */
    T_CHECK(kw_form_get(&f, "b") == NULL);
    T_EQ_STR(kw_form_get(&f, "c"), "+=");
    kw_form_free(&f);
    T_EQ_INT(parse("", &f), 0);
    T_EQ_INT((int)f.n, 0);
    kw_form_free(&f);
    T_EQ_INT(parse("x=%C3%A9", &f), 0); /* UTF-8 passes */
    T_EQ_STR(kw_form_get(&f, "x"), "\xc3\xa9");
    kw_form_free(&f);
}

static void test_bad(void)
{
    kw_form_t f;
    const char *bad[] = {"a=1&a=2", "a=%", "a=%4", "a=%zz",  "a=%00",
                         "a=%0a",   "=1",  "%=1",  "a%0d=1", "a=b\x01"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        T_EQ_INT(parse(bad[i], &f), KW_EINVAL);
        kw_form_free(&f);
    }
    char many[400] = "";
    for (int i = 0; i <= KW_FORM_MAX; i++)
        snprintf(many + strlen(many), sizeof(many) - strlen(many), "p%d=1&", i);
    T_EQ_INT(parse(many, &f), KW_EINVAL);
    kw_form_free(&f);
    char out[16];
    T_EQ_INT((int)kw_form_decode("a+b", 3, 0, out), 3);
    T_EQ_STR(out, "a+b");
    T_EQ_INT((int)kw_form_decode("a+b", 3, 1, out), 3);
    T_EQ_STR(out, "a b");
}

int main(void)
{
    T_RUN(test_good);
    T_RUN(test_bad);
    T_DONE();
}
