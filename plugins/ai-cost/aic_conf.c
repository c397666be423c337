/* Reading the validated config; the schema has filled defaults and checked
 * types and ranges, so what is left are the cross-field rules. */
#include "aic_conf.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aic_host.h"

/* A million dollars in micro-dollars is far below 2^53, so limits and costs
 * stay exact integers in Redis' Lua numbers too. */
const char aic_conf_schema[] =
    "{\"fields\": {"
    "\"prices\": {\"type\": \"object\", \"default\": {}, \"values\": {\"type\": \"object\", \"fields\": {"
    "  \"input\": {\"type\": \"number\", \"required\": true, \"min\": 0, \"max\": 1000000},"
    "  \"output\": {\"type\": \"number\", \"required\": true, \"min\": 0, \"max\": 1000000},"
    "  \"cached_input\": {\"type\": \"number\", \"min\": 0, \"max\": 1000000}}}},"
    "\"policy\": {\"type\": \"string\", \"enum\": [\"local\", \"redis\"], \"default\": \"local\"},"
    "\"budgets\": {\"type\": \"array\", \"default\": [], \"max\": 16, \"items\": {\"type\": \"object\", \"fields\": {"
    "  \"scope\": {\"type\": \"string\", \"required\": true, \"enum\": [\"consumer\", \"tenant\"]},"
    "  \"period\": {\"type\": \"string\", \"required\": true, \"enum\": [\"day\", \"month\"]},"
    "  \"limit_usd\": {\"type\": \"number\", \"required\": true, \"min\": 0, \"max\": 1000000000},"
    "  \"name\": {\"type\": \"string\", \"min\": 1, \"max\": 100}}}},"
    "\"estimate_max_tokens_default\": {\"type\": \"integer\", \"min\": 0, \"max\": 10000000,"
    "  \"default\": 1024},"
    "\"report\": {\"type\": \"boolean\", \"default\": false}"
    "}}";

static const sl_json_t *get(const sl_json_t *o, const char *k) { return aic_host->json_get(o, k); }

static const char *str(const sl_json_t *o, const char *k)
{
    const sl_json_t *v = get(o, k);
    return v ? aic_host->json_string(v, NULL) : NULL;
}

static int read_prices(aic_conf_t *c, const sl_json_t *prices)
{
    size_t n = prices ? aic_host->json_len(prices) : 0;
    if (n == 0)
        return 0;
    if (!(c->prices = calloc(n, sizeof *c->prices)))
        return -1;
    for (size_t i = 0; i < n; i++) {
        const sl_json_t *p = NULL;
        aic_price_t *out = &c->prices[c->n_prices++];
        out->model = aic_host->json_member_at(prices, i, &p);
        out->input = aic_host->json_number(get(p, "input"));
        out->output = aic_host->json_number(get(p, "output"));
        /* Without a cached price, cached tokens cost what other input costs. */
        const sl_json_t *cached = get(p, "cached_input");
        out->cached_input = cached ? aic_host->json_number(cached) : out->input;
        if (out->input > c->max_input)
            c->max_input = out->input;
        if (out->output > c->max_output)
            c->max_output = out->output;
    }
    return 0;
}

static void read_budgets(aic_conf_t *c, const sl_json_t *budgets)
{
    size_t n = budgets ? aic_host->json_len(budgets) : 0;
    for (size_t i = 0; i < n && i < AIC_MAX_BUDGETS; i++) {
        const sl_json_t *b = aic_host->json_at(budgets, i);
        aic_budget_t *out = &c->budgets[c->n_budgets++];
        out->scope = strcmp(str(b, "scope"), "tenant") == 0 ? AIC_SCOPE_TENANT : AIC_SCOPE_CONSUMER;
        out->period = strcmp(str(b, "period"), "month") == 0 ? AIC_PERIOD_MONTH : AIC_PERIOD_DAY;
        out->limit_micro = llround(aic_host->json_number(get(b, "limit_usd")) * 1e6);
        out->name = str(b, "name");
    }
}

/* Two budgets of one scope and period would share a counter and reserve
 * every request twice on it. */
static int duplicate_budget(const aic_conf_t *c)
{
    for (int i = 0; i < c->n_budgets; i++)
        for (int j = 0; j < i; j++)
            if (c->budgets[i].scope == c->budgets[j].scope &&
                c->budgets[i].period == c->budgets[j].period)
                return i;
    return -1;
}

aic_conf_t *aic_conf_new(const sl_json_t *conf, char *err, size_t errlen)
{
    aic_conf_t *c = calloc(1, sizeof *c);
    if (!c || read_prices(c, get(conf, "prices")) != 0) {
        snprintf(err, errlen, "out of memory");
        aic_conf_free(c);
        return NULL;
    }
    read_budgets(c, get(conf, "budgets"));
    c->policy = strcmp(str(conf, "policy"), "redis") == 0 ? AIC_POLICY_REDIS : AIC_POLICY_LOCAL;
    c->estimate_max_tokens_default = aic_host->json_integer(get(conf, "estimate_max_tokens_default"));
    c->report = aic_host->json_bool(get(conf, "report"));
    int dup = duplicate_budget(c);
    if (dup >= 0) {
        snprintf(err, errlen, "budgets[%d]: a budget for this scope and period is already set", dup);
        aic_conf_free(c);
        return NULL;
    }
    if (c->policy == AIC_POLICY_REDIS && !aic_host->redis_configured()) {
        snprintf(err, errlen, "policy: redis needs a top-level redis: section");
        aic_conf_free(c);
        return NULL;
    }
    return c;
}

void aic_conf_free(aic_conf_t *c)
{
    if (!c)
        return;
    free(c->prices);
    free(c);
}

const aic_price_t *aic_price_of(const aic_conf_t *c, const char *model)
{
    for (int i = 0; model && i < c->n_prices; i++)
        if (strcmp(c->prices[i].model, model) == 0)
            return &c->prices[i];
    return NULL;
}
