/* routes: what to match, which plugins run, and where the request goes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_internal.h"

/* What a route needs from the second pass, once every upstream exists. */
typedef struct route_link {
    const ydoc_node_t *node;
    int item_index;            /* position in the YAML list, for messages */
    const ydoc_node_t *upstream_node;
    int upstream;              /* index into cfg->upstreams, -1 = none */
    sl_target_t inline_target; /* host set when upstream is an inline URL */
    const ydoc_node_t *retries_node;
    char retries_path[SLC_PATH];
    sl_retries_t retries;
    unsigned retries_given;
    bool has_plugins;
} route_link_t;

void slc_free_route(sl_route_t *r)
{
    free(r->name);
    for (int i = 0; i < r->n_hosts; i++)
        free(r->hosts[i]);
    free(r->hosts);
    for (int i = 0; i < r->n_paths; i++)
        free(r->paths[i].value);
    free(r->paths);
    for (int i = 0; i < r->n_headers; i++) {
        free(r->headers[i].name);
        free(r->headers[i].value);
    }
    free(r->headers);
    slc_free_plugins(r->plugins, r->n_plugins);
}

static void load_upstream_ref(slc_t *c, const ydoc_node_t *v, const char *p, const sl_config_t *cfg,
                              route_link_t *link)
{
    link->upstream_node = v;
    if (!slc_scalar(c, v, p, "an upstream name or URL"))
        return;
    if (strstr(v->str, "://")) {
        char err[256];
        if (slc_parse_target_url(v->str, &link->inline_target, err, sizeof err) != 0) {
            slc_err(c, v->line, p, "%s", err);
            free(link->inline_target.host);
            link->inline_target.host = NULL;
        }
        return;
    }
    for (int i = 0; i < cfg->n_upstreams; i++) {
        if (!strcmp(cfg->upstreams[i].name, v->str)) {
            link->upstream = i;
            return;
        }
    }
    slc_err(c, v->line, p, "unknown upstream \"%s\"", v->str);
}

static void load_route(slc_t *c, const ydoc_node_t *n, const char *path, const sl_config_t *cfg,
                       sl_route_t *r, route_link_t *link)
{
    bool has_name = false;
    for (int i = 0; i < n->n_pairs; i++) {
        const ydoc_node_t *k = n->pairs[i].key, *v = n->pairs[i].value;
        char p[SLC_PATH];
        ydoc_path_key(p, sizeof p, path, k->str);
        const char *key = k->str;
        if (!strcmp(key, "name")) {
            has_name = true;
            slc_string(c, v, p, &r->name);
        } else if (!strcmp(key, "match")) {
            slc_load_match(c, v, p, r);
        } else if (!strcmp(key, "upstream")) {
            load_upstream_ref(c, v, p, cfg, link);
        } else if (!strcmp(key, "plugins")) {
            link->has_plugins = v->kind == YDOC_SEQ && v->n_items > 0;
            slc_load_plugin_chain(c, v, p, &r->plugins, &r->n_plugins);
        } else if (!strcmp(key, "max_body_size")) {
            slc_size(c, v, p, &r->max_body_size);
        } else if (!strcmp(key, "timeouts")) {
            slc_parse_timeouts(c, v, p, &r->timeouts);
        } else if (!strcmp(key, "retries")) {
            link->retries_node = v;
            snprintf(link->retries_path, sizeof link->retries_path, "%s", p);
            slc_parse_retries(c, v, p, &link->retries, &link->retries_given);
        } else {
            slc_unknown_key(c, k, p);
        }
    }
    if (!has_name)
        slc_missing_key(c, n, path, "name");
    if (!link->upstream_node && !link->has_plugins)
        slc_err(c, n->line, path, "needs an upstream, or plugins that answer the request");
}

static void check_duplicate_names(slc_t *c, const sl_config_t *cfg, const route_link_t *links)
{
    for (int i = 0; i < cfg->n_routes; i++) {
        if (!cfg->routes[i].name)
            continue;
        for (int j = 0; j < i; j++) {
            if (cfg->routes[j].name && !strcmp(cfg->routes[i].name, cfg->routes[j].name)) {
                char p[SLC_PATH];
                snprintf(p, sizeof p, "routes[%d].name", links[i].item_index);
                slc_err(c, ydoc_get(links[i].node, "name")->line, p, "duplicate route name \"%s\" (first at line %d)",
                        cfg->routes[i].name, ydoc_get(links[j].node, "name")->line);
                break;
            }
        }
    }
}

/* Inline upstreams go after the named ones, so indexes of named ones are
 * the same whatever the routes say. */
static void add_inline_upstreams(sl_config_t *cfg, route_link_t *links)
{
    int n_inline = 0;
    for (int i = 0; i < cfg->n_routes; i++)
        n_inline += links[i].inline_target.host != NULL;
    if (n_inline == 0)
        return;
    sl_upstream_t *ups = slc_calloc((size_t)(cfg->n_upstreams + n_inline), sizeof *ups);
    if (cfg->n_upstreams)
        memcpy(ups, cfg->upstreams, (size_t)cfg->n_upstreams * sizeof *ups);
    free(cfg->upstreams);
    cfg->upstreams = ups;
    for (int i = 0; i < cfg->n_routes; i++) {
        if (!links[i].inline_target.host)
            continue;
        sl_upstream_t *u = &cfg->upstreams[cfg->n_upstreams];
        slc_upstream_defaults(u);
        u->index = cfg->n_upstreams++;
        if (asprintf(&u->name, "route:%s", cfg->routes[i].name ? cfg->routes[i].name : "") < 0)
            abort();
        u->inline_url = true;
        u->targets = slc_calloc(1, sizeof *u->targets);
        u->targets[0] = links[i].inline_target;
        u->targets[0].weight = 1;
        u->n_targets = 1;
        memset(&links[i].inline_target, 0, sizeof links[i].inline_target);
        links[i].upstream = u->index;
    }
}

static void link_upstreams(slc_t *c, sl_config_t *cfg, route_link_t *links)
{
    for (int i = 0; i < cfg->n_routes; i++) {
        sl_route_t *r = &cfg->routes[i];
        route_link_t *link = &links[i];
        r->upstream = link->upstream >= 0 ? &cfg->upstreams[link->upstream] : NULL;
        if (!link->retries_node)
            continue;
        /* Keys a route leaves out keep its upstream's values. */
        sl_retries_t merged;
        if (r->upstream)
            merged = r->upstream->retries;
        else
            slc_retries_defaults(&merged);
        slc_merge_retries(&merged, &link->retries, link->retries_given);
        merged.set = true;
        r->retries = merged;
        slc_check_retries(c, link->retries_node, link->retries_path, &r->retries);
    }
}

void slc_load_routes(slc_t *c, const ydoc_node_t *n, sl_config_t *cfg)
{
    if (!slc_list(c, n, "routes"))
        return;
    if (n->n_items == 0) {
        slc_err(c, n->line, "routes", "must not be empty");
        return;
    }
    cfg->routes = slc_calloc((size_t)n->n_items, sizeof *cfg->routes);
    route_link_t *links = slc_calloc((size_t)n->n_items, sizeof *links);
    for (int i = 0; i < n->n_items; i++) {
        const ydoc_node_t *item = n->items[i];
        char p[SLC_PATH];
        ydoc_path_index(p, sizeof p, "routes", i);
        if (item->invalid)
            continue;
        if (item->kind != YDOC_MAP) {
            slc_err(c, item->line, p, "expected a mapping, got %s", ydoc_describe(item));
            continue;
        }
        sl_route_t *r = &cfg->routes[cfg->n_routes];
        route_link_t *link = &links[cfg->n_routes];
        r->index = cfg->n_routes++;
        r->line = item->line;
        link->node = item;
        link->item_index = i;
        link->upstream = -1;
        slc_retries_defaults(&link->retries);
        load_route(c, item, p, cfg, r, link);
    }
    check_duplicate_names(c, cfg, links);
    add_inline_upstreams(cfg, links);
    link_upstreams(c, cfg, links);
    free(links);
}
