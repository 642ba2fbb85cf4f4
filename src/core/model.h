/* model.h - the domain records of SPEC §2 as plain structs, shared by core, store and
 * server. Variable-length fields are owned heap strings (JSON text where the field is a
 * list or object); kw_*_clear() frees them. No secret is ever held in these records. */
#ifndef KW_MODEL_H
#define KW_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "key.h"
#include "util.h"

#define KW_NAME_MAX 64 /* policy names */
#define KW_REASON_MAX 256
#define KW_MAX_THRESHOLDS 8

typedef enum { KW_KEY_ACTIVE = 0, KW_KEY_EXPIRED, KW_KEY_REVOKED } kw_key_state_t;

typedef struct kw_policy {
    char name[KW_NAME_MAX];
    int64_t default_lifetime; /* seconds, > 0 */
    int64_t max_lifetime;     /* seconds, > 0 */
    int allow_never_expire;
    int renewable;
    int renewal_requires_approval;
    int64_t thresholds[KW_MAX_THRESHOLDS]; /* seconds, sorted descending */
    size_t nthresholds;
    int64_t max_roll_overlap; /* seconds */
    int64_t token_lifetime;   /* seconds: OAuth2 access tokens (SPEC §13), 1..86400 */
    int64_t created_at, updated_at;
} kw_policy_t;

/* The `default` policy's values from SPEC §2. */
void kw_policy_defaults(kw_policy_t *p, const char *name);

typedef struct kw_cred {
    int64_t seq;         /* store row number: list order and cursor */
    char id[KW_ID_MAX];  /* cred_... */
    char *name;          /* owned, never NULL once valid */
    char *owner;         /* owned, may be NULL */
    char *scopes_json;   /* owned JSON array of strings, "[]" if none */
    char *cidrs_json;    /* owned JSON array of canonical CIDR strings */
    char *metadata_json; /* owned JSON object, "{}" if none */
    char *contacts_json; /* owned JSON array, "[]" if none */
    char policy[KW_NAME_MAX];
    char prefix[KW_PREFIX_MAX + 1];
    int disabled;
    int64_t created_at, updated_at;
    int64_t deleted_at; /* 0 unless DELETEd; deleted credentials are hidden */
} kw_cred_t;

/* Free the owned strings of c and zero it. NULL is allowed. */
void kw_cred_clear(kw_cred_t *c);
/* Free an array of n credentials returned by the store. NULL is allowed. */
void kw_cred_array_free(kw_cred_t *a, size_t n);
/* Deep copy src into dst (dst is overwritten, not freed). Returns 0 or KW_ENOMEM. */
int kw_cred_copy(kw_cred_t *dst, const kw_cred_t *src);

typedef struct kw_keyrec {
    int64_t seq;
    char id[KW_ID_MAX]; /* key_... */
    char cred_id[KW_ID_MAX];
    int slot; /* 1 primary, 2 secondary */
    int live; /* 1 while it occupies its slot (not revoked, not
                 replaced after expiry) */
    char hint[KW_HINT_MAX];
    uint8_t digest[KW_DIGEST_LEN];
    int64_t created_at;
    int64_t expires_at; /* 0 = never */
    int64_t revoked_at; /* 0 = not revoked */
    char revoke_reason[KW_REASON_MAX];
    int64_t last_used_at; /* 0 = never used */
    int64_t use_count;
} kw_keyrec_t;

kw_key_state_t kw_keyrec_state(const kw_keyrec_t *k, int64_t now);
const char *kw_key_state_name(kw_key_state_t s);

/* Usage to write back: use_count += delta, last_used_at = max(last_used_at, last_used). */
typedef struct kw_usage {
    char key_id[KW_ID_MAX];
    uint8_t digest[KW_DIGEST_LEN]; /* lets the index take the usage back on failure */
    int64_t delta;
    int64_t last_used;
} kw_usage_t;

/* ---- audit records (the trail's rules and its append: audit.h) ---- */

#define KW_AUDIT_HASH_LEN 32
#define KW_AUDIT_FIELD_MAX 80

typedef struct kw_audit_rec {
    int64_t seq;                      /* 1, 2, 3... without gaps */
    int64_t at;                       /* unix seconds */
    char actor[KW_AUDIT_FIELD_MAX];   /* principal credential id, "system", "anonymous" */
    char action[KW_AUDIT_FIELD_MAX];  /* "credential.create", "key.invalidate"... */
    char target[KW_AUDIT_FIELD_MAX];  /* id or policy name; "" = none (stored NULL) */
    char outcome[KW_AUDIT_FIELD_MAX]; /* "ok" or "denied" */
    char *detail;                     /* owned compact JSON object text; NULL = none */
    int has_prev;                     /* 0 for the first record (prev_hash NULL) */
    uint8_t prev_hash[KW_AUDIT_HASH_LEN];
    uint8_t hash[KW_AUDIT_HASH_LEN];
} kw_audit_rec_t;

/* Free r->detail and zero r (NULL allowed); free an array of n records. */
void kw_audit_rec_clear(kw_audit_rec_t *r);
void kw_audit_rec_array_free(kw_audit_rec_t *a, size_t n);

/* ---- renewal requests (SPEC §2, §5; the workflow: renewal.h) ----
 * A request to extend one key, decided by an approver when the key's policy says
 * renewal_requires_approval. No secret is ever held. */

#define KW_REN_STATE_MAX 12

typedef struct kw_renewal {
    char id[KW_ID_MAX]; /* ren_... */
    char key_id[KW_ID_MAX];
    char requested_by[KW_ID_MAX]; /* principal credential id */
    int64_t extend_by;            /* seconds; 0 when expires_at was asked for */
    int64_t expires_at;           /* requested expiry; 0 when extend_by was asked for */
    char reason[KW_REASON_MAX];   /* "" = none */
    char state[KW_REN_STATE_MAX]; /* pending | approved | rejected | cancelled */
    char decided_by[KW_ID_MAX];   /* "" while pending; "system" for a cancellation */
    int64_t decided_at;           /* 0 while pending */
    char note[KW_REASON_MAX];     /* "" = none */
    int64_t created_at;
} kw_renewal_t;

/* What a renew call asks for: exactly one of extend_by (> 0) or expires_at (> 0). */
typedef struct kw_renew_in {
    int64_t extend_by;
    int64_t expires_at;
    const char *reason; /* NULL = none */
} kw_renew_in_t;

#endif
