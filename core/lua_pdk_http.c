/* sluice.http: an outgoing HTTP request that suspends the request being
 * served (not the worker) until the answer arrives.
 *
 *   local res, err = http.request{ method = "POST", url = "https://...",
 *       headers = { ["Content-Type"] = "application/json" }, body = "...",
 *       timeout = 2.5, ssl_verify = true }
 *   -- res = { status = 200, headers = { ["content-type"] = "..." }, body = "..." }
 */
#include <lauxlib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lua_host.h"

#define MAX_HEADERS 100

typedef struct {
    sl_http_request_spec_t spec;
    char *method, *url, *body;
    char *hdr[2 * MAX_HEADERS + 1];
} http_io_t;

static void free_io(http_io_t *io)
{
    if (!io)
        return;
    free(io->method);
    free(io->url);
    free(io->body);
    for (int i = 0; io->hdr[i]; i++)
        free(io->hdr[i]);
    free(io);
}

static const char *opt_field(lua_State *L, const char *field, size_t *len, const char *fname)
{
    lua_getfield(L, 1, field);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return NULL;
    }
    if (lua_type(L, -1) != LUA_TSTRING)
        sl_lua_fail_at(L, 2, fname, "%s must be a string", field);
    /* left on the stack so the string stays anchored until copied */
    return lua_tolstring(L, -1, len);
}

static char *dup_bytes(const char *s, size_t len)
{
    char *d = malloc(len + 1);
    if (d) {
        memcpy(d, s, len);
        d[len] = '\0';
    }
    return d;
}

/* Checks the spec table and copies it. Everything is checked before the
 * first allocation, so a bad field cannot leak a copy. */
static http_io_t *read_spec(lua_State *L, const char *fname)
{
    if (!lua_istable(L, 1))
        sl_lua_fail_at(L, 2, fname, "expects a table {url = ..., method = ..., ...}");
    lua_settop(L, 1);
    size_t mlen = 3, ulen = 0, blen = 0;
    const char *method = opt_field(L, "method", &mlen, fname);
    if (!method) {
        method = "GET";
        mlen = 3;
    }
    if (!sl_lua_is_token(method, mlen))
        sl_lua_fail_at(L, 2, fname, "invalid method");
    const char *url = opt_field(L, "url", &ulen, fname);
    if (!url)
        sl_lua_fail_at(L, 2, fname, "url is required");
    if (strlen(url) != ulen || (strncasecmp(url, "http://", 7) != 0 &&
                                strncasecmp(url, "https://", 8) != 0))
        sl_lua_fail_at(L, 2, fname, "url must start with http:// or https://");
    for (size_t i = 0; i < ulen; i++)
        if ((unsigned char)url[i] <= 0x20 || (unsigned char)url[i] >= 0x7f)
            sl_lua_fail_at(L, 2, fname, "url must hold only visible ASCII (percent-encode the rest)");
    const char *body = opt_field(L, "body", &blen, fname);

    lua_getfield(L, 1, "timeout");
    lua_Number timeout = 5;
    if (!lua_isnil(L, -1)) {
        timeout = lua_tonumber(L, -1);
        if (lua_type(L, -1) != LUA_TNUMBER || !(timeout > 0) || timeout > 3600)
            sl_lua_fail_at(L, 2, fname, "timeout must be a number of seconds from 0 to 3600");
    }
    lua_pop(L, 1);
    lua_getfield(L, 1, "ssl_verify");
    if (!lua_isnil(L, -1) && !lua_isboolean(L, -1))
        sl_lua_fail_at(L, 2, fname, "ssl_verify must be a boolean");
    int verify = lua_isnil(L, -1) || lua_toboolean(L, -1);
    lua_pop(L, 1);

    lua_getfield(L, 1, "headers");
    int headers = lua_gettop(L);
    int n_headers = 0;
    if (!lua_isnil(L, headers)) {
        if (!lua_istable(L, headers))
            sl_lua_fail_at(L, 2, fname, "headers must be a table of name = value");
        lua_pushnil(L);
        while (lua_next(L, headers)) {
            size_t len;
            const char *name = lua_type(L, -2) == LUA_TSTRING ? lua_tolstring(L, -2, &len) : NULL;
            if (!name || strlen(name) != len || !sl_lua_is_token(name, len))
                sl_lua_fail_at(L, 2, fname, "invalid header name");
            int vt = lua_type(L, -1);
            lua_pushvalue(L, -1);
            const char *v = vt == LUA_TSTRING || vt == LUA_TNUMBER ? lua_tolstring(L, -1, &len) : NULL;
            if (!v || !sl_lua_is_field_value(v, len))
                sl_lua_fail_at(L, 2, fname, "header %s: the value must be a string without CR, LF "
                                            "or NUL", name);
            lua_pop(L, 2);
            if (++n_headers > MAX_HEADERS)
                sl_lua_fail_at(L, 2, fname, "at most %d headers", MAX_HEADERS);
        }
    }

    http_io_t *io = calloc(1, sizeof *io);
    int ok = io && (io->method = dup_bytes(method, mlen)) && (io->url = dup_bytes(url, ulen)) &&
             (!body || (io->body = dup_bytes(body, blen)));
    int h = 0;
    if (ok && n_headers) {
        lua_pushnil(L);
        while (ok && lua_next(L, headers)) {
            size_t nlen, vlen;
            const char *name = lua_tolstring(L, -2, &nlen);
            lua_pushvalue(L, -1);
            const char *v = lua_tolstring(L, -1, &vlen);
            ok = (io->hdr[h] = dup_bytes(name, nlen)) && (io->hdr[h + 1] = dup_bytes(v, vlen));
            h += 2;
            lua_pop(L, 2);
        }
        if (!ok)
            lua_pop(L, 1);   /* the key lua_next left */
    }
    if (!ok) {
        free_io(io);
        sl_lua_fail_at(L, 2, fname, "out of memory");
    }
    io->spec.method = io->method;
    io->spec.url = io->url;
    io->spec.headers = (const char *const *)io->hdr;
    io->spec.body = io->body;
    io->spec.body_len = io->body ? blen : 0;
    io->spec.timeout_ms = (int64_t)ceil(timeout * 1000);
    io->spec.tls_verify = verify ? 1 : -1;
    return io;
}

/* ---- the answer ---- */

static void push_lower(lua_State *L, const char *s)
{
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (; *s; s++)
        luaL_addchar(&b, *s >= 'A' && *s <= 'Z' ? (char)(*s + 32) : *s);
    luaL_pushresult(&b);
}

static int push_result(lua_State *L, void *ud)
{
    const sl_http_call_result_t *res = ud;
    if (!res || res->error || res->status <= 0) {
        lua_pushnil(L);
        lua_pushstring(L, res && res->error ? res->error : "the request failed");
        return 2;
    }
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, res->status);
    lua_setfield(L, -2, "status");
    lua_newtable(L);
    for (int i = 0; i < res->n_headers; i++) {
        const char *name = res->headers[2 * i], *value = res->headers[2 * i + 1];
        if (!name || !value)
            continue;
        push_lower(L, name);
        lua_pushvalue(L, -1);
        lua_rawget(L, -3);
        if (lua_isnil(L, -1)) {
            lua_pop(L, 1);
            lua_pushstring(L, value);
        } else {   /* repeated: joined as a list (RFC 9110 5.3) */
            lua_pushliteral(L, ", ");
            lua_pushstring(L, value);
            lua_concat(L, 3);
        }
        lua_rawset(L, -3);
    }
    lua_setfield(L, -2, "headers");
    lua_pushlstring(L, res->body ? res->body : "", res->body ? res->body_len : 0);
    lua_setfield(L, -2, "body");
    return 1;
}

static int push_refused(lua_State *L, void *ud)
{
    (void)ud;
    lua_pushnil(L);
    lua_pushliteral(L, "the gateway refused the request");
    return 2;
}

static void answered(sl_req_t *r, void *arg, const sl_http_call_result_t *res)
{
    (void)r;
    sl_lua_io_item_t *it = arg;
    sl_lua_io_capture(it->call, it->index, push_result, (void *)res);
    sl_lua_io_settle(it->call);
}

static void start(sl_lua_call_t *c)
{
    http_io_t *io = c->io.data;
    if (sl_lua_host()->http_call(c->req->r, &io->spec, answered, &c->io.items[0]) != 0) {
        sl_lua_io_capture(c, 0, push_refused, NULL);
        sl_lua_io_settle(c);
    }
}

static void release(sl_lua_call_t *c)
{
    free_io(c->io.data);
    c->io.data = NULL;
}

static int http_request(lua_State *L)
{
    const char *fname = "sluice.http.request";
    sl_lua_call_t *c = sl_lua_io_begin(L, SL_LUA_UP_STATE(L), fname);
    c->io.items = calloc(1, sizeof *c->io.items);
    if (!c->io.items)
        return sl_lua_fail_at(L, 2, fname, "out of memory");
    http_io_t *io = read_spec(L, fname);
    c->io.items[0].call = c;
    c->io.data = io;
    c->io.n_items = 1;
    c->io.start = start;
    c->io.release = release;
    return sl_lua_io_yield(L, c);
}

void sl_lua_open_http(lua_State *L, sl_lua_state_t *st)
{
    lua_newtable(L);
    lua_pushlightuserdata(L, st);
    lua_pushcclosure(L, http_request, 1);
    sl_lua_io_wrap(L, st);
    lua_setfield(L, -2, "request");
}
