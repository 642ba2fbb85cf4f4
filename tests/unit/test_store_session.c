/* test_store_session.c - console sessions in the store (store_session.h), on SQLite or,
 * with KW_TEST_STORE=postgresql, on PostgreSQL (t_store.h): insert,
 * lookup by digest, touch, delete, purge of idle and aged sessions, the duplicate refused,
 * writes refused outside a transaction, and sessions surviving a reopen (another node). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store.h"
#include "store/store_session.h"
#include "t.h"
#include "t_store.h"

static char url[300];

static kw_session_t mk(int i, int64_t seen, int64_t exp)
{
    kw_session_t x = {0};
    memset(x.digest, i, sizeof(x.digest));
    snprintf(x.cred_id, sizeof(x.cred_id), "cred_%d", i);
    snprintf(x.key_id, sizeof(x.key_id), "key_%d", i);
    x.created_at = seen;
    x.last_seen_at = seen;
    x.expires_at = exp;
    return x;
}

static int put(kw_store_t *s, const kw_session_t *x)
{
    kw_err_t e = {0};
    int rc = kw_store_begin(s, &e);
    if (rc == 0 && (rc = kw_store_session_insert(s, x, &e)) == 0)
        return kw_store_commit(s, &e);
    kw_store_rollback(s);
    return rc;
}

static void t_sessions(void)
{
    kw_store_t *s = NULL;
    kw_err_t e = {0};
    T_EQ_INT(kw_store_open(url, &s, &e), 0);
    kw_session_t a = mk(1, 1000, 5000), b = mk(2, 1000, 1500), got;
    T_EQ_INT(put(s, &a), 0);
    T_EQ_INT(put(s, &b), 0);
    T_EQ_INT(put(s, &a), KW_ECONFLICT);
    T_EQ_INT(kw_store_session_get(s, a.digest, &got, &e), 0);
    T_EQ_STR(got.cred_id, "cred_1");
    T_EQ_STR(got.key_id, "key_1");
    T_CHECK(got.last_seen_at == 1000 && got.expires_at == 5000);
    kw_session_t none = mk(9, 0, 0);
    T_EQ_INT(kw_store_session_get(s, none.digest, &got, &e), KW_ENOTFOUND);
    /* writes need the caller's transaction */
    T_EQ_INT(kw_store_session_touch(s, a.digest, 1200, &e), KW_EINTERNAL);
    T_EQ_INT(kw_store_begin(s, &e), 0);
    T_EQ_INT(kw_store_session_touch(s, a.digest, 1200, &e), 0);
    T_EQ_INT(kw_store_commit(s, &e), 0);
    T_EQ_INT(kw_store_session_get(s, a.digest, &got, &e), 0);
    T_CHECK(got.last_seen_at == 1200);
    /* purge at 1600 with idle_before 900: b is past its absolute end, a stays */
    int64_t n = -1;
    T_EQ_INT(kw_store_begin(s, &e), 0);
    T_EQ_INT(kw_store_session_purge(s, 900, 1600, &n, &e), 0);
    T_EQ_INT(kw_store_commit(s, &e), 0);
    T_CHECK(n == 1);
    T_EQ_INT(kw_store_session_get(s, b.digest, &got, &e), KW_ENOTFOUND);
    /* idle: last seen 1200 < 1300 */
    T_EQ_INT(put(s, &b), 0);
    kw_store_close(s);
    s = NULL;
    T_EQ_INT(kw_store_open(url, &s, &e), 0); /* another process (node) sees the sessions */
    T_EQ_INT(kw_store_session_get(s, a.digest, &got, &e), 0);
    T_EQ_INT(kw_store_begin(s, &e), 0);
    T_EQ_INT(kw_store_session_purge(s, 1300, 1400, &n, &e), 0);
    T_EQ_INT(kw_store_commit(s, &e), 0);
    T_CHECK(n == 2); /* a idle since 1200, b since 1000 */
    T_EQ_INT(put(s, &a), 0);
    T_EQ_INT(kw_store_begin(s, &e), 0);
    T_EQ_INT(kw_store_session_delete(s, a.digest, &e), 0);
    T_EQ_INT(kw_store_session_delete(s, a.digest, &e), 0); /* absent: no-op */
    T_EQ_INT(kw_store_commit(s, &e), 0);
    T_EQ_INT(kw_store_session_get(s, a.digest, &got, &e), KW_ENOTFOUND);
    kw_store_close(s);
}

int main(void)
{
    if (t_store_init("session"))
        return 2;
    t_store_url(url, sizeof(url));
    T_RUN(t_sessions);
    t_store_done();
    T_DONE();
}
