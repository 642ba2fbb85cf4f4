/* bulkload.c - benchmark helper: put N credentials with one key each straight into a
 * keyward SQLite store, in one transaction, with the digests and hints keyward computes
 * (src/core/key.c), so a benchmark starts keyward holding 1 M keys in seconds instead of
 * making 1 M API calls. Not part of the product: the store must already exist (start
 * keyward on it once so the schema and the admin key are there).
 *
 *   bulkload DB N KEYS_OUT [SAMPLE] [MAP_OUT]
 *
 * Keys are derived from their index (SHA-256 of "keyward-bench" || i), so runs repeat.
 * KEYS_OUT receives SAMPLE (default 10000) key texts spread over the N, one per line,
 * for the load generators: it holds secrets of a throw-away store, nothing else. MAP_OUT,
 * when given, receives every key as an nginx `map` line ("KEY" 1;) for the peer. */
#include <openssl/sha.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/key.h"

static void die(sqlite3 *db, const char *what)
{
    fprintf(stderr, "bulkload: %s: %s\n", what, db ? sqlite3_errmsg(db) : "");
    exit(1);
}

static void key_for(long i, char out[KW_KEY_MAX + 1])
{
    uint8_t seed[64], secret[32];
    int n = snprintf((char *)seed, sizeof(seed), "keyward-bench%ld", i);
    SHA256(seed, (size_t)n, secret);
    kw_key_from_bytes("kw", secret, out);
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: bulkload DB N KEYS_OUT [SAMPLE]\n");
        return 2;
    }
    long n = atol(argv[2]), sample = argc > 4 ? atol(argv[4]) : 10000;
    if (sample > n)
        sample = n;
    sqlite3 *db = NULL;
    sqlite3_stmt *ci, *ki;
    if (sqlite3_open(argv[1], &db) != SQLITE_OK)
        die(db, "open");
    FILE *out = fopen(argv[3], "w");
    FILE *map = argc > 5 ? fopen(argv[5], "w") : NULL;
    if (out == NULL || (argc > 5 && map == NULL))
        die(NULL, "cannot write KEYS_OUT or MAP_OUT");
    sqlite3_exec(db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;", 0, 0, 0);
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", 0, 0, 0) != SQLITE_OK)
        die(db, "begin");
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO credentials (id, name, owner, scopes, cidrs, metadata,"
                           " contacts, policy, prefix, disabled, created_at, updated_at)"
                           " VALUES (?1, ?2, 'bench@example.org', '[\"bench:read\"]', '[]',"
                           " '{}', '[]', 'default', 'kw', 0, ?3, ?3)",
                           -1, &ci, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db,
                           "INSERT INTO keys (id, cred_id, slot, live_slot, hint, digest,"
                           " created_at, expires_at, use_count) VALUES (?1, ?2, 1, 1, ?3, ?4,"
                           " ?5, ?6, 0)",
                           -1, &ki, NULL) != SQLITE_OK)
        die(db, "prepare (is this a keyward store?)");
    int64_t now = (int64_t)time(NULL);
    /* KW_BULK_SPREAD=1: expiries spread over the next year (1..365 days) instead of all at
     * 300 days, so some keys sit inside their alert thresholds (bench/metrics_bench.py). */
    const char *spread_env = getenv("KW_BULK_SPREAD");
    int spread = spread_env && spread_env[0] == '1';
    long every = sample ? n / sample : 0;
    for (long i = 0; i < n; i++) {
        char key[KW_KEY_MAX + 1], hint[KW_HINT_MAX], cid[32], kid[32], name[32];
        uint8_t d[KW_DIGEST_LEN];
        key_for(i, key);
        kw_key_digest(key, strlen(key), d);
        kw_key_hint(key, strlen(key), hint);
        snprintf(cid, sizeof(cid), "cred_bench%07ld", i);
        snprintf(kid, sizeof(kid), "key_bench%07ld", i);
        snprintf(name, sizeof(name), "bench-%ld", i);
        sqlite3_bind_text(ci, 1, cid, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(ci, 2, name, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(ci, 3, now);
        sqlite3_bind_text(ki, 1, kid, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(ki, 2, cid, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(ki, 3, hint, -1, SQLITE_TRANSIENT);
        sqlite3_bind_blob(ki, 4, d, KW_DIGEST_LEN, SQLITE_TRANSIENT);
        sqlite3_bind_int64(ki, 5, now);
        sqlite3_bind_int64(ki, 6, now + (spread ? (i * 7919) % 365 + 1 : 300LL) * 86400);
        if (sqlite3_step(ci) != SQLITE_DONE || sqlite3_step(ki) != SQLITE_DONE)
            die(db, "insert");
        sqlite3_reset(ci);
        sqlite3_reset(ki);
        if (every && i % every == 0 && sample-- > 0)
            fprintf(out, "%s\n", key);
        if (map)
            fprintf(map, "    \"%s\" 1;\n", key);
    }
    sqlite3_finalize(ci);
    sqlite3_finalize(ki);
    /* Spread expiries would put ~8 % of the keys' expiry alerts due at once and keep the
     * scheduler busy raising them during the measurement: mark them looked at until expiry. */
    if (spread && sqlite3_exec(db,
                               "UPDATE keys SET next_alert_at = expires_at WHERE id LIKE "
                               "'key_bench%'",
                               0, 0, 0) != SQLITE_OK)
        die(db, "update next_alert_at");
    if (sqlite3_exec(db, "COMMIT", 0, 0, 0) != SQLITE_OK)
        die(db, "commit");
    sqlite3_close(db);
    fclose(out);
    if (map)
        fclose(map);
    kw_digest_thread_cleanup();
    fprintf(stderr, "bulkload: %ld credentials and keys in %s\n", n, argv[1]);
    return 0;
}
