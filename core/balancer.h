/* Picking a target of one upstream, per worker.
 *
 * Each worker has its own balancer per upstream: smooth weighted round robin
 * state, in-flight counts and latency averages are plain fields, not
 * thread-safe by design, so picking never contends. Which targets may be
 * picked at all comes from the shared sl_upstream_health_t.
 *
 * Strategies (sl_upstream_t.balance):
 *   round_robin  smooth weighted round robin: weights 5,1,1 give
 *                a,a,b,a,c,a,a (interleaved, not bursts);
 *   least_conn   fewest in flight relative to weight; ties by smooth weighted
 *                round robin among the tied targets;
 *   hash         consistent hashing on a ring (160 points per unit of weight,
 *                at least 2048 and at most 16384 in all, shares kept
 *                proportional to weight); an unusable target's
 *                keys walk on to the next distinct usable target, so only its
 *                keys move. A NULL key falls back to round robin;
 *   ewma         score = latency EWMA x (in flight + 1) / weight, best of two
 *                random distinct candidates when more than two are usable,
 *                else the best. A target without samples counts as good as
 *                the best one measured.
 *
 * The latency average is a "peak" EWMA with a 10 s time constant: a sample
 * above the current value replaces it at once (slowness and failures must
 * register on the first request, not after seconds of traffic), lower samples
 * blend in by elapsed time, and with no samples the value decays toward zero
 * so an abandoned target is probed again now and then. A failure counts as a
 * latency of max(its measured latency, 2 x current value clamped to
 * [1 s, 10 s]). */
#ifndef SLUICE_BALANCER_H
#define SLUICE_BALANCER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "health.h"

typedef struct sl_balancer sl_balancer_t;

/* Copies what it needs from up (up need not outlive it); health must have
 * been made from the same upstream and must outlive the balancer. A NULL
 * health admits every target (tests, or an upstream without health state).
 * NULL on a NULL up, negative n_targets, or no memory. */
sl_balancer_t *sl_balancer_new(const sl_upstream_t *up, sl_upstream_health_t *health);
void sl_balancer_free(sl_balancer_t *b);

/* Picks a target that is admitted by health and not marked in tried[] (array
 * of n_targets bools, may be NULL). Returns the index, or -1 when none is
 * usable. *trial is set when the pick is a half-open trial (and false
 * otherwise): a target whose open time has passed is taken for its trial as
 * soon as a pick meets it. hash_key may be NULL (round robin); rng may be NULL
 * (the balancer's own state is used). */
int sl_balancer_pick(sl_balancer_t *b, const char *hash_key, size_t key_len, const bool *tried,
                     int64_t now_ms, uint64_t *rng, bool *trial);

/* One more request in flight on idx. Bad idx is ignored. */
void sl_balancer_start(sl_balancer_t *b, int idx);

/* In flight -1, EWMA update, sl_health_report. latency_us is the time to the
 * response head (or to the failure). Bad idx is ignored. */
void sl_balancer_done(sl_balancer_t *b, int idx, bool success, bool was_trial, int64_t latency_us,
                      int64_t now_ms);

/* The request was abandoned before the target answered: in flight -1, no
   latency sample, no health verdict; a half-open trial goes back to the pool. */
void sl_balancer_cancel(sl_balancer_t *b, int idx, bool was_trial);

#endif
