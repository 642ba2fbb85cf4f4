/* store_codec.c - pure column codecs shared by the store backends (store_codec.h). */
#include "store_codec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/err.h"

void kw_thresholds_format(const kw_policy_t *p, char *buf, size_t n)
{
    size_t off = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < p->nthresholds && i < KW_MAX_THRESHOLDS && off < n; i++)
        off += (size_t)snprintf(buf + off, n - off, "%s%lld", i ? "," : "",
                                (long long)p->thresholds[i]);
}

void kw_thresholds_parse(const char *s, kw_policy_t *p)
{
    p->nthresholds = 0;
    while (s && *s && p->nthresholds < KW_MAX_THRESHOLDS) {
        char *end;
        long long v = strtoll(s, &end, 10);
        if (end == s)
            break;
        p->thresholds[p->nthresholds++] = v;
        if (*end != ',')
            break;
        s = end + 1;
    }
}

/* ---- rows ---- */

/* Column col into buf (always terminated, cut to n - 1 bytes; "" for NULL). */
static void r_cpy(const kw_row_src_t *r, int col, char *buf, size_t n)
{
    const char *v = NULL;
    r->text(r, col, &v);
    size_t len = v ? strlen(v) : 0;
    if (len >= n)
        len = n - 1; /* cannot happen for values this store wrote from the same structs */
    memcpy(buf, v ? v : "", len);
    buf[len] = '\0';
}

/* Column col as a malloc'd copy into *out (NULL for NULL); 0 or KW_ENOMEM. */
static int r_dup(const kw_row_src_t *r, int col, char **out)
{
    const char *v = NULL;
    *out = NULL;
    int rc = r->text(r, col, &v);
    if (rc != 0 || v == NULL)
        return rc;
    *out = strdup(v);
    return *out ? 0 : KW_ENOMEM;
}

int kw_row_watched(const kw_row_src_t *r, kw_watched_t *w)
{
    int rc = 0;
    memset(w, 0, sizeof(*w));
    w->seq = r->i64(r, 0);
    r_cpy(r, 1, w->id, sizeof(w->id));
    r_cpy(r, 2, w->name, sizeof(w->name));
    rc |= r_dup(r, 3, &w->provider);
    rc |= r_dup(r, 4, &w->owner);
    rc |= r_dup(r, 5, &w->contacts_json);
    r_cpy(r, 6, w->policy, sizeof(w->policy));
    r_cpy(r, 7, w->kind, sizeof(w->kind));
    rc |= r_dup(r, 8, &w->secret_sealed);
    r_cpy(r, 9, w->secret_hint, sizeof(w->secret_hint));
    w->expires_at = r->i64(r, 10);
    rc |= r_dup(r, 11, &w->token_url);
    r_cpy(r, 12, w->grant_type, sizeof(w->grant_type));
    rc |= r_dup(r, 13, &w->client_id);
    rc |= r_dup(r, 14, &w->client_secret_sealed);
    r_cpy(r, 15, w->client_secret_hint, sizeof(w->client_secret_hint));
    rc |= r_dup(r, 16, &w->refresh_token_sealed);
    rc |= r_dup(r, 17, &w->refresh_token_prev_sealed);
    r_cpy(r, 18, w->refresh_token_hint, sizeof(w->refresh_token_hint));
    w->refresh_expires_at = r->i64(r, 19);
    rc |= r_dup(r, 20, &w->scope);
    r_cpy(r, 21, w->auth_method, sizeof(w->auth_method));
    rc |= r_dup(r, 22, &w->token_file);
    rc |= r_dup(r, 23, &w->access_token_sealed);
    r_cpy(r, 24, w->token_type, sizeof(w->token_type));
    w->token_obtained_ms = r->i64(r, 25);
    w->token_expires_ms = r->i64(r, 26);
    w->token_lapse_raised = (int)r->i64(r, 27);
    w->next_refresh_ms = r->i64(r, 28);
    w->failures = r->i64(r, 29);
    r_cpy(r, 30, w->last_error, sizeof(w->last_error));
    w->last_status = r->i64(r, 31);
    w->last_attempt_ms = r->i64(r, 32);
    w->last_success_ms = r->i64(r, 33);
    w->gen = r->i64(r, 34);
    w->created_at = r->i64(r, 35);
    w->updated_at = r->i64(r, 36);
    w->deleted_at = r->i64(r, 37);
    if (rc) {
        kw_watched_clear(w);
        return KW_ENOMEM;
    }
    return 0;
}

int kw_row_policy(const kw_row_src_t *r, kw_policy_t *p)
{
    const char *th = NULL;
    memset(p, 0, sizeof(*p));
    r_cpy(r, 0, p->name, sizeof(p->name));
    p->default_lifetime = r->i64(r, 1);
    p->max_lifetime = r->i64(r, 2);
    p->allow_never_expire = (int)r->i64(r, 3);
    p->renewable = (int)r->i64(r, 4);
    p->renewal_requires_approval = (int)r->i64(r, 5);
    r->text(r, 6, &th);
    kw_thresholds_parse(th, p);
    p->max_roll_overlap = r->i64(r, 7);
    p->created_at = r->i64(r, 8);
    p->updated_at = r->i64(r, 9);
    p->token_lifetime = r->i64(r, 10);
    return 0;
}

int kw_row_renewal(const kw_row_src_t *r, kw_renewal_t *x)
{
    memset(x, 0, sizeof(*x));
    r_cpy(r, 0, x->id, sizeof(x->id));
    r_cpy(r, 1, x->key_id, sizeof(x->key_id));
    r_cpy(r, 2, x->requested_by, sizeof(x->requested_by));
    x->extend_by = r->i64(r, 3);
    x->expires_at = r->i64(r, 4);
    r_cpy(r, 5, x->reason, sizeof(x->reason));
    r_cpy(r, 6, x->state, sizeof(x->state));
    r_cpy(r, 7, x->decided_by, sizeof(x->decided_by));
    x->decided_at = r->i64(r, 8);
    r_cpy(r, 9, x->note, sizeof(x->note));
    x->created_at = r->i64(r, 10);
    return 0;
}

int kw_row_delivery(const kw_row_src_t *r, kw_delivery_t *d)
{
    memset(d, 0, sizeof(*d));
    r_cpy(r, 0, d->event_id, sizeof(d->event_id));
    r_cpy(r, 1, d->channel, sizeof(d->channel));
    r_cpy(r, 2, d->state, sizeof(d->state));
    d->attempts = r->i64(r, 3);
    d->next_attempt_at = r->i64(r, 4);
    d->delivered_at = r->i64(r, 5);
    d->created_at = r->i64(r, 6);
    r_cpy(r, 7, d->last_error, sizeof(d->last_error));
    return 0;
}

int kw_row_event(const kw_row_src_t *r, kw_event_t *e)
{
    const char *p = NULL;
    memset(e, 0, sizeof(*e));
    e->seq = r->i64(r, 0);
    r_cpy(r, 1, e->id, sizeof(e->id));
    r_cpy(r, 2, e->type, sizeof(e->type));
    e->occurred_at = r->i64(r, 3);
    r->text(r, 4, &p);
    e->payload = strdup(p ? p : "{}");
    return e->payload ? 0 : KW_ENOMEM;
}
