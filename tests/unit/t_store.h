/* t_store.h - a throw-away store for a unit test on either backend: SQLite (a file in a
 * temp directory) by default, or with KW_TEST_STORE=postgresql a fresh schema in the
 * database at KW_TEST_PG_URL (scripts/pg.sh start). t_store_init once, t_store_url for
 * each new store, t_store_done at the end (drops the schemas, removes the directory). */
#ifndef KW_T_STORE_H
#define KW_T_STORE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef KW_HAVE_LIBPQ
#include <libpq-fe.h>
#endif

static char t_store_dir[64];
static const char *t_store_pg; /* KW_TEST_PG_URL when KW_TEST_STORE=postgresql */
static int t_store_n;

/* 0, or 2 when KW_TEST_STORE=postgresql cannot be honoured (the test should exit 2). */
static int t_store_init(const char *tag)
{
    const char *which = getenv("KW_TEST_STORE");
    if (which && strcmp(which, "postgresql") == 0) {
#ifdef KW_HAVE_LIBPQ
        t_store_pg = getenv("KW_TEST_PG_URL");
        if (t_store_pg && *t_store_pg) {
            printf("# store: PostgreSQL\n");
            return 0;
        }
#endif
        printf("KW_TEST_STORE=postgresql needs libpq and KW_TEST_PG_URL (scripts/pg.sh start)\n");
        return 2;
    }
    snprintf(t_store_dir, sizeof(t_store_dir), "/tmp/kw-%s-XXXXXX", tag);
    return mkdtemp(t_store_dir) ? 0 : 2;
}

#ifdef KW_HAVE_LIBPQ
static int t_store_pg_exec(const char *sql)
{
    PGconn *db = PQconnectdb(t_store_pg);
    PGresult *r = PQstatus(db) == CONNECTION_OK ? PQexec(db, sql) : NULL;
    int rc = r && PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : -1;
    if (rc)
        printf("# %s: %s\n", sql, PQerrorMessage(db));
    PQclear(r);
    PQfinish(db);
    return rc;
}
#endif

/* A new, empty store's URL. */
static void t_store_url(char *url, size_t n)
{
    ++t_store_n;
#ifdef KW_HAVE_LIBPQ
    if (t_store_pg) {
        char sql[96];
        snprintf(sql, sizeof(sql), "CREATE SCHEMA kwu_%d_%d", (int)getpid(), t_store_n);
        t_store_pg_exec(sql);
        snprintf(url, n, "%s%soptions=-csearch_path%%3Dkwu_%d_%d", t_store_pg,
                 strchr(t_store_pg, '?') ? "&" : "?", (int)getpid(), t_store_n);
        return;
    }
#endif
    snprintf(url, n, "sqlite:%s/s%d.db", t_store_dir, t_store_n);
}

static void t_store_done(void)
{
#ifdef KW_HAVE_LIBPQ
    if (t_store_pg) {
        for (int i = 1; i <= t_store_n; i++) {
            char sql[96];
            snprintf(sql, sizeof(sql),
                     "SET client_min_messages = warning; DROP SCHEMA IF EXISTS kwu_%d_%d CASCADE",
                     (int)getpid(), i);
            t_store_pg_exec(sql);
        }
        return;
    }
#endif
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", t_store_dir);
    if (system(cmd) != 0)
        printf("# could not remove %s\n", t_store_dir);
}

#endif
