/* A one-off, blocking check that a configured Redis answers: run by `sluice
 * check` and at start-up (before the workers' event loops exist), so an
 * operator hears at once that Redis is down. It never fails the start: each
 * policy decides what Redis errors mean (on_redis_error). */
#ifndef SLUICE_REDIS_PROBE_H
#define SLUICE_REDIS_PROBE_H

#include <stddef.h>

#include "config.h"

/* 0 when Redis answered PING (after AUTH/SELECT), else -1 with a reason. */
int sl_redis_probe(const sl_redis_opts_t *opts, char *why, size_t len);

#endif
