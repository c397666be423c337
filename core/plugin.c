#include "plugin.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host.h"
#include "log.h"
#include "lua_host.h"
#include "plugin_schema.h"

#ifndef SLUICE_PLUGIN_DIR
#define SLUICE_PLUGIN_DIR "/usr/lib/sluice/plugins"
#endif
#ifndef SLUICE_SOURCE_PLUGIN_DIR
#define SLUICE_SOURCE_PLUGIN_DIR "/usr/share/sluice/plugins"
#endif
#ifndef SLUICE_LUA_DIR
#define SLUICE_LUA_DIR "/usr/share/sluice/lua"
#endif

static struct {
    const sl_host_t *host;
    int n_workers;
    sl_plugin_type_t *c_types;   /* loaded once, never unloaded */
    pthread_mutex_t lock;
} G = { .lock = PTHREAD_MUTEX_INITIALIZER };

int sl_plugins_global_init(const sl_host_t *host, int n_workers, const char *exe_path)
{
    (void)exe_path;
    G.host = host;
    G.n_workers = n_workers;
    const char *lua_dir = getenv("SLUICE_LUA_DIR");
    return sl_lua_host_init(host, n_workers, lua_dir ? lua_dir : SLUICE_LUA_DIR, 0);
}

void sl_plugins_global_shutdown(void)
{
    sl_lua_host_shutdown();
    sl_plugin_type_t *t = G.c_types;
    while (t) {
        sl_plugin_type_t *next = t->next;
        if (t->initialised && t->desc->fini)
            t->desc->fini();
        json_decref(t->schema);
        free(t->name);
        free(t->path);
        free(t);
        t = next;
    }
    G.c_types = NULL;
}

/* ---- finding and loading types ----------------------------------------------- */

static bool readable(const char *p) { return access(p, R_OK) == 0; }

/* Search order: the config's plugin_dirs, $SLUICE_PLUGIN_PATH (colon
 * separated), the built plugins, the bundled Lua plugins. In each: NAME.so,
 * NAME/NAME.so, NAME.lua, NAME/NAME.lua. */
static bool find_plugin(const sl_config_t *cfg, const char *name, char *out, size_t len)
{
    const char *dirs[64];
    int n = 0;
    for (int i = 0; i < cfg->n_plugin_dirs && n < 60; i++)
        dirs[n++] = cfg->plugin_dirs[i];
    char envbuf[4096] = "";
    const char *env = getenv("SLUICE_PLUGIN_PATH");
    if (env) {
        snprintf(envbuf, sizeof envbuf, "%s", env);
        for (char *save = NULL, *tok = strtok_r(envbuf, ":", &save); tok && n < 62;
             tok = strtok_r(NULL, ":", &save))
            dirs[n++] = tok;
    }
    dirs[n++] = SLUICE_PLUGIN_DIR;
    dirs[n++] = SLUICE_SOURCE_PLUGIN_DIR;
    static const char *const patterns[] = { "%s/%s.so", "%s/%s/%s.so", "%s/%s.lua", "%s/%s/%s.lua" };
    for (int d = 0; d < n; d++) {
        for (int p = 0; p < 4; p++) {
            if (p == 1 || p == 3)
                snprintf(out, len, patterns[p], dirs[d], name, name);
            else
                snprintf(out, len, patterns[p], dirs[d], name);
            if (readable(out))
                return true;
        }
    }
    return false;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static json_t *parse_schema(const sl_plugin_desc_t *d, char *err, size_t errlen)
{
    if (!d->schema)
        return NULL;
    json_error_t je;
    json_t *s = json_loads(d->schema, 0, &je);
    if (!s) {
        snprintf(err, errlen, "its schema is not valid JSON: %s", je.text);
        return NULL;
    }
    if (sl_schema_check(s, err, errlen) != 0) {
        json_decref(s);
        return NULL;
    }
    return s;
}

static sl_plugin_type_t *load_c_type(const char *name, const char *path, char *err, size_t errlen)
{
    pthread_mutex_lock(&G.lock);
    for (sl_plugin_type_t *t = G.c_types; t; t = t->next) {
        if (strcmp(t->path, path) == 0) {
            pthread_mutex_unlock(&G.lock);
            return t;
        }
    }
    sl_plugin_type_t *t = NULL;
    /* RTLD_LOCAL: two plugins may use the same symbol names. */
    void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!dl) {
        snprintf(err, errlen, "cannot load %s: %s", path, dlerror());
        goto out;
    }
    sl_plugin_entry_fn entry = (sl_plugin_entry_fn)dlsym(dl, SLUICE_PLUGIN_ENTRY_NAME);
    const sl_plugin_desc_t *d = entry ? entry() : NULL;
    if (!d) {
        snprintf(err, errlen, "%s does not export %s()", path, SLUICE_PLUGIN_ENTRY_NAME);
        goto out;   /* never dlclose: the library's constructors may have run */
    }
    if (d->abi_major != SLUICE_ABI_MAJOR) {
        snprintf(err, errlen,
                 "%s was built for plugin ABI %u.%u but this gateway speaks ABI %d.%d; rebuild it "
                 "against this gateway's SDK",
                 path, d->abi_major, d->abi_minor, SLUICE_ABI_MAJOR, SLUICE_ABI_MINOR);
        goto out;
    }
    if (d->abi_minor > SLUICE_ABI_MINOR) {
        snprintf(err, errlen, "%s needs plugin ABI %u.%u; this gateway has %d.%d", path,
                 d->abi_major, d->abi_minor, SLUICE_ABI_MAJOR, SLUICE_ABI_MINOR);
        goto out;
    }
    if (!d->name || strcmp(d->name, name) != 0) {
        snprintf(err, errlen, "%s calls itself \"%s\", not \"%s\"", path, d->name ? d->name : "",
                 name);
        goto out;
    }
    char serr[256];
    json_t *schema = parse_schema(d, serr, sizeof serr);
    if (d->schema && !schema) {
        snprintf(err, errlen, "%s: %s", path, serr);
        goto out;
    }
    if (d->init && d->init(G.host) != 0) {
        snprintf(err, errlen, "%s: init() failed", path);
        json_decref(schema);
        goto out;
    }
    t = calloc(1, sizeof *t);
    t->name = strdup(name);
    t->path = strdup(path);
    t->kind = SL_PLUGIN_KIND_C;
    t->desc = d;
    t->schema = schema;
    t->initialised = true;
    t->next = G.c_types;
    G.c_types = t;
out:
    pthread_mutex_unlock(&G.lock);
    return t;
}

static sl_plugin_type_t *load_lua_type(sl_plugins_t *p, const char *name, const char *path,
                                       char *err, size_t errlen)
{
    for (int i = 0; i < p->n_lua_types; i++)
        if (strcmp(p->lua_types[i]->path, path) == 0)
            return p->lua_types[i];
    sl_plugin_desc_t *d = sl_lua_plugin_load(path, err, errlen);
    if (!d)
        return NULL;
    if (!d->name || strcmp(d->name, name) != 0) {
        snprintf(err, errlen, "%s calls itself \"%s\", not \"%s\"", path, d->name ? d->name : "",
                 name);
        sl_lua_plugin_free(d);
        return NULL;
    }
    char serr[256];
    json_t *schema = parse_schema(d, serr, sizeof serr);
    if (d->schema && !schema) {
        snprintf(err, errlen, "%s: %s", path, serr);
        sl_lua_plugin_free(d);
        return NULL;
    }
    sl_plugin_type_t *t = calloc(1, sizeof *t);
    sl_plugin_type_t **grown = realloc(p->lua_types, sizeof *grown * (size_t)(p->n_lua_types + 1));
    if (!t || !grown) {
        free(t);
        if (grown)
            p->lua_types = grown;
        json_decref(schema);
        sl_lua_plugin_free(d);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    p->lua_types = grown;
    t->name = strdup(name);
    t->path = strdup(path);
    t->kind = SL_PLUGIN_KIND_LUA;
    t->desc = d;
    t->schema = schema;
    p->lua_types[p->n_lua_types++] = t;
    return t;
}

/* ---- instances and chains ------------------------------------------------------ */

static sl_plugin_inst_t *make_instance(sl_plugins_t *p, const sl_config_t *cfg,
                                       const sl_plugin_ref_t *ref, const char *where_key,
                                       sl_errors_t *errs)
{
    char where[512];
    snprintf(where, sizeof where, "%s:%d: %s (%s)", cfg->path ? cfg->path : "config", ref->line,
             where_key, ref->name);
    char path[4096], err[1024];
    if (!find_plugin(cfg, ref->name, path, sizeof path)) {
        sl_errors_add(errs, "%s: unknown plugin \"%s\" (looked in plugin_dirs, $SLUICE_PLUGIN_PATH "
                            "and the built-in plugin directories)",
                      where, ref->name);
        return NULL;
    }
    sl_plugin_type_t *t = ends_with(path, ".lua") ? load_lua_type(p, ref->name, path, err, sizeof err)
                                                  : load_c_type(ref->name, path, err, sizeof err);
    if (!t) {
        sl_errors_add(errs, "%s: %s", where, err);
        return NULL;
    }
    json_t *conf;
    if (t->schema) {
        conf = sl_schema_apply(t->schema, ref->conf, where, errs);
        if (!conf)
            return NULL;
    } else {
        conf = ref->conf ? json_deep_copy(ref->conf) : json_object();
    }
    sl_plugin_inst_t *inst = calloc(1, sizeof *inst);
    inst->type = t;
    inst->conf = conf;
    inst->n_workers = p->n_workers;
    inst->where = strdup(where);
    inst->worker_data = calloc((size_t)p->n_workers, sizeof *inst->worker_data);
    err[0] = '\0';
    if (t->desc->configure) {
        inst->state = t->desc->configure((const sl_json_t *)conf, err, sizeof err);
        if (!inst->state) {
            sl_errors_add(errs, "%s: %s", where, err[0] ? err : "invalid configuration");
            json_decref(conf);
            free(inst->where);
            free(inst->worker_data);
            free(inst);
            return NULL;
        }
    }
    sl_plugin_inst_t **grown = realloc(p->insts, sizeof *grown * (size_t)(p->n_insts + 1));
    if (grown) {
        p->insts = grown;
        p->insts[p->n_insts++] = inst;
    }
    return inst;
}

static bool list_has(const char *list, const char *item, size_t item_len)
{
    if (!list)
        return false;
    const char *p = list;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *e = p;
        while (*e && *e != ',')
            e++;
        const char *t = e;
        while (t > p && t[-1] == ' ')
            t--;
        if ((size_t)(t - p) == item_len && memcmp(p, item, item_len) == 0)
            return true;
        p = e;
    }
    return false;
}

/* Each capability an instance requires must be provided earlier in its chain. */
static void check_requirements(const sl_chain_t *c, sl_errors_t *errs)
{
    for (int i = 0; i < c->n; i++) {
        sl_plugin_inst_t *inst = c->items[i];
        const sl_plugin_desc_t *d = inst->type->desc;
        const char *req = d->requires ? d->requires(inst->state) : NULL;
        if (!req)
            continue;
        const char *p = req;
        while (*p) {
            while (*p == ' ' || *p == ',')
                p++;
            const char *e = p;
            while (*e && *e != ',')
                e++;
            size_t n = (size_t)(e - p);
            while (n > 0 && p[n - 1] == ' ')
                n--;
            bool found = false;
            for (int j = 0; j < i && !found; j++)
                found = list_has(c->items[j]->type->desc->provides, p, n);
            if (n > 0 && !found)
                sl_errors_add(errs,
                              "%s: needs a plugin that provides \"%.*s\" earlier in the chain "
                              "(for \"consumer\": an auth plugin such as key-auth)",
                              inst->where, (int)n, p);
            p = e;
        }
    }
}

sl_plugins_t *sl_plugins_build(const sl_config_t *cfg, int n_workers, sl_errors_t *errs)
{
    sl_plugins_t *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->n_workers = n_workers;
    p->chains = calloc((size_t)cfg->n_routes + 1, sizeof *p->chains);
    sl_plugin_inst_t **global = calloc((size_t)cfg->n_plugins + 1, sizeof *global);
    int before = errs->n;
    sl_host_set_building_config(cfg);
    for (int i = 0; i < cfg->n_plugins; i++) {
        char key[64];
        snprintf(key, sizeof key, "plugins[%d]", i);
        global[i] = make_instance(p, cfg, &cfg->plugins[i], key, errs);
    }
    for (int r = 0; r < cfg->n_routes; r++) {
        const sl_route_t *route = &cfg->routes[r];
        sl_chain_t *c = &p->chains[r];
        c->items = calloc((size_t)(cfg->n_plugins + route->n_plugins) + 1, sizeof *c->items);
        /* Global plugins first, in order, unless the route configures the
         * same plugin: then it runs once, where the route puts it, with the
         * route's config. */
        for (int g = 0; g < cfg->n_plugins; g++) {
            bool overridden = false;
            for (int k = 0; k < route->n_plugins && !overridden; k++)
                overridden = strcmp(route->plugins[k].name, cfg->plugins[g].name) == 0;
            if (!overridden && global[g])
                c->items[c->n++] = global[g];
        }
        for (int k = 0; k < route->n_plugins; k++) {
            char key[96];
            snprintf(key, sizeof key, "routes[%d].plugins[%d]", r, k);
            sl_plugin_inst_t *inst = make_instance(p, cfg, &route->plugins[k], key, errs);
            if (inst)
                c->items[c->n++] = inst;
        }
        for (int i = 0; i < c->n; i++)
            c->phases |= c->items[i]->type->desc->phases;
        check_requirements(c, errs);
    }
    free(global);
    sl_host_set_building_config(NULL);
    if (errs->n > before) {
        sl_plugins_free(p);
        return NULL;
    }
    return p;
}

void sl_plugins_worker_init(sl_plugins_t *p, int worker_id)
{
    for (int i = 0; i < p->n_insts; i++) {
        sl_plugin_inst_t *inst = p->insts[i];
        if (inst->type->desc->worker_init)
            inst->worker_data[worker_id] = inst->type->desc->worker_init(inst->state, worker_id);
    }
}

void sl_plugins_worker_fini(sl_plugins_t *p, int worker_id)
{
    for (int i = 0; i < p->n_insts; i++) {
        sl_plugin_inst_t *inst = p->insts[i];
        if (inst->type->desc->worker_fini && inst->worker_data[worker_id])
            inst->type->desc->worker_fini(inst->state, inst->worker_data[worker_id]);
        inst->worker_data[worker_id] = NULL;
    }
}

void sl_plugins_free(sl_plugins_t *p)
{
    if (!p)
        return;
    for (int i = 0; i < p->n_insts; i++) {
        sl_plugin_inst_t *inst = p->insts[i];
        if (inst->state && inst->type->desc->unconfigure)
            inst->type->desc->unconfigure(inst->state);
        json_decref(inst->conf);
        free(inst->worker_data);
        free(inst->where);
        free(inst);
    }
    free(p->insts);
    if (p->chains) {
        /* chains[] has n_routes entries; the last is zeroed (calloc + 1) */
        for (sl_chain_t *c = p->chains; c->items; c++)
            free(c->items);
        free(p->chains);
    }
    for (int i = 0; i < p->n_lua_types; i++) {
        sl_plugin_type_t *t = p->lua_types[i];
        sl_lua_plugin_free((sl_plugin_desc_t *)t->desc);
        json_decref(t->schema);
        free(t->name);
        free(t->path);
        free(t);
    }
    free(p->lua_types);
    free(p);
}
