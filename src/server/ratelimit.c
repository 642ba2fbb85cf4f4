/* ratelimit.c - per-address token buckets for failed admin authentication (ratelimit.h).
 * Open addressing over a fixed table; an address probes PROBE slots and, if none is its
 * own or free, takes the one touched longest ago. One mutex; only admin authentication
 * comes here (never the verification path). Must not: allocate per request. */
#include "ratelimit.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PROBE 8
#define ADDR_MAX 64

typedef struct slot {
    char addr[ADDR_MAX]; /* "" = free */
    double tokens;       /* available failures, up to burst */
    int64_t at_ms;       /* when tokens was last brought up to date */
} slot_t;

struct kw_ratelimit {
    pthread_mutex_t mu;
    double burst;
    double per_ms; /* tokens regained per millisecond */
    slot_t slots[KW_RL_SLOTS];
};

int64_t kw_rl_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

kw_ratelimit_t *kw_rl_new(int64_t burst, int64_t window_s)
{
    if (burst <= 0 || window_s <= 0)
        return NULL;
    kw_ratelimit_t *rl = calloc(1, sizeof(*rl));
    if (rl == NULL)
        return NULL;
    pthread_mutex_init(&rl->mu, NULL);
    rl->burst = (double)burst;
    rl->per_ms = (double)burst / ((double)window_s * 1000.0);
    return rl;
}

void kw_rl_free(kw_ratelimit_t *rl)
{
    if (rl == NULL)
        return;
    pthread_mutex_destroy(&rl->mu);
    free(rl);
}

static uint32_t hash(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

/* The slot of addr, brought up to date at now_ms; create = take a slot if it has none. */
static slot_t *find(kw_ratelimit_t *rl, const char *addr, int64_t now_ms, int create)
{
    char key[ADDR_MAX];
    if (addr[0] == '\0')
        addr = "-"; /* unknown address: one shared bucket ("" marks a free slot) */
    size_t n = strlen(addr);
    if (n >= ADDR_MAX)
        n = ADDR_MAX - 1;
    memcpy(key, addr, n);
    key[n] = '\0';
    uint32_t h = hash(key);
    slot_t *victim = NULL;
    for (unsigned i = 0; i < PROBE; i++) {
        slot_t *s = &rl->slots[(h + i) % KW_RL_SLOTS];
        if (strcmp(s->addr, key) == 0 && s->addr[0]) {
            double t = s->tokens + (double)(now_ms - s->at_ms) * rl->per_ms;
            s->tokens = t > rl->burst ? rl->burst : t;
            s->at_ms = now_ms;
            return s;
        }
        if (victim != NULL && victim->addr[0] == '\0')
            continue; /* a free slot is already chosen */
        if (victim == NULL || s->addr[0] == '\0' || s->at_ms < victim->at_ms)
            victim = s;
    }
    if (!create)
        return NULL;
    memcpy(victim->addr, key, n + 1);
    victim->tokens = rl->burst;
    victim->at_ms = now_ms;
    return victim;
}

int64_t kw_rl_check(kw_ratelimit_t *rl, const char *addr, int64_t now_ms)
{
    if (rl == NULL)
        return 0;
    int64_t wait = 0;
    pthread_mutex_lock(&rl->mu);
    slot_t *s = find(rl, addr, now_ms, 0);
    if (s && s->tokens < 1.0) {
        double ms = (1.0 - s->tokens) / rl->per_ms;
        wait = (int64_t)((ms + 999.0) / 1000.0); /* whole seconds, rounded up, at least 1 */
        if (wait < 1)
            wait = 1;
    }
    pthread_mutex_unlock(&rl->mu);
    return wait;
}

void kw_rl_fail(kw_ratelimit_t *rl, const char *addr, int64_t now_ms)
{
    if (rl == NULL)
        return;
    pthread_mutex_lock(&rl->mu);
    slot_t *s = find(rl, addr, now_ms, 1);
    s->tokens = s->tokens >= 1.0 ? s->tokens - 1.0 : 0.0;
    pthread_mutex_unlock(&rl->mu);
}
