/* create_floor.c - the floor of a durable key creation, for bench/create_bench.py: the rows
 * one POST /v1/credentials leaves in the store, written with plain prepared sqlite3
 * statements, one transaction per creation, synchronous=FULL, in a store keyward made (its
 * own schema: every index, trigger and foreign key), and the CPU time that takes.
 *
 *     create_floor DB SECONDS [COUNT]
 *
 * DB must hold at least one credential made through the API: its newest credential, key,
 * event and audit record and the audit head are the templates, so every row written here
 * has the size and shape keyward's own rows have. Each creation, in one BEGIN IMMEDIATE …
 * COMMIT: INSERT the credential, its key (the schema's trigger arms its alert), the
 * key.created event, then mark that event fanned out (keyward's outbox does it in a later,
 * shared transaction), INSERT the audit record, UPDATE the audit head in meta. New ids keep
 * the template's prefix and length; digests and hashes are new random bytes. No keyward
 * code runs: no key generation, digest, JSON, audit hash, HTTP or locking.
 *
 * Runs SECONDS, or COUNT creations when given. Prints one line: creations, seconds,
 * creations/s, CPU µs per creation (getrusage of this process: user + system, the fsync's
 * wait not included), user and system apart. */
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <time.h>

#define MAXCOL 32

typedef struct {
    const char *table;
    int ncol;
    char name[MAXCOL][64];
    int type[MAXCOL];
    int64_t ival[MAXCOL];
    unsigned char *bval[MAXCOL]; /* text or blob */
    int blen[MAXCOL];
    sqlite3_stmt *ins;
} tmpl_t;

static sqlite3 *db;
static uint64_t rng;

static void die(const char *what)
{
    fprintf(stderr, "create_floor: %s: %s\n", what, db ? sqlite3_errmsg(db) : "?");
    exit(1);
}

static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* A new id shaped like t (same prefix up to the last '_', same length). */
static void new_id(const unsigned char *t, int n, char *out)
{
    static const char b62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    int us = n;
    while (us > 0 && t[us - 1] != '_')
        us--;
    memcpy(out, t, (size_t)us);
    for (int i = us; i < n; i++)
        out[i] = b62[next() % 62];
    out[n] = '\0';
}

static void load(tmpl_t *t, const char *table)
{
    char sql[256], cols[2048] = "", qs[256] = "";
    sqlite3_stmt *st;
    t->table = table;
    snprintf(sql, sizeof(sql), "SELECT * FROM %s ORDER BY seq DESC LIMIT 1", table);
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        die(sql);
    if (sqlite3_step(st) != SQLITE_ROW) {
        fprintf(stderr, "create_floor: no row in %s: create one through the API first\n", table);
        exit(1);
    }
    for (int i = 0; i < sqlite3_column_count(st); i++) {
        const char *name = sqlite3_column_name(st, i);
        if (strcmp(name, "seq") == 0) /* AUTOINCREMENT, as keyward leaves it */
            continue;
        int k = t->ncol++;
        if (k >= MAXCOL)
            die("too many columns");
        snprintf(t->name[k], sizeof(t->name[k]), "%s", name);
        t->type[k] = sqlite3_column_type(st, i);
        if (t->type[k] == SQLITE_INTEGER) {
            t->ival[k] = sqlite3_column_int64(st, i);
        } else if (t->type[k] == SQLITE_TEXT || t->type[k] == SQLITE_BLOB) {
            const void *v = t->type[k] == SQLITE_TEXT ? (const void *)sqlite3_column_text(st, i)
                                                      : sqlite3_column_blob(st, i);
            t->blen[k] = sqlite3_column_bytes(st, i);
            t->bval[k] = malloc((size_t)t->blen[k] + 1);
            memcpy(t->bval[k], v, (size_t)t->blen[k]);
            t->bval[k][t->blen[k]] = 0;
        }
        snprintf(cols + strlen(cols), sizeof(cols) - strlen(cols), "%s%s", k ? "," : "", name);
        snprintf(qs + strlen(qs), sizeof(qs) - strlen(qs), "%s?", k ? "," : "");
    }
    sqlite3_finalize(st);
    char *big = sqlite3_mprintf("INSERT INTO %s(%s) VALUES(%s)", table, cols, qs);
    if (sqlite3_prepare_v3(db, big, -1, SQLITE_PREPARE_PERSISTENT, &t->ins, NULL) != SQLITE_OK)
        die(big);
    sqlite3_free(big);
}

static int col(const tmpl_t *t, const char *name)
{
    for (int k = 0; k < t->ncol; k++)
        if (strcmp(t->name[k], name) == 0)
            return k;
    return -1;
}

/* Bind the template's values (the caller then binds the columns that must differ). */
static void bind_tmpl(tmpl_t *t)
{
    sqlite3_reset(t->ins);
    for (int k = 0; k < t->ncol; k++) {
        int rc = SQLITE_OK;
        if (t->type[k] == SQLITE_INTEGER)
            rc = sqlite3_bind_int64(t->ins, k + 1, t->ival[k]);
        else if (t->type[k] == SQLITE_TEXT)
            rc = sqlite3_bind_text(t->ins, k + 1, (const char *)t->bval[k], t->blen[k],
                                   SQLITE_STATIC);
        else if (t->type[k] == SQLITE_BLOB)
            rc = sqlite3_bind_blob(t->ins, k + 1, t->bval[k], t->blen[k], SQLITE_STATIC);
        else
            rc = sqlite3_bind_null(t->ins, k + 1);
        if (rc != SQLITE_OK)
            die("bind");
    }
}

static void bind_text(tmpl_t *t, const char *name, const char *v)
{
    int k = col(t, name);
    if (k >= 0 && sqlite3_bind_text(t->ins, k + 1, v, -1, SQLITE_TRANSIENT) != SQLITE_OK)
        die("bind");
}

static void bind_rand_blob(tmpl_t *t, const char *name)
{
    int k = col(t, name);
    if (k < 0 || t->type[k] != SQLITE_BLOB)
        return;
    unsigned char b[256];
    int n = t->blen[k] < (int)sizeof(b) ? t->blen[k] : (int)sizeof(b);
    for (int i = 0; i < n; i++)
        b[i] = (unsigned char)next();
    if (sqlite3_bind_blob(t->ins, k + 1, b, n, SQLITE_TRANSIENT) != SQLITE_OK)
        die("bind");
}

static void run(sqlite3_stmt *st, const char *what)
{
    if (sqlite3_step(st) != SQLITE_DONE)
        die(what);
    sqlite3_reset(st);
}

static sqlite3_stmt *prep(const char *sql)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK)
        die(sql);
    return st;
}

/* The templates and statements of one creation. */
static tmpl_t cred, key, ev, au;
static sqlite3_stmt *begin, *commit, *fanned, *head;
static int head_len;

/* One creation: one transaction. Not inlined: callgrind counts only this function
 * (bench/create_callgrind.py, --toggle-collect=create_one). */
__attribute__((noinline)) static void create_one(void)
{
    char cid[128], kid[128], eid[128], head_v[160];
    new_id(cred.bval[col(&cred, "id")], cred.blen[col(&cred, "id")], cid);
    new_id(key.bval[col(&key, "id")], key.blen[col(&key, "id")], kid);
    new_id(ev.bval[col(&ev, "id")], ev.blen[col(&ev, "id")], eid);
    int64_t now = (int64_t)time(NULL);
    run(begin, "BEGIN");
    bind_tmpl(&cred);
    bind_text(&cred, "id", cid);
    run(cred.ins, "INSERT credentials");
    bind_tmpl(&key);
    bind_text(&key, "id", kid);
    bind_text(&key, "cred_id", cid);
    bind_rand_blob(&key, "digest");
    run(key.ins, "INSERT keys");
    bind_tmpl(&ev);
    bind_text(&ev, "id", eid);
    bind_text(&ev, "cred_id", cid);
    sqlite3_bind_null(ev.ins, col(&ev, "fanout_at") + 1);
    run(ev.ins, "INSERT events");
    sqlite3_bind_int64(fanned, 1, now);
    sqlite3_bind_int64(fanned, 2, sqlite3_last_insert_rowid(db));
    run(fanned, "UPDATE events");
    bind_tmpl(&au);
    bind_text(&au, "target", cid);
    bind_rand_blob(&au, "prev_hash");
    bind_rand_blob(&au, "hash");
    run(au.ins, "INSERT audit");
    for (int i = 0; i < head_len; i++)
        head_v[i] = "0123456789abcdef"[next() & 15];
    sqlite3_bind_text(head, 1, head_v, head_len, SQLITE_STATIC);
    run(head, "UPDATE meta");
    run(commit, "COMMIT");
}

static double cpu_s(struct rusage *u, int sys)
{
    struct timeval *t = sys ? &u->ru_stime : &u->ru_utime;
    return (double)t->tv_sec + (double)t->tv_usec / 1e6;
}

static double since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

int main(int argc, char **argv)
{
    if (argc != 3 && argc != 4) {
        fprintf(stderr, "usage: create_floor DB SECONDS [COUNT]\n");
        return 2;
    }
    double secs = atof(argv[2]);
    long count = argc == 4 ? atol(argv[3]) : 0; /* > 0: stop after COUNT creations */
    if (getrandom(&rng, sizeof(rng), 0) != sizeof(rng) || rng == 0)
        rng = 0x9e3779b97f4a7c15u;
    if (sqlite3_open_v2(argv[1], &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
        die(argv[1]);
    /* keyward's writer connection: the same pragmas (src/store/sqlite.c) */
    if (sqlite3_exec(db,
                     "PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL; PRAGMA trusted_schema "
                     "= OFF; PRAGMA journal_mode = WAL; PRAGMA temp_store = MEMORY;",
                     NULL, NULL, NULL) != SQLITE_OK)
        die("pragmas");
    load(&cred, "credentials");
    load(&key, "keys");
    load(&ev, "events");
    load(&au, "audit");
    if (col(&cred, "id") < 0 || col(&key, "id") < 0 || col(&ev, "id") < 0 ||
        col(&ev, "fanout_at") < 0)
        die("schema: an expected column is missing");
    begin = prep("BEGIN IMMEDIATE");
    commit = prep("COMMIT");
    fanned = prep("UPDATE events SET fanout_at = ? WHERE seq = ?");
    head = prep("UPDATE meta SET value = ? WHERE key = 'audit_head'");
    sqlite3_stmt *hq = prep("SELECT length(value) FROM meta WHERE key = 'audit_head'");
    head_len = sqlite3_step(hq) == SQLITE_ROW ? sqlite3_column_int(hq, 0) : 0;
    sqlite3_finalize(hq);
    if (head_len <= 0 || head_len >= 160)
        die("no audit head in meta: create a credential through the API first");

    struct rusage u0, u1;
    struct timespec t0;
    long n = 0;
    getrusage(RUSAGE_SELF, &u0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (count > 0 ? n < count : (n & 15) || since(&t0) < secs) {
        create_one();
        n++;
    }
    getrusage(RUSAGE_SELF, &u1);
    double wall = since(&t0);
    double us = cpu_s(&u1, 0) - cpu_s(&u0, 0), ss = cpu_s(&u1, 1) - cpu_s(&u0, 1);
    printf("creations %ld seconds %.3f rate %.1f cpu_us %.2f user_us %.2f sys_us %.2f\n", n, wall,
           (double)n / wall, (us + ss) * 1e6 / (double)n, us * 1e6 / (double)n,
           ss * 1e6 / (double)n);
    sqlite3_close_v2(db);
    return 0;
}
