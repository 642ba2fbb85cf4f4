/* store_copy.c - `keyward store copy FROM_URL TO_URL`: reads every policy, credential (deleted
 * ones too), key, renewal, outbox event with its deliveries, alert record and audit record
 * (and watched credential with its alert records, and revoked OAuth2 token; console sessions
 * are not copied: users sign in again) from FROM through the store API and writes them to TO
 * (which must hold no credentials yet) in one transaction; then verifies the audit chain at
 * TO. Never prints a value. */
#include "store_copy.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/audit.h"
#include "core/util.h"
#include "store/store.h"
#include "store/store_notify.h"
#include "store/store_oauth.h"
#include "store/store_watched.h"

typedef struct exp_key {
    char id[KW_ID_MAX];
    int64_t expires_at;
} exp_key_t;

typedef struct copy_ctx {
    kw_store_t *to;
    kw_err_t *err;
    int64_t creds, keys, alerts;
    exp_key_t *exp; /* keys with an expiry: their alert records are copied after the scan */
    size_t nexp, capexp;
} copy_ctx_t;

/* load_all callback: each credential, then each key (with its alert records). */
static int copy_one(void *ud, const kw_cred_t *c, const kw_keyrec_t *keys, size_t nkeys)
{
    copy_ctx_t *x = ud;
    int rc = 0;
    if (c) {
        kw_cred_t cc = *c; /* insert sets seq only */
        rc = kw_store_cred_insert(x->to, &cc, x->err);
        x->creds += rc == 0;
    }
    for (size_t i = 0; rc == 0 && i < nkeys; i++) {
        kw_keyrec_t k = keys[i];
        rc = kw_store_key_insert(x->to, &k, x->err);
        x->keys += rc == 0;
        if (rc == 0 && k.expires_at) { /* the source store may not be called from here */
            if (x->nexp == x->capexp) {
                size_t ncap = x->capexp ? 2 * x->capexp : 1024;
                exp_key_t *g = realloc(x->exp, ncap * sizeof(*g));
                if (g == NULL)
                    return kw_err_set(x->err, KW_ENOMEM, NULL, "out of memory");
                x->exp = g;
                x->capexp = ncap;
            }
            snprintf(x->exp[x->nexp].id, KW_ID_MAX, "%s", k.id);
            x->exp[x->nexp++].expires_at = k.expires_at;
        }
    }
    return rc;
}

/* Thresholds already alerted (or skipped) for each key at its current expiry: without
 * them the destination's scheduler would raise them again. */
static int copy_alerts(kw_store_t *from, copy_ctx_t *x)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < x->nexp; i++) {
        int64_t done[32];
        size_t nd = 0;
        rc = kw_store_alert_done(from, x->exp[i].id, x->exp[i].expires_at, done, 32, &nd, x->err);
        for (size_t j = 0; rc == 0 && j < nd; j++)
            rc = kw_store_alert_record(x->to, x->exp[i].id, x->exp[i].expires_at, done[j], NULL,
                                       kw_now(), x->err);
        x->alerts += (int64_t)nd;
    }
    return rc;
}

static int copy_audit(void *ud, const kw_audit_rec_t *r)
{
    copy_ctx_t *x = ud;
    return kw_store_audit_insert(x->to, r, x->err);
}

static int copy_policies(kw_store_t *from, kw_store_t *to, kw_err_t *err)
{
    kw_policy_t *p = NULL;
    size_t n = 0;
    int rc = kw_store_policy_list(from, &p, &n, err);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        kw_policy_t have;
        int exists = kw_store_policy_get(to, p[i].name, &have, NULL) == 0;
        rc = kw_store_policy_put(to, &p[i], !exists, err);
    }
    free(p);
    return rc;
}

static int copy_renewals(kw_store_t *from, kw_store_t *to, kw_err_t *err)
{
    kw_renewal_filter_t f = {.limit = 500};
    char after[sizeof(((kw_renewal_t *)0)->id)] = "";
    for (;;) {
        kw_renewal_t *r = NULL;
        size_t n = 0;
        f.after_id = after;
        int rc = kw_store_renewal_list(from, &f, &r, &n, err);
        for (size_t i = 0; rc == 0 && i < n; i++)
            rc = kw_store_renewal_insert(to, &r[i], err);
        if (rc == 0 && n) {
            f.after_created = r[n - 1].created_at;
            snprintf(after, sizeof(after), "%s", r[n - 1].id);
        }
        free(r);
        if (rc || n < f.limit)
            return rc;
    }
}

/* Events oldest first, their fan-out state and per-channel deliveries. */
static int copy_events(kw_store_t *from, kw_store_t *to, int64_t *count, kw_err_t *err)
{
    kw_event_t *all = NULL, *unf = NULL;
    size_t nall = 0, cap = 0, nunf = 0;
    kw_event_filter_t f = {.limit = 500};
    int rc = 0;
    for (;;) { /* newest first, paged by seq */
        kw_event_t *e = NULL;
        size_t n = 0;
        if ((rc = kw_store_event_list(from, &f, &e, &n, err)) != 0)
            break;
        if (nall + n > cap) {
            cap = (nall + n) * 2;
            kw_event_t *g = realloc(all, cap * sizeof(*all));
            if (g == NULL) {
                kw_event_array_free(e, n);
                rc = kw_err_set(err, KW_ENOMEM, NULL, "out of memory");
                break;
            }
            all = g;
        }
        if (n)
            memcpy(all + nall, e, n * sizeof(*e));
        nall += n;
        free(e); /* payloads now owned by all */
        if (n < f.limit)
            break;
        f.before_seq = all[nall - 1].seq;
    }
    if (rc == 0)
        rc = kw_store_event_unfanned(from, 1000000, &unf, &nunf, err);
    for (size_t i = nall; rc == 0 && i-- > 0;) {
        kw_event_t *e = &all[i];
        int fanned = 1;
        rc = kw_store_event_insert(to, e->id, e->type, e->occurred_at, e->payload, err);
        for (size_t j = 0; j < nunf; j++)
            if (strcmp(unf[j].id, e->id) == 0)
                fanned = 0;
        if (rc || !fanned)
            continue;
        kw_delivery_t *d = NULL;
        size_t nd = 0;
        json_t *pl = json_loads(e->payload, 0, NULL);
        const char *cred = json_string_value(json_object_get(pl, "credential_id"));
        rc = kw_store_event_fanned(to, e->id, cred, e->occurred_at, err);
        json_decref(pl);
        if (rc == 0)
            rc = kw_store_delivery_list(from, e->id, &d, &nd, err);
        for (size_t j = 0; rc == 0 && j < nd; j++) {
            rc = kw_store_delivery_add(to, e->id, d[j].channel, d[j].created_at, err);
            if (rc == 0 && strcmp(d[j].state, "sending") == 0) /* in flight: due again */
                snprintf(d[j].state, sizeof(d[j].state), "pending");
            if (rc == 0)
                rc = kw_store_delivery_finish(to, &d[j], err);
        }
        kw_delivery_array_free(d, nd);
        (*count)++;
    }
    kw_event_array_free(all, nall);
    kw_event_array_free(unf, nunf);
    return rc;
}

/* pg2: watched credentials (sealed secrets as they are: same ids, same key file) with the
 * alert records of their current expiry; then the revoked OAuth2 tokens not yet expired. */
static int copy_watched(kw_store_t *from, kw_store_t *to, int64_t *count, kw_err_t *err)
{
    kw_watched_filter_t f = {.limit = 500};
    int rc = 0;
    for (;;) {
        kw_watched_t *a = NULL;
        size_t n = 0;
        if ((rc = kw_store_watched_list(from, &f, &a, &n, err)) != 0)
            return rc;
        for (size_t i = 0; rc == 0 && i < n; i++) {
            int64_t seq = a[i].seq, aexp = kw_watched_alert_expiry(&a[i]), done[32];
            size_t nd = 0;
            rc = kw_store_watched_insert(to, &a[i], err);
            if (rc == 0 && aexp)
                rc = kw_store_watched_alert_done(from, a[i].id, aexp, done, 32, &nd, err);
            for (size_t j = 0; rc == 0 && j < nd; j++)
                rc = kw_store_watched_alert_record(to, a[i].id, aexp, done[j], NULL, kw_now(), err);
            f.after_seq = seq;
            *count += rc == 0;
        }
        kw_watched_array_free(a, n);
        if (rc || n < f.limit)
            return rc;
    }
}

typedef struct tok_ctx {
    char (*id)[32];
    int64_t *exp;
    size_t n, cap;
} tok_ctx_t;

static int collect_token(void *ud, const char *token_id, int64_t exp)
{
    tok_ctx_t *t = ud;
    if (t->n == t->cap) {
        size_t ncap = t->cap ? 2 * t->cap : 256;
        char(*ni)[32] = realloc(t->id, ncap * sizeof(*ni));
        if (ni)
            t->id = ni;
        int64_t *ne = ni ? realloc(t->exp, ncap * sizeof(*ne)) : NULL;
        if (ne)
            t->exp = ne;
        if (ni == NULL || ne == NULL)
            return KW_ENOMEM;
        t->cap = ncap;
    }
    snprintf(t->id[t->n], sizeof(t->id[0]), "%s", token_id);
    t->exp[t->n++] = exp;
    return 0;
}

/* The token's client is not part of the read API: recorded as "" at the destination. */
static int copy_revoked_tokens(kw_store_t *from, kw_store_t *to, int64_t *count, kw_err_t *err)
{
    tok_ctx_t t = {0};
    int64_t now = kw_now();
    int rc = kw_store_token_revoked(from, now, collect_token, &t, err);
    if (rc == KW_ENOMEM)
        rc = kw_err_set(err, KW_ENOMEM, NULL, "out of memory");
    for (size_t i = 0; rc == 0 && i < t.n; i++)
        rc = kw_store_token_revoke(to, t.id[i], "", t.exp[i], now, err);
    if (rc == 0)
        *count = (int64_t)t.n;
    free(t.id);
    free(t.exp);
    return rc;
}

static int store_copy(const char *from_url, const char *to_url)
{
    kw_store_t *from = NULL, *to = NULL;
    kw_err_t e = {0};
    int64_t events = 0, ncreds = 0, nkeys = 0, nwatched = 0, ntokens = 0;
    copy_ctx_t x = {.err = &e};
    int rc = kw_store_open(from_url, &from, &e);
    if (rc == 0)
        rc = kw_store_open(to_url, &to, &e);
    if (rc)
        goto out;
    if ((rc = kw_store_counts(to, &ncreds, &nkeys, &e)) != 0)
        goto out;
    if (ncreds || nkeys) {
        rc = kw_err_set(&e, KW_ECONFLICT, "to", "the destination already holds credentials");
        goto out;
    }
    x.to = to;
    if ((rc = kw_store_begin(to, &e)) != 0)
        goto out;
    /* the OAuth2 token key (sealed; h_oauth.c): tokens issued before the copy stay valid */
    const char *meta[] = {"admin_bootstrapped", KW_AUDIT_HEAD_META, "oauth_token_key"};
    rc = copy_policies(from, to, &e);
    if (rc == 0)
        rc = kw_store_load_all(from, 0, copy_one, &x, &e);
    if (rc == 0)
        rc = copy_alerts(from, &x);
    if (rc == 0)
        rc = copy_renewals(from, to, &e);
    if (rc == 0)
        rc = copy_events(from, to, &events, &e);
    if (rc == 0)
        rc = copy_watched(from, to, &nwatched, &e);
    if (rc == 0)
        rc = copy_revoked_tokens(from, to, &ntokens, &e);
    char *ignored = NULL;
    if (rc == 0)
        rc = kw_store_audit_scan(from, copy_audit, &x, KW_AUDIT_HEAD_META, &ignored, &e);
    free(ignored);
    for (size_t i = 0; rc == 0 && i < sizeof(meta) / sizeof(meta[0]); i++) {
        char *v = NULL;
        int g = kw_store_meta_get(from, meta[i], &v, &e);
        if (g == 0)
            rc = kw_store_meta_set(to, meta[i], v, &e);
        else if (g != KW_ENOTFOUND)
            rc = g;
        free(v);
    }
    if (rc == 0)
        rc = kw_store_commit(to, &e);
    else
        kw_store_rollback(to);
    if (rc)
        goto out;
    kw_audit_verdict_t v;
    if ((rc = kw_audit_verify(to, &v, &e)) != 0)
        goto out;
    if (!v.ok) {
        rc = kw_err_set(&e, KW_ESTORE, NULL,
                        "copied, but the audit chain does not verify at the destination"
                        " (first bad record %lld: %s)",
                        (long long)v.first_bad, v.why ? v.why : "");
        goto out;
    }
    printf("copied %lld credentials, %lld keys, %lld events, %lld alert records, %lld audit"
           " records, %lld watched credentials, %lld revoked tokens; audit chain verified at the"
           " destination (head %s)\n",
           (long long)x.creds, (long long)x.keys, (long long)events, (long long)x.alerts,
           (long long)v.records, (long long)nwatched, (long long)ntokens, v.records ? v.head : "-");
out:
    if (rc)
        fprintf(stderr, "keyward: store copy: %s\n", e.msg[0] ? e.msg : kw_strerror(rc));
    free(x.exp);
    kw_store_close(from);
    kw_store_close(to);
    return rc ? 1 : 0;
}

int kw_store_cmd_main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "copy") == 0)
        return store_copy(argv[2], argv[3]);
    fprintf(argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) ? stdout
                                                                                        : stderr,
            "usage: keyward store copy FROM_URL TO_URL\n\n"
            "Copies everything keyward stores (policies, credentials, keys, renewals, events\n"
            "and deliveries, alert records, the audit trail) from one store to another, e.g.\n"
            "sqlite:/var/lib/keyward/keyward.db to postgresql://keyward@db/keyward. The\n"
            "destination must hold no credentials yet; stop the nodes writing to FROM first.\n"
            "The audit chain is verified at the destination.\n");
    return argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) ? 0 : 2;
}
