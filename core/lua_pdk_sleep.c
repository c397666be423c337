/* sluice.sleep(seconds): suspends the request, not the worker. */
#include <lauxlib.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "lua_host.h"

#define MAX_SLEEP_S 86400.0

static int push_true(lua_State *L, void *ud)
{
    (void)ud;
    lua_pushboolean(L, 1);
    return 1;
}

static int push_refused(lua_State *L, void *ud)
{
    (void)ud;
    lua_pushnil(L);
    lua_pushliteral(L, "the gateway refused the timer");
    return 2;
}

static void woke(sl_req_t *r, void *arg)
{
    (void)r;
    sl_lua_io_item_t *it = arg;
    sl_lua_io_capture(it->call, it->index, push_true, NULL);
    sl_lua_io_settle(it->call);
}

static void start(sl_lua_call_t *c)
{
    uint64_t ms = *(uint64_t *)c->io.data;
    if (sl_lua_host()->sleep(c->req->r, ms, woke, &c->io.items[0]) != 0) {
        sl_lua_io_capture(c, 0, push_refused, NULL);
        sl_lua_io_settle(c);
    }
}

static void release(sl_lua_call_t *c)
{
    free(c->io.data);
    c->io.data = NULL;
}

static int sleep_start(lua_State *L)
{
    const char *fname = "sluice.sleep";
    lua_Number s = lua_tonumber(L, 1);
    if (lua_type(L, 1) != LUA_TNUMBER || !(s >= 0) || s > MAX_SLEEP_S)
        return sl_lua_fail_at(L, 2, fname, "seconds must be a number from 0 to %.0f", MAX_SLEEP_S);
    sl_lua_call_t *c = sl_lua_io_begin(L, SL_LUA_UP_STATE(L), fname);
    uint64_t *ms = malloc(sizeof *ms);
    c->io.items = calloc(1, sizeof *c->io.items);
    if (!ms || !c->io.items) {
        free(ms);
        return sl_lua_fail_at(L, 2, fname, "out of memory");
    }
    *ms = (uint64_t)ceil(s * 1000);
    c->io.items[0].call = c;
    c->io.data = ms;
    c->io.n_items = 1;
    c->io.start = start;
    c->io.release = release;
    return sl_lua_io_yield(L, c);
}

void sl_lua_push_sleep(lua_State *L, sl_lua_state_t *st)
{
    lua_pushlightuserdata(L, st);
    lua_pushcclosure(L, sleep_start, 1);
    sl_lua_io_wrap(L, st);
}
