/* err.c - error titles, HTTP mapping (status, problem type) and the detail setter. */
#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* One row a code, from KW_ERRNO_MAP; the codes run 0, -1, -2... so a row is found at -code. */
typedef struct code_row {
    int code, http;
    const char *title, *slug;
} code_row_t;

static const code_row_t rows[] = {
#define KW__ROW(name, val, http, title, slug) {val, http, title, slug},
    KW_ERRNO_MAP(KW__ROW)
#undef KW__ROW
};

static const code_row_t *row_of(int code)
{
    long i = -(long)code, n = (long)(sizeof(rows) / sizeof(rows[0]));
    return i >= 0 && i < n && rows[i].code == code ? &rows[i] : NULL;
}

const char *kw_strerror(int code)
{
    const code_row_t *r = row_of(code);
    return r ? r->title : "Unknown error";
}

int kw_err_http_status(int code)
{
    const code_row_t *r = row_of(code);
    return r ? r->http : 500;
}

const char *kw_err_slug(int code)
{
    const code_row_t *r = row_of(code);
    return r ? r->slug : "internal-error";
}

int kw_err_set(kw_err_t *e, int code, const char *field, const char *fmt, ...)
{
    if (e == NULL)
        return code;
    e->code = code;
    snprintf(e->field, sizeof(e->field), "%s", field ? field : "");
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
        va_end(ap);
    } else {
        snprintf(e->msg, sizeof(e->msg), "%s", kw_strerror(code));
    }
    return code;
}

void kw_err_clear(kw_err_t *e)
{
    if (e)
        memset(e, 0, sizeof(*e));
}
