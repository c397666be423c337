/* Plugin chains and consumers: the core only checks their shape; each
 * plugin validates its own config (as JSON) when the chain is built. */
#include <stdlib.h>
#include <string.h>

#include "config_internal.h"

void slc_free_plugins(sl_plugin_ref_t *p, int n)
{
    for (int i = 0; i < n; i++) {
        free(p[i].name);
        json_decref(p[i].conf);
    }
    free(p);
}

/* One "- name: {config}" entry; a bare "- name" means an empty config. */
static bool load_plugin(slc_t *c, const ydoc_node_t *n, const char *path, sl_plugin_ref_t *out)
{
    if (n->invalid)
        return false;
    const ydoc_node_t *name = n, *conf = NULL;
    char conf_path[SLC_PATH];
    if (n->kind == YDOC_MAP && n->n_pairs == 1) {
        name = n->pairs[0].key;
        conf = n->pairs[0].value;
        ydoc_path_key(conf_path, sizeof conf_path, path, name->str);
    } else if (n->kind != YDOC_SCALAR || ydoc_is_null(n)) {
        slc_err(c, n->line, path, "expected a plugin name mapped to its config, e.g. \"request-id: {}\"");
        return false;
    }
    if (name->invalid)
        return false;
    if (name->len == 0 || strlen(name->str) != name->len) {
        slc_err(c, name->line, path, "plugin name must not be empty");
        return false;
    }
    json_t *json = NULL;
    if (conf && !ydoc_is_null(conf)) {
        if (conf->invalid)
            return false;
        if (conf->kind != YDOC_MAP) {
            slc_err(c, conf->line, conf_path, "expected a mapping (the plugin's config), got %s",
                    ydoc_describe(conf));
            return false;
        }
        if (!(json = slc_to_json(c, conf, conf_path)))
            return false;
    }
    out->name = slc_strdup(name->str);
    out->conf = json ? json : json_object();
    out->line = name->line;
    return true;
}

void slc_load_plugin_chain(slc_t *c, const ydoc_node_t *n, const char *path, sl_plugin_ref_t **out, int *n_out)
{
    *out = NULL;
    *n_out = 0;
    if (!slc_list(c, n, path))
        return;
    *out = slc_calloc((size_t)n->n_items, sizeof **out);
    for (int i = 0; i < n->n_items; i++) {
        char p[SLC_PATH];
        ydoc_path_index(p, sizeof p, path, i);
        if (load_plugin(c, n->items[i], p, &(*out)[*n_out]))
            (*n_out)++;
    }
}

/* Each consumer needs a unique name: auth plugins and logs refer to it. */
static bool check_consumer_name(slc_t *c, const ydoc_node_t *item, const char *path, json_t *json,
                                const ydoc_node_t *const *seen, int n_seen)
{
    const ydoc_node_t *name = ydoc_get(item, "name");
    char p[SLC_PATH];
    ydoc_path_key(p, sizeof p, path, "name");
    if (!name) {
        slc_missing_key(c, item, path, "name");
        return false;
    }
    json_t *value = json_object_get(json, "name");
    if (!json_is_string(value) || json_string_length(value) == 0) {
        slc_err(c, name->line, p, "expected a non-empty string, got %s",
                json_is_string(value) ? "an empty string" : ydoc_describe(name));
        return false;
    }
    for (int j = 0; j < n_seen; j++) {
        const ydoc_node_t *other = ydoc_get(seen[j], "name");
        if (other->len == name->len && memcmp(other->str, name->str, name->len) == 0) {
            slc_err(c, name->line, p, "duplicate consumer name \"%s\" (first at line %d)", name->str,
                    other->line);
            return false;
        }
    }
    return true;
}

void slc_load_consumers(slc_t *c, const ydoc_node_t *n, sl_config_t *cfg)
{
    if (!slc_list(c, n, "consumers"))
        return;
    const ydoc_node_t **seen = slc_calloc((size_t)n->n_items, sizeof *seen);
    int n_seen = 0;
    for (int i = 0; i < n->n_items; i++) {
        const ydoc_node_t *item = n->items[i];
        char p[SLC_PATH];
        ydoc_path_index(p, sizeof p, "consumers", i);
        if (item->invalid)
            continue;
        if (item->kind != YDOC_MAP) {
            slc_err(c, item->line, p, "expected a mapping, got %s", ydoc_describe(item));
            continue;
        }
        json_t *json = slc_to_json(c, item, p);
        if (!json)
            continue;
        if (check_consumer_name(c, item, p, json, seen, n_seen)) {
            seen[n_seen++] = item;
            json_array_append(cfg->consumers, json);
        }
        json_decref(json);
    }
    free(seen);
}
