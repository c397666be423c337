/* Plugin-registered metrics: counters and gauges keyed by name and a label
 * string, summed across workers, rendered in the Prometheus text format. */
#ifndef SLUICE_METRICS_H
#define SLUICE_METRICS_H

#include <stddef.h>

void sl_metric_add(const char *name, const char *labels, double value);
void sl_metric_set(const char *name, const char *labels, double value);
/* Prometheus text exposition into a malloc'd string (caller frees). */
char *sl_metrics_render(size_t *len);
void sl_metrics_reset(void);

#endif
