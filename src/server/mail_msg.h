/* mail_msg.h - e-mail messages written for their reader (SPEC §6, docs/mail.md): one
 * template per event type (built in, or from --mail-templates DIR), rendered with the
 * event's facts for a consumer (a credential's contacts) or an operator (global sinks,
 * approvers), and wrapped as an RFC 5322 / MIME message: CRLF, UTF-8 quoted-printable
 * body, RFC 2047 subject, optional HTML alternative. notify_email.c sends it. */
#ifndef KW_MAIL_MSG_H
#define KW_MAIL_MSG_H

#include <stdint.h>

#include "core/err.h"

/* The built-in templates (generated from mail/templates/ by scripts/embed-templates.sh):
 * file name and text, ended by {NULL, NULL}. */
typedef struct kw_mail_builtin {
    const char *name, *text;
} kw_mail_builtin_t;
extern const kw_mail_builtin_t kw_mail_builtin[];

typedef struct kw_mail_set kw_mail_set_t;

/* Parse the built-in templates, then every <event type>.txt / .html / default.txt in dir
 * (NULL or "" = none), which replace the built-in one of the same name. Any error - an
 * unknown file name, header, tag or field - is KW_EINVAL with "FILE:LINE: why" in err.
 * *out is the caller's (kw_mail_set_free). */
int kw_mail_set_load(const char *dir, kw_mail_set_t **out, kw_err_t *err);
void kw_mail_set_free(kw_mail_set_t *s); /* NULL allowed */

typedef enum { KW_MAIL_CONSUMER = 0, KW_MAIL_OPERATOR = 1 } kw_mail_audience_t;

struct kw_server;

/* Who reads a message of event type to address `to`: an address among the global e-mail
 * sinks is an operator; renewal.requested goes to approvers (operators); anyone else is
 * a consumer (a credential's contact). */
kw_mail_audience_t kw_mail_audience(const struct kw_server *srv, const char *type, const char *to);

/* The whole message for one recipient: headers and body with CRLF line ends, ready for
 * SMTP DATA (libcurl dot-stuffs). Facts the payload lacks (credential name and owner, the
 * key's current expiry, principals' names) are read from the store. *out is malloc'd, the
 * caller's. Returns 0, KW_ENOMEM or KW_ETOOBIG. Never puts a secret in the message: the
 * payload carries none, and only named fields are rendered. */
int kw_mail_compose(struct kw_server *srv, const kw_mail_set_t *set, const char *event_id,
                    const char *type, const char *payload, const char *to, int64_t now, char **out,
                    kw_err_t *err);

#endif
