/* store.h - the one interface to durable state. Callers (src/core/lifecycle.c, the server)
 * never see SQL; a backend (sqlite.c, postgres.c) implements kw_store_ops_t.
 *
 * Transactions: every write happens between kw_store_begin() and kw_store_commit() /
 * kw_store_rollback(). begin takes the store's writer lock (one writer at a time) and opens
 * an IMMEDIATE transaction; reads made by the thread holding it see its own writes. Reads
 * made by any other thread use a separate read connection and see only committed data.
 * Everything acknowledged to a client is committed with synchronous=FULL.
 *
 * Ownership: out-params are written only on success; arrays returned via **out are owned by
 * the caller (free with kw_cred_array_free / free()). Errors: 0 or KW_E*, detail in *err.
 * KW_ESTORE means the backend failed (disk full, I/O error, busy): the transaction is
 * rolled back by the caller and nothing was changed. Every write (meta_set, *_put,
 * *_insert, *_update) must be made by the thread holding the transaction; elsewhere it is
 * refused with KW_EINTERNAL. begin from a thread already holding one is KW_EINTERNAL too
 * (no nesting). */
#ifndef KW_STORE_H
#define KW_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../core/err.h"
#include "../core/model.h"
#include "../core/audit.h"

typedef struct kw_store kw_store_t;

/* The backend a store URL names, read from its scheme alone (the one parser of it:
 * kw_store_open and the --store setting both use it): "sqlite:PATH" or "postgresql://..."
 * / "postgres://...". rest (may be NULL) receives what the backend opens: PATH for SQLite
 * (possibly ""), the whole URL for PostgreSQL (libpq reads it). Inline: no backend linked. */
typedef enum { KW_STORE_UNKNOWN = 0, KW_STORE_SQLITE, KW_STORE_POSTGRESQL } kw_store_scheme_t;
static inline kw_store_scheme_t kw_store_scheme(const char *url, const char **rest)
{
    kw_store_scheme_t k = KW_STORE_UNKNOWN;
    const char *r = NULL;
    if (strncmp(url, "sqlite:", 7) == 0)
        k = KW_STORE_SQLITE, r = url + 7;
    else if (strncmp(url, "postgresql://", 13) == 0 || strncmp(url, "postgres://", 11) == 0)
        k = KW_STORE_POSTGRESQL, r = url;
    if (rest)
        *rest = r;
    return k;
}

/* url: "sqlite:PATH" (PATH may be relative). Creates the file, applies schema migrations
 * (versioned, in a table schema_version), and ensures the `default` policy exists. */
int kw_store_open(const char *url, kw_store_t **out, kw_err_t *err);
void kw_store_close(kw_store_t *s); /* NULL allowed */

/* The SQLite file path, or NULL for a non-file store. Owned by the store. */
const char *kw_store_file(const kw_store_t *s);
/* Into out (n bytes): the path `configured` when not empty, else a file beside the SQLite
 * file (keyward.db -> keyward.SUFFIX; a name without .db gets .SUFFIX appended), else
 * keyward.SUFFIX for a non-file store. */
void kw_store_file_beside(const kw_store_t *s, const char *configured, const char *suffix,
                          char *out, size_t n);

int kw_store_begin(kw_store_t *s, kw_err_t *err);
int kw_store_commit(kw_store_t *s, kw_err_t *err); /* on failure it rolls back itself */
void kw_store_rollback(kw_store_t *s);             /* no-op when no transaction */

/* Savepoints, for group commit: several requests' changes in one transaction, each between
 * kw_store_savepoint and kw_store_savepoint_end, so one that fails is undone alone. Only
 * the thread holding the transaction; no nesting (KW_EINTERNAL). savepoint_end with
 * keep = 1 keeps the changes made since the savepoint, keep = 0 undoes them (also after a
 * backend error in them, when SQLite rolled back only the failed statement). Returns 0 when
 * the transaction is still usable, KW_ESTORE when it is lost (the backend aborted it, or
 * keep = 1 after a backend error): the caller must roll back and redo the other changes.
 * kw_store_savepoint is KW_ESTORE too once the transaction is lost. */
int kw_store_savepoint(kw_store_t *s, kw_err_t *err);
int kw_store_savepoint_end(kw_store_t *s, int keep, kw_err_t *err);
/* Group commit's promise (kw_store_defer_writes(s, 1), core/lifecycle.c): after each op
 * between its savepoints it calls kw_store_sync before kw_store_savepoint_end. Inside such
 * an op a backend may then send the inserts of a credential, key, event or audit record and
 * the meta write without waiting for them (PostgreSQL: one libpq pipeline, answered with
 * the op's next read or its sync); the record passed must stay valid until then (its seq is
 * filled in). kw_store_sync returns 0 or the first such write's failure, mapped as the
 * write itself would have been (KW_ECONFLICT field slot...), also when a later read of the
 * op already failed on it (that read's own error may misname the cause): the op must then
 * end with keep = 0, with this error. Without the promise every write answers at once;
 * SQLite always does. */
void kw_store_defer_writes(kw_store_t *s, int on);
int kw_store_sync(kw_store_t *s, kw_err_t *err);

/* Small key/value table for service state (e.g. "admin_bootstrapped"). value_out gets a
 * malloc'd string owned by the caller; KW_ENOTFOUND if absent. meta_set needs a tx. */
int kw_store_meta_get(kw_store_t *s, const char *key, char **value_out, kw_err_t *err);
int kw_store_meta_set(kw_store_t *s, const char *key, const char *value, kw_err_t *err);

/* Policies. put with create=1 inserts (KW_ECONFLICT if the name exists); create=0 updates
 * (KW_ENOTFOUND if absent). list returns all, by name. */
int kw_store_policy_get(kw_store_t *s, const char *name, kw_policy_t *out, kw_err_t *err);
int kw_store_policy_put(kw_store_t *s, const kw_policy_t *p, int create, kw_err_t *err);
int kw_store_policy_list(kw_store_t *s, kw_policy_t **out, size_t *n, kw_err_t *err);

/* Credentials. insert sets c->seq. get returns KW_ENOTFOUND for unknown or deleted ids.
 * update writes every mutable field (name, owner, scopes, cidrs, metadata, contacts,
 * policy, disabled, updated_at, deleted_at); KW_ENOTFOUND if the id is unknown.
 * insert: KW_ECONFLICT if the id exists; insert/update: KW_EINVAL (field "policy") if the
 * policy does not exist. NULL JSON fields are stored as "[]" / "{}"; owner may be NULL. */
int kw_store_cred_insert(kw_store_t *s, kw_cred_t *c, kw_err_t *err);
int kw_store_cred_update(kw_store_t *s, const kw_cred_t *c, kw_err_t *err);
int kw_store_cred_get(kw_store_t *s, const char *id, kw_cred_t *out, kw_err_t *err);

typedef struct kw_cred_filter {
    const char *owner;       /* exact match, NULL = any */
    int64_t expiring_before; /* 0 = no filter; else has a live key with
                                now < expires_at <= expiring_before */
    int64_t now;
    int64_t after_seq; /* cursor: only seq > after_seq */
    size_t limit;      /* >= 1 */
} kw_cred_filter_t;

/* Non-deleted credentials matching f, ordered by seq ascending, at most f->limit. */
int kw_store_cred_list(kw_store_t *s, const kw_cred_filter_t *f, kw_cred_t **out, size_t *n,
                       kw_err_t *err);

/* Keys. insert sets k->seq and enforces the slot rule in the schema: at most one live key
 * per (credential, slot) and slot in (1,2); a violation is KW_ECONFLICT.
 * update writes expires_at, revoked_at, revoke_reason and live (KW_ECONFLICT if making it
 * live would collide, KW_ENOTFOUND for an unknown id). insert of a key for an unknown
 * credential is KW_ENOTFOUND (field "cred_id"). */
int kw_store_key_insert(kw_store_t *s, kw_keyrec_t *k, kw_err_t *err);
int kw_store_key_update(kw_store_t *s, const kw_keyrec_t *k, kw_err_t *err);
int kw_store_key_get(kw_store_t *s, const char *id, kw_keyrec_t *out, kw_err_t *err);
/* All keys of a credential, newest first (seq descending). *out malloc'd, caller frees;
 * no keys (or an unknown credential) gives *out = NULL, *n = 0. */
int kw_store_key_list_cred(kw_store_t *s, const char *cred_id, kw_keyrec_t **out, size_t *n,
                           kw_err_t *err);
/* Usable keys (not revoked, live, now < expires_at <= until) of non-deleted credentials,
 * soonest first, then seq; after (expires_at, seq) cursor pair when after_exp > 0. */
int kw_store_key_expiring(kw_store_t *s, int64_t now, int64_t until, int64_t after_exp,
                          int64_t after_seq, size_t limit, kw_keyrec_t **out, size_t *n,
                          kw_err_t *err);

/* Apply usage counters in one transaction of its own (must not be called inside one).
 * Unknown key ids are ignored. */
int kw_store_usage_apply(kw_store_t *s, const kw_usage_t *u, size_t n, kw_err_t *err);

/* Append an event to the outbox (SPEC §6), inside the caller's transaction.
 * payload_json is the full event object. */
int kw_store_event_insert(kw_store_t *s, const char *id, const char *type, int64_t occurred_at,
                          const char *payload_json, kw_err_t *err);

/* Load state for the verification index, in two sequential passes of one read snapshot:
 * cb(ud, c, NULL, 0) once per credential (deleted ones too, so their revoked keys keep
 * answering REVOKED), then cb(ud, NULL, &key, 1) once per key, skipping keys revoked or
 * expired before retain_since. Both in store order (no sort); every key's credential row
 * comes before it (a key whose credential row is missing still comes: skip it). A non-zero
 * return from cb stops and is returned. c and key are valid only during the call (copy
 * with kw_cred_copy to keep); cb must not call the store. Other threads' reads wait for
 * the read connection until it returns. */
typedef int (*kw_store_load_cb)(void *ud, const kw_cred_t *c, const kw_keyrec_t *keys,
                                size_t nkeys);
int kw_store_load_all(kw_store_t *s, int64_t retain_since, kw_store_load_cb cb, void *ud,
                      kw_err_t *err);
/* kw_store_load_all for the verification index (kw_lc_load_index): the credentials carry
 * no name, owner, metadata or contacts (NULL: not read from the store, nothing to open),
 * the keys no hint, revoke_reason (""), created_at or use_count (0). */
int kw_store_load_index(kw_store_t *s, int64_t retain_since, kw_store_load_cb cb, void *ud,
                        kw_err_t *err);
/* Rows in the credentials and keys tables (all of them, for sizing the index before
 * kw_store_load_all). */
int kw_store_counts(kw_store_t *s, int64_t *creds, int64_t *keys, kw_err_t *err);

/* Audit trail (SPEC §7; core/audit.c computes the hashes). insert needs a transaction
 * and refuses a seq that exists. head: the last record's seq and hash, KW_ENOTFOUND when
 * the trail is empty. */
int kw_store_audit_insert(kw_store_t *s, const kw_audit_rec_t *r, kw_err_t *err);
int kw_store_audit_head(kw_store_t *s, int64_t *seq, uint8_t hash[KW_AUDIT_HASH_LEN],
                        kw_err_t *err);

typedef struct kw_audit_filter {
    const char *actor;  /* exact, NULL = any */
    const char *target; /* exact, NULL = any */
    int ascending;      /* 1 oldest first, 0 newest first */
    int64_t cursor;     /* 0 = from the start; else seq > cursor (asc) / < (desc) */
    size_t limit;       /* >= 1 */
} kw_audit_filter_t;
/* Records matching f; *out malloc'd (kw_audit_rec_array_free), NULL when none. */
int kw_store_audit_list(kw_store_t *s, const kw_audit_filter_t *f, kw_audit_rec_t **out, size_t *n,
                        kw_err_t *err);
/* Every record in seq order in one read snapshot; *meta_out gets the meta value meta_key
 * read in that same snapshot (malloc'd, NULL if absent). A non-zero cb return stops. */
typedef int (*kw_store_audit_cb)(void *ud, const kw_audit_rec_t *r);
int kw_store_audit_scan(kw_store_t *s, kw_store_audit_cb cb, void *ud, const char *meta_key,
                        char **meta_out, kw_err_t *err);

/* Renewal requests. insert (KW_ECONFLICT for an existing id) and update (state,
 * decided_by, decided_at, note; KW_ENOTFOUND for an unknown id) need a transaction. */
int kw_store_renewal_insert(kw_store_t *s, const kw_renewal_t *r, kw_err_t *err);
int kw_store_renewal_update(kw_store_t *s, const kw_renewal_t *r, kw_err_t *err);
int kw_store_renewal_get(kw_store_t *s, const char *id, kw_renewal_t *out, kw_err_t *err);

typedef struct kw_renewal_filter {
    const char *state;     /* exact, NULL = any */
    const char *key_id;    /* exact, NULL = any */
    int64_t after_created; /* cursor (created_at, id): rows after it; 0 = start */
    const char *after_id;
    size_t limit; /* >= 1 */
} kw_renewal_filter_t;
/* Oldest first (created_at, id). *out malloc'd (free()), NULL when none. */
int kw_store_renewal_list(kw_store_t *s, const kw_renewal_filter_t *f, kw_renewal_t **out,
                          size_t *n, kw_err_t *err);
/* Pending requests whose key is no longer usable (revoked, or expired at now). */
int kw_store_renewal_stale(kw_store_t *s, int64_t now, size_t limit, kw_renewal_t **out, size_t *n,
                           kw_err_t *err);

/* Backend vtable: store.c dispatches every kw_store_* call through it. The definition
 * (one member per function above) and the `struct kw_store` base that backends embed live
 * in store_impl.h; callers never need them. */
typedef struct kw_store_ops kw_store_ops_t;

/* ---- secrets at rest (store_seal.c, SPEC section 3) ---- */
struct kw_seal;
/* From now on, webhook signing secrets in credential contacts are sealed under seal (the
 * credential id as associated data) before any backend writes them and opened after it
 * reads them. seal is not owned and must outlive the store; NULL = clear text. */
void kw_store_set_seal(kw_store_t *s, const struct kw_seal *seal);
/* Start-up pass: seal every secret stored in clear (or under an older key), then scrub
 * the file (VACUUM, empty WAL). *resealed = credentials rewritten. */
int kw_store_seal_migrate(kw_store_t *s, size_t *resealed, kw_err_t *err);
/* *any_sealed = 1 when some credential holds a sealed secret (a missing key file is then
 * an error, not a fresh start). */
int kw_store_seal_scan(kw_store_t *s, int *any_sealed, kw_err_t *err);

/* Retention (store_retention.c; SQL in sqlite_retention.c, postgres_ext.c): delete at most `batch`
 * each of the events (with their deliveries; none with a delivery still pending), alert records and
 * mail quotas older than `before`. Needs the caller's transaction; *deleted = rows removed (0:
 * nothing left). The audit trail is not touched. */
int kw_store_prune(kw_store_t *s, int64_t before, size_t batch, size_t *deleted, kw_err_t *err);

/* The seal given by kw_store_set_seal, or NULL. */
const struct kw_seal *kw_store_seal(const kw_store_t *s);
/* Delete the audit records with seq <= upto (audit_archive.c, after export; needs the
 * caller's transaction). store_retention.c. */
int kw_store_audit_cut(kw_store_t *s, int64_t upto, kw_err_t *err);

#endif
