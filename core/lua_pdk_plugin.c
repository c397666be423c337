/* A Lua plugin file as a C plugin descriptor: reading and checking the
 * file, and the instance and per-worker lifecycle. The configure
 * trampolines are in lua_pdk_slots.c. */
#include <errno.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua_host.h"
#include "lua_json.h"
#include "plugin_schema.h"

#define MAX_SOURCE_BYTES ((size_t)4 * 1024 * 1024)
/* Top-level code and requires() run on the main thread while a config
 * loads; a runaway loop there must not hang a reload. Count hooks work
 * because scratch states do not switch the JIT on. */
#define BUDGET_HOOK_EVERY 10000
#define BUDGET_TICKS 5000   /* 50 million VM instructions */

static const char *const phase_fields[SL_LUA_N_PHASES] = {
    "rewrite", "access", "header_filter", "body_filter", "log",
};
static const uint32_t phase_bits[SL_LUA_N_PHASES] = {
    SL_PHASE_REWRITE, SL_PHASE_ACCESS, SL_PHASE_HEADER_FILTER, SL_PHASE_BODY_FILTER, SL_PHASE_LOG,
};
static const char *const known_fields[] = {
    "name", "version", "priority", "schema", "requires", "provides", "rewrite", "access",
    "header_filter", "body_filter", "log", NULL,
};

/* ---- the load-time budget --------------------------------------------------------- */

static _Thread_local int budget_ticks;

static void budget_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    if (++budget_ticks > BUDGET_TICKS) {
        /* level 0: inside a hook that is the Lua function being run */
        luaL_where(L, 0);
        lua_pushfstring(L, "ran for too long while loading (over %d million instructions)",
                        BUDGET_HOOK_EVERY / 1000 * BUDGET_TICKS / 1000);
        lua_concat(L, 2);
        lua_error(L);
    }
}

static void budget_on(lua_State *L)
{
    budget_ticks = 0;
    lua_sethook(L, budget_hook, LUA_MASKCOUNT, BUDGET_HOOK_EVERY);
}

static void budget_off(lua_State *L) { lua_sethook(L, NULL, 0, 0); }

/* ---- reading the file -------------------------------------------------------------- */

static char *read_source(const char *path, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(MAX_SOURCE_BYTES + 1);
    size_t n = buf ? fread(buf, 1, MAX_SOURCE_BYTES + 1, f) : 0;
    int bad = !buf || ferror(f);
    fclose(f);
    if (bad) {
        snprintf(err, errlen, "%s: cannot read: %s", path, buf ? strerror(errno) : "out of memory");
        free(buf);
        return NULL;
    }
    if (n > MAX_SOURCE_BYTES) {
        snprintf(err, errlen, "%s: larger than %zu bytes", path, MAX_SOURCE_BYTES);
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* ---- running the chunk --------------------------------------------------------------- */

/* Pushes the table the plugin's chunk returns, run in a new sandbox
 * environment named `who`. Raises "path:line: ..." or "path: ...". */
static void push_module_table(lua_State *L, sl_lua_state_t *st, const sl_lua_plugin_t *p,
                              const char *who)
{
    lua_pushfstring(L, "@%s", p->path);
    sl_lua_sandbox_push_env(L, st, who);
    int rc = sl_lua_sandbox_load(L, p->source, p->source_len, lua_tostring(L, -2));
    lua_remove(L, -2);
    if (rc != 0)
        lua_error(L);
    lua_call(L, 0, 1);
    if (!lua_istable(L, -1))
        luaL_error(L, "%s: must return a table (returned %s)", p->path, luaL_typename(L, -1));
}

static int is_name(const char *s, size_t len, const char *extra)
{
    if (len == 0 || len > 64)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || strchr(extra, ch)))
            return 0;
    }
    return 1;
}

/* The list at idx (a table of capability names) joined with commas, as a
 * malloc'd string in *out (NULL for an empty list). */
static void read_list(lua_State *L, int idx, const char *path, const char *field, char **out)
{
    size_t n = lua_objlen(L, idx);
    int count = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        count++;
        lua_pop(L, 1);
    }
    if ((size_t)count != n)
        luaL_error(L, "%s: %s must be a list of names", path, field);
    for (size_t i = 1; i <= n; i++) {
        lua_rawgeti(L, idx, (int)i);
        size_t len;
        const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &len) : NULL;
        if (!s || !is_name(s, len, "-_"))
            luaL_error(L, "%s: %s[%d] must be a name of a-z, 0-9, '-' and '_'", path, field, (int)i);
        lua_pop(L, 1);
    }
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (size_t i = 1; i <= n; i++) {
        if (i > 1)
            luaL_addchar(&b, ',');
        lua_rawgeti(L, idx, (int)i);
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    if (n > 0) {
        *out = strdup(lua_tostring(L, -1));
        if (!*out)
            luaL_error(L, "out of memory");
    }
    lua_pop(L, 1);
}

static char *dup_field(lua_State *L, int t, const char *field)
{
    lua_getfield(L, t, field);
    char *s = strdup(lua_tostring(L, -1));
    lua_pop(L, 1);
    if (!s)
        luaL_error(L, "out of memory");
    return s;
}

static void read_schema(lua_State *L, int t, sl_lua_plugin_t *p)
{
    lua_getfield(L, t, "schema");
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        /* No schema: the plugin takes no settings, and any given is a typo. */
        if (!(p->schema = strdup("{\"fields\":{}}")))
            luaL_error(L, "out of memory");
        return;
    }
    if (!lua_istable(L, -1))
        luaL_error(L, "%s: schema must be a table, not a %s", p->path, luaL_typename(L, -1));
    char err[512];
    json_t *j = sl_lua_to_json(L, -1, err, sizeof err);
    if (!j)
        luaL_error(L, "%s: schema: %s", p->path, err);
    if (!json_is_object(j)) {
        json_decref(j);
        luaL_error(L, "%s: schema must be a table with a fields table", p->path);
    }
    if (sl_schema_check(j, err, sizeof err) != 0) {
        json_decref(j);
        luaL_error(L, "%s: schema: %s", p->path, err);
    }
    p->schema = sl_lua_json_dumps(j, false);
    json_decref(j);
    if (!p->schema)
        luaL_error(L, "out of memory");
    lua_pop(L, 1);
}

typedef struct {
    sl_lua_plugin_t *p;
    sl_lua_state_t *st;
} inspect_args_t;

static int inspect_cb(lua_State *L)
{
    inspect_args_t *a = lua_touserdata(L, 1);
    sl_lua_plugin_t *p = a->p;
    sl_lua_state_t *st = a->st;
    budget_on(L);
    const char *slash = strrchr(p->path, '/');
    push_module_table(L, st, p, slash ? slash + 1 : p->path);
    budget_off(L);
    int t = lua_gettop(L);

    lua_pushnil(L);
    while (lua_next(L, t)) {
        lua_pop(L, 1);
        int known = 0;
        if (lua_type(L, -1) == LUA_TSTRING)
            for (int i = 0; known_fields[i] && !known; i++)
                known = strcmp(lua_tostring(L, -1), known_fields[i]) == 0;
        if (!known && lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "%s: the returned table may only have string keys", p->path);
        if (!known)
            luaL_error(L, "%s: unknown field \"%s\" (known: name, version, priority, schema, "
                          "requires, provides, rewrite, access, header_filter, body_filter, log)",
                       p->path, lua_tostring(L, -1));
    }

    lua_getfield(L, t, "name");
    size_t len;
    if (lua_isnil(L, -1))
        luaL_error(L, "%s: missing name", p->path);
    const char *name = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &len) : NULL;
    if (!name || !is_name(name, len, "-"))
        luaL_error(L, "%s: name must be a string of a-z, 0-9 and '-' (at most 64)", p->path);
    lua_pop(L, 1);
    p->name = dup_field(L, t, "name");

    lua_getfield(L, t, "version");
    int vt = lua_type(L, -1);
    lua_pop(L, 1);
    if (vt != LUA_TNIL && vt != LUA_TSTRING)
        luaL_error(L, "%s: version must be a string", p->path);
    if (vt == LUA_TSTRING)
        p->version = dup_field(L, t, "version");
    else if (!(p->version = strdup("0.0.0")))
        luaL_error(L, "out of memory");

    lua_getfield(L, t, "priority");
    if (!lua_isnil(L, -1)) {
        if (!sl_lua_is_integer_in(L, -1, -1e9, 1e9))
            luaL_error(L, "%s: priority must be an integer", p->path);
        p->desc.priority = (int)lua_tonumber(L, -1);
    }
    lua_pop(L, 1);

    read_schema(L, t, p);

    lua_getfield(L, t, "requires");
    if (lua_isfunction(L, -1))
        p->requires_is_fn = 1;
    else if (lua_istable(L, -1))
        read_list(L, lua_gettop(L), p->path, "requires", &p->requires);
    else if (!lua_isnil(L, -1))
        luaL_error(L, "%s: requires must be a list of names or a function(conf)", p->path);
    lua_pop(L, 1);

    lua_getfield(L, t, "provides");
    if (lua_istable(L, -1))
        read_list(L, lua_gettop(L), p->path, "provides", &p->provides);
    else if (!lua_isnil(L, -1))
        luaL_error(L, "%s: provides must be a list of names", p->path);
    lua_pop(L, 1);

    for (int i = 0; i < SL_LUA_N_PHASES; i++) {
        lua_getfield(L, t, phase_fields[i]);
        if (lua_isfunction(L, -1))
            p->desc.phases |= phase_bits[i];
        else if (!lua_isnil(L, -1))
            luaL_error(L, "%s: %s must be a function, not a %s", p->path, phase_fields[i],
                       luaL_typename(L, -1));
        lua_pop(L, 1);
    }
    return 0;
}

/* ---- instances -------------------------------------------------------------------------- */

typedef struct {
    sl_lua_plugin_t *p;
    sl_lua_state_t *st;
    const json_t *conf;
    char *out;
} requires_args_t;

static int requires_cb(lua_State *L)
{
    requires_args_t *a = lua_touserdata(L, 1);
    budget_on(L);
    push_module_table(L, a->st, a->p, a->p->name);
    lua_getfield(L, -1, "requires");
    if (a->conf)
        sl_lua_push_json(L, a->conf);
    else
        lua_newtable(L);
    lua_call(L, 1, 1);
    budget_off(L);
    if (lua_isnil(L, -1))
        return 0;
    if (!lua_istable(L, -1))
        luaL_error(L, "requires(conf) must return a list of names, not a %s", luaL_typename(L, -1));
    read_list(L, lua_gettop(L), "requires(conf)", "the result", &a->out);
    return 0;
}

void *sl_lua_configure(sl_lua_plugin_t *p, const json_t *conf, char *err, size_t errlen)
{
    sl_lua_instance_t *inst = calloc(1, sizeof *inst);
    if (!inst) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    inst->plugin = p;
    inst->conf = conf;
    if (p->requires_is_fn) {
        sl_lua_state_t *st = sl_lua_state_new(-1);
        requires_args_t a = { p, st, conf, NULL };
        char msg[512];
        int rc = st ? sl_lua_protect(st->L, requires_cb, &a, msg, sizeof msg) : -1;
        sl_lua_state_free(st);
        if (rc != 0) {
            snprintf(err, errlen, "%s: requires(conf) failed: %s", p->path,
                     st ? msg : "out of memory");
            free(a.out);
            free(inst);
            return NULL;
        }
        inst->requires = a.out;
    }
    return inst;
}

static void unconfigure(void *instance)
{
    sl_lua_instance_t *inst = instance;
    if (!inst)
        return;
    free(inst->requires);
    free(inst);
}

static const char *requires_of(void *instance)
{
    sl_lua_instance_t *inst = instance;
    return inst->plugin->requires_is_fn ? inst->requires : inst->plugin->requires;
}

static int plugin_init(const sl_host_t *host)
{
    (void)host;   /* the host table came with sl_lua_host_init */
    return 0;
}

/* ---- per worker ---------------------------------------------------------------------------- */

static void unload_module(sl_lua_state_t *st, sl_lua_mod_t *mod)
{
    for (int i = 0; i < SL_LUA_N_PHASES; i++) {
        luaL_unref(st->L, LUA_REGISTRYINDEX, mod->ref_fn[i]);
        mod->ref_fn[i] = LUA_NOREF;
    }
}

typedef struct {
    sl_lua_plugin_t *p;
    sl_lua_state_t *st;
    sl_lua_mod_t *mod;
} load_args_t;

static int load_module_cb(lua_State *L)
{
    load_args_t *a = lua_touserdata(L, 1);
    push_module_table(L, a->st, a->p, a->p->name);
    for (int i = 0; i < SL_LUA_N_PHASES; i++) {
        lua_getfield(L, -1, phase_fields[i]);
        if (lua_isfunction(L, -1))
            a->mod->ref_fn[i] = luaL_ref(L, LUA_REGISTRYINDEX);
        else
            lua_pop(L, 1);
    }
    return 0;
}

static int conf_cb(lua_State *L)
{
    sl_lua_wdata_t *wd = lua_touserdata(L, 1);
    if (!wd->inst->conf)
        lua_newtable(L);
    else if (!sl_lua_push_json(L, wd->inst->conf))
        luaL_error(L, "the configuration nests too deeply");
    wd->ref_conf = luaL_ref(L, LUA_REGISTRYINDEX);
    return 0;
}

static void *worker_init(void *instance, int worker_id)
{
    sl_lua_instance_t *inst = instance;
    sl_lua_plugin_t *p = inst->plugin;
    const sl_host_t *host = sl_lua_host();
    sl_lua_state_t *st = worker_id < p->n_workers ? sl_lua_worker_state(worker_id) : NULL;
    if (!st) {
        host->log(SL_LOG_LEVEL_ERROR, "lua plugin %s: no Lua state for worker %d", p->name,
                  worker_id);
        return NULL;
    }
    sl_lua_mod_t *mod = &p->mods[worker_id];
    char err[1024];
    if (mod->users == 0) {
        load_args_t a = { p, st, mod };
        if (sl_lua_protect(st->L, load_module_cb, &a, err, sizeof err) != 0) {
            unload_module(st, mod);
            host->log(SL_LOG_LEVEL_ERROR, "lua plugin %s: cannot load on worker %d: %s", p->name,
                      worker_id, err);
            return NULL;
        }
    }
    sl_lua_wdata_t *wd = calloc(1, sizeof *wd);
    if (wd) {
        wd->st = st;
        wd->inst = inst;
        wd->mod = mod;
        wd->ref_conf = LUA_NOREF;
        wd->generation = sl_lua_generation();
    }
    if (!wd || sl_lua_protect(st->L, conf_cb, wd, err, sizeof err) != 0) {
        host->log(SL_LOG_LEVEL_ERROR, "lua plugin %s: cannot build its conf on worker %d: %s",
                  p->name, worker_id, wd ? err : "out of memory");
        free(wd);
        if (mod->users == 0)
            unload_module(st, mod);
        return NULL;
    }
    mod->users++;
    return wd;
}

static void worker_fini(void *instance, void *worker_data)
{
    (void)instance;
    sl_lua_wdata_t *wd = worker_data;
    if (!wd)
        return;
    if (wd->generation != sl_lua_generation()) {
        free(wd);   /* its state was closed by sl_lua_host_shutdown */
        return;
    }
    luaL_unref(wd->st->L, LUA_REGISTRYINDEX, wd->ref_conf);
    if (--wd->mod->users == 0)
        unload_module(wd->st, wd->mod);
    free(wd);
}

/* ---- loading ------------------------------------------------------------------------------ */

void sl_lua_plugin_free(sl_plugin_desc_t *d)
{
    sl_lua_plugin_t *p = (sl_lua_plugin_t *)d;
    if (!p)
        return;
    sl_lua_slot_release(p->slot);
    free(p->path);
    free(p->name);
    free(p->version);
    free(p->schema);
    free(p->provides);
    free(p->requires);
    free(p->source);
    free(p->mods);
    free(p);
}

sl_plugin_desc_t *sl_lua_plugin_load(const char *path, char *err, size_t errlen)
{
    if (!sl_lua_host()) {
        snprintf(err, errlen, "%s: the Lua host is not initialised", path);
        return NULL;
    }
    sl_lua_plugin_t *p = calloc(1, sizeof *p);
    if (!p || !(p->path = strdup(path))) {
        free(p);
        snprintf(err, errlen, "%s: out of memory", path);
        return NULL;
    }
    p->slot = -1;
    p->source = read_source(path, &p->source_len, err, errlen);
    if (!p->source)
        goto fail;
    if (p->source_len > 0 && p->source[0] == '\033') {
        snprintf(err, errlen, "%s: precompiled bytecode is not accepted; give the source", path);
        goto fail;
    }
    inspect_args_t ia = { p, sl_lua_state_new(-1) };
    if (!ia.st) {
        snprintf(err, errlen, "%s: cannot create a Lua state", path);
        goto fail;
    }
    int rc = sl_lua_protect(ia.st->L, inspect_cb, &ia, err, errlen);
    sl_lua_state_free(ia.st);
    if (rc != 0)
        goto fail;

    p->n_workers = sl_lua_n_workers();
    p->mods = calloc((size_t)p->n_workers, sizeof *p->mods);
    if (!p->mods) {
        snprintf(err, errlen, "%s: out of memory", path);
        goto fail;
    }
    for (int w = 0; w < p->n_workers; w++) {
        for (int i = 0; i < SL_LUA_N_PHASES; i++)
            p->mods[w].ref_fn[i] = LUA_NOREF;
    }
    p->slot = sl_lua_slot_take(p);
    if (p->slot < 0) {
        snprintf(err, errlen, "%s: too many Lua plugins loaded at once (at most %d)", path,
                 SL_LUA_MAX_PLUGINS);
        goto fail;
    }

    sl_plugin_desc_t *d = &p->desc;
    d->abi_major = SLUICE_ABI_MAJOR;
    d->abi_minor = SLUICE_ABI_MINOR;
    d->name = p->name;
    d->version = p->version;
    d->schema = p->schema;
    d->provides = p->provides;
    d->init = plugin_init;
    d->configure = sl_lua_slot_configure(p->slot);
    d->requires = requires_of;
    d->unconfigure = unconfigure;
    d->worker_init = worker_init;
    d->worker_fini = worker_fini;
    if (d->phases & SL_PHASE_REWRITE)
        d->rewrite = sl_lua_run_rewrite;
    if (d->phases & SL_PHASE_ACCESS)
        d->access = sl_lua_run_access;
    if (d->phases & SL_PHASE_HEADER_FILTER)
        d->header_filter = sl_lua_run_header_filter;
    if (d->phases & SL_PHASE_BODY_FILTER)
        d->body_filter = sl_lua_run_body_filter;
    if (d->phases & SL_PHASE_LOG)
        d->log = sl_lua_run_log;
    return d;

fail:
    sl_lua_plugin_free(&p->desc);
    return NULL;
}
