/* The order in which one request tries a model's targets. The strategy only
 * decides who goes first (failover: the configured order; weighted: a
 * weighted random pick; lowest_latency: the smallest time-to-first-token
 * average, untried targets first so they get measured); the others follow
 * in configured order (lowest_latency: by their averages) as fallbacks. */
#ifndef AIP_SELECT_H
#define AIP_SELECT_H

#include <stdbool.h>
#include <stdint.h>

#include "aip_conf.h"

/* Pure: usable[i] says target i may be tried at all (its circuit is
 * closed); latency[i] is its average or -1; pick is a
 * random number for the weighted draw. Returns how many indexes went into
 * order. */
int aip_order_pure(const aip_model_t *m, const bool *usable, const int64_t *latency, uint32_t pick, int *order);

/* The same with usable and latency read from the shared state. *skipped_open
 * counts targets left out because their circuit is open. */
int aip_order(const aip_model_t *m, int *order, int *skipped_open);

#endif
