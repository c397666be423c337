/* The I/O side of the coroutine runner, as the PDK functions that wait
 * (sluice.redis, sluice.http, sluice.sleep) see it.
 *
 * Such a function checks its arguments, copies what the host call needs
 * into c->io and yields through sl_lua_io_yield; the runner then starts the
 * host call (c->io.start). Each callback stores its result with
 * sl_lua_io_capture (into a registry table, in a protected call) and calls
 * sl_lua_io_settle; once every expected result is in, the coroutine
 * resumes inside a small Lua wrapper that fetches the results (io_take)
 * and returns them as the PDK function's own. */
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#include "lua_host.h"

sl_lua_call_t *sl_lua_io_begin(lua_State *L, sl_lua_state_t *st, const char *fname)
{
    /* Level 2: I/O functions are called through a Lua wrapper. */
    sl_lua_call_t *c = st->current;
    if (!c)
        sl_lua_fail_at(L, 2, fname, "no request here (only phase functions serve a request)");
    if (!c->co)
        sl_lua_fail_at(L, 2, fname, "cannot yield in %s", sl_lua_phase_names[c->phase]);
    if (c->co != L || !lua_isyieldable(L))
        sl_lua_fail_at(L, 2, fname, "cannot yield here (inside a C function such as string.gsub "
                                    "or a table.sort comparator)");
    free(c->io.items);
    memset(&c->io, 0, sizeof c->io);
    return c;
}

int sl_lua_io_yield(lua_State *L, sl_lua_call_t *c)
{
    (void)c;
    return lua_yield(L, 0);
}

typedef struct {
    sl_lua_call_t *c;
    int index;
    int (*push)(lua_State *L, void *ud);
    void *ud;
} capture_args_t;

static void push_new_array(lua_State *L, sl_lua_state_t *st)
{
    sl_lua_getref(L, st->ref_json);
    lua_getfield(L, -1, "array");
    lua_remove(L, -2);
    lua_call(L, 0, 1);
}

static int capture_cb(lua_State *L)
{
    capture_args_t *a = lua_touserdata(L, 1);
    sl_lua_state_t *st = a->c->wd->st;
    sl_lua_getref(L, st->ref_results);
    int results = lua_gettop(L);
    int n = a->push(L, a->ud);   /* the values land right above `results` */
    lua_createtable(L, n, 1);
    for (int i = n; i >= 1; i--) {
        lua_pushvalue(L, results + i);
        lua_rawseti(L, -2, i);
    }
    if (a->index == 0) {
        lua_pushinteger(L, n);
        lua_setfield(L, -2, "n");
        lua_pushlightuserdata(L, a->c);
        lua_insert(L, -2);
        lua_rawset(L, results);
        return 0;
    }
    int item = lua_gettop(L);
    lua_pushlightuserdata(L, a->c);
    lua_rawget(L, results);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        push_new_array(L, st);
        lua_pushlightuserdata(L, a->c);
        lua_pushvalue(L, -2);
        lua_rawset(L, results);
    }
    lua_pushvalue(L, item);
    lua_rawseti(L, -2, a->index);
    return 0;
}

void sl_lua_io_capture(sl_lua_call_t *c, int index, int (*push)(lua_State *L, void *ud), void *ud)
{
    capture_args_t a = { c, index, push, ud };
    if (sl_lua_protect(c->wd->st->L, capture_cb, &a, NULL, 0) != 0)
        c->io.failed = "out of memory while reading the result";
}

/* Runs inside the coroutine, right after it is resumed: hands the captured
 * results to the PDK function that yielded. */
static int io_take(lua_State *L)
{
    sl_lua_state_t *st = SL_LUA_UP_STATE(L);
    sl_lua_call_t *c = st->current;
    if (!c || c->co != L)
        return luaL_error(L, "sluice: I/O results read outside their call");
    sl_lua_reg_get(L, st->ref_results, c);
    sl_lua_reg_clear(L, st->ref_results, c);
    if (c->io.failed) {
        lua_pushnil(L);
        lua_pushstring(L, c->io.failed);
        c->io.failed = NULL;
        return 2;
    }
    if (c->io.many) {
        if (lua_isnil(L, -1)) {
            lua_pop(L, 1);
            push_new_array(L, st);
        }
        return 1;
    }
    if (lua_isnil(L, -1))
        return 0;
    lua_getfield(L, -1, "n");
    int n = (int)lua_tointeger(L, -1);
    lua_pop(L, 1);
    luaL_checkstack(L, n, "too many results");
    int t = lua_gettop(L);
    for (int i = 1; i <= n; i++)
        lua_rawgeti(L, t, i);
    return n;
}

static const char io_wrap_src[] =
    "local take = ...\n"
    "return function(start)\n"
    "  return function(...) start(...) return take() end\n"
    "end\n";

void sl_lua_io_wrap(lua_State *L, sl_lua_state_t *st)
{
    if (st->ref_io_wrap == LUA_NOREF) {
        if (luaL_loadbuffer(L, io_wrap_src, sizeof io_wrap_src - 1, "=sluice.io") != 0)
            lua_error(L);
        lua_pushlightuserdata(L, st);
        lua_pushcclosure(L, io_take, 1);
        lua_call(L, 1, 1);
        st->ref_io_wrap = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    sl_lua_getref(L, st->ref_io_wrap);
    lua_insert(L, -2);
    lua_call(L, 1, 1);
}
