/* Retry policy pieces the proxy combines: jittered backoff, a per-worker
 * retry budget, the status/method rule, and the PRNG behind the jitter.
 * Nothing here is thread-safe: each worker owns its budget and rng state. */
#ifndef SLUICE_RETRY_H
#define SLUICE_RETRY_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"

/* splitmix64: any seed (0 included) is a valid state. */
uint64_t sl_rng_next(uint64_t *state);

/* Exponential backoff with full jitter: uniform in
 * [0, min(max_ms, base_ms * 2^attempt)], attempt counted from 0 (negative
 * counts as 0). Non-positive base_ms or max_ms gives 0. A NULL rng gives the
 * upper bound itself (no jitter). */
int64_t sl_retry_backoff_ms(int attempt, int64_t base_ms, int64_t max_ms, uint64_t *rng);

#define SL_RETRY_BUDGET_WINDOW_MS 10000
#define SL_RETRY_BUDGET_FLOOR 3
#define SL_RETRY_BUDGET_MAX_PERCENT 10000

/* Retry budget per worker per upstream: retries may add at most
 * budget_percent % of the requests seen in the last 10 seconds, plus a floor
 * of 3 retries per 10 s so low traffic can still retry. "The last 10 s" is
 * estimated from two fixed windows: all of the current one plus the share of
 * the previous one that still overlaps the last 10 s. A zero-filled struct is
 * a valid, empty budget. */
typedef struct sl_retry_budget {
    bool started;              /* window_start_ms is meaningful */
    int64_t window_start_ms;
    int64_t requests;          /* current window */
    int64_t retries;
    int64_t prev_requests;     /* the window before it */
    int64_t prev_retries;
} sl_retry_budget_t;

void sl_retry_budget_init(sl_retry_budget_t *b);
/* Counts one original request (not a retry). */
void sl_retry_budget_on_request(sl_retry_budget_t *b, int64_t now_ms);
/* true = a retry may go, and it is counted. Negative budget_percent counts
 * as 0 (only the floor remains), more than SL_RETRY_BUDGET_MAX_PERCENT as
 * that. */
bool sl_retry_budget_take(sl_retry_budget_t *b, int budget_percent, int64_t now_ms);

/* Is this status retryable for this method under r? (on_status list, and
 * non-idempotent methods only if r->non_idempotent; idempotent = GET HEAD PUT
 * DELETE OPTIONS TRACE; method_bit is one SL_M_* bit, anything else counts as
 * non-idempotent). Connect failures are always retryable: the core decides
 * that, not this function. NULL r -> false. */
bool sl_retry_status_allowed(const sl_retries_t *r, unsigned method_bit, int status);

#endif
