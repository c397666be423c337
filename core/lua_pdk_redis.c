/* sluice.redis: commands on the gateway's Redis connection, suspending the
 * request (not the worker) until the reply arrives.
 *
 * Replies: bulk and status strings -> string, integer -> number (an
 * sluice.json int64 box beyond 2^53), nil -> nil, error -> nil, "ERR ...",
 * array -> a list marked as a JSON array, where nil elements are json.null
 * and error elements {err = "..."}. */
#include <lauxlib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua_host.h"

#define MAX_DEPTH 32

/* ---- arguments ------------------------------------------------------------------- */

typedef struct {
    int argc;
    const char **argv;
    size_t *lens;
} cmd_t;

typedef struct {
    int n;
    cmd_t *cmds;
    char *block;   /* every argument's bytes, each NUL-terminated */
} redis_io_t;

/* Where a command's arguments are: an optional literal first (EVAL), then
 * stack slots first..last, or items first..last of the table at `table`. */
typedef struct {
    const char *prefix;
    int table;
    int first, last;
} src_t;

static int src_count(const src_t *s) { return (s->prefix ? 1 : 0) + s->last - s->first + 1; }

/* The text of argument i (0-based) of s: strings as they are, numbers the
 * way Redis parses them. NULL for anything else. Table items stay anchored
 * by their table, so the pointer outlives the pop. */
static const char *arg_text(lua_State *L, const src_t *s, int i, char *tmp, size_t tmpcap,
                            size_t *len)
{
    if (s->prefix) {
        if (i == 0) {
            *len = strlen(s->prefix);
            return s->prefix;
        }
        i--;
    }
    int idx = s->first + i;
    if (s->table) {
        lua_rawgeti(L, s->table, idx);
        idx = lua_gettop(L);
    }
    const char *out = NULL;
    if (lua_type(L, idx) == LUA_TSTRING) {
        out = lua_tolstring(L, idx, len);
    } else if (lua_type(L, idx) == LUA_TNUMBER) {
        lua_Number n = lua_tonumber(L, idx);
        if (isfinite(n)) {
            if (n == floor(n) && fabs(n) < 9.2e18)
                snprintf(tmp, tmpcap, "%lld", (long long)n);
            else
                snprintf(tmp, tmpcap, "%.17g", n);
            *len = strlen(tmp);
            out = tmp;
        }
    }
    if (s->table)
        lua_pop(L, 1);
    return out;
}

static void free_io(redis_io_t *io)
{
    if (!io)
        return;
    for (int i = 0; i < io->n; i++) {
        free(io->cmds[i].argv);
        free(io->cmds[i].lens);
    }
    free(io->cmds);
    free(io->block);
    free(io);
}

/* Checks every argument first (raising on a bad one before anything is
 * allocated), then copies them all. */
static redis_io_t *collect(lua_State *L, const char *fname, const src_t *srcs, int n)
{
    char tmp[40];
    size_t total = 0;
    for (int c = 0; c < n; c++) {
        int argc = src_count(&srcs[c]);
        if (argc < 1)
            sl_lua_fail_at(L, 2, fname, "a command needs at least its name");
        for (int i = 0; i < argc; i++) {
            size_t len;
            if (!arg_text(L, &srcs[c], i, tmp, sizeof tmp, &len)) {
                if (n > 1 || srcs[c].table)
                    sl_lua_fail_at(L, 2, fname, "command #%d, argument #%d must be a string or a "
                                                "finite number", c + 1, i + 1);
                sl_lua_fail_at(L, 2, fname, "argument #%d must be a string or a finite number",
                               i + 1);
            }
            if (i == 0 && len == 0)
                sl_lua_fail_at(L, 2, fname, "the command name must not be empty");
            total += len + 1;
        }
    }
    redis_io_t *io = calloc(1, sizeof *io);
    if (io) {
        io->cmds = calloc((size_t)(n ? n : 1), sizeof *io->cmds);
        io->block = malloc(total ? total : 1);
    }
    if (!io || !io->cmds || !io->block) {
        free_io(io);
        sl_lua_fail_at(L, 2, fname, "out of memory");
    }
    char *o = io->block;
    for (int c = 0; c < n; c++) {
        cmd_t *cmd = &io->cmds[c];
        cmd->argc = src_count(&srcs[c]);
        cmd->argv = malloc(sizeof *cmd->argv * (size_t)cmd->argc);
        cmd->lens = malloc(sizeof *cmd->lens * (size_t)cmd->argc);
        io->n = c + 1;
        if (!cmd->argv || !cmd->lens) {
            free_io(io);
            sl_lua_fail_at(L, 2, fname, "out of memory");
        }
        for (int i = 0; i < cmd->argc; i++) {
            size_t len = 0;
            const char *s = arg_text(L, &srcs[c], i, tmp, sizeof tmp, &len);
            memcpy(o, s, len);
            o[len] = '\0';
            cmd->argv[i] = o;
            cmd->lens[i] = len;
            o += len + 1;
        }
    }
    return io;
}

/* ---- replies ------------------------------------------------------------------------- */

typedef struct {
    const sl_reply_t *reply;
    const char *err;
    sl_lua_state_t *st;
} reply_args_t;

static void push_integer(lua_State *L, int json, long long v)
{
    if (v >= -9007199254740992LL && v <= 9007199254740992LL) {
        lua_pushnumber(L, (lua_Number)v);
        return;
    }
    char digits[32];
    snprintf(digits, sizeof digits, "%lld", v);
    lua_getfield(L, json, "int64");
    lua_pushstring(L, digits);
    lua_call(L, 1, 1);
}

static void push_element(lua_State *L, int json, const sl_reply_t *r, int depth)
{
    luaL_checkstack(L, 4, "redis reply");
    if (!r) {
        lua_getfield(L, json, "null");
        return;
    }
    switch (r->type) {
    case SL_REPLY_STRING:
    case SL_REPLY_STATUS:
        lua_pushlstring(L, r->str ? r->str : "", r->str ? r->len : 0);
        return;
    case SL_REPLY_INTEGER:
        push_integer(L, json, r->integer);
        return;
    case SL_REPLY_ERROR:
        lua_createtable(L, 0, 1);
        lua_pushlstring(L, r->str ? r->str : "", r->str ? r->len : 0);
        lua_setfield(L, -2, "err");
        return;
    case SL_REPLY_ARRAY:
        if (depth >= MAX_DEPTH)
            luaL_error(L, "the redis reply nests too deeply");
        lua_getfield(L, json, "array");
        lua_call(L, 0, 1);
        for (size_t i = 0; i < r->elements; i++) {
            push_element(L, json, r->element ? r->element[i] : NULL, depth + 1);
            lua_rawseti(L, -2, (int)i + 1);
        }
        return;
    case SL_REPLY_NIL:
    default:
        lua_getfield(L, json, "null");
        return;
    }
}

static int push_reply(lua_State *L, void *ud)
{
    reply_args_t *a = ud;
    const sl_reply_t *r = a->reply;
    if (!r || r->type == SL_REPLY_ERROR) {
        lua_pushnil(L);
        if (r)
            lua_pushlstring(L, r->str ? r->str : "", r->str ? r->len : 0);
        else
            lua_pushstring(L, a->err ? a->err : "no reply");
        return 2;
    }
    if (r->type == SL_REPLY_NIL) {
        lua_pushnil(L);
        return 1;
    }
    sl_lua_getref(L, a->st->ref_json);
    int json = lua_gettop(L);
    push_element(L, json, r, 0);
    lua_remove(L, json);
    return 1;
}

static int push_unavailable(lua_State *L, void *ud)
{
    (void)ud;
    lua_pushnil(L);
    lua_pushliteral(L, "redis is not available (is there a redis section in the config?)");
    return 2;
}

static void replied(sl_req_t *r, void *arg, const sl_reply_t *reply, const char *err)
{
    (void)r;
    sl_lua_io_item_t *it = arg;
    reply_args_t a = { reply, err, it->call->wd->st };
    sl_lua_io_capture(it->call, it->index, push_reply, &a);
    sl_lua_io_settle(it->call);
}

/* ---- starting ------------------------------------------------------------------------- */

static void start(sl_lua_call_t *c)
{
    redis_io_t *io = c->io.data;
    for (int i = 0; i < io->n; i++) {
        sl_lua_io_item_t *it = &c->io.items[i];
        const cmd_t *cmd = &io->cmds[i];
        if (sl_lua_host()->redis_call(c->req->r, cmd->argc, cmd->argv, cmd->lens, replied, it) !=
            0) {
            sl_lua_io_capture(c, it->index, push_unavailable, NULL);
            sl_lua_io_settle(c);
        }
    }
}

static void release(sl_lua_call_t *c)
{
    free_io(c->io.data);
    c->io.data = NULL;
}

static int submit(lua_State *L, sl_lua_call_t *c, redis_io_t *io, int many)
{
    c->io.items = calloc((size_t)(io->n ? io->n : 1), sizeof *c->io.items);
    if (!c->io.items) {
        free_io(io);
        return sl_lua_fail_at(L, 2, "sluice.redis", "out of memory");
    }
    for (int i = 0; i < io->n; i++) {
        c->io.items[i].call = c;
        c->io.items[i].index = many ? i + 1 : 0;
    }
    c->io.data = io;
    c->io.n_items = io->n;
    c->io.many = many;
    c->io.start = start;
    c->io.release = release;
    return sl_lua_io_yield(L, c);
}

static int redis_call(lua_State *L)
{
    const char *fname = "sluice.redis.call";
    src_t src = { NULL, 0, 1, lua_gettop(L) };
    sl_lua_call_t *c = sl_lua_io_begin(L, SL_LUA_UP_STATE(L), fname);
    return submit(L, c, collect(L, fname, &src, 1), 0);
}

static int redis_eval(lua_State *L)
{
    const char *fname = "sluice.redis.eval";
    int n = lua_gettop(L);
    if (lua_type(L, 1) != LUA_TSTRING)
        return sl_lua_fail_at(L, 2, fname, "the script must be a string");
    if (!sl_lua_is_integer_in(L, 2, 0, n - 2))
        return sl_lua_fail_at(L, 2, fname, "nkeys must be an integer from 0 to the number of "
                                           "arguments after it");
    src_t src = { "EVAL", 0, 1, n };
    sl_lua_call_t *c = sl_lua_io_begin(L, SL_LUA_UP_STATE(L), fname);
    return submit(L, c, collect(L, fname, &src, 1), 0);
}

static int redis_pipeline(lua_State *L)
{
    const char *fname = "sluice.redis.pipeline";
    if (!lua_istable(L, 1))
        return sl_lua_fail_at(L, 2, fname, "expects a list of commands, each a list");
    int n = (int)lua_objlen(L, 1);
    if (n > 1000)
        return sl_lua_fail_at(L, 2, fname, "at most 1000 commands at once");
    luaL_checkstack(L, n + 8, "pipeline");
    /* Each command table goes on the stack so its src can name its slot. */
    src_t *srcs = lua_newuserdata(L, sizeof *srcs * (size_t)(n ? n : 1));
    for (int i = 0; i < n; i++) {
        lua_rawgeti(L, 1, i + 1);
        if (!lua_istable(L, -1))
            return sl_lua_fail_at(L, 2, fname, "command #%d must be a list", i + 1);
        srcs[i] = (src_t){ NULL, lua_gettop(L), 1, (int)lua_objlen(L, -1) };
    }
    sl_lua_call_t *c = sl_lua_io_begin(L, SL_LUA_UP_STATE(L), fname);
    return submit(L, c, collect(L, fname, srcs, n), 1);
}

void sl_lua_open_redis(lua_State *L, sl_lua_state_t *st)
{
    static const luaL_Reg fns[] = {
        { "call", redis_call },
        { "eval", redis_eval },
        { "pipeline", redis_pipeline },
        { NULL, NULL },
    };
    lua_newtable(L);
    for (const luaL_Reg *f = fns; f->name; f++) {
        lua_pushlightuserdata(L, st);
        lua_pushcclosure(L, f->func, 1);
        sl_lua_io_wrap(L, st);
        lua_setfield(L, -2, f->name);
    }
}
