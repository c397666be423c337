/* sluice.shared: the process-wide shared dictionaries (all workers see the
 * same values). Calls are short and never yield, so they work in every
 * phase and at a plugin's top level. */
#include <lauxlib.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "lua_host.h"

#define FIRST_TRY 4096

static int64_t check_ttl_ms(lua_State *L, int idx, const char *fname)
{
    if (lua_isnoneornil(L, idx))
        return 0;
    lua_Number s = lua_tonumber(L, idx);
    if (lua_type(L, idx) != LUA_TNUMBER || !(s >= 0) || s > 1e12)
        sl_lua_fail(L, fname, "the ttl must be a number of seconds >= 0 (0 = none)");
    return (int64_t)ceil(s * 1000);
}

static int64_t check_int(lua_State *L, int idx, const char *fname, const char *what, int64_t def)
{
    if (lua_isnoneornil(L, idx))
        return def;
    if (!sl_lua_is_integer_in(L, idx, -9007199254740992.0, 9007199254740992.0))
        sl_lua_fail(L, fname, "%s must be an integer", what);
    return (int64_t)lua_tonumber(L, idx);
}

static void check_dict_key(lua_State *L, const char *fname, const char **dict, const char **key)
{
    *dict = sl_lua_check_cstring(L, 1, fname, "the dict name");
    *key = sl_lua_check_cstring(L, 2, fname, "the key");
    if (!**dict || !**key)
        sl_lua_fail(L, fname, "the dict name and the key must not be empty");
}

static int fail_soft(lua_State *L, const char *msg)
{
    lua_pushnil(L);
    lua_pushstring(L, msg);
    return 2;
}

static int shared_get(lua_State *L)
{
    const char *dict, *key;
    check_dict_key(L, "sluice.shared.get", &dict, &key);
    size_t cap = FIRST_TRY;
    /* The value may grow between the size probe and the copy; a few tries
     * settle it. The buffer is a userdata so an error cannot leak it. */
    for (int attempt = 0; attempt < 4; attempt++) {
        char *buf = lua_newuserdata(L, cap);
        size_t len = 0;
        int rc = sl_lua_host()->shared_get(dict, key, buf, cap, &len);
        if (rc == 1) {
            lua_pushlstring(L, buf, len);
            return 1;
        }
        if (rc == 0) {
            lua_pushnil(L);
            return 1;
        }
        lua_pop(L, 1);
        if (len <= cap)
            break;
        cap = len;
    }
    return fail_soft(L, "shared dict error");
}

static int shared_set(lua_State *L)
{
    const char *fname = "sluice.shared.set";
    const char *dict, *key;
    check_dict_key(L, fname, &dict, &key);
    int t = lua_type(L, 3);
    if (t != LUA_TSTRING && t != LUA_TNUMBER)
        return sl_lua_fail(L, fname, "the value must be a string or a number, not %s",
                           luaL_typename(L, 3));
    int64_t ttl = check_ttl_ms(L, 4, fname);
    size_t len;
    const char *v = lua_tolstring(L, 3, &len);
    if (sl_lua_host()->shared_set(dict, key, v, len, ttl) != 0)
        return fail_soft(L, "shared dict refused the value (too big?)");
    lua_pushboolean(L, 1);
    return 1;
}

static int shared_incr(lua_State *L)
{
    const char *fname = "sluice.shared.incr";
    const char *dict, *key;
    check_dict_key(L, fname, &dict, &key);
    int64_t delta = check_int(L, 3, fname, "delta", 1);
    int64_t init = check_int(L, 4, fname, "init", 0);
    int64_t ttl = check_ttl_ms(L, 5, fname);
    int64_t out = 0;
    if (sl_lua_host()->shared_incr(dict, key, delta, init, ttl, &out) != 0)
        return fail_soft(L, "cannot increment (the value is not an integer, or it overflowed)");
    lua_pushnumber(L, (lua_Number)out);
    return 1;
}

static int shared_delete(lua_State *L)
{
    const char *dict, *key;
    check_dict_key(L, "sluice.shared.delete", &dict, &key);
    int rc = sl_lua_host()->shared_delete(dict, key);
    if (rc < 0)
        return fail_soft(L, "shared dict error");
    lua_pushboolean(L, rc == 1);
    return 1;
}

void sl_lua_open_shared(lua_State *L, sl_lua_state_t *st)
{
    static const luaL_Reg fns[] = {
        { "get", shared_get },
        { "set", shared_set },
        { "incr", shared_incr },
        { "delete", shared_delete },
        { NULL, NULL },
    };
    lua_newtable(L);
    sl_lua_setfuncs(L, st, fns);
}
