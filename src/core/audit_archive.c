/* audit_archive.c - archiving the oldest part of the audit trail (issue 11): the records
 * before a time are exported (after the whole chain verified) and replaced by a checkpoint,
 * the sequence number and hash of the last archived record, signed (sealed, AES-256-GCM
 * under the secrets key file) so that verification can start from it and a forged one is
 * refused. Nothing is pruned silently: the archive is the caller's export. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "key.h"
#include "seal.h"
#include "store/store.h"

#define CP_AD "audit-checkpoint"

typedef struct collect {
    int64_t before;
    size_t max;
    kw_audit_rec_t *recs;
    size_t n;
    int64_t last_seq; /* of the whole trail */
    int oom;
} collect_t;

static int collect_cb(void *ud, const kw_audit_rec_t *r)
{
    collect_t *c = ud;
    c->last_seq = r->seq;
    if (r->at >= c->before || c->n >= c->max || c->oom)
        return 0;
    kw_audit_rec_t *d = &c->recs[c->n];
    *d = *r;
    d->detail = NULL;
    if (r->detail && (d->detail = strdup(r->detail)) == NULL) {
        c->oom = 1;
        return 0;
    }
    c->n++;
    return 0;
}

int kw_audit_checkpoint_load(struct kw_store *s, int64_t *seq, uint8_t hash[KW_AUDIT_HASH_LEN],
                             int *forged, kw_err_t *err)
{
    char *cp = NULL, *sig = NULL;
    *seq = 0;
    *forged = 0;
    int rc = kw_store_meta_get(s, KW_AUDIT_CHECKPOINT_META, &cp, err);
    if (rc == KW_ENOTFOUND)
        return 0;
    if (rc)
        return rc;
    rc = kw_store_meta_get(s, KW_AUDIT_CHECKPOINT_META "_sig", &sig, err);
    if (rc && rc != KW_ENOTFOUND)
        goto out;
    rc = 0;
    uint8_t *pt = NULL;
    size_t n = 0;
    const struct kw_seal *k = kw_store_seal(s);
    if (sig == NULL || k == NULL || kw_seal_open(k, CP_AD, sig, &pt, &n, NULL) != 0 ||
        n != strlen(cp) || memcmp(pt, cp, n) != 0 || kw_audit_head_parse(cp, seq, hash) != 0)
        *forged = 1;
    free(pt);
out:
    free(cp);
    free(sig);
    return rc;
}

int kw_audit_archive(struct kw_store *s, int64_t before, size_t max, kw_audit_rec_t **out,
                     size_t *n, kw_err_t *err)
{
    kw_audit_rec_array_free(*out, *n);
    *out = NULL;
    *n = 0;
    const struct kw_seal *k = kw_store_seal(s);
    if (k == NULL)
        return kw_err_set(err, KW_EINVAL, NULL, "archiving needs the secrets key file");
    kw_audit_verdict_t v;
    int rc = kw_audit_verify(s, &v, err);
    if (rc)
        return rc;
    if (!v.ok)
        return kw_err_set(err, KW_ECONFLICT, NULL,
                          "the audit trail does not verify (first bad record %lld): nothing "
                          "archived",
                          (long long)v.first_bad);
    collect_t c = {.before = before, .max = max};
    if ((c.recs = calloc(max ? max : 1, sizeof(*c.recs))) == NULL)
        return kw_err_set(err, KW_ENOMEM, NULL, "out of memory");
    char *head = NULL;
    rc = kw_store_audit_scan(s, collect_cb, &c, KW_AUDIT_HEAD_META, &head, err);
    free(head);
    if (rc == 0 && c.oom)
        rc = kw_err_set(err, KW_ENOMEM, NULL, "out of memory");
    if (rc == 0 && c.n && c.recs[c.n - 1].seq == c.last_seq) { /* the head record stays */
        kw_audit_rec_clear(&c.recs[c.n - 1]);
        c.n--;
    }
    if (rc == 0 && c.n) {
        const kw_audit_rec_t *last = &c.recs[c.n - 1];
        char cp[32 + 2 * KW_AUDIT_HASH_LEN], hex[2 * KW_AUDIT_HASH_LEN + 1];
        char *sig = NULL;
        kw_audit_hex(last->hash, hex);
        snprintf(cp, sizeof(cp), "%lld:%s", (long long)last->seq, hex);
        rc = kw_seal_seal(k, CP_AD, cp, strlen(cp), &sig, err);
        if (rc == 0)
            rc = kw_store_audit_cut(s, last->seq, err);
        if (rc == 0)
            rc = kw_store_meta_set(s, KW_AUDIT_CHECKPOINT_META, cp, err);
        if (rc == 0)
            rc = kw_store_meta_set(s, KW_AUDIT_CHECKPOINT_META "_sig", sig, err);
        free(sig);
    }
    if (rc) {
        kw_audit_rec_array_free(c.recs, c.n);
        return rc;
    }
    *out = c.recs;
    *n = c.n;
    return 0;
}
