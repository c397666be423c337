/* Argument checks the PDK modules share. Whatever a plugin passes ends up
 * in C strings and HTTP messages, so NULs, CR/LF and non-tokens are refused
 * here with a message naming the function. */
#include <lauxlib.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "http1.h"
#include "lua_host.h"

int sl_lua_is_token(const char *s, size_t len) { return sl_http_is_token(s, len); }

int sl_lua_is_integer_in(lua_State *L, int idx, double lo, double hi)
{
    if (lua_type(L, idx) != LUA_TNUMBER)
        return 0;
    lua_Number n = lua_tonumber(L, idx);
    return n >= lo && n <= hi && n == floor(n);
}

int sl_lua_is_field_value(const char *s, size_t len) { return sl_http_is_field_value(s, len); }

static int raise(lua_State *L, int level, const char *fname, const char *msg)
{
    luaL_where(L, level);
    lua_pushfstring(L, "%s: %s", fname, msg);
    lua_concat(L, 2);
    return lua_error(L);
}

int sl_lua_fail(lua_State *L, const char *fname, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return raise(L, 1, fname, msg);
}

int sl_lua_fail_at(lua_State *L, int level, const char *fname, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return raise(L, level, fname, msg);
}

int sl_lua_refused(lua_State *L, const sl_lua_call_t *c, const char *fname)
{
    return sl_lua_fail(L, fname, "refused by the gateway in %s", sl_lua_phase_names[c->phase]);
}

const char *sl_lua_check_cstring(lua_State *L, int idx, const char *fname, const char *what)
{
    size_t len;
    const char *s = lua_type(L, idx) == LUA_TSTRING ? lua_tolstring(L, idx, &len) : NULL;
    if (!s)
        sl_lua_fail(L, fname, "%s must be a string, not %s", what, luaL_typename(L, idx));
    if (strlen(s) != len)
        sl_lua_fail(L, fname, "%s must not contain a NUL byte", what);
    return s;
}

const char *sl_lua_check_header_name(lua_State *L, int idx, const char *fname)
{
    size_t len;
    const char *s = lua_type(L, idx) == LUA_TSTRING ? lua_tolstring(L, idx, &len) : NULL;
    /* A token has no NUL, so one pass decides both. */
    if (s && sl_http_is_token(s, len))
        return s;
    s = sl_lua_check_cstring(L, idx, fname, "the header name");
    sl_lua_fail(L, fname, "invalid header name \"%s\"", s);
    return NULL;
}

const char *sl_lua_check_header_value(lua_State *L, int idx, const char *fname, size_t *len)
{
    int t = lua_type(L, idx);
    if (t != LUA_TSTRING && t != LUA_TNUMBER)
        sl_lua_fail(L, fname, "the header value must be a string, not %s", luaL_typename(L, idx));
    const char *s = lua_tolstring(L, idx, len);
    if (!sl_lua_is_field_value(s, *len))
        sl_lua_fail(L, fname, "the header value must not contain CR, LF or NUL");
    return s;
}
