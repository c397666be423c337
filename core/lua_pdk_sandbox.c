/* The sandbox plugin code runs in: which globals a plugin sees, what
 * require() may load, and the one-time hardening of each Lua state.
 *
 * Every plugin gets its own environment table whose library tables are
 * copies, so one plugin cannot change what another sees, and whose require()
 * caches its own copies of the sluice.* modules. The state's real globals
 * are never reachable from plugin code: getfenv, debug and load* are absent,
 * and the string metatable (the one shared object every string leads to)
 * is locked. */
#include <lauxlib.h>
#include <lualib.h>
#include <string.h>

#include "lua_host.h"
#include "lua_json.h"

/* Globals copied as they are. Everything not listed (io, os.execute, ffi,
 * debug, jit, package, load*, dofile, string.dump, collectgarbage,
 * getfenv/setfenv, newproxy, module, coroutine) is absent: coroutine
 * because a plugin yielding on its own would confuse the runner. */
static const char *const plain_globals[] = {
    "assert", "error", "ipairs", "next", "pairs", "select", "tonumber", "tostring", "type",
    "unpack", "setmetatable", "getmetatable", "rawequal", "rawget", "rawset", NULL,
};

/* pcall and xpcall that let sluice.response.exit() through: exit unwinds
 * with a marker error, which a plugin's own pcall must not swallow. Written
 * in Lua (not C) so that PDK I/O may still yield inside a pcall. */
static const char guards_src[] =
    "local pcall, xpcall, error, marker = ...\n"
    "local function pass(ok, ...)\n"
    "  if not ok and (...) == marker then error(marker, 0) end\n"
    "  return ok, ...\n"
    "end\n"
    "return {\n"
    "  pcall = function(f, ...) return pass(pcall(f, ...)) end,\n"
    "  xpcall = function(f, handler, ...)\n"
    "    return pass(xpcall(f, function(e)\n"
    "      if e == marker then return e end\n"
    "      return handler(e)\n"
    "    end, ...))\n"
    "  end,\n"
    "}\n";

static void open_lib(lua_State *L, lua_CFunction open, const char *name)
{
    lua_pushcfunction(L, open);
    lua_pushstring(L, name);
    lua_call(L, 1, 0);
}

/* string.rep is the one-line way to ask for gigabytes; refuse results past
 * the state's memory limit before they are built. */
static int safe_rep(lua_State *L)
{
    sl_lua_state_t *st = SL_LUA_UP_STATE(L);
    size_t len, seplen = 0;
    luaL_checklstring(L, 1, &len);
    lua_Number n = luaL_checknumber(L, 2);
    luaL_optlstring(L, 3, "", &seplen);
    if (n > 0 && ((double)len + (double)seplen) * n > (double)st->mem_limit)
        return luaL_error(L, "string.rep: the result would exceed the Lua memory limit");
    lua_pushvalue(L, lua_upvalueindex(2));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    return 1;
}

void sl_lua_sandbox_prepare(lua_State *L, sl_lua_state_t *st)
{
    open_lib(L, luaopen_base, "");
    open_lib(L, luaopen_table, LUA_TABLIBNAME);
    open_lib(L, luaopen_string, LUA_STRLIBNAME);
    open_lib(L, luaopen_math, LUA_MATHLIBNAME);
    open_lib(L, luaopen_os, LUA_OSLIBNAME);
    /* Opening the jit library is what switches the compiler on. Scratch
     * states only run a plugin's top level once: the interpreter is enough
     * there, and count hooks (the load-time budget) only fire in it. */
    if (st->worker_id >= 0)
        open_lib(L, luaopen_jit, LUA_JITLIBNAME);
    lua_pushnil(L);
    lua_setglobal(L, LUA_JITLIBNAME);

    /* The real string table is what every string's methods resolve to, so
     * it is patched in place, not only in the copies plugins get. */
    lua_getglobal(L, LUA_STRLIBNAME);
    lua_pushnil(L);
    lua_setfield(L, -2, "dump");
    lua_pushlightuserdata(L, st);
    lua_getfield(L, -2, "rep");
    lua_pushcclosure(L, safe_rep, 2);
    lua_setfield(L, -2, "rep");
    lua_getfield(L, -1, "format");
    st->ref_format = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pop(L, 1);

    /* getmetatable("") would hand out the shared metatable (and through its
     * __index the real string table) to every plugin of the state. */
    lua_pushliteral(L, "");
    lua_getmetatable(L, -1);
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 2);

    if (luaL_loadbuffer(L, guards_src, sizeof guards_src - 1, "=sluice.guards") != 0)
        lua_error(L);
    lua_getglobal(L, "pcall");
    lua_getglobal(L, "xpcall");
    lua_getglobal(L, "error");
    lua_pushlightuserdata(L, sl_lua_exit_marker());
    lua_call(L, 4, 1);
    st->ref_guards = luaL_ref(L, LUA_REGISTRYINDEX);
}

static void push_copy(lua_State *L, const char *global)
{
    lua_newtable(L);
    lua_getglobal(L, global);
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, -5);
    }
    lua_pop(L, 1);
}

/* ---- require ------------------------------------------------------------------ */

static const char *const submodules[] = {
    "request", "response", "upstream", "ctx", "log", "shared", "redis", "http", "json", "geoip",
    "sleep", NULL,
};

static void push_json_copy(lua_State *L, sl_lua_state_t *st)
{
    lua_newtable(L);
    sl_lua_getref(L, st->ref_json);
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, -5);
    }
    lua_pop(L, 1);
}

/* Pushes a new instance of the module, or returns 0 for an unknown name. */
static int open_module(lua_State *L, sl_lua_state_t *st, const char *name, const char *who)
{
    if (strncmp(name, "sluice.", 7) != 0)
        return 0;
    const char *sub = name + 7;
    if (strcmp(sub, "request") == 0)
        sl_lua_open_request(L, st);
    else if (strcmp(sub, "response") == 0)
        sl_lua_open_response(L, st);
    else if (strcmp(sub, "upstream") == 0)
        sl_lua_open_upstream(L, st);
    else if (strcmp(sub, "ctx") == 0)
        sl_lua_open_ctx(L, st);
    else if (strcmp(sub, "log") == 0)
        sl_lua_open_log(L, st, who);
    else if (strcmp(sub, "shared") == 0)
        sl_lua_open_shared(L, st);
    else if (strcmp(sub, "redis") == 0)
        sl_lua_open_redis(L, st);
    else if (strcmp(sub, "http") == 0)
        sl_lua_open_http(L, st);
    else if (strcmp(sub, "json") == 0)
        push_json_copy(L, st);
    else if (strcmp(sub, "geoip") == 0)
        sl_lua_open_geoip(L, st);
    else if (strcmp(sub, "sleep") == 0)
        sl_lua_push_sleep(L, st);   /* a function, not a table */
    else
        return 0;
    return 1;
}

/* Pushes loaded[name], opening and caching the module on first use. */
static void require_cached(lua_State *L, sl_lua_state_t *st, int loaded, const char *name,
                           const char *who)
{
    lua_getfield(L, loaded, name);
    if (!lua_isnil(L, -1))
        return;
    lua_pop(L, 1);
    if (strcmp(name, "sluice") == 0) {
        /* The umbrella module shares the submodules' cached instances. */
        lua_newtable(L);
        for (int i = 0; submodules[i]; i++) {
            lua_pushfstring(L, "sluice.%s", submodules[i]);
            require_cached(L, st, loaded, lua_tostring(L, -1), who);
            lua_setfield(L, -3, submodules[i]);
            lua_pop(L, 1);
        }
    } else if (!open_module(L, st, name, who)) {
        luaL_error(L, "module '%s' not found: plugins may require only the sluice.* modules",
                   name);
    }
    lua_pushvalue(L, -1);
    lua_setfield(L, loaded, name);
}

/* Upvalues: the state, the environment's loaded-modules table, the plugin's
 * name for logs. */
static int sandbox_require(lua_State *L)
{
    sl_lua_state_t *st = SL_LUA_UP_STATE(L);
    const char *name = luaL_checkstring(L, 1);
    require_cached(L, st, lua_upvalueindex(2), name, lua_tostring(L, lua_upvalueindex(3)));
    return 1;
}

/* ---- environments -------------------------------------------------------------- */

void sl_lua_sandbox_push_env(lua_State *L, sl_lua_state_t *st, const char *who)
{
    lua_newtable(L);
    int env = lua_gettop(L);
    for (int i = 0; plain_globals[i]; i++) {
        lua_getglobal(L, plain_globals[i]);
        lua_setfield(L, env, plain_globals[i]);
    }
    sl_lua_getref(L, st->ref_guards);
    lua_getfield(L, -1, "pcall");
    lua_setfield(L, env, "pcall");
    lua_getfield(L, -1, "xpcall");
    lua_setfield(L, env, "xpcall");
    lua_pop(L, 1);

    push_copy(L, LUA_STRLIBNAME);
    lua_setfield(L, env, LUA_STRLIBNAME);
    push_copy(L, LUA_TABLIBNAME);
    lua_setfield(L, env, LUA_TABLIBNAME);
    push_copy(L, LUA_MATHLIBNAME);
    lua_setfield(L, env, LUA_MATHLIBNAME);

    lua_newtable(L);
    lua_getglobal(L, LUA_OSLIBNAME);
    static const char *const os_fns[] = { "time", "clock", "date", NULL };
    for (int i = 0; os_fns[i]; i++) {
        lua_getfield(L, -1, os_fns[i]);
        lua_setfield(L, -3, os_fns[i]);
    }
    lua_pop(L, 1);
    lua_setfield(L, env, LUA_OSLIBNAME);

    sl_lua_push_print(L, st, who);
    lua_setfield(L, env, "print");

    lua_pushlightuserdata(L, st);
    lua_newtable(L);
    lua_pushstring(L, who);
    lua_pushcclosure(L, sandbox_require, 3);
    lua_setfield(L, env, "require");

    lua_pushvalue(L, env);
    lua_setfield(L, env, "_G");
}

int sl_lua_sandbox_load(lua_State *L, const char *src, size_t len, const char *chunkname)
{
    /* Text only: LuaJIT's bytecode loader trusts its input. */
    int rc = luaL_loadbufferx(L, src, len, chunkname, "t");
    if (rc == 0) {
        lua_pushvalue(L, -2);
        lua_setfenv(L, -2);
    }
    lua_remove(L, -2);
    return rc;
}
