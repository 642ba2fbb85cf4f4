/* err.c - error titles, HTTP mapping and the detail setter. */
#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *kw_strerror(int code)
{
    switch (code) {
#define KW__STR(name, val, http, title)                                                            \
    case val:                                                                                      \
        return title;
        KW_ERRNO_MAP(KW__STR)
#undef KW__STR
    }
    return "Unknown error";
}

int kw_err_http_status(int code)
{
    switch (code) {
#define KW__HTTP(name, val, http, title)                                                           \
    case val:                                                                                      \
        return http;
        KW_ERRNO_MAP(KW__HTTP)
#undef KW__HTTP
    }
    return 500;
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
