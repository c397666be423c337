/* Process-wide options: workers, server limits and timeouts, logging, and
 * where plugins are found. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config_internal.h"

#define MAX_WORKERS 1024

int slc_auto_workers(void)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    return cpus < 1 ? 1 : cpus > MAX_WORKERS ? MAX_WORKERS : (int)cpus;
}

void slc_load_workers(slc_t *c, const ydoc_node_t *n, sl_config_t *cfg)
{
    if (n->kind == YDOC_SCALAR && !strcmp(n->str, "auto") && !n->invalid) {
        cfg->workers = slc_auto_workers();
        return;
    }
    if (n->kind == YDOC_SCALAR && !n->invalid && !ydoc_is_null(n) &&
        strspn(n->str, "+-0123456789") != strlen(n->str)) {
        slc_err(c, n->line, "workers", "expected a positive integer or \"auto\", got \"%s\"", n->str);
        return;
    }
    slc_int(c, n, "workers", 1, MAX_WORKERS, &cfg->workers);
}

typedef enum { OPT_DURATION, OPT_SIZE, OPT_BOOL } opt_kind_t;

static const struct {
    const char *key;
    opt_kind_t kind;
    size_t offset;
    int64_t min_ms;  /* durations only */
} server_opts[] = {
    {"client_header_timeout", OPT_DURATION, offsetof(sl_server_opts_t, client_header_timeout_ms), 1},
    {"client_body_timeout", OPT_DURATION, offsetof(sl_server_opts_t, client_body_timeout_ms), 1},
    {"keepalive_timeout", OPT_DURATION, offsetof(sl_server_opts_t, keepalive_timeout_ms), 1},
    {"send_timeout", OPT_DURATION, offsetof(sl_server_opts_t, send_timeout_ms), 1},
    /* 0 is a meaningful drain: stop at once. */
    {"drain_timeout", OPT_DURATION, offsetof(sl_server_opts_t, drain_timeout_ms), 0},
    {"max_uri_size", OPT_SIZE, offsetof(sl_server_opts_t, max_uri_size), 0},
    {"max_header_size", OPT_SIZE, offsetof(sl_server_opts_t, max_header_size), 0},
    {"max_body_size", OPT_SIZE, offsetof(sl_server_opts_t, max_body_size), 0},
    {"max_response_buffer", OPT_SIZE, offsetof(sl_server_opts_t, max_response_buffer), 0},
    {"server_timing", OPT_BOOL, offsetof(sl_server_opts_t, server_timing), 0},
};

void slc_load_server(slc_t *c, const ydoc_node_t *n, sl_server_opts_t *s)
{
    if (!slc_map(c, n, "server"))
        return;
    for (int i = 0; i < n->n_pairs; i++) {
        const ydoc_node_t *k = n->pairs[i].key, *v = n->pairs[i].value;
        char p[SLC_PATH];
        ydoc_path_key(p, sizeof p, "server", k->str);
        size_t j = 0;
        while (j < sizeof server_opts / sizeof server_opts[0] && strcmp(server_opts[j].key, k->str) != 0)
            j++;
        if (j == sizeof server_opts / sizeof server_opts[0]) {
            slc_unknown_key(c, k, p);
            continue;
        }
        char *field = (char *)s + server_opts[j].offset;
        switch (server_opts[j].kind) {
        case OPT_DURATION:
            slc_duration(c, v, p, server_opts[j].min_ms, (int64_t *)field);
            break;
        case OPT_SIZE:
            slc_size(c, v, p, (int64_t *)field);
            break;
        case OPT_BOOL:
            slc_bool(c, v, p, (bool *)field);
            break;
        }
    }
}

void slc_load_log(slc_t *c, const ydoc_node_t *n, sl_log_opts_t *l)
{
    if (!slc_map(c, n, "log"))
        return;
    for (int i = 0; i < n->n_pairs; i++) {
        const ydoc_node_t *k = n->pairs[i].key, *v = n->pairs[i].value;
        char p[SLC_PATH];
        ydoc_path_key(p, sizeof p, "log", k->str);
        if (!strcmp(k->str, "access")) {
            slc_string(c, v, p, &l->access);
        } else if (!strcmp(k->str, "level")) {
            if (!slc_scalar(c, v, p, "a log level"))
                continue;
            if (strcmp(v->str, "debug") && strcmp(v->str, "info") && strcmp(v->str, "warn") &&
                strcmp(v->str, "error")) {
                slc_bad_enum(c, v, p, "debug, info, warn, error");
                continue;
            }
            free(l->level);
            l->level = slc_strdup(v->str);
        } else {
            slc_unknown_key(c, k, p);
        }
    }
}

void slc_load_plugin_dirs(slc_t *c, const ydoc_node_t *n, sl_config_t *cfg)
{
    if (n->kind == YDOC_SCALAR && !ydoc_is_null(n)) {
        cfg->plugin_dirs = slc_calloc(1, sizeof *cfg->plugin_dirs);
        if (slc_string(c, n, "plugin_dirs", &cfg->plugin_dirs[0]))
            cfg->n_plugin_dirs = 1;
        return;
    }
    if (!slc_list(c, n, "plugin_dirs"))
        return;
    cfg->plugin_dirs = slc_calloc((size_t)n->n_items, sizeof *cfg->plugin_dirs);
    for (int i = 0; i < n->n_items; i++) {
        char p[SLC_PATH];
        ydoc_path_index(p, sizeof p, "plugin_dirs", i);
        if (slc_string(c, n->items[i], p, &cfg->plugin_dirs[cfg->n_plugin_dirs]))
            cfg->n_plugin_dirs++;
    }
}
