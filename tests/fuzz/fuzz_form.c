/* fuzz_form.c - libFuzzer target for kw_form_parse (the OAuth2 endpoints' bodies) and the
 * access token parser kw_token_parse, which read the same untrusted requests.
 *
 * Invariants: a parsed form has at most KW_FORM_MAX pairs, no two with the same name, and
 * names and values free of control bytes; a body accepted once parses the same again.
 * kw_token_parse on any bytes returns one of its three codes, and a token issued with the
 * parsed claims under the same key parses back to them. */
// fuzz-sources: src/core/form.c src/core/token.c src/core/index*.c src/core/cidr.c
// fuzz-sources: src/core/model.c
// fuzz-libs: jansson
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/form.h"
#include "core/token.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

static int clean(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static kw_tokens_t *tk;
    static const uint8_t secret[32] = {7};
    kw_form_t f, g;
    kw_err_t e = {0};
    if (tk == NULL && kw_tokens_new(secret, &tk) != 0)
        abort();
    int rc = kw_form_parse((const char *)data, size, &f, &e);
    CHECK(rc == 0 || rc == KW_EINVAL);
    if (rc == 0) {
        CHECK(f.n <= KW_FORM_MAX);
        for (size_t i = 0; i < f.n; i++) {
            CHECK(f.name[i][0] != '\0' && clean(f.name[i]) && clean(f.value[i]));
            for (size_t j = 0; j < i; j++)
                CHECK(strcmp(f.name[i], f.name[j]) != 0);
        }
        CHECK(kw_form_parse((const char *)data, size, &g, &e) == 0 && g.n == f.n);
        kw_form_free(&g);
    }
    kw_form_free(&f);

    kw_token_claims_t *c = malloc(sizeof(*c)), *d = malloc(sizeof(*d));
    char *tok = malloc(KW_TOKEN_MAX + 1);
    CHECK(c && d && tok);
    rc = kw_token_parse(tk, (const char *)data, size, c);
    CHECK(rc == 0 || rc == KW_EMALFORMED || rc == KW_ENOTFOUND);
    if (rc == 0) { /* only reachable with the key: re-issue and compare */
        uint8_t id[KW_TOKEN_ID_LEN];
        CHECK(kw_token_issue(tk, c->prefix, c->digest, c->explicit_scopes ? c->scopes : NULL,
                             c->iat, c->exp, tok, KW_TOKEN_MAX + 1, id) == 0);
        CHECK(kw_token_parse(tk, tok, strlen(tok), d) == 0);
        CHECK(memcmp(d->digest, c->digest, KW_DIGEST_LEN) == 0 && d->exp == c->exp);
    }
    free(c);
    free(d);
    free(tok);
    return 0;
}
