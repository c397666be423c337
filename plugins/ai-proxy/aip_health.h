/* What ai-proxy remembers about each target between requests, in the shared
 * dictionary "ai-proxy" so that every worker of the process sees the same:
 *
 *   breaker    consecutive failures; at max_fails the target is skipped for
 *              open_time. After that it is tried again (half open): one more
 *              failure opens it at once, a success closes it.
 *   keys       which of a target's api_keys is current; a 429 moves it on.
 *   latency    an EWMA of the time to first token, for lowest_latency.
 *
 * Keys in the dictionary are "<kind>:<target id>": the id is a hash, never a
 * provider key. */
#ifndef AIP_HEALTH_H
#define AIP_HEALTH_H

#include <stdbool.h>
#include <stdint.h>

#include "aip_conf.h"

bool aip_breaker_open(const aip_target_t *t);
void aip_breaker_failure(const aip_conf_t *c, const aip_target_t *t);
void aip_breaker_success(const aip_target_t *t);

/* Index of the target's current key (0 when it has fewer than two). */
int aip_key_current(const aip_target_t *t);
/* Moves the current key on from `from` (unless another request already did). */
void aip_key_rotate(const aip_target_t *t, int from);

/* EWMA of the time to first token in ms; -1 before the first sample. */
int64_t aip_latency_get(const aip_target_t *t);
/* Nothing unless t->records_latency (no lowest_latency model reads it). */
void aip_latency_record(const aip_target_t *t, int64_t ms);

#endif
