/* The usage report: per consumer and tenant, per day, per model, as JSON. */
#ifndef AIC_REPORT_H
#define AIC_REPORT_H

#include <stddef.h>
#include <stdint.h>

enum { AIC_REQUESTS, AIC_PROMPT, AIC_COMPLETION, AIC_CACHED, AIC_COST, AIC_N_STATS };

typedef struct aic_report aic_report_t;

aic_report_t *aic_report_new(void);
void aic_report_free(aic_report_t *rep);
/* One day record's usage of one model. record: "aic:{<scope>:<name>}:<day>".
 * 0 ok (records of another shape are skipped), -1 out of memory. */
int aic_report_add(aic_report_t *rep, const char *record, const char *model,
                   const int64_t values[AIC_N_STATS]);
/* {"consumers":{name:{day:{totals..., "models":{model:{...}}}}},"tenants":{...}},
 * names, days and models sorted. malloc'd; NULL when out of memory. */
char *aic_report_json(aic_report_t *rep, size_t *len);

/* Where a record name ends inside `s` (the character after the day or
 * month), or NULL when s does not start with a record name. */
char *aic_record_end(char *s);

/* Gathering from the shared dict (aic_local.c). */
int aic_local_report(aic_report_t *rep);

#endif
