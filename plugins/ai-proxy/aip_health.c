#include "aip_health.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aip_host.h"

#define DICT "ai-proxy"
/* Weight of the newest sample in the latency average, in percent. */
#define EWMA_NEW_PCT 30

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

/* Decimal without printf: the latency average is written per success. */
static void set_int(const char *key, int64_t v, int64_t ttl_ms)
{
    char buf[24], *w = buf + sizeof buf;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do {
        *--w = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--w = '-';
    aip_host->shared_set(DICT, key, w, (size_t)(buf + sizeof buf - w), ttl_ms);
}

bool aip_breaker_open(const aip_target_t *t)
{
    int64_t v;
    return get_int(t->key_open, &v);
}

void aip_breaker_failure(const aip_conf_t *c, const aip_target_t *t)
{
    if (c->breaker_max_fails <= 0)
        return;
    const char *fails = t->key_fails, *open = t->key_open, *tripped = t->key_tripped;
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
    aip_host->shared_delete(DICT, t->key_fails);
    aip_host->shared_delete(DICT, t->key_tripped);
}

int aip_key_current(const aip_target_t *t)
{
    if (t->n_keys < 2)
        return 0;
    int64_t v = 0;
    if (!get_int(t->key_key, &v) || v < 0)
        v = 0;
    return (int)(v % t->n_keys);
}

void aip_key_rotate(const aip_target_t *t, int from)
{
    if (t->n_keys < 2 || aip_key_current(t) != from)
        return;
    set_int(t->key_key, (from + 1) % t->n_keys, 0);
}

int64_t aip_latency_get(const aip_target_t *t)
{
    int64_t v;
    return get_int(t->key_ttfb, &v) ? v : -1;
}

void aip_latency_record(const aip_target_t *t, int64_t ms)
{
    if (!t->records_latency)
        return;
    int64_t old = aip_latency_get(t);
    /* Two workers may interleave here; a lost sample only slows the average. */
    int64_t v = old < 0 ? ms : (old * (100 - EWMA_NEW_PCT) + ms * EWMA_NEW_PCT + 50) / 100;
    set_int(t->key_ttfb, v, 0);
}
