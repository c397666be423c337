/* A stand-in host table for the unit test: JSON through jansson, and a
 * shared dict that is a small in-memory list of integer counters. */
#ifndef ATL_FAKE_HOST_H
#define ATL_FAKE_HOST_H

#include <stdint.h>

#include "sluice/host.h"

extern int fake_redis_configured;

const sl_host_t *fake_host(void);

/* The counter's value, or INT64_MIN when it does not exist. */
int64_t fake_counter(const char *key);
/* After n more new counters, making another fails (a full dict); -1 = never. */
void fake_fail_new_after(int n);
void fake_dict_clear(void);

#endif
