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

static pthread_mutex_t *stripe_for(const char *prefix)
{
    uint32_t h = 2166136261u;   /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)prefix; *p; p++)
        h = (h ^ *p) * 16777619u;
    return &stripes[h % RL_LOCK_STRIPES];
}

static int64_t read_counter(const char *dict, const char *key)
{
    char buf[32];
    size_t len = 0;
    if (rl_host->shared_get(dict, key, buf, sizeof buf - 1, &len) != 1)
        return 0;
    buf[len] = '\0';
    char *end = NULL;
    long long v = strtoll(buf, &end, 10);
    return end && *end == '\0' && len > 0 && v > 0 ? (int64_t)v : 0;
}

static rl_verdict_t check_one(const rl_conf_t *c, const char *prefix, int i, int64_t now_us,
                              int64_t *new_tat)
{
    const rl_limit_t *l = &c->limits[i];
    int64_t now_ms = now_us / 1000;
    char key[RL_KEY_MAX + 1];
    if (c->algorithm == RL_TOKEN_BUCKET) {
        rl_key_counter(prefix, i, -1, key);
        return rl_token_bucket(l, read_counter(c->dict, key), now_us, new_tat);
    }
    int64_t start = rl_window_start_ms(now_ms, l->window_ms);
    rl_key_counter(prefix, i, start, key);
    int64_t curr = read_counter(c->dict, key);
    if (c->algorithm == RL_FIXED_WINDOW)
        return rl_fixed_window(l, curr, now_ms);
    rl_key_counter(prefix, i, start - l->window_ms, key);
    return rl_sliding_window(l, read_counter(c->dict, key), curr, now_ms);
}

/* A key outlives its use by a second, so clocks a little apart never read a
 * counter that has just gone. */
static void count_one(const rl_conf_t *c, const char *prefix, int i, int64_t now_us, int64_t new_tat)
{
    const rl_limit_t *l = &c->limits[i];
    int64_t now_ms = now_us / 1000;
    char key[RL_KEY_MAX + 1];
    if (c->algorithm == RL_TOKEN_BUCKET) {
        char v[24];
        int n = snprintf(v, sizeof v, "%lld", (long long)new_tat);
        rl_key_counter(prefix, i, -1, key);
        rl_host->shared_set(c->dict, key, v, (size_t)n, rl_us_to_ms_ceil(new_tat - now_us) + 1000);
        return;
    }
    int64_t start = rl_window_start_ms(now_ms, l->window_ms);
    int64_t left = start + l->window_ms - now_ms;
    /* A sliding window's counter is read again as the previous window. */
    int64_t ttl = left + 1000 + (c->algorithm == RL_SLIDING_WINDOW ? l->window_ms : 0);
    rl_key_counter(prefix, i, start, key);
    rl_host->shared_incr(c->dict, key, 1, 0, ttl, NULL);
}

int rl_local_check(const rl_conf_t *c, const char *prefix, int64_t now_us, rl_verdict_t *out)
{
    int64_t new_tat[RL_MAX_LIMITS] = {0};
    pthread_once(&stripes_once, stripes_init);
    pthread_mutex_t *lock = stripe_for(prefix);
    pthread_mutex_lock(lock);
    int all = 1;
    for (int i = 0; i < c->n_limits; i++) {
        out[i] = check_one(c, prefix, i, now_us, &new_tat[i]);
        all &= out[i].allowed;
    }
    if (all)
        for (int i = 0; i < c->n_limits; i++)
            count_one(c, prefix, i, now_us, new_tat[i]);
    pthread_mutex_unlock(lock);
    return all;
}
