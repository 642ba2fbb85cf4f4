/* test_token.c - OAuth2 access tokens (core/token.h): the text format round trip, MAC and
 * shape failures, the revocation set, and verification through the key's index entry in
 * SPEC §13's order (the key's state first, then the token's own revocation and expiry). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/index.h"
#include "core/key.h"
#include "core/token.h"
#include "t.h"

static const uint8_t SECRET[32] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16,
                                   17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

static void test_format(void)
{
    kw_tokens_t *t = NULL, *other = NULL;
    uint8_t d[KW_DIGEST_LEN], id[KW_TOKEN_ID_LEN], sec2[32];
    char tok[KW_TOKEN_MAX + 1];
    kw_token_claims_t c;
    for (int i = 0; i < 32; i++)
        d[i] = (uint8_t)(i * 7);
    T_EQ_INT(kw_tokens_new(SECRET, &t), 0);
    if (t == NULL) /* out of memory (t.h, T_OOM) */
        return;
    T_EQ_INT(kw_token_issue(t, "kw", d, NULL, 1000, 4600, tok, sizeof(tok), id), 0);
    T_CHECK(strncmp(tok, "kw_at_", 6) == 0);
    T_EQ_INT((int)(strlen(tok) - 6) % 11, 0);
    T_CHECK(kw_token_looks(tok, strlen(tok)));
    /* a key never looks like a token */
    char key[KW_KEY_MAX + 1];
    kw_key_generate("at", key);
    T_CHECK(!kw_token_looks(key, strlen(key)));
    T_CHECK(kw_key_check(tok, strlen(tok), NULL) != 0);
    T_EQ_INT(kw_token_parse(t, tok, strlen(tok), &c), 0);
    T_EQ_INT(c.iat, 1000);
    T_EQ_INT(c.exp, 4600);
    T_CHECK(memcmp(c.digest, d, 32) == 0);
    T_CHECK(memcmp(c.id, id, KW_TOKEN_ID_LEN) == 0);
    T_EQ_INT(c.explicit_scopes, 0);
    T_EQ_STR(c.prefix, "kw");
    /* the digest travels masked: its bytes do not appear as such */
    /* explicit scopes round trip */
    T_EQ_INT(kw_token_issue(t, "acme", d, "read write:all", 1, 2, tok, sizeof(tok), id), 0);
    T_EQ_INT(kw_token_parse(t, tok, strlen(tok), &c), 0);
    T_EQ_INT(c.explicit_scopes, 1);
    T_EQ_STR(c.scopes, "read write:all");
    T_EQ_STR(c.prefix, "acme");
    /* every single-character change is refused: MAC (NOT_FOUND) or shape (MALFORMED) */
    size_t n = strlen(tok);
    for (size_t i = 0; i < n; i++) {
        char save = tok[i];
        tok[i] = save == 'A' ? 'B' : 'A';
        int rc = kw_token_parse(t, tok, n, &c);
        T_CHECK(rc == KW_ENOTFOUND || rc == KW_EMALFORMED);
        tok[i] = save;
    }
    T_EQ_INT(kw_token_parse(t, tok, n - 1, &c), KW_EMALFORMED);
    T_EQ_INT(kw_token_parse(t, tok, n - 11, &c), KW_EMALFORMED);
    /* another server secret: the MAC fails */
    memcpy(sec2, SECRET, 32);
    sec2[0] ^= 1;
    T_EQ_INT(kw_tokens_new(sec2, &other), 0);
    if (other)
        T_EQ_INT(kw_token_parse(other, tok, n, &c), KW_ENOTFOUND);
    /* limits */
    char big[KW_TOKEN_SCOPES_MAX + 2];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    T_EQ_INT(kw_token_issue(t, "kw", d, big, 1, 2, tok, sizeof(tok), id), KW_EINVAL);
    big[KW_TOKEN_SCOPES_MAX] = '\0';
    T_EQ_INT(kw_token_issue(t, "kw", d, big, 1, 2, tok, sizeof(tok), id), 0);
    T_CHECK(strlen(tok) <= KW_TOKEN_MAX);
    T_EQ_INT(kw_token_parse(t, tok, strlen(tok), &c), 0);
    T_EQ_INT(kw_token_issue(t, "Bad", d, NULL, 1, 2, tok, sizeof(tok), id), KW_EINVAL);
    T_EQ_INT(kw_token_issue(t, "kw", d, NULL, 1, 2, tok, 20, id), KW_EINVAL);
    /* junk */
    const char *junk[] = {"",
                          "kw_at_",
                          "kw_at_000000000000",
                          "_at_00000000000",
                          "kw_at_!!!!!!!!!!!",
                          "kw_at_zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"
                          "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"};
    for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++)
        T_EQ_INT(kw_token_parse(t, junk[i], strlen(junk[i]), &c), KW_EMALFORMED);
    kw_tokens_free(other);
    kw_tokens_free(t);
}

static void test_revocations(void)
{
    kw_tokens_t *t = NULL;
    uint8_t id[KW_TOKEN_ID_LEN];
    char hex[KW_TOKEN_ID_HEX];
    T_EQ_INT(kw_tokens_new(SECRET, &t), 0);
    if (t == NULL)
        return;
    memset(id, 0, sizeof(id));
    T_EQ_INT(kw_tokens_revoked(t, id), 0);
    for (int i = 0; i < 1000; i++) {
        id[0] = (uint8_t)i;
        id[1] = (uint8_t)(i >> 8);
        T_EQ_INT(kw_tokens_revoke(t, id, i < 500 ? 100 : 200), 0);
    }
    T_EQ_INT(kw_tokens_revoke(t, id, 200), 0); /* again: no duplicate */
    T_EQ_INT((int)kw_tokens_revoked_count(t), 1000);
    id[0] = 7;
    id[1] = 0;
    T_EQ_INT(kw_tokens_revoked(t, id), 1);
    T_EQ_INT((int)kw_tokens_prune(t, 150), 500);
    T_EQ_INT(kw_tokens_revoked(t, id), 0);
    id[0] = (uint8_t)700;
    id[1] = (uint8_t)(700 >> 8);
    T_EQ_INT(kw_tokens_revoked(t, id), 1);
    kw_token_id_hex(id, hex);
    uint8_t back[KW_TOKEN_ID_LEN];
    T_EQ_INT(kw_token_id_parse(hex, back), 0);
    T_CHECK(memcmp(back, id, sizeof(id)) == 0);
    T_EQ_INT(kw_token_id_parse("zz", back), KW_EINVAL);
    T_EQ_INT((int)kw_tokens_prune(t, 1000), 500);
    T_EQ_INT((int)kw_tokens_revoked_count(t), 0);
    kw_tokens_free(t);
}

static kw_verify_code_t vany(kw_tokens_t *t, kw_index_t *ix, const char *tok, const char *scope,
                             int64_t now, kw_token_info_t *info)
{
    kw_verify_res_t r;
    kw_verify_req_t q = {.key = tok,
                         .key_len = strlen(tok),
                         .scope = scope,
                         .scope_len = scope ? strlen(scope) : 0,
                         .now = now};
    kw_verify_any(t, ix, &q, &r, info);
    kw_verify_res_release(&r);
    return r.code;
}

static void test_verify(void)
{
    kw_tokens_t *t = NULL;
    kw_index_t *ix = kw_index_new(16);
    kw_token_info_t *info = malloc(sizeof(*info));
    char secret[KW_KEY_MAX + 1], tok[KW_TOKEN_MAX + 1], tok2[KW_TOKEN_MAX + 1],
        tok3[KW_TOKEN_MAX + 1], msg[128];
    uint8_t id[KW_TOKEN_ID_LEN], id2[KW_TOKEN_ID_LEN];
    int64_t now = 1000000;
    T_EQ_INT(kw_tokens_new(SECRET, &t), 0);
    kw_cred_t c = {0};
    snprintf(c.id, sizeof(c.id), "cred_a");
    c.scopes_json = "[\"read\",\"write\"]";
    c.cidrs_json = "[]";
    snprintf(c.policy, sizeof(c.policy), "default");
    T_EQ_INT(kw_index_put_cred(ix, &c, 0), 0);
    kw_keyrec_t k = {0};
    kw_key_generate("kw", secret);
    kw_key_digest(secret, strlen(secret), k.digest);
    snprintf(k.id, sizeof(k.id), "key_a");
    snprintf(k.cred_id, sizeof(k.cred_id), "cred_a");
    k.slot = 1;
    k.live = 1;
    k.expires_at = now + 86400;
    T_EQ_INT(kw_index_put_key(ix, &k), 0);
    T_EQ_INT(kw_token_issue(t, "kw", k.digest, NULL, now, now + 3600, tok, sizeof(tok), id), 0);
    T_EQ_INT(kw_token_issue(t, "kw", k.digest, "read", now, now + 60, tok2, sizeof(tok2), id2), 0);
    T_EQ_INT(vany(t, ix, tok, "write", now, info), KW_V_VALID);
    T_EQ_INT(info->is_token, 1);
    T_EQ_INT(vany(t, ix, tok2, "read", now, info), KW_V_VALID);
    T_EQ_STR(info->scopes, "read");
    T_EQ_INT(vany(t, ix, tok2, "write", now, info), KW_V_FORBIDDEN_SCOPE);
    T_EQ_INT(vany(t, ix, tok, "admin", now, info), KW_V_FORBIDDEN_SCOPE);
    /* the token's own expiry, with its message */
    kw_verify_res_t r = {.code = KW_V_EXPIRED};
    T_EQ_INT(vany(t, ix, tok2, NULL, now + 60, info), KW_V_EXPIRED);
    T_EQ_INT(info->token_expired, 1);
    T_EQ_STR(kw_verify_any_message(&r, info, NULL, msg, sizeof(msg)), KW_TOKEN_EXPIRED_MSG);
    /* keys still verify on the same path */
    T_EQ_INT(vany(t, ix, secret, "read", now, info), KW_V_VALID);
    T_EQ_INT(info->is_token, 0);
    /* revoking the token alone */
    T_EQ_INT(kw_tokens_revoke(t, id2, now + 60), 0);
    T_EQ_INT(vany(t, ix, tok2, "read", now, info), KW_V_REVOKED);
    T_EQ_INT(vany(t, ix, tok, "read", now, info), KW_V_VALID);
    /* a token from a key the index does not know */
    uint8_t d0[KW_DIGEST_LEN] = {0};
    T_EQ_INT(kw_token_issue(t, "kw", d0, NULL, now, now + 60, tok3, sizeof(tok3), id), 0);
    T_EQ_INT(vany(t, ix, tok3, NULL, now, info), KW_V_NOT_FOUND);
    /* the credential disabled, then the key revoked: its tokens follow at once */
    c.disabled = 1;
    T_EQ_INT(kw_index_put_cred(ix, &c, 0), 0);
    T_EQ_INT(vany(t, ix, tok, NULL, now, info), KW_V_DISABLED);
    c.disabled = 0;
    T_EQ_INT(kw_index_put_cred(ix, &c, 0), 0);
    c.scopes_json = "[\"write\"]"; /* a scope taken from the credential leaves its tokens */
    T_EQ_INT(kw_index_put_cred(ix, &c, 0), 0);
    T_EQ_INT(kw_token_issue(t, "kw", k.digest, "read write", now, now + 60, tok3, sizeof(tok3), id),
             0);
    T_EQ_INT(vany(t, ix, tok3, "read", now, info), KW_V_FORBIDDEN_SCOPE);
    T_EQ_INT(vany(t, ix, tok3, "write", now, info), KW_V_VALID);
    T_EQ_STR(info->scopes, "write");
    k.revoked_at = now;
    T_EQ_INT(kw_index_put_key(ix, &k), 0);
    T_EQ_INT(vany(t, ix, tok, NULL, now, info), KW_V_REVOKED);
    T_EQ_INT(info->token_expired, 0);
    /* the key expired: the key's message, not the token's */
    k.revoked_at = 0;
    k.expires_at = now - 1;
    T_EQ_INT(kw_index_put_key(ix, &k), 0);
    T_EQ_INT(vany(t, ix, tok, NULL, now, info), KW_V_EXPIRED);
    T_EQ_INT(info->token_expired, 0);
    /* no token state: tokens are not recognised as keys */
    T_EQ_INT(vany(NULL, ix, tok, NULL, now, info), KW_V_MALFORMED);
    free(info);
    kw_tokens_free(t);
    kw_index_free(ix);
}

/* Verifiers on two threads while the main thread revokes and prunes: every answer is the
 * token's state before or after the change, never anything else (run under ASan/TSan). */
typedef struct racer {
    kw_tokens_t *t;
    kw_index_t *ix;
    const char *tok;
    atomic_int *stop;
    int bad;
} racer_t;

static void *race_verify(void *arg)
{
    racer_t *r = arg;
    kw_token_info_t *info = malloc(sizeof(*info));
    while (!atomic_load(r->stop)) {
        kw_verify_code_t c = vany(r->t, r->ix, r->tok, NULL, 1000, info);
        r->bad += c != KW_V_VALID && c != KW_V_REVOKED;
    }
    free(info);
    return NULL;
}

static void test_concurrent_revocations(void)
{
    kw_tokens_t *t = NULL;
    kw_index_t *ix = kw_index_new(16);
    char secret[KW_KEY_MAX + 1], tok[KW_TOKEN_MAX + 1];
    uint8_t id[KW_TOKEN_ID_LEN], other[KW_TOKEN_ID_LEN] = {9};
    atomic_int stop;
    atomic_init(&stop, 0);
    T_EQ_INT(kw_tokens_new(SECRET, &t), 0);
    kw_cred_t c = {0};
    snprintf(c.id, sizeof(c.id), "cred_r");
    c.scopes_json = "[]";
    c.cidrs_json = "[]";
    snprintf(c.policy, sizeof(c.policy), "default");
    T_EQ_INT(kw_index_put_cred(ix, &c, 0), 0);
    kw_keyrec_t k = {0};
    kw_key_generate("kw", secret);
    kw_key_digest(secret, strlen(secret), k.digest);
    snprintf(k.id, sizeof(k.id), "key_r");
    snprintf(k.cred_id, sizeof(k.cred_id), "cred_r");
    k.slot = 1;
    k.live = 1;
    T_EQ_INT(kw_index_put_key(ix, &k), 0);
    T_EQ_INT(kw_token_issue(t, "kw", k.digest, NULL, 1, 5000, tok, sizeof(tok), id), 0);
    racer_t r[2] = {{t, ix, tok, &stop, 0}, {t, ix, tok, &stop, 0}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, race_verify, &r[i]);
    for (int round = 0; round < 200; round++) {
        for (int j = 0; j < 50; j++) { /* other ids grow the table under the readers */
            other[1] = (uint8_t)j;
            other[2] = (uint8_t)round;
            kw_tokens_revoke(t, other, 100 + round);
        }
        kw_tokens_revoke(t, id, 2000 + round);
        kw_tokens_prune(t, 100 + round); /* drops some others, never id */
        T_EQ_INT(kw_tokens_revoked(t, id), 1);
        kw_tokens_prune(t, 3000); /* everything, id included */
        T_EQ_INT(kw_tokens_revoked(t, id), 0);
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    T_EQ_INT(r[0].bad + r[1].bad, 0);
    kw_tokens_free(t);
    kw_index_free(ix);
}

int main(void)
{
    T_RUN(test_format);
    T_RUN(test_revocations);
    T_RUN(test_verify);
    T_RUN(test_concurrent_revocations);
    T_DONE();
}
