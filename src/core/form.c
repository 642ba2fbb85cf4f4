/* form.c - strict application/x-www-form-urlencoded parsing for the OAuth2 endpoints
 * (form.h). One allocation per body; safe on any bytes (fuzzed by tests/fuzz/fuzz_form.c). */
#include "form.h"

#include <stdlib.h>
#include <string.h>

#include "key.h"
#include "util.h"

long kw_form_decode(const char *in, size_t n, int plus, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == '%') {
            int hi, lo;
            if (i + 2 >= n || (hi = kw_hex_digit(in[i + 1])) < 0 ||
                (lo = kw_hex_digit(in[i + 2])) < 0)
                return -1;
            c = (unsigned char)(hi << 4 | lo);
            i += 2;
        } else if (c == '+' && plus) {
            c = ' ';
        }
        if (c < 0x20 || c == 0x7f)
            return -1;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return (long)o;
}

/* KW_EINVAL naming the parameter (at most 47 bytes of it) in err's field and message. */
static int bad_param(kw_err_t *err, const char *pre, const char *name, const char *post)
{
    char nm[48];
    size_t l = strlen(name) < sizeof(nm) - 1 ? strlen(name) : sizeof(nm) - 1;
    memcpy(nm, name, l);
    nm[l] = '\0';
    return kw_err_set(err, KW_EINVAL, nm, "%s%s%s", pre, nm, post);
}

int kw_form_parse(const char *body, size_t len, kw_form_t *f, kw_err_t *err)
{
    memset(f, 0, sizeof(*f));
    if (len == 0)
        return 0;
    f->cap = len + 2 * KW_FORM_MAX + 2;
    f->buf = malloc(f->cap);
    if (f->buf == NULL)
        return kw_err_set(err, KW_ENOMEM, NULL, "out of memory");
    size_t o = 0, i = 0;
    while (i <= len) {
        const char *p = body + i;
        const char *amp = memchr(p, '&', len - i);
        size_t plen = amp ? (size_t)(amp - p) : len - i;
        i += plen + 1;
        if (plen == 0) /* "a=1&&b=2", a trailing '&': nothing */
            continue;
        if (f->n == KW_FORM_MAX)
            return kw_err_set(err, KW_EINVAL, NULL, "more than %d form parameters", KW_FORM_MAX);
        const char *eq = memchr(p, '=', plen);
        size_t nlen = eq ? (size_t)(eq - p) : plen;
        if (nlen == 0)
            return kw_err_set(err, KW_EINVAL, NULL, "a form parameter without a name");
        char *name = f->buf + o;
        long dn = kw_form_decode(p, nlen, 1, name);
        if (dn <= 0)
            return kw_err_set(err, KW_EINVAL, NULL, "malformed form parameter name");
        o += (size_t)dn + 1;
        char *val = f->buf + o;
        long dv = eq ? kw_form_decode(eq + 1, plen - nlen - 1, 1, val) : 0;
        if (!eq)
            val[0] = '\0';
        if (dv < 0)
            return bad_param(err, "malformed percent-encoding in '", name, "'");
        o += (size_t)dv + 1;
        for (size_t k = 0; k < f->n; k++)
            if (strcmp(f->name[k], name) == 0)
                return bad_param(err, "parameter '", name, "' given more than once");
        f->name[f->n] = name;
        f->value[f->n] = val;
        f->n++;
    }
    return 0;
}

const char *kw_form_get(const kw_form_t *f, const char *name)
{
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->name[i], name) == 0)
            return f->value[i][0] ? f->value[i] : NULL;
    return NULL;
}

void kw_form_free(kw_form_t *f)
{
    if (f->buf) {
        kw_wipe(f->buf, f->cap);
        free(f->buf);
    }
    memset(f, 0, sizeof(*f));
}
