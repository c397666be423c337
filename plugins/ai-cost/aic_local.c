/* The local policy: records in the shared dict, as one counter per field
 * ("<record>|spent", "<record>|reserved", "<record>|m|<model>|<stat>").
 *
 * No lock: a reservation is added first and checked after, and taken back
 * when it does not fit. Two racing requests may then both be refused where
 * one would have fitted, but the reserved total never lets spending pass a
 * limit. Settling adds to spent before it takes from reserved, so a check
 * reading between the two sees too much, never too little. */
#include "aic_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aic_host.h"
#include "aic_report.h"

static int64_t counter(const char *key)
{
    char buf[32];
    size_t len = 0;
    if (aic_host->shared_get(AIC_DICT, key, buf, sizeof buf - 1, &len) != 1)
        return 0;
    buf[len] = '\0';
    return strtoll(buf, NULL, 10);
}

static char *field_key(const char *record, const char *a, const char *b, const char *c)
{
    size_t n = strlen(record) + strlen(a) + (b ? strlen(b) + strlen(c) + 2 : 0) + 2;
    char *k = malloc(n);
    if (!k)
        return NULL;
    if (b)
        snprintf(k, n, "%s|%s|%s|%s", record, a, b, c);
    else
        snprintf(k, n, "%s|%s", record, a);
    return k;
}

static int64_t add(const char *record, const char *field, int64_t delta, int64_t ttl_ms)
{
    char *k = field_key(record, field, NULL, NULL);
    int64_t out = 0;
    if (!k || aic_host->shared_incr(AIC_DICT, k, delta, 0, ttl_ms, &out) != 0)
        out = INT64_MIN;
    free(k);
    return out;
}

static int64_t get_field(const char *record, const char *field)
{
    char *k = field_key(record, field, NULL, NULL);
    int64_t v = k ? counter(k) : 0;
    free(k);
    return v;
}

int aic_local_reserve(const aic_reservation_t *res)
{
    int64_t est = res->estimate;
    for (int i = 0; i < res->n; i++) {
        int64_t reserved = add(res->keys[i], "reserved", est, res->ttl_ms[i]);
        int64_t spent = get_field(res->keys[i], "spent");
        int64_t left = reserved == INT64_MIN ? 0 : res->limits[i] - spent - (reserved - est);
        if (left <= 0 || left < est) {
            for (int j = reserved == INT64_MIN ? i - 1 : i; j >= 0; j--)
                add(res->keys[j], "reserved", -est, res->ttl_ms[j]);
            return i;
        }
    }
    return -1;
}

static void add_model_stat(const char *record, const char *model, const char *stat, int64_t v,
                           int64_t ttl_ms)
{
    char *k = field_key(record, "m", model, stat);
    if (k)
        aic_host->shared_incr(AIC_DICT, k, v, 0, ttl_ms, NULL);
    free(k);
}

/* The dict cannot list its keys, so each (record, model) the report must
 * show is written once into a numbered slot; the first request to count it
 * claims the slot. */
static void index_record(const char *record, const char *model, int64_t ttl_ms)
{
    char *seen = field_key(record, "seen", model, "");
    int64_t first = 0;
    if (seen && aic_host->shared_incr(AIC_DICT, seen, 1, 0, ttl_ms, &first) == 0 && first == 1) {
        int64_t slot = 0;
        if (aic_host->shared_incr(AIC_DICT, "aic:index:n", 1, 0, 0, &slot) == 0) {
            char key[48];
            snprintf(key, sizeof key, "aic:index:%lld", (long long)slot);
            size_t n = strlen(record) + strlen(model) + 2;
            char *entry = malloc(n);
            if (entry) {
                snprintf(entry, n, "%s|%s", record, model);
                aic_host->shared_set(AIC_DICT, key, entry, n - 1, ttl_ms);
                free(entry);
            }
        }
    }
    free(seen);
}

void aic_local_settle(const aic_settlement_t *s)
{
    for (int i = 0; i < s->n; i++) {
        const char *rec = s->keys[i];
        if (s->actual > 0)
            add(rec, "spent", s->actual, s->ttl_ms[i]);
        if (s->release[i] > 0 && add(rec, "reserved", -s->release[i], s->ttl_ms[i]) < 0)
            add(rec, "reserved", 0, s->ttl_ms[i]);
        if (!s->is_day[i] || !s->model)
            continue;
        add_model_stat(rec, s->model, "requests", 1, s->ttl_ms[i]);
        add_model_stat(rec, s->model, "prompt_tokens", s->usage.prompt, s->ttl_ms[i]);
        add_model_stat(rec, s->model, "completion_tokens", s->usage.completion, s->ttl_ms[i]);
        add_model_stat(rec, s->model, "cached_tokens", s->usage.cached, s->ttl_ms[i]);
        add_model_stat(rec, s->model, "cost", s->actual, s->ttl_ms[i]);
        index_record(rec, s->model, s->ttl_ms[i]);
    }
}

int aic_local_report(aic_report_t *rep)
{
    int64_t n = counter("aic:index:n");
    for (int64_t slot = 1; slot <= n; slot++) {
        char key[48], entry[1024];
        size_t len = 0;
        snprintf(key, sizeof key, "aic:index:%lld", (long long)slot);
        if (aic_host->shared_get(AIC_DICT, key, entry, sizeof entry - 1, &len) != 1)
            continue;
        entry[len] = '\0';
        char *bar = aic_record_end(entry);
        if (!bar || *bar != '|')
            continue;
        *bar = '\0';
        const char *record = entry, *model = bar + 1;
        static const char *const stats[AIC_N_STATS] = {"requests", "prompt_tokens", "completion_tokens",
                                                       "cached_tokens", "cost"};
        int64_t values[AIC_N_STATS];
        for (int i = 0; i < AIC_N_STATS; i++) {
            char *k = field_key(record, "m", model, stats[i]);
            values[i] = k ? counter(k) : 0;
            free(k);
        }
        if (aic_report_add(rep, record, model, values) != 0)
            return -1;
    }
    return 0;
}
