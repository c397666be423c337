/* Config of the ai-token-limit plugin: the schema the gateway validates
 * against, and what it cannot express (windows written as words or
 * durations, duplicate key parts, policy redis without redis:). */
#include "atl_conf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atl_host.h"

/* `window` is "any" because the schema's duration type does not take the
 * words minute and hour; configure() checks it and names the item. */
const char atl_conf_schema[] =
    "{\"fields\": {"
    "\"limits\": {\"type\": \"array\", \"required\": true, \"min\": 1, \"max\": 8,"
    "  \"items\": {\"type\": \"object\", \"fields\": {"
    "    \"tokens\": {\"type\": \"integer\", \"required\": true, \"min\": 1, \"max\": 1000000000000},"
    "    \"window\": {\"type\": \"any\", \"required\": true}}}},"
    "\"key\": {\"type\": \"array\", \"min\": 1, \"max\": 3, \"default\": [\"consumer\"],"
    "  \"items\": {\"type\": \"string\", \"enum\": [\"consumer\", \"tenant\", \"route\"]}},"
    "\"policy\": {\"type\": \"string\", \"enum\": [\"local\", \"redis\"], \"default\": \"local\"},"
    "\"on_redis_error\": {\"type\": \"string\", \"enum\": [\"allow\", \"deny\", \"local\"],"
    "  \"default\": \"allow\"},"
    "\"estimate_max_tokens_default\": {\"type\": \"integer\", \"min\": 0, \"max\": 10000000,"
    "  \"default\": 1024}}}";

#define WINDOW_MIN_MS 1000
#define WINDOW_MAX_MS (8784LL * 3600 * 1000)   /* a leap year */

static int parse_duration_text(const char *s, int64_t *out)
{
    static const struct { const char *unit; int64_t ms; } units[] = {
        {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}, {"", 1},
    };
    int64_t n = 0;
    const char *p = s;
    if (*p < '0' || *p > '9')
        return -1;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (n > WINDOW_MAX_MS)
            return -1;
        n = n * 10 + (*p - '0');
    }
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(p, units[i].unit) == 0) {
            if (n > WINDOW_MAX_MS / units[i].ms + 1)
                return -1;
            *out = n * units[i].ms;
            return 0;
        }
    }
    return -1;
}

int atl_parse_window(const sl_json_t *v, int64_t *out_ms)
{
    int64_t ms;
    if (!v)
        return -1;
    if (atl_host->json_type(v) == SL_JSON_INTEGER) {
        ms = atl_host->json_integer(v);
    } else {
        const char *s = atl_host->json_string(v, NULL);
        if (!s)
            return -1;
        if (strcmp(s, "minute") == 0)
            ms = 60000;
        else if (strcmp(s, "hour") == 0)
            ms = 3600000;
        else if (parse_duration_text(s, &ms) != 0)
            return -1;
    }
    if (ms < WINDOW_MIN_MS || ms > WINDOW_MAX_MS)
        return -1;
    *out_ms = ms;
    return 0;
}

static int choice(const sl_json_t *conf, const char *key, const char *const *names, int n, int fallback)
{
    const char *v = atl_host->json_string(atl_host->json_get(conf, key), NULL);
    if (!v)
        return fallback;
    for (int i = 0; i < n; i++)
        if (strcmp(v, names[i]) == 0)
            return i;
    return -1;
}

static int parse_limits(atl_conf_t *c, const sl_json_t *list, char *err, size_t errlen)
{
    size_t n = list ? atl_host->json_len(list) : 0;
    if (n < 1 || n > ATL_MAX_LIMITS) {
        snprintf(err, errlen, "limits: between 1 and %d limits are needed", ATL_MAX_LIMITS);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        const sl_json_t *item = atl_host->json_at(list, i);
        const sl_json_t *tokens = atl_host->json_get(item, "tokens");
        atl_limit_t *l = &c->limits[i];
        l->tokens = tokens && atl_host->json_type(tokens) == SL_JSON_INTEGER ? atl_host->json_integer(tokens) : 0;
        if (l->tokens < 1) {
            snprintf(err, errlen, "limits[%zu].tokens: must be a positive integer", i);
            return -1;
        }
        if (atl_parse_window(atl_host->json_get(item, "window"), &l->window_ms) != 0) {
            snprintf(err, errlen, "limits[%zu].window: must be minute, hour or a duration from 1s to 8784h "
                                  "(e.g. 30s, 5m, 1h, 1d)", i);
            return -1;
        }
        /* Counters are named by their window, so one window is one budget. */
        for (size_t j = 0; j < i; j++)
            if (c->limits[j].window_ms == l->window_ms) {
                snprintf(err, errlen, "limits[%zu].window: limits[%zu] has the same window", i, j);
                return -1;
            }
    }
    c->n_limits = (int)n;
    return 0;
}

static int parse_key(atl_conf_t *c, const sl_json_t *list, char *err, size_t errlen)
{
    static const char *const names[] = {"consumer", "tenant", "route"};
    if (!list) {
        c->n_parts = 1;
        c->parts[0] = ATL_PART_CONSUMER;
        return 0;
    }
    size_t n = atl_host->json_len(list);
    if (n < 1 || n > ATL_MAX_KEY_PARTS) {
        snprintf(err, errlen, "key: between 1 and %d parts are needed", ATL_MAX_KEY_PARTS);
        return -1;
    }
    unsigned seen = 0;
    for (size_t i = 0; i < n; i++) {
        const char *s = atl_host->json_string(atl_host->json_at(list, i), NULL);
        int kind = -1;
        for (int k = 0; s && k < 3; k++)
            if (strcmp(s, names[k]) == 0)
                kind = k;
        if (kind < 0) {
            snprintf(err, errlen, "key[%zu]: must be consumer, tenant or route", i);
            return -1;
        }
        if (seen & (1u << kind)) {
            snprintf(err, errlen, "key[%zu]: %s is listed twice", i, names[kind]);
            return -1;
        }
        seen |= 1u << kind;
        c->parts[i] = (atl_part_t)kind;
    }
    c->n_parts = (int)n;
    return 0;
}

atl_conf_t *atl_conf_new(const sl_json_t *conf, char *err, size_t errlen)
{
    static const char *const policies[] = {"local", "redis"};
    static const char *const on_error[] = {"allow", "deny", "local"};
    atl_conf_t *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    int policy = choice(conf, "policy", policies, 2, ATL_POLICY_LOCAL);
    int on_err = choice(conf, "on_redis_error", on_error, 3, ATL_ON_ERROR_ALLOW);
    const sl_json_t *est = atl_host->json_get(conf, "estimate_max_tokens_default");
    if (policy < 0 || on_err < 0) {
        snprintf(err, errlen, "policy or on_redis_error has an unknown value");
        goto fail;
    }
    c->policy = (atl_policy_t)policy;
    c->on_redis_error = (atl_on_error_t)on_err;
    c->estimate_max_tokens_default = est ? atl_host->json_integer(est) : 1024;
    if (c->estimate_max_tokens_default < 0) {
        snprintf(err, errlen, "estimate_max_tokens_default: must not be negative");
        goto fail;
    }
    if (parse_limits(c, atl_host->json_get(conf, "limits"), err, errlen) != 0 ||
        parse_key(c, atl_host->json_get(conf, "key"), err, errlen) != 0)
        goto fail;
    if (c->policy == ATL_POLICY_REDIS && !atl_host->redis_configured()) {
        snprintf(err, errlen, "policy: redis needs a top-level redis: section");
        goto fail;
    }
    return c;
fail:
    free(c);
    return NULL;
}

const char *atl_conf_requires(const atl_conf_t *c)
{
    for (int i = 0; i < c->n_parts; i++)
        if (c->parts[i] != ATL_PART_ROUTE)
            return "consumer";
    return NULL;
}
