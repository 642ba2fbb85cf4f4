/* h_creds.c - handlers for credentials, keys, expiring and policies (SPEC §5).
 * Each handler checks the request's shape (types, ranges, unknown fields) and names the
 * bad field; meaning (policies, slots) is checked by core/lifecycle.c. */
#include <ctype.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "contacts.h"
#include "core/cidr.h"
#include "core/duration.h"
#include "core/key.h"
#include "core/util.h"
#include "log.h"

#define MAX_LIST 64
#define MAX_STR 256
#define MAX_METADATA 8192
#define DEFAULT_LIMIT 100
#define MAX_LIMIT 1000

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

static int fail(kw_resp_t *rs, int code, const char *field, const char *msg)
{
    kw_resp_error(rs, code, field, "%s", msg);
    return -1;
}

static int printable(const char *s, int allow_space)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == 0x7f || (!allow_space && c == ' '))
            return 0;
    }
    return 1;
}

/* Optional string field: *out = NULL if absent. null is refused unless nullable. */
static int get_str(json_t *b, const char *name, size_t max, int nullable, const char **out,
                   int *present, kw_resp_t *rs)
{
    json_t *v = json_object_get(b, name);
    *out = NULL;
    if (present)
        *present = v != NULL;
    if (v == NULL)
        return 0;
    if (json_is_null(v) && nullable)
        return 0;
    if (!json_is_string(v)) {
        kw_resp_error(rs, KW_EINVAL, name, "%s must be a string", name);
        return -1;
    }
    const char *s = json_string_value(v);
    if (json_string_length(v) > max || strlen(s) != json_string_length(v) || !printable(s, 1)) {
        kw_resp_error(rs, KW_EINVAL, name, "%s must be at most %zu printable characters", name,
                      max);
        return -1;
    }
    *out = s;
    return 0;
}

static int parse_scopes(json_t *v, char **out, kw_resp_t *rs)
{
    if (!json_is_array(v) || json_array_size(v) > MAX_LIST)
        return fail(rs, KW_EINVAL, "scopes", "scopes must be an array of at most 64 strings");
    json_t *a = json_array();
    size_t i;
    json_t *s;
    json_array_foreach(v, i, s)
    {
        const char *t = json_string_value(s);
        if (t == NULL || json_string_length(s) == 0 || json_string_length(s) > 128 ||
            strlen(t) != json_string_length(s) || !printable(t, 0)) {
            json_decref(a);
            return fail(
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
    return *out ? 0 : fail(rs, KW_ENOMEM, NULL, "out of memory");
}

static int parse_cidrs(json_t *v, char **out, kw_resp_t *rs)
{
    if (!json_is_array(v) || json_array_size(v) > MAX_LIST)
        return fail(rs, KW_EINVAL, "allowed_cidrs",
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
    return *out ? 0 : fail(rs, KW_ENOMEM, NULL, "out of memory");
}

static int parse_contacts(json_t *v, char **out, kw_resp_t *rs)
{
    if (!json_is_array(v) || json_array_size(v) > 16)
        return fail(rs, KW_EINVAL, "contacts", "contacts must be an array of at most 16 objects");
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
            if (strchr(to, '@') == NULL || !printable(to, 0)) {
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
    return *out ? 0 : fail(rs, KW_ENOMEM, NULL, "out of memory");
}

static int valid_policy_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= KW_NAME_MAX)
        return 0;
    for (; *s; s++)
        if (!(islower((unsigned char)*s) || isdigit((unsigned char)*s) || *s == '-' || *s == '_'))
            return 0;
    return 1;
}

/* Credential fields shared by create and patch. */
static int parse_cred(json_t *b, parsed_t *p, int creating, kw_resp_t *rs)
{
    json_t *v;
    int present;
    if (get_str(b, "name", 200, 0, &p->in.name, &present, rs))
        return -1;
    if (creating && p->in.name == NULL)
        return fail(rs, KW_EINVAL, "name", "name is required");
    if (p->in.name && p->in.name[0] == '\0')
        return fail(rs, KW_EINVAL, "name", "name must not be empty");
    if (get_str(b, "owner", 320, 1, &p->in.owner, &p->in.has_owner, rs))
        return -1;
    if ((v = json_object_get(b, "scopes")) && parse_scopes(v, &p->scopes, rs))
        return -1;
    if ((v = json_object_get(b, "allowed_cidrs")) && parse_cidrs(v, &p->cidrs, rs))
        return -1;
    if ((v = json_object_get(b, "metadata"))) {
        if (!json_is_object(v))
            return fail(rs, KW_EINVAL, "metadata", "metadata must be a JSON object");
        p->metadata = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
        if (p->metadata == NULL)
            return fail(rs, KW_ENOMEM, NULL, "out of memory");
        if (strlen(p->metadata) > MAX_METADATA)
            return fail(rs, KW_EINVAL, "metadata", "metadata must be at most 8192 bytes as JSON");
    }
    if ((v = json_object_get(b, "contacts")) && parse_contacts(v, &p->contacts, rs))
        return -1;
    if (get_str(b, "policy", 63, 0, &p->in.policy, NULL, rs))
        return -1;
    if (p->in.policy && !valid_policy_name(p->in.policy))
        return fail(rs, KW_EINVAL, "policy", "policy must be a policy name ([a-z0-9_-]{1,63})");
    if (get_str(b, "prefix", 64, 0, &p->in.prefix, NULL, rs))
        return -1;
    if (p->in.prefix && !kw_key_prefix_valid(p->in.prefix, strlen(p->in.prefix)))
        return fail(rs, KW_EINVAL, "prefix", "prefix must match [a-z][a-z0-9]{0,15}");
    if ((v = json_object_get(b, "disabled"))) {
        if (!json_is_boolean(v))
            return fail(rs, KW_EINVAL, "disabled", "disabled must be true or false");
        p->in.has_disabled = 1;
        p->in.disabled = json_is_true(v);
    }
    p->in.scopes_json = p->scopes;
    p->in.cidrs_json = p->cidrs;
    p->in.metadata_json = p->metadata;
    p->in.contacts_json = p->contacts;
    return 0;
}

/* lifetime (duration or "never") or expires_at (RFC 3339), not both. */
static int parse_expiry(json_t *b, kw_expiry_in_t *e, kw_resp_t *rs)
{
    json_t *l = json_object_get(b, "lifetime"), *a = json_object_get(b, "expires_at");
    e->kind = KW_EXP_DEFAULT;
    if (l && a)
        return fail(rs, KW_EINVAL, "lifetime", "give lifetime or expires_at, not both");
    if (l) {
        const char *s = json_string_value(l);
        if (s == NULL)
            return fail(rs, KW_EINVAL, "lifetime",
                        "lifetime must be a string like \"90d\" or \"never\"");
        if (strcmp(s, "never") == 0) {
            e->kind = KW_EXP_NEVER;
        } else if (kw_duration_parse(s, json_string_length(l), &e->value) == 0) {
            e->kind = KW_EXP_LIFETIME;
        } else {
            return fail(rs, KW_EINVAL, "lifetime",
                        "lifetime is not a duration (use 45s, 90m, 12h, 30d or never)");
        }
    }
    if (a) {
        const char *s = json_string_value(a);
        if (s == NULL || kw_time_parse(s, json_string_length(a), &e->value) != 0)
            return fail(rs, KW_EINVAL, "expires_at",
                        "expires_at must be an RFC 3339 time like 2027-01-31T00:00:00Z");
        e->kind = KW_EXP_AT;
    }
    return 0;
}

static void respond_err(kw_resp_t *rs, kw_err_t *e, const char *what, const char *id)
{
    if (e->code == KW_ENOTFOUND) {
        kw_resp_error(rs, KW_ENOTFOUND, NULL, "unknown %s %s", what, id);
        return;
    }
    if (e->code == KW_ESTORE || e->code == KW_EINTERNAL || e->code == KW_ENOMEM)
        kw_log(KW_LOG_ERROR, "request failed", "{s:s, s:s}", "target", id, "error", e->msg);
    kw_resp_problem(rs, e);
}

static int cap_id(kw_req_t *rq, kw_resp_t *rs, const char *prefix, const char *what)
{
    if (!kw_id_valid(prefix, rq->caps[0])) {
        char echo[72];
        kw_resp_error(rs, KW_ENOTFOUND, NULL, "unknown %s %s", what,
                      kw_api_echo(rq->caps[0], echo, sizeof(echo)));
        return -1;
    }
    return 0;
}

static void respond_cred(kw_server_t *s, kw_resp_t *rs, int status, const char *id, int64_t now)
{
    kw_cred_t c = {0};
    kw_err_t e = {0};
    if (kw_store_cred_get(s->store, id, &c, &e) != 0) {
        respond_err(rs, &e, "credential", id);
        return;
    }
    json_t *j = kw_api_cred_json(s, &c, now, &e);
    kw_cred_clear(&c);
    if (j == NULL)
        respond_err(rs, &e, "credential", id);
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
    if (parse_cred(b, &p, 1, rs) || parse_expiry(b, &p.exp, rs))
        goto out;
    /* webhook contacts: SSRF guard, signing secrets (contacts.h) */
    if (p.contacts && kw_contacts_prepare(s, &p.contacts, NULL, &gen, rs))
        goto out;
    p.in.contacts_json = p.contacts;
    if (kw_lc_cred_create(&s->lc, rq->principal, &p.in, &p.exp, &c, &k, secret, &e) != 0) {
        respond_err(rs, &e, "credential", "");
        goto out;
    }
    /* a new credential has exactly one key, k: no need to read it back from the store */
    json_t *cj = kw_api_cred_json_keys(s, &c, &k, 1, rq->now, &e);
    json_t *r = cj ? json_pack("{s:o, s:o, s:s}", "credential", cj, "key",
                               kw_api_key_json(&k, rq->now), "secret", secret)
                   : NULL;
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

static int parse_i64(const char *s, int64_t *out)
{
    char *end;
    if (s == NULL || *s < '0' || *s > '9')
        return -1;
    long long v = strtoll(s, &end, 10);
    if (*end != '\0' || v < 0)
        return -1;
    *out = v;
    return 0;
}

void kw_h_cred_list(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs)
{
    kw_cred_filter_t f = {.owner = kw_req_query(rq, "owner"), .now = rq->now};
    const char *ew = kw_req_query(rq, "expiring_within"), *cur = kw_req_query(rq, "cursor");
    kw_cred_t *items = NULL;
    size_t n = 0;
    kw_err_t e = {0};
    if (kw_api_query_limit(rq, rs, DEFAULT_LIMIT, MAX_LIMIT, &f.limit))
        return;
    if (ew) {
        int64_t d;
        if (kw_duration_parse(ew, strlen(ew), &d) != 0) {
            fail(rs, KW_EINVAL, "expiring_within", "expiring_within must be a duration like 30d");
            return;
        }
        f.expiring_before = rq->now + d;
    }
    if (cur && parse_i64(cur, &f.after_seq) != 0) {
        fail(rs, KW_EINVAL, "cursor", "cursor is not one this server handed out");
        return;
    }
    f.limit += 1; /* one more tells whether there is a next page */
    if (kw_store_cred_list(s->store, &f, &items, &n, &e) != 0) {
        respond_err(rs, &e, "credentials", "");
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
        respond_err(rs, &e, "credentials", "");
    } else {
        char next[32];
        snprintf(next, sizeof(next), "%lld", shown ? (long long)items[shown - 1].seq : 0LL);
        kw_resp_json(rs, 200,
                     json_pack("{s:o, s:o}", "items", a, "next",
                               n > shown ? json_string(next) : json_null()));
    }
    kw_cred_array_free(items, n);
}

void kw_h_cred_get(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs)
{
    if (cap_id(rq, rs, "cred", "credential") == 0)
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
    if (cap_id(rq, rs, "cred", "credential"))
        return;
    json_t *b = kw_api_body(rq, rs, allowed);
    if (b == NULL)
        return;
    if (parse_cred(b, &p, 0, rs) == 0 && p.contacts) {
        /* a webhook sent back without its (hidden) secret keeps it: same URL */
        kw_cred_t old = {0};
        if (kw_store_cred_get(s->store, rq->caps[0], &old, &e) != 0)
            respond_err(rs, &e, "credential", rq->caps[0]);
        else if (kw_contacts_prepare(s, &p.contacts, old.contacts_json, &gen, rs) == 0)
            p.in.contacts_json = p.contacts;
        else
            e.code = KW_EINVAL;
        kw_cred_clear(&old);
    }
    if (rs->status == 0 && e.code == 0) {
        if (kw_lc_cred_update(&s->lc, rq->principal, rq->caps[0], &p.in, &e) != 0)
            respond_err(rs, &e, "credential", rq->caps[0]);
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
    if (cap_id(rq, rs, "cred", "credential"))
        return;
    if (kw_store_cred_get(s->store, rq->caps[0], &c, &e) != 0 ||
        kw_lc_cred_delete(&s->lc, rq->principal, rq->caps[0], &e) != 0) {
        respond_err(rs, &e, "credential", rq->caps[0]);
        kw_cred_clear(&c);
        return;
    }
    c.deleted_at = rq->now;
    json_t *j = kw_api_cred_json(s, &c, rq->now, &e); /* its keys, now revoked */
    if (j == NULL)
        respond_err(rs, &e, "credential", rq->caps[0]);
    else
        kw_resp_json(rs, 200, j);
    kw_cred_clear(&c);
}

/* ---- keys ---- */

static void respond_new_key(kw_resp_t *rs, int64_t now, const kw_keyrec_t *k, char *secret,
                            const kw_keyrec_t *prev)
{
    json_t *r = json_pack("{s:o, s:s}", "key", kw_api_key_json(k, now), "secret", secret);
    kw_wipe(secret, KW_KEY_MAX + 1);
    if (r && prev)
        json_object_set_new(r, "previous", kw_api_key_json(prev, now));
    if (r == NULL)
        kw_resp_error(rs, KW_ENOMEM, NULL, "created %s, but the answer could not be built", k->id);
    else
        kw_resp_json(rs, 201, r);
}

void kw_h_key_new(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs)
{
    static const char *const allowed[] = {"lifetime", "expires_at", NULL};
    kw_expiry_in_t exp;
    kw_keyrec_t k;
    kw_err_t e = {0};
    char secret[KW_KEY_MAX + 1];
    if (cap_id(rq, rs, "cred", "credential"))
        return;
    json_t *b = kw_api_body(rq, rs, allowed);
    if (b == NULL)
        return;
    if (parse_expiry(b, &exp, rs) == 0) {
        if (kw_lc_key_new(&s->lc, rq->principal, rq->caps[0], &exp, &k, secret, &e) != 0) {
            respond_err(rs, &e, "credential", rq->caps[0]);
        } else {
            kw_log(KW_LOG_INFO, "key created", "{s:s, s:s, s:i}", "key", k.id, "hint", k.hint,
                   "slot", k.slot);
            respond_new_key(rs, rq->now, &k, secret, NULL);
        }
    }
    json_decref(b);
}

void kw_h_key_get(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs)
{
    kw_keyrec_t k;
    kw_err_t e = {0};
    if (cap_id(rq, rs, "key", "key"))
        return;
    if (kw_lc_key_get(&s->lc, rq->caps[0], &k, &e) != 0)
        respond_err(rs, &e, "key", rq->caps[0]);
    else
        kw_resp_json(rs, 200, kw_api_key_json(&k, rq->now));
}

void kw_h_key_roll(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs)
{
    static const char *const allowed[] = {"overlap", "lifetime", "expires_at", NULL};
    kw_expiry_in_t exp;
    kw_keyrec_t k, prev;
    kw_err_t e = {0};
    int64_t overlap = 0;
    char secret[KW_KEY_MAX + 1];
    if (cap_id(rq, rs, "key", "key"))
        return;
    json_t *b = kw_api_body(rq, rs, allowed);
    if (b == NULL)
        return;
    json_t *o = json_object_get(b, "overlap");
    if (o && (!json_is_string(o) ||
              kw_duration_parse(json_string_value(o), json_string_length(o), &overlap) != 0)) {
        fail(rs, KW_EINVAL, "overlap", "overlap must be a duration like 24h");
    } else if (parse_expiry(b, &exp, rs) == 0) {
        if (kw_lc_key_roll(&s->lc, rq->principal, rq->caps[0], overlap, &exp, &k, &prev, secret,
                           &e) != 0) {
            respond_err(rs, &e, "key", rq->caps[0]);
        } else {
            kw_log(KW_LOG_INFO, "key rolled", "{s:s, s:s, s:s}", "key", k.id, "hint", k.hint,
                   "previous", prev.id);
            kw_lc_key_merge_usage(&s->lc, &prev);
            respond_new_key(rs, rq->now, &k, secret, &prev);
        }
    }
    json_decref(b);
}

void kw_h_key_invalidate(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs)
{
    static const char *const allowed[] = {"reason", "unused_for", NULL};
    kw_keyrec_t k;
    kw_err_t e = {0};
    int64_t unused_for = 0;
    const char *reason = NULL;
    if (cap_id(rq, rs, "key", "key"))
        return;
    json_t *b = kw_api_body(rq, rs, allowed);
    if (b == NULL)
        return;
    json_t *u = json_object_get(b, "unused_for");
    if (get_str(b, "reason", 200, 1, &reason, NULL, rs) == 0) {
        if (u && (!json_is_string(u) ||
                  kw_duration_parse(json_string_value(u), json_string_length(u), &unused_for))) {
            fail(rs, KW_EINVAL, "unused_for", "unused_for must be a duration like 7d");
        } else if (kw_lc_key_invalidate(&s->lc, rq->principal, rq->caps[0], reason, unused_for, &k,
                                        &e) != 0) {
            respond_err(rs, &e, "key", rq->caps[0]);
        } else {
            kw_log(KW_LOG_INFO, "key invalidated", "{s:s, s:s}", "key", k.id, "hint", k.hint);
            kw_resp_json(rs, 200, kw_api_key_json(&k, rq->now));
        }
    }
    json_decref(b);
}

void kw_h_expiring(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs)
{
    const char *w = kw_req_query(rq, "within"), *cur = kw_req_query(rq, "cursor");
    int64_t within = 30LL * 86400, after_exp = 0, after_seq = 0;
    size_t limit, n = 0;
    kw_keyrec_t *keys = NULL;
    kw_err_t e = {0};
    if (kw_api_query_limit(rq, rs, DEFAULT_LIMIT, MAX_LIMIT, &limit))
        return;
    if (w && kw_duration_parse(w, strlen(w), &within) != 0) {
        fail(rs, KW_EINVAL, "within", "within must be a duration like 30d");
        return;
    }
    if (cur) {
        char buf[64];
        snprintf(buf, sizeof(buf), "%s", cur);
        char *dot = strchr(buf, '.');
        if (dot)
            *dot = '\0';
        if (dot == NULL || parse_i64(buf, &after_exp) || parse_i64(dot + 1, &after_seq)) {
            fail(rs, KW_EINVAL, "cursor", "cursor is not one this server handed out");
            return;
        }
    }
    if (kw_store_key_expiring(s->store, rq->now, rq->now + within, after_exp, after_seq, limit + 1,
                              &keys, &n, &e) != 0) {
        respond_err(rs, &e, "keys", "");
        return;
    }
    size_t shown = n > limit ? limit : n;
    json_t *a = json_array();
    for (size_t i = 0; a && i < shown; i++) {
        kw_cred_t c = {0};
        kw_lc_key_merge_usage(&s->lc, &keys[i]);
        json_t *kj = kw_api_key_json(&keys[i], rq->now);
        if (kj && kw_store_cred_get(s->store, keys[i].cred_id, &c, NULL) == 0)
            json_object_set_new(kj, "credential_name", json_string(c.name ? c.name : ""));
        kw_cred_clear(&c);
        json_array_append_new(a, kj);
    }
    char next[64] = "";
    if (n > shown && shown)
        snprintf(next, sizeof(next), "%lld.%lld", (long long)keys[shown - 1].expires_at,
                 (long long)keys[shown - 1].seq);
    free(keys);
    kw_resp_json(rs, 200,
                 json_pack("{s:o, s:o}", "items", a ? a : json_array(), "next",
                           next[0] ? json_string(next) : json_null()));
}

/* ---- policies (read; writes arrive with the policy work) ---- */

static json_t *policy_json(const kw_policy_t *p)
{
    char a[KW_DURATION_STR_MAX], b[KW_DURATION_STR_MAX], c[KW_DURATION_STR_MAX];
    json_t *th = json_array();
    for (size_t i = 0; th && i < p->nthresholds; i++) {
        char t[KW_DURATION_STR_MAX];
        kw_duration_format(p->thresholds[i], t);
        json_array_append_new(th, json_string(t));
    }
    kw_duration_format(p->default_lifetime, a);
    kw_duration_format(p->max_lifetime, b);
    kw_duration_format(p->max_roll_overlap, c);
    char tl[KW_DURATION_STR_MAX];
    kw_duration_format(p->token_lifetime, tl);
    return json_pack("{s:s, s:s, s:s, s:b, s:b, s:b, s:o, s:s, s:s}", "name", p->name,
                     "default_lifetime", a, "max_lifetime", b, "allow_never_expire",
                     p->allow_never_expire, "renewable", p->renewable, "renewal_requires_approval",
                     p->renewal_requires_approval, "alert_thresholds", th ? th : json_array(),
                     "max_roll_overlap", c, "token_lifetime", tl);
}

void kw_h_policy_list(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs)
{
    kw_policy_t *ps = NULL;
    size_t n = 0;
    kw_err_t e = {0};
    if (kw_store_policy_list(s->store, &ps, &n, &e) != 0) {
        respond_err(rs, &e, "policies", "");
        return;
    }
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        json_array_append_new(a, policy_json(&ps[i]));
    free(ps);
    kw_resp_json(rs, 200, json_pack("{s:o, s:n}", "items", a ? a : json_array(), "next"));
}

void kw_h_policy_get(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs)
{
    kw_policy_t p;
    kw_err_t e = {0};
    if (!valid_policy_name(rq->caps[0])) {
        kw_resp_error(rs, KW_ENOTFOUND, NULL, "unknown policy");
        return;
    }
    if (kw_store_policy_get(s->store, rq->caps[0], &p, &e) != 0)
        respond_err(rs, &e, "policy", rq->caps[0]);
    else
        kw_resp_json(rs, 200, policy_json(&p));
}

/* Apply the policy fields present in b onto p. */
static int parse_policy(json_t *b, kw_policy_t *p, kw_resp_t *rs)
{
    static const struct {
        const char *name;
        size_t off;
    } durs[] = {{"default_lifetime", offsetof(kw_policy_t, default_lifetime)},
                {"max_lifetime", offsetof(kw_policy_t, max_lifetime)},
                {"max_roll_overlap", offsetof(kw_policy_t, max_roll_overlap)},
                {"token_lifetime", offsetof(kw_policy_t, token_lifetime)}};
    static const struct {
        const char *name;
        size_t off;
    } bools[] = {{"allow_never_expire", offsetof(kw_policy_t, allow_never_expire)},
                 {"renewable", offsetof(kw_policy_t, renewable)},
                 {"renewal_requires_approval", offsetof(kw_policy_t, renewal_requires_approval)}};
    for (size_t i = 0; i < sizeof(durs) / sizeof(durs[0]); i++) {
        json_t *v = json_object_get(b, durs[i].name);
        if (v == NULL)
            continue;
        if (!json_is_string(v) || kw_duration_parse(json_string_value(v), json_string_length(v),
                                                    (int64_t *)((char *)p + durs[i].off)) != 0) {
            kw_resp_error(rs, KW_EINVAL, durs[i].name, "%s must be a duration like 365d",
                          durs[i].name);
            return -1;
        }
    }
    for (size_t i = 0; i < sizeof(bools) / sizeof(bools[0]); i++) {
        json_t *v = json_object_get(b, bools[i].name);
        if (v == NULL)
            continue;
        if (!json_is_boolean(v)) {
            kw_resp_error(rs, KW_EINVAL, bools[i].name, "%s must be true or false", bools[i].name);
            return -1;
        }
        *(int *)((char *)p + bools[i].off) = json_is_true(v);
    }
    json_t *th = json_object_get(b, "alert_thresholds");
    if (th) {
        if (!json_is_array(th) || json_array_size(th) > KW_MAX_THRESHOLDS)
            return fail(rs, KW_EINVAL, "alert_thresholds",
                        "alert_thresholds must be an array of at most 8 durations");
        size_t i;
        json_t *v;
        p->nthresholds = 0;
        json_array_foreach(th, i, v)
        {
            if (!json_is_string(v) || kw_duration_parse(json_string_value(v), json_string_length(v),
                                                        &p->thresholds[i]) != 0)
                return fail(rs, KW_EINVAL, "alert_thresholds",
                            "alert_thresholds must be durations like 30d");
            p->nthresholds++;
        }
    }
    return 0;
}

static const char *const policy_fields[] = {"name",
                                            "default_lifetime",
                                            "max_lifetime",
                                            "allow_never_expire",
                                            "renewable",
                                            "renewal_requires_approval",
                                            "alert_thresholds",
                                            "max_roll_overlap",
                                            "token_lifetime",
                                            NULL};

void kw_h_policy_create(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs)
{
    kw_policy_t p;
    kw_err_t e = {0};
    const char *name = NULL;
    json_t *b = kw_api_body(rq, rs, policy_fields);
    if (b == NULL)
        return;
    if (get_str(b, "name", 63, 0, &name, NULL, rs))
        goto out;
    if (name == NULL || !valid_policy_name(name)) {
        fail(rs, KW_EINVAL, "name", "name is required and must match [a-z0-9_-]{1,63}");
        goto out;
    }
    kw_policy_defaults(&p, name);
    if (parse_policy(b, &p, rs))
        goto out;
    p.created_at = p.updated_at = rq->now;
    if (kw_lc_policy_put(&s->lc, rq->principal, &p, 1, &e) != 0)
        respond_err(rs, &e, "policy", name);
    else
        kw_resp_json(rs, 201, policy_json(&p));
out:
    json_decref(b);
}

void kw_h_policy_patch(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs)
{
    kw_policy_t p;
    kw_err_t e = {0};
    if (!valid_policy_name(rq->caps[0])) {
        kw_resp_error(rs, KW_ENOTFOUND, NULL, "unknown policy");
        return;
    }
    json_t *b = kw_api_body(rq, rs, policy_fields + 1); /* the name is the path */
    if (b == NULL)
        return;
    if (kw_store_policy_get(s->store, rq->caps[0], &p, &e) != 0) {
        respond_err(rs, &e, "policy", rq->caps[0]);
    } else if (parse_policy(b, &p, rs) == 0) {
        p.updated_at = rq->now;
        if (kw_lc_policy_put(&s->lc, rq->principal, &p, 0, &e) != 0)
            respond_err(rs, &e, "policy", rq->caps[0]);
        else
            kw_resp_json(rs, 200, policy_json(&p));
    }
    json_decref(b);
}

int kw_api_parse_contacts(json_t *v, char **out, kw_resp_t *rs)
{
    return parse_contacts(v, out, rs);
}
