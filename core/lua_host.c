/* The Lua host's process-wide state: the host table, the per-worker Lua
 * states, the memory limit, and small helpers the PDK files share. */
#include "lua_host.h"

#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua_json.h"

#define DEFAULT_MEM_LIMIT ((size_t)64 * 1024 * 1024)

const char *const sl_lua_phase_names[SL_LUA_N_PHASES] = {
    "rewrite", "access", "header_filter", "body_filter", "log",
};

static struct {
    const sl_host_t *host;
    int n_workers;
    char *lua_dir;
    size_t mem_limit;
    sl_lua_state_t **workers;   /* slot w is written only by worker w's thread */
} G;

/* Its address is the identity of sluice.response.exit() unwinding. */
static const char exit_marker;
/* Bumped by every shutdown, so worker data that outlived its state is
 * recognised and only freed. */
static unsigned generation = 1;

const sl_host_t *sl_lua_host(void) { return G.host; }
size_t sl_lua_default_mem_limit(void) { return G.mem_limit ? G.mem_limit : DEFAULT_MEM_LIMIT; }
int sl_lua_n_workers(void) { return G.n_workers; }
void *sl_lua_exit_marker(void) { return (void *)&exit_marker; }
unsigned sl_lua_generation(void) { return generation; }

int sl_lua_host_init(const sl_host_t *host, int n_workers, const char *lua_dir,
                     size_t mem_limit_bytes)
{
    if (G.host || !host || n_workers < 1 || host->abi_major != SLUICE_ABI_MAJOR ||
        host->size < sizeof(sl_host_t))
        return -1;
    G.workers = calloc((size_t)n_workers, sizeof *G.workers);
    G.lua_dir = lua_dir ? strdup(lua_dir) : NULL;
    if (!G.workers || (lua_dir && !G.lua_dir)) {
        free(G.workers);
        free(G.lua_dir);
        memset(&G, 0, sizeof G);
        return -1;
    }
    G.n_workers = n_workers;
    G.mem_limit = mem_limit_bytes ? mem_limit_bytes : DEFAULT_MEM_LIMIT;
    G.host = host;
    return 0;
}

void sl_lua_host_shutdown(void)
{
    for (int i = 0; i < G.n_workers && G.workers; i++) {
        if (G.workers[i]) {
            sl_lua_detach_requests(G.workers[i]);
            sl_lua_state_free(G.workers[i]);
        }
    }
    free(G.workers);
    free(G.lua_dir);
    memset(&G, 0, sizeof G);
    generation++;
}

/* ---- states ------------------------------------------------------------------ */

static int new_table_ref(lua_State *L)
{
    lua_newtable(L);
    return luaL_ref(L, LUA_REGISTRYINDEX);
}

static int prepare_state(lua_State *L)
{
    sl_lua_state_t *st = lua_touserdata(L, 1);
    sl_lua_sandbox_prepare(L, st);
    lua_createtable(L, 256, 0);
    st->ref_ctxs = luaL_ref(L, LUA_REGISTRYINDEX);
    st->ref_threads = new_table_ref(L);
    st->ref_results = new_table_ref(L);
    sl_lua_runner_prepare(L, st);
    sl_lua_json_open(L);
    st->ref_json = luaL_ref(L, LUA_REGISTRYINDEX);
    /* The first luaL_unref creates the registry's free-list slot, which
     * allocates; do it here, protected, so later unrefs never need to. */
    lua_pushboolean(L, 1);
    luaL_unref(L, LUA_REGISTRYINDEX, luaL_ref(L, LUA_REGISTRYINDEX));
    return 0;
}

sl_lua_state_t *sl_lua_state_new(int worker_id)
{
    sl_lua_state_t *st = calloc(1, sizeof *st);
    if (!st)
        return NULL;
    st->worker_id = worker_id;
    st->mem_limit = sl_lua_default_mem_limit();
    st->ref_ctxs = st->ref_threads = st->ref_results = LUA_NOREF;
    st->ref_enter = st->ref_traceback = LUA_NOREF;
    st->ref_json = st->ref_io_wrap = st->ref_guards = st->ref_format = LUA_NOREF;
    /* No counting allocator with a hard cap: only GC64 builds of LuaJIT
     * accept one at all, and an allocation refused where nothing catches
     * it (inside the collector, say) makes LuaJIT abort the process. The
     * limit is checked between calls instead (sl_lua_over_limit). */
    st->L = luaL_newstate();
    if (!st->L) {
        free(st);
        return NULL;
    }
    char err[256];
    if (sl_lua_protect(st->L, prepare_state, st, err, sizeof err) != 0) {
        if (G.host)
            G.host->log(SL_LOG_LEVEL_ERROR, "lua: cannot set up a Lua state: %s", err);
        sl_lua_state_free(st);
        return NULL;
    }
    return st;
}

void sl_lua_state_free(sl_lua_state_t *st)
{
    if (!st)
        return;
    if (st->L)
        lua_close(st->L);
    free(st->free_slots);
    free(st);
}

sl_lua_state_t *sl_lua_worker_state(int worker_id)
{
    if (!G.host || worker_id < 0 || worker_id >= G.n_workers)
        return NULL;
    if (!G.workers[worker_id])
        G.workers[worker_id] = sl_lua_state_new(worker_id);
    return G.workers[worker_id];
}

static size_t state_bytes(lua_State *L)
{
    return (size_t)lua_gc(L, LUA_GCCOUNT, 0) * 1024 + (size_t)lua_gc(L, LUA_GCCOUNTB, 0);
}

int sl_lua_over_limit(sl_lua_state_t *st, const char *plugin, sl_req_t *r)
{
    if (state_bytes(st->L) <= st->mem_limit)
        return 0;
    /* The count includes garbage not yet collected; only live data counts. */
    lua_gc(st->L, LUA_GCCOLLECT, 0);
    size_t used = state_bytes(st->L);
    if (used <= st->mem_limit)
        return 0;
    const char *req_id = r ? G.host->req_id(r) : NULL;
    G.host->log(SL_LOG_LEVEL_ERROR,
                "lua plugin %s (request %s): Lua memory limit exceeded: %zu bytes in use on "
                "worker %d, limit %zu",
                plugin, req_id ? req_id : "-", used, st->worker_id, st->mem_limit);
    return 1;
}

int sl_lua_host_stats(int worker_id, sl_lua_stats_t *out)
{
    memset(out, 0, sizeof *out);
    if (!G.host || worker_id < 0 || worker_id >= G.n_workers || !G.workers[worker_id])
        return -1;
    sl_lua_state_t *st = G.workers[worker_id];
    lua_State *L = st->L;
    out->mem_bytes = state_bytes(L);
    out->requests = st->n_reqs;
    out->suspended = st->n_suspended;
    const int refs[] = { st->ref_ctxs, st->ref_threads, st->ref_results };
    for (size_t i = 0; i < sizeof refs / sizeof refs[0]; i++) {
        sl_lua_getref(L, refs[i]);
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            out->registry_items++;
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }
    out->registry_items -= st->n_idle;
    return 0;
}

/* ---- helpers ----------------------------------------------------------------- */

int sl_lua_protect(lua_State *L, lua_CFunction fn, void *ud, char *err, size_t errlen)
{
    int top = lua_gettop(L);
    if (lua_cpcall(L, fn, ud) == 0)
        return 0;
    if (err && errlen)
        snprintf(err, errlen, "%s", sl_lua_errmsg(L, -1));
    lua_settop(L, top);
    return -1;
}

void sl_lua_getref(lua_State *L, int ref) { lua_rawgeti(L, LUA_REGISTRYINDEX, ref); }

void sl_lua_setfuncs(lua_State *L, sl_lua_state_t *st, const luaL_Reg *fns)
{
    for (; fns->name; fns++) {
        lua_pushlightuserdata(L, st);
        lua_pushcclosure(L, fns->func, 1);
        lua_setfield(L, -2, fns->name);
    }
}

const char *sl_lua_errmsg(lua_State *L, int idx)
{
    /* No lua_tostring on numbers: converting in place allocates, and this
     * runs outside protected calls. */
    static _Thread_local char number[64];
    if (lua_type(L, idx) == LUA_TSTRING)
        return lua_tostring(L, idx);
    if (lua_type(L, idx) == LUA_TNUMBER) {
        snprintf(number, sizeof number, "%.14g", lua_tonumber(L, idx));
        return number;
    }
    if (lua_islightuserdata(L, idx) && lua_touserdata(L, idx) == sl_lua_exit_marker())
        return "sluice.response.exit() outside a phase";
    return "(error object is not a string)";
}

/* ---- registry tables keyed by pointers ---------------------------------------- */

void sl_lua_reg_get(lua_State *L, int table_ref, void *key)
{
    sl_lua_getref(L, table_ref);
    lua_pushlightuserdata(L, key);
    lua_rawget(L, -2);
    lua_remove(L, -2);
}

/* Removing an existing key never allocates; setting nil on a missing key
 * could (LuaJIT inserts it), so look first. Safe outside protected calls. */
void sl_lua_reg_clear(lua_State *L, int table_ref, void *key)
{
    sl_lua_getref(L, table_ref);
    lua_pushlightuserdata(L, key);
    lua_rawget(L, -2);
    int present = !lua_isnil(L, -1);
    lua_pop(L, 1);
    if (present) {
        lua_pushlightuserdata(L, key);
        lua_pushnil(L);
        lua_rawset(L, -3);
    }
    lua_pop(L, 1);
}
