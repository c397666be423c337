/* The script in LuaJIT; see lua_twin.h. Replies are converted the way Redis
 * converts a script's return value: a table becomes an array, a number an
 * integer (truncated). */
#include "lua_twin.h"

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rl_redis.h"

struct lua_twin {
    lua_State *L;
};

static const char fake_redis[] =
    "store, clock = {}, {0, 0}\n"
    "redis = {}\n"
    "function redis.call(cmd, key, value, px, ttl)\n"
    "  if cmd == 'TIME' then return {string.format('%d', clock[1]), string.format('%d', clock[2])} end\n"
    "  if cmd == 'GET' then local v = store[key]; if v == nil then return false end; return v end\n"
    "  if cmd == 'SET' then\n"
    "    assert(type(value) == 'string' and px == 'PX' and type(ttl) == 'string', 'SET arguments')\n"
    "    store[key] = value; return 'OK'\n"
    "  end\n"
    "  error('unexpected command ' .. tostring(cmd))\n"
    "end\n";

lua_twin_t *lua_twin_new(void)
{
    lua_twin_t *t = calloc(1, sizeof *t);
    t->L = luaL_newstate();
    luaL_openlibs(t->L);
    if (luaL_dostring(t->L, fake_redis) != 0) {
        fprintf(stderr, "fake redis: %s\n", lua_tostring(t->L, -1));
        abort();
    }
    return t;
}

void lua_twin_free(lua_twin_t *t)
{
    lua_close(t->L);
    free(t);
}

static void set_clock(lua_State *L, int64_t now_us)
{
    lua_getglobal(L, "clock");
    lua_pushnumber(L, (lua_Number)(now_us / 1000000));
    lua_rawseti(L, -2, 1);
    lua_pushnumber(L, (lua_Number)(now_us % 1000000));
    lua_rawseti(L, -2, 2);
    lua_pop(L, 1);
}

static void set_args(lua_State *L, const rl_redis_args_t *a)
{
    lua_newtable(L);
    lua_pushlstring(L, a->argv[0], a->lens[0]);
    lua_rawseti(L, -2, 1);
    lua_setglobal(L, "KEYS");
    lua_newtable(L);
    for (int i = 1; i < a->argc; i++) {
        lua_pushlstring(L, a->argv[i], a->lens[i]);
        lua_rawseti(L, -2, i);
    }
    lua_setglobal(L, "ARGV");
}

int lua_twin_check(lua_twin_t *t, const rl_conf_t *c, const char *prefix, int64_t now_us,
                   rl_verdict_t *out)
{
    lua_State *L = t->L;
    rl_redis_args_t args;
    rl_redis_args(c, prefix, strlen(prefix), &args);
    set_clock(L, now_us);
    set_args(L, &args);
    if (luaL_dostring(L, rl_redis_script) != 0) {
        fprintf(stderr, "script: %s\n", lua_tostring(L, -1));
        lua_pop(L, 1);
        return -1;
    }
    size_t n = lua_objlen(L, -1);
    sl_reply_t items[1 + 4 * RL_MAX_LIMITS], *ptrs[1 + 4 * RL_MAX_LIMITS];
    if (n > sizeof items / sizeof items[0]) {
        lua_pop(L, 1);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        lua_rawgeti(L, -1, (int)i + 1);
        items[i] = (sl_reply_t){.type = SL_REPLY_INTEGER, .integer = (long long)lua_tonumber(L, -1)};
        ptrs[i] = &items[i];
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    sl_reply_t reply = {.type = SL_REPLY_ARRAY, .elements = n, .element = ptrs};
    char why[128];
    int rc = rl_redis_parse(&reply, c->n_limits, out, why, sizeof why);
    if (rc < 0)
        fprintf(stderr, "reply: %s\n", why);
    return rc;
}
