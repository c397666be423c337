/* The local policy: the algorithms of rl_algo.h over the shared dict, so
 * every worker of this process counts in the same counters.
 *
 * Atomicity: the dict makes single operations atomic, but a request must be
 * checked against all its limits and counted in all of them or none (a
 * request refused by one limit must not use up another), and the token
 * bucket reads, computes and writes its state. So each request's
 * read-decide-write runs under a process-wide lock chosen by hashing its key
 * prefix (64 stripes): exact counts across workers, with contention only
 * between requests that hash alike. Only this plugin writes rl: keys, and
 * the locks are static, so instances of old and new configs share them
 * across a reload. */
#ifndef RL_LOCAL_H
#define RL_LOCAL_H

#include <stdint.h>

#include "rl_algo.h"
#include "rl_conf.h"

/* Fills out[0 .. c->n_limits) and returns 1 when every limit admits the
 * request (then it is counted in all of them), 0 when one refuses (then
 * nothing is counted). now_us: wall-clock microseconds. Unreadable counters
 * count as empty: the dict evicts under memory pressure, and limiting a
 * little less then beats failing requests. */
int rl_local_check(const rl_conf_t *c, const char *prefix, int64_t now_us, rl_verdict_t *out);

#endif
