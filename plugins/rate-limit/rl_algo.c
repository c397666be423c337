/* Limiting arithmetic; see rl_algo.h. rl_redis.c carries a Lua twin of
 * rl_token_bucket(): a change to it needs the same change in the script. */
#include "rl_algo.h"

#include <math.h>

int64_t rl_window_start_ms(int64_t now_ms, int64_t window_ms)
{
    return now_ms - now_ms % window_ms;
}

int64_t rl_counter_ttl_ms(const rl_limit_t *l, rl_algorithm_t algorithm, int64_t now_ms)
{
    int64_t left = rl_window_start_ms(now_ms, l->window_ms) + l->window_ms - now_ms;
    return left + 1000 + (algorithm == RL_SLIDING_WINDOW ? l->window_ms : 0);
}

int64_t rl_us_to_ms_ceil(int64_t us)
{
    return (us + 999) / 1000;
}

rl_verdict_t rl_fixed_window(const rl_limit_t *l, int64_t used, int64_t now_ms)
{
    rl_verdict_t v = {0};
    int64_t left = rl_window_start_ms(now_ms, l->window_ms) + l->window_ms - now_ms;
    v.reset_ms = left;
    if (used < l->count) {
        v.allowed = true;
        v.remaining = l->count - used - 1;
    } else {
        v.retry_ms = left;
    }
    return v;
}

/* How long until the weighted estimate leaves room for one more request,
 * assuming nothing else is admitted meanwhile. */
static int64_t sliding_retry(const rl_limit_t *l, int64_t prev, int64_t curr, int64_t elapsed)
{
    double w = (double)l->window_ms;
    double room = (double)(l->count - 1);
    if ((double)curr <= room) {
        /* Only the previous window's share is in the way, and it shrinks
         * linearly: solve prev * (w - e) / w <= room - curr for e. */
        int64_t at = elapsed + 1;
        if (prev > 0)
            at = (int64_t)ceil(w - (room - (double)curr) * w / (double)prev);
        if (at <= elapsed)   /* rounding: it did not fit now */
            at = elapsed + 1;
        return at - elapsed;
    }
    /* The current window alone is over the limit: wait for it to become the
     * previous one and shrink to room. */
    int64_t at = (int64_t)ceil(w - room * w / (double)curr);
    if (at < 0)
        at = 0;
    return l->window_ms - elapsed + at;
}

rl_verdict_t rl_sliding_window(const rl_limit_t *l, int64_t prev, int64_t curr, int64_t now_ms)
{
    rl_verdict_t v = {0};
    int64_t elapsed = now_ms - rl_window_start_ms(now_ms, l->window_ms);
    int64_t left = l->window_ms - elapsed;
    double after = (double)prev * (double)left / (double)l->window_ms + (double)curr + 1.0;
    if (after <= (double)l->count) {
        v.allowed = true;
        v.remaining = (int64_t)floor((double)l->count - after);
        v.reset_ms = left;
    } else {
        v.retry_ms = sliding_retry(l, prev, curr, elapsed);
        v.reset_ms = v.retry_ms;
    }
    return v;
}

rl_verdict_t rl_token_bucket(const rl_limit_t *l, int64_t tat_us, int64_t now_us, int64_t *new_tat_us)
{
    rl_verdict_t v = {0};
    int64_t tolerance = l->burst * l->interval_us;
    int64_t next = (tat_us > now_us ? tat_us : now_us) + l->interval_us;
    if (next - now_us <= tolerance) {
        v.allowed = true;
        v.remaining = (tolerance - (next - now_us)) / l->interval_us;
        v.reset_ms = rl_us_to_ms_ceil(next - now_us);
        *new_tat_us = next;
    } else {
        v.retry_ms = rl_us_to_ms_ceil(next - tolerance - now_us);
        v.reset_ms = v.retry_ms;
    }
    return v;
}
