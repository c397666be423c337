/* What ai-cost asks of its store (the shared dict, or Redis): reserve an
 * estimate under every budget that applies, then settle -- add the actual
 * cost and usage and give the reservation back.
 *
 * Each (scope, name, period) has one record named
 *   aic:{consumer:<name>}:<YYYY-MM-DD>   aic:{tenant:<name>}:<YYYY-MM>  ...
 * holding `spent` and `reserved` micro-dollars; day records also hold the
 * per-model usage the report shows. */
#ifndef AIC_STORE_H
#define AIC_STORE_H

#include <stdint.h>

#include "aic_conf.h"
#include "aic_cost.h"

#define AIC_DICT "ai-cost"
#define AIC_DAY_TTL_MS (40LL * 86400 * 1000)
#define AIC_MONTH_TTL_MS (400LL * 86400 * 1000)
/* consumer and tenant, each by day and by month */
#define AIC_MAX_RECORDS 4

typedef struct aic_reservation {
    int n;
    const char *keys[AIC_MAX_BUDGETS];
    int64_t limits[AIC_MAX_BUDGETS];
    int64_t ttl_ms[AIC_MAX_BUDGETS];
    int budget[AIC_MAX_BUDGETS];      /* index into conf->budgets */
    int64_t estimate;
} aic_reservation_t;

typedef struct aic_settlement {
    int n;
    const char *keys[AIC_MAX_RECORDS];
    int64_t release[AIC_MAX_RECORDS];
    int64_t ttl_ms[AIC_MAX_RECORDS];
    int is_day[AIC_MAX_RECORDS];
    int64_t actual;
    const char *model;                /* NULL: nothing was used */
    aic_usage_t usage;
} aic_settlement_t;

/* The refused budget's position in `res`, or -1 when every budget had room
 * and the estimate is now reserved under all of them. */
int aic_local_reserve(const aic_reservation_t *res);
void aic_local_settle(const aic_settlement_t *s);

#endif
