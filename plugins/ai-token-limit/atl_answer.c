/* Headers and answers; see atl_answer.h. */
#include "atl_answer.h"

#include <stdio.h>

#include "atl_host.h"
#include "atl_key.h"


int64_t atl_remaining(const atl_conf_t *c, const atl_verdict_t *v, int i)
{
    int64_t left = c->limits[i].tokens - v->used[i];
    return left < 0 ? 0 : left;
}

int atl_tightest(const atl_conf_t *c, const atl_verdict_t *v)
{
    if (v->refused >= 0)
        return v->refused;
    int best = 0;
    for (int i = 1; i < c->n_limits; i++)
        if (atl_remaining(c, v, i) < atl_remaining(c, v, best))
            best = i;
    return best;
}

int64_t atl_retry_after(const atl_conf_t *c, const atl_verdict_t *v, int i)
{
    int64_t window = c->limits[i].window_ms;
    int64_t left = atl_window_start(v->at_ms, window) + window - v->at_ms;
    int64_t secs = (left + 999) / 1000;
    return secs < 1 ? 1 : secs;
}

void atl_format_window(int64_t ms, char *out, size_t cap)
{
    static const struct { int64_t ms; const char *unit; } units[] = {
        {3600000, "h"}, {60000, "m"}, {1000, "s"}, {1, "ms"},
    };
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (ms % units[i].ms == 0) {
            snprintf(out, cap, "%lld%s", (long long)(ms / units[i].ms), units[i].unit);
            return;
        }
}

atl_request_t *atl_request(sl_req_t *r, const atl_conf_t *c, int create)
{
    void **slot = atl_host->req_slot(r, (void *)c);
    if (!slot)
        return NULL;
    if (!*slot && create)
        *slot = atl_host->req_alloc(r, sizeof(atl_request_t));
    return *slot;
}

void atl_note_headers(sl_req_t *r, const atl_conf_t *c, const atl_verdict_t *v)
{
    atl_request_t *q = atl_request(r, c, 1);
    if (!q)
        return;
    int i = atl_tightest(c, v);
    q->have_headers = 1;
    q->limit = c->limits[i].tokens;
    q->remaining = atl_remaining(c, v, i);
}

void atl_send_headers(sl_req_t *r, const atl_conf_t *c)
{
    const atl_request_t *q = atl_request(r, c, 0);
    if (!q || !q->have_headers)
        return;
    char a[24], b[24];
    int na = snprintf(a, sizeof a, "%lld", (long long)q->limit);
    int nb = snprintf(b, sizeof b, "%lld", (long long)q->remaining);
    atl_host->resp_set_header(r, "X-TokenLimit-Limit", a, (size_t)na);
    atl_host->resp_set_header(r, "X-TokenLimit-Remaining", b, (size_t)nb);
}

sl_status_t atl_answer_exceeded(sl_req_t *r, const atl_conf_t *c, const atl_verdict_t *v)
{
    int i = v->refused;
    char window[32], message[128], retry[24];
    atl_format_window(c->limits[i].window_ms, window, sizeof window);
    snprintf(message, sizeof message, "token limit exceeded: %lld tokens per %s",
             (long long)c->limits[i].tokens, window);
    atl_note_headers(r, c, v);
    if (atl_host->respond_error(r, 429, "token_limit_exceeded", message) != 0)
        return SL_ERROR;
    int n = snprintf(retry, sizeof retry, "%lld", (long long)atl_retry_after(c, v, i));
    atl_host->resp_set_header(r, "Retry-After", retry, (size_t)n);
    return SL_DONE;
}

sl_status_t atl_answer_unavailable(sl_req_t *r)
{
    return atl_host->respond_error(r, 503, "token_limit_unavailable", "token limiting is unavailable") == 0
               ? SL_DONE
               : SL_ERROR;
}
