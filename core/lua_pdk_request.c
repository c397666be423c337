/* sluice.request (the request as the client sent it) and sluice.ctx. */
#include <lauxlib.h>
#include <string.h>

#include "lua_host.h"

static sl_req_t *req(lua_State *L, const char *fname)
{
    return sl_lua_current(L, SL_LUA_UP_STATE(L), fname)->req->r;
}

static int push_opt(lua_State *L, const char *s, size_t len)
{
    if (s)
        lua_pushlstring(L, s, len);
    else
        lua_pushnil(L);
    return 1;
}

static int push_optz(lua_State *L, const char *s) { return push_opt(L, s, s ? strlen(s) : 0); }

static int get_method(lua_State *L)
{
    size_t len = 0;
    const char *s = sl_lua_host()->req_method(req(L, "sluice.request.get_method"), &len);
    return push_opt(L, s, len);
}

static int get_path(lua_State *L)
{
    size_t len = 0;
    const char *s = sl_lua_host()->req_path(req(L, "sluice.request.get_path"), &len);
    return push_opt(L, s, len);
}

static int get_query(lua_State *L)
{
    size_t len = 0;
    const char *s = sl_lua_host()->req_query(req(L, "sluice.request.get_query"), &len);
    return push_opt(L, s, len);
}

static int get_header(lua_State *L)
{
    const char *fname = "sluice.request.get_header";
    sl_req_t *r = req(L, fname);
    const char *name = sl_lua_check_header_name(L, 1, fname);
    size_t len = 0;
    const char *s = sl_lua_host()->req_header(r, name, &len);
    return push_opt(L, s, len);
}

static void push_lower(lua_State *L, const char *s, size_t len)
{
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        luaL_addchar(&b, ch >= 'A' && ch <= 'Z' ? (char)(ch + 32) : ch);
    }
    luaL_pushresult(&b);
}

static int get_headers(lua_State *L)
{
    sl_req_t *r = req(L, "sluice.request.get_headers");
    lua_newtable(L);
    const char *name, *value;
    size_t nlen, vlen;
    for (int i = 0; sl_lua_host()->req_header_at(r, i, &name, &nlen, &value, &vlen); i++) {
        push_lower(L, name, nlen);
        lua_pushvalue(L, -1);
        lua_rawget(L, -3);
        int seen = !lua_isnil(L, -1);
        lua_pop(L, 1);
        if (seen) {   /* the first one wins, as with get_header */
            lua_pop(L, 1);
            continue;
        }
        lua_pushlstring(L, value, vlen);
        lua_rawset(L, -3);
    }
    return 1;
}

static int get_headers_list(lua_State *L)
{
    sl_req_t *r = req(L, "sluice.request.get_headers_list");
    lua_newtable(L);
    const char *name, *value;
    size_t nlen, vlen;
    for (int i = 0; sl_lua_host()->req_header_at(r, i, &name, &nlen, &value, &vlen); i++) {
        lua_createtable(L, 2, 0);
        lua_pushlstring(L, name, nlen);
        lua_rawseti(L, -2, 1);
        lua_pushlstring(L, value, vlen);
        lua_rawseti(L, -2, 2);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

static int get_body(lua_State *L)
{
    size_t len = 0;
    const char *s = sl_lua_host()->req_body(req(L, "sluice.request.get_body"), &len);
    if (!s)
        return sl_lua_fail(L, "sluice.request.get_body", "the body could not be read");
    lua_pushlstring(L, s, len);
    return 1;
}

static int get_client_ip(lua_State *L)
{
    return push_optz(L, sl_lua_host()->req_client_ip(req(L, "sluice.request.get_client_ip")));
}

static int get_id(lua_State *L)
{
    return push_optz(L, sl_lua_host()->req_id(req(L, "sluice.request.get_id")));
}

static int get_route(lua_State *L)
{
    return push_optz(L, sl_lua_host()->req_route(req(L, "sluice.request.get_route")));
}

static int get_upstream(lua_State *L)
{
    return push_optz(L, sl_lua_host()->req_upstream(req(L, "sluice.request.get_upstream")));
}

static int is_tls(lua_State *L)
{
    lua_pushboolean(L, sl_lua_host()->req_is_tls(req(L, "sluice.request.is_tls")) != 0);
    return 1;
}

void sl_lua_open_request(lua_State *L, sl_lua_state_t *st)
{
    static const luaL_Reg fns[] = {
        { "get_method", get_method },
        { "get_path", get_path },
        { "get_query", get_query },
        { "get_header", get_header },
        { "get_headers", get_headers },
        { "get_headers_list", get_headers_list },
        { "get_body", get_body },
        { "get_client_ip", get_client_ip },
        { "get_id", get_id },
        { "get_route", get_route },
        { "get_upstream", get_upstream },
        { "is_tls", is_tls },
        { NULL, NULL },
    };
    lua_newtable(L);
    sl_lua_setfuncs(L, st, fns);
}

/* ---- sluice.ctx ---- */

static int ctx_get(lua_State *L)
{
    sl_lua_call_t *c = sl_lua_current(L, SL_LUA_UP_STATE(L), "sluice.ctx.get");
    sl_lua_push_ctx(L, c);
    return 1;
}

void sl_lua_open_ctx(lua_State *L, sl_lua_state_t *st)
{
    static const luaL_Reg fns[] = { { "get", ctx_get }, { NULL, NULL } };
    lua_newtable(L);
    sl_lua_setfuncs(L, st, fns);
}
