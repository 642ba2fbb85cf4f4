/* metrics_expiry.c - the expiry figures of /metrics, rebuilt by one background thread from a
 * walk of the verification index (kw_index_walk + kw_expstats) every --metrics-refresh and
 * kept as ready text, so a scrape only copies it: at a million keys a scrape stays small and
 * cheap. Per-credential series exist only for the credentials that need attention, capped.
 * Must not: walk keys on a scrape, hold the snapshot lock while walking, or print a secret or
 * a key hint (ids and names only). */
#include "metrics_expiry.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bgthread.h"
#include "core/duration.h"
#include "core/expstats.h"
#include "core/index.h"
#include "core/util.h"
#include "log.h"
#include "store/store.h"

static pthread_mutex_t snap_mu = PTHREAD_MUTEX_INITIALIZER;
static char *snap_text; /* guarded by snap_mu */
static size_t snap_len;
static int64_t snap_at;
static double snap_took; /* seconds the last refresh took */

static kw_bg_t bg; /* the refresher thread */
static int started;

/* Prometheus label value: \, " and newline escaped; control bytes dropped. */
static void label(const char *v, char *out, size_t n)
{
    size_t o = 0;
    for (; *v && o + 3 < n; v++) {
        unsigned char c = (unsigned char)*v;
        if (c == '\\' || c == '"') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
        } else if (c >= 0x20 && c != 0x7f) {
            out[o++] = (char)c;
        }
    }
    out[o] = '\0';
}

static void walk_cb(void *ud, const kw_ikey_view_t *k)
{
    kw_expstats_t *st = ud;
    const kw_ipolicy_t *p = k->policy;
    int64_t ww = p ? atomic_load_explicit(&p->warn_window, memory_order_relaxed) : 0;
    kw_expstats_add(st, k->cred->id, p ? p->name : "", ww, k->expires_at, k->revoked);
}

/* The latest expiry among a credential's usable keys: when it loses all access (0 = a key
 * never expires, -1 = none usable or unknown). */
static int64_t access_ends(kw_store_t *store, const char *cred, int64_t now)
{
    kw_keyrec_t *keys = NULL;
    size_t n = 0;
    kw_err_t e;
    if (kw_store_key_list_cred(store, cred, &keys, &n, &e) != 0)
        return -1;
    int64_t end = -1;
    for (size_t i = 0; i < n; i++) {
        const kw_keyrec_t *k = &keys[i];
        if (k->revoked_at || !k->live || (k->expires_at && k->expires_at <= now))
            continue;
        if (k->expires_at == 0) {
            end = 0;
            break;
        }
        if (k->expires_at > end)
            end = k->expires_at;
    }
    free(keys);
    return end;
}

static void head(FILE *f, const char *name, const char *type, const char *help)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void render(kw_server_t *s, const kw_expstats_t *st, FILE *f)
{
    static const char *const states[] = {"active", "expired", "revoked"};
    char l1[128], l2[512];
    head(f, "keyward_keys", "gauge",
         "Keys the verification index holds, by state (revoked and expired ones for the "
         "retention period).");
    fprintf(f, "keyward_keys{state=\"active\"} %lld\n", (long long)st->active);
    fprintf(f, "keyward_keys{state=\"expired\"} %lld\n", (long long)st->expired);
    fprintf(f, "keyward_keys{state=\"revoked\"} %lld\n", (long long)st->revoked);
    head(f, "keyward_keys_by_policy", "gauge", "Keys by their credential's policy and state.");
    for (size_t i = 0; i < st->npols; i++) {
        const kw_expstats_pol_t *p = &st->pols[i];
        int64_t v[3] = {p->active, p->expired, p->revoked};
        label(p->name, l1, sizeof(l1));
        for (int j = 0; j < 3; j++)
            fprintf(f, "keyward_keys_by_policy{policy=\"%s\",state=\"%s\"} %lld\n", l1, states[j],
                    (long long)v[j]);
    }
    head(f, "keyward_keys_by_expiry", "gauge",
         "Unrevoked keys by time to expiry (disjoint buckets: expired, within 1d, 7d, 14d, 30d, "
         "90d, later, never).");
    for (int b = 0; b < KW_EXPB_N; b++)
        fprintf(f, "keyward_keys_by_expiry{bucket=\"%s\"} %lld\n", kw_expstats_bucket_name(b),
                (long long)st->bucket[b]);
    head(f, "keyward_keys_expiring", "gauge",
         "Usable keys expiring within each alert threshold of any policy.");
    for (size_t i = 0; i < st->nwindows; i++) {
        char d[KW_DURATION_STR_MAX];
        kw_duration_format(st->window[i], d);
        fprintf(f, "keyward_keys_expiring{within=\"%s\",within_seconds=\"%lld\"} %lld\n", d,
                (long long)st->window[i], (long long)st->expiring[i]);
    }
    head(f, "keyward_credentials_needing_attention", "gauge",
         "Credentials with a usable key inside its policy's first alert threshold.");
    fprintf(f, "keyward_credentials_needing_attention %zu\n", st->attention_creds);
    head(f, "keyward_credential_expiry_series_omitted", "gauge",
         "Credentials needing attention left without their own expiry series by "
         "--metrics-expiry-series (the latest-expiring ones).");
    fprintf(f, "keyward_credential_expiry_series_omitted %zu\n", st->omitted);
    if (st->ntop == 0)
        return;
    /* names and access ends from the store: at most --metrics-expiry-series point reads */
    int64_t *ends = calloc(st->ntop, sizeof(*ends));
    char(*names)[KW_NAME_MAX * 4] = calloc(st->ntop, sizeof(*names));
    if (ends == NULL || names == NULL) {
        free(ends);
        free(names);
        return;
    }
    for (size_t i = 0; i < st->ntop; i++) {
        kw_cred_t c;
        kw_err_t e;
        memset(&c, 0, sizeof(c));
        if (kw_store_cred_get(s->store, st->top[i].id, &c, &e) == 0) {
            snprintf(names[i], sizeof(names[i]), "%s", c.name);
            kw_cred_clear(&c);
        }
        ends[i] = access_ends(s->store, st->top[i].id, st->now);
    }
    head(f, "keyward_credential_next_expiry_timestamp_seconds", "gauge",
         "Soonest expiry (unix time) among the usable keys of each credential that needs "
         "attention (a key inside its policy's first alert threshold), soonest first, capped.");
    for (size_t i = 0; i < st->ntop; i++) {
        label(st->top[i].id, l1, sizeof(l1));
        label(names[i], l2, sizeof(l2));
        fprintf(f,
                "keyward_credential_next_expiry_timestamp_seconds{credential_id=\"%s\",name=\"%s\"}"
                " %lld\n",
                l1, l2, (long long)st->top[i].expires_at);
    }
    head(f, "keyward_credential_access_ends_timestamp_seconds", "gauge",
         "For those of the same credentials that hold a later usable key (mid-rotation, e.g. a "
         "key rolled with an overlap): when they lose all access, the latest expiry among "
         "their usable keys (+Inf when one never expires). Absent when access ends at the next "
         "expiry.");
    for (size_t i = 0; i < st->ntop; i++) {
        if (ends[i] < 0 || ends[i] == st->top[i].expires_at)
            continue;
        label(st->top[i].id, l1, sizeof(l1));
        label(names[i], l2, sizeof(l2));
        if (ends[i] == 0)
            fprintf(f,
                    "keyward_credential_access_ends_timestamp_seconds{credential_id=\"%s\","
                    "name=\"%s\"} +Inf\n",
                    l1, l2);
        else
            fprintf(f,
                    "keyward_credential_access_ends_timestamp_seconds{credential_id=\"%s\","
                    "name=\"%s\"} %lld\n",
                    l1, l2, (long long)ends[i]);
    }
    free(ends);
    free(names);
}

void kw_metrics_expiry_refresh(kw_server_t *s)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int64_t now = kw_now();
    int64_t windows[KW_EXP_WINDOWS];
    size_t nw = 0;
    kw_policy_t *pols = NULL;
    size_t npols = 0;
    kw_err_t e;
    if (kw_store_policy_list(s->store, &pols, &npols, &e) == 0) {
        for (size_t i = 0; i < npols; i++)
            for (size_t k = 0; k < pols[i].nthresholds && nw < KW_EXP_WINDOWS; k++)
                windows[nw++] = pols[i].thresholds[k];
    }
    free(pols);

    kw_expstats_t st;
    size_t cap = s->cfg.metrics_per_credential ? (size_t)s->cfg.metrics_expiry_series : 0;
    kw_expstats_init(&st, now, cap, windows, nw);
    kw_index_walk(s->index, walk_cb, &st);
    kw_expstats_finish(&st);

    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (f == NULL) {
        kw_expstats_free(&st);
        return;
    }
    render(s, &st, f);
    head(f, "keyward_metrics_expiry_snapshot_timestamp_seconds", "gauge",
         "When the expiry figures above were computed (unix time).");
    fprintf(f, "keyward_metrics_expiry_snapshot_timestamp_seconds %lld\n", (long long)now);
    int bad = ferror(f);
    fclose(f);
    kw_expstats_free(&st);
    if (bad) {
        free(text);
        return;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    pthread_mutex_lock(&snap_mu);
    char *old = snap_text;
    snap_text = text;
    snap_len = len;
    snap_at = now;
    snap_took = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    pthread_mutex_unlock(&snap_mu);
    free(old);
}

static void *refresher(void *arg)
{
    kw_server_t *s = arg;
    kw_metrics_expiry_refresh(s); /* the first one at once, without delaying start-up */
    pthread_mutex_lock(&bg.mu);
    while (!bg.stop) {
        kw_bg_sleep(&bg, (int64_t)s->cfg.metrics_refresh * 1000);
        if (bg.stop)
            break;
        pthread_mutex_unlock(&bg.mu);
        kw_metrics_expiry_refresh(s);
        pthread_mutex_lock(&bg.mu);
    }
    pthread_mutex_unlock(&bg.mu);
    return NULL;
}

int kw_metrics_expiry_start(kw_server_t *s, kw_err_t *err)
{
    if (kw_bg_start(&bg, 1, refresher, s) != 0)
        return kw_err_set(err, KW_EINTERNAL, NULL, "cannot start the metrics thread");
    started = 1;
    return 0;
}

void kw_metrics_expiry_stop(void)
{
    if (!started)
        return;
    kw_bg_stop(&bg);
    started = 0;
    pthread_mutex_lock(&snap_mu);
    free(snap_text);
    snap_text = NULL;
    snap_len = 0;
    pthread_mutex_unlock(&snap_mu);
}

int64_t kw_metrics_expiry_render(int64_t now, kw_metrics_put_fn put, void *ud)
{
    int64_t age = -1;
    pthread_mutex_lock(&snap_mu);
    if (snap_text) {
        char line[256];
        put(ud, snap_text, snap_len);
        int n = snprintf(line, sizeof(line),
                         "# HELP keyward_metrics_expiry_refresh_seconds How long the background "
                         "computation of the expiry figures above took.\n"
                         "# TYPE keyward_metrics_expiry_refresh_seconds gauge\n"
                         "keyward_metrics_expiry_refresh_seconds %.6f\n",
                         snap_took);
        if (n > 0 && (size_t)n < sizeof(line))
            put(ud, line, (size_t)n);
        age = now - snap_at;
    }
    pthread_mutex_unlock(&snap_mu);
    return age;
}
