/* store_args.h - a statement's parameters as one typed list, the same for both SQL backends:
 * KW_SQ_ARGS(KW_SQA_TEXT(id), KW_SQA_INT(now)). SQLite binds it (sqlite_conn.c
 * kw_sqlite_bind), PostgreSQL turns it into libpq's text/binary parameters (postgres_int.h
 * p_args). Only the backends (sqlite*.c, postgres*.c) include this. */
#ifndef KW_STORE_ARGS_H
#define KW_STORE_ARGS_H

#include <stddef.h>
#include <stdint.h>

/* One parameter. Parameters are bound in order, ?1 / $1 first. */
typedef struct kw_sql_arg {
    enum { KW_SQA_SKIP_, KW_SQA_TEXT_, KW_SQA_INT_, KW_SQA_BLOB_, KW_SQA_NULL_ } type;
    int64_t i;
    const void *p;
    int len;
} kw_sql_arg_t;
#define KW_SQA_TEXT(v) ((kw_sql_arg_t){.type = KW_SQA_TEXT_, .p = (v)}) /* NULL = NULL */
/* "" (or NULL) = NULL: optional reasons and names */
static inline kw_sql_arg_t kw_sql_otext(const char *v)
{
    return (kw_sql_arg_t){.type = KW_SQA_TEXT_, .p = v && *v ? v : NULL};
}
#define KW_SQA_OTEXT(v) kw_sql_otext(v)
#define KW_SQA_INT(v) ((kw_sql_arg_t){.type = KW_SQA_INT_, .i = (int64_t)(v)})
/* times: 0 = NULL */
#define KW_SQA_TIME(v) ((kw_sql_arg_t){.type = (v) ? KW_SQA_INT_ : KW_SQA_NULL_, .i = (int64_t)(v)})
#define KW_SQA_BLOB(b, n) ((kw_sql_arg_t){.type = KW_SQA_BLOB_, .p = (b), .len = (int)(n)})
#define KW_SQA_NULL ((kw_sql_arg_t){.type = KW_SQA_NULL_})
/* left unbound: NULL (SQLite clears a statement's bindings after each run; PostgreSQL sends
 * NULL) */
#define KW_SQA_SKIP ((kw_sql_arg_t){.type = KW_SQA_SKIP_})
/* (args, nargs) for the backends' calls: KW_SQ_ARGS(KW_SQA_TEXT(id), KW_SQA_INT(now)) */
#define KW_SQ_ARGS(...)                                                                            \
    (const kw_sql_arg_t[]){__VA_ARGS__},                                                           \
        (int)(sizeof((kw_sql_arg_t[]){__VA_ARGS__}) / sizeof(kw_sql_arg_t))
#define KW_SQ_NOARGS NULL, 0

#endif
