/* ai-token-limit: a budget of LLM tokens per consumer, tenant and/or route,
 * over one or more windows, counted in this process or in Redis for all
 * nodes.
 *
 * The tokens a request uses are only known after the provider answered
 * (for streams: at its end), so a request reserves an estimate first and
 * the log phase corrects it:
 *
 *   access:  estimate = ceil(prompt chars / 4) + max_tokens
 *            reserve it in every window at once ── all fit ──> go on (ai-proxy answers)
 *                                                └─ one does not ──> 429, nothing kept
 *   log:     add (prompt + completion tokens from ai-proxy) - estimate,
 *            or give the whole estimate back when there is no usage
 *
 * The reservation is remembered in the instance's request slot
 * (atl_request_t, host->req_slot). */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "atl_answer.h"
#include "atl_conf.h"
#include "atl_estimate.h"
#include "atl_host.h"
#include "atl_key.h"
#include "atl_local.h"
#include "atl_redis.h"
#include "sluice/host.h"
#include "sluice/plugin.h"

const sl_host_t *atl_host;

typedef struct atl_call {
    const atl_conf_t *conf;
    char *prefix;
    int64_t estimate;
    atl_redis_args_t args;
} atl_call_t;

/* Whether the last Redis call failed, across instances: the log says when
 * Redis goes away and when it is back, not once per request. */
static atomic_int redis_failing;

static int init(const sl_host_t *h)
{
    atl_host = h;
    return 0;
}

static void *configure(const sl_json_t *conf, char *err, size_t errlen)
{
    return atl_conf_new(conf, err, errlen);
}

static void unconfigure(void *instance) { free(instance); }

static const char *requires_capability(void *instance) { return atl_conf_requires(instance); }

static int64_t wall_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* store: 'L' local, 'R' redis -- where the log phase must correct. */
static sl_status_t conclude(atl_call_t *call, sl_req_t *r, const atl_verdict_t *v, char store)
{
    if (v->refused >= 0)
        return atl_answer_exceeded(r, call->conf, v);
    atl_request_t *q = atl_request(r, call->conf, 1);
    if (!q)
        return SL_ERROR;
    q->estimate = call->estimate;
    q->at_ms = v->at_ms;
    q->store = store;
    atl_note_headers(r, call->conf, v);
    return SL_OK;
}

static sl_status_t reserve_locally(atl_call_t *call, sl_req_t *r)
{
    atl_verdict_t v;
    if (atl_local_reserve(call->conf, call->prefix, call->estimate, wall_now_ms(), &v) != 0) {
        atl_host->log(SL_LOG_LEVEL_ERROR, "ai-token-limit: the shared dict %s refused a counter", ATL_DICT);
        return SL_ERROR;
    }
    return conclude(call, r, &v, 'L');
}

static sl_status_t redis_failed(atl_call_t *call, sl_req_t *r, const char *why)
{
    static const char *const names[] = {"allow", "deny", "local"};
    if (atomic_exchange(&redis_failing, 1) == 0)
        atl_host->log(SL_LOG_LEVEL_WARN, "ai-token-limit: redis unavailable (%s); on_redis_error: %s", why,
                      names[call->conf->on_redis_error]);
    switch (call->conf->on_redis_error) {
    case ATL_ON_ERROR_DENY: return atl_answer_unavailable(r);
    case ATL_ON_ERROR_LOCAL: return reserve_locally(call, r);
    case ATL_ON_ERROR_ALLOW:
    default: return SL_OK;
    }
}

static void on_reserved(sl_req_t *r, void *arg, const sl_reply_t *reply, const char *err)
{
    atl_call_t *call = arg;
    atl_verdict_t v;
    char why[256];
    sl_status_t st;
    if (err || atl_redis_parse(reply, call->conf, call->estimate, &v, why, sizeof why) != 0) {
        st = redis_failed(call, r, err ? err : why);
    } else {
        if (atomic_exchange(&redis_failing, 0) == 1)
            atl_host->log(SL_LOG_LEVEL_INFO, "ai-token-limit: redis answers again");
        st = conclude(call, r, &v, 'R');
    }
    atl_host->resume(r, st);
}

static sl_status_t access_phase(void *instance, sl_req_t *r)
{
    atl_call_t *call = atl_host->req_alloc(r, sizeof *call);
    if (!call)
        return SL_ERROR;
    call->conf = instance;
    if (!(call->prefix = atl_key_prefix(call->conf, r)))
        return SL_ERROR;
    size_t len = 0;
    const char *body = atl_host->req_body(r, &len);
    call->estimate = atl_estimate(body, len, call->conf->estimate_max_tokens_default);
    if (call->conf->policy == ATL_POLICY_LOCAL)
        return reserve_locally(call, r);
    atl_redis_reserve_args(call->conf, call->prefix, call->estimate, &call->args);
    if (atl_host->redis_eval(r, atl_redis_reserve_script, 1, call->args.argc, call->args.argv, call->args.lens,
                             on_reserved, call) != 0)
        return redis_failed(call, r, "could not send the command");
    return SL_YIELD;
}

static sl_status_t header_filter(void *instance, sl_req_t *r)
{
    atl_send_headers(r, instance);
    return SL_OK;
}

/* A usage count from ai-proxy, or -1 when it did not set one. */
static int64_t usage(sl_req_t *r, const char *key)
{
    size_t len = 0;
    const char *v = atl_host->ctx_get(r, key, &len);
    if (!v || len == 0 || len > 18)
        return -1;
    int64_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        n = n * 10 + (v[i] - '0');
    }
    return n;
}

static void ignore_reply(sl_req_t *r, void *arg, const sl_reply_t *reply, const char *err)
{
    (void)r; (void)arg; (void)reply; (void)err;
}

/* Fire and forget: the request ends right after the log phase, which
 * cancels only our callback; the command is already on its way. */
static void correct_in_redis(const atl_conf_t *c, sl_req_t *r, const char *prefix, int64_t delta, int64_t at_ms)
{
    const char *argv[4 + ATL_MAX_LIMITS];
    size_t lens[4 + ATL_MAX_LIMITS];
    char nkeys[8], number[24];
    size_t cap = strlen(prefix) + 48;
    char *keys = atl_host->req_alloc(r, cap * (size_t)c->n_limits);
    if (!keys)
        return;
    argv[0] = "EVAL";
    argv[1] = atl_redis_correct_script;
    argv[2] = nkeys;
    snprintf(nkeys, sizeof nkeys, "%d", c->n_limits);
    for (int i = 0; i < c->n_limits; i++) {
        char *key = keys + cap * (size_t)i;
        const atl_limit_t *l = &c->limits[i];
        atl_key_counter(prefix, l->window_ms, atl_window_start(at_ms, l->window_ms), key, cap);
        argv[3 + i] = key;
    }
    snprintf(number, sizeof number, "%lld", (long long)delta);
    argv[3 + c->n_limits] = number;
    int argc = 4 + c->n_limits;
    for (int i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    if (atl_host->redis_call(r, argc, argv, lens, ignore_reply, NULL) != 0)
        atl_host->log(SL_LOG_LEVEL_WARN, "ai-token-limit: could not send a correction of %lld tokens to redis",
                      (long long)delta);
}

static void log_phase(void *instance, sl_req_t *r)
{
    const atl_conf_t *c = instance;
    const atl_request_t *q = atl_request(r, c, 0);
    if (!q || !q->store)
        return;
    int64_t estimate = q->estimate, at_ms = q->at_ms;
    char store = q->store;
    int64_t prompt = usage(r, "ai.usage.prompt_tokens"), completion = usage(r, "ai.usage.completion_tokens");
    int64_t actual = prompt >= 0 && completion >= 0 ? prompt + completion : 0;
    int64_t delta = actual - estimate;
    char *prefix = delta != 0 ? atl_key_prefix(c, r) : NULL;
    if (!prefix)
        return;
    if (store == 'L')
        atl_local_correct(c, prefix, delta, at_ms, wall_now_ms());
    else
        correct_in_redis(c, r, prefix, delta, at_ms);
}

static const sl_plugin_desc_t desc = {
    .abi_major = SLUICE_ABI_MAJOR,
    .abi_minor = SLUICE_ABI_MINOR,
    .name = "ai-token-limit",
    .version = "1.0.0",
    .phases = SL_PHASE_ACCESS | SL_PHASE_HEADER_FILTER | SL_PHASE_LOG,
    .schema = atl_conf_schema,
    .init = init,
    .configure = configure,
    .requires = requires_capability,
    .unconfigure = unconfigure,
    .access = access_phase,
    .header_filter = header_filter,
    .log = log_phase,
};

__attribute__((visibility("default"))) const sl_plugin_desc_t *SLUICE_PLUGIN_ENTRY(void)
{
    return &desc;
}
