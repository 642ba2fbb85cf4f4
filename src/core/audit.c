/* audit.c - the hash-chained audit trail (SPEC §7): canonical form, hashing, append inside
 * the caller's transaction, and the chain check behind GET /v1/audit/verify.
 * Must not: accept or write a secret (callers pass ids, names, hints, times), or let a
 * change through when its record could not be written (every failure is KW_ESTORE). */
#include "audit.h"

#include <inttypes.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jdump.h"
#include "store/store.h"
#include "util.h"

/* ---- canonical form ---- */

typedef kw_buf_t buf_t; /* util.h */

static void put(buf_t *b, const char *s, size_t n)
{
    kw_buf_put(b, s, n);
}

static void put_int(buf_t *b, const char *name, int64_t v)
{
    char t[64];
    int n = snprintf(t, sizeof(t), "%s=%" PRId64 "\n", name, v);
    put(b, t, (size_t)n);
}

/* name=<byte length>:<bytes>\n, or name=-\n for an absent value: the length prefix makes the
 * form unambiguous whatever the bytes are (newlines, '=', NUL-free UTF-8). */
static void put_str(buf_t *b, const char *name, const char *v)
{
    char t[96];
    int n;
    if (v == NULL) {
        n = snprintf(t, sizeof(t), "%s=-\n", name);
        put(b, t, (size_t)n);
        return;
    }
    size_t len = strlen(v);
    n = snprintf(t, sizeof(t), "%s=%zu:", name, len);
    put(b, t, (size_t)n);
    put(b, v, len);
    put(b, "\n", 1);
}

int kw_audit_canonical(const kw_audit_rec_t *r, char **out, size_t *len)
{
    buf_t b = {0};
    put(&b, "keyward-audit-v1\n", 17);
    put_int(&b, "seq", r->seq);
    put_int(&b, "at", r->at);
    put_str(&b, "actor", r->actor);
    put_str(&b, "action", r->action);
    put_str(&b, "target", r->target[0] ? r->target : NULL);
    put_str(&b, "outcome", r->outcome);
    put_str(&b, "detail", r->detail);
    if (b.oom) {
        free(b.p);
        return KW_ENOMEM;
    }
    *out = b.p;
    *len = b.n;
    return 0;
}

/* SHA-256 fetched once: an implicit fetch (EVP_sha256()) costs ~500 ns per digest in
 * OpenSSL 3. Never freed (one per process). */
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;
static EVP_MD *sha256;
static void sha256_fetch(void)
{
    sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
}

int kw_audit_hash(const kw_audit_rec_t *r, uint8_t out[KW_AUDIT_HASH_LEN])
{
    static const uint8_t zero[KW_AUDIT_HASH_LEN];
    char *c = NULL;
    size_t n = 0;
    unsigned int hl = 0;
    int rc = kw_audit_canonical(r, &c, &n);
    if (rc)
        return rc;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    rc = KW_EINTERNAL;
    pthread_once(&sha256_once, sha256_fetch);
    if (ctx && EVP_DigestInit_ex(ctx, sha256 ? sha256 : EVP_sha256(), NULL) == 1 &&
        EVP_DigestUpdate(ctx, c, n) == 1 &&
        EVP_DigestUpdate(ctx, r->has_prev ? r->prev_hash : zero, KW_AUDIT_HASH_LEN) == 1 &&
        EVP_DigestFinal_ex(ctx, out, &hl) == 1 && hl == KW_AUDIT_HASH_LEN)
        rc = 0;
    EVP_MD_CTX_free(ctx);
    free(c);
    return rc;
}

void kw_audit_hex(const uint8_t h[KW_AUDIT_HASH_LEN], char out[2 * KW_AUDIT_HASH_LEN + 1])
{
    kw_hex_encode(h, KW_AUDIT_HASH_LEN, out);
}

/* "<seq>:<64 hex>" -> seq, hash. 0 or -1. */
int kw_audit_head_parse(const char *s, int64_t *seq, uint8_t h[KW_AUDIT_HASH_LEN])
{
    char *end;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end != ':' || v < 1 || strlen(end + 1) != 2 * KW_AUDIT_HASH_LEN)
        return -1;
    for (size_t i = 0; i < KW_AUDIT_HASH_LEN; i++) {
        int hi = kw_hex_digit(end[1 + 2 * i]), lo = kw_hex_digit(end[2 + 2 * i]);
        if (hi < 0 || lo < 0)
            return -1;
        h[i] = (uint8_t)(hi << 4 | lo);
    }
    *seq = v;
    return 0;
}

/* ---- chain check ---- */

void kw_audit_chain_init(kw_audit_chain_t *c)
{
    memset(c, 0, sizeof(*c));
}

static void bad(kw_audit_chain_t *c, int64_t seq, const char *why)
{
    if (c->first_bad == 0) {
        c->first_bad = seq;
        c->why = why;
    }
}

void kw_audit_chain_feed(kw_audit_chain_t *c, const kw_audit_rec_t *r)
{
    uint8_t h[KW_AUDIT_HASH_LEN];
    c->records++;
    if (c->first_bad == 0) {
        if (r->seq != c->last_seq + 1)
            bad(c, r->seq,
                c->last_seq == 0 ? "the trail does not start at record 1"
                                 : "records are missing before this one");
        else if (c->last_seq == 0
                     ? r->has_prev
                     : (!r->has_prev || memcmp(r->prev_hash, c->last_hash, KW_AUDIT_HASH_LEN)))
            bad(c, r->seq, "its link to the previous record does not match");
        else if (kw_audit_hash(r, h) != 0 || memcmp(h, r->hash, KW_AUDIT_HASH_LEN) != 0)
            bad(c, r->seq, "its content does not match its hash");
    }
    c->last_seq = r->seq;
    memcpy(c->last_hash, r->hash, KW_AUDIT_HASH_LEN);
}

void kw_audit_chain_end(kw_audit_chain_t *c, const char *head)
{
    int64_t hs = 0;
    uint8_t hh[KW_AUDIT_HASH_LEN];
    if (c->first_bad || head == NULL) /* no head yet: a trail never written to */
        return;
    if (kw_audit_head_parse(head, &hs, hh) != 0) {
        bad(c, c->last_seq ? c->last_seq : 1, "the recorded head of the trail is unreadable");
    } else if (hs > c->last_seq) {
        bad(c, c->last_seq + 1, "records are missing at the end of the trail");
    } else if (hs < c->last_seq) {
        bad(c, hs + 1, "records were added after the recorded head of the trail");
    } else if (memcmp(hh, c->last_hash, KW_AUDIT_HASH_LEN) != 0) {
        bad(c, hs, "the last record does not match the recorded head of the trail");
    }
}

/* ---- append ---- */

static int unavailable(kw_err_t *err, const char *why)
{
    char m[KW_ERR_MSG_MAX];
    snprintf(m, sizeof(m), "%s", why ? why : "");
    return kw_err_set(err, KW_ESTORE, NULL, "audit trail unavailable, so nothing was changed%s%s",
                      m[0] ? ": " : "", m);
}

int kw_audit_append(struct kw_store *s, const char *actor, const char *action, const char *target,
                    const char *outcome, json_t *detail, int64_t now, kw_err_t *err)
{
    kw_audit_rec_t r = {0};
    kw_err_t e = {0};
    char *head = NULL, hex[2 * KW_AUDIT_HASH_LEN + 1], hv[2 * KW_AUDIT_HASH_LEN + 32];
    int64_t seq = 0;
    int rc;

    /* Follow the head keyward recorded, not the table's last row: if rows were removed
     * behind keyward's back, the next record leaves the gap visible instead of closing it. */
    rc = kw_store_meta_get(s, KW_AUDIT_HEAD_META, &head, &e);
    if (rc == 0) {
        if (kw_audit_head_parse(head, &seq, r.prev_hash) != 0) {
            rc = unavailable(err, "the recorded head of the trail is unreadable");
            goto out;
        }
        r.has_prev = 1;
    } else if (rc == KW_ENOTFOUND) {
        rc = kw_store_audit_head(s, &seq, r.prev_hash, &e);
        if (rc == 0)
            r.has_prev = 1;
        else if (rc == KW_ENOTFOUND)
            seq = 0;
        else
            goto fail;
    } else {
        goto fail;
    }
    r.seq = seq + 1;
    r.at = now;
    snprintf(r.actor, sizeof(r.actor), "%s", actor && *actor ? actor : "system");
    snprintf(r.action, sizeof(r.action), "%s", action);
    snprintf(r.target, sizeof(r.target), "%s", target ? target : "");
    snprintf(r.outcome, sizeof(r.outcome), "%s", outcome ? outcome : "ok");
    /* = json_dumps(detail, JSON_COMPACT | JSON_SORT_KEYS), without its per-dump overhead */
    if (detail && (r.detail = kw_json_dump_sorted(detail)) == NULL) {
        rc = unavailable(err, "out of memory");
        goto out;
    }
    if (kw_audit_hash(&r, r.hash) != 0) {
        rc = unavailable(err, "hashing failed");
        goto out;
    }
    if ((rc = kw_store_audit_insert(s, &r, &e)) != 0)
        goto fail;
    kw_audit_hex(r.hash, hex);
    snprintf(hv, sizeof(hv), "%" PRId64 ":%s", r.seq, hex);
    if ((rc = kw_store_meta_set(s, KW_AUDIT_HEAD_META, hv, &e)) != 0)
        goto fail;
    rc = 0;
    goto out;
fail:
    rc = unavailable(err, e.msg);
out:
    json_decref(detail);
    free(head);
    kw_audit_rec_clear(&r);
    return rc;
}

/* ---- verify ---- */

static int verify_one(void *ud, const kw_audit_rec_t *r)
{
    kw_audit_chain_feed(ud, r);
    return 0;
}

int kw_audit_verify(struct kw_store *s, kw_audit_verdict_t *out, kw_err_t *err)
{
    kw_audit_chain_t c;
    char *head = NULL;
    int rc, forged = 0;
    /* security: an archived trail starts after its signed checkpoint; an archive running
     * during the scan moves it, so the scan is retried when it changed */
    for (int attempt = 0;; attempt++) {
        int64_t cs = 0, cs2 = 0;
        uint8_t ch[KW_AUDIT_HASH_LEN], ch2[KW_AUDIT_HASH_LEN];
        int f2 = 0;
        kw_audit_chain_init(&c);
        if ((rc = kw_audit_checkpoint_load(s, &cs, ch, &forged, err)) != 0)
            return rc;
        if (cs > 0 && !forged) {
            c.last_seq = cs;
            memcpy(c.last_hash, ch, KW_AUDIT_HASH_LEN);
        }
        free(head);
        head = NULL;
        if ((rc = kw_store_audit_scan(s, verify_one, &c, KW_AUDIT_HEAD_META, &head, err)) != 0)
            return rc;
        if ((rc = kw_audit_checkpoint_load(s, &cs2, ch2, &f2, err)) != 0) {
            free(head);
            return rc;
        }
        if (attempt == 2 || (cs2 == cs && f2 == forged))
            break;
    }
    if (forged) { /* what follows it cannot be checked either: the checkpoint is the break */
        c.first_bad = c.records ? c.last_seq - c.records + 1 : 1;
        c.why = "the archive checkpoint is not signed by this keyward's secrets key";
    }
    kw_audit_chain_end(&c, head);
    free(head);
    memset(out, 0, sizeof(*out));
    out->ok = c.first_bad == 0;
    out->records = c.records;
    out->first_bad = c.first_bad;
    out->why = c.why;
    if (c.records)
        kw_audit_hex(c.last_hash, out->head);
    return 0;
}
