/* The redis policy for the token bucket: one Lua script checks every limit
 * of a request and, only when all admit it, stores the new theoretical
 * arrival times, in one round trip and atomically (Redis runs a script
 * alone). GCRA is a compare-and-set on a time, so it needs the script; the
 * window algorithms make do with plain commands (rl_redis_window.h). The
 * clock is Redis' TIME, so nodes whose clocks differ still share buckets.
 *
 * KEYS[1] is the key prefix "rl:{...}" (rl_key.h); the script derives each
 * counter's name from it (adding ":<index>:tat"), within the prefix's hash
 * tag, so on a cluster they share the declared key's slot. */
#ifndef RL_REDIS_H
#define RL_REDIS_H

#include <stddef.h>

#include "rl_algo.h"
#include "rl_conf.h"
#include "sluice/host.h"

extern const char rl_redis_script[];

/* prefix, number of limits, then count, window_ms, interval_us and burst
 * per limit (the script reads interval and burst) */
#define RL_REDIS_MAX_ARGS (2 + 4 * RL_MAX_LIMITS)

typedef struct rl_redis_args {
    int argc;
    const char *argv[RL_REDIS_MAX_ARGS];
    size_t lens[RL_REDIS_MAX_ARGS];
} rl_redis_args_t;

/* Fills a with the script's KEYS (1: the prefix, which must outlive a) and
 * ARGV for config c. Only the prefix is per request: the other arguments
 * point into c, formatted there by configure(). */
void rl_redis_args(const rl_conf_t *c, const char *prefix, size_t prefix_len, rl_redis_args_t *a);

/* Reads the script's answer {all_allowed, then allowed, remaining, reset_ms,
 * retry_ms per limit} into out[0 .. n). Returns 1 (all allowed) or 0, or -1
 * when the reply is not that shape (an error reply included), with a short
 * reason in why. */
int rl_redis_parse(const sl_reply_t *reply, int n, rl_verdict_t *out, char *why, size_t whylen);

#endif
