/* h_watched.c - /v1/watched (SPEC §12): the inventory of keys and OAuth2 clients that others
 * issued, the current access token for applications, and the secrets key rotation.
 * Secrets from a request are sealed (secrets.c) before they reach the store; answers show
 * hints and expiries, never a secret or token (except the access token on /token).
 * Every change is audited in its own transaction with the change. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "contacts.h"
#include "core/audit.h"
#include "core/jdump.h"
#include "core/util.h"
#include "h_common.h"
#include "log.h"
#include "urlguard.h"
#include "watched.h"

#define MAX_SECRET 8192

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static json_t *jstr(const char *s)
{
    return s ? json_string(s) : json_null();
}

/* The object of a watched credential as answers show it: hints and expiries only. */
static json_t *watched_json(const kw_watched_t *w, int64_t now)
{
    int64_t tms = now_ms(); /* not now * 1000: a token lapsed this second is not valid */
    int64_t aexp = kw_watched_alert_expiry(w);
    json_t *j = json_pack(
        "{s:s, s:s, s:o, s:o, s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "id", w->id,
        "name", w->name, "provider", jstr(w->provider), "owner", jstr(w->owner), "kind", w->kind,
        "policy", w->policy, "contacts", kw_api_contacts_public(w->contacts_json), "secret_hint",
        w->secret_sealed ? json_string(w->secret_hint) : json_null(), "expires_at",
        kw_json_time(w->expires_at), "expires_in_s", aexp ? json_integer(aexp - now) : json_null(),
        "token_file", jstr(w->token_file), "created_at", kw_json_time(w->created_at), "updated_at",
        kw_json_time(w->updated_at), "deleted_at", kw_json_time(w->deleted_at));
    if (j == NULL || strcmp(w->kind, "oauth2") != 0)
        return j;
    const char *state = w->access_token_sealed == NULL ? "none"
                        : w->token_expires_ms > tms    ? "valid"
                                                       : "expired";
    json_t *o = json_pack(
        "{s:o, s:s, s:o, s:o, s:o, s:o, s:o, s:s}", "token_url", jstr(w->token_url), "grant_type",
        w->grant_type, "client_id", jstr(w->client_id), "client_secret_hint",
        w->client_secret_sealed ? json_string(w->client_secret_hint) : json_null(),
        "refresh_token_hint",
        w->refresh_token_sealed ? json_string(w->refresh_token_hint) : json_null(),
        "refresh_expires_at", kw_json_time(w->refresh_expires_at), "scope", jstr(w->scope),
        "auth_method", w->auth_method);
    json_t *t = json_pack("{s:s, s:o, s:o, s:o, s:o}", "state", state, "token_type",
                          w->token_type[0] ? json_string(w->token_type) : json_null(),
                          "obtained_at", kw_json_time(w->token_obtained_ms / 1000), "expires_at",
                          kw_json_time(w->token_expires_ms / 1000), "expires_in_s",
                          w->token_expires_ms ? json_integer((w->token_expires_ms - tms) / 1000)
                                              : json_null());
    json_t *r = json_pack(
        "{s:o, s:I, s:o, s:o, s:o, s:o}", "next_at",
        kw_json_time((w->next_refresh_ms + 999) / 1000), "failures", (json_int_t)w->failures,
        "last_error", w->last_error[0] ? json_string(w->last_error) : json_null(), "last_status",
        w->last_status ? json_integer(w->last_status) : json_null(), "last_attempt_at",
        kw_json_time(w->last_attempt_ms / 1000), "last_success_at",
        kw_json_time(w->last_success_ms / 1000));
    json_object_set_new(j, "oauth2", o ? o : json_null());
    json_object_set_new(j, "token", t ? t : json_null());
    json_object_set_new(j, "refresh", r ? r : json_null());
    return j;
}

static int fail(kw_resp_t *rs, const char *field, const char *msg)
{
    return kw_hc_fail(rs, KW_EINVAL, field, msg);
}

/* Optional string member: *out NULL when absent (or null with nullable: *clear = 1). */
static int get_str(json_t *o, const char *name, const char *field, size_t max, int allow_space,
                   const char **out, int *clear, kw_resp_t *rs)
{
    json_t *v = json_object_get(o, name);
    *out = NULL;
    if (clear)
        *clear = 0;
    if (v == NULL)
        return 0;
    if (json_is_null(v) && clear) {
        *clear = 1;
        return 0;
    }
    const char *s = json_string_value(v);
    if (s == NULL || json_string_length(v) == 0 || json_string_length(v) > max ||
        strlen(s) != json_string_length(v) || !kw_hc_printable(s, allow_space)) {
        kw_resp_error(rs, KW_EINVAL, field, "%s must be a string of 1 to %zu printable characters",
                      field, max);
        return -1;
    }
    *out = s;
    return 0;
}

static int get_time(json_t *o, const char *name, const char *field, int64_t *out, int *given,
                    kw_resp_t *rs)
{
    json_t *v = json_object_get(o, name);
    *given = v != NULL;
    if (v == NULL)
        return 0;
    if (json_is_null(v)) {
        *out = 0;
        return 0;
    }
    const char *s = json_string_value(v);
    if (s == NULL || kw_time_parse(s, json_string_length(v), out) != 0) {
        kw_resp_error(rs, KW_EINVAL, field, "%s must be an RFC 3339 time like 2027-01-31T00:00:00Z",
                      field);
        return -1;
    }
    return 0;
}

static int set_dup(char **dst, const char *v, kw_resp_t *rs)
{
    char *d = strdup(v);
    if (d == NULL) {
        kw_resp_error(rs, KW_ENOMEM, NULL, "out of memory");
        return -1;
    }
    free(*dst);
    *dst = d;
    return 0;
}

/* A nullable text member onto *dst: v (copied) when given, NULL when cleared. */
static int set_text(char **dst, const char *v, int clear, kw_resp_t *rs)
{
    if (v)
        return set_dup(dst, v, rs);
    if (clear) {
        free(*dst);
        *dst = NULL;
    }
    return 0;
}

static int seal_into(kw_server_t *s, const char *id, const char *plain, char **dst, char *hint,
                     kw_resp_t *rs)
{
    kw_err_t e = {0};
    char *sealed = NULL;
    if (kw_secrets_seal(s, id, plain, &sealed, &e) != 0) {
        kw_resp_problem(rs, &e);
        return -1;
    }
    free(*dst);
    *dst = sealed;
    if (hint)
        kw_secret_hint(plain, hint);
    return 0;
}

/* A token URL: http(s) and, unless --webhook-allow-private, not to a private address (a
 * name that does not resolve now is accepted: the refresher checks it on every call). */
static int check_token_url(kw_server_t *s, const char *url, kw_resp_t *rs)
{
    char why[200];
    if (strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0)
        return fail(rs, "oauth2.token_url", "oauth2.token_url must be an http:// or https:// URL");
    int r =
        kw_url_allowed(url, s->cfg.webhook_allow_private, why, sizeof(why), NULL, 0, NULL, NULL, 0);
    if (r != 0 && r != KW_ENOTFOUND) { /* not resolving (yet): the refresher checks again */
        kw_resp_error(rs, KW_EINVAL, "oauth2.token_url", "oauth2.token_url: %s", why);
        return -1;
    }
    return 0;
}

/* Apply the oauth2 object o to w (creating: every required field must come). *changed is
 * set when anything that affects the refresher changed. */
static int apply_oauth2(kw_server_t *s, json_t *o, kw_watched_t *w, int creating, int *changed,
                        kw_resp_t *rs)
{
    static const char *const allowed[] = {"token_url",     "grant_type",         "client_id",
                                          "client_secret", "refresh_token",      "scope",
                                          "auth_method",   "refresh_expires_at", NULL};
    const char *k, *v;
    json_t *f;
    int clear;
    if (!json_is_object(o))
        return fail(rs, "oauth2", "oauth2 must be an object");
    json_object_foreach(o, k, f)
    {
        int ok = 0;
        for (size_t i = 0; allowed[i] && !ok; i++)
            ok = strcmp(allowed[i], k) == 0;
        if (!ok) {
            kw_resp_error(rs, KW_EINVAL, "oauth2", "unknown field 'oauth2.%.40s'", k);
            return -1;
        }
    }
    if (get_str(o, "token_url", "oauth2.token_url", 2048, 0, &v, NULL, rs))
        return -1;
    if (v && (check_token_url(s, v, rs) || set_dup(&w->token_url, v, rs)))
        return -1;
    *changed |= v != NULL;
    if (get_str(o, "grant_type", "oauth2.grant_type", 32, 0, &v, NULL, rs))
        return -1;
    if (v) {
        if (strcmp(v, "client_credentials") != 0 && strcmp(v, "refresh_token") != 0)
            return fail(rs, "oauth2.grant_type",
                        "oauth2.grant_type must be client_credentials or refresh_token");
        snprintf(w->grant_type, sizeof(w->grant_type), "%s", v);
        *changed = 1;
    }
    if (get_str(o, "client_id", "oauth2.client_id", 512, 0, &v, NULL, rs))
        return -1;
    if (v && set_dup(&w->client_id, v, rs))
        return -1;
    *changed |= v != NULL;
    if (get_str(o, "client_secret", "oauth2.client_secret", MAX_SECRET, 1, &v, &clear, rs))
        return -1;
    if (v && seal_into(s, w->id, v, &w->client_secret_sealed, w->client_secret_hint, rs))
        return -1;
    if (clear) {
        free(w->client_secret_sealed);
        w->client_secret_sealed = NULL;
    }
    *changed |= v != NULL || clear;
    if (get_str(o, "refresh_token", "oauth2.refresh_token", MAX_SECRET, 0, &v, NULL, rs))
        return -1;
    if (v) {
        if (seal_into(s, w->id, v, &w->refresh_token_sealed, w->refresh_token_hint, rs))
            return -1;
        free(w->refresh_token_prev_sealed); /* a new grant: the old one is not kept */
        w->refresh_token_prev_sealed = NULL;
        *changed = 1;
    }
    if (get_str(o, "scope", "oauth2.scope", 1024, 1, &v, &clear, rs) ||
        set_text(&w->scope, v, clear, rs))
        return -1;
    *changed |= v != NULL || clear;
    if (get_str(o, "auth_method", "oauth2.auth_method", 8, 0, &v, NULL, rs))
        return -1;
    if (v) {
        if (strcmp(v, "basic") != 0 && strcmp(v, "post") != 0)
            return fail(rs, "oauth2.auth_method", "oauth2.auth_method must be basic or post");
        snprintf(w->auth_method, sizeof(w->auth_method), "%s", v);
        *changed = 1;
    }
    int given;
    if (get_time(o, "refresh_expires_at", "oauth2.refresh_expires_at", &w->refresh_expires_at,
                 &given, rs))
        return -1;
    if (creating && !w->auth_method[0])
        snprintf(w->auth_method, sizeof(w->auth_method), "basic");
    if (w->token_url == NULL)
        return fail(rs, "oauth2.token_url", "oauth2.token_url is required");
    if (!w->grant_type[0])
        return fail(rs, "oauth2.grant_type", "oauth2.grant_type is required");
    if (w->client_id == NULL)
        return fail(rs, "oauth2.client_id", "oauth2.client_id is required");
    if (strcmp(w->grant_type, "client_credentials") == 0 && w->client_secret_sealed == NULL)
        return fail(rs, "oauth2.client_secret",
                    "oauth2.client_secret is required for the client_credentials grant");
    if (strcmp(w->grant_type, "refresh_token") == 0 && w->refresh_token_sealed == NULL)
        return fail(rs, "oauth2.refresh_token",
                    "oauth2.refresh_token is required for the refresh_token grant");
    return 0;
}

/* The fields shared by create and patch. *replaced: a new secret was given; *oauth_changed:
 * the refresher must start over. */
static int apply_body(kw_server_t *s, json_t *b, kw_watched_t *w, int creating, int *replaced,
                      int *oauth_changed, char **contacts_out, json_t **gen,
                      const char *old_contacts, kw_resp_t *rs)
{
    const char *v;
    int clear, given;
    json_t *o;
    kw_err_t e = {0};
    if (get_str(b, "name", "name", 200, 1, &v, NULL, rs))
        return -1;
    if (creating && v == NULL)
        return fail(rs, "name", "name is required");
    if (v)
        snprintf(w->name, sizeof(w->name), "%s", v);
    if (get_str(b, "provider", "provider", 200, 1, &v, &clear, rs) ||
        set_text(&w->provider, v, clear, rs))
        return -1;
    if (get_str(b, "owner", "owner", 320, 1, &v, &clear, rs) || set_text(&w->owner, v, clear, rs))
        return -1;
    if (get_str(b, "policy", "policy", 63, 0, &v, NULL, rs))
        return -1;
    if (v) {
        kw_policy_t p;
        if (kw_store_policy_get(s->store, v, &p, &e) != 0)
            return fail(rs, "policy", "policy does not exist");
        snprintf(w->policy, sizeof(w->policy), "%s", v);
    }
    if ((o = json_object_get(b, "contacts"))) {
        char *text = NULL;
        if (kw_api_parse_contacts(o, &text, rs))
            return -1;
        if (kw_contacts_prepare(s, &text, old_contacts, gen, rs)) {
            free(text);
            return -1;
        }
        *contacts_out = text;
    }
    if (get_time(b, "expires_at", "expires_at", &w->expires_at, &given, rs))
        return -1;
    if (get_str(b, "kind", "kind", 8, 0, &v, NULL, rs))
        return -1;
    if (creating) {
        if (v == NULL || (strcmp(v, "static") != 0 && strcmp(v, "oauth2") != 0))
            return fail(rs, "kind", "kind is required: static or oauth2");
        snprintf(w->kind, sizeof(w->kind), "%s", v);
    } else if (v && strcmp(v, w->kind) != 0) {
        return fail(rs, "kind", "kind cannot be changed; create a new watched credential");
    }
    if (get_str(b, "secret", "secret", MAX_SECRET, 1, &v, NULL, rs))
        return -1;
    if (v) {
        if (seal_into(s, w->id, v, &w->secret_sealed, w->secret_hint, rs))
            return -1;
        *replaced = 1;
    }
    int is_oauth = strcmp(w->kind, "oauth2") == 0;
    o = json_object_get(b, "oauth2");
    if (o && !is_oauth)
        return fail(rs, "oauth2", "oauth2 is only for kind oauth2");
    if (is_oauth && creating && o == NULL)
        return fail(rs, "oauth2", "oauth2 is required for kind oauth2");
    if (o && apply_oauth2(s, o, w, creating, oauth_changed, rs))
        return -1;
    if (get_str(b, "token_file", "token_file", 1024, 0, &v, &clear, rs))
        return -1;
    if ((v || clear) && !is_oauth)
        return fail(rs, "token_file", "token_file is only for kind oauth2");
    if (v && v[0] != '/')
        return fail(rs, "token_file", "token_file must be an absolute path");
    return set_text(&w->token_file, v, clear, rs);
}

static json_t *audit_detail(const kw_watched_t *w, int replaced)
{
    json_t *d = json_pack("{s:s, s:s}", "name", w->name, "kind", w->kind);
    if (d && w->expires_at)
        json_object_set_new(d, "expires_at", kw_json_time(w->expires_at));
    if (d && replaced)
        json_object_set_new(d, "replaced_secret_hint", json_string(w->secret_hint));
    return d;
}

/* Inside the write: insert w with its audit record (token_read_run: the record alone).
 * detail stays the caller's: a run may run twice, so each run takes a reference for the
 * append to consume. */
typedef struct put_tx {
    kw_watched_t *w;
    const char *actor, *action;
    json_t *detail;
    int64_t now;
} put_tx_t;

static int put_run(kw_store_t *st, void *ud, kw_err_t *err)
{
    const put_tx_t *t = ud;
    int rc = kw_store_watched_insert(st, t->w, err);
    if (rc == 0)
        rc = kw_audit_append(st, t->actor, t->action, t->w->id, "ok", json_incref(t->detail),
                             t->now, err);
    return rc;
}

/* Insert w with its audit record (detail consumed) in one write. */
static int commit_insert(kw_server_t *s, kw_watched_t *w, const char *actor, const char *action,
                         json_t *detail, int64_t now, kw_err_t *e)
{
    put_tx_t t = {.w = w, .actor = actor, .action = action, .detail = detail, .now = now};
    int rc = kw_lc_tx(&s->lc, put_run, NULL, &t, e);
    json_decref(detail);
    return rc;
}

void kw_h_watched_create(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs)
{
    static const char *const allowed[] = {"name",   "provider",   "owner", "contacts",
                                          "policy", "expires_at", "kind",  "secret",
                                          "oauth2", "token_file", NULL};
    kw_watched_t w;
    kw_err_t e = {0};
    json_t *gen = NULL;
    char *contacts = NULL;
    int replaced = 0, changed = 0;
    memset(&w, 0, sizeof(w));
    json_t *b = kw_api_body(rq, rs, allowed);
    if (b == NULL)
        return;
    if (kw_id_new("wat", w.id)) {
        kw_resp_error(rs, KW_EINTERNAL, NULL, "could not read the system random source");
        goto out;
    }
    snprintf(w.policy, sizeof(w.policy), "default");
    if (apply_body(s, b, &w, 1, &replaced, &changed, &contacts, &gen, NULL, rs))
        goto out;
    w.contacts_json = contacts ? contacts : strdup("[]");
    contacts = NULL;
    w.created_at = w.updated_at = rq->now;
    w.next_refresh_ms = 0; /* the refresher obtains a first token now */
    if (commit_insert(s, &w, rq->principal, "watched.create", audit_detail(&w, 0), rq->now, &e) !=
        0) {
        kw_hc_respond_err(rs, &e, "watched credential", w.id);
        goto out;
    }
    if (strcmp(w.kind, "oauth2") == 0)
        kw_refresher_wake(s->refresher);
    kw_resp_json(rs, 201, watched_json(&w, rq->now));
    kw_contacts_attach(rs, gen);
    gen = NULL;
    kw_log(KW_LOG_INFO, "watched credential created", "{s:s, s:s}", "watched", w.id, "kind",
           w.kind);
out:
    json_decref(gen);
    free(contacts);
    kw_watched_clear(&w);
    json_decref(b);
}

void kw_h_watched_list(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs)
{
    kw_watched_filter_t f = {
        .owner = kw_req_query(rq, "owner"), .kind = kw_req_query(rq, "kind"), .now = rq->now};
    kw_watched_t *items = NULL;
    size_t n = 0;
    kw_err_t e = {0};
    if (kw_api_query_limit(rq, rs, KW_HC_DEFAULT_LIMIT, KW_HC_MAX_LIMIT, &f.limit))
        return;
    if (f.kind && strcmp(f.kind, "static") != 0 && strcmp(f.kind, "oauth2") != 0) {
        fail(rs, "kind", "kind must be static or oauth2");
        return;
    }
    if (kw_hc_list_query(rq, rs, rq->now, &f.expiring_before, &f.after_seq))
        return;
    f.limit += 1;
    if (kw_store_watched_list(s->store, &f, &items, &n, &e) != 0) {
        kw_hc_respond_err(rs, &e, "watched credential", "");
        return;
    }
    size_t shown = n > f.limit - 1 ? f.limit - 1 : n;
    json_t *a = json_array();
    for (size_t i = 0; a && i < shown; i++)
        json_array_append_new(a, watched_json(&items[i], rq->now));
    kw_api_page_seq(rs, a, n > shown, shown ? items[shown - 1].seq : 0);
    kw_watched_array_free(items, n);
}

void kw_h_watched_get(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs)
{
    kw_watched_t w = {0};
    kw_err_t e = {0};
    if (kw_hc_id(rq, rs, "wat", "watched credential"))
        return;
    if (kw_store_watched_get(s->store, rq->caps[0], &w, &e) != 0)
        kw_hc_respond_err(rs, &e, "watched credential", rq->caps[0]);
    else
        kw_resp_json(rs, 200, watched_json(&w, rq->now));
    kw_watched_clear(&w);
}

/* Inside the write: read the row, apply the body, write it with its audit record. Read,
 * change and write in one write, so a refresh committed meanwhile is not overwritten (the
 * refresher re-reads in its own and drops a result of an older gen). A run may run again,
 * so the body's refusal goes to t->refused, not to the caller's response: the caller
 * answers once, after kw_lc_tx returns. */
typedef struct patch_tx {
    kw_server_t *s;
    json_t *body;
    const char *id, *actor;
    int64_t now;
    kw_watched_t *w; /* outputs, reset by every run */
    json_t *gen;
    kw_resp_t refused; /* the answer when the body is refused (status != 0) */
    int replaced, changed;
} patch_tx_t;

static void patch_reset(patch_tx_t *t)
{
    kw_watched_clear(t->w);
    json_decref(t->gen);
    t->gen = NULL;
    free(t->refused.body);
    memset(&t->refused, 0, sizeof(t->refused));
    t->replaced = t->changed = 0;
}

static int patch_run(kw_store_t *st, void *ud, kw_err_t *err)
{
    patch_tx_t *t = ud;
    kw_watched_t *w = t->w;
    char *contacts = NULL;
    patch_reset(t);
    int rc = kw_store_watched_get(st, t->id, w, err);
    if (rc)
        return rc;
    if (apply_body(t->s, t->body, w, 0, &t->replaced, &t->changed, &contacts, &t->gen,
                   w->contacts_json, &t->refused)) {
        free(contacts);
        return kw_err_set(err, KW_EINVAL, NULL, "request body refused");
    }
    if (contacts) {
        free(w->contacts_json);
        w->contacts_json = contacts;
    }
    w->updated_at = t->now;
    w->gen++;
    if (t->changed) { /* a new client configuration: start over now */
        w->next_refresh_ms = 0;
        w->failures = 0;
        w->last_error[0] = '\0';
    }
    rc = kw_store_watched_update(st, w, err);
    if (rc == 0)
        rc = kw_audit_append(st, t->actor, t->replaced ? "watched.replace" : "watched.update",
                             w->id, "ok", audit_detail(w, t->replaced), t->now, err);
    return rc;
}

void kw_h_watched_patch(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs)
{
    static const char *const allowed[] = {"name",   "provider",   "owner", "contacts",
                                          "policy", "expires_at", "kind",  "secret",
                                          "oauth2", "token_file", NULL};
    kw_watched_t w = {0};
    kw_err_t e = {0};
    json_t *b = kw_hc_id_body(rq, rs, "wat", "watched credential", allowed);
    if (b == NULL)
        return;
    patch_tx_t t = {
        .s = s, .body = b, .id = rq->caps[0], .actor = rq->principal, .now = rq->now, .w = &w};
    int rc = kw_lc_tx(&s->lc, patch_run, NULL, &t, &e);
    if (t.refused.status) { /* the body's answer (its errors carry no headers) */
        free(rs->body);
        rs->status = t.refused.status;
        rs->ctype = t.refused.ctype;
        rs->body = t.refused.body;
        rs->len = t.refused.len;
        t.refused.body = NULL;
    } else if (rc) {
        kw_hc_respond_err(rs, &e, "watched credential", rq->caps[0]);
    } else {
        if (t.changed)
            kw_refresher_wake(s->refresher);
        kw_resp_json(rs, 200, watched_json(&w, rq->now));
        kw_contacts_attach(rs, t.gen);
        t.gen = NULL;
    }
    patch_reset(&t);
    json_decref(b);
}

/* Inside the write: read the row, drop its secrets, mark it deleted, audit. */
typedef struct delete_tx {
    const char *id, *actor;
    kw_watched_t *w; /* output, reset by every run */
    int found;
    int64_t now;
} delete_tx_t;

static int delete_run(kw_store_t *st, void *ud, kw_err_t *err)
{
    delete_tx_t *t = ud;
    kw_watched_t *w = t->w;
    kw_watched_clear(w);
    t->found = 0;
    int rc = kw_store_watched_get(st, t->id, w, err);
    if (rc)
        return rc;
    t->found = 1;
    /* the row stays (events name it); its secrets go */
    char **sealed[] = {&w->secret_sealed, &w->client_secret_sealed, &w->refresh_token_sealed,
                       &w->refresh_token_prev_sealed, &w->access_token_sealed};
    for (size_t i = 0; i < sizeof(sealed) / sizeof(sealed[0]); i++) {
        free(*sealed[i]);
        *sealed[i] = NULL;
    }
    w->deleted_at = w->updated_at = t->now;
    w->gen++;
    rc = kw_store_watched_update(st, w, err);
    if (rc == 0)
        rc = kw_audit_append(st, t->actor, "watched.delete", w->id, "ok",
                             json_pack("{s:s}", "name", w->name), t->now, err);
    return rc;
}

void kw_h_watched_delete(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs)
{
    kw_watched_t w = {0};
    kw_err_t e = {0};
    if (kw_hc_id(rq, rs, "wat", "watched credential"))
        return;
    delete_tx_t t = {.id = rq->caps[0], .w = &w, .actor = rq->principal, .now = rq->now};
    int rc = kw_lc_tx(&s->lc, delete_run, NULL, &t, &e);
    if (rc != 0 && !t.found) {
        kw_hc_respond_err(rs, &e, "watched credential", rq->caps[0]);
        return;
    }
    if (rc != 0)
        kw_hc_respond_err(rs, &e, "watched credential", w.id);
    else
        kw_resp_json(rs, 200, watched_json(&w, rq->now));
    kw_refresher_wake(s->refresher);
    kw_watched_clear(&w);
}

static int token_read_run(kw_store_t *st, void *ud, kw_err_t *err)
{
    const put_tx_t *t = ud;
    return kw_audit_append(st, t->actor, "watched.token.read", t->w->id, "ok",
                           json_incref(t->detail), t->now, err);
}

/* Who may read a token: admin, or a key holding keyward:token:<id>. */
static int token_allowed(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs, const char *id)
{
    const char *key = kw_api_request_key(rq);
    if (key == NULL || *key == '\0') {
        kw_resp_error(rs, KW_EUNAUTH, NULL,
                      "this endpoint needs a key with scope keyward:token:%s or an admin key", id);
        kw_resp_header(rs, "WWW-Authenticate", "Bearer realm=\"keyward\"");
        return -1;
    }
    kw_verify_req_t vq = {.key = key, .key_len = strlen(key), .now = rq->now};
    kw_verify_res_t vr;
    char want[96];
    int ok = 0;
    snprintf(want, sizeof(want), "keyward:token:%s", id);
    kw_index_verify(s->index, &vq, &vr);
    if (vr.code != KW_V_VALID && vr.code != KW_V_FORBIDDEN_IP && vr.code != KW_V_FORBIDDEN_SCOPE) {
        char msg[128];
        kw_verify_message(vr.code, NULL, msg, sizeof(msg));
        if (vr.cred)
            snprintf(rq->principal, sizeof(rq->principal), "%s", vr.cred->id);
        kw_verify_res_release(&vr);
        kw_resp_error(rs, KW_EUNAUTH, NULL, "%s", msg);
        kw_resp_header(rs, "WWW-Authenticate", "Bearer realm=\"keyward\", error=\"invalid_token\"");
        return -1;
    }
    snprintf(rq->principal, sizeof(rq->principal), "%s", vr.cred->id);
    ok = (kw_api_roles(vr.cred) & KW_ROLE_ADMIN) != 0;
    for (size_t i = 0; !ok && i < vr.cred->facts->nscopes; i++)
        ok = strcmp(vr.cred->facts->scopes[i], want) == 0;
    kw_verify_res_release(&vr);
    if (!ok) {
        kw_resp_error(rs, KW_EFORBIDDEN, NULL, "principal %s lacks the scope %s", rq->principal,
                      want);
        return -1;
    }
    return 0;
}

void kw_h_watched_token(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs)
{
    kw_watched_t w = {0};
    kw_err_t e = {0};
    char *tok = NULL, peer[64];
    if (kw_hc_id(rq, rs, "wat", "watched credential"))
        return;
    kw_resp_header(rs, "Cache-Control", "no-store");
    if (token_allowed(s, rq, rs, rq->caps[0]) != 0) {
        kw_api_audit_denied(s, rq, "v1/watched/*/token", rs->status,
                            kw_req_peer(rq, peer, sizeof(peer)));
        return;
    }
    if (kw_store_watched_get(s->store, rq->caps[0], &w, &e) != 0) {
        kw_hc_respond_err(rs, &e, "watched credential", rq->caps[0]);
        return;
    }
    int64_t t = now_ms();
    if (strcmp(w.kind, "oauth2") != 0) {
        kw_resp_error(rs, KW_ECONFLICT, NULL,
                      "%s is a static watched credential: it has no access token", w.id);
        goto out;
    }
    if (w.access_token_sealed == NULL || w.token_expires_ms <= t) {
        kw_resp_error(rs, KW_ESTORE, NULL, "no valid access token for %s yet%s%.200s", w.id,
                      w.last_error[0] ? "; last refresh: " : "", w.last_error);
        kw_resp_header(rs, "Retry-After", "5");
        goto out;
    }
    if (kw_secrets_open(s, w.id, w.access_token_sealed, &tok, &e) != 0) {
        kw_resp_error(rs, KW_EINTERNAL, NULL,
                      "the stored token of %s cannot be opened with the "
                      "secrets key file",
                      w.id);
        goto out;
    }
    /* audited before it is handed out; never with the token */
    json_t *d = json_pack("{s:o}", "token_expires_at", kw_json_time(w.token_expires_ms / 1000));
    put_tx_t pt = {.w = &w, .actor = rq->principal, .detail = d, .now = rq->now};
    e.code = kw_lc_tx(&s->lc, token_read_run, NULL, &pt, &e);
    json_decref(d);
    if (e.code != 0) {
        kw_resp_error(rs, KW_ESTORE, NULL, "audit trail unavailable: the token is not handed out");
        goto out;
    }
    kw_resp_json(rs, 200,
                 json_pack("{s:s, s:s, s:o, s:I}", "access_token", tok, "token_type",
                           w.token_type[0] ? w.token_type : "Bearer", "expires_at",
                           kw_json_time(w.token_expires_ms / 1000), "expires_in",
                           (json_int_t)((w.token_expires_ms - t) / 1000)));
out:
    kw_secrets_free(tok);
    kw_watched_clear(&w);
}

void kw_h_secrets_rotate(kw_server_t *s, kw_req_t *rq, kw_resp_t *rs)
{
    kw_err_t e = {0};
    size_t n = 0;
    json_t *b = kw_api_body(rq, rs, NULL);
    if (b == NULL)
        return;
    json_decref(b);
    if (kw_secrets_rotate(s, rq->principal, rq->now, &n, &e) != 0) {
        kw_hc_respond_err(rs, &e, "watched credential", "");
        return;
    }
    kw_log(KW_LOG_INFO, "secrets key rotated", "{s:I}", "resealed", (json_int_t)n);
    kw_resp_json(rs, 200, json_pack("{s:I}", "resealed", (json_int_t)n));
}
