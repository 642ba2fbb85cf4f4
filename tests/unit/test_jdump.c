/* test_jdump.c - kw_json_dump gives the same bytes as json_dumps(JSON_COMPACT): nested
 * containers, key order, escapes, non-ASCII text, integers, reals, and the refusals. */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/jdump.h"
#include "t.h"

/* kw_json_dump(j) equals jansson's compact dump of j, kw_json_dump_sorted(j) its compact
 * dump with sorted keys. */
static void same(const char *name, json_t *j)
{
    t_case = name;
    for (int sorted = 0; sorted < 2; sorted++) {
        char *a = sorted ? kw_json_dump_sorted(j) : kw_json_dump(j);
        char *b = json_dumps(j, JSON_COMPACT | (sorted ? JSON_SORT_KEYS : 0));
        T_CHECK(a != NULL && b != NULL);
        if (a && b)
            T_EQ_STR(a, b);
        free(a);
        free(b);
    }
    json_decref(j);
}

static void test_same(void)
{
    same("empty object", json_object());
    same("empty array", json_array());
    same("flat", json_pack("{s:s, s:i, s:b, s:b, s:n, s:I}", "name", "bench-1", "n", 42, "t", 1,
                           "f", 0, "none", "big", (json_int_t)-9007199254740993LL));
    same("nested and ordered",
         json_pack("{s:s, s:{s:[s, s, {}], s:[]}, s:[i, [i, [i]]], s:s}", "z", "first", "a",
                   "scopes", "orders:read", "b:w", "empty", "deep", 1, 2, 3, "m", "last"));
    same("escapes",
         json_pack("{s:s}", "k\"ey\\", "quote \" backslash \\ slash / \b\f\n\r\t \x01\x1f\x7f"));
    same("utf-8", json_pack("{s:s, s:s}", "caf\xc3\xa9", "Authentication Failed \xe2\x80\x93 x",
                            "emoji", "\xf0\x9f\x94\x91 key"));
    {
        json_t *j = json_object();
        json_object_set_new(j, "nul", json_stringn("a\0b", 3));
        same("embedded NUL", j);
    }
    {
        json_t *j = json_object(); /* byte order; a prefix before its extensions */
        const char *keys[] = {"b",      "a",    "ab",     "a\xc3\xa9",  "A",    "_",
                              "a b",    "",     "z",      "aa",         "slot", "name",
                              "key_id", "hint", "policy", "expires_at", "b2",   "b1",
                              "c",      "d",    "e",      "f"}; /* more than 16 members */
        for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
            json_object_set_new(j, keys[i], json_pack("{s:i, s:i}", "y", (int)i, "x", 1));
        json_object_setn_new(j, "a\0b", 3, json_true()); /* after "a", before "aa" */
        same("sorted keys", j);
        same("audit detail",
             json_pack("{s:s, s:s, s:s, s:s, s:i, s:n}", "name", "bench-1", "policy", "default",
                       "key_id", "key_x", "hint", "kw_ab…", "slot", 1, "expires_at"));
    }
    same("reals", json_pack("[f, f, f, f]", 1.0, 0.1, -2.5e-300, 123456789.125));
    {
        json_t *j = json_array();
        for (int i = 0; i < 1000; i++)
            json_array_append_new(j, json_pack("{s:i, s:s}", "i", i, "s", "xxxxxxxxxxxxxxxx"));
        same("large", j);
    }
}

static void test_refusals(void)
{
    T_CHECK(kw_json_dump(NULL) == NULL);
    json_t *s = json_string("bare");
    T_CHECK(kw_json_dump(s) == NULL); /* json_dumps refuses a bare scalar too */
    T_CHECK(json_dumps(s, JSON_COMPACT) == NULL);
    json_decref(s);
    json_t *bad = json_object();
    json_object_set_new(bad, "k", json_stringn_nocheck("\xc3(", 2)); /* invalid UTF-8 */
    T_CHECK(kw_json_dump(bad) == NULL);
    T_CHECK(json_dumps(bad, JSON_COMPACT) == NULL);
    json_decref(bad);
}

int main(void)
{
    T_RUN(test_same);
    T_RUN(test_refusals);
    T_DONE();
}
