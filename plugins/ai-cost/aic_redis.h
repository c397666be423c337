/* The redis policy: the same records as Redis hashes, changed by Lua
 * scripts so that a check and its reservation, or a settlement, happen at
 * once for every node. Hash fields: spent, reserved, and on day records
 * m:<model>:<stat>. The set aic:index names the day records the report
 * reads. */
#ifndef AIC_REDIS_H
#define AIC_REDIS_H

#include <stddef.h>

#include "aic_report.h"
#include "aic_store.h"
#include "sluice/host.h"

#define AIC_REDIS_INDEX "aic:index"

extern const char aic_redis_reserve_script[];
extern const char aic_redis_settle_script[];
extern const char aic_redis_report_script[];

/* Arguments for a script call: KEYS then ARGV, numbers printed into `num`. */
typedef struct aic_redis_args {
    int nkeys, argc;
    const char *argv[64];
    size_t lens[64];
    char num[64][24];
} aic_redis_args_t;

void aic_redis_reserve_args(const aic_reservation_t *res, aic_redis_args_t *a);
/* For settling with plain EVAL (see ai-cost.c): argv[0] "EVAL", argv[1] the
 * script, argv[2] the key count, then keys and arguments. */
void aic_redis_settle_args(const aic_settlement_t *s, aic_redis_args_t *a);

/* The reserve script's verdict: -1 all reserved, else the refused budget's
 * position in the reservation; -2 when the reply is not the script's. */
int aic_redis_reserve_parse(const sl_reply_t *reply);
/* 0 ok, -1 not the report script's reply, -2 out of memory. */
int aic_redis_report_parse(const sl_reply_t *reply, aic_report_t *rep);

#endif
