/* index.h - the in-memory verification index (SPEC §4): digest -> key state, with each
 * key's credential facts (disabled, scopes, CIDRs, warning window).
 *
 * Verification never touches the store and takes no lock: it runs in an epoch read
 * section. Credential facts are immutable snapshots (kw_icred_t): a verify result keeps
 * the read section until released, so a writer can publish a new snapshot without waiting
 * and frees the old one after a grace period.
 * Usage (use_count, last_used_at) is counted in the entries and drained in batches by
 * kw_index_drain_usage() for the store. Revoked and expired keys stay until purged by
 * retention so callers learn why a key failed. */
#ifndef KW_INDEX_H
#define KW_INDEX_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "cidr.h"
#include "err.h"
#include "model.h"

/* Verification outcomes, in the order they are checked (SPEC §4). */
#define KW_VERIFY_CODES(X)                                                                         \
    X(MALFORMED, 401, "Authentication failed: malformed API key")                                  \
    X(NOT_FOUND, 401, "Authentication failed: unknown API key")                                    \
    X(REVOKED, 401, "Authentication failed: API key has been invalidated")                         \
    X(EXPIRED, 401, "Authentication Failed \xe2\x80\x93 Expired API Key")                          \
    X(DISABLED, 401, "Authentication failed: credential is disabled")                              \
    X(FORBIDDEN_IP, 403, "Forbidden: client address not allowed for this key")                     \
    X(FORBIDDEN_SCOPE, 403, "Forbidden: API key lacks scope '%s'")                                 \
    X(VALID, 200, "OK")

typedef enum {
#define KW__V(name, http, msg) KW_V_##name,
    KW_VERIFY_CODES(KW__V)
#undef KW__V
} kw_verify_code_t;

const char *kw_verify_code_name(kw_verify_code_t c);
int kw_verify_http_status(kw_verify_code_t c);
/* The SPEC message; for FORBIDDEN_SCOPE it names scope. Writes into out (NUL-terminated,
 * truncated to n) and returns out. */
const char *kw_verify_message(kw_verify_code_t c, const char *scope, char *out, size_t n);

/* A credential's scopes and CIDRs, shared by every snapshot with the same texts (most
 * credentials share a few scope sets): one allocation holding the scope pointers, the CIDRs
 * and every string. Immutable once published; freed after a grace period when the last
 * snapshot using it is replaced. */
typedef struct kw_ifacts {
    char **scopes;     /* nscopes strings */
    char *scopes_json; /* JSON array text, for verify answers */
    char *scopes_hdr;  /* space-separated, for the Keyward-Scopes header */
    kw_cidr_t *cidrs;
    uint32_t nscopes;
    uint32_t ncidrs;
    /* writers only: the index's table of facts by text */
    struct kw_ifacts *next;
    const char *cidrs_text;
    uint64_t hash;
    size_t refs; /* snapshots using it */
} kw_ifacts_t;

/* Immutable credential facts shared by a credential's index entries: one small allocation
 * (id inline). Readers reach it from the key's entry; it is freed after a grace period once
 * replaced. */
typedef struct kw_icred {
    const kw_ifacts_t *facts;
    struct kw_ipolicy *policy; /* shared per policy name; owned by the index */
    uint32_t first;            /* writers only: the credential's entries (entry refs) */
    uint32_t mark;             /* writers only: purge bookkeeping */
    uint8_t disabled;
    uint8_t deleted;
    char id[]; /* NUL-terminated */
} kw_icred_t;

/* A policy's facts the verify path needs; updated in place when the policy changes. */
typedef struct kw_ipolicy {
    char name[KW_NAME_MAX];
    _Atomic int64_t warn_window; /* seconds: the policy's first (largest) alert threshold */
    /* seconds: the policy's OAuth2 access token lifetime (SPEC §13) */
    _Atomic int64_t token_lifetime;
    struct kw_ipolicy *next;
    unsigned idx; /* its index in the index's policy array (0: none, reached via snapshots) */
} kw_ipolicy_t;

typedef struct kw_index kw_index_t;

typedef struct kw_verify_req {
    const char *key;
    size_t key_len;
    const char *scope; /* NULL = no scope required */
    size_t scope_len;
    const kw_ip_t *ip; /* NULL = no address given */
    int64_t now;
} kw_verify_req_t;

/* A verify result. When the key was found (cred != NULL) the result holds the index's
 * read section: cred and key_id stay valid, unchanged, until kw_verify_res_release(),
 * which must be called soon (writers' grace periods wait for it) and before the same
 * thread calls any index writer (that would wait for itself: it aborts instead). */
typedef struct kw_verify_res {
    kw_verify_code_t code;
    const kw_icred_t *cred; /* NULL unless the key was found */
    const char *key_id;     /* "" unless the key was found */
    int slot;
    int64_t expires_at; /* 0 = never */
    int warn;           /* 1 when expiry lies within the warning window */
    kw_index_t *ix_;    /* private: the read section held */
    unsigned tok_;
} kw_verify_res_t;

/* New empty index sized for about `expected` keys. NULL on allocation failure. */
kw_index_t *kw_index_new(size_t expected);
void kw_index_free(kw_index_t *ix); /* NULL allowed; no verify may be running */
/* Size the tables for about `keys` keys and `creds` credentials at once (before a load),
 * instead of growing by doubling. Never shrinks. Returns 0 or KW_ENOMEM (nothing changed). */
int kw_index_reserve(kw_index_t *ix, size_t keys, size_t creds);

/* Set the warning window of every credential under policy `name` (created if new).
 * Returns 0 or KW_ENOMEM. */
int kw_index_put_policy(kw_index_t *ix, const char *name, int64_t warn_window);

/* Publish credential facts (new or replacing); also sets its policy's warning window. scopes/cidrs
 * come from c's JSON text; an unparsable field is KW_EINVAL. Returns 0, KW_EINVAL or KW_ENOMEM. */
int kw_index_put_cred(kw_index_t *ix, const kw_cred_t *c, int64_t warn_window);

/* Insert a key, or update an existing entry with the same digest (expiry, revocation).
 * The key's credential must have been put first (KW_ENOTFOUND otherwise). */
int kw_index_put_key(kw_index_t *ix, const kw_keyrec_t *k);
/* kw_index_put_key for each of keys[0..n), the loads' way (kw_lc_load_index): the table
 * slots and credentials of all n are fetched into cache together (a key costs a few cache
 * misses, the rest of its insertion little). A key whose credential is missing is skipped;
 * *added counts the keys put. Returns 0, or the first error other than KW_ENOTFOUND (the
 * keys before it are in). */
int kw_index_put_keys(kw_index_t *ix, const kw_keyrec_t *keys, size_t n, size_t *added);

/* Verify per SPEC §4. Never blocks on the store. Counts a use for keys that were
 * presented and still usable (outcomes after EXPIRED). */
void kw_index_verify(kw_index_t *ix, const kw_verify_req_t *rq, kw_verify_res_t *res);
/* The same for a digest already computed (an access token names its key's digest,
 * core/token.h); count = 0 counts no use. */
void kw_index_verify_digest(kw_index_t *ix, const uint8_t digest[KW_DIGEST_LEN],
                            const kw_verify_req_t *rq, int count, kw_verify_res_t *res);
/* Set the token lifetime of policy `name` (created if new). Returns 0 or KW_ENOMEM. */
int kw_index_put_token_lifetime(kw_index_t *ix, const char *name, int64_t secs);
/* Ends the read section of a result (idempotent; a zeroed result is allowed). */
void kw_verify_res_release(kw_verify_res_t *res);

/* Usage not yet written to the store for this key, and its last use (0 if none). */
void kw_index_pending_usage(kw_index_t *ix, const uint8_t digest[KW_DIGEST_LEN], int64_t *pending,
                            int64_t *last_used);

/* Move counted usage out of the index: *out (malloc'd, caller frees) gets one record per
 * key used since the last drain; *n its length. Returns 0 or KW_ENOMEM (nothing lost:
 * counts stay in the index). */
int kw_index_drain_usage(kw_index_t *ix, kw_usage_t **out, size_t *n);
/* Give back usage that could not be written (store failure), so it is retried. */
void kw_index_restore_usage(kw_index_t *ix, const kw_usage_t *u, size_t n);

/* Drop keys revoked or expired before retain_since (and not used since the last drain).
 * Returns how many were dropped. */
size_t kw_index_purge(kw_index_t *ix, int64_t retain_since);

size_t kw_index_count(kw_index_t *ix);

/* What kw_index_walk shows of one key. cred and policy are valid only during the callback. */
typedef struct kw_ikey_view {
    const kw_icred_t *cred;
    const kw_ipolicy_t *policy;
    int64_t expires_at; /* 0 = never */
    int revoked;        /* 1 when revoked (at any time) */
    int disabled;       /* 1 when its credential is disabled */
} kw_ikey_view_t;
typedef void (*kw_index_walk_cb)(void *ud, const kw_ikey_view_t *k);

/* Visit every key the index holds, for figures (/metrics), in allocation order and in short
 * read sections, so that a writer waits at most for one chunk, never for the whole walk. Keys
 * added or purged meanwhile may be missed or seen in either state: good for figures, not for
 * decisions. cb must not call any index function. Takes the writers' lock only to copy the
 * slab list; allocates nothing. Not from a thread inside a read section. */
void kw_index_walk(kw_index_t *ix, kw_index_walk_cb cb, void *ud);

#endif
