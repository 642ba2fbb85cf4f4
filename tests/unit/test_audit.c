/* test_audit.c - the audit trail's canonical form and hash (against a vector computed with
 * Python's hashlib), the chain check on edited, deleted, inserted and reordered records,
 * the head check, and append/verify through a real SQLite store. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/audit.h"
#include "store/store.h"
#include "store/sqlite.h" /* kw_store_sqlite_exec, to tamper */
#include "t.h"

static void mk(kw_audit_rec_t *r, int64_t seq, const char *action, const kw_audit_rec_t *prev)
{
    memset(r, 0, sizeof(*r));
    r->seq = seq;
    r->at = 1700000000 + seq;
    snprintf(r->actor, sizeof(r->actor), "cred_%lld", (long long)seq);
    snprintf(r->action, sizeof(r->action), "%s", action);
    snprintf(r->outcome, sizeof(r->outcome), "ok");
    if (prev) {
        r->has_prev = 1;
        memcpy(r->prev_hash, prev->hash, KW_AUDIT_HASH_LEN);
    }
    kw_audit_hash(r, r->hash);
}

static void test_canonical_and_vector(void)
{
    kw_audit_rec_t r = {.seq = 1, .at = 1700000000};
    char *c = NULL, hex[65];
    size_t n = 0;
    snprintf(r.actor, sizeof(r.actor), "cred");
    snprintf(r.action, sizeof(r.action), "credential.create");
    snprintf(r.outcome, sizeof(r.outcome), "ok");
    r.detail = strdup("{\"a\":\"b\"}");
    T_EQ_INT(kw_audit_canonical(&r, &c, &n), 0);
    T_EQ_STR(c, "keyward-audit-v1\nseq=1\nat=1700000000\nactor=4:cred\naction=17:credential."
                "create\ntarget=-\noutcome=2:ok\ndetail=9:{\"a\":\"b\"}\n");
    T_EQ_INT(n, strlen(c));
    free(c);
    T_EQ_INT(kw_audit_hash(&r, r.hash), 0);
    kw_audit_hex(r.hash, hex);
    /* python3: sha256(canonical + bytes(32)) */
    T_EQ_STR(hex, "f49624b058eb87d0ae607852e50a232711381f68655c9f77ae7b7500f47d963c");
    /* the length prefix keeps field boundaries: moving a character between fields changes
     * the hash even though the concatenated text is the same */
    kw_audit_rec_t q = r;
    uint8_t h1[32], h2[32];
    snprintf(q.actor, sizeof(q.actor), "cre");
    snprintf(q.action, sizeof(q.action), "dcredential.create");
    kw_audit_hash(&q, h1);
    T_CHECK(memcmp(h1, r.hash, 32) != 0);
    /* an absent target and an empty detail differ from "-" text */
    q = r;
    snprintf(q.target, sizeof(q.target), "-");
    kw_audit_hash(&q, h2);
    T_CHECK(memcmp(h2, r.hash, 32) != 0);
    /* prev_hash is part of the hash */
    q = r;
    q.has_prev = 1;
    kw_audit_hash(&q, h2);
    T_CHECK(memcmp(h2, r.hash, 32) == 0); /* all-zero prev == no prev, by definition */
    q.prev_hash[0] = 1;
    kw_audit_hash(&q, h2);
    T_CHECK(memcmp(h2, r.hash, 32) != 0);
    free(r.detail);
}

#define N 6

static kw_audit_chain_t run(kw_audit_rec_t *a, size_t n, const char *head)
{
    kw_audit_chain_t c;
    kw_audit_chain_init(&c);
    for (size_t i = 0; i < n; i++)
        kw_audit_chain_feed(&c, &a[i]);
    kw_audit_chain_end(&c, head);
    return c;
}

static void head_of(const kw_audit_rec_t *r, char *out, size_t n)
{
    char hex[65];
    kw_audit_hex(r->hash, hex);
    snprintf(out, n, "%lld:%s", (long long)r->seq, hex);
}

static void test_chain(void)
{
    kw_audit_rec_t a[N], b[N + 1];
    char head[128];
    for (int i = 0; i < N; i++)
        mk(&a[i], i + 1, "key.create", i ? &a[i - 1] : NULL);
    head_of(&a[N - 1], head, sizeof(head));
    kw_audit_chain_t c = run(a, N, head);
    T_EQ_INT(c.first_bad, 0);
    T_EQ_INT(c.records, N);
    c = run(a, N, NULL);
    T_EQ_INT(c.first_bad, 0);

    /* edit */
    memcpy(b, a, sizeof(a));
    snprintf(b[2].action, sizeof(b[2].action), "key.invalidate");
    T_EQ_INT(run(b, N, head).first_bad, 3);
    /* edit and re-hash that record: the next link breaks */
    kw_audit_hash(&b[2], b[2].hash);
    T_EQ_INT(run(b, N, head).first_bad, 4);
    /* delete from the middle, the start, the end */
    memcpy(b, a, sizeof(a));
    memmove(&b[3], &b[4], sizeof(b[0]) * (N - 4));
    T_EQ_INT(run(b, N - 1, head).first_bad, 5);
    T_EQ_INT(run(a + 1, N - 1, head).first_bad, 2);
    c = run(a, N - 1, head);
    T_EQ_INT(c.first_bad, N);
    T_CHECK(strstr(c.why, "end") != NULL);
    /* reorder */
    memcpy(b, a, sizeof(a));
    b[1] = a[2];
    b[2] = a[1];
    T_EQ_INT(run(b, N, head).first_bad, 3); /* the record found where 2 should be */
    /* renumbered swap: seq is hashed */
    b[1].seq = 2;
    b[2].seq = 3;
    T_EQ_INT(run(b, N, head).first_bad, 2);
    /* insert at the end with a correct link and hash: only the head notices */
    memcpy(b, a, sizeof(a));
    mk(&b[N], N + 1, "key.create", &a[N - 1]);
    c = run(b, N + 1, head);
    T_EQ_INT(c.first_bad, N + 1);
    /* the head itself edited */
    char badhead[128];
    snprintf(badhead, sizeof(badhead), "%lld:%064d", (long long)N, 0);
    T_EQ_INT(run(a, N, badhead).first_bad, N);
    T_EQ_INT(run(a, N, "garbage").first_bad, N);
}

static void test_store_append_verify(void)
{
    char dir[] = "/tmp/kw-test-audit-XXXXXX", url[128];
    kw_store_t *s = NULL;
    kw_err_t e = {0};
    kw_audit_verdict_t v;
    T_CHECK(mkdtemp(dir) != NULL);
    snprintf(url, sizeof(url), "sqlite:%s/a.db", dir);
    T_EQ_INT(kw_store_open(url, &s, &e), 0);
    T_EQ_INT(kw_audit_verify(s, &v, &e), 0);
    T_CHECK(v.ok && v.records == 0 && v.head[0] == '\0');
    /* outside a transaction an append is refused as "audit unavailable" */
    T_EQ_INT(kw_audit_append(s, "cred_x", "key.create", "key_y", "ok", NULL, 1, &e), KW_ESTORE);
    T_CHECK(strstr(e.msg, "audit trail unavailable") != NULL);
    for (int i = 0; i < 3; i++) {
        T_EQ_INT(kw_store_begin(s, &e), 0);
        T_EQ_INT(kw_audit_append(s, "cred_x", "key.create", i ? "key_y" : NULL, "ok",
                                 json_pack("{s:i}", "n", i), 1700000000 + i, &e),
                 0);
        T_EQ_INT(kw_store_commit(s, &e), 0);
    }
    /* a rolled-back append leaves no trace and no gap */
    T_EQ_INT(kw_store_begin(s, &e), 0);
    T_EQ_INT(kw_audit_append(s, NULL, "x", NULL, NULL, NULL, 1, &e), 0);
    kw_store_rollback(s);
    T_EQ_INT(kw_audit_verify(s, &v, &e), 0);
    T_CHECK(v.ok);
    T_EQ_INT(v.records, 3);
    kw_audit_rec_t *recs = NULL;
    size_t n = 0;
    kw_audit_filter_t f = {.ascending = 1, .limit = 10};
    T_EQ_INT(kw_store_audit_list(s, &f, &recs, &n, &e), 0);
    T_EQ_INT(n, 3);
    if (n == 3) {
        T_EQ_INT(recs[0].has_prev, 0);
        T_EQ_INT(recs[2].seq, 3);
        T_CHECK(memcmp(recs[2].prev_hash, recs[1].hash, 32) == 0);
        T_EQ_STR(recs[1].detail, "{\"n\":1}");
        T_EQ_STR(recs[0].target, "");
        char hex[65];
        kw_audit_hex(recs[2].hash, hex);
        T_EQ_STR(v.head, hex);
    }
    kw_audit_rec_array_free(recs, n);
    f = (kw_audit_filter_t){.target = "key_y", .limit = 10};
    T_EQ_INT(kw_store_audit_list(s, &f, &recs, &n, &e), 0);
    T_EQ_INT(n, 2);
    if (n == 2)
        T_EQ_INT(recs[0].seq, 3); /* newest first */
    kw_audit_rec_array_free(recs, n);
    /* tamper through SQL: edit record 2 */
    T_EQ_INT(kw_store_begin(s, &e), 0);
    T_EQ_INT(kw_store_sqlite_exec(s, "UPDATE audit SET actor = 'someone' WHERE seq = 2", &e), 0);
    T_EQ_INT(kw_store_commit(s, &e), 0);
    T_EQ_INT(kw_audit_verify(s, &v, &e), 0);
    T_CHECK(!v.ok);
    T_EQ_INT(v.first_bad, 2);
    kw_store_close(s);
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    T_EQ_INT(system(cmd), 0);
}

int main(void)
{
    T_RUN(test_canonical_and_vector);
    T_RUN(test_chain);
    T_RUN(test_store_append_verify);
    T_DONE();
}
