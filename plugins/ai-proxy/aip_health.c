#include "aip_health.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aip_host.h"

#define DICT "ai-proxy"
/* Weight of the newest sample in the latency average, in percent. */
#define EWMA_NEW_PCT 30

static void key_of(char *out, size_t n, const char *kind, const aip_target_t *t)
{
    snprintf(out, n, "%s:%s", kind, t->id);
}

static bool get_int(const char *key, int64_t *out)
{
    char buf[32];
    size_t len = 0;
    if (aip_host->shared_get(DICT, key, buf, sizeof buf - 1, &len) != 1)
        return false;
    buf[len] = '\0';
    char *end;
    long long v = strtoll(buf, &end, 10);
    if (end == buf)
        return false;
    *out = v;
    return true;
}

static void set_int(const char *key, int64_t v, int64_t ttl_ms)
{
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%lld", (long long)v);
    aip_host->shared_set(DICT, key, buf, (size_t)n, ttl_ms);
}

bool aip_breaker_open(const aip_target_t *t)
{
    char key[48];
    int64_t v;
    key_of(key, sizeof key, "open", t);
    return get_int(key, &v);
}

void aip_breaker_failure(const aip_conf_t *c, const aip_target_t *t)
{
    if (c->breaker_max_fails <= 0)
        return;
    char fails[48], open[48], tripped[48];
    key_of(fails, sizeof fails, "fails", t);
    key_of(open, sizeof open, "open", t);
    key_of(tripped, sizeof tripped, "tripped", t);
    int64_t n = 0, was;
    if (aip_host->shared_incr(DICT, fails, 1, 0, 0, &n) != 0)
        return;
    if (n >= c->breaker_max_fails || get_int(tripped, &was)) {
        set_int(open, 1, c->breaker_open_ms);
        set_int(tripped, 1, 0);
        aip_host->shared_delete(DICT, fails);
        aip_host->log(SL_LOG_LEVEL_WARN, "ai-proxy: %s %s: circuit opened for %lld ms", t->provider_name, t->model,
                      (long long)c->breaker_open_ms);
    }
    /* Last, after every key this wrote: a success that clears the flag
     * before this point either deleted before the writes (and the flag is
     * set again here) or deletes after them. */
    atomic_store(&((aip_target_t *)t)->may_have_fails, true);
}

void aip_breaker_success(const aip_target_t *t)
{
    /* Cleared before the deletes: a failure in another worker after them
     * sets it again. */
    if (!atomic_exchange(&((aip_target_t *)t)->may_have_fails, false))
        return;
    char key[48];
    key_of(key, sizeof key, "fails", t);
    aip_host->shared_delete(DICT, key);
    key_of(key, sizeof key, "tripped", t);
    aip_host->shared_delete(DICT, key);
}

int aip_key_current(const aip_target_t *t)
{
    if (t->n_keys < 2)
        return 0;
    char key[48];
    int64_t v = 0;
    key_of(key, sizeof key, "key", t);
    if (!get_int(key, &v) || v < 0)
        v = 0;
    return (int)(v % t->n_keys);
}

void aip_key_rotate(const aip_target_t *t, int from)
{
    if (t->n_keys < 2 || aip_key_current(t) != from)
        return;
    char key[48];
    key_of(key, sizeof key, "key", t);
    set_int(key, (from + 1) % t->n_keys, 0);
}

int64_t aip_latency_get(const aip_target_t *t)
{
    char key[48];
    int64_t v;
    key_of(key, sizeof key, "ttfb", t);
    return get_int(key, &v) ? v : -1;
}

void aip_latency_record(const aip_target_t *t, int64_t ms)
{
    char key[48];
    key_of(key, sizeof key, "ttfb", t);
    int64_t old = aip_latency_get(t);
    /* Two workers may interleave here; a lost sample only slows the average. */
    int64_t v = old < 0 ? ms : (old * (100 - EWMA_NEW_PCT) + ms * EWMA_NEW_PCT + 50) / 100;
    set_int(key, v, 0);
}
