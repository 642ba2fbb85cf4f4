/* reload.c - SIGHUP reload: the configuration is loaded afresh exactly as at start, and
 * the settings the table marks live are copied into the running one under a write lock;
 * the others (listen address, store, threads, ...) are named in a warning and wait for a
 * restart. Connections are never touched. */
#include "reload.h"

#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/key.h"
#include "log.h"
#include "outbox.h"

static pthread_rwlock_t cfg_lock = PTHREAD_RWLOCK_INITIALIZER;

void kw_cfg_rdlock(void)
{
    pthread_rwlock_rdlock(&cfg_lock);
}

void kw_cfg_unlock(void)
{
    pthread_rwlock_unlock(&cfg_lock);
}

typedef struct changes {
    json_t *applied, *restart;
} changes_t;

static void note(void *ud, const char *name, int live)
{
    changes_t *c = ud;
    json_array_append_new(live ? c->applied : c->restart, json_string(name));
}

int kw_reload(kw_server_t *srv, int argc, char **argv, char **envp)
{
    kw_config_t *next = malloc(sizeof(*next));
    kw_err_t err = {0};
    changes_t ch = {json_array(), json_array()};
    int rc;
    if (next == NULL || ch.applied == NULL || ch.restart == NULL) {
        rc = kw_err_set(&err, KW_ENOMEM, NULL, "out of memory");
        goto out;
    }
    kw_config_defaults(next);
    if ((rc = kw_config_load(next, argc, argv, envp, &err)) != 0) {
        /* err names the setting and the file line, never a secret value */
        kw_log(KW_LOG_ERROR, "SIGHUP: configuration not reloaded, nothing changed", "{s:s}",
               "error", err.msg);
        goto out;
    }
    pthread_rwlock_wrlock(&cfg_lock);
    rc = (int)kw_config_apply_live(&srv->cfg, next, note, &ch);
    pthread_rwlock_unlock(&cfg_lock);
    kw_log_set_level(kw_log_level_parse(srv->cfg.log_level));
    size_t i;
    json_t *v;
    json_array_foreach(ch.restart, i, v)
        kw_log(KW_LOG_WARN, "SIGHUP: setting changed but applies only after a restart", "{s:s}",
               "setting", json_string_value(v));
    kw_log(KW_LOG_INFO, "SIGHUP: configuration reloaded", "{s:O, s:O}", "applied", ch.applied,
           "needs_restart", ch.restart);
    kw_outbox_wake(srv->outbox); /* new sinks, mail settings: used from the next round */
out:
    if (next) {
        kw_wipe(next, sizeof(*next)); /* smtp and sinks may hold secrets */
        free(next);
    }
    json_decref(ch.applied);
    json_decref(ch.restart);
    return rc;
}
