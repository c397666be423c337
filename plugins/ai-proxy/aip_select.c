#include "aip_select.h"

#include <time.h>

#include "aip_health.h"

int aip_order_pure(const aip_model_t *m, const bool *usable, const int64_t *latency, uint32_t pick, int *order)
{
    int n = 0;
    for (int i = 0; i < m->n_targets; i++)
        if (usable[i])
            order[n++] = i;
    if (n < 2)
        return n;
    if (m->strategy == AIP_WEIGHTED) {
        uint64_t total = 0;
        for (int k = 0; k < n; k++)
            total += (uint64_t)m->targets[order[k]].weight;
        if (total == 0)
            return n;
        uint64_t at = pick % total;
        int k = 0;
        while (at >= (uint64_t)m->targets[order[k]].weight) {
            at -= (uint64_t)m->targets[order[k]].weight;
            k++;
        }
        int first = order[k];
        for (; k > 0; k--)
            order[k] = order[k - 1];
        order[0] = first;
    } else if (m->strategy == AIP_LOWEST_LATENCY) {
        /* Insertion sort: stable, so equal averages keep configured order. */
        for (int k = 1; k < n; k++) {
            int v = order[k], j = k;
            while (j > 0 && latency[order[j - 1]] > latency[v]) {
                order[j] = order[j - 1];
                j--;
            }
            order[j] = v;
        }
    }
    return n;
}

/* Per worker thread: xorshift seeded once from the clock and the thread's
 * own stack address, enough to spread a weighted draw. */
static uint32_t next_random(void)
{
    static _Thread_local uint64_t s;
    if (s == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        s = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^ (uint64_t)(uintptr_t)&ts;
        if (s == 0)
            s = 0x9e3779b97f4a7c15ULL;
    }
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return (uint32_t)(s >> 32);
}

int aip_order(const aip_model_t *m, int *order, int *skipped_open)
{
    bool usable[AIP_MAX_TARGETS];
    int64_t latency[AIP_MAX_TARGETS];
    *skipped_open = 0;
    for (int i = 0; i < m->n_targets; i++) {
        const aip_target_t *t = &m->targets[i];
        usable[i] = !aip_breaker_open(t);
        if (!usable[i])
            (*skipped_open)++;
        latency[i] = m->strategy == AIP_LOWEST_LATENCY && usable[i] ? aip_latency_get(t) : -1;
    }
    return aip_order_pure(m, usable, latency, m->strategy == AIP_WEIGHTED ? next_random() : 0, order);
}
