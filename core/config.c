/* Loading a config file into an immutable, reference-counted snapshot. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_internal.h"

static void set_defaults(sl_config_t *cfg)
{
    atomic_init(&cfg->refs, 1);
    cfg->workers = slc_auto_workers();
    cfg->server = (sl_server_opts_t){
        .client_header_timeout_ms = 10000,
        .client_body_timeout_ms = 30000,
        .keepalive_timeout_ms = 60000,
        .send_timeout_ms = 30000,
        .max_uri_size = 8 * 1024,
        .max_header_size = 32 * 1024,
        .max_body_size = 1024 * 1024,
        .drain_timeout_ms = 10000,
        .max_response_buffer = 256 * 1024,
        .server_timing = false,
    };
    cfg->log.access = slc_strdup("stdout");
    cfg->log.level = slc_strdup("info");
    cfg->redis.port = 6379;
    cfg->redis.connect_timeout_ms = 500;
    cfg->redis.command_timeout_ms = 200;
    cfg->consumers = json_array();
}

static void config_free(sl_config_t *cfg)
{
    free(cfg->path);
    for (int i = 0; i < cfg->n_listens; i++) {
        free(cfg->listens[i].host);
        free(cfg->listens[i].tls_cert);
        free(cfg->listens[i].tls_key);
    }
    free(cfg->listens);
    free(cfg->log.access);
    free(cfg->log.level);
    free(cfg->redis.url);
    free(cfg->redis.host);
    free(cfg->redis.username);
    free(cfg->redis.password);
    for (int i = 0; i < cfg->n_upstreams; i++)
        slc_free_upstream(&cfg->upstreams[i]);
    free(cfg->upstreams);
    json_decref(cfg->consumers);
    slc_free_plugins(cfg->plugins, cfg->n_plugins);
    for (int i = 0; i < cfg->n_routes; i++)
        slc_free_route(&cfg->routes[i]);
    free(cfg->routes);
    for (int i = 0; i < cfg->n_plugin_dirs; i++)
        free(cfg->plugin_dirs[i]);
    free(cfg->plugin_dirs);
    free(cfg);
}

sl_config_t *sl_config_ref(sl_config_t *c)
{
    if (c)
        atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
    return c;
}

void sl_config_unref(sl_config_t *c)
{
    /* acq_rel: the thread that frees must see every other holder's reads done. */
    if (c && atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) == 1)
        config_free(c);
}

static void load_top(slc_t *c, const ydoc_node_t *root, sl_config_t *cfg)
{
    const ydoc_node_t *routes = NULL;
    bool has_listen = false;
    for (int i = 0; i < root->n_pairs; i++) {
        const ydoc_node_t *k = root->pairs[i].key, *v = root->pairs[i].value;
        const char *key = k->str;
        if (!strcmp(key, "listen")) {
            has_listen = true;
            slc_load_listen(c, v, cfg);
        } else if (!strcmp(key, "workers")) {
            slc_load_workers(c, v, cfg);
        } else if (!strcmp(key, "server")) {
            slc_load_server(c, v, &cfg->server);
        } else if (!strcmp(key, "log")) {
            slc_load_log(c, v, &cfg->log);
        } else if (!strcmp(key, "plugin_dirs")) {
            slc_load_plugin_dirs(c, v, cfg);
        } else if (!strcmp(key, "redis")) {
            slc_load_redis(c, v, &cfg->redis);
        } else if (!strcmp(key, "upstreams")) {
            slc_load_upstreams(c, v, cfg);
        } else if (!strcmp(key, "consumers")) {
            slc_load_consumers(c, v, cfg);
        } else if (!strcmp(key, "plugins")) {
            slc_load_plugin_chain(c, v, "plugins", &cfg->plugins, &cfg->n_plugins);
        } else if (!strcmp(key, "routes")) {
            routes = v;  /* after the loop: routes refer to upstreams */
        } else {
            slc_unknown_key(c, k, key);
        }
    }
    if (!has_listen)
        slc_missing_key(c, root, "", "listen");
    if (routes)
        slc_load_routes(c, routes, cfg);
    else
        slc_missing_key(c, root, "", "routes");
}

static sl_config_t *load(const char *name, const char *text, size_t len, sl_errors_t *errs)
{
    slc_t c = {.file = name, .errs = errs};
    int before = errs->n;
    ydoc_node_t *root;
    if (ydoc_parse(name, text, len, slc_env_expand, NULL, errs, &root) != 0)
        return NULL;
    if (root && root->kind != YDOC_MAP) {
        slc_err(&c, root->line, "", "expected a mapping of settings at the top level, got %s",
                ydoc_describe(root));
        ydoc_free(root);
        return NULL;
    }
    sl_config_t *cfg = slc_calloc(1, sizeof *cfg);
    set_defaults(cfg);
    cfg->path = slc_strdup(name);
    if (root) {
        load_top(&c, root, cfg);
    } else {
        slc_missing_key(&c, NULL, "", "listen");
        slc_missing_key(&c, NULL, "", "routes");
    }
    ydoc_free(root);
    if (errs->n > before) {
        config_free(cfg);
        return NULL;
    }
    return cfg;
}

sl_config_t *sl_config_load_string(const char *name, const char *yaml, sl_errors_t *errs)
{
    return load(name, yaml, strlen(yaml), errs);
}

sl_config_t *sl_config_load(const char *path, sl_errors_t *errs)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        sl_errors_add(errs, "%s: cannot read: %s", path, strerror(errno));
        return NULL;
    }
    char *text = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            cap = cap ? cap * 2 : 16384;
            char *p = realloc(text, cap);
            if (!p)
                abort();
            text = p;
        }
        size_t got = fread(text + len, 1, cap - len, f);
        len += got;
        if (got == 0)
            break;
    }
    int failed = ferror(f) ? errno : 0;
    fclose(f);
    if (failed) {
        sl_errors_add(errs, "%s: cannot read: %s", path, strerror(failed));
        free(text);
        return NULL;
    }
    sl_config_t *cfg = load(path, text, len, errs);
    free(text);
    return cfg;
}
