/* renewal.h - renewal requests (SPEC §2, §5): a request to extend one key, decided by an
 * approver when the key's policy says renewal_requires_approval. The record is plain data
 * shared by the store and lifecycle; the rules live in renewal.c. No secret is ever held. */
#ifndef KW_RENEWAL_H
#define KW_RENEWAL_H

#include <stdint.h>

#include "model.h"

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
