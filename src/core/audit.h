/* audit.h - the hash-chained audit trail (SPEC §7).
 *
 * Each record carries hash = SHA-256(canonical(record) || prev_hash), where prev_hash is the
 * previous record's hash (32 zero bytes for the first record), so editing, deleting,
 * inserting or reordering records breaks the chain at the first record touched. The
 * canonical form is documented in docs/internals/audit.md. Records never hold a secret:
 * callers put ids, names, hints and times in `detail`, nothing else. */
#ifndef KW_AUDIT_H
#define KW_AUDIT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "model.h"
#include "util.h"

#define KW_AUDIT_HEAD_META "audit_head" /* meta key: "<seq>:<hex hash>" of the last record */

/* The record (kw_audit_rec_t) is plain data in model.h. */

/* The canonical serialization of r's fields (seq, at, actor, action, target, outcome,
 * detail) into a malloc'd buffer *out of *len bytes (caller frees). 0 or KW_ENOMEM. */
int kw_audit_canonical(const kw_audit_rec_t *r, char **out, size_t *len);

/* out = SHA-256(canonical(r) || prev), prev = r->prev_hash, or 32 zero bytes when
 * !r->has_prev. 0, KW_ENOMEM or KW_EINTERNAL. */
int kw_audit_hash(const kw_audit_rec_t *r, uint8_t out[KW_AUDIT_HASH_LEN]);

/* Lowercase hex of a hash into out (65 bytes). */
void kw_audit_hex(const uint8_t h[KW_AUDIT_HASH_LEN], char out[2 * KW_AUDIT_HASH_LEN + 1]);

/* Walks records in ascending seq order and finds the first break. */
typedef struct kw_audit_chain {
    int64_t records;   /* records fed */
    int64_t first_bad; /* 0 = none yet */
    const char *why;   /* static text explaining first_bad */
    int64_t last_seq;
    uint8_t last_hash[KW_AUDIT_HASH_LEN];
} kw_audit_chain_t;

void kw_audit_chain_init(kw_audit_chain_t *c);
/* Check r against the records fed before it: seq follows, prev_hash links to the previous
 * record's hash, hash matches the content. */
void kw_audit_chain_feed(kw_audit_chain_t *c, const kw_audit_rec_t *r);
/* Compare the end of the chain with the head keyward recorded ("<seq>:<hex>" text, NULL
 * when there is none), so that records removed or added at the end are caught too. */
void kw_audit_chain_end(kw_audit_chain_t *c, const char *head);

/* Append a record inside the caller's store transaction (store.h). target may be NULL;
 * detail (may be NULL) is consumed. The record follows the head keyward recorded, so
 * records removed behind its back leave a visible gap. Any failure is KW_ESTORE ("audit
 * trail unavailable"), so the caller rolls the change back and answers 503. */
struct kw_store;
int kw_audit_append(struct kw_store *s, const char *actor, const char *action, const char *target,
                    const char *outcome, json_t *detail, int64_t now, kw_err_t *err);

/* Verify the whole trail in one read snapshot. */
typedef struct kw_audit_verdict {
    int ok;
    int64_t records;
    int64_t first_bad;                    /* 0 = none */
    const char *why;                      /* static; NULL when ok */
    char head[2 * KW_AUDIT_HASH_LEN + 1]; /* hash of the last record, "" when empty */
} kw_audit_verdict_t;
int kw_audit_verify(struct kw_store *s, kw_audit_verdict_t *out, kw_err_t *err);

/* ---- archive (audit_archive.c) ---- */
#define KW_AUDIT_CHECKPOINT_META                                                                   \
    "audit_checkpoint" /* "<seq>:<hex hash>" of the last                                           \
                          archived record; "_sig": it sealed */
/* "<seq>:<hex>" into its parts; 0 or -1. */
int kw_audit_head_parse(const char *s, int64_t *seq, uint8_t h[KW_AUDIT_HASH_LEN]);
/* The checkpoint verification starts from: *seq = 0 when there is none; *forged = 1 when
 * its signature does not open under the store's secrets key (kw_store_seal). */
int kw_audit_checkpoint_load(struct kw_store *s, int64_t *seq, uint8_t hash[KW_AUDIT_HASH_LEN],
                             int *forged, kw_err_t *err);
/* Inside the caller's transaction: verify the whole trail (KW_ECONFLICT when it does not),
 * take at most max records with at < before (never the last record of the trail), delete
 * them and record a signed checkpoint at the last one. *out: the archived records (caller
 * frees with kw_audit_rec_array_free), *n may be 0. What *out and *n held (NULL and 0 the
 * first time) is freed first: a transaction run again (kw_lc_tx) needs no reset. */
int kw_audit_archive(struct kw_store *s, int64_t before, size_t max, kw_audit_rec_t **out,
                     size_t *n, kw_err_t *err);

#endif
