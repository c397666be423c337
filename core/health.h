/* Target health shared by every worker: passive failure counting, the
 * circuit breaker, and the verdict of active health checks.
 *
 * One object per upstream per config snapshot. Workers call into it on the
 * request path from their own threads, so every field is a C11 atomic and no
 * call takes a lock. The common path (a closed circuit, a success) only reads
 * shared memory, so workers do not fight over cache lines while all is well.
 *
 * Time is passed in as monotonic milliseconds so that tests are exact. */
#ifndef SLUICE_HEALTH_H
#define SLUICE_HEALTH_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"

typedef enum { SL_CIRCUIT_CLOSED = 0, SL_CIRCUIT_OPEN, SL_CIRCUIT_HALF_OPEN } sl_circuit_t;

typedef struct sl_upstream_health sl_upstream_health_t;

/* Reads n_targets, max_fails, open_ms and the active thresholds from up; up
 * need not outlive the result. An upstream without targets is valid (nothing
 * is ever admitted). NULL on a NULL up, negative n_targets, or no memory.
 * Every target starts up with its circuit closed. */
sl_upstream_health_t *sl_health_new(const sl_upstream_t *up);
void sl_health_free(sl_upstream_health_t *h);

typedef enum { SL_ADMIT_NO = 0, SL_ADMIT_YES, SL_ADMIT_TRIAL } sl_admit_t;

/* May target idx take a request now? Down by active check -> NO. Circuit
 * closed -> YES. Open and now < open_until -> NO. Open and the open time has
 * passed -> becomes HALF_OPEN and exactly one caller (CAS) gets TRIAL, others
 * NO until the trial's outcome is reported. A caller that gets TRIAL must send
 * that request and report it with was_trial = true, or the target stays
 * half-open (refused) until an active check marks it up. Bad idx -> NO. */
sl_admit_t sl_health_admit(sl_upstream_health_t *h, int idx, int64_t now_ms);

/* Outcome of a real request (passive health). success resets the
 * consecutive-failure count; a trial success closes the circuit, a trial
 * failure re-opens it for open_ms. max_fails consecutive failures open a
 * closed circuit (max_fails 0 = breaker off). A was_trial report that arrives
 * when the circuit is no longer half-open (an active check closed it) counts
 * as an ordinary outcome. Bad idx is ignored. */
void sl_health_report(sl_upstream_health_t *h, int idx, bool success, bool was_trial,
                      int64_t now_ms);

/* Active health-check result: `unhealthy` consecutive failures mark the
 * target down, `healthy` consecutive successes mark it up again (and close its
 * circuit). Thresholds below 1 count as 1. Returns true when the verdict
 * changed (the caller logs it); exactly one caller sees each change. */
/* A trial whose outcome will never be known (the client left before the
   target answered): hand the trial to the next request instead. */
void sl_health_release_trial(sl_upstream_health_t *h, int idx);
bool sl_health_active_result(sl_upstream_health_t *h, int idx, bool ok);

/* Bad idx or NULL h: CLOSED and false. */
sl_circuit_t sl_health_circuit(const sl_upstream_health_t *h, int idx);
bool sl_health_active_down(const sl_upstream_health_t *h, int idx);

/* Milliseconds until some target may be usable again, for the Retry-After
 * header of a 503: the minimum over targets of
 *   - down by active check: the check interval, at least 1000;
 *   - circuit open: open_until - now (0 once passed: its trial is due);
 *   - half-open: 1000 (a trial is under way; its outcome is not predictable);
 *   - usable now: 0.
 * No targets: 1000. The caller rounds up to whole seconds, at least 1. */
int64_t sl_health_retry_after_ms(const sl_upstream_health_t *h, int64_t now_ms);

#endif
