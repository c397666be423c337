/* sluice.upstream: what goes to the upstream (rewrite and access). */
#include <lauxlib.h>
#include <string.h>

#include "lua_host.h"

static sl_lua_call_t *call(lua_State *L, const char *fname)
{
    return sl_lua_current(L, SL_LUA_UP_STATE(L), fname);
}

static int set_header(lua_State *L)
{
    const char *fname = "sluice.upstream.set_header";
    sl_lua_call_t *c = call(L, fname);
    const char *name = sl_lua_check_header_name(L, 1, fname);
    size_t len;
    const char *value = sl_lua_check_header_value(L, 2, fname, &len);
    if (sl_lua_host()->upstream_set_header(c->req->r, name, value, len) != 0)
        return sl_lua_refused(L, c, fname);
    return 0;
}

static int remove_header(lua_State *L)
{
    const char *fname = "sluice.upstream.remove_header";
    sl_lua_call_t *c = call(L, fname);
    const char *name = sl_lua_check_header_name(L, 1, fname);
    if (sl_lua_host()->upstream_remove_header(c->req->r, name) != 0)
        return sl_lua_refused(L, c, fname);
    return 0;
}

static int set_target(lua_State *L)
{
    const char *fname = "sluice.upstream.set_target";
    sl_lua_call_t *c = call(L, fname);
    const char *t = sl_lua_check_cstring(L, 1, fname, "the target");
    size_t len = strlen(t);
    int ok = len > 0 && t[0] == '/';
    for (size_t i = 0; ok && i < len; i++)
        ok = (unsigned char)t[i] > 0x20 && (unsigned char)t[i] < 0x7f;
    if (!ok)
        return sl_lua_fail(L, fname, "the target must start with / and hold only visible ASCII "
                                     "(percent-encode the rest)");
    if (sl_lua_host()->upstream_set_target(c->req->r, t, len) != 0)
        return sl_lua_refused(L, c, fname);
    return 0;
}

static int set_body(lua_State *L)
{
    const char *fname = "sluice.upstream.set_body";
    sl_lua_call_t *c = call(L, fname);
    if (lua_type(L, 1) != LUA_TSTRING)
        return sl_lua_fail(L, fname, "the body must be a string, not %s", luaL_typename(L, 1));
    size_t len;
    const char *body = lua_tolstring(L, 1, &len);
    if (sl_lua_host()->upstream_set_body(c->req->r, body, len) != 0)
        return sl_lua_refused(L, c, fname);
    return 0;
}

static int set_method(lua_State *L)
{
    const char *fname = "sluice.upstream.set_method";
    sl_lua_call_t *c = call(L, fname);
    const char *m = sl_lua_check_cstring(L, 1, fname, "the method");
    if (!sl_lua_is_token(m, strlen(m)))
        return sl_lua_fail(L, fname, "invalid method \"%s\"", m);
    if (sl_lua_host()->upstream_set_method(c->req->r, m) != 0)
        return sl_lua_refused(L, c, fname);
    return 0;
}

void sl_lua_open_upstream(lua_State *L, sl_lua_state_t *st)
{
    static const luaL_Reg fns[] = {
        { "set_header", set_header },
        { "remove_header", remove_header },
        { "set_target", set_target },
        { "set_body", set_body },
        { "set_method", set_method },
        { NULL, NULL },
    };
    lua_newtable(L);
    sl_lua_setfuncs(L, st, fns);
}
