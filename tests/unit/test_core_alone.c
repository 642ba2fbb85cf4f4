/* test_core_alone.c - the link test of libkwcore.a (Makefile: it is linked against the core
 * alone, with libcrypto and jansson but no SQLite, libpq, app or server code). The cases
 * touch the pure modules end to end: a key generated, checked and verified from an index;
 * and the store URL's scheme, read without a backend. */
#include <string.h>

#include "core/cidr.h"
#include "core/duration.h"
#include "core/index.h"
#include "core/key.h"
#include "core/util.h"
#include "store/store.h"
#include "t.h"

static void test_key_and_index(void)
{
    char key[KW_KEY_MAX + 1];
    T_EQ_INT(kw_key_generate("kwtest", key), 0);
    T_EQ_INT(kw_key_check(key, strlen(key), NULL), 0);

    kw_index_t *ix = kw_index_new(4);
    T_CHECK(ix != NULL);
    if (ix == NULL)
        return;
    kw_verify_res_t r;
    kw_verify_req_t q = {.key = key, .key_len = strlen(key), .now = kw_now()};
    kw_index_verify(ix, &q, &r);
    T_CHECK(r.code != KW_V_VALID); /* an empty index knows no key */
    kw_verify_res_release(&r);
    kw_index_free(ix);
    kw_wipe(key, sizeof(key));
}

static void test_text(void)
{
    int64_t secs = 0;
    T_EQ_INT(kw_duration_parse("90d", 3, &secs), 0);
    T_EQ_INT(secs, 90 * 86400);
    kw_cidr_t c;
    kw_ip_t ip;
    T_EQ_INT(kw_cidr_parse("10.0.0.0/8", 10, &c), 0);
    T_EQ_INT(kw_ip_parse("10.1.2.3", 8, &ip), 0);
    T_CHECK(kw_cidr_match(&c, &ip));
    char t[KW_TIME_STR_MAX];
    kw_time_format(0, t);
    T_EQ_STR(t, "1970-01-01T00:00:00Z");
}

/* The store URL's one parser is inline in store.h: it needs no backend linked. */
static void test_store_scheme(void)
{
    const char *rest = NULL;
    T_EQ_INT(kw_store_scheme("sqlite:/var/lib/k.db", &rest), KW_STORE_SQLITE);
    T_EQ_STR(rest, "/var/lib/k.db");
    T_EQ_INT(kw_store_scheme("sqlite:", &rest), KW_STORE_SQLITE);
    T_EQ_STR(rest, "");
    T_EQ_INT(kw_store_scheme("postgresql://db/k", &rest), KW_STORE_POSTGRESQL);
    T_EQ_STR(rest, "postgresql://db/k");
    T_EQ_INT(kw_store_scheme("postgres://db/k", NULL), KW_STORE_POSTGRESQL);
    T_EQ_INT(kw_store_scheme("mysql://db/k", &rest), KW_STORE_UNKNOWN);
    T_CHECK(rest == NULL);
    T_EQ_INT(kw_store_scheme("SQLITE:x", NULL), KW_STORE_UNKNOWN);
}

int main(void)
{
    T_RUN(test_key_and_index);
    T_RUN(test_text);
    T_RUN(test_store_scheme);
    T_DONE();
}
