/* The redis policy for fixed and sliding windows: plain commands, no script.
 *
 * A check INCRs each limit's current-window counter (count first, look
 * afterwards, as the local policy does) and, for a sliding window, GETs the
 * previous window's counter; all of a request's commands leave together, so
 * a check is one round trip. INCR is atomic: every request gets a count of
 * its own, so however many nodes check at once, at most `count` requests
 * per window are admitted. A refused request is taken back (DECR) without
 * waiting for the answer; until the take-back lands another check may count
 * it and be refused, never wrongly admitted. The request that creates a
 * counter (INCR answered 1) gives it its expiry (PEXPIRE).
 *
 * Why no script: Redis spends about as much CPU running a short Lua script
 * as on three plain commands, and Redis is the one resource every node
 * shares. The token bucket still needs one (rl_redis.h): its
 * compare-and-set cannot be split into plain commands.
 *
 * Windows follow this node's wall clock, aligned to the epoch as in the local
 * policy: nodes must keep their clocks in step (NTP); a node d ms off moves
 * into the next window d ms early or late. */
#ifndef RL_REDIS_WINDOW_H
#define RL_REDIS_WINDOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rl_algo.h"
#include "rl_conf.h"
#include "sluice/host.h"

typedef struct rl_redis_window rl_redis_window_t;

/* Runs once every reply of a check is in (or has failed). */
typedef void (*rl_window_done_cb)(sl_req_t *r, rl_redis_window_t *w, void *arg);

/* Which command a reply answers. */
typedef struct rl_window_tag {
    rl_redis_window_t *w;
    int limit;
    bool previous;   /* GET of the previous window, else INCR of the current */
} rl_window_tag_t;

/* One check in flight; lives in request memory (the callbacks point into
 * it), filled by rl_redis_window_send. */
struct rl_redis_window {
    const rl_conf_t *conf;
    int64_t now_ms;
    int waiting;                       /* replies still to come */
    bool failed;
    char why[160];                     /* the first failure */
    bool counted[RL_MAX_LIMITS];       /* INCR answered: this request is in the counter */
    bool lost[RL_MAX_LIMITS];          /* INCR sent, no answer: it may have landed */
    int64_t curr[RL_MAX_LIMITS];       /* count of the current window before this request */
    int64_t prev[RL_MAX_LIMITS];       /* sliding window: the previous window's count */
    rl_window_tag_t tags[2 * RL_MAX_LIMITS];
    rl_window_done_cb done;
    void *done_arg;
};

/* Sends the check of config c for the counters under prefix at now_us.
 * 0: done(r, w, arg) will run once; -1: nothing is in flight and done will
 * not run (w->why says why). */
int rl_redis_window_send(rl_redis_window_t *w, const rl_conf_t *c, sl_req_t *r,
                         const char *prefix, size_t prefix_len, int64_t now_us,
                         rl_window_done_cb done, void *arg);

/* From done: the verdicts into out[0 .. n_limits). Returns 1 when every
 * limit admits the request, 0 when one refuses, -1 when the check failed
 * (w->why). Sends the follow-ups, which nothing waits for: the expiry of
 * counters this request created, and the take-back of this request's
 * counts unless it was admitted (an INCR sent but not answered gets the
 * expiry and keeps its count: whether it landed is unknown). */
int rl_redis_window_finish(rl_redis_window_t *w, sl_req_t *r, const char *prefix,
                           size_t prefix_len, rl_verdict_t *out);

#endif
