/* notify_email.c - the e-mail channel: one plain-text message per event through the
 * --smtp server (libcurl SMTP), saying which key (hint, credential name and id), when it
 * expires and what to do (roll or renew, with the CLI commands). At most --mail-daily-cap
 * messages per recipient per UTC day (counted in the store); later ones wait for the next
 * day. Must not: put the --smtp URL (it may hold a password) in a log or an error. */
#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/duration.h"
#include "core/util.h"
#include "notify.h"
#include "reload.h"
#include "store/store_notify.h"

#define SMTP_TIMEOUT_S 20L

typedef struct upload {
    const char *p;
    size_t left;
} upload_t;

static size_t reader(char *buf, size_t sz, size_t n, void *ud)
{
    upload_t *u = ud;
    size_t room = sz * n, k = u->left < room ? u->left : room;
    memcpy(buf, u->p, k);
    u->p += k;
    u->left -= k;
    return k;
}

static const char *js(json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));
    return v ? v : "";
}

/* Header-safe copy: no CR/LF, no non-ASCII (subjects stay 7-bit). */
static void hsafe(char *dst, size_t n, const char *src)
{
    size_t o = 0;
    for (; *src && o + 1 < n; src++)
        dst[o++] = ((unsigned char)*src < 0x20 || (unsigned char)*src >= 0x7f) ? '?' : *src;
    dst[o] = '\0';
}

/* "in 14d" from seconds left, rounded down to a readable unit. */
static void left_text(int64_t secs, char *out, size_t n)
{
    char d[KW_DURATION_STR_MAX];
    int64_t shown = secs >= 86400  ? secs / 86400 * 86400
                    : secs >= 3600 ? secs / 3600 * 3600
                    : secs >= 60   ? secs / 60 * 60
                                   : secs;
    if (shown < 1) {
        snprintf(out, n, "now");
        return;
    }
    kw_duration_format(shown, d);
    snprintf(out, n, "in %s", d);
}

/* Build the whole message (headers + body) into a malloc'd string. */
static char *compose(kw_send_ctx_t *c, const char *to, const char *cred_name)
{
    json_t *ev = json_loads(c->payload, 0, NULL);
    char *msg = NULL, *body = NULL, subj[400], name[220], hint[64], left[48], date[64];
    const char *type = c->type, *key = js(ev, "key_id"), *cred = js(ev, "credential_id"),
               *exp = js(ev, "expires_at"), *thr = js(ev, "threshold");
    json_int_t in_s = json_integer_value(json_object_get(ev, "expires_in_s"));
    hsafe(name, sizeof(name), cred_name && *cred_name ? cred_name : cred);
    hsafe(hint, sizeof(hint), js(ev, "hint"));
    /* the hint's ellipsis is UTF-8: fine in the body (declared UTF-8), not in a subject */
    char shint[64];
    hsafe(shint, sizeof(shint), js(ev, "hint"));
    for (char *p = shint; (p = strstr(p, "???")) != NULL;)
        memcpy(p, "...", 3);
    left_text(in_s, left, sizeof(left));
    const char *what =
        "roll it (a new key in the other slot; the old one keeps working for the overlap):\n"
        "      keyward key roll %s --overlap 24h\n"
        "    deploy the new key, then retire the old one once nothing uses it:\n"
        "      keyward key invalidate %s --unused-for 24h\n"
        "  - or renew it, if its policy allows:\n"
        "      keyward key renew %s --extend-by 90d\n";
    char todo[900];
    snprintf(todo, sizeof(todo), what, key, key, key);

    if (strcmp(type, "key.expiring") == 0) {
        snprintf(subj, sizeof(subj), "[keyward] API key %s of \"%s\" expires %s (%s)", shint, name,
                 left, exp);
        if (asprintf(&body,
                     "The API key %s of credential \"%s\" (%s) expires at %s, %s.\n"
                     "This is the %s warning of its policy.\n\n"
                     "  key:         %s (slot %lld)\n"
                     "  credential:  %s (%s)\n"
                     "  expires at:  %s\n\n"
                     "To keep the system that uses it working, before then either\n"
                     "  - %s\n"
                     "The key itself is never shown here: keyward does not keep it.\n",
                     js(ev, "hint"), name, cred, exp, left, thr, key,
                     (long long)json_integer_value(json_object_get(ev, "slot")), name, cred, exp,
                     todo) < 0)
            body = NULL;
    } else if (strcmp(type, "key.expired") == 0) {
        snprintf(subj, sizeof(subj), "[keyward] API key %s of \"%s\" has EXPIRED (%s)", shint, name,
                 exp);
        if (asprintf(&body,
                     "The API key %s of credential \"%s\" (%s) expired at %s.\n"
                     "Requests made with it are now refused (EXPIRED).\n\n"
                     "  key:         %s\n"
                     "  credential:  %s (%s)\n\n"
                     "Issue a replacement:\n"
                     "      keyward key new %s\n"
                     "The key itself is never shown here: keyward does not keep it.\n",
                     js(ev, "hint"), name, cred, exp, key, name, cred, cred) < 0)
            body = NULL;
    } else {
        snprintf(subj, sizeof(subj), "[keyward] %s: %s of \"%s\"", type, shint, name);
        char *pretty = json_dumps(ev, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        if (asprintf(&body, "Event %s about credential \"%s\" (%s):\n\n%s\n", type, name, cred,
                     pretty ? pretty : c->payload) < 0)
            body = NULL;
        free(pretty);
    }
    kw_time_format_http(c->now, date);
    if (body) {
        char from[300], toh[300];
        hsafe(from, sizeof(from), c->srv->cfg.mail_from);
        hsafe(toh, sizeof(toh), to);
        if (asprintf(&msg,
                     "From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\n"
                     "Message-ID: <%s.%s@keyward>\r\nMIME-Version: 1.0\r\n"
                     "Content-Type: text/plain; charset=utf-8\r\n"
                     "Content-Transfer-Encoding: 8bit\r\nX-Keyward-Event: %s\r\n\r\n%s\r\n"
                     "-- \r\nkeyward, event %s\r\n",
                     from, toh, subj, date, c->event_id, toh, c->event_id, body, c->event_id) < 0)
            msg = NULL;
    }
    free(body);
    json_decref(ev);
    return msg;
}

kw_send_t kw_notify_email(kw_send_ctx_t *c, const kw_chan_t *ch)
{
    kw_server_t *srv = c->srv;
    kw_err_t e = {0};
    int ok = 0, rc;
    if (!srv->cfg.smtp[0] || !srv->cfg.mail_from[0]) {
        snprintf(c->error, sizeof(c->error),
                 "e-mail is not configured (set --smtp and --mail-from)");
        return KW_SEND_RETRY;
    }
    /* the credential's name, for a readable message (a deleted one: its id) */
    kw_cred_t cr = {0};
    json_t *ev = json_loads(c->payload, 0, NULL);
    const char *cid = json_string_value(json_object_get(ev, "credential_id"));
    char name[201] = "";
    if (cid && kw_store_cred_get(srv->store, cid, &cr, &e) == 0 && cr.name)
        snprintf(name, sizeof(name), "%s", cr.name);
    kw_cred_clear(&cr);
    json_decref(ev);

    int64_t day = c->now / 86400;
    if ((rc = kw_store_begin(srv->store, &e)) == 0) {
        rc =
            kw_store_mail_quota_take(srv->store, ch->target, day, srv->cfg.mail_daily_cap, &ok, &e);
        rc = rc ? (kw_store_rollback(srv->store), rc) : kw_store_commit(srv->store, &e);
    }
    if (rc) {
        snprintf(c->error, sizeof(c->error), "%s", e.msg);
        return KW_SEND_RETRY;
    }
    if (!ok) {
        snprintf(c->error, sizeof(c->error),
                 "daily cap of %lld e-mails to this recipient reached; waiting for tomorrow",
                 (long long)srv->cfg.mail_daily_cap);
        c->later_at = (day + 1) * 86400;
        return KW_SEND_LATER;
    }
    kw_cfg_rdlock(); /* SIGHUP may replace smtp and mail-from: read them whole */
    char *msg = compose(c, ch->target, name);
    if (msg == NULL) {
        kw_cfg_unlock();
        snprintf(c->error, sizeof(c->error), "out of memory");
        return KW_SEND_RETRY;
    }
    CURL *cu = curl_easy_init();
    struct curl_slist *rcpt = NULL;
    char from[300];
    upload_t up = {msg, strlen(msg)};
    kw_send_t r = KW_SEND_RETRY;
    /* envelope sender: the address part of "Name <addr>" */
    const char *lt = strchr(srv->cfg.mail_from, '<');
    snprintf(from, sizeof(from), "<%s", lt ? lt + 1 : srv->cfg.mail_from);
    if (from[strlen(from) - 1] != '>')
        strncat(from, ">", sizeof(from) - strlen(from) - 1);
    char to[300];
    snprintf(to, sizeof(to), "<%.*s>", KW_ADDR_MAX, ch->target);
    rcpt = curl_slist_append(NULL, to);
    if (cu && rcpt) {
        curl_easy_setopt(cu, CURLOPT_URL, srv->cfg.smtp);
        curl_easy_setopt(cu, CURLOPT_MAIL_FROM, from);
        kw_cfg_unlock(); /* libcurl keeps its own copies of the strings set */
        curl_easy_setopt(cu, CURLOPT_MAIL_RCPT, rcpt);
        curl_easy_setopt(cu, CURLOPT_READFUNCTION, reader);
        curl_easy_setopt(cu, CURLOPT_READDATA, &up);
        curl_easy_setopt(cu, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(cu, CURLOPT_TIMEOUT, SMTP_TIMEOUT_S);
        curl_easy_setopt(cu, CURLOPT_NOSIGNAL, 1L);
        kw_notify_abortable(cu);
        CURLcode cc = kw_notify_aborted() ? CURLE_ABORTED_BY_CALLBACK : curl_easy_perform(cu);
        long code = 0;
        curl_easy_getinfo(cu, CURLINFO_RESPONSE_CODE, &code);
        if (cc != CURLE_OK && kw_notify_aborted()) {
            snprintf(c->error, sizeof(c->error), "abandoned by the shutdown; sent again after it");
            r = KW_SEND_ABORTED;
        } else if (cc == CURLE_OK) {
            r = KW_SEND_OK;
        } else {
            snprintf(c->error, sizeof(c->error), "SMTP: %s (reply %ld)", curl_easy_strerror(cc),
                     code);
            /* 5xx to the recipient: permanent (unknown mailbox); anything else: retry */
            if (code >= 500 && code < 600 && cc == CURLE_SEND_ERROR)
                r = KW_SEND_FAIL;
        }
    } else {
        kw_cfg_unlock();
        snprintf(c->error, sizeof(c->error), "out of memory");
    }
    curl_slist_free_all(rcpt);
    curl_easy_cleanup(cu);
    free(msg);
    return r;
}
