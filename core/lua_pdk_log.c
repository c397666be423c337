/* sluice.log and the sandbox's print(): lines in the gateway's log, named
 * after the plugin and the request being served. */
#include <lauxlib.h>
#include <stdio.h>
#include <string.h>

#include "lua_host.h"

#define MAX_LINE 1200

/* Control characters but tab become \n, \r or \xNN, so a plugin logging a
 * client's input cannot forge log lines. */
static void emit(lua_State *L, sl_lua_state_t *st, sl_log_level_sdk_t level, const char *who,
                 const char *msg, size_t len)
{
    char clean[MAX_LINE + 8];
    size_t o = 0;
    for (size_t i = 0; i < len && o < MAX_LINE; i++) {
        unsigned char ch = (unsigned char)msg[i];
        if ((ch >= 0x20 && ch != 0x7f) || ch == '\t') {
            clean[o++] = (char)ch;
        } else if (ch == '\n' || ch == '\r') {
            clean[o++] = '\\';
            clean[o++] = ch == '\n' ? 'n' : 'r';
        } else {
            o += (size_t)snprintf(clean + o, sizeof clean - o, "\\x%02x", ch);
        }
    }
    clean[o] = '\0';
    (void)L;
    const sl_host_t *h = sl_lua_host();
    if (st->current) {
        const char *id = h->req_id(st->current->req->r);
        h->log(level, "lua plugin %s (request %s): %s", who, id ? id : "-", clean);
    } else {
        h->log(level, "lua plugin %s: %s", who, clean);
    }
}

/* Upvalues: the state, the plugin's name, string.format. One argument is
 * logged as it is (so "100%" needs no escaping); more go through
 * string.format. */
static int log_at(lua_State *L, sl_log_level_sdk_t level)
{
    sl_lua_state_t *st = SL_LUA_UP_STATE(L);
    int n = lua_gettop(L);
    if (n == 0)
        return sl_lua_fail(L, "sluice.log", "a message is required");
    if (n > 1) {
        lua_pushvalue(L, lua_upvalueindex(3));
        lua_insert(L, 1);
        lua_call(L, n, 1);
    } else if (lua_type(L, 1) != LUA_TSTRING && lua_type(L, 1) != LUA_TNUMBER) {
        lua_getglobal(L, "tostring");
        lua_insert(L, 1);
        lua_call(L, 1, 1);
    }
    size_t len;
    const char *msg = lua_tolstring(L, 1, &len);
    if (!msg)
        return sl_lua_fail(L, "sluice.log", "the message must be a string");
    emit(L, st, level, lua_tostring(L, lua_upvalueindex(2)), msg, len);
    return 0;
}

static int log_debug(lua_State *L) { return log_at(L, SL_LOG_LEVEL_DEBUG); }
static int log_info(lua_State *L) { return log_at(L, SL_LOG_LEVEL_INFO); }
static int log_warn(lua_State *L) { return log_at(L, SL_LOG_LEVEL_WARN); }
static int log_error(lua_State *L) { return log_at(L, SL_LOG_LEVEL_ERROR); }

void sl_lua_open_log(lua_State *L, sl_lua_state_t *st, const char *who)
{
    static const luaL_Reg fns[] = {
        { "debug", log_debug }, { "info", log_info }, { "warn", log_warn }, { "error", log_error },
        { NULL, NULL },
    };
    lua_newtable(L);
    for (const luaL_Reg *f = fns; f->name; f++) {
        lua_pushlightuserdata(L, st);
        lua_pushstring(L, who);
        sl_lua_getref(L, st->ref_format);
        lua_pushcclosure(L, f->func, 3);
        lua_setfield(L, -2, f->name);
    }
}

/* print(...): tostring() of each argument, tab separated, at info. */
static int sandbox_print(lua_State *L)
{
    sl_lua_state_t *st = SL_LUA_UP_STATE(L);
    int n = lua_gettop(L);
    luaL_Buffer b;
    lua_getglobal(L, "tostring");
    int tostring = lua_gettop(L);
    luaL_buffinit(L, &b);
    for (int i = 1; i <= n; i++) {
        if (i > 1)
            luaL_addchar(&b, '\t');
        lua_pushvalue(L, tostring);
        lua_pushvalue(L, i);
        lua_call(L, 1, 1);
        if (!lua_isstring(L, -1))
            return sl_lua_fail(L, "print", "tostring must return a string");
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    size_t len;
    const char *msg = lua_tolstring(L, -1, &len);
    emit(L, st, SL_LOG_LEVEL_INFO, lua_tostring(L, lua_upvalueindex(2)), msg, len);
    return 0;
}

void sl_lua_push_print(lua_State *L, sl_lua_state_t *st, const char *who)
{
    lua_pushlightuserdata(L, st);
    lua_pushstring(L, who);
    lua_pushcclosure(L, sandbox_print, 2);
}
