/* store_retention.c - the public retention calls of store.h, kw_store_prune and
 * kw_store_audit_cut: dispatch through the backend's kw_store_retention_ops_t
 * (store_impl.h; sqlite_retention.c, postgres_ext.c). No SQL, no I/O. */
#include "store_impl.h"

int kw_store_prune(kw_store_t *s, int64_t before, size_t batch, size_t *deleted, kw_err_t *err)
{
    *deleted = 0;
    if (s == NULL || s->retention == NULL)
        return 0;
    return s->retention->prune(s, before, batch, deleted, err);
}

int kw_store_audit_cut(kw_store_t *s, int64_t upto, kw_err_t *err)
{
    if (s == NULL || s->retention == NULL)
        return kw_err_set(err, KW_EINVAL, NULL, "store: audit archive needs a SQL store");
    return s->retention->audit_cut(s, upto, err);
}
