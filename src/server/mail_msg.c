/* mail_msg.c - composes alert e-mails from templates (mail_msg.h, docs/mail.md): which
 * fields each event type offers, the values of those fields for one event, and the MIME
 * wrapping (CRLF, quoted-printable UTF-8, RFC 2047 subject, multipart/alternative).
 * Must not: render anything but named fields, put a secret in a message, or let a value
 * start a header line. */
#include "mail_msg.h"

#include <dirent.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "api.h"
#include "core/duration.h"
#include "core/mime.h"
#include "core/sink.h"
#include "core/tmpl.h"
#include "core/util.h"

#define SUBJECT_MAX 900 /* rendered subject, bytes, before encoding */

/* ---- which fields each event type offers ---- */

enum {
    G_ALL = 1u << 0,      /* every message */
    G_KEY = 1u << 1,      /* a key of a credential */
    G_EXPIRING = 1u << 2, /* threshold */
    G_ROLLED = 1u << 3,   /* previous.* */
    G_RENEWED = 1u << 4,  /* key.previous_expires_* */
    G_INVAL = 1u << 5,    /* reason */
    G_REN = 1u << 6,      /* renewal.* of a request */
    G_DECIDED = 1u << 7,  /* renewal.decided_by, note */
    G_WATCHED = 1u << 8,  /* watched.* */
    G_WFAIL = 1u << 9,    /* a failed refresh */
};

static const struct field {
    const char *name;
    unsigned group;
} FIELDS[] = {
    {"event.id", G_ALL},
    {"event.type", G_ALL},
    {"event.occurred_at", G_ALL},
    {"event.occurred_date", G_ALL},
    {"recipient", G_ALL},
    {"help.contact", G_ALL},
    {"link.console", G_ALL},
    {"audience.consumer", G_ALL},
    {"audience.operator", G_ALL},
    {"credential.id", G_KEY},
    {"credential.name", G_KEY},
    {"credential.owner", G_KEY},
    {"link.credential", G_KEY},
    {"key.id", G_KEY},
    {"key.hint", G_KEY},
    {"key.slot", G_KEY},
    {"key.slot_name", G_KEY},
    {"key.expires_at", G_KEY},
    {"key.expires_date", G_KEY},
    {"key.expires_in", G_KEY},
    {"threshold", G_EXPIRING},
    {"previous.id", G_ROLLED},
    {"previous.hint", G_ROLLED},
    {"previous.slot", G_ROLLED},
    {"previous.expires_at", G_ROLLED},
    {"previous.expires_date", G_ROLLED},
    {"previous.expires_in", G_ROLLED},
    {"key.previous_expires_at", G_RENEWED},
    {"key.previous_expires_date", G_RENEWED},
    {"renewal.id", G_RENEWED | G_REN},
    {"reason", G_INVAL},
    {"renewal.requested_by", G_REN},
    {"renewal.extension", G_REN},
    {"renewal.reason", G_REN},
    {"link.renewals", G_REN},
    {"renewal.decided_by", G_DECIDED},
    {"renewal.note", G_DECIDED},
    {"watched.id", G_WATCHED},
    {"watched.name", G_WATCHED},
    {"watched.provider", G_WATCHED},
    {"watched.provider_label", G_WATCHED},
    {"watched.kind", G_WATCHED},
    {"watched.oauth2", G_WATCHED},
    {"watched.owner", G_WATCHED},
    {"watched.expires_at", G_WATCHED},
    {"watched.expires_date", G_WATCHED},
    {"watched.expires_in", G_WATCHED},
    {"watched.http_status", G_WFAIL},
    {"watched.error", G_WFAIL},
    {"watched.error_description", G_WFAIL},
    {"watched.failures", G_WFAIL},
};

static const struct evtype {
    const char *type;
    unsigned groups;
} EVENTS[] = {
    {"key.created", G_ALL | G_KEY},
    {"key.rolled", G_ALL | G_KEY | G_ROLLED},
    {"key.expiring", G_ALL | G_KEY | G_EXPIRING},
    {"key.expired", G_ALL | G_KEY},
    {"key.renewed", G_ALL | G_KEY | G_RENEWED},
    {"key.invalidated", G_ALL | G_KEY | G_INVAL},
    {"renewal.requested", G_ALL | G_KEY | G_REN},
    {"renewal.approved", G_ALL | G_KEY | G_REN | G_DECIDED},
    {"renewal.rejected", G_ALL | G_KEY | G_REN | G_DECIDED},
    {"watched.expiring", G_ALL | G_WATCHED | G_EXPIRING},
    {"watched.expired", G_ALL | G_WATCHED},
    {"watched.refresh_failed", G_ALL | G_WATCHED | G_WFAIL},
    {"watched.recovered", G_ALL | G_WATCHED},
    {"default", G_ALL | G_KEY}, /* any other type: default.txt */
};
#define NEVENTS (sizeof(EVENTS) / sizeof(EVENTS[0]))
#define DEFAULT_EV (NEVENTS - 1)

static int known_field(void *ud, const char *name)
{
    unsigned groups = *(const unsigned *)ud;
    for (size_t i = 0; i < sizeof(FIELDS) / sizeof(FIELDS[0]); i++)
        if (strcmp(FIELDS[i].name, name) == 0)
            return (FIELDS[i].group & groups) != 0;
    return 0;
}

/* ---- the template set ---- */

typedef struct mail_tmpl {
    kw_tmpl_t *subject, *text, *html; /* html may be NULL */
} mail_tmpl_t;

struct kw_mail_set {
    mail_tmpl_t t[NEVENTS];
};

void kw_mail_set_free(kw_mail_set_t *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < NEVENTS; i++) {
        kw_tmpl_free(s->t[i].subject);
        kw_tmpl_free(s->t[i].text);
        kw_tmpl_free(s->t[i].html);
    }
    free(s);
}

/* "<type>.txt" or "<type>.html" -> event index and whether html; -1 if not a template. */
static int template_index(const char *file, int *html)
{
    const char *dot = strrchr(file, '.');
    if (dot == NULL)
        return -1;
    if (strcmp(dot, ".txt") == 0)
        *html = 0;
    else if (strcmp(dot, ".html") == 0)
        *html = 1;
    else
        return -1;
    for (size_t i = 0; i < NEVENTS; i++)
        if (strlen(EVENTS[i].type) == (size_t)(dot - file) &&
            strncmp(file, EVENTS[i].type, (size_t)(dot - file)) == 0)
            return (int)i;
    return -2;
}

/* A .txt template: header lines (comments and exactly one "Subject:"), a blank line, the
 * body. Each part is parsed on its own so errors keep the file's line numbers. */
static int parse_txt(const char *text, size_t len, const char *origin, unsigned groups,
                     mail_tmpl_t *mt, kw_err_t *err)
{
    size_t pos = 0;
    unsigned line = 1;
    const char *subj = NULL;
    size_t subj_len = 0;
    unsigned subj_line = 0;
    for (;;) {
        if (pos >= len)
            return kw_err_set(err, KW_EINVAL, NULL,
                              "%s:%u: no blank line between the Subject: header and the body",
                              origin, line);
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - text) : len, l = end - pos;
        const char *s = text + pos;
        if (l && s[l - 1] == '\r')
            l--;
        if (l == 0)
            break;
        if (l >= 3 && strncmp(s, "{{!", 3) == 0 && l >= 5 && strncmp(s + l - 2, "}}", 2) == 0) {
            /* a comment line */
        } else if (l >= 8 && strncasecmp(s, "Subject:", 8) == 0) {
            if (subj)
                return kw_err_set(err, KW_EINVAL, NULL, "%s:%u: a second Subject: header", origin,
                                  line);
            subj = s + 8;
            subj_len = l - 8;
            while (subj_len && (*subj == ' ' || *subj == '\t'))
                subj++, subj_len--;
            subj_line = line;
        } else {
            return kw_err_set(err, KW_EINVAL, NULL,
                              "%s:%u: only a 'Subject:' header (or a {{! comment}}) may come "
                              "before the blank line that starts the body",
                              origin, line);
        }
        pos = end + 1;
        line++;
    }
    if (subj == NULL)
        return kw_err_set(err, KW_EINVAL, NULL, "%s:1: no 'Subject:' header", origin);
    if (subj_len == 0)
        return kw_err_set(err, KW_EINVAL, NULL, "%s:%u: empty Subject:", origin, subj_line);
    const char *nl = memchr(text + pos, '\n', len - pos);
    size_t body = nl ? (size_t)(nl - text) + 1 : len;
    kw_tmpl_t *a = NULL, *b = NULL;
    int rc = kw_tmpl_parse(subj, subj_len, origin, subj_line, known_field, &groups, &a, err);
    if (rc == 0)
        rc =
            kw_tmpl_parse(text + body, len - body, origin, line + 1, known_field, &groups, &b, err);
    if (rc) {
        kw_tmpl_free(a);
        return rc;
    }
    kw_tmpl_free(mt->subject);
    kw_tmpl_free(mt->text);
    mt->subject = a;
    mt->text = b;
    return 0;
}

static int load_one(kw_mail_set_t *s, const char *file, const char *text, size_t len,
                    const char *origin, kw_err_t *err)
{
    int html = 0, i = template_index(file, &html);
    if (i < 0) {
        return kw_err_set(err, KW_EINVAL, NULL,
                          "%s: not a template name: want <event type>.txt or .html (key.created, "
                          "key.rolled, key.expiring, key.expired, key.renewed, key.invalidated, "
                          "renewal.requested|approved|rejected, watched.expiring|expired|"
                          "refresh_failed|recovered) or default.txt",
                          origin);
    }
    unsigned groups = EVENTS[i].groups;
    if (!html)
        return parse_txt(text, len, origin, groups, &s->t[i], err);
    kw_tmpl_t *h = NULL;
    int rc = kw_tmpl_parse(text, len, origin, 1, known_field, &groups, &h, err);
    if (rc == 0) {
        kw_tmpl_free(s->t[i].html);
        s->t[i].html = h;
    }
    return rc;
}

static int load_dir(kw_mail_set_t *s, const char *dir, kw_err_t *err)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return kw_err_set(err, KW_EINVAL, "mail-templates", "mail-templates: cannot open %s: %m",
                          dir);
    int rc = 0;
    struct dirent *de;
    char path[KW_PATH_MAX + 256];
    char *buf = malloc(KW_TMPL_TEXT_MAX + 1);
    if (buf == NULL)
        rc = kw_err_set(err, KW_ENOMEM, NULL, "out of memory");
    while (rc == 0 && (de = readdir(d)) != NULL) {
        int html;
        if (de->d_name[0] == '.' || template_index(de->d_name, &html) == -1)
            continue; /* not .txt / .html: a README, an editor's backup */
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        FILE *f = fopen(path, "rb");
        if (f == NULL) {
            rc = kw_err_set(err, KW_EINVAL, "mail-templates", "%s: cannot read: %m", path);
            break;
        }
        size_t n = fread(buf, 1, KW_TMPL_TEXT_MAX + 1, f);
        int bad = ferror(f);
        fclose(f);
        if (bad)
            rc = kw_err_set(err, KW_EINVAL, "mail-templates", "%s: cannot read", path);
        else if (n > KW_TMPL_TEXT_MAX)
            rc = kw_err_set(err, KW_EINVAL, "mail-templates", "%s: larger than %d bytes", path,
                            KW_TMPL_TEXT_MAX);
        else
            rc = load_one(s, de->d_name, buf, n, path, err);
    }
    free(buf);
    closedir(d);
    return rc;
}

int kw_mail_set_load(const char *dir, kw_mail_set_t **out, kw_err_t *err)
{
    kw_mail_set_t *s = calloc(1, sizeof(*s));
    int rc = 0;
    char origin[128];
    if (s == NULL)
        return kw_err_set(err, KW_ENOMEM, NULL, "out of memory");
    for (size_t i = 0; rc == 0 && kw_mail_builtin[i].name; i++) {
        snprintf(origin, sizeof(origin), "(built-in) %s", kw_mail_builtin[i].name);
        rc = load_one(s, kw_mail_builtin[i].name, kw_mail_builtin[i].text,
                      strlen(kw_mail_builtin[i].text), origin, err);
    }
    if (rc == 0 && dir && *dir)
        rc = load_dir(s, dir, err);
    for (size_t i = 0; rc == 0 && i < NEVENTS; i++)
        if (s->t[i].text == NULL)
            rc = kw_err_set(err, KW_EINTERNAL, NULL, "no template for %s", EVENTS[i].type);
    if (rc) {
        kw_mail_set_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

/* ---- values of one event ---- */

typedef struct vals {
    json_t *m; /* name -> string */
} vals_t;

static const char *val_get(void *ud, const char *name)
{
    return json_string_value(json_object_get(((vals_t *)ud)->m, name));
}

static void vset(vals_t *v, const char *name, const char *s)
{
    if (s && *s)
        json_object_set_new(v->m, name, json_string(s));
}

static const char *pstr(json_t *p, const char *k)
{
    return json_string_value(json_object_get(p, k));
}

/* "Sun 22 Nov 2026 23:16 UTC" */
static void human_date(int64_t t, char *out, size_t n)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    static const char *const wd[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const mo[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    snprintf(out, n, "%s %d %s %d %02d:%02d UTC", wd[tm.tm_wday % 7], tm.tm_mday,
             mo[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min);
}

/* "14 days", "1 hour", "3 hours 59 minutes": the largest whole unit, and the next one
 * too when the first counts less than 10 (so 3 h 59 min does not read "3 hours"). */
static void human_span(int64_t s, char *out, size_t n)
{
    static const struct {
        int64_t secs;
        const char *unit;
    } U[] = {{86400, "day"}, {3600, "hour"}, {60, "minute"}, {1, "second"}};
    size_t i = 0;
    while (i < 3 && s < U[i].secs)
        i++;
    long long k = (long long)(s / U[i].secs), r = 0;
    if (i < 3 && k < 10)
        r = (long long)(s % U[i].secs / U[i + 1].secs);
    if (r)
        snprintf(out, n, "%lld %s%s %lld %s%s", k, U[i].unit, k == 1 ? "" : "s", r, U[i + 1].unit,
                 r == 1 ? "" : "s");
    else
        snprintf(out, n, "%lld %s%s", k, U[i].unit, k == 1 ? "" : "s");
}

/* "in 14 days" / "3 hours ago" / "now" */
static void countdown(int64_t t, int64_t now, char *out, size_t n)
{
    char sp[48];
    if (t == now) {
        snprintf(out, n, "now");
    } else if (t > now) {
        human_span(t - now, sp, sizeof(sp));
        snprintf(out, n, "in %s", sp);
    } else {
        human_span(now - t, sp, sizeof(sp));
        snprintf(out, n, "%s ago", sp);
    }
}

/* name.expires_at / _date / _in from an RFC 3339 time (or epoch seconds when text NULL). */
static void set_time(vals_t *v, const char *prefix, const char *rfc, int64_t t, int64_t now)
{
    char name[64], buf[64], ts[KW_TIME_STR_MAX];
    if (rfc && kw_time_parse(rfc, strlen(rfc), &t) != 0)
        return;
    if (t <= 0)
        return;
    kw_time_format(t, ts);
    snprintf(name, sizeof(name), "%s_at", prefix);
    vset(v, name, ts);
    human_date(t, buf, sizeof(buf));
    snprintf(name, sizeof(name), "%s_date", prefix);
    vset(v, name, buf);
    countdown(t, now, buf, sizeof(buf));
    snprintf(name, sizeof(name), "%s_in", prefix);
    vset(v, name, buf);
}

/* A principal (credential id) as "name (cred_…)"; other actors as they are. */
static void principal(kw_server_t *srv, const char *id, char *out, size_t n)
{
    kw_cred_t c = {0};
    kw_err_t e = {0};
    if (id == NULL || *id == '\0') {
        snprintf(out, n, "unknown");
        return;
    }
    if (strncmp(id, "cred_", 5) == 0 && kw_store_cred_get(srv->store, id, &c, &e) == 0 && c.name)
        snprintf(out, n, "%s (%s)", c.name, id);
    else
        snprintf(out, n, "%s", id);
    kw_cred_clear(&c);
}

static void fill_key(kw_server_t *srv, vals_t *v, const char *type, json_t *p, int64_t now)
{
    const char *cid = pstr(p, "credential_id"), *kid = pstr(p, "key_id");
    kw_cred_t c = {0};
    kw_err_t e = {0};
    char buf[600];
    vset(v, "credential.id", cid);
    if (cid && kw_store_cred_get(srv->store, cid, &c, &e) == 0) {
        vset(v, "credential.name", c.name);
        vset(v, "credential.owner", c.owner);
    } else {
        vset(v, "credential.name", pstr(p, "credential_name") ? pstr(p, "credential_name") : cid);
    }
    kw_cred_clear(&c);
    if (srv->cfg.public_url[0] && cid) {
        snprintf(buf, sizeof(buf), "%s/console/credentials/%s", srv->cfg.public_url, cid);
        vset(v, "link.credential", buf);
    }
    vset(v, "key.id", kid);
    vset(v, "key.hint", pstr(p, "hint"));
    json_int_t slot = json_integer_value(json_object_get(p, "slot"));
    if (slot == 1 || slot == 2) {
        snprintf(buf, sizeof(buf), "%d", (int)slot);
        vset(v, "key.slot", buf);
        vset(v, "key.slot_name", slot == 1 ? "primary" : "secondary");
    }
    /* The key's expiry: the payload's where it is the key's (new) expiry, else the store's
     * (a renewal request's expires_at is the asked-for date, not the key's). */
    int from_payload = strncmp(type, "key.", 4) == 0 && strcmp(type, "key.invalidated") != 0;
    if (strcmp(type, "renewal.approved") == 0 && json_is_string(json_object_get(p, "expires_at")))
        from_payload = 1;
    if (from_payload) {
        set_time(v, "key.expires", pstr(p, "expires_at"), 0, now);
    } else if (kid) {
        kw_keyrec_t k;
        memset(&k, 0, sizeof(k));
        if (kw_store_key_get(srv->store, kid, &k, &e) == 0)
            set_time(v, "key.expires", NULL, k.expires_at, now);
        kw_wipe(&k, sizeof(k));
    }
    if (strcmp(type, "key.rolled") == 0) {
        vset(v, "previous.id", pstr(p, "previous_key_id"));
        vset(v, "previous.hint", pstr(p, "previous_hint"));
        if (slot == 1 || slot == 2)
            vset(v, "previous.slot", slot == 1 ? "2" : "1");
        set_time(v, "previous.expires", pstr(p, "previous_expires_at"), 0, now);
    }
    if (strcmp(type, "key.renewed") == 0)
        set_time(v, "key.previous_expires", pstr(p, "previous_expires_at"), 0, now);
    vset(v, "reason", pstr(p, "reason"));
    if (strncmp(type, "renewal.", 8) == 0 || strcmp(type, "key.renewed") == 0)
        vset(v, "renewal.id", pstr(p, "renewal_id"));
    if (strncmp(type, "renewal.", 8) == 0) {
        principal(srv, pstr(p, "requested_by"), buf, sizeof(buf));
        vset(v, "renewal.requested_by", buf);
        json_int_t by = json_integer_value(json_object_get(p, "extend_by_s"));
        if (by > 0) {
            char sp[48], d[KW_DURATION_STR_MAX];
            human_span(by, sp, sizeof(sp));
            kw_duration_format(by, d);
            snprintf(buf, sizeof(buf), "%s more (%s)", sp, d);
        } else if (strcmp(type, "renewal.approved") != 0 && pstr(p, "expires_at")) {
            int64_t t = 0;
            char hd[64];
            if (kw_time_parse(pstr(p, "expires_at"), strlen(pstr(p, "expires_at")), &t) == 0) {
                human_date(t, hd, sizeof(hd));
                snprintf(buf, sizeof(buf), "until %s", hd);
            }
        } else {
            snprintf(buf, sizeof(buf), "an extension");
        }
        vset(v, "renewal.extension", buf);
        vset(v, "renewal.reason", pstr(p, "reason"));
        if (pstr(p, "decided_by")) {
            principal(srv, pstr(p, "decided_by"), buf, sizeof(buf));
            vset(v, "renewal.decided_by", buf);
        }
        vset(v, "renewal.note", pstr(p, "note"));
        if (srv->cfg.public_url[0]) {
            snprintf(buf, sizeof(buf), "%s/console/renewals", srv->cfg.public_url);
            vset(v, "link.renewals", buf);
        }
    }
    if (strcmp(type, "key.expiring") == 0)
        vset(v, "threshold", pstr(p, "threshold"));
}

/* Watched credentials (SPEC §12): payload fields watched_id, name (or watched_name),
 * provider, kind, owner, expires_at, threshold, http_status, error, error_description,
 * failures. */
static void fill_watched(vals_t *v, json_t *p, int64_t now)
{
    char buf[300];
    const char *name = pstr(p, "watched_name") ? pstr(p, "watched_name") : pstr(p, "name");
    vset(v, "watched.id", pstr(p, "watched_id"));
    vset(v, "watched.name", name ? name : pstr(p, "watched_id"));
    vset(v, "watched.provider", pstr(p, "provider"));
    if (pstr(p, "provider") && *pstr(p, "provider")) {
        snprintf(buf, sizeof(buf), "%s ", pstr(p, "provider"));
        vset(v, "watched.provider_label", buf);
    }
    vset(v, "watched.kind", pstr(p, "kind"));
    if (pstr(p, "kind") && strcmp(pstr(p, "kind"), "oauth2") == 0)
        vset(v, "watched.oauth2", "yes");
    vset(v, "watched.owner", pstr(p, "owner"));
    set_time(v, "watched.expires", pstr(p, "expires_at"), 0, now);
    vset(v, "threshold", pstr(p, "threshold"));
    json_t *st = json_object_get(p, "http_status");
    if (st == NULL)
        st = json_object_get(p, "status");
    if (json_is_integer(st) && json_integer_value(st) > 0) {
        snprintf(buf, sizeof(buf), "%lld", (long long)json_integer_value(st));
        vset(v, "watched.http_status", buf);
    }
    vset(v, "watched.error", pstr(p, "error"));
    vset(v, "watched.error_description", pstr(p, "error_description"));
    json_t *f = json_object_get(p, "failures");
    if (json_is_integer(f)) {
        snprintf(buf, sizeof(buf), "%lld", (long long)json_integer_value(f));
        vset(v, "watched.failures", buf);
    }
}

/* The address part of "Name <addr>" (or the whole) into out. */
static void addr_part(const char *s, char *out, size_t n)
{
    const char *lt = strchr(s, '<');
    snprintf(out, n, "%s", lt ? lt + 1 : s);
    char *gt = strchr(out, '>');
    if (gt)
        *gt = '\0';
}

/* 1 when c is the global e-mail sink to (a string). */
static int is_email_sink(void *to, const kw_chan_t *c)
{
    return c->type == KW_CHAN_EMAIL && strcasecmp(c->target, to) == 0;
}

kw_mail_audience_t kw_mail_audience(const kw_server_t *srv, const char *type, const char *to)
{
    if (kw_sink_each(srv->cfg.sinks, is_email_sink, (void *)to))
        return KW_MAIL_OPERATOR;
    return strcmp(type, "renewal.requested") == 0 ? KW_MAIL_OPERATOR : KW_MAIL_CONSUMER;
}

/* The plain body as a simple HTML document: blank-line paragraphs, indented lines kept
 * as preformatted, http(s) links made clickable. */
static int auto_html(const char *text, kw_buf_t *h)
{
    kw_mime_puts(h, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"></head>\n"
                    "<body style=\"font-family: sans-serif; line-height: 1.4\">\n<p>");
    for (const char *s = text; *s;) {
        const char *nl = strchr(s, '\n');
        size_t l = nl ? (size_t)(nl - s) : strlen(s);
        if (l == 0) {
            kw_mime_puts(h, "</p>\n<p>");
        } else {
            int pre = l > 1 && s[0] == ' ' && s[1] == ' ';
            if (pre)
                kw_mime_puts(h, "<code style=\"white-space: pre\">");
            for (size_t i = 0; i < l;) {
                if ((strncmp(s + i, "https://", 8) == 0 || strncmp(s + i, "http://", 7) == 0)) {
                    size_t e = i;
                    while (e < l && s[e] != ' ' && s[e] != '<' && s[e] != '>' && s[e] != '"')
                        e++;
                    kw_mime_puts(h, "<a href=\"");
                    kw_buf_put(h, s + i, e - i);
                    kw_mime_puts(h, "\">");
                    kw_buf_put(h, s + i, e - i);
                    kw_mime_puts(h, "</a>");
                    i = e;
                    continue;
                }
                char c = s[i++];
                if (c == '&')
                    kw_mime_puts(h, "&amp;");
                else if (c == '<')
                    kw_mime_puts(h, "&lt;");
                else if (c == '>')
                    kw_mime_puts(h, "&gt;");
                else if (c == '"')
                    kw_mime_puts(h, "&quot;");
                else
                    kw_buf_put(h, &c, 1);
            }
            kw_mime_puts(h, pre ? "</code><br>\n" : "<br>\n");
        }
        s += l + (nl ? 1 : 0);
    }
    kw_mime_puts(h, "</p>\n</body></html>\n");
    return h->oom ? KW_ENOMEM : 0;
}

/* FNV-1a of s, for a Message-ID that names the recipient without showing the address. */
static uint64_t fnv(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

int kw_mail_compose(kw_server_t *srv, const kw_mail_set_t *set, const char *event_id,
                    const char *type, const char *payload, const char *to, int64_t now, char **out,
                    kw_err_t *err)
{
    json_t *p = json_loads(payload ? payload : "{}", 0, NULL);
    vals_t v = {json_object()};
    char *subj = NULL, *text = NULL, *html = NULL, buf[600];
    kw_buf_t m = {0}, hb = {0};
    int rc = 0;
    size_t ev = DEFAULT_EV;
    for (size_t i = 0; i < NEVENTS; i++)
        if (strcmp(EVENTS[i].type, type) == 0)
            ev = i;
    if (v.m == NULL) {
        rc = kw_err_set(err, KW_ENOMEM, NULL, "out of memory");
        goto out;
    }
    kw_mail_audience_t aud = kw_mail_audience(srv, type, to);
    vset(&v, "event.id", event_id);
    vset(&v, "event.type", type);
    vset(&v, "event.occurred_at", pstr(p, "occurred_at"));
    int64_t occ = 0;
    if (pstr(p, "occurred_at") &&
        kw_time_parse(pstr(p, "occurred_at"), strlen(pstr(p, "occurred_at")), &occ) == 0) {
        human_date(occ, buf, sizeof(buf));
        vset(&v, "event.occurred_date", buf);
    }
    vset(&v, "recipient", to);
    vset(&v, "help.contact",
         srv->cfg.mail_reply_to[0] ? srv->cfg.mail_reply_to : srv->cfg.mail_from);
    if (srv->cfg.public_url[0]) {
        snprintf(buf, sizeof(buf), "%s/console/", srv->cfg.public_url);
        vset(&v, "link.console", buf);
    }
    vset(&v, aud == KW_MAIL_OPERATOR ? "audience.operator" : "audience.consumer", "yes");
    if (strncmp(type, "watched.", 8) == 0)
        fill_watched(&v, p, now);
    else
        fill_key(srv, &v, type, p, now);

    const mail_tmpl_t *mt = &set->t[ev];
    if ((rc = kw_tmpl_render(mt->subject, KW_TMPL_HEADER, val_get, &v, &subj, NULL, err)) != 0 ||
        (rc = kw_tmpl_render(mt->text, KW_TMPL_TEXT, val_get, &v, &text, NULL, err)) != 0)
        goto out;
    if (srv->cfg.mail_html) {
        if (mt->html) {
            if ((rc = kw_tmpl_render(mt->html, KW_TMPL_HTML, val_get, &v, &html, NULL, err)) != 0)
                goto out;
        } else if ((rc = auto_html(text, &hb)) != 0) {
            kw_err_set(err, rc, NULL, "out of memory");
            goto out;
        }
    }
    if (strlen(subj) > SUBJECT_MAX) {
        size_t cut = SUBJECT_MAX;
        while (cut > 0 && ((unsigned char)subj[cut] & 0xc0) == 0x80)
            cut--; /* never half a character */
        subj[cut] = '\0';
    }

    /* headers */
    char date[KW_TIME_STR_MAX], addr[300], dom[256];
    kw_time_format_http(now, date);
    char *gmt = strstr(date, "GMT");
    if (gmt)
        memcpy(gmt, "+0000", 6); /* fits: the buffer holds the NUL after "GMT" and more */
    addr_part(srv->cfg.mail_from, addr, sizeof(addr));
    const char *at = strrchr(addr, '@');
    size_t dn = 0;
    for (const char *d = at ? at + 1 : ""; *d && dn + 1 < sizeof(dom); d++)
        if ((*d >= 'a' && *d <= 'z') || (*d >= 'A' && *d <= 'Z') || (*d >= '0' && *d <= '9') ||
            *d == '.' || *d == '-')
            dom[dn++] = *d;
    dom[dn] = '\0';
    kw_mime_header_addr(&m, "From", srv->cfg.mail_from);
    kw_mime_printf(&m, "To: %s\r\n", to);
    if (srv->cfg.mail_reply_to[0])
        kw_mime_header_addr(&m, "Reply-To", srv->cfg.mail_reply_to);
    kw_mime_header_text(&m, "Subject", subj);
    kw_mime_printf(&m, "Date: %s\r\n", date);
    kw_mime_printf(&m, "Message-ID: <%s.%016llx@%s>\r\n", event_id, (unsigned long long)fnv(to),
                   dn ? dom : "keyward.invalid");
    kw_mime_puts(&m, "MIME-Version: 1.0\r\nAuto-Submitted: auto-generated\r\n");
    kw_mime_printf(&m, "X-Keyward-Event: %s\r\nX-Keyward-Event-Type: %s\r\n", event_id, type);
    /* the footer names the event, so a reader can look it up */
    kw_buf_t body = {0};
    kw_mime_puts(&body, text);
    if (body.n && body.p[body.n - 1] != '\n')
        kw_mime_puts(&body, "\n");
    kw_mime_printf(&body, "\n-- \nkeyward, event %s (%s)\n", event_id, type);
    if (body.oom) {
        free(body.p);
        rc = kw_err_set(err, KW_ENOMEM, NULL, "out of memory");
        goto out;
    }
    const char *hpart = html ? html : hb.p;
    if (hpart) {
        /* '=' is always encoded in quoted-printable, so "=_" never occurs in a part */
        char boundary[80];
        snprintf(boundary, sizeof(boundary), "=_kw_%s", event_id);
        kw_mime_printf(&m, "Content-Type: multipart/alternative; boundary=\"%s\"\r\n\r\n",
                       boundary);
        kw_mime_puts(&m, "This is a message in MIME format.\r\n");
        kw_mime_printf(&m,
                       "--%s\r\nContent-Type: text/plain; charset=utf-8\r\n"
                       "Content-Transfer-Encoding: quoted-printable\r\n\r\n",
                       boundary);
        kw_mime_qp(&m, body.p, body.n);
        kw_mime_printf(&m,
                       "--%s\r\nContent-Type: text/html; charset=utf-8\r\n"
                       "Content-Transfer-Encoding: quoted-printable\r\n\r\n",
                       boundary);
        kw_mime_qp(&m, hpart, strlen(hpart));
        kw_mime_printf(&m, "--%s--\r\n", boundary);
    } else {
        kw_mime_puts(&m, "Content-Type: text/plain; charset=utf-8\r\n"
                         "Content-Transfer-Encoding: quoted-printable\r\n\r\n");
        kw_mime_qp(&m, body.p, body.n);
    }
    free(body.p);
    if (m.oom) {
        rc = kw_err_set(err, KW_ENOMEM, NULL, "out of memory");
        goto out;
    }
    *out = m.p;
    m.p = NULL;
out:
    free(m.p);
    free(hb.p);
    free(subj);
    free(text);
    free(html);
    json_decref(v.m);
    json_decref(p);
    return rc;
}
