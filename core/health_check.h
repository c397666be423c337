/* Active health checks: for every upstream with `health.active`, a GET to
 * each target every interval from the main thread's loop. Verdicts go to the
 * snapshot's shared health state, which every worker's balancer reads. */
#ifndef SLUICE_HEALTH_CHECK_H
#define SLUICE_HEALTH_CHECK_H

#include "snapshot.h"

struct event_base;
struct evdns_base;

typedef struct sl_checker sl_checker_t;

sl_checker_t *sl_checker_start(struct event_base *base, struct evdns_base *dns, sl_snapshot_t *snap);
void sl_checker_stop(sl_checker_t *c);

#endif
