/* The three limiting algorithms as pure arithmetic: given what a counter
 * holds and the time, decide whether one more request fits, how much room is
 * left and when it would fit. The local policy feeds them values read from
 * the shared dict, the redis policy values read from Redis (the token
 * bucket's script, rl_redis.c, does the same arithmetic in Lua), so both
 * policies answer alike.
 *
 * Windows are aligned to the Unix epoch (a 1h window starts on the hour), so
 * every node and every worker agrees on where a window begins. */
#ifndef RL_ALGO_H
#define RL_ALGO_H

#include <stdbool.h>
#include <stdint.h>

typedef enum { RL_FIXED_WINDOW, RL_SLIDING_WINDOW, RL_TOKEN_BUCKET } rl_algorithm_t;

typedef struct rl_limit {
    int64_t count;         /* requests per window */
    int64_t window_ms;
    int64_t burst;         /* token bucket: requests that may arrive at once */
    int64_t interval_us;   /* token bucket: window / count, the GCRA emission interval */
} rl_limit_t;

typedef struct rl_verdict {
    bool allowed;
    int64_t remaining;     /* what is left after this request (0 when refused) */
    /* Allowed: until the current window ends (token bucket: until the bucket
     * is full again). Refused: the same as retry_ms. */
    int64_t reset_ms;
    int64_t retry_ms;      /* refused: until one more request would fit; 0 when allowed */
} rl_verdict_t;

int64_t rl_window_start_ms(int64_t now_ms, int64_t window_ms);

/* used: requests counted in the current window so far. */
rl_verdict_t rl_fixed_window(const rl_limit_t *l, int64_t used, int64_t now_ms);

/* prev/curr: counts of the previous and the current fixed window; the
 * previous one weighs as much as it still overlaps a window ending now. */
rl_verdict_t rl_sliding_window(const rl_limit_t *l, int64_t prev, int64_t curr, int64_t now_ms);

/* GCRA. tat_us: the stored theoretical arrival time (0 when none). On
 * success *new_tat_us is what to store. */
rl_verdict_t rl_token_bucket(const rl_limit_t *l, int64_t tat_us, int64_t now_us, int64_t *new_tat_us);

/* How long a window counter is kept, from now: until its window ends and a
 * second more, so a node whose clock is a little behind never reads a
 * counter that has just gone; a sliding window's counter one window more,
 * as it is read again as the previous window. */
int64_t rl_counter_ttl_ms(const rl_limit_t *l, rl_algorithm_t algorithm, int64_t now_ms);

/* ceil(us / 1000) for us >= 0. */
int64_t rl_us_to_ms_ceil(int64_t us);

#endif
