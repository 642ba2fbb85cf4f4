/* token.c - OAuth2 access tokens (token.h): the text format, its MAC under the server's
 * token key (HMAC-SHA256 from precomputed ipad/opad contexts, as key.c's pepper), the
 * revocation set, and verification through the index entry of the key that obtained it. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include "token.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define HDR 64 /* bytes before the scope text */
#define MAC_LEN 16
#define WORD_CHARS 11
#define TOKEN_VERSION 1
#define MAX_PAYLOAD (HDR + KW_TOKEN_SCOPES_MAX + 8 + MAC_LEN)

typedef struct hmac_key {
    SHA256_CTX in, out; /* after the ipad / opad blocks */
} hmac_key_t;

/* The mask PRF: SHA-256 over a 64-byte secret block, then the token id (fixed length), so
 * one compression per mask from the context after the secret block. */
typedef struct prf_key {
    SHA256_CTX ctx;
} prf_key_t;

typedef struct rev {
    uint8_t id[KW_TOKEN_ID_LEN];
    uint8_t used; /* 0 empty, 1 used, 2 deleted */
    int64_t exp;
} rev_t;

struct kw_tokens {
    hmac_key_t mac;
    prf_key_t mask;
    pthread_rwlock_t rw; /* the revocation set */
    rev_t *revs;
    size_t cap, n, tomb;
    atomic_size_t nrev; /* readers skip the lock while it is 0 */
};

static const char b62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

static void hmac_init(hmac_key_t *h, const uint8_t *k, size_t n)
{
    uint8_t pad[64], kk[64] = {0};
    memcpy(kk, k, n > 64 ? 64 : n);
    for (int i = 0; i < 64; i++)
        pad[i] = kk[i] ^ 0x36;
    SHA256_Init(&h->in);
    SHA256_Update(&h->in, pad, sizeof(pad));
    for (int i = 0; i < 64; i++)
        pad[i] = kk[i] ^ 0x5c;
    SHA256_Init(&h->out);
    SHA256_Update(&h->out, pad, sizeof(pad));
    kw_wipe(pad, sizeof(pad));
    kw_wipe(kk, sizeof(kk));
}

/* HMAC over a then b (b may be empty). */
static void hmac2(const hmac_key_t *h, const void *a, size_t an, const void *b, size_t bn,
                  uint8_t out[32])
{
    uint8_t inner[32];
    SHA256_CTX c = h->in;
    SHA256_Update(&c, a, an);
    if (bn)
        SHA256_Update(&c, b, bn);
    SHA256_Final(inner, &c);
    c = h->out;
    SHA256_Update(&c, inner, sizeof(inner));
    SHA256_Final(out, &c);
    kw_wipe(inner, sizeof(inner));
    kw_wipe(&c, sizeof(c));
}

int kw_tokens_new(const uint8_t secret[32], kw_tokens_t **out)
{
    uint8_t k[32];
    unsigned int kl = sizeof(k);
    kw_tokens_t *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return KW_ENOMEM;
    /* two keys from one secret, so the mask never equals a MAC */
    HMAC(EVP_sha256(), secret, 32, (const unsigned char *)"keyward token mac v1", 20, k, &kl);
    hmac_init(&t->mac, k, sizeof(k));
    uint8_t blk[64];
    HMAC(EVP_sha256(), secret, 32, (const unsigned char *)"keyward token mask v1", 21, blk, &kl);
    HMAC(EVP_sha256(), secret, 32, (const unsigned char *)"keyward token mask v1b", 22, blk + 32,
         &kl);
    SHA256_Init(&t->mask.ctx);
    SHA256_Update(&t->mask.ctx, blk, sizeof(blk));
    kw_wipe(blk, sizeof(blk));
    kw_wipe(k, sizeof(k));
    pthread_rwlock_init(&t->rw, NULL);
    atomic_init(&t->nrev, 0);
    *out = t;
    return 0;
}

void kw_tokens_free(kw_tokens_t *t)
{
    if (t == NULL)
        return;
    pthread_rwlock_destroy(&t->rw);
    free(t->revs);
    kw_wipe(t, sizeof(*t));
    free(t);
}

/* ---- text ---- */

static size_t prefix_len(const char *text, size_t len)
{
    size_t i = 0;
    while (i < len && i <= KW_PREFIX_MAX && text[i] != '_')
        i++;
    return i;
}

int kw_token_looks(const char *text, size_t len)
{
    size_t p = prefix_len(text, len);
    return p > 0 && p <= KW_PREFIX_MAX && p + 4 <= len && memcmp(text + p, "_at_", 4) == 0;
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static void word_enc(uint64_t v, char out[WORD_CHARS])
{
    for (int i = WORD_CHARS - 1; i >= 0; i--) {
        out[i] = b62[v % 62];
        v /= 62;
    }
}

/* base62 digit values, -1 for other bytes (filled once from the alphabet b62) */
static int8_t b62_tab[256];
static pthread_once_t b62_once = PTHREAD_ONCE_INIT;

static void b62_tab_init(void)
{
    memset(b62_tab, -1, sizeof(b62_tab));
    for (int v = 0; v < 62; v++)
        b62_tab[(unsigned char)b62[v]] = (int8_t)v;
}

static int word_dec(const char *s, uint64_t *out)
{
    /* two independent halves of 5 digits (shorter dependency chains), then the last digit:
     * 10 digits stay below 62^10 < 2^60, so only the last step can overflow */
    const unsigned char *u = (const unsigned char *)s;
    uint64_t hi = 0, lo = 0;
    int bad = 0;
    for (int i = 0; i < 5; i++) {
        int a = b62_tab[u[i]], b = b62_tab[u[i + 5]];
        bad |= a | b;
        hi = hi * 62 + (uint64_t)(unsigned)a;
        lo = lo * 62 + (uint64_t)(unsigned)b;
    }
    uint64_t v = hi * 916132832ULL + lo; /* 62^5 */
    int d = b62_tab[u[WORD_CHARS - 1]];
    /* 11 digits reach 62^11 > 2^64: a value past 2^64-1 is refused, one text per value */
    if ((bad | d) < 0 || __builtin_mul_overflow(v, 62, &v) ||
        __builtin_add_overflow(v, (uint64_t)d, &v))
        return -1;
    *out = v;
    return 0;
}

static void mask_digest(const kw_tokens_t *t, const uint8_t id[KW_TOKEN_ID_LEN], const uint8_t *in,
                        uint8_t *out)
{
    uint8_t m[32];
    SHA256_CTX c = t->mask.ctx;
    SHA256_Update(&c, id, KW_TOKEN_ID_LEN);
    SHA256_Final(m, &c);
    kw_wipe(&c, sizeof(c));
    for (int i = 0; i < 32; i++)
        out[i] = in[i] ^ m[i];
    kw_wipe(m, sizeof(m));
}

int kw_token_issue(const kw_tokens_t *t, const char *prefix, const uint8_t digest[KW_DIGEST_LEN],
                   const char *scopes, int64_t iat, int64_t exp, char *out, size_t n,
                   uint8_t id_out[KW_TOKEN_ID_LEN])
{
    uint8_t b[MAX_PAYLOAD], mac[32];
    size_t plen = prefix ? strlen(prefix) : 0;
    size_t slen = scopes ? strlen(scopes) : 0;
    int rc = 0;
    if (plen == 0 || !kw_key_prefix_valid(prefix, plen) || slen > KW_TOKEN_SCOPES_MAX)
        return KW_EINVAL;
    size_t body = (HDR + slen + 7) / 8 * 8, total = body + MAC_LEN;
    size_t tlen = plen + 4 + total / 8 * WORD_CHARS;
    if (tlen + 1 > n)
        return KW_EINVAL;
    memset(b, 0, sizeof(b));
    b[0] = TOKEN_VERSION;
    b[1] = scopes ? 1 : 0;
    b[2] = (uint8_t)(slen >> 8);
    b[3] = (uint8_t)slen;
    put64(b + 4, (uint64_t)iat);
    put64(b + 12, (uint64_t)exp);
    if (kw_random(b + 20, KW_TOKEN_ID_LEN) != 0) {
        rc = KW_EIO;
        goto out;
    }
    mask_digest(t, b + 20, digest, b + 32);
    if (slen)
        memcpy(b + HDR, scopes, slen);
    memcpy(out, prefix, plen);
    memcpy(out + plen, "_at_", 4);
    hmac2(&t->mac, out, plen + 4, b, body, mac);
    memcpy(b + body, mac, MAC_LEN);
    for (size_t i = 0; i < total / 8; i++)
        word_enc(get64(b + 8 * i), out + plen + 4 + i * WORD_CHARS);
    out[tlen] = '\0';
    memcpy(id_out, b + 20, KW_TOKEN_ID_LEN);
out:
    kw_wipe(b, sizeof(b));
    kw_wipe(mac, sizeof(mac));
    return rc;
}

int kw_token_parse(const kw_tokens_t *t, const char *text, size_t len, kw_token_claims_t *c)
{
    uint8_t b[MAX_PAYLOAD], mac[32];
    int rc = KW_EMALFORMED;
    if (text == NULL || len > KW_TOKEN_MAX || !kw_token_looks(text, len))
        return KW_EMALFORMED;
    size_t plen = prefix_len(text, len);
    if (!kw_key_prefix_valid(text, plen))
        return KW_EMALFORMED;
    size_t chars = len - plen - 4;
    if (chars % WORD_CHARS != 0 || chars / WORD_CHARS * 8 < HDR + MAC_LEN ||
        chars / WORD_CHARS * 8 > sizeof(b))
        return KW_EMALFORMED;
    size_t total = chars / WORD_CHARS * 8, body = total - MAC_LEN;
    size_t used = total;
    pthread_once(&b62_once, b62_tab_init);
    for (size_t i = 0; i < total / 8; i++) {
        uint64_t v;
        if (word_dec(text + plen + 4 + i * WORD_CHARS, &v) != 0)
            goto out;
        put64(b + 8 * i, v);
    }
    size_t slen = (size_t)b[2] << 8 | b[3];
    if (b[0] != TOKEN_VERSION || b[1] > 1 || slen > KW_TOKEN_SCOPES_MAX ||
        (HDR + slen + 7) / 8 * 8 != body || (b[1] == 0 && slen != 0))
        goto out;
    for (size_t i = HDR + slen; i < body; i++)
        if (b[i] != 0)
            goto out;
    hmac2(&t->mac, text, plen + 4, b, body, mac);
    if (!kw_ct_equal(mac, b + body, MAC_LEN)) {
        rc = KW_ENOTFOUND;
        goto out;
    }
    memcpy(c->prefix, text, plen);
    c->prefix[plen] = '\0';
    c->iat = (int64_t)get64(b + 4);
    c->exp = (int64_t)get64(b + 12);
    memcpy(c->id, b + 20, KW_TOKEN_ID_LEN);
    mask_digest(t, c->id, b + 32, c->digest);
    c->explicit_scopes = b[1];
    memcpy(c->scopes, b + HDR, slen);
    c->scopes[slen] = '\0';
    c->scopes_len = slen;
    rc = 0;
out:
    kw_wipe(b, used); /* only what was decoded (a verify's hot path) */
    return rc;
}

void kw_token_id_hex(const uint8_t id[KW_TOKEN_ID_LEN], char out[KW_TOKEN_ID_HEX])
{
    kw_hex_encode(id, KW_TOKEN_ID_LEN, out);
}

/* lower-case only, as kw_token_id_hex writes it */
int kw_token_id_parse(const char *hex, uint8_t id[KW_TOKEN_ID_LEN])
{
    if (hex == NULL || strlen(hex) != 2 * KW_TOKEN_ID_LEN ||
        strspn(hex, "0123456789abcdef") != 2 * KW_TOKEN_ID_LEN)
        return KW_EINVAL;
    return kw_hex_decode(hex, KW_TOKEN_ID_LEN, id) == 0 ? 0 : KW_EINVAL;
}

/* ---- revocation set: open addressing by token id (random, so its bytes hash) ---- */

static size_t rev_pos(const uint8_t *id, size_t cap)
{
    uint64_t h = get64(id);
    return (size_t)(h & (cap - 1));
}

static rev_t *rev_find(const kw_tokens_t *t, const uint8_t *id)
{
    if (t->cap == 0)
        return NULL;
    for (size_t i = rev_pos(id, t->cap), k = 0; k < t->cap; i = (i + 1) & (t->cap - 1), k++) {
        rev_t *r = &t->revs[i];
        if (r->used == 0)
            return NULL;
        if (r->used == 1 && memcmp(r->id, id, KW_TOKEN_ID_LEN) == 0)
            return r;
    }
    return NULL;
}

static void rev_place(rev_t *tab, size_t cap, const uint8_t *id, int64_t exp)
{
    size_t i = rev_pos(id, cap);
    while (tab[i].used == 1)
        i = (i + 1) & (cap - 1);
    memcpy(tab[i].id, id, KW_TOKEN_ID_LEN);
    tab[i].exp = exp;
    tab[i].used = 1;
}

/* Rebuild at a capacity holding `want` at load <= 1/2 (caller holds the write lock). */
static int rev_rebuild(kw_tokens_t *t, size_t want)
{
    size_t cap = 16;
    while (cap < 2 * want)
        cap *= 2;
    rev_t *tab = calloc(cap, sizeof(*tab));
    if (tab == NULL)
        return KW_ENOMEM;
    for (size_t i = 0; i < t->cap; i++)
        if (t->revs[i].used == 1)
            rev_place(tab, cap, t->revs[i].id, t->revs[i].exp);
    free(t->revs);
    t->revs = tab;
    t->cap = cap;
    t->tomb = 0;
    return 0;
}

int kw_tokens_revoke(kw_tokens_t *t, const uint8_t id[KW_TOKEN_ID_LEN], int64_t exp)
{
    int rc = 0;
    pthread_rwlock_wrlock(&t->rw);
    if (rev_find(t, id) == NULL) {
        if (2 * (t->n + t->tomb + 1) > t->cap)
            rc = rev_rebuild(t, t->n + 1);
        if (rc == 0) {
            rev_place(t->revs, t->cap, id, exp);
            t->n++;
            atomic_store(&t->nrev, t->n);
        }
    }
    pthread_rwlock_unlock(&t->rw);
    return rc;
}

int kw_tokens_revoked(kw_tokens_t *t, const uint8_t id[KW_TOKEN_ID_LEN])
{
    if (atomic_load_explicit(&t->nrev, memory_order_acquire) == 0)
        return 0;
    pthread_rwlock_rdlock(&t->rw);
    int r = rev_find(t, id) != NULL;
    pthread_rwlock_unlock(&t->rw);
    return r;
}

size_t kw_tokens_prune(kw_tokens_t *t, int64_t now)
{
    size_t dropped = 0;
    pthread_rwlock_wrlock(&t->rw);
    for (size_t i = 0; i < t->cap; i++)
        if (t->revs[i].used == 1 && t->revs[i].exp <= now) {
            t->revs[i].used = 2;
            t->n--;
            t->tomb++;
            dropped++;
        }
    if (dropped)
        (void)rev_rebuild(t, t->n); /* a failure keeps the tombstones: still correct */
    atomic_store(&t->nrev, t->n);
    pthread_rwlock_unlock(&t->rw);
    return dropped;
}

size_t kw_tokens_revoked_count(kw_tokens_t *t)
{
    return atomic_load(&t->nrev);
}

/* ---- verify ---- */

/* 1 when the credential's scopes hold s[0..n). */
static int cred_has(const kw_icred_t *c, const char *s, size_t n)
{
    const kw_ifacts_t *f = c->facts;
    for (size_t i = 0; i < f->nscopes; i++)
        if (strlen(f->scopes[i]) == n && memcmp(f->scopes[i], s, n) == 0)
            return 1;
    return 0;
}

/* The token's scopes the credential still holds, into info->buf; 1 when `want` (if any) is
 * among them. */
static int token_scopes(const kw_icred_t *c, kw_token_info_t *info, const char *want, size_t wlen)
{
    const char *p = info->c.scopes, *end = p + info->c.scopes_len;
    size_t o = 0;
    int found = want == NULL || wlen == 0;
    while (p < end) {
        const char *sp = memchr(p, ' ', (size_t)(end - p));
        size_t n = sp ? (size_t)(sp - p) : (size_t)(end - p);
        if (n && cred_has(c, p, n)) {
            if (o)
                info->buf[o++] = ' ';
            memcpy(info->buf + o, p, n);
            o += n;
            if (!found && n == wlen && memcmp(p, want, n) == 0)
                found = 1;
        }
        p += n + 1;
    }
    info->buf[o] = '\0';
    info->scopes = info->buf;
    return found;
}

void kw_verify_any(kw_tokens_t *t, kw_index_t *ix, const kw_verify_req_t *rq, kw_verify_res_t *res,
                   kw_token_info_t *info)
{
    info->is_token = 0;
    info->token_expired = 0;
    info->scopes = NULL;
    if (t == NULL || !kw_token_looks(rq->key, rq->key_len)) {
        kw_index_verify(ix, rq, res);
        return;
    }
    info->is_token = 1;
    int rc = kw_token_parse(t, rq->key, rq->key_len, &info->c);
    if (rc != 0) {
        memset(res, 0, sizeof(*res));
        res->key_id = "";
        res->code = rc == KW_ENOTFOUND ? KW_V_NOT_FOUND : KW_V_MALFORMED;
        return;
    }
    info->exp = info->c.exp;
    int dead = kw_tokens_revoked(t, info->c.id);
    int expired = info->c.exp <= rq->now;
    kw_verify_req_t q = *rq;
    q.scope = NULL; /* checked here against the token's scopes */
    q.scope_len = 0;
    kw_index_verify_digest(ix, info->c.digest, &q, !dead && !expired, res);
    if (res->code == KW_V_NOT_FOUND || res->code == KW_V_REVOKED || res->code == KW_V_EXPIRED)
        return;
    if (dead) {
        res->code = KW_V_REVOKED;
        return;
    }
    if (expired) {
        res->code = KW_V_EXPIRED;
        info->token_expired = 1;
        return;
    }
    if (res->code != KW_V_VALID)
        return;
    if (!info->c.explicit_scopes) {
        if (rq->scope && rq->scope_len && !cred_has(res->cred, rq->scope, rq->scope_len))
            res->code = KW_V_FORBIDDEN_SCOPE;
        return;
    }
    if (!token_scopes(res->cred, info, rq->scope, rq->scope_len))
        res->code = KW_V_FORBIDDEN_SCOPE;
}

const char *kw_verify_any_message(const kw_verify_res_t *res, const kw_token_info_t *info,
                                  const char *scope, char *out, size_t n)
{
    if (info && info->token_expired && res->code == KW_V_EXPIRED) {
        snprintf(out, n, "%s", KW_TOKEN_EXPIRED_MSG);
        return out;
    }
    return kw_verify_message(res->code, scope, out, n);
}
