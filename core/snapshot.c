#include "snapshot.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "access_log.h"
#include "upstream_tls.h"

static void upstream_rt_free(sl_upstream_rt_t *u, int n_workers)
{
    if (u->targets) {
        for (int t = 0; u->conf && t < u->conf->n_targets; t++) {
            free(u->targets[t].pool_key);
            free(u->targets[t].authority);
        }
        free(u->targets);
    }
    if (u->balancers) {
        for (int w = 0; w < n_workers; w++)
            if (u->balancers[w])
                sl_balancer_free(u->balancers[w]);
        free(u->balancers);
    }
    free(u->budgets);
    if (u->health)
        sl_health_free(u->health);
    if (u->ssl_ctx)
        SSL_CTX_free(u->ssl_ctx);
}

/* The Host a target gets: its name ("host:port", as config_target.c made
 * it) without a port that is its scheme's default. */
static char *authority_of(const sl_target_t *t)
{
    bool default_port = (t->tls && t->port == 443) || (!t->tls && t->port == 80);
    if (!default_port)
        return strdup(t->name);
    char *out;
    return asprintf(&out, strchr(t->host, ':') ? "[%s]" : "%s", t->host) < 0 ? NULL : out;
}

static int targets_rt_init(sl_upstream_rt_t *u)
{
    const sl_upstream_t *conf = u->conf;
    if (!(u->targets = calloc((size_t)conf->n_targets + 1, sizeof *u->targets)))
        return -1;
    for (int i = 0; i < conf->n_targets; i++) {
        const sl_target_t *t = &conf->targets[i];
        sl_target_rt_t *rt = &u->targets[i];
        if (asprintf(&rt->pool_key, "%s|%s|%d|%p", t->tls ? "https" : "http", t->host, t->port,
                     t->tls ? (void *)u->ssl_ctx : NULL) < 0)
            rt->pool_key = NULL;
        rt->authority = authority_of(t);
        if (!rt->pool_key || !rt->authority)
            return -1;
        rt->authority_len = strlen(rt->authority);
    }
    return 0;
}

static int upstream_rt_init(sl_upstream_rt_t *u, const sl_upstream_t *conf, int n_workers,
                            sl_errors_t *errs)
{
    u->conf = conf;
    u->health = sl_health_new(conf);
    u->balancers = calloc((size_t)n_workers, sizeof *u->balancers);
    u->budgets = calloc((size_t)n_workers, sizeof *u->budgets);
    if (!u->health || !u->balancers || !u->budgets)
        return -1;
    for (int w = 0; w < n_workers; w++) {
        if (!(u->balancers[w] = sl_balancer_new(conf, u->health)))
            return -1;
        sl_retry_budget_init(&u->budgets[w]);
    }
    bool any_tls = false;
    for (int t = 0; t < conf->n_targets; t++)
        any_tls |= conf->targets[t].tls;
    if (any_tls && !(u->ssl_ctx = sl_upstream_tls_ctx(conf, errs)))
        return -1;
    return targets_rt_init(u);
}

sl_snapshot_t *sl_snapshot_build(sl_config_t *cfg, int n_workers, unsigned generation,
                                 sl_errors_t *errs)
{
    sl_snapshot_t *s = calloc(1, sizeof *s);
    if (!s) {
        sl_config_unref(cfg);
        return NULL;
    }
    atomic_init(&s->refs, 1);
    s->generation = generation;
    s->cfg = cfg;
    s->n_workers = n_workers;
    s->router = sl_router_build(cfg, errs);
    s->upstreams = calloc((size_t)cfg->n_upstreams + 1, sizeof *s->upstreams);
    s->inflight = calloc((size_t)n_workers, sizeof *s->inflight);
    if (!s->router || !s->upstreams || !s->inflight)
        goto fail;
    if (!(s->plugins = sl_plugins_build(cfg, n_workers, errs)))
        goto fail;
    char err[512];
    if (!(s->alog = sl_access_log_open(cfg->log.access ? cfg->log.access : "stdout", err,
                                       sizeof err))) {
        sl_errors_add(errs, "%s: log.access: %s", cfg->path ? cfg->path : "config", err);
        goto fail;
    }
    for (int i = 0; i < cfg->n_upstreams; i++) {
        if (upstream_rt_init(&s->upstreams[i], &cfg->upstreams[i], n_workers, errs) != 0) {
            if (errs->n == 0)
                sl_errors_add(errs, "upstream %s: out of memory", cfg->upstreams[i].name);
            goto fail;
        }
    }
    return s;
fail:
    sl_snapshot_unref(s);
    return NULL;
}

sl_snapshot_t *sl_snapshot_ref(sl_snapshot_t *s)
{
    atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
    return s;
}

void sl_snapshot_unref(sl_snapshot_t *s)
{
    if (!s || atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
        return;
    if (s->upstreams) {
        for (int i = 0; i < s->cfg->n_upstreams; i++)
            upstream_rt_free(&s->upstreams[i], s->n_workers);
        free(s->upstreams);
    }
    if (s->router)
        sl_router_free(s->router);
    if (s->alog)
        sl_access_log_close(s->alog);
    sl_plugins_free(s->plugins);
    free(s->inflight);
    sl_config_unref(s->cfg);
    free(s);
}
