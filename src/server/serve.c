/* serve.c - the daemon: load config, open the store, fill the index, bootstrap the admin
 * key, serve HTTP, write usage back in batches, and stop cleanly on SIGTERM/SIGINT.
 *
 * Threads: the main thread waits for signals; the HTTP layer runs its own (http.c); one
 * "usage" thread flushes verification counters every --usage-flush-interval and purges
 * retired keys hourly. */
#include "serve.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "app/admin_key.h"
#include "atrest.h"
#include "bgthread.h"
#include "core/key.h"
#include "core/seal.h"
#include "core/util.h"
#include "follow.h"
#include "listenfd.h"
#include "log.h"
#include "mail_msg.h"
#include "metrics.h"
#include "metrics_expiry.h"
#include "notify_abort.h"
#include "oauth.h"
#include "outbox.h"
#include "ratelimit.h"
#include "reload.h"
#include "scheduler.h"
#include "shutdown.h"
#include "store/store_cluster.h"
#include "watched.h"

#define PURGE_EVERY_S 3600

extern char **environ;

typedef struct usage_thread {
    kw_server_t *srv;
    kw_bg_t bg;
} usage_thread_t;

/* jansson frees through here so that JSON holding a secret (request bodies, creation
 * answers) does not linger in freed heap memory. */
static void wipe_free(void *p)
{
    if (p) {
        explicit_bzero(p, malloc_usable_size(p));
        free(p);
    }
}

static void flush_usage(kw_server_t *s)
{
    kw_usage_t *u = NULL;
    size_t n = 0;
    kw_err_t e = {0};
    if (kw_index_drain_usage(s->index, &u, &n) != 0 || n == 0) {
        free(u);
        return;
    }
    if (kw_store_usage_apply(s->store, u, n, &e) != 0) {
        kw_index_restore_usage(s->index, u, n); /* retried on the next tick */
        kw_log(KW_LOG_WARN, "usage write-back failed; will retry", "{s:s, s:I}", "error", e.msg,
               "keys", (json_int_t)n);
    }
    free(u);
}

static void *usage_main(void *arg)
{
    usage_thread_t *t = arg;
    int64_t last_purge = kw_now();
    pthread_mutex_lock(&t->bg.mu);
    while (!t->bg.stop) {
        kw_bg_sleep(&t->bg, (int64_t)t->srv->cfg.usage_flush * 1000);
        pthread_mutex_unlock(&t->bg.mu);
        flush_usage(t->srv);
        kw_oauth_flush(t->srv); /* issued tokens' audit records, revocations */
        if (kw_now() - last_purge >= PURGE_EVERY_S) {
            last_purge = kw_now();
            size_t n = kw_index_purge(t->srv->index, last_purge - t->srv->cfg.retention);
            if (n)
                kw_log(KW_LOG_INFO, "retired keys dropped from the index", "{s:I}", "keys",
                       (json_int_t)n);
        }
        pthread_mutex_lock(&t->bg.mu);
    }
    pthread_mutex_unlock(&t->bg.mu);
    flush_usage(t->srv); /* final flush on stop */
    kw_digest_thread_cleanup();
    return NULL;
}

/* Default admin key file: beside the SQLite file, keyward.db -> keyward.admin-key. */
static void admin_key_path(const kw_server_t *s, char *out, size_t n)
{
    kw_store_file_beside(s->store, s->cfg.admin_key_file, "admin-key", out, n);
}

static int load_pepper(const char *path, kw_err_t *err)
{
    uint8_t buf[256];
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return kw_err_set(err, KW_EIO, "pepper-file", "cannot read pepper file %s: %s", path,
                          strerror(errno));
    size_t n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    if (n < 16) {
        kw_wipe(buf, sizeof(buf));
        return kw_err_set(err, KW_EINVAL, "pepper-file",
                          "pepper file %s must hold at least 16 bytes", path);
    }
    int rc = kw_digest_set_pepper(buf, n);
    kw_wipe(buf, sizeof(buf));
    return rc ? kw_err_set(err, rc, "pepper-file", "cannot set the pepper") : 0;
}

static void print_usage(void)
{
    fprintf(stdout, "usage: keyward serve [options]\n\n"
                    "Runs the keyward daemon. Every option can also be set with the\n"
                    "environment variable KEYWARD_<NAME> or in the --config file.\n\n");
    kw_config_usage(stdout);
}

int kw_serve_main(int argc, char **argv)
{
    kw_server_t srv;
    kw_err_t err = {0};
    kw_http_t *http = NULL;
    usage_thread_t ut = {0};
    int rc = 1, ut_started = 0, lc_ready = 0, lfd = -1;
    kw_sched_t *sched = NULL;
    char keypath[KW_PATH_MAX + 16];
    sigset_t sigs;
    int inherited_fd = -1; /* systemd socket activation (listenfd.h) */
    char laddr[300];

    memset(&srv, 0, sizeof(srv));
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            print_usage();
            return 0;
        }
    kw_config_defaults(&srv.cfg);
    if (kw_config_load(&srv.cfg, argc - 1, argv + 1, environ, &err) != 0) {
        fprintf(stderr, "keyward: %s\n", err.msg);
        return 2;
    }
    if (srv.cfg.check_config) /* opkit: validate and exit, creating nothing */
        return kw_serve_check_config(&srv.cfg, stdout, stderr);
    kw_log_set_level(kw_log_level_parse(srv.cfg.log_level));
    /* e-mail templates: checked before anything starts, so a typo is one line and exit 2 */
    if (kw_mail_set_load(srv.cfg.mail_templates, &srv.mail, &err) != 0) {
        fprintf(stderr, "keyward: %s\n", err.msg);
        return 2;
    }
    json_set_alloc_funcs(malloc, wipe_free);

    /* Signals are taken by sigwait in this thread only; threads started below inherit
     * the mask. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP); /* reload (reload.h) */
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    {
        char why[160];
        int extra = 0;
        if ((inherited_fd = kw_listen_inherited(why, sizeof(why), &extra)) == -2) {
            kw_err_set(&err, KW_EINVAL, "listen", "%s", why);
            goto fail;
        }
        if (extra)
            kw_log(KW_LOG_WARN, "socket activation: only the first socket is served", "{s:i}",
                   "ignored", extra);
    }

    /* security: nothing this process creates is readable by others (store, WAL, key
     * files); then the listening socket, before any file is created or migrated */
    umask(077);
    if (inherited_fd > 0)
        lfd = inherited_fd; /* socket activation: the service manager's, already listening */
    else if (kw_http_bind(srv.cfg.listen, &lfd, &err) != 0)
        goto fail;
    char secpath[KW_PATH_MAX + 16];
    if (srv.cfg.secrets_key_file[0])
        snprintf(secpath, sizeof(secpath), "%s", srv.cfg.secrets_key_file);
    else
        kw_atrest_beside_db(&srv.cfg, ".secrets-key", secpath, sizeof(secpath));
    if (srv.cfg.admin_key_file[0])
        snprintf(keypath, sizeof(keypath), "%s", srv.cfg.admin_key_file);
    else
        kw_atrest_beside_db(&srv.cfg, ".admin-key", keypath, sizeof(keypath));
    kw_atrest_warn_modes(&srv.cfg, keypath, secpath);
    kw_atrest_make_db_dir(&srv.cfg);

    if (srv.cfg.pepper_file[0] && load_pepper(srv.cfg.pepper_file, &err) != 0)
        goto fail;
    if (kw_store_open(srv.cfg.store, &srv.store, &err) != 0)
        goto fail;
    if (kw_atrest_open_secrets(&srv, secpath, &err) != 0)
        goto fail;
    srv.index = kw_index_new(1024);
    if (srv.index == NULL || kw_lc_init(&srv.lc, srv.store, srv.index) != 0) {
        kw_err_set(&err, KW_ENOMEM, NULL, "out of memory");
        goto fail;
    }
    lc_ready = 1;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    /* several nodes: the feed position before the load, so nothing committed meanwhile is
     * missed (follow.h) */
    int64_t feed_lo = 0, feed_from = 0;
    if (kw_store_shared(srv.store) &&
        kw_store_feed_bounds(srv.store, &feed_lo, &feed_from, &err) != 0)
        goto fail;
    if (kw_lc_load_index(&srv.lc, kw_now() - srv.cfg.retention, &err) != 0)
        goto fail;
    admin_key_path(&srv, keypath, sizeof(keypath));
    int created = 0;
    /* several nodes starting together: one bootstraps, the others then find it done */
    if (kw_store_shared(srv.store) && kw_store_cluster_lock(srv.store, "admin_bootstrap", &err))
        goto fail;
    rc = kw_admin_key_bootstrap(&srv.lc, keypath, &created, &err);
    kw_store_cluster_unlock(srv.store, "admin_bootstrap");
    rc = rc ? 1 : 0;
    if (rc)
        goto fail;
    if (kw_store_shared(srv.store) && kw_follow_start(&srv, feed_from, &srv.follow, &err) != 0)
        goto fail;
    if (created)
        kw_log(KW_LOG_INFO, "first start: admin key written", "{s:s}", "file", keypath);
    if (kw_oauth_start(&srv, &err) != 0) /* OAuth2 token key (sealed) and revocations */
        goto fail;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    kw_log(KW_LOG_INFO, "index loaded", "{s:I, s:I}", "keys", (json_int_t)kw_index_count(srv.index),
           "ms",
           (json_int_t)((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000));

    ut.srv = &srv;
    if (kw_bg_start(&ut.bg, 1, usage_main, &ut) != 0) {
        kw_err_set(&err, KW_EINTERNAL, NULL, "cannot start the usage thread");
        goto fail;
    }
    ut_started = 1;

    /* alerts: delivery workers first, so the scheduler's first events are picked up */
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (srv.cfg.smtp[0] == '\0' || srv.cfg.mail_from[0] == '\0') {
        /* e-mail contacts and sinks would retry until --delivery-max-age: say so now */
        int email_sink = 0;
        for (const char *l = srv.cfg.sinks; *l && !email_sink;
             l = strchr(l, '\n') ? strchr(l, '\n') + 1 : "")
            email_sink = strncmp(l, "email", 5) == 0;
        kw_log(email_sink ? KW_LOG_WARN : KW_LOG_INFO,
               email_sink ? "an e-mail sink is configured but --smtp/--mail-from are not set; "
                            "e-mail deliveries will fail"
                          : "e-mail delivery is off (no --smtp/--mail-from); e-mail contacts "
                            "will fail until it is set",
               NULL);
    }
    if (kw_outbox_start(&srv, &srv.outbox, &err) != 0 || kw_sched_start(&srv, &sched, &err) != 0)
        goto fail;
    if (kw_metrics_expiry_start(&srv, &err) != 0)
        goto fail;
    /* watched credentials (SPEC §12): the sealing key is atrest's; then the refresher */
    if (kw_secrets_start(&srv, &err) != 0 || kw_refresher_start(&srv, &srv.refresher, &err) != 0)
        goto fail;

    kw_http_opts_t ho = {.listen = srv.cfg.listen,
                         .threads = srv.cfg.threads,
                         .max_body = (size_t)srv.cfg.max_body,
                         .max_connections = (unsigned)srv.cfg.max_connections,
                         .idle_timeout = (unsigned)srv.cfg.idle_timeout,
                         .request_timeout = (unsigned)srv.cfg.request_timeout,
                         .gateway = kw_api_gateway,
                         .bound_fd = lfd,
                         .count_conn = kw_metrics_conn};
    srv.authrl = kw_rl_new(srv.cfg.auth_fail_limit, srv.cfg.auth_fail_window);
    lfd = -1; /* taken over by kw_http_start, even when it fails */
    if (kw_http_start(&ho, kw_api_handle, &srv, &http, &err) != 0)
        goto fail;
    srv.ready = 1;
    if (inherited_fd > 0)
        kw_listen_describe(inherited_fd, laddr, sizeof(laddr));
    kw_log(KW_LOG_INFO, "listening", "{s:s, s:s, s:i, s:b}", "addr",
           inherited_fd > 0 ? laddr : srv.cfg.listen, "store",
           kw_store_file(srv.store) ? kw_store_file(srv.store) : "(external)", "threads",
           srv.cfg.threads, "socket_activation", inherited_fd > 0);

    int sig = 0;
    for (;;) { /* SIGHUP reloads; SIGTERM/SIGINT stop */
        sigwait(&sigs, &sig);
        if (sig != SIGHUP)
            break;
        kw_reload(&srv, argc - 1, argv + 1, environ);
    }
    int64_t budget_ms = srv.cfg.shutdown_timeout * 1000;
    kw_log(KW_LOG_INFO, "stopping", "{s:s, s:I}", "signal", sig == SIGTERM ? "SIGTERM" : "SIGINT",
           "shutdown_timeout_ms", (json_int_t)budget_ms);
    kw_shutdown_watch(budget_ms); /* a second signal, or the timeout, ends it at once */
    kw_notify_abort();            /* deliveries in flight: abandoned, they stay queued */
    srv.ready = 0;
    kw_http_stop(http, (int)(budget_ms / 3));
    http = NULL;
    rc = 0;
    goto out;

fail:
    fprintf(stderr, "keyward: %s\n", err.msg[0] ? err.msg : kw_strerror(err.code));
    rc = err.code == KW_EINVAL ? 2 : 1;
out:
    if (http)
        kw_http_stop(http, 0);
    kw_metrics_expiry_stop();
    kw_refresher_stop(srv.refresher);
    srv.refresher = NULL;
    kw_sched_stop(sched);
    kw_follow_stop(srv.follow);
    srv.follow = NULL;
    kw_outbox_stop(srv.outbox); /* waits for sends in flight (aborted on a stop: ~1 s) */
    srv.outbox = NULL;
    if (ut_started) {
        kw_bg_stop(&ut.bg); /* the thread flushes usage one last time */
    }
    kw_oauth_stop(&srv); /* after the usage thread: its last flush is done */
    if (lc_ready)
        kw_lc_destroy(&srv.lc);
    kw_index_free(srv.index);
    kw_secrets_stop(&srv);
    kw_store_close(srv.store);
    kw_seal_free(srv.seal);
    if (lfd >= 0)
        close(lfd);
    kw_rl_free(srv.authrl);
    kw_mail_set_free(srv.mail);
    kw_digest_thread_cleanup();
    if (rc == 0)
        kw_log(KW_LOG_INFO, "stopped", NULL);
    return rc;
}
