/* store_codec.c - pure column codecs shared by the store backends (store_codec.h). */
#include "store_codec.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/err.h"

void kw_thresholds_format(const kw_policy_t *p, char *buf, size_t n)
{
    size_t off = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < p->nthresholds && i < KW_MAX_THRESHOLDS && off < n; i++)
        off += (size_t)snprintf(buf + off, n - off, "%s%lld", i ? "," : "",
                                (long long)p->thresholds[i]);
}

void kw_thresholds_parse(const char *s, kw_policy_t *p)
{
    p->nthresholds = 0;
    while (s && *s && p->nthresholds < KW_MAX_THRESHOLDS) {
        char *end;
        long long v = strtoll(s, &end, 10);
        if (end == s)
            break;
        p->thresholds[p->nthresholds++] = v;
        if (*end != ',')
            break;
        s = end + 1;
    }
}

/* ---- rows ---- */

/* Column col into buf (always terminated, cut to n - 1 bytes; "" for NULL). */
static void r_cpy(const kw_row_src_t *r, int col, char *buf, size_t n)
{
    const char *v = NULL;
    r->text(r, col, &v);
    size_t len = v ? strlen(v) : 0;
    if (len >= n)
        len = n - 1; /* cannot happen for values this store wrote from the same structs */
    memcpy(buf, v ? v : "", len);
    buf[len] = '\0';
}

/* Column col as a malloc'd copy into *out (NULL for NULL); 0 or KW_ENOMEM. */
static int r_dup(const kw_row_src_t *r, int col, char **out)
{
    const char *v = NULL;
    *out = NULL;
    int rc = r->text(r, col, &v);
    if (rc != 0 || v == NULL)
        return rc;
    *out = strdup(v);
    return *out ? 0 : KW_ENOMEM;
}

/* A struct's fields in the column order of a row, so that decoding (and, for watched
 * credentials, copying and freeing the owned strings) is one loop over one table. */
typedef struct field {
    enum { F_I64, F_INT, F_CPY, F_DUP } kind; /* int64_t, int, char[size], malloc'd char * */
    size_t off, size;
} field_t;
/* member m of T as a field; a member whose size does not fit kind (an int read as int64_t)
 * does not compile */
#define F_WANT(kind, T, m)                                                                         \
    ((kind) == F_CPY   ? sizeof(((T *)0)->m)                                                       \
     : (kind) == F_INT ? sizeof(int)                                                               \
     : (kind) == F_I64 ? sizeof(int64_t)                                                           \
                       : sizeof(char *))
#define F(kind, T, m)                                                                              \
    {                                                                                              \
        kind, offsetof(T, m),                                                                      \
            sizeof(((T *)0)->m) +                                                                  \
                0 * sizeof(char[sizeof(((T *)0)->m) == F_WANT(kind, T, m) ? 1 : -1])               \
    }

/* Columns 0 to n - 1 of r into the struct at out (zeroed first): 0, or KW_ENOMEM with the
 * F_DUP fields it did copy still set (the caller clears them). */
static int r_fields(const kw_row_src_t *r, const field_t *f, size_t n, void *out, size_t size)
{
    char *p = out;
    int rc = 0;
    memset(out, 0, size);
    for (size_t i = 0; i < n; i++) {
        switch (f[i].kind) {
        case F_I64:
            *(int64_t *)(void *)(p + f[i].off) = r->i64(r, (int)i);
            break;
        case F_INT:
            *(int *)(void *)(p + f[i].off) = (int)r->i64(r, (int)i);
            break;
        case F_CPY:
            r_cpy(r, (int)i, p + f[i].off, f[i].size);
            break;
        case F_DUP:
            rc |= r_dup(r, (int)i, (char **)(void *)(p + f[i].off));
            break;
        }
    }
    return rc;
}

/* kw_watched_t in KW_COLS_WATCHED order (store_cols.h). */
#define W(kind, m) F(kind, kw_watched_t, m)
static const field_t WATCHED[] = {
    W(F_I64, seq),
    W(F_CPY, id),
    W(F_CPY, name),
    W(F_DUP, provider),
    W(F_DUP, owner),
    W(F_DUP, contacts_json),
    W(F_CPY, policy),
    W(F_CPY, kind),
    W(F_DUP, secret_sealed),
    W(F_CPY, secret_hint),
    W(F_I64, expires_at),
    W(F_DUP, token_url),
    W(F_CPY, grant_type),
    W(F_DUP, client_id),
    W(F_DUP, client_secret_sealed),
    W(F_CPY, client_secret_hint),
    W(F_DUP, refresh_token_sealed),
    W(F_DUP, refresh_token_prev_sealed),
    W(F_CPY, refresh_token_hint),
    W(F_I64, refresh_expires_at),
    W(F_DUP, scope),
    W(F_CPY, auth_method),
    W(F_DUP, token_file),
    W(F_DUP, access_token_sealed),
    W(F_CPY, token_type),
    W(F_I64, token_obtained_ms),
    W(F_I64, token_expires_ms),
    W(F_INT, token_lapse_raised),
    W(F_I64, next_refresh_ms),
    W(F_I64, failures),
    W(F_CPY, last_error),
    W(F_I64, last_status),
    W(F_I64, last_attempt_ms),
    W(F_I64, last_success_ms),
    W(F_I64, gen),
    W(F_I64, created_at),
    W(F_I64, updated_at),
    W(F_I64, deleted_at),
};
#undef W
#define NWATCHED (sizeof(WATCHED) / sizeof(WATCHED[0]))

/* The owned string number i (F_DUP) of w, for copy and clear. */
static char **w_owned(const kw_watched_t *w, size_t i)
{
    return (char **)(void *)((char *)(uintptr_t)w + WATCHED[i].off);
}

void kw_watched_clear(kw_watched_t *w)
{
    if (w == NULL)
        return;
    for (size_t i = 0; i < NWATCHED; i++)
        if (WATCHED[i].kind == F_DUP)
            free(*w_owned(w, i));
    memset(w, 0, sizeof(*w));
}

int kw_watched_copy(kw_watched_t *dst, const kw_watched_t *src)
{
    kw_watched_t c = *src;
    int rc = 0;
    for (size_t i = 0; i < NWATCHED; i++) {
        if (WATCHED[i].kind != F_DUP)
            continue;
        const char *v = *w_owned(src, i);
        char **d = w_owned(&c, i);
        *d = v ? strdup(v) : NULL;
        if (v && *d == NULL)
            rc = KW_ENOMEM;
    }
    if (rc) {
        kw_watched_clear(&c);
        return KW_ENOMEM;
    }
    *dst = c;
    return 0;
}

int kw_row_watched(const kw_row_src_t *r, kw_watched_t *w)
{
    if (r_fields(r, WATCHED, NWATCHED, w, sizeof(*w)) != 0) {
        kw_watched_clear(w);
        return KW_ENOMEM;
    }
    return 0;
}

int kw_row_policy(const kw_row_src_t *r, kw_policy_t *p)
{
    const char *th = NULL;
    memset(p, 0, sizeof(*p));
    r_cpy(r, 0, p->name, sizeof(p->name));
    p->default_lifetime = r->i64(r, 1);
    p->max_lifetime = r->i64(r, 2);
    p->allow_never_expire = (int)r->i64(r, 3);
    p->renewable = (int)r->i64(r, 4);
    p->renewal_requires_approval = (int)r->i64(r, 5);
    r->text(r, 6, &th);
    kw_thresholds_parse(th, p);
    p->max_roll_overlap = r->i64(r, 7);
    p->created_at = r->i64(r, 8);
    p->updated_at = r->i64(r, 9);
    p->token_lifetime = r->i64(r, 10);
    return 0;
}

/* kw_renewal_t in KW_COLS_REN order, kw_delivery_t in KW_COLS_DLV order (store_cols.h). */
#define R(kind, m) F(kind, kw_renewal_t, m)
static const field_t RENEWAL[] = {
    R(F_CPY, id),         R(F_CPY, key_id), R(F_CPY, requested_by), R(F_I64, extend_by),
    R(F_I64, expires_at), R(F_CPY, reason), R(F_CPY, state),        R(F_CPY, decided_by),
    R(F_I64, decided_at), R(F_CPY, note),   R(F_I64, created_at),
};
#undef R
#define D(kind, m) F(kind, kw_delivery_t, m)
static const field_t DELIVERY[] = {
    D(F_CPY, event_id),        D(F_CPY, channel),      D(F_CPY, state),      D(F_I64, attempts),
    D(F_I64, next_attempt_at), D(F_I64, delivered_at), D(F_I64, created_at), D(F_CPY, last_error),
};
#undef D

int kw_row_renewal(const kw_row_src_t *r, kw_renewal_t *x)
{
    return r_fields(r, RENEWAL, sizeof(RENEWAL) / sizeof(RENEWAL[0]), x, sizeof(*x));
}

int kw_row_delivery(const kw_row_src_t *r, kw_delivery_t *d)
{
    return r_fields(r, DELIVERY, sizeof(DELIVERY) / sizeof(DELIVERY[0]), d, sizeof(*d));
}

int kw_row_event(const kw_row_src_t *r, kw_event_t *e)
{
    const char *p = NULL;
    memset(e, 0, sizeof(*e));
    e->seq = r->i64(r, 0);
    r_cpy(r, 1, e->id, sizeof(e->id));
    r_cpy(r, 2, e->type, sizeof(e->type));
    e->occurred_at = r->i64(r, 3);
    r->text(r, 4, &p);
    e->payload = strdup(p ? p : "{}");
    return e->payload ? 0 : KW_ENOMEM;
}
