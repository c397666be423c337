/* Headers and answers; see rl_answer.h. */
#include "rl_answer.h"

#include <stdio.h>

#include "rl_host.h"
#include "rl_key.h"

int rl_tightest(const rl_verdict_t *v, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++) {
        const rl_verdict_t *a = &v[i], *b = &v[best];
        if (a->allowed != b->allowed) {
            if (!a->allowed)
                best = i;
        } else if (!a->allowed) {
            if (a->retry_ms > b->retry_ms)
                best = i;
        } else if (a->remaining < b->remaining ||
                   (a->remaining == b->remaining && a->reset_ms > b->reset_ms)) {
            best = i;
        }
    }
    return best;
}

void rl_format_window(int64_t ms, char *out, size_t cap)
{
    static const struct { int64_t ms; const char *unit; } units[] = {
        {3600000, "h"}, {60000, "m"}, {1000, "s"}, {1, "ms"},
    };
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (ms % units[i].ms == 0) {
            snprintf(out, cap, "%lld%s", (long long)(ms / units[i].ms), units[i].unit);
            return;
        }
    }
}

int64_t rl_seconds_ceil(int64_t ms)
{
    return ms <= 0 ? 0 : (ms + 999) / 1000;
}

static void set_number(sl_req_t *r, const char *name, int64_t value)
{
    char buf[24];
    size_t n = rl_format_int(value, buf);
    rl_host->resp_set_header(r, name, buf, n);
}

void rl_set_headers(sl_req_t *r, const rl_conf_t *c, const rl_verdict_t *v)
{
    if (!c->headers)
        return;
    int i = rl_tightest(v, c->n_limits);
    rl_host->resp_set_header(r, "RateLimit-Limit", c->count_text[i].s, c->count_text[i].len);
    set_number(r, "RateLimit-Remaining", v[i].remaining);
    set_number(r, "RateLimit-Reset", rl_seconds_ceil(v[i].reset_ms));
}

sl_status_t rl_answer_limited(sl_req_t *r, const rl_conf_t *c, const rl_verdict_t *v)
{
    int i = rl_tightest(v, c->n_limits);
    char window[32], message[96];
    rl_format_window(c->limits[i].window_ms, window, sizeof window);
    snprintf(message, sizeof message, "rate limit exceeded: %lld per %s",
             (long long)c->limits[i].count, window);
    if (rl_host->respond_error(r, 429, "rate_limited", message) != 0)
        return SL_ERROR;
    int64_t retry = rl_seconds_ceil(v[i].retry_ms);
    set_number(r, "Retry-After", retry < 1 ? 1 : retry);
    rl_set_headers(r, c, v);
    return SL_DONE;
}

sl_status_t rl_answer_unavailable(sl_req_t *r)
{
    return rl_host->respond_error(r, 503, "rate_limit_unavailable",
                                  "rate limiting is unavailable") == 0 ? SL_DONE : SL_ERROR;
}
