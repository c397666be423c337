/* Plugin types, instances and chains.
 *
 * A type is loaded code: a C .so (dlopen'd once per process and never
 * unloaded, so no request can run code that went away) or a Lua file (read
 * again on every config load, so a reload picks up edits). Both are driven
 * through one sl_plugin_desc_t: Lua files get a descriptor of trampolines
 * from lua_host.c.
 *
 * An instance is a type plus one validated config, created when a snapshot
 * is built; a route's chain is the ordered list of instances that run for
 * it. */
#ifndef SLUICE_PLUGIN_CORE_H
#define SLUICE_PLUGIN_CORE_H

#include <jansson.h>
#include <stdbool.h>

#include "config.h"
#include "sluice/host.h"
#include "sluice/plugin.h"

typedef enum { SL_PLUGIN_KIND_C = 0, SL_PLUGIN_KIND_LUA } sl_plugin_kind_t;

typedef struct sl_plugin_type {
    char *name;
    char *path;
    sl_plugin_kind_t kind;
    const sl_plugin_desc_t *desc;
    json_t *schema;               /* parsed desc->schema, or NULL for none */
    bool initialised;             /* desc->init ran (C types, once per process) */
    struct sl_plugin_type *next;  /* registry list (C types only) */
} sl_plugin_type_t;

typedef struct sl_plugin_inst {
    sl_plugin_type_t *type;
    json_t *conf;                 /* validated, defaults filled */
    void *state;                  /* what desc->configure returned */
    void **worker_data;           /* [n_workers], from desc->worker_init */
    int n_workers;
    char *where;                  /* "file:line: routes[0].plugins[1] (name)" for messages */
} sl_plugin_inst_t;

typedef struct sl_chain {
    sl_plugin_inst_t **items;
    int n;
    uint32_t phases;              /* union of the instances' phases */
} sl_chain_t;

/* Every plugin instance and chain of one snapshot. */
typedef struct sl_plugins {
    sl_plugin_inst_t **insts;
    int n_insts;
    sl_chain_t *chains;           /* [n_routes] */
    sl_plugin_type_t **lua_types; /* loaded for this snapshot only */
    int n_lua_types;
    int n_workers;
} sl_plugins_t;

/* Process-wide set-up: the host table plugins get, the built-in plugin
 * directory (next to the binary), the Lua module directory. */
int sl_plugins_global_init(const sl_host_t *host, int n_workers, const char *exe_path);
void sl_plugins_global_shutdown(void);

/* Builds every instance and chain of cfg; errors (all of them) go to errs. */
sl_plugins_t *sl_plugins_build(const sl_config_t *cfg, int n_workers, sl_errors_t *errs);
/* worker_init for every instance on worker `id` (call on that worker's thread). */
void sl_plugins_worker_init(sl_plugins_t *p, int worker_id);
void sl_plugins_worker_fini(sl_plugins_t *p, int worker_id);
void sl_plugins_free(sl_plugins_t *p);

#endif
