/* h_creds.c - handlers for credentials (SPEC §5): create, list, get, patch, delete.
 * Each handler checks the request's shape (types, ranges, unknown fields) and names the
 * bad field; meaning (policies, slots) is checked by core/lifecycle.c. Keys: h_keys.c;
 * policies: h_policies.c; the shared checks: h_common.c. The parsers here return 0, or -1
 * with rs filled (h_common.h's convention: the answer carries the code). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "contacts.h"
#include "core/cidr.h"
#include "core/key.h"
#include "h_common.h"
#include "log.h"

#define MAX_LIST 64
#define MAX_STR 256
#define MAX_METADATA 8192

/* Owned strings produced while parsing a body. */
typedef struct parsed {
    kw_cred_in_t in;
    kw_expiry_in_t exp;
    char *scopes, *cidrs, *metadata, *contacts;
} parsed_t;

static void parsed_clear(parsed_t *p)
{
    free(p->scopes);
    free(p->cidrs);
    free(p->metadata);
    free(p->contacts);
}

static int parse_scopes(json_t *v, char **out, kw_resp_t *rs)
{
    if (!json_is_array(v) || json_array_size(v) > MAX_LIST)
        return kw_hc_fail(rs, KW_EINVAL, "scopes", "scopes must be an array of at most 64 strings");
    json_t *a = json_array();
    size_t i;
    json_t *s;
    json_array_foreach(v, i, s)
    {
        const char *t = json_string_value(s);
        if (t == NULL || json_string_length(s) == 0 || json_string_length(s) > 128 ||
            strlen(t) != json_string_length(s) || !kw_hc_printable(t, 0)) {
            json_decref(a);
            return kw_hc_fail(
                rs, KW_EINVAL, "scopes",
                "each scope must be a string of 1 to 128 visible characters without spaces");
        }
        int dup = 0;
        for (size_t j = 0; j < json_array_size(a) && !dup; j++)
            dup = strcmp(json_string_value(json_array_get(a, j)), t) == 0;
        if (!dup)
            json_array_append_new(a, json_string(t));
    }
    *out = json_dumps(a, JSON_COMPACT);
    json_decref(a);
    return *out ? 0 : kw_hc_fail(rs, KW_ENOMEM, NULL, "out of memory");
}

static int parse_cidrs(json_t *v, char **out, kw_resp_t *rs)
{
    if (!json_is_array(v) || json_array_size(v) > MAX_LIST)
        return kw_hc_fail(rs, KW_EINVAL, "allowed_cidrs",
                          "allowed_cidrs must be an array of at most 64 CIDR strings");
    json_t *a = json_array();
    size_t i;
    json_t *s;
    json_array_foreach(v, i, s)
    {
        kw_cidr_t c;
        char buf[KW_CIDR_STR_MAX];
        const char *t = json_string_value(s);
        if (t == NULL || kw_cidr_parse(t, json_string_length(s), &c) != 0) {
            json_decref(a);
            kw_resp_error(rs, KW_EINVAL, "allowed_cidrs",
                          "allowed_cidrs[%zu] is not a CIDR block like 10.0.0.0/8 or "
                          "2001:db8::/32 (host bits must be zero)",
                          i);
            return -1;
        }
        kw_cidr_format(&c, buf);
        json_array_append_new(a, json_string(buf));
    }
    *out = json_dumps(a, JSON_COMPACT);
    json_decref(a);
    return *out ? 0 : kw_hc_fail(rs, KW_ENOMEM, NULL, "out of memory");
}

static int parse_contacts(json_t *v, char **out, kw_resp_t *rs)
{
    if (!json_is_array(v) || json_array_size(v) > 16)
        return kw_hc_fail(rs, KW_EINVAL, "contacts",
                          "contacts must be an array of at most 16 objects");
    size_t i;
    json_t *c;
    json_array_foreach(v, i, c)
    {
        const char *type = json_string_value(json_object_get(c, "type"));
        const char *k;
        json_t *f;
        if (!json_is_object(c) || type == NULL) {
            kw_resp_error(rs, KW_EINVAL, "contacts",
                          "contacts[%zu] must be an object with a type (webhook, email or log)", i);
            return -1;
        }
        json_object_foreach(c, k, f)
        {
            int ok = strcmp(k, "type") == 0 ||
                     (strcmp(type, "webhook") == 0 &&
                      (strcmp(k, "url") == 0 || strcmp(k, "secret") == 0)) ||
                     (strcmp(type, "email") == 0 && strcmp(k, "to") == 0);
            if (!ok ||
                (strcmp(k, "type") != 0 && (!json_is_string(f) || json_string_length(f) > 2048))) {
                kw_resp_error(rs, KW_EINVAL, "contacts",
                              "contacts[%zu]: unexpected or invalid field '%.40s'", i, k);
                return -1;
            }
        }
        if (strcmp(type, "webhook") == 0) {
            const char *url = json_string_value(json_object_get(c, "url"));
            if (url == NULL ||
                (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)) {
                kw_resp_error(rs, KW_EINVAL, "contacts",
                              "contacts[%zu]: a webhook needs an http:// or https:// url", i);
                return -1;
            }
        } else if (strcmp(type, "email") == 0) {
            const char *to = json_string_value(json_object_get(c, "to"));
            if (to == NULL) {
                kw_resp_error(rs, KW_EINVAL, "contacts",
                              "contacts[%zu]: an email contact needs a 'to' address", i);
                return -1;
            }
            if (strchr(to, '@') == NULL || !kw_hc_printable(to, 0)) {
                kw_resp_error(rs, KW_EINVAL, "contacts",
                              "contacts[%zu]: 'to' must be one address like ops@example.com", i);
                return -1;
            }
        } else if (strcmp(type, "log") != 0) {
            kw_resp_error(rs, KW_EINVAL, "contacts",
                          "contacts[%zu]: type must be webhook, email or log", i);
            return -1;
        }
    }
    *out = json_dumps(v, JSON_COMPACT);
    return *out ? 0 : kw_hc_fail(rs, KW_ENOMEM, NULL, "out of memory");
}

/* Credential fields shared by create and patch. */
static int parse_cred(json_t *b, parsed_t *p, int creating, kw_resp_t *rs)
{
    json_t *v;
    int present;
    if (kw_hc_str(b, "name", 200, 0, &p->in.name, &present, rs))
        return -1;
    if (creating && p->in.name == NULL)
        return kw_hc_fail(rs, KW_EINVAL, "name", "name is required");
    if (p->in.name && p->in.name[0] == '\0')
        return kw_hc_fail(rs, KW_EINVAL, "name", "name must not be empty");
    if (kw_hc_str(b, "owner", 320, 1, &p->in.owner, &p->in.has_owner, rs))
        return -1;
    if ((v = json_object_get(b, "scopes")) && parse_scopes(v, &p->scopes, rs))
        return -1;
    if ((v = json_object_get(b, "allowed_cidrs")) && parse_cidrs(v, &p->cidrs, rs))
        return -1;
    if ((v = json_object_get(b, "metadata"))) {
        if (!json_is_object(v))
            return kw_hc_fail(rs, KW_EINVAL, "metadata", "metadata must be a JSON object");
        p->metadata = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
        if (p->metadata == NULL)
            return kw_hc_fail(rs, KW_ENOMEM, NULL, "out of memory");
        if (strlen(p->metadata) > MAX_METADATA)
            return kw_hc_fail(rs, KW_EINVAL, "metadata",
                              "metadata must be at most 8192 bytes as JSON");
    }
    if ((v = json_object_get(b, "contacts")) && parse_contacts(v, &p->contacts, rs))
        return -1;
    if (kw_hc_str(b, "policy", 63, 0, &p->in.policy, NULL, rs))
        return -1;
    if (p->in.policy && !kw_hc_policy_name(p->in.policy))
        return kw_hc_fail(rs, KW_EINVAL, "policy",
                          "policy must be a policy name ([a-z0-9_-]{1,63})");
    if (kw_hc_str(b, "prefix", 64, 0, &p->in.prefix, NULL, rs))
        return -1;
    if (p->in.prefix && !kw_key_prefix_valid(p->in.prefix, strlen(p->in.prefix)))
        return kw_hc_fail(rs, KW_EINVAL, "prefix", "prefix must match [a-z][a-z0-9]{0,15}");
    if ((v = json_object_get(b, "disabled"))) {
        if (!json_is_boolean(v))
            return kw_hc_fail(rs, KW_EINVAL, "disabled", "disabled must be true or false");
        p->in.has_disabled = 1;
        p->in.disabled = json_is_true(v);
    }
    p->in.scopes_json = p->scopes;
    p->in.cidrs_json = p->cidrs;
    p->in.metadata_json = p->metadata;
    p->in.contacts_json = p->contacts;
    return 0;
}

static void respond_cred(kw_server_t *s, kw_resp_t *rs, int status, const char *id, int64_t now)
{
    kw_cred_t c = {0};
    kw_err_t e = {0};
    if (kw_store_cred_get(s->store, id, &c, &e) != 0) {
        kw_hc_respond_err(rs, &e, "credential", id);
        return;
    }
    json_t *j = kw_api_cred_json(s, &c, now, &e);
    kw_cred_clear(&c);
    if (j == NULL)
        kw_hc_respond_err(rs, &e, "credential", id);
    else
        kw_resp_json(rs, status, j);
}

/* ---- credentials ---- */

void kw_h_cred_create(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs)
{
    static const char *const allowed[] = {"name",     "owner",    "scopes",     "allowed_cidrs",
                                          "metadata", "policy",   "contacts",   "disabled",
                                          "prefix",   "lifetime", "expires_at", NULL};
    parsed_t p = {0};
    kw_cred_t c = {0};
    kw_keyrec_t k;
    kw_err_t e = {0};
    json_t *gen = NULL;
    char secret[KW_KEY_MAX + 1];
    json_t *b = kw_api_body(rq, rs, allowed);
    if (b == NULL)
        return;
    if (parse_cred(b, &p, 1, rs) || kw_hc_expiry(b, &p.exp, rs))
        goto out;
    /* webhook contacts: SSRF guard, signing secrets (contacts.h) */
    if (p.contacts && kw_contacts_prepare(s, &p.contacts, NULL, &gen, rs))
        goto out;
    p.in.contacts_json = p.contacts;
    if (kw_lc_cred_create(&s->lc, rq->principal, &p.in, &p.exp, &c, &k, secret, &e) != 0) {
        kw_hc_respond_err(rs, &e, "credential", "");
        goto out;
    }
    /* a new credential has exactly one key, k: no need to read it back from the store;
     * "key" is the same value as credential.keys[0], shared rather than built twice */
    json_t *cj = kw_api_cred_json_keys(s, &c, &k, 1, rq->now, &e);
    json_t *kj = json_array_get(json_object_get(cj, "keys"), 0);
    json_t *r =
        kj ? json_pack("{s:o, s:O, s:s}", "credential", cj, "key", kj, "secret", secret) : NULL;
    if (kj == NULL)
        json_decref(cj);
    kw_wipe(secret, sizeof(secret));
    if (r == NULL)
        kw_resp_error(rs, KW_ENOMEM, NULL, "created %s, but the answer could not be built", c.id);
    else
        kw_resp_json(rs, 201, r);
    kw_contacts_attach(rs, gen);
    gen = NULL;
    kw_log(KW_LOG_INFO, "credential created", "{s:s, s:s, s:s}", "credential", c.id, "key", k.id,
           "hint", k.hint);
out:
    json_decref(gen);
    kw_cred_clear(&c);
    parsed_clear(&p);
    json_decref(b);
}

void kw_h_cred_list(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs)
{
    kw_cred_filter_t f = {.owner = kw_req_query(rq, "owner"), .now = rq->now};
    kw_cred_t *items = NULL;
    size_t n = 0;
    kw_err_t e = {0};
    if (kw_api_query_limit(rq, rs, KW_HC_DEFAULT_LIMIT, KW_HC_MAX_LIMIT, &f.limit) ||
        kw_hc_list_query(rq, rs, rq->now, &f.expiring_before, &f.after_seq))
        return;
    f.limit += 1; /* one more tells whether there is a next page */
    if (kw_store_cred_list(s->store, &f, &items, &n, &e) != 0) {
        kw_hc_respond_err(rs, &e, "credentials", "");
        return;
    }
    size_t shown = n > f.limit - 1 ? f.limit - 1 : n;
    json_t *a = json_array();
    for (size_t i = 0; a && i < shown; i++) {
        json_t *cj = kw_api_cred_json(s, &items[i], rq->now, &e);
        if (cj == NULL) {
            json_decref(a);
            a = NULL;
            break;
        }
        json_array_append_new(a, cj);
    }
    if (a == NULL) {
        kw_hc_respond_err(rs, &e, "credentials", "");
    } else {
        kw_api_page_seq(rs, a, n > shown, shown ? items[shown - 1].seq : 0);
    }
    kw_cred_array_free(items, n);
}

void kw_h_cred_get(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs)
{
    if (kw_hc_id(rq, rs, "cred", "credential") == 0)
        respond_cred(s, rs, 200, rq->caps[0], rq->now);
}

void kw_h_cred_patch(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs)
{
    static const char *const allowed[] = {"name",          "owner",    "scopes",
                                          "allowed_cidrs", "metadata", "policy",
                                          "contacts",      "disabled", NULL};
    parsed_t p = {0};
    kw_err_t e = {0};
    json_t *gen = NULL;
    json_t *b = kw_hc_id_body(rq, rs, "cred", "credential", allowed);
    if (b == NULL)
        return;
    if (parse_cred(b, &p, 0, rs) == 0 && p.contacts) {
        /* a webhook sent back without its (hidden) secret keeps it: same URL */
        kw_cred_t old = {0};
        if (kw_store_cred_get(s->store, rq->caps[0], &old, &e) != 0)
            kw_hc_respond_err(rs, &e, "credential", rq->caps[0]);
        else if (kw_contacts_prepare(s, &p.contacts, old.contacts_json, &gen, rs) == 0)
            p.in.contacts_json = p.contacts;
        else
            e.code = KW_EINVAL;
        kw_cred_clear(&old);
    }
    if (rs->status == 0 && e.code == 0) {
        if (kw_lc_cred_update(&s->lc, rq->principal, rq->caps[0], &p.in, &e) != 0)
            kw_hc_respond_err(rs, &e, "credential", rq->caps[0]);
        else
            respond_cred(s, rs, 200, rq->caps[0], rq->now);
        kw_contacts_attach(rs, gen);
        gen = NULL;
    }
    json_decref(gen);
    parsed_clear(&p);
    json_decref(b);
}

void kw_h_cred_delete(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs)
{
    kw_cred_t c = {0};
    kw_err_t e = {0};
    if (kw_hc_id(rq, rs, "cred", "credential"))
        return;
    if (kw_store_cred_get(s->store, rq->caps[0], &c, &e) != 0 ||
        kw_lc_cred_delete(&s->lc, rq->principal, rq->caps[0], &e) != 0) {
        kw_hc_respond_err(rs, &e, "credential", rq->caps[0]);
        kw_cred_clear(&c);
        return;
    }
    c.deleted_at = rq->now;
    json_t *j = kw_api_cred_json(s, &c, rq->now, &e); /* its keys, now revoked */
    if (j == NULL)
        kw_hc_respond_err(rs, &e, "credential", rq->caps[0]);
    else
        kw_resp_json(rs, 200, j);
    kw_cred_clear(&c);
}

int kw_api_parse_contacts(json_t *v, char **out, kw_resp_t *rs)
{
    return parse_contacts(v, out, rs);
}
