/* What the client sees: RateLimit-* headers, the 429 and the 503. */
#ifndef RL_ANSWER_H
#define RL_ANSWER_H

#include <stddef.h>
#include <stdint.h>

#include "rl_algo.h"
#include "rl_conf.h"
#include "sluice/plugin.h"

/* The limit the headers describe: when some refused, the one that refuses
 * longest (so RateLimit-Reset and Retry-After agree); else the one with the
 * least room left, the later reset on a tie; the first on a full tie. */
int rl_tightest(const rl_verdict_t *v, int n);

/* "1h", "30m", "5s" or "250ms": the largest unit that divides ms. */
void rl_format_window(int64_t ms, char *out, size_t cap);

/* Whole seconds for headers, rounded up. */
int64_t rl_seconds_ceil(int64_t ms);

/* RateLimit-Limit/-Remaining/-Reset of the tightest limit on the response
 * (when c->headers). */
void rl_set_headers(sl_req_t *r, const rl_conf_t *c, const rl_verdict_t *v);

/* 429 rate_limited, "rate limit exceeded: <count> per <window>", with
 * Retry-After (at least 1) and, when c->headers, the RateLimit-* headers.
 * Returns the phase status. */
sl_status_t rl_answer_limited(sl_req_t *r, const rl_conf_t *c, const rl_verdict_t *v);

/* 503 rate_limit_unavailable (redis policy, on_redis_error: deny). */
sl_status_t rl_answer_unavailable(sl_req_t *r);

#endif
