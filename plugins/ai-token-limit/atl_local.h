/* policy local: counters in this process' shared dict "ai-token-limit",
 * shared by all workers, without a lock: each limit's counter is increased
 * by the estimate (shared_incr is atomic), the result compared with the
 * limit, and on a refusal every increase made so far is undone. A refused
 * request thus counts in no limit once it is answered, though for that
 * instant it may make a concurrent request see less room than there is
 * (never more). */
#ifndef ATL_LOCAL_H
#define ATL_LOCAL_H

#include "atl_conf.h"
#include "atl_verdict.h"

#define ATL_DICT "ai-token-limit"

/* 0 with the verdict in *out; -1 when the dict failed (nothing is kept). */
int atl_local_reserve(const atl_conf_t *c, const char *prefix, int64_t estimate, int64_t now_ms,
                      atl_verdict_t *out);

/* Adds delta to the counters of the windows that held at_ms, those that
 * have not ended by now_ms (an ended window's count no longer matters). */
void atl_local_correct(const atl_conf_t *c, const char *prefix, int64_t delta, int64_t at_ms, int64_t now_ms);

#endif
