/* admin_key.h - the first start's admin key file (see admin_key.c). */
#ifndef KW_ADMIN_KEY_H
#define KW_ADMIN_KEY_H

#include "core/err.h"
#include "core/lifecycle.h"

/* On first start against an empty store: create the `admin` credential (scope
 * keyward:admin) and write its key to path with mode 0600. Never overwrites: if the store
 * is already bootstrapped this does nothing; if it is not and path exists, KW_ECONFLICT.
 * *created is set to 1 when a key was written. */
int kw_admin_key_bootstrap(kw_lc_t *lc, const char *path, int *created, kw_err_t *err);

#endif
