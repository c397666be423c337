/* ai-cost's validated config: prices, budgets and where totals live. */
#ifndef AIC_CONF_H
#define AIC_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/plugin.h"

#define AIC_MAX_BUDGETS 16

typedef enum { AIC_POLICY_LOCAL, AIC_POLICY_REDIS } aic_policy_t;
typedef enum { AIC_SCOPE_CONSUMER, AIC_SCOPE_TENANT } aic_scope_t;
typedef enum { AIC_PERIOD_DAY, AIC_PERIOD_MONTH } aic_period_t;

/* USD per million tokens, which is also micro-dollars per token. */
typedef struct aic_price {
    const char *model;
    double input, output, cached_input;
} aic_price_t;

typedef struct aic_budget {
    aic_scope_t scope;
    aic_period_t period;
    int64_t limit_micro;       /* micro-dollars */
    const char *name;          /* NULL when unnamed */
} aic_budget_t;

typedef struct aic_conf {
    aic_price_t *prices;
    int n_prices;
    /* The dearest input and output prices of all models: what an estimate
     * uses when the request names an alias that has no price of its own. */
    double max_input, max_output;
    aic_budget_t budgets[AIC_MAX_BUDGETS];
    int n_budgets;
    aic_policy_t policy;
    int64_t estimate_max_tokens_default;
    bool report;
} aic_conf_t;

extern const char aic_conf_schema[];

aic_conf_t *aic_conf_new(const sl_json_t *conf, char *err, size_t errlen);
void aic_conf_free(aic_conf_t *c);
/* NULL when the model has no price. */
const aic_price_t *aic_price_of(const aic_conf_t *c, const char *model);

#endif
