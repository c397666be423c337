/* A runtime snapshot: one validated config plus everything compiled from it
 * (router, per-upstream health shared by all workers, per-worker balancers,
 * upstream TLS contexts). Reference counted: each worker holds one reference
 * to the snapshot it serves new requests with, and each request holds one to
 * the snapshot it started on, so a reload never pulls state from under a
 * request in flight. */
#ifndef SLUICE_SNAPSHOT_H
#define SLUICE_SNAPSHOT_H

#include <openssl/ssl.h>
#include <stdatomic.h>

#include "balancer.h"
#include "config.h"
#include "health.h"
#include "plugin.h"
#include "retry.h"
#include "router.h"

/* What every request to one target uses unchanged, formatted once per
 * snapshot instead of once per request. */
typedef struct sl_target_rt {
    char *pool_key;                 /* keep-alive pool: scheme, host, port and TLS context */
    char *authority;                /* Host for the target: host[:port], no default port */
    size_t authority_len;
} sl_target_rt_t;

typedef struct sl_upstream_rt {
    const sl_upstream_t *conf;
    sl_target_rt_t *targets;        /* parallel to conf->targets */
    sl_upstream_health_t *health;   /* shared by every worker */
    sl_balancer_t **balancers;      /* [n_workers], each used by one worker only */
    sl_retry_budget_t *budgets;     /* [n_workers] */
    SSL_CTX *ssl_ctx;               /* client context when any target is https */
} sl_upstream_rt_t;

typedef struct sl_snapshot {
    atomic_int refs;
    unsigned generation;
    sl_config_t *cfg;
    sl_router_t *router;
    sl_upstream_rt_t *upstreams;    /* parallel to cfg->upstreams */
    int n_workers;
    struct sl_access_log *alog;     /* reopened on every reload (log rotation) */
    sl_plugins_t *plugins;          /* instances and per-route chains */
    int *inflight;                  /* [n_workers]: requests of worker w on this snapshot;
                                       each entry touched by its worker only */
} sl_snapshot_t;

/* Takes ownership of cfg's reference. NULL with errs filled on failure. */
sl_snapshot_t *sl_snapshot_build(sl_config_t *cfg, int n_workers, unsigned generation,
                                 sl_errors_t *errs);
sl_snapshot_t *sl_snapshot_ref(sl_snapshot_t *s);
void sl_snapshot_unref(sl_snapshot_t *s);

#endif
