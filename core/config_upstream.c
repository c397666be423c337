/* upstreams: named groups of targets with their balancing, timeouts, retries
 * and health settings. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config_internal.h"

void slc_upstream_defaults(sl_upstream_t *u)
{
    u->balance = SL_BALANCE_ROUND_ROBIN;
    u->hash_on = SL_HASH_IP;
    u->host_header = SL_HOST_PRESERVE;
    u->tls_verify = true;
    u->timeouts = (sl_timeouts_t){.connect_ms = 1000, .send_ms = 10000, .read_ms = 60000};
    u->keepalive_idle_ms = 60000;
    u->keepalive_max_idle = 256;
    slc_retries_defaults(&u->retries);
    /* An upstream's retries are always the ones in force for it. */
    u->retries.set = true;
    u->max_fails = 5;
    u->open_ms = 10000;
    u->active = (sl_active_health_t){
        .enabled = false, .path = slc_strdup("/health"), .interval_ms = 5000, .timeout_ms = 1000,
        .healthy = 2, .unhealthy = 3,
    };
}

void slc_free_upstream(sl_upstream_t *u)
{
    free(u->name);
    for (int i = 0; i < u->n_targets; i++) {
        free(u->targets[i].host);
        free(u->targets[i].name);
    }
    free(u->targets);
    free(u->hash_key);
    free(u->host_value);
    free(u->tls_ca_file);
    free(u->tls_sni);
    free(u->active.path);
}

static void load_target(slc_t *c, const ydoc_node_t *n, const char *path, sl_target_t *t)
{
    const ydoc_node_t *url = n;
    char url_path[SLC_PATH];
    snprintf(url_path, sizeof url_path, "%s", path);
    t->weight = 1;
    if (n->kind == YDOC_MAP) {
        url = NULL;
        for (int i = 0; i < n->n_pairs; i++) {
            const ydoc_node_t *k = n->pairs[i].key, *v = n->pairs[i].value;
            char p[SLC_PATH];
            ydoc_path_key(p, sizeof p, path, k->str);
            if (!strcmp(k->str, "url")) {
                url = v;
                snprintf(url_path, sizeof url_path, "%s", p);
            } else if (!strcmp(k->str, "weight")) {
                slc_int(c, v, p, 1, 1000, &t->weight);
            } else {
                slc_unknown_key(c, k, p);
            }
        }
        if (!url) {
            slc_missing_key(c, n, path, "url");
            return;
        }
    }
    if (!slc_scalar(c, url, url_path, "a URL like \"http://127.0.0.1:9001\""))
        return;
    char err[256];
    if (slc_parse_target_url(url->str, t, err, sizeof err) != 0)
        slc_err(c, url->line, url_path, "%s", err);
}

static void load_targets(slc_t *c, const ydoc_node_t *n, const char *path, sl_upstream_t *u)
{
    if (!slc_list(c, n, path))
        return;
    if (n->n_items == 0) {
        slc_err(c, n->line, path, "must not be empty");
        return;
    }
    u->targets = slc_calloc((size_t)n->n_items, sizeof *u->targets);
    u->n_targets = n->n_items;
    for (int i = 0; i < n->n_items; i++) {
        char p[SLC_PATH];
        ydoc_path_index(p, sizeof p, path, i);
        load_target(c, n->items[i], p, &u->targets[i]);
        for (int j = 0; j < i && u->targets[i].name; j++) {
            if (u->targets[j].name && u->targets[j].tls == u->targets[i].tls &&
                strcasecmp(u->targets[j].name, u->targets[i].name) == 0) {
                slc_err(c, n->items[i]->line, p, "duplicate target %s (use weight instead)", u->targets[i].name);
                break;
            }
        }
    }
}

static void load_balance(slc_t *c, const ydoc_node_t *n, const char *path, sl_upstream_t *u)
{
    static const char *const names[] = {"round_robin", "least_conn", "hash", "ewma"};
    if (!slc_scalar(c, n, path, "a balancing method"))
        return;
    for (int i = 0; i < 4; i++) {
        if (!strcmp(n->str, names[i])) {
            u->balance = (sl_balance_t)i;
            return;
        }
    }
    slc_bad_enum(c, n, path, "round_robin, least_conn, hash, ewma");
}

static void load_hash_on(slc_t *c, const ydoc_node_t *n, const char *path, sl_upstream_t *u)
{
    if (n->kind == YDOC_SCALAR && !n->invalid && !ydoc_is_null(n)) {
        if (strcmp(n->str, "ip") != 0)
            slc_bad_enum(c, n, path, "ip, {header: NAME}, {cookie: NAME}");
        u->hash_on = SL_HASH_IP;
        return;
    }
    if (n->kind != YDOC_MAP || n->n_pairs != 1) {
        if (!n->invalid)
            slc_err(c, n->line, path, "expected ip, {header: NAME} or {cookie: NAME}");
        return;
    }
    const ydoc_node_t *k = n->pairs[0].key, *v = n->pairs[0].value;
    char p[SLC_PATH];
    ydoc_path_key(p, sizeof p, path, k->str);
    if (!strcmp(k->str, "header")) {
        char *name = NULL;
        if (slc_string(c, v, p, &name)) {
            u->hash_on = SL_HASH_HEADER;
            u->hash_key = slc_lower(name);
        }
        free(name);
    } else if (!strcmp(k->str, "cookie")) {
        if (slc_string(c, v, p, &u->hash_key))
            u->hash_on = SL_HASH_COOKIE;
    } else {
        slc_unknown_key(c, k, p);
    }
}

static void load_host_header(slc_t *c, const ydoc_node_t *n, const char *path, sl_upstream_t *u)
{
    char *value = NULL;
    if (!slc_string(c, n, path, &value))
        return;
    if (!strcmp(value, "preserve")) {
        u->host_header = SL_HOST_PRESERVE;
        free(value);
    } else if (!strcmp(value, "target")) {
        u->host_header = SL_HOST_TARGET;
        free(value);
    } else {
        u->host_header = SL_HOST_FIXED;
        u->host_value = value;
    }
}

static void load_tls(slc_t *c, const ydoc_node_t *n, const char *path, sl_upstream_t *u)
{
    if (!slc_map(c, n, path))
        return;
    for (int i = 0; i < n->n_pairs; i++) {
        const ydoc_node_t *k = n->pairs[i].key, *v = n->pairs[i].value;
        char p[SLC_PATH];
        ydoc_path_key(p, sizeof p, path, k->str);
        if (!strcmp(k->str, "verify"))
            slc_bool(c, v, p, &u->tls_verify);
        else if (!strcmp(k->str, "ca_file"))
            slc_readable_file(c, v, p, &u->tls_ca_file);
        else if (!strcmp(k->str, "sni"))
            slc_string(c, v, p, &u->tls_sni);
        else
            slc_unknown_key(c, k, p);
    }
}

static void load_keepalive(slc_t *c, const ydoc_node_t *n, const char *path, sl_upstream_t *u)
{
    if (!slc_map(c, n, path))
        return;
    for (int i = 0; i < n->n_pairs; i++) {
        const ydoc_node_t *k = n->pairs[i].key, *v = n->pairs[i].value;
        char p[SLC_PATH];
        ydoc_path_key(p, sizeof p, path, k->str);
        if (!strcmp(k->str, "idle_timeout"))
            slc_duration(c, v, p, 1, &u->keepalive_idle_ms);
        else if (!strcmp(k->str, "max_idle"))
            slc_int(c, v, p, 0, 10000, &u->keepalive_max_idle);
        else
            slc_unknown_key(c, k, p);
    }
}

static void load_active(slc_t *c, const ydoc_node_t *n, const char *path, sl_active_health_t *a)
{
    if (!slc_map(c, n, path))
        return;
    a->enabled = true;
    for (int i = 0; i < n->n_pairs; i++) {
        const ydoc_node_t *k = n->pairs[i].key, *v = n->pairs[i].value;
        char p[SLC_PATH];
        ydoc_path_key(p, sizeof p, path, k->str);
        const char *key = k->str;
        if (!strcmp(key, "path")) {
            char *hp = NULL;
            if (!slc_string(c, v, p, &hp))
                continue;
            if (hp[0] != '/') {
                slc_err(c, v->line, p, "must start with \"/\"");
                free(hp);
                continue;
            }
            free(a->path);
            a->path = hp;
        } else if (!strcmp(key, "interval")) {
            slc_duration(c, v, p, 1, &a->interval_ms);
        } else if (!strcmp(key, "timeout")) {
            slc_duration(c, v, p, 1, &a->timeout_ms);
        } else if (!strcmp(key, "healthy")) {
            slc_int(c, v, p, 1, 1000, &a->healthy);
        } else if (!strcmp(key, "unhealthy")) {
            slc_int(c, v, p, 1, 1000, &a->unhealthy);
        } else if (!strcmp(key, "statuses")) {
            slc_status_list(c, v, p, a->statuses, &a->n_statuses);
        } else {
            slc_unknown_key(c, k, p);
        }
    }
}

static void load_health(slc_t *c, const ydoc_node_t *n, const char *path, sl_upstream_t *u)
{
    if (!slc_map(c, n, path))
        return;
    for (int i = 0; i < n->n_pairs; i++) {
        const ydoc_node_t *k = n->pairs[i].key, *v = n->pairs[i].value;
        char p[SLC_PATH];
        ydoc_path_key(p, sizeof p, path, k->str);
        if (!strcmp(k->str, "max_fails"))
            slc_int(c, v, p, 0, 1000, &u->max_fails);
        else if (!strcmp(k->str, "open_time"))
            slc_duration(c, v, p, 1, &u->open_ms);
        else if (!strcmp(k->str, "active"))
            load_active(c, v, p, &u->active);
        else
            slc_unknown_key(c, k, p);
    }
}

static void load_upstream(slc_t *c, const ydoc_node_t *n, const char *path, sl_upstream_t *u)
{
    const ydoc_node_t *targets = NULL, *hash_on = NULL, *retries = NULL;
    char hash_path[SLC_PATH] = "", retries_path[SLC_PATH] = "";
    for (int i = 0; i < n->n_pairs; i++) {
        const ydoc_node_t *k = n->pairs[i].key, *v = n->pairs[i].value;
        char p[SLC_PATH];
        ydoc_path_key(p, sizeof p, path, k->str);
        const char *key = k->str;
        unsigned given;
        if (!strcmp(key, "targets")) {
            targets = v;
            load_targets(c, v, p, u);
        } else if (!strcmp(key, "balance")) {
            load_balance(c, v, p, u);
        } else if (!strcmp(key, "hash_on")) {
            hash_on = v;
            snprintf(hash_path, sizeof hash_path, "%s", p);
            load_hash_on(c, v, p, u);
        } else if (!strcmp(key, "host_header")) {
            load_host_header(c, v, p, u);
        } else if (!strcmp(key, "tls")) {
            load_tls(c, v, p, u);
        } else if (!strcmp(key, "timeouts")) {
            slc_parse_timeouts(c, v, p, &u->timeouts);
        } else if (!strcmp(key, "keepalive")) {
            load_keepalive(c, v, p, u);
        } else if (!strcmp(key, "retries")) {
            retries = v;
            snprintf(retries_path, sizeof retries_path, "%s", p);
            slc_parse_retries(c, v, p, &u->retries, &given);
        } else if (!strcmp(key, "health")) {
            load_health(c, v, p, u);
        } else {
            slc_unknown_key(c, k, p);
        }
    }
    if (!targets)
        slc_missing_key(c, n, path, "targets");
    if (hash_on && u->balance != SL_BALANCE_HASH)
        slc_err(c, hash_on->line, hash_path, "only allowed with balance: hash");
    if (retries)
        slc_check_retries(c, retries, retries_path, &u->retries);
}

void slc_load_upstreams(slc_t *c, const ydoc_node_t *n, sl_config_t *cfg)
{
    if (!slc_map(c, n, "upstreams"))
        return;
    cfg->upstreams = slc_calloc((size_t)n->n_pairs, sizeof *cfg->upstreams);
    for (int i = 0; i < n->n_pairs; i++) {
        const ydoc_node_t *k = n->pairs[i].key, *v = n->pairs[i].value;
        char p[SLC_PATH];
        ydoc_path_key(p, sizeof p, "upstreams", k->str);
        if (k->invalid || v->invalid)
            continue;
        if (k->len == 0 || strlen(k->str) != k->len) {
            slc_err(c, k->line, p, "upstream names must be non-empty text");
            continue;
        }
        /* Inline upstreams are named after their route with this prefix. */
        if (!strncmp(k->str, "route:", 6)) {
            slc_err(c, k->line, p, "upstream names must not start with \"route:\"");
            continue;
        }
        if (v->kind != YDOC_MAP) {
            slc_err(c, v->line, p, "expected a mapping, got %s", ydoc_describe(v));
            continue;
        }
        sl_upstream_t *u = &cfg->upstreams[cfg->n_upstreams];
        u->name = slc_strdup(k->str);
        u->index = cfg->n_upstreams++;
        slc_upstream_defaults(u);
        load_upstream(c, v, p, u);
    }
}
