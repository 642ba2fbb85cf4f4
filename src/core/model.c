/* model.c - helpers for the domain records: defaults, state, copy and release. */
#include "model.h"

#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "err.h"

void kw_policy_defaults(kw_policy_t *p, const char *name)
{
    memset(p, 0, sizeof(*p));
    snprintf(p->name, sizeof(p->name), "%s", name ? name : "default");
    p->default_lifetime = 365LL * 86400;
    p->max_lifetime = 365LL * 86400;
    p->allow_never_expire = 0;
    p->renewable = 1;
    p->renewal_requires_approval = 0;
    p->thresholds[0] = 30LL * 86400;
    p->thresholds[1] = 14LL * 86400;
    p->thresholds[2] = 7LL * 86400;
    p->thresholds[3] = 1LL * 86400;
    p->nthresholds = 4;
    p->max_roll_overlap = 7LL * 86400;
    p->token_lifetime = 3600;
}

void kw_cred_clear(kw_cred_t *c)
{
    if (c == NULL)
        return;
    free(c->name);
    free(c->owner);
    free(c->scopes_json);
    free(c->cidrs_json);
    free(c->metadata_json);
    free(c->contacts_json);
    memset(c, 0, sizeof(*c));
}

void kw_cred_array_free(kw_cred_t *a, size_t n)
{
    for (size_t i = 0; a && i < n; i++)
        kw_cred_clear(&a[i]);
    free(a);
}

static int dup_str(char **dst, const char *src)
{
    *dst = NULL;
    if (src == NULL)
        return 0;
    *dst = strdup(src);
    return *dst ? 0 : KW_ENOMEM;
}

int kw_cred_copy(kw_cred_t *dst, const kw_cred_t *src)
{
    kw_cred_t c = *src;
    c.name = c.owner = c.scopes_json = c.cidrs_json = c.metadata_json = c.contacts_json = NULL;
    if (dup_str(&c.name, src->name) || dup_str(&c.owner, src->owner) ||
        dup_str(&c.scopes_json, src->scopes_json) || dup_str(&c.cidrs_json, src->cidrs_json) ||
        dup_str(&c.metadata_json, src->metadata_json) ||
        dup_str(&c.contacts_json, src->contacts_json)) {
        kw_cred_clear(&c);
        return KW_ENOMEM;
    }
    *dst = c;
    return 0;
}

kw_key_state_t kw_keyrec_state(const kw_keyrec_t *k, int64_t now)
{
    if (k->revoked_at)
        return KW_KEY_REVOKED;
    if (k->expires_at && k->expires_at <= now)
        return KW_KEY_EXPIRED;
    return KW_KEY_ACTIVE;
}

const char *kw_key_state_name(kw_key_state_t s)
{
    switch (s) {
    case KW_KEY_ACTIVE:
        return "active";
    case KW_KEY_EXPIRED:
        return "expired";
    case KW_KEY_REVOKED:
        return "revoked";
    }
    return "unknown";
}

void kw_audit_rec_clear(kw_audit_rec_t *r)
{
    if (r == NULL)
        return;
    free(r->detail);
    memset(r, 0, sizeof(*r));
}

void kw_audit_rec_array_free(kw_audit_rec_t *a, size_t n)
{
    for (size_t i = 0; a && i < n; i++)
        free(a[i].detail);
    free(a);
}
