/* ai-cost: what AI requests cost, per consumer and tenant, with budgets.
 *
 * Sits before ai-proxy in a route's chain.
 *   access: budgets apply? reserve the request's estimated cost under each
 *           (at once: the shared dict, or one Redis script) -> 429 when one
 *           has no room; the reservation is noted in the request context.
 *   log:    ai-proxy's usage -> the actual cost; add it to the totals and
 *           give the reservation back, in one step. A request that used
 *           nothing (refused later, provider failed) only gives it back.
 * With `report: true` the instance answers GET with the totals instead. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aic_conf.h"
#include "aic_cost.h"
#include "aic_host.h"
#include "aic_redis.h"
#include "aic_report.h"
#include "aic_store.h"
#include "sluice/host.h"
#include "sluice/plugin.h"

const sl_host_t *aic_host;

/* "<estimate> <unix time>": the time fixes the day and month whose records
 * hold the reservation, should the request end after midnight. */
#define RESERVED_CTX "ai-cost.reserved"

typedef struct reserve_call {
    const aic_conf_t *conf;
    aic_reservation_t res;
    time_t now;
    aic_redis_args_t args;
} reserve_call_t;

static int init(const sl_host_t *h)
{
    aic_host = h;
    return 0;
}

static void *configure(const sl_json_t *conf, char *err, size_t errlen)
{
    return aic_conf_new(conf, err, errlen);
}

static void unconfigure(void *instance) { aic_conf_free(instance); }

static const char *scope_name(aic_scope_t s) { return s == AIC_SCOPE_TENANT ? "tenant" : "consumer"; }

static const char *subject(sl_req_t *r, aic_scope_t s)
{
    size_t len = 0;
    const char *v = aic_host->ctx_get(r, s == AIC_SCOPE_TENANT ? "consumer.tenant" : "consumer", &len);
    return v && len > 0 ? v : NULL;
}

/* aic:{<scope>:<name>}:<period>, in request memory */
static const char *record_key(sl_req_t *r, aic_scope_t scope, const char *name, aic_period_t p,
                              time_t now)
{
    char period[16];
    aic_period_id(p, now, period);
    size_t n = strlen(name) + strlen(period) + 32;
    char *k = aic_host->req_alloc(r, n);
    if (k)
        snprintf(k, n, "aic:{%s:%s}:%s", scope_name(scope), name, period);
    return k;
}

static int64_t ttl_of(aic_period_t p) { return p == AIC_PERIOD_DAY ? AIC_DAY_TTL_MS : AIC_MONTH_TTL_MS; }

/* The budgets that apply to this request: those whose scope it has a name for. */
static int plan_reservation(const aic_conf_t *c, sl_req_t *r, time_t now, aic_reservation_t *res)
{
    res->n = 0;
    for (int i = 0; i < c->n_budgets; i++) {
        const aic_budget_t *b = &c->budgets[i];
        const char *name = subject(r, b->scope);
        if (!name)
            continue;
        const char *key = record_key(r, b->scope, name, b->period, now);
        if (!key)
            return -1;
        res->keys[res->n] = key;
        res->limits[res->n] = b->limit_micro;
        res->ttl_ms[res->n] = ttl_of(b->period);
        res->budget[res->n] = i;
        res->n++;
    }
    return 0;
}

static void note_reserved(sl_req_t *r, int64_t estimate, time_t now)
{
    char v[48];
    int n = snprintf(v, sizeof v, "%" PRId64 " %lld", estimate, (long long)now);
    aic_host->ctx_set(r, RESERVED_CTX, v, (size_t)n);
}

static sl_status_t refuse(sl_req_t *r, const aic_conf_t *c, const aic_reservation_t *res, int at,
                          time_t now)
{
    const aic_budget_t *b = &c->budgets[res->budget[at]];
    char limit[40], named[128] = "", message[512], retry[24];
    aic_format_usd(b->limit_micro, limit, sizeof limit);
    if (b->name)
        snprintf(named, sizeof named, " \"%s\"", b->name);
    snprintf(message, sizeof message, "budget%s exceeded: %s limit of %s USD for %s %.200s", named,
             b->period == AIC_PERIOD_DAY ? "daily" : "monthly", limit, scope_name(b->scope),
             subject(r, b->scope));
    if (aic_host->respond_error(r, 429, "budget_exceeded", message) != 0)
        return SL_ERROR;
    int n = snprintf(retry, sizeof retry, "%" PRId64, aic_seconds_left(b->period, now));
    aic_host->resp_set_header(r, "Retry-After", retry, (size_t)n);
    return SL_DONE;
}

static sl_status_t unavailable(sl_req_t *r, const char *why)
{
    aic_host->log(SL_LOG_LEVEL_WARN, "ai-cost: redis unavailable (%s); refusing budgeted requests", why);
    return aic_host->respond_error(r, 503, "budget_unavailable", "budget accounting is unavailable") == 0
               ? SL_DONE
               : SL_ERROR;
}

static void on_reserved(sl_req_t *r, void *arg, const sl_reply_t *reply, const char *err)
{
    reserve_call_t *call = arg;
    int at = err ? -2 : aic_redis_reserve_parse(reply);
    sl_status_t st;
    if (at == -2) {
        char why[160];
        snprintf(why, sizeof why, "%s", err ? err
                                            : reply && reply->type == SL_REPLY_ERROR && reply->str
                                                  ? reply->str
                                                  : "unexpected reply");
        st = unavailable(r, why);
    } else if (at >= 0) {
        st = refuse(r, call->conf, &call->res, at, call->now);
    } else {
        note_reserved(r, call->res.estimate, call->now);
        st = SL_OK;
    }
    aic_host->resume(r, st);
}

/* ---- report ------------------------------------------------------------------ */

static sl_status_t send_report(sl_req_t *r, aic_report_t *rep)
{
    size_t len = 0;
    char *json = aic_report_json(rep, &len);
    aic_report_free(rep);
    if (!json)
        return SL_ERROR;
    int rc = aic_host->respond(r, 200, "application/json", json, len);
    free(json);
    return rc == 0 ? SL_DONE : SL_ERROR;
}

static void on_report(sl_req_t *r, void *arg, const sl_reply_t *reply, const char *err)
{
    (void)arg;
    aic_report_t *rep = aic_report_new();
    int rc = !rep ? -2 : err ? -1 : aic_redis_report_parse(reply, rep);
    if (rc != 0) {
        aic_report_free(rep);
        aic_host->resume(r, rc == -2 ? SL_ERROR : unavailable(r, err ? err : "unexpected reply"));
        return;
    }
    aic_host->resume(r, send_report(r, rep));
}

static sl_status_t report(const aic_conf_t *c, sl_req_t *r)
{
    size_t mlen = 0;
    const char *method = aic_host->req_method(r, &mlen);
    if (mlen != 3 || memcmp(method, "GET", 3) != 0) {
        if (aic_host->respond_error(r, 405, "method_not_allowed", "the cost report answers GET only") != 0)
            return SL_ERROR;
        aic_host->resp_set_header(r, "Allow", "GET", 3);
        return SL_DONE;
    }
    if (c->policy == AIC_POLICY_REDIS) {
        const char *key = AIC_REDIS_INDEX;
        size_t klen = strlen(key);
        if (aic_host->redis_eval(r, aic_redis_report_script, 1, 1, &key, &klen, on_report, NULL) != 0)
            return unavailable(r, "could not send the command");
        return SL_YIELD;
    }
    aic_report_t *rep = aic_report_new();
    if (!rep || aic_local_report(rep) != 0) {
        aic_report_free(rep);
        return SL_ERROR;
    }
    return send_report(r, rep);
}

/* ---- phases ------------------------------------------------------------------ */

static const char *body_model(sl_req_t *r, const char *body, size_t len)
{
    sl_json_t *doc = len ? aic_host->json_parse(body, len, NULL, 0) : NULL;
    const char *model = NULL;
    size_t mlen = 0;
    const char *m = doc ? aic_host->json_string(aic_host->json_get(doc, "model"), &mlen) : NULL;
    if (m) {
        char *copy = aic_host->req_alloc(r, mlen + 1);
        if (copy)
            memcpy(copy, m, mlen);
        model = copy;
    }
    if (doc)
        aic_host->json_free(doc);
    return model;
}

static sl_status_t access_phase(void *instance, sl_req_t *r)
{
    const aic_conf_t *c = instance;
    if (c->report)
        return report(c, r);
    if (c->n_budgets == 0)
        return SL_OK;
    reserve_call_t *call = aic_host->req_alloc(r, sizeof *call);
    if (!call)
        return SL_ERROR;
    call->conf = c;
    call->now = time(NULL);
    if (plan_reservation(c, r, call->now, &call->res) != 0)
        return SL_ERROR;
    if (call->res.n == 0)
        return SL_OK;
    size_t blen = 0;
    const char *body = aic_host->req_body(r, &blen);
    const aic_price_t *price = aic_price_of(c, body_model(r, body, blen));
    call->res.estimate = aic_estimate(c, price, body, blen);
    if (c->policy == AIC_POLICY_LOCAL) {
        int at = aic_local_reserve(&call->res);
        if (at >= 0)
            return refuse(r, c, &call->res, at, call->now);
        note_reserved(r, call->res.estimate, call->now);
        return SL_OK;
    }
    aic_redis_reserve_args(&call->res, &call->args);
    if (aic_host->redis_eval(r, aic_redis_reserve_script, call->args.nkeys, call->args.argc,
                             call->args.argv, call->args.lens, on_reserved, call) != 0)
        return unavailable(r, "could not send the command");
    return SL_YIELD;
}

static int64_t ctx_number(sl_req_t *r, const char *key, int *found)
{
    const char *v = aic_host->ctx_get(r, key, NULL);
    if (!v)
        return 0;
    char *end = NULL;
    long long n = strtoll(v, &end, 10);
    if (end == v || n < 0)
        return 0;
    *found = 1;
    return n;
}

/* Once per model and process, so a busy unpriced model does not flood the log. */
static void warn_unpriced(const char *model)
{
    size_t n = strlen(model) + 16;
    char *key = malloc(n);
    int64_t seen = 0;
    if (!key)
        return;
    snprintf(key, n, "aic:warned:%s", model);
    if (aic_host->shared_incr(AIC_DICT, key, 1, 0, 0, &seen) == 0 && seen == 1)
        aic_host->log(SL_LOG_LEVEL_WARN, "ai-cost: model \"%s\" has no price; counting its tokens only",
                      model);
    free(key);
}

static int budget_on(const aic_conf_t *c, aic_scope_t s, aic_period_t p)
{
    for (int i = 0; i < c->n_budgets; i++)
        if (c->budgets[i].scope == s && c->budgets[i].period == p)
            return 1;
    return 0;
}

static void settled(sl_req_t *r, void *arg, const sl_reply_t *reply, const char *err)
{
    (void)r, (void)arg, (void)reply, (void)err;
}

static void settle(sl_req_t *r, const aic_settlement_t *s, aic_policy_t policy)
{
    if (policy == AIC_POLICY_LOCAL) {
        aic_local_settle(s);
        return;
    }
    /* The request is freed right after the log phase, which drops the
     * reply (and with it EVALSHA's NOSCRIPT fallback): plain EVAL always
     * runs, and the command is on its way before the request goes. */
    aic_redis_args_t *a = aic_host->req_alloc(r, sizeof *a);
    if (!a)
        return;
    aic_redis_settle_args(s, a);
    if (aic_host->redis_call(r, a->argc, a->argv, a->lens, settled, NULL) != 0)
        aic_host->log(SL_LOG_LEVEL_WARN, "ai-cost: could not send the settlement to redis; "
                      "a reservation stays until its record expires");
}

static void log_phase(void *instance, sl_req_t *r)
{
    const aic_conf_t *c = instance;
    if (c->report)
        return;
    int used = 0, reserved = 0;
    aic_settlement_t s = {0};
    s.usage.prompt = ctx_number(r, "ai.usage.prompt_tokens", &used);
    s.usage.completion = ctx_number(r, "ai.usage.completion_tokens", &used);
    s.usage.cached = ctx_number(r, "ai.usage.cached_tokens", &used);
    int64_t estimate = 0;
    time_t when = time(NULL);
    const char *note = aic_host->ctx_get(r, RESERVED_CTX, NULL);
    long long est = 0, at = 0;
    if (note && sscanf(note, "%lld %lld", &est, &at) == 2) {
        reserved = 1;
        estimate = est;
        when = (time_t)at;
    }
    if (!used && !reserved)
        return;
    if (used) {
        const char *model = aic_host->ctx_get(r, "ai.model", NULL);
        const char *alias = aic_host->ctx_get(r, "ai.alias", NULL);
        const aic_price_t *price = aic_price_of(c, model);
        if (!price)
            price = aic_price_of(c, alias);
        s.model = model ? model : alias ? alias : "unknown";
        if (price)
            s.actual = aic_cost(price, &s.usage);
        else
            warn_unpriced(s.model);
    }
    for (int sc = AIC_SCOPE_CONSUMER; sc <= AIC_SCOPE_TENANT; sc++) {
        const char *name = subject(r, (aic_scope_t)sc);
        for (int p = AIC_PERIOD_DAY; name && p <= AIC_PERIOD_MONTH; p++) {
            const char *key = record_key(r, (aic_scope_t)sc, name, (aic_period_t)p, when);
            if (!key)
                return;
            s.keys[s.n] = key;
            s.ttl_ms[s.n] = ttl_of((aic_period_t)p);
            s.is_day[s.n] = p == AIC_PERIOD_DAY;
            s.release[s.n] = reserved && budget_on(c, (aic_scope_t)sc, (aic_period_t)p) ? estimate : 0;
            s.n++;
        }
    }
    if (s.n > 0)
        settle(r, &s, c->policy);
}

static const sl_plugin_desc_t desc = {
    .abi_major = SLUICE_ABI_MAJOR,
    .abi_minor = SLUICE_ABI_MINOR,
    .name = "ai-cost",
    .version = "1.0.0",
    .phases = SL_PHASE_ACCESS | SL_PHASE_LOG,
    .schema = aic_conf_schema,
    .init = init,
    .configure = configure,
    .unconfigure = unconfigure,
    .access = access_phase,
    .log = log_phase,
};

__attribute__((visibility("default"))) const sl_plugin_desc_t *SLUICE_PLUGIN_ENTRY(void)
{
    return &desc;
}
