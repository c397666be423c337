/* Local counters; see atl_local.h. */
#include "atl_local.h"

#include <string.h>

#include "atl_host.h"
#include "atl_key.h"

/* A counter outlives its window by a second so a correction that arrives
 * right at the end still finds it rather than starting a new one. */
static int64_t ttl_for(int64_t start, int64_t window_ms, int64_t now_ms)
{
    return start + window_ms - now_ms + 1000;
}

static void undo(const atl_conf_t *c, const char *prefix, int64_t estimate, int64_t now_ms, int upto,
                 char *key, size_t cap)
{
    for (int j = 0; j < upto; j++) {
        const atl_limit_t *l = &c->limits[j];
        int64_t start = atl_window_start(now_ms, l->window_ms);
        atl_key_counter(prefix, l->window_ms, start, key, cap);
        atl_host->shared_incr(ATL_DICT, key, -estimate, 0, ttl_for(start, l->window_ms, now_ms), NULL);
    }
}

int atl_local_reserve(const atl_conf_t *c, const char *prefix, int64_t estimate, int64_t now_ms,
                      atl_verdict_t *out)
{
    size_t cap = strlen(prefix) + 48;
    char key[cap];
    out->refused = -1;
    out->at_ms = now_ms;
    for (int i = 0; i < c->n_limits; i++) {
        const atl_limit_t *l = &c->limits[i];
        int64_t start = atl_window_start(now_ms, l->window_ms);
        int64_t after = 0;
        atl_key_counter(prefix, l->window_ms, start, key, cap);
        if (atl_host->shared_incr(ATL_DICT, key, estimate, 0, ttl_for(start, l->window_ms, now_ms), &after) != 0) {
            undo(c, prefix, estimate, now_ms, i, key, cap);
            return -1;
        }
        if (after > l->tokens) {
            undo(c, prefix, estimate, now_ms, i + 1, key, cap);
            out->refused = i;
            out->used[i] = after - estimate;
            return 0;
        }
        out->used[i] = after;
    }
    return 0;
}

void atl_local_correct(const atl_conf_t *c, const char *prefix, int64_t delta, int64_t at_ms, int64_t now_ms)
{
    size_t cap = strlen(prefix) + 48;
    char key[cap];
    if (delta == 0)
        return;
    for (int i = 0; i < c->n_limits; i++) {
        const atl_limit_t *l = &c->limits[i];
        int64_t start = atl_window_start(at_ms, l->window_ms);
        if (now_ms >= start + l->window_ms)
            continue;
        atl_key_counter(prefix, l->window_ms, start, key, cap);
        atl_host->shared_incr(ATL_DICT, key, delta, 0, ttl_for(start, l->window_ms, now_ms), NULL);
    }
}
