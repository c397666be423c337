/* rate-limit: admits at most `count` requests per `window` for each client
 * key, under several limits at once, counting either in this process (the
 * shared dict) or in Redis for all nodes. Over the limit the client gets 429
 * at once, or (mode delay) the request waits until it fits.
 *
 * A request's way through access():
 *   check ──(redis)──> counter replies / script reply ─┐
 *     │                  error ──> on_redis_error: allow | deny (503) | local
 *     └──(local)───────────────────────────────────────┴─> all allowed: headers, go on
 *                                  refused: delay fits? sleep, check again
 *                                           else 429
 * Every redis check is one round trip (plain commands for the windows,
 * rl_redis_window.h; a script for the token bucket, rl_redis.h); a delayed
 * request checks again only after sleeping until it could fit. */
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "rl_answer.h"
#include "rl_conf.h"
#include "rl_host.h"
#include "rl_key.h"
#include "rl_local.h"
#include "rl_redis.h"
#include "rl_redis_window.h"
#include "sluice/host.h"
#include "sluice/plugin.h"

const sl_host_t *rl_host;

/* One request's progress while it waits (for Redis, or in delay mode for
 * room), in request memory: freed with the request, also when the client
 * leaves while a call is pending. A local check in reject mode never waits
 * and needs none of this. */
typedef struct rl_call {
    const rl_conf_t *conf;
    int64_t deadline_ms;           /* delay mode: monotonic time the waiting must end by */
    rl_verdict_t verdicts[RL_MAX_LIMITS];
    rl_redis_window_t window;      /* redis policy, fixed or sliding window */
    size_t prefix_len;
    char prefix[];
} rl_call_t;

/* Whether the last redis check failed, across all instances: the log says
 * when Redis goes away and when it comes back, not once per request. */
static atomic_int redis_failing;

static int init(const sl_host_t *h)
{
    rl_host = h;
    return 0;
}

static void *configure(const sl_json_t *conf, char *err, size_t errlen)
{
    return rl_conf_new(conf, err, errlen);
}

static void unconfigure(void *instance)
{
    rl_conf_free(instance);
}

static const char *requires_capability(void *instance)
{
    return rl_conf_requires(instance);
}

static int64_t wall_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static sl_status_t check(rl_call_t *call, sl_req_t *r);

static void after_delay(sl_req_t *r, void *arg)
{
    sl_status_t st = check(arg, r);
    if (st != SL_YIELD)
        rl_host->resume(r, st);
}

/* The verdicts are in: go on, wait, or refuse. */
static sl_status_t conclude(rl_call_t *call, sl_req_t *r, int all_allowed)
{
    const rl_conf_t *c = call->conf;
    if (all_allowed) {
        rl_set_headers(r, c, call->verdicts);
        return SL_OK;
    }
    if (c->mode == RL_MODE_DELAY) {
        int64_t wait = call->verdicts[rl_tightest(call->verdicts, c->n_limits)].retry_ms;
        if (monotonic_ms() + wait <= call->deadline_ms &&
            rl_host->sleep(r, (uint64_t)wait, after_delay, call) == 0)
            return SL_YIELD;
    }
    return rl_answer_limited(r, c, call->verdicts);
}

static sl_status_t check_locally(rl_call_t *call, sl_req_t *r)
{
    int all = rl_local_check(call->conf, call->prefix, wall_now_us(), call->verdicts);
    return conclude(call, r, all);
}

static sl_status_t redis_failed(rl_call_t *call, sl_req_t *r, const char *why)
{
    static const char *const names[] = {"allow", "deny", "local"};
    if (atomic_exchange(&redis_failing, 1) == 0)
        rl_host->log(SL_LOG_LEVEL_WARN, "rate-limit: redis unavailable (%s); on_redis_error: %s",
                     why, names[call->conf->on_redis_error]);
    switch (call->conf->on_redis_error) {
    case RL_ON_ERROR_DENY: return rl_answer_unavailable(r);
    case RL_ON_ERROR_LOCAL: return check_locally(call, r);
    case RL_ON_ERROR_ALLOW:
    default: return SL_OK;
    }
}

/* A Redis check's outcome: all (1 admitted, 0 refused) or -1 with why. */
static sl_status_t redis_answered(rl_call_t *call, sl_req_t *r, int all, const char *why)
{
    if (all < 0)
        return redis_failed(call, r, why);
    if (atomic_exchange(&redis_failing, 0) == 1)
        rl_host->log(SL_LOG_LEVEL_INFO, "rate-limit: redis answers again");
    return conclude(call, r, all);
}

static void on_script_reply(sl_req_t *r, void *arg, const sl_reply_t *reply, const char *err)
{
    rl_call_t *call = arg;
    char why[256];
    int all = err ? -1 : rl_redis_parse(reply, call->conf->n_limits, call->verdicts, why, sizeof why);
    sl_status_t st = redis_answered(call, r, all, err ? err : why);
    if (st != SL_YIELD)
        rl_host->resume(r, st);
}

static void on_window_done(sl_req_t *r, rl_redis_window_t *w, void *arg)
{
    rl_call_t *call = arg;
    int all = rl_redis_window_finish(w, r, call->prefix, call->prefix_len, call->verdicts);
    sl_status_t st = redis_answered(call, r, all, w->why);
    if (st != SL_YIELD)
        rl_host->resume(r, st);
}

static sl_status_t check(rl_call_t *call, sl_req_t *r)
{
    const rl_conf_t *c = call->conf;
    if (c->policy == RL_POLICY_LOCAL)
        return check_locally(call, r);
    if (c->algorithm != RL_TOKEN_BUCKET) {
        if (rl_redis_window_send(&call->window, c, r, call->prefix, call->prefix_len,
                                 wall_now_us(), on_window_done, call) != 0)
            return redis_failed(call, r, call->window.why);
        return SL_YIELD;
    }
    /* The client copies the arguments, so they may live on the stack. */
    rl_redis_args_t args;
    rl_redis_args(c, call->prefix, call->prefix_len, &args);
    if (rl_host->redis_eval(r, rl_redis_script, 1, args.argc, args.argv, args.lens,
                            on_script_reply, call) != 0)
        return redis_failed(call, r, "could not send the command");
    return SL_YIELD;
}

static sl_status_t access_phase(void *instance, sl_req_t *r)
{
    const rl_conf_t *c = instance;
    char prefix[RL_PREFIX_MAX + 1];
    size_t prefix_len = rl_key_prefix(c, r, prefix);
    if (c->policy == RL_POLICY_LOCAL && c->mode == RL_MODE_REJECT) {
        rl_verdict_t verdicts[RL_MAX_LIMITS];
        if (!rl_local_check(c, prefix, wall_now_us(), verdicts))
            return rl_answer_limited(r, c, verdicts);
        rl_set_headers(r, c, verdicts);
        return SL_OK;
    }
    rl_call_t *call = rl_host->req_alloc(r, sizeof *call + prefix_len + 1);
    if (!call)
        return SL_ERROR;
    call->conf = c;
    if (c->mode == RL_MODE_DELAY)
        call->deadline_ms = monotonic_ms() + c->max_delay_ms;
    call->prefix_len = prefix_len;
    memcpy(call->prefix, prefix, prefix_len + 1);
    return check(call, r);
}

static const sl_plugin_desc_t desc = {
    .abi_major = SLUICE_ABI_MAJOR,
    .abi_minor = SLUICE_ABI_MINOR,
    .name = "rate-limit",
    .version = "1.0.0",
    .phases = SL_PHASE_ACCESS,
    .schema = rl_conf_schema,
    .init = init,
    .configure = configure,
    .requires = requires_capability,
    .unconfigure = unconfigure,
    .access = access_phase,
};

__attribute__((visibility("default"))) const sl_plugin_desc_t *SLUICE_PLUGIN_ENTRY(void)
{
    return &desc;
}
