/* notify_email.c - the e-mail channel: one message per event and recipient, composed by
 * mail_msg.c from its template for that reader, sent through the --smtp server (libcurl
 * SMTP, which dot-stuffs the CRLF text). At most --mail-daily-cap
 * messages per recipient per UTC day (counted in the store); later ones wait for the next
 * day. Must not: put the --smtp URL (it may hold a password) in a log or an error. */
#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "mail_msg.h"
#include "notify_abort.h"
#include "notify_send.h"
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

/* Take one e-mail from the recipient's daily quota (ok = 0 when it is used up). */
typedef struct quota_tx {
    const char *target;
    int64_t day, cap;
    int ok; /* output */
} quota_tx_t;

static int quota_run(kw_store_t *st, void *ud, kw_err_t *err)
{
    quota_tx_t *q = ud;
    q->ok = 0;
    return kw_store_mail_quota_take(st, q->target, q->day, q->cap, &q->ok, err);
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
    int64_t day = c->now / 86400;
    quota_tx_t q = {.target = ch->target, .day = day, .cap = srv->cfg.mail_daily_cap};
    rc = kw_lc_tx(&srv->lc, quota_run, NULL, &q, &e);
    ok = q.ok;
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
    char *msg = NULL;
    if (srv->mail == NULL || kw_mail_compose(srv, srv->mail, c->event_id, c->type, c->payload,
                                             ch->target, c->now, &msg, &e) != 0) {
        kw_cfg_unlock();
        snprintf(c->error, sizeof(c->error), "composing the message: %.200s",
                 srv->mail ? e.msg : "templates not loaded");
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
        int cc;
        long code;
        if (kw_notify_perform(cu, &cc, &code, c->error, sizeof(c->error))) {
            r = KW_SEND_ABORTED;
        } else if (cc == CURLE_OK) {
            r = KW_SEND_OK;
        } else {
            snprintf(c->error, sizeof(c->error), "SMTP: %s (reply %ld)",
                     curl_easy_strerror((CURLcode)cc), code);
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
