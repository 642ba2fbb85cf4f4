/* ratelimit.h - failed admin authentications, rate limited per client address
 * (--auth-fail-limit, --auth-fail-window): a token bucket per address in a small
 * fixed-size table, so a flood of addresses costs a bounded amount of memory. */
#ifndef KW_RATELIMIT_H
#define KW_RATELIMIT_H

#include <stdint.h>

#define KW_RL_SLOTS 4096 /* addresses remembered at once; the stalest is forgotten first */

typedef struct kw_ratelimit kw_ratelimit_t;

/* burst failures allowed at once, regained in full over window_s seconds. burst 0 = no
 * limit: returns NULL, and the calls below then allow everything. NULL also on ENOMEM. */
kw_ratelimit_t *kw_rl_new(int64_t burst, int64_t window_s);
void kw_rl_free(kw_ratelimit_t *rl); /* accepts NULL */

/* May addr try to authenticate at now_ms (any monotonic milliseconds)? 0 = yes; otherwise
 * the whole seconds (>= 1) until it may, for Retry-After. */
int64_t kw_rl_check(kw_ratelimit_t *rl, const char *addr, int64_t now_ms);
/* addr failed to authenticate at now_ms: take one token from its bucket. */
void kw_rl_fail(kw_ratelimit_t *rl, const char *addr, int64_t now_ms);

/* CLOCK_MONOTONIC in milliseconds, the clock the server passes. */
int64_t kw_rl_now_ms(void);

#endif
