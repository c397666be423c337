#include "retry.h"

#include <string.h>

uint64_t sl_rng_next(uint64_t *state)
{
    uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

int64_t sl_retry_backoff_ms(int attempt, int64_t base_ms, int64_t max_ms, uint64_t *rng)
{
    if (base_ms <= 0 || max_ms <= 0)
        return 0;
    int64_t cap = base_ms < max_ms ? base_ms : max_ms;
    /* Doubling stops at max_ms, so a huge attempt neither loops long nor
     * overflows. */
    for (int i = 0; i < attempt && cap < max_ms; i++)
        cap = cap > max_ms / 2 ? max_ms : cap * 2;
    if (!rng)
        return cap;
    /* Modulo bias is below 2^-40 for any sane cap: irrelevant for jitter. */
    return (int64_t)(sl_rng_next(rng) % ((uint64_t)cap + 1));
}

void sl_retry_budget_init(sl_retry_budget_t *b) { memset(b, 0, sizeof *b); }

static void budget_advance(sl_retry_budget_t *b, int64_t now_ms)
{
    if (!b->started) {
        b->started = true;
        b->window_start_ms = now_ms;
        return;
    }
    int64_t elapsed = now_ms - b->window_start_ms;
    /* A clock that steps back stays in the current window rather than
     * erasing history. */
    if (elapsed < SL_RETRY_BUDGET_WINDOW_MS)
        return;
    bool adjacent = elapsed < 2 * SL_RETRY_BUDGET_WINDOW_MS;
    b->prev_requests = adjacent ? b->requests : 0;
    b->prev_retries = adjacent ? b->retries : 0;
    b->requests = 0;
    b->retries = 0;
    /* Windows stay aligned to the first one so estimates do not depend on
     * when calls happen to arrive. */
    b->window_start_ms += elapsed - elapsed % SL_RETRY_BUDGET_WINDOW_MS;
}

void sl_retry_budget_on_request(sl_retry_budget_t *b, int64_t now_ms)
{
    budget_advance(b, now_ms);
    b->requests++;
}

bool sl_retry_budget_take(sl_retry_budget_t *b, int budget_percent, int64_t now_ms)
{
    budget_advance(b, now_ms);
    if (budget_percent < 0)
        budget_percent = 0;
    /* Beyond 100x the budget means nothing, and the bound keeps the
     * arithmetic below from overflowing. */
    if (budget_percent > SL_RETRY_BUDGET_MAX_PERCENT)
        budget_percent = SL_RETRY_BUDGET_MAX_PERCENT;
    const int64_t W = SL_RETRY_BUDGET_WINDOW_MS;
    int64_t into = now_ms - b->window_start_ms;
    if (into < 0)
        into = 0;
    /* Everything scaled by W * 100 to stay in integers: counts x W give the
     * sliding estimate without division, x 100 turns the percentage exact. */
    int64_t prev_share = W - into;
    int64_t requests_w = b->requests * W + b->prev_requests * prev_share;
    int64_t retries_w = b->retries * W + b->prev_retries * prev_share;
    int64_t allowed = (int64_t)SL_RETRY_BUDGET_FLOOR * W * 100 + requests_w * budget_percent;
    if ((retries_w + W) * 100 > allowed)
        return false;
    b->retries++;
    return true;
}

bool sl_retry_status_allowed(const sl_retries_t *r, unsigned method_bit, int status)
{
    if (!r)
        return false;
    const unsigned idempotent =
        SL_M_GET | SL_M_HEAD | SL_M_PUT | SL_M_DELETE | SL_M_OPTIONS | SL_M_TRACE;
    bool single_bit = method_bit != 0 && (method_bit & (method_bit - 1)) == 0;
    if (!(single_bit && (method_bit & idempotent)) && !r->non_idempotent)
        return false;
    int n = r->n_on_status;
    if (n > SL_MAX_RETRY_STATUSES)
        n = SL_MAX_RETRY_STATUSES;
    for (int i = 0; i < n; i++)
        if (r->on_status[i] == status)
            return true;
    return false;
}
