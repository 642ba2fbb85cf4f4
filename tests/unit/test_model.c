/* test_model.c - the domain records' helpers: policy defaults, a credential's deep copy
 * (every owned string copied, nothing shared, nothing leaked when memory runs out) and a
 * key's state. */
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/model.h"
#include "t.h"

static void test_policy_defaults(void)
{
    kw_policy_t p;
    kw_policy_defaults(&p, NULL);
    T_EQ_STR(p.name, "default");
    T_EQ_INT(p.default_lifetime, 365LL * 86400);
    T_EQ_INT(p.nthresholds, 4);
    T_CHECK(p.thresholds[0] > p.thresholds[3]);
    kw_policy_defaults(&p, "short");
    T_EQ_STR(p.name, "short");
}

static void test_cred_copy(void)
{
    kw_cred_t src = {0}, dst;
    snprintf(src.id, sizeof(src.id), "cred_x");
    src.name = "billing";
    src.owner = NULL;
    src.scopes_json = "[\"orders:read\"]";
    src.cidrs_json = "[]";
    src.metadata_json = "{\"team\":\"pay\"}";
    src.contacts_json = "[]";
    src.disabled = 1;
    /* out of memory (t.h, T_OOM): KW_ENOMEM, nothing to free, dst untouched */
    T_REQUIRE(kw_cred_copy(&dst, &src) == 0);
    T_EQ_STR(dst.id, "cred_x");
    T_EQ_STR(dst.name, "billing");
    T_CHECK(dst.name != src.name);
    T_CHECK(dst.owner == NULL);
    T_EQ_STR(dst.scopes_json, src.scopes_json);
    T_CHECK(dst.scopes_json != src.scopes_json);
    T_EQ_STR(dst.metadata_json, src.metadata_json);
    T_EQ_INT(dst.disabled, 1);
    kw_cred_clear(&dst);
    T_CHECK(dst.name == NULL);
    kw_cred_clear(NULL);
    kw_cred_array_free(NULL, 3);
}

static void test_key_state(void)
{
    kw_keyrec_t k = {0};
    T_EQ_INT(kw_keyrec_state(&k, 100), KW_KEY_ACTIVE);
    k.expires_at = 100;
    T_EQ_INT(kw_keyrec_state(&k, 99), KW_KEY_ACTIVE);
    T_EQ_INT(kw_keyrec_state(&k, 100), KW_KEY_EXPIRED);
    k.revoked_at = 50;
    T_EQ_INT(kw_keyrec_state(&k, 10), KW_KEY_REVOKED);
}

int main(void)
{
    T_RUN(test_policy_defaults);
    T_RUN(test_cred_copy);
    T_RUN(test_key_state);
    T_DONE();
}
