/* sluice.response: the response status and headers, and answering the
 * request from the plugin (exit, error).
 *
 * exit() and error() end the phase by raising a marker value that the
 * runner recognises (SL_DONE). A marker error, not a yield, so it unwinds
 * from any depth: nested functions, iterators, metamethods, and the
 * sandbox's pcall/xpcall, which pass it on instead of catching it. */
#include <lauxlib.h>
#include <strings.h>
#include <string.h>

#include "lua_host.h"

static sl_lua_call_t *call(lua_State *L, const char *fname)
{
    return sl_lua_current(L, SL_LUA_UP_STATE(L), fname);
}

static int check_status(lua_State *L, int idx, const char *fname, int lo)
{
    if (!sl_lua_is_integer_in(L, idx, lo, 599))
        return sl_lua_fail(L, fname, "the status must be an integer from %d to 599", lo);
    return (int)lua_tonumber(L, idx);
}

static int get_status(lua_State *L)
{
    sl_lua_call_t *c = call(L, "sluice.response.get_status");
    lua_pushinteger(L, sl_lua_host()->resp_status(c->req->r));
    return 1;
}

static int set_status(lua_State *L)
{
    const char *fname = "sluice.response.set_status";
    sl_lua_call_t *c = call(L, fname);
    int status = check_status(L, 1, fname, 100);
    if (sl_lua_host()->resp_set_status(c->req->r, status) != 0)
        return sl_lua_refused(L, c, fname);
    return 0;
}

static int get_header(lua_State *L)
{
    const char *fname = "sluice.response.get_header";
    sl_lua_call_t *c = call(L, fname);
    const char *name = sl_lua_check_header_name(L, 1, fname);
    size_t len = 0;
    const char *v = sl_lua_host()->resp_header(c->req->r, name, &len);
    if (v)
        lua_pushlstring(L, v, len);
    else
        lua_pushnil(L);
    return 1;
}

static int set_or_add(lua_State *L, const char *fname, int add)
{
    sl_lua_call_t *c = call(L, fname);
    const char *name = sl_lua_check_header_name(L, 1, fname);
    size_t len;
    const char *value = sl_lua_check_header_value(L, 2, fname, &len);
    const sl_host_t *h = sl_lua_host();
    int rc = add ? h->resp_add_header(c->req->r, name, value, len)
                 : h->resp_set_header(c->req->r, name, value, len);
    if (rc != 0)
        return sl_lua_refused(L, c, fname);
    return 0;
}

static int set_header(lua_State *L) { return set_or_add(L, "sluice.response.set_header", 0); }
static int add_header(lua_State *L) { return set_or_add(L, "sluice.response.add_header", 1); }

static int remove_header(lua_State *L)
{
    const char *fname = "sluice.response.remove_header";
    sl_lua_call_t *c = call(L, fname);
    const char *name = sl_lua_check_header_name(L, 1, fname);
    if (sl_lua_host()->resp_remove_header(c->req->r, name) != 0)
        return sl_lua_refused(L, c, fname);
    return 0;
}

static int raise_exit(lua_State *L)
{
    lua_pushlightuserdata(L, sl_lua_exit_marker());
    return lua_error(L);
}

/* Checks the headers table at idx: each value a string (or number), or a
 * list of them. Returns the Content-Type value when one is given. */
static const char *check_exit_headers(lua_State *L, int idx, const char *fname)
{
    const char *ctype = NULL;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        int k = lua_gettop(L) - 1, v = lua_gettop(L);
        if (lua_type(L, k) != LUA_TSTRING)
            sl_lua_fail(L, fname, "header names must be strings");
        sl_lua_check_header_name(L, k, fname);
        size_t len;
        if (lua_istable(L, v)) {
            size_t n = lua_objlen(L, v);
            for (size_t i = 1; i <= n; i++) {
                lua_rawgeti(L, v, (int)i);
                sl_lua_check_header_value(L, -1, fname, &len);
                lua_pop(L, 1);
            }
        } else if (strcasecmp(lua_tostring(L, k), "content-type") == 0) {
            /* a string held by the table, so the pointer outlives this loop */
            if (lua_type(L, v) != LUA_TSTRING)
                sl_lua_fail(L, fname, "Content-Type must be a string");
            ctype = sl_lua_check_header_value(L, v, fname, &len);
        } else {
            /* a copy: converting a number in place would confuse lua_next */
            lua_pushvalue(L, v);
            sl_lua_check_header_value(L, -1, fname, &len);
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }
    return ctype;
}

static void apply_exit_headers(lua_State *L, int idx, const char *fname, sl_lua_call_t *c)
{
    const sl_host_t *h = sl_lua_host();
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        const char *name = lua_tostring(L, -2);
        size_t len;
        if (lua_istable(L, -1)) {
            size_t n = lua_objlen(L, -1);
            h->resp_remove_header(c->req->r, name);
            for (size_t i = 1; i <= n; i++) {
                lua_rawgeti(L, -1, (int)i);
                const char *s = lua_tolstring(L, -1, &len);
                if (h->resp_add_header(c->req->r, name, s, len) != 0)
                    sl_lua_refused(L, c, fname);
                lua_pop(L, 1);
            }
        } else if (strcasecmp(name, "content-type") != 0) {
            lua_pushvalue(L, -1);
            const char *s = lua_tolstring(L, -1, &len);
            if (h->resp_set_header(c->req->r, name, s, len) != 0)
                sl_lua_refused(L, c, fname);
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }
}

/* exit(status [, body [, headers]]) */
static int resp_exit(lua_State *L)
{
    const char *fname = "sluice.response.exit";
    sl_lua_call_t *c = call(L, fname);
    lua_settop(L, 3);
    int status = check_status(L, 1, fname, 200);
    int bt = lua_type(L, 2);
    if (bt != LUA_TNIL && bt != LUA_TSTRING && bt != LUA_TTABLE)
        return sl_lua_fail(L, fname, "the body must be a string or a table, not %s",
                           luaL_typename(L, 2));
    if (!lua_isnil(L, 3) && !lua_istable(L, 3))
        return sl_lua_fail(L, fname, "the headers must be a table, not %s", luaL_typename(L, 3));
    const char *ctype = lua_istable(L, 3) ? check_exit_headers(L, 3, fname) : NULL;
    if (bt == LUA_TTABLE) {
        sl_lua_getref(L, SL_LUA_UP_STATE(L)->ref_json);
        lua_getfield(L, -1, "encode");
        lua_pushvalue(L, 2);
        lua_call(L, 1, 2);
        if (lua_isnil(L, -2))
            return sl_lua_fail(L, fname, "the body cannot be encoded as JSON: %s",
                               lua_tostring(L, -1));
        lua_pop(L, 1);
        lua_replace(L, 2);
        lua_pop(L, 1);
        if (!ctype)
            ctype = "application/json";
    }
    size_t len = 0;
    const char *body = bt == LUA_TNIL ? "" : lua_tolstring(L, 2, &len);
    if (sl_lua_host()->respond(c->req->r, status, ctype, body, len) != 0)
        return sl_lua_refused(L, c, fname);
    if (lua_istable(L, 3))
        apply_exit_headers(L, 3, fname, c);
    return raise_exit(L);
}

/* error(status, code, message [, headers]): the gateway's JSON error shape
 * (its Content-Type is always application/json). */
static int resp_error(lua_State *L)
{
    const char *fname = "sluice.response.error";
    sl_lua_call_t *c = call(L, fname);
    lua_settop(L, 4);
    int status = check_status(L, 1, fname, 200);
    const char *code = sl_lua_check_cstring(L, 2, fname, "the code");
    const char *message = sl_lua_check_cstring(L, 3, fname, "the message");
    if (!*code)
        return sl_lua_fail(L, fname, "the code must not be empty");
    if (!lua_isnil(L, 4) && !lua_istable(L, 4))
        return sl_lua_fail(L, fname, "the headers must be a table, not %s", luaL_typename(L, 4));
    if (lua_istable(L, 4))
        check_exit_headers(L, 4, fname);
    if (sl_lua_host()->respond_error(c->req->r, status, code, message) != 0)
        return sl_lua_refused(L, c, fname);
    if (lua_istable(L, 4))
        apply_exit_headers(L, 4, fname, c);
    return raise_exit(L);
}

void sl_lua_open_response(lua_State *L, sl_lua_state_t *st)
{
    static const luaL_Reg fns[] = {
        { "get_status", get_status },
        { "set_status", set_status },
        { "get_header", get_header },
        { "set_header", set_header },
        { "add_header", add_header },
        { "remove_header", remove_header },
        { "exit", resp_exit },
        { "error", resp_error },
        { NULL, NULL },
    };
    lua_newtable(L);
    sl_lua_setfuncs(L, st, fns);
}
