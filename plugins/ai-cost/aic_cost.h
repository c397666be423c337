/* Money arithmetic and calendar periods; no I/O. Amounts are integer
 * micro-dollars (a price in USD per million tokens is micro-dollars per
 * token). */
#ifndef AIC_COST_H
#define AIC_COST_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "aic_conf.h"

typedef struct aic_usage {
    int64_t prompt, completion, cached;
} aic_usage_t;

/* What a request may cost at most, from its body: the text of its messages
 * (and embeddings input) at 4 characters per token at the input price, plus
 * max_tokens (or max_completion_tokens, else default_max) at the output price.
 * price NULL: the dearest prices of the config. Rounded up. */
int64_t aic_estimate(const aic_conf_t *c, const aic_price_t *price, const char *body, size_t len);

/* OpenAI counts cached tokens inside prompt_tokens, so they are taken out of
 * the full-price part. Rounded to the nearest micro-dollar. */
int64_t aic_cost(const aic_price_t *price, const aic_usage_t *u);

/* "YYYY-MM-DD" / "YYYY-MM" in UTC for the given time. */
void aic_period_id(aic_period_t p, time_t now, char out[16]);
/* Seconds until the UTC period containing `now` ends (at least 1). */
int64_t aic_seconds_left(aic_period_t p, time_t now);

/* Micro-dollars as a decimal USD amount without trailing zeros: "0.0015", "2". */
void aic_format_usd(int64_t micro, char *out, size_t cap);

#endif
