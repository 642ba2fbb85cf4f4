/* expstats.h - figures about key expiry for /metrics, from one walk of the verification
 * index: keys by state, by policy and by time-to-expiry bucket, usable keys within each
 * alert window, and the credentials that need attention (a usable key inside its policy's
 * first alert threshold), soonest first, capped. Pure: no I/O, no locks, no clock; the caller
 * walks the index, feeds every key to kw_expstats_add and renders the result.
 *
 * Memory: bounded by the cap (a heap of 2*cap candidates) plus 8 bytes per key inside its
 * first threshold (to count distinct credentials exactly). */
#ifndef KW_EXPSTATS_H
#define KW_EXPSTATS_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"

/* Time-to-expiry buckets of usable keys, disjoint: expired (not revoked), then expiring
 * within 1d, 7d, 14d, 30d, 90d, later, and never. */
#define KW_EXP_BUCKETS(X)                                                                          \
    X(EXPIRED, "expired", 0)                                                                       \
    X(D1, "1d", 86400)                                                                             \
    X(D7, "7d", 7 * 86400)                                                                         \
    X(D14, "14d", 14 * 86400)                                                                      \
    X(D30, "30d", 30 * 86400)                                                                      \
    X(D90, "90d", 90 * 86400)                                                                      \
    X(LATER, "later", 0)                                                                           \
    X(NEVER, "never", 0)

enum {
#define KW__B(name, label, secs) KW_EXPB_##name,
    KW_EXP_BUCKETS(KW__B)
#undef KW__B
        KW_EXPB_N
};

const char *kw_expstats_bucket_name(int b);

#define KW_EXP_WINDOWS 16   /* distinct alert thresholds reported */
#define KW_EXP_POLICIES 256 /* policies reported by name; more are summed under "" */

typedef struct kw_expstats_pol {
    char name[KW_NAME_MAX];
    int64_t active, expired, revoked;
} kw_expstats_pol_t;

/* A credential that needs attention: the soonest expiry among its keys inside the first
 * threshold. */
typedef struct kw_expstats_cred {
    int64_t expires_at;
    char id[KW_ID_MAX];
} kw_expstats_cred_t;

typedef struct kw_expstats {
    /* in (kw_expstats_init) */
    int64_t now;
    size_t cap;
    size_t nwindows;
    int64_t window[KW_EXP_WINDOWS];
    /* out */
    int64_t active, expired, revoked; /* keys by state */
    int64_t bucket[KW_EXPB_N];
    int64_t expiring[KW_EXP_WINDOWS]; /* usable keys with now < expires_at <= now + window[i] */
    kw_expstats_pol_t pols[KW_EXP_POLICIES];
    size_t npols;
    int64_t attention_keys;  /* usable keys inside their policy's first threshold */
    size_t attention_creds;  /* distinct credentials among them (after finish) */
    kw_expstats_cred_t *top; /* after finish: at most cap, soonest first */
    size_t ntop;
    size_t omitted; /* attention_creds - ntop */
    int oom;        /* an allocation failed: counts are right, the attention list may be short */
    /* private */
    kw_expstats_cred_t *heap_; /* max-heap on expires_at, at most 2*cap */
    size_t nheap_;
    uint64_t *hashes_; /* credential id hashes of attention keys */
    size_t nhash_, hashcap_;
    kw_expstats_pol_t *last_pol_; /* the previous key's policy */
} kw_expstats_t;

/* Start empty. windows: the alert thresholds to count (seconds, > 0), duplicates dropped,
 * at most KW_EXP_WINDOWS kept. cap: how many attention credentials to keep (0 = none). */
void kw_expstats_init(kw_expstats_t *st, int64_t now, size_t cap, const int64_t *windows,
                      size_t nwindows);
/* Count one key. policy may be NULL (counted under ""); warn_window is the policy's
 * first alert threshold (0 = none); expires_at 0 = never. */
void kw_expstats_add(kw_expstats_t *st, const char *cred_id, const char *policy,
                     int64_t warn_window, int64_t expires_at, int revoked);
/* Settle the attention list: one entry per credential (its soonest key), soonest first, at
 * most cap; attention_creds and omitted set. Call once. */
void kw_expstats_finish(kw_expstats_t *st);
void kw_expstats_free(kw_expstats_t *st); /* frees what init/add/finish allocated */

#endif
