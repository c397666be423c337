/* sluice: the command line, process start-up, signals and reloads.
 *
 *   sluice -c FILE           run in the foreground
 *   sluice check -c FILE     validate FILE, print every error, exit 1 if any
 *   sluice version
 */
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "health_check.h"
#include "host.h"
#include "http_client.h"
#include "plugin.h"
#include "redis_probe.h"
#include "log.h"
#include "metrics.h"
#include "shdict.h"
#include "snapshot.h"
#include "worker.h"

typedef struct sl_main {
    const char *config_path;
    struct event_base *base;
    struct evdns_base *dns;
    sl_snapshot_t *snap;
    sl_worker_t *workers;
    int n_workers;
    sl_checker_t *checker;
    unsigned generation;
    bool stopping;
} sl_main_t;

static void usage(FILE *f)
{
    fprintf(f, "usage: sluice -c FILE          run the gateway\n"
               "       sluice check -c FILE    validate a config file\n"
               "       sluice version\n");
}

static void print_errors(const sl_errors_t *errs, const char *prefix)
{
    for (int i = 0; i < errs->n; i++)
        fprintf(stderr, "%s%s\n", prefix, errs->items[i]);
}

/* evhtp would only log a TLS file problem at accept time; load the pair
 * up front so a bad certificate is a config error with the file named. */
static void check_listener_tls(const sl_config_t *cfg, sl_errors_t *errs)
{
    for (int i = 0; i < cfg->n_listens; i++) {
        const sl_listen_t *l = &cfg->listens[i];
        if (!l->tls_cert)
            continue;
        SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
        if (!ctx)
            continue;
        if (SSL_CTX_use_certificate_chain_file(ctx, l->tls_cert) != 1)
            sl_errors_add(errs, "%s: listen[%d].tls.cert: cannot load certificate %s", cfg->path, i,
                          l->tls_cert);
        else if (SSL_CTX_use_PrivateKey_file(ctx, l->tls_key, SSL_FILETYPE_PEM) != 1)
            sl_errors_add(errs, "%s: listen[%d].tls.key: cannot load private key %s", cfg->path, i,
                          l->tls_key);
        else if (SSL_CTX_check_private_key(ctx) != 1)
            sl_errors_add(errs, "%s: listen[%d].tls.key: the key does not match the certificate",
                          cfg->path, i);
        ERR_clear_error();
        SSL_CTX_free(ctx);
    }
}

/* Loads, validates and compiles a config. NULL with errs filled on failure. */
static sl_snapshot_t *load_snapshot(const char *path, int n_workers, unsigned generation,
                                    sl_errors_t *errs)
{
    sl_config_t *cfg = sl_config_load(path, errs);
    if (!cfg)
        return NULL;
    check_listener_tls(cfg, errs);
    if (errs->n > 0) {
        sl_config_unref(cfg);
        return NULL;
    }
    return sl_snapshot_build(cfg, n_workers, generation, errs);
}

/* Redis being down is not a config error (each policy's on_redis_error
 * decides), but the operator should hear about it at once. */
static void report_redis(const sl_config_t *cfg, bool to_stderr)
{
    if (!cfg->redis.enabled)
        return;
    char why[256];
    if (sl_redis_probe(&cfg->redis, why, sizeof why) == 0) {
        if (!to_stderr)
            sl_info("redis %s:%d: reachable", cfg->redis.host, cfg->redis.port);
        return;
    }
    if (to_stderr)
        fprintf(stderr, "warning: redis %s:%d is configured but unreachable (%s); policies will "
                        "follow their on_redis_error setting\n",
                cfg->redis.host, cfg->redis.port, why);
    else
        sl_warn("redis %s:%d is configured but unreachable (%s); policies follow their "
                "on_redis_error setting until it answers",
                cfg->redis.host, cfg->redis.port, why);
}

/* Plugins are loaded while a snapshot is built, so the plugin host must
 * know the worker count first: read it from the file before the real load. */
static int workers_in(const char *path)
{
    sl_errors_t errs = { 0 };
    sl_config_t *cfg = sl_config_load(path, &errs);
    int n = cfg ? cfg->workers : 1;
    sl_config_unref(cfg);
    sl_errors_free(&errs);
    return n > 0 ? n : 1;
}

static int cmd_check(const char *path)
{
    sl_errors_t errs = { 0 };
    if (sl_plugins_global_init(sl_host_table(), 1, NULL) != 0) {
        fprintf(stderr, "sluice: cannot initialise the plugin host\n");
        return 1;
    }
    sl_snapshot_t *s = load_snapshot(path, 1, 1, &errs);
    if (!s) {
        print_errors(&errs, "");
        sl_errors_free(&errs);
        sl_plugins_global_shutdown();
        return 1;
    }
    report_redis(s->cfg, true);
    printf("%s: ok\n", path);
    sl_snapshot_unref(s);
    sl_errors_free(&errs);
    sl_plugins_global_shutdown();
    return 0;
}

static bool same_listeners(const sl_config_t *a, const sl_config_t *b)
{
    if (a->n_listens != b->n_listens)
        return false;
    for (int i = 0; i < a->n_listens; i++) {
        const sl_listen_t *x = &a->listens[i], *y = &b->listens[i];
        if (x->port != y->port || strcmp(x->host, y->host) != 0 || !x->tls_cert != !y->tls_cert)
            return false;
    }
    return true;
}

static void apply_log_level(const sl_config_t *cfg)
{
    sl_log_level_t level = SL_LOG_INFO;
    if (cfg->log.level)
        sl_log_level_from_name(cfg->log.level, &level);
    sl_log_set_level(level);
}

static void reload(sl_main_t *m)
{
    sl_errors_t errs = { 0 };
    sl_snapshot_t *s = load_snapshot(m->config_path, m->n_workers, m->generation + 1, &errs);
    if (!s) {
        sl_error("reload failed: %s is not valid; still serving the previous config",
                 m->config_path);
        print_errors(&errs, "  ");
        sl_errors_free(&errs);
        return;
    }
    sl_errors_free(&errs);
    if (!same_listeners(m->snap->cfg, s->cfg))
        sl_warn("reload: changes to `listen` take effect only after a restart");
    if (s->cfg->workers != m->snap->cfg->workers)
        sl_warn("reload: changes to `workers` take effect only after a restart");
    m->generation++;
    apply_log_level(s->cfg);
    for (int i = 0; i < m->n_workers; i++)
        sl_worker_offer_snapshot(&m->workers[i], s);
    sl_checker_stop(m->checker);
    m->checker = sl_checker_start(m->base, m->dns, s);
    sl_snapshot_unref(m->snap);
    m->snap = s;
    sl_info("reloaded %s (generation %u)", m->config_path, m->generation);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    sl_main_t *m = arg;
    if (sig == SIGHUP) {
        reload(m);
        return;
    }
    if (m->stopping)
        return;
    m->stopping = true;
    sl_info("received %s: draining connections", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    for (int i = 0; i < m->n_workers; i++)
        sl_worker_stop(&m->workers[i]);
    event_base_loopbreak(m->base);
}

static int cmd_run(const char *path)
{
    sl_main_t m = { .config_path = path, .generation = 1 };
    sl_errors_t errs = { 0 };
    int n_workers = workers_in(path);
    if (sl_plugins_global_init(sl_host_table(), n_workers, NULL) != 0) {
        fprintf(stderr, "sluice: cannot initialise the plugin host\n");
        return 1;
    }
    m.snap = load_snapshot(path, n_workers, m.generation, &errs);
    if (!m.snap) {
        print_errors(&errs, "");
        sl_errors_free(&errs);
        sl_plugins_global_shutdown();
        return 1;
    }
    sl_errors_free(&errs);
    apply_log_level(m.snap->cfg);
    report_redis(m.snap->cfg, false);

    m.n_workers = m.snap->n_workers;
    m.workers = calloc((size_t)m.n_workers, sizeof *m.workers);
    int rc = 1;
    int started = 0;
    for (int i = 0; i < m.n_workers; i++) {
        if (sl_worker_init(&m.workers[i], i, m.snap) != 0) {
            fprintf(stderr, "sluice: worker %d: %s\n", i, m.workers[i].bind_error);
            goto out;
        }
    }
    m.base = event_base_new();
    m.dns = evdns_base_new(m.base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
                                       EVDNS_BASE_DISABLE_WHEN_INACTIVE);
    if (!m.dns)
        m.dns = evdns_base_new(m.base, 0);
    struct event *sig_hup = evsignal_new(m.base, SIGHUP, on_signal, &m);
    struct event *sig_term = evsignal_new(m.base, SIGTERM, on_signal, &m);
    struct event *sig_int = evsignal_new(m.base, SIGINT, on_signal, &m);
    evsignal_add(sig_hup, NULL);
    evsignal_add(sig_term, NULL);
    evsignal_add(sig_int, NULL);
    for (; started < m.n_workers; started++) {
        if (sl_worker_start(&m.workers[started]) != 0) {
            fprintf(stderr, "sluice: cannot start worker thread %d\n", started);
            for (int i = 0; i < started; i++)
                sl_worker_stop(&m.workers[i]);
            goto joined;
        }
    }
    m.checker = sl_checker_start(m.base, m.dns, m.snap);
    for (int i = 0; i < m.snap->cfg->n_listens; i++) {
        const sl_listen_t *l = &m.snap->cfg->listens[i];
        sl_info("listening on %s%s:%d%s", strchr(l->host, ':') ? "[" : "", l->host, l->port,
                l->tls_cert ? " (tls)" : "");
    }
    sl_info("sluice: ready (%d workers, config %s)", m.n_workers, path);
    event_base_dispatch(m.base);
    rc = 0;
joined:
    sl_checker_stop(m.checker);
    event_free(sig_hup);
    event_free(sig_term);
    event_free(sig_int);
out:
    for (int i = 0; i < m.n_workers; i++)
        sl_worker_join_and_free(&m.workers[i]);
    free(m.workers);
    if (m.dns)
        evdns_base_free(m.dns, 0);
    if (m.base)
        event_base_free(m.base);
    sl_snapshot_unref(m.snap);
    sl_plugins_global_shutdown();
    sl_shdict_registry_free();
    sl_metrics_reset();
    sl_http_client_shutdown();
    sl_host_shutdown();
    if (rc == 0)
        sl_info("stopped");
    return rc;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    evthread_use_pthreads();
    const char *path = NULL;
    bool check = false;
    int i = 1;
    if (argc >= 2 && strcmp(argv[1], "version") == 0) {
        printf("sluice %s\n", SLUICE_VERSION);
        return 0;
    }
    if (argc >= 2 && strcmp(argv[1], "check") == 0) {
        check = true;
        i = 2;
    }
    for (; i < argc; i++) {
        if (strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
            path = argv[++i];
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (!path) {
        usage(stderr);
        return 2;
    }
    return check ? cmd_check(path) : cmd_run(path);
}
