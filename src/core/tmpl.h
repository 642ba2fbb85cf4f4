/* tmpl.h - a small, safe substitution language for operator-edited message templates
 * (docs/mail.md). Pure: no I/O, no code execution, no lookups the caller did not offer.
 *
 *   {{credential.name}}      a named field's value (escaped for where it lands)
 *   {{#field}} ... {{/field}} the enclosed text only when field is non-empty
 *   {{^field}} ... {{/field}} the enclosed text only when field is empty
 *   {{! comment }}           nothing
 *   {{"{{"}}                 a literal string (here: two braces)
 *
 * Names are [a-z][a-z0-9_]* joined by '.'; spaces inside the braces are allowed. A line
 * holding only a section or comment tag (and blanks) disappears whole. Every name is
 * checked against the caller's list when the template is parsed, so a typo is an error
 * at start-up ("FILE:LINE: unknown field 'credentail.name'"), never a blank in a mail. */
#ifndef KW_TMPL_H
#define KW_TMPL_H

#include <stddef.h>

#include "err.h"

#define KW_TMPL_TEXT_MAX (64 * 1024) /* largest template accepted */
#define KW_TMPL_OUT_MAX (512 * 1024) /* largest rendering produced */
#define KW_TMPL_DEPTH_MAX 8          /* sections nested at most this deep */
#define KW_TMPL_NAME_MAX 64          /* longest field name */

typedef struct kw_tmpl kw_tmpl_t;

/* How a value is written into the output. */
typedef enum {
    KW_TMPL_TEXT,   /* as is, less control characters other than tab and LF */
    KW_TMPL_HEADER, /* one line: CR, LF, tab and other controls become a space */
    KW_TMPL_HTML,   /* & < > " ' escaped; controls other than tab and LF dropped */
} kw_tmpl_esc_t;

/* 1 when name (NUL-terminated) is a field the caller can supply. */
typedef int (*kw_tmpl_known_fn)(void *ud, const char *name);
/* The value of a known field, or NULL / "" for empty. The pointer need only live until the
 * next call. */
typedef const char *(*kw_tmpl_value_fn)(void *ud, const char *name);

/* Parse text[0..len) (no NUL needed; a NUL byte is an error). origin names the file and
 * first_line is the line number of text's first line, for errors "origin:LINE: why".
 * known may be NULL (any well-formed name is accepted). On success *out is the caller's,
 * freed with kw_tmpl_free. Returns 0, KW_EINVAL or KW_ENOMEM; *out untouched on error. */
int kw_tmpl_parse(const char *text, size_t len, const char *origin, unsigned first_line,
                  kw_tmpl_known_fn known, void *ud, kw_tmpl_t **out, kw_err_t *err);
void kw_tmpl_free(kw_tmpl_t *t); /* NULL allowed */

/* Render t with values from value(ud, name), escaping each value per esc. *out is a
 * malloc'd NUL-terminated string (the caller's), *outlen its length (may be NULL).
 * Returns 0, KW_ETOOBIG (output over KW_TMPL_OUT_MAX) or KW_ENOMEM. */
int kw_tmpl_render(const kw_tmpl_t *t, kw_tmpl_esc_t esc, kw_tmpl_value_fn value, void *ud,
                   char **out, size_t *outlen, kw_err_t *err);

/* Each field name t uses, in order of first appearance, through fn (for tests and tools). */
void kw_tmpl_names(const kw_tmpl_t *t, void (*fn)(void *ud, const char *name), void *ud);

#endif
