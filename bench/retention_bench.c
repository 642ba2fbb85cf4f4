/* retention_bench.c - benchmark helper for bench/retention_bench.py: writes N events
 * (with a delivery each, fanned out and delivered) into a keyward SQLite store through the
 * store API, on a simulated clock, pruning with kw_store_prune (the scheduler's batches)
 * after every batch of writes - or never, for the comparison. Prints one line per segment:
 * events written, store size (file + WAL), rows kept, write rate of that segment.
 *
 *   retention_bench DB N SEGMENT WINDOW_EVENTS prune|noprune
 *
 * The clock advances one second per 100 events; the retention is WINDOW_EVENTS / 100 s,
 * so a pruned store holds about WINDOW_EVENTS events in steady state. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "store/store.h"
#include "store/store_notify.h"

#define BATCH 1000

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long long fsize(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 ? (long long)st.st_size : 0;
}

static void check(int rc, const kw_err_t *e, const char *what)
{
    if (rc) {
        fprintf(stderr, "retention_bench: %s: %s\n", what, e->msg);
        exit(1);
    }
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: retention_bench DB N SEGMENT WINDOW_EVENTS prune|noprune\n");
        return 2;
    }
    const char *db = argv[1];
    long n = atol(argv[2]), seg = atol(argv[3]), window = atol(argv[4]);
    int prune = strcmp(argv[5], "prune") == 0;
    char url[4096], wal[4096];
    snprintf(url, sizeof(url), "sqlite:%s", db);
    snprintf(wal, sizeof(wal), "%s-wal", db);
    kw_store_t *s = NULL;
    kw_err_t e = {0};
    check(kw_store_open(url, &s, &e), &e, "open");
    int64_t t0 = 1700000000, retention = window / 100;
    double seg_start = mono(), write_s = 0;
    long kept = 0;
    printf("events size_bytes kept write_per_s\n");
    for (long i = 0; i < n;) {
        int64_t now = t0 + i / 100;
        double w0 = mono();
        check(kw_store_begin(s, &e), &e, "begin");
        for (int j = 0; j < BATCH && i < n; j++, i++) {
            char id[40], payload[256];
            snprintf(id, sizeof(id), "evt_bench%ld", i);
            snprintf(payload, sizeof(payload),
                     "{\"id\":\"%s\",\"type\":\"key.expiring\",\"credential_id\":\"cred_b%ld\","
                     "\"key_id\":\"key_b%ld\",\"threshold\":\"7d\",\"hint\":\"kw_abcd...wxyz\"}",
                     id, i % 5000, i % 5000);
            check(kw_store_event_insert(s, id, "key.expiring", now, payload, &e), &e, "insert");
            check(kw_store_delivery_add(s, id, "log", now, &e), &e, "delivery");
            check(kw_store_event_fanned(s, id, "cred_b", now, &e), &e, "fanned");
            kw_delivery_t d = {.attempts = 1, .delivered_at = now, .created_at = now};
            snprintf(d.event_id, sizeof(d.event_id), "%s", id);
            snprintf(d.channel, sizeof(d.channel), "log");
            snprintf(d.state, sizeof(d.state), "delivered");
            check(kw_store_delivery_finish(s, &d, &e), &e, "delivered");
        }
        check(kw_store_commit(s, &e), &e, "commit");
        write_s += mono() - w0;
        kept += BATCH;
        if (prune) {
            for (;;) {
                size_t d = 0;
                check(kw_store_begin(s, &e), &e, "begin prune");
                check(kw_store_prune(s, now - retention, 500, &d, &e), &e, "prune");
                check(kw_store_commit(s, &e), &e, "commit prune");
                kept -= (long)d;
                if (d == 0)
                    break;
            }
        }
        if (i % seg == 0 || i == n) {
            printf("%ld %lld %ld %.0f\n", i, fsize(db) + fsize(wal), kept,
                   (double)seg / (write_s > 0 ? write_s : 1));
            fflush(stdout);
            write_s = 0;
            seg_start = mono();
        }
    }
    (void)seg_start;
    kw_store_close(s);
    return 0;
}
