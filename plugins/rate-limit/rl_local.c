/* Local counters in the shared dict; see rl_local.h. */
#include "rl_local.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rl_host.h"
#include "rl_key.h"

#define RL_LOCK_STRIPES 64

static pthread_mutex_t stripes[RL_LOCK_STRIPES];
static pthread_once_t stripes_once = PTHREAD_ONCE_INIT;

static void stripes_init(void)
{
    for (int i = 0; i < RL_LOCK_STRIPES; i++)
        pthread_mutex_init(&stripes[i], NULL);
}

static pthread_mutex_t *stripe_for(const char *prefix, size_t len)
{
    uint32_t h = 2166136261u;   /* FNV-1a */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)prefix[i]) * 16777619u;
    return &stripes[h % RL_LOCK_STRIPES];
}

static int64_t read_counter(const char *dict, const char *key)
{
    char buf[32];
    size_t len = 0;
    if (rl_host->shared_get(dict, key, buf, sizeof buf - 1, &len) != 1 || len == 0)
        return 0;
    /* Only counters this plugin wrote are expected: plain positive decimals.
     * Anything else reads as empty, as an evicted counter would. */
    int64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (buf[i] < '0' || buf[i] > '9' || v > (INT64_MAX - 9) / 10)
            return 0;
        v = v * 10 + (buf[i] - '0');
    }
    return v;
}

/* The window algorithms count first and look afterwards: the increment's
 * result is the current count, which saves reading it separately. A refused
 * request is taken back out before the lock is released, so no other check
 * of this prefix sees it. counted[i] says whether limit i holds this
 * request (an increment can fail when the dict is out of room; then the
 * counter reads as empty, as an evicted one would). */
static rl_verdict_t count_and_check(const rl_conf_t *c, rl_counter_key_t *k, int i,
                                    int64_t now_ms, bool *counted)
{
    const rl_limit_t *l = &c->limits[i];
    int64_t start = rl_window_start_ms(now_ms, l->window_ms);
    int64_t ttl = rl_counter_ttl_ms(l, c->algorithm, now_ms);
    int64_t after = 0;
    *counted =
        rl_host->shared_incr(c->dict, rl_counter_key_at(k, i, start), 1, 0, ttl, &after) == 0;
    int64_t curr = *counted && after > 0 ? after - 1 : 0;
    if (c->algorithm == RL_FIXED_WINDOW)
        return rl_fixed_window(l, curr, now_ms);
    int64_t prev = read_counter(c->dict, rl_counter_key_at(k, i, start - l->window_ms));
    return rl_sliding_window(l, prev, curr, now_ms);
}

static void uncount(const rl_conf_t *c, rl_counter_key_t *k, int i, int64_t now_ms)
{
    int64_t start = rl_window_start_ms(now_ms, c->limits[i].window_ms);
    rl_host->shared_incr(c->dict, rl_counter_key_at(k, i, start), -1, 0, 0, NULL);
}

static int check_token_bucket(const rl_conf_t *c, rl_counter_key_t *k, int64_t now_us,
                              rl_verdict_t *out)
{
    int64_t new_tat[RL_MAX_LIMITS] = {0};
    int all = 1;
    for (int i = 0; i < c->n_limits; i++) {
        int64_t tat = read_counter(c->dict, rl_counter_key_at(k, i, -1));
        out[i] = rl_token_bucket(&c->limits[i], tat, now_us, &new_tat[i]);
        all &= out[i].allowed;
    }
    for (int i = 0; all && i < c->n_limits; i++) {
        char v[24];
        size_t n = rl_format_int(new_tat[i], v);
        rl_host->shared_set(c->dict, rl_counter_key_at(k, i, -1), v, n,
                            rl_us_to_ms_ceil(new_tat[i] - now_us) + 1000);
    }
    return all;
}

int rl_local_check(const rl_conf_t *c, const char *prefix, int64_t now_us, rl_verdict_t *out)
{
    size_t plen = strlen(prefix);
    int64_t now_ms = now_us / 1000;
    rl_counter_key_t key;
    rl_counter_key_init(&key, prefix, plen);
    pthread_once(&stripes_once, stripes_init);
    pthread_mutex_t *lock = stripe_for(prefix, plen);
    pthread_mutex_lock(lock);
    int all = 1;
    if (c->algorithm == RL_TOKEN_BUCKET) {
        all = check_token_bucket(c, &key, now_us, out);
    } else {
        bool counted[RL_MAX_LIMITS];
        for (int i = 0; i < c->n_limits; i++) {
            out[i] = count_and_check(c, &key, i, now_ms, &counted[i]);
            all &= out[i].allowed;
        }
        for (int i = 0; !all && i < c->n_limits; i++)
            if (counted[i])
                uncount(c, &key, i, now_ms);
    }
    pthread_mutex_unlock(lock);
    return all;
}
