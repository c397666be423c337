/* policy redis: one script reserves the estimate in every limit at once,
 * with Redis' clock (TIME), so all nodes share windows; another gives back
 * or adds the difference once the usage is known. */
#ifndef ATL_REDIS_H
#define ATL_REDIS_H

#include <stddef.h>

#include "atl_conf.h"
#include "atl_verdict.h"
#include "sluice/host.h"

/* KEYS[1] = the prefix; ARGV = estimate, then window ms and tokens per
 * limit. Returns {refused (0, or the 1-based limit), now ms, used before
 * the reservation per limit}; when refused nothing is written. */
extern const char atl_redis_reserve_script[];

/* KEYS = counters; ARGV[1] = delta. Adds delta to each counter that still
 * exists (an expired window is left alone). Sent with EVAL (not EVALSHA):
 * it goes out from the log phase, whose request is gone before a NOSCRIPT
 * could be answered with the script's text. */
extern const char atl_redis_correct_script[];

#define ATL_REDIS_ARGS (2 + 2 * ATL_MAX_LIMITS)

typedef struct atl_redis_args {
    int argc;
    const char *argv[ATL_REDIS_ARGS];
    size_t lens[ATL_REDIS_ARGS];
    char numbers[ATL_REDIS_ARGS][24];
} atl_redis_args_t;

void atl_redis_reserve_args(const atl_conf_t *c, const char *prefix, int64_t estimate, atl_redis_args_t *a);

/* 0 with the verdict; -1 with a reason in why when the reply is not the
 * script's. */
int atl_redis_parse(const sl_reply_t *reply, const atl_conf_t *c, int64_t estimate, atl_verdict_t *out,
                    char *why, size_t whylen);

#endif
