/* The phase trampolines: how a request's call into a Lua plugin runs.
 *
 * rewrite and access run in a coroutine (reused once it ended normally). A
 * PDK I/O function records what it wants and yields; only then does the
 * runner start the host call, so an I/O that cannot yield (inside
 * string.gsub, say) fails before anything is in flight. Results are captured into a table in the registry
 * by the callback and read back by the PDK function inside the coroutine,
 * so every Lua allocation happens in a protected context (lua_pdk_io.c).
 *
 * Filters and log run as plain protected calls on the state's main thread.
 *
 * Every phase function is entered through one Lua function that finds or
 * makes the request's ctx table (in a registry table, at the request's
 * slot number), so the only allocations of a call happen where errors are
 * caught. The C record of a request (its suspended call) sits in the
 * request's plugin slot; the host's req_cleanup hook releases both, also
 * when the client left early. */
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua_host.h"

#define ERRBUF 2048

static const sl_host_t *H(void) { return sl_lua_host(); }

/* ---- logging -------------------------------------------------------------------- */

static const char *plugin_name(const sl_lua_call_t *c) { return c->wd->inst->plugin->name; }

static const char *req_id(sl_req_t *r)
{
    const char *id = r ? H()->req_id(r) : NULL;
    return id ? id : "-";
}

/* One log line per failure: a traceback's lines are joined with " | ". */
static void log_failure(const sl_lua_call_t *c, sl_req_t *r, const char *msg)
{
    char flat[ERRBUF];
    size_t o = 0;
    for (const char *p = msg; *p && o + 4 < sizeof flat; p++) {
        if (*p == '\n') {
            memcpy(flat + o, " | ", 3);
            o += 3;
            while (p[1] == '\t')
                p++;
        } else {
            flat[o++] = *p == '\t' || *p == '\r' ? ' ' : *p;
        }
    }
    flat[o] = '\0';
    H()->log(SL_LOG_LEVEL_ERROR, "lua plugin %s: %s failed (request %s): %s", plugin_name(c),
             sl_lua_phase_names[c->phase], req_id(r), flat);
}

typedef struct {
    lua_State *co;
    char *out;
    size_t cap;
} traceback_args_t;

static int traceback_cb(lua_State *L)
{
    traceback_args_t *a = lua_touserdata(L, 1);
    /* Nothing is pushed on the dead coroutine: only this protected call
     * may allocate. */
    const char *msg;
    if (lua_type(a->co, -1) == LUA_TSTRING) {
        msg = lua_tostring(a->co, -1);
    } else if (lua_type(a->co, -1) == LUA_TNUMBER) {
        lua_pushnumber(L, lua_tonumber(a->co, -1));
        msg = lua_tostring(L, -1);
    } else {
        msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(a->co, -1));
    }
    luaL_traceback(L, a->co, msg, 0);
    snprintf(a->out, a->cap, "%s", lua_tostring(L, -1));
    return 0;
}

static void report_coroutine_error(sl_lua_call_t *c)
{
    char msg[ERRBUF];
    traceback_args_t a = { c->co, msg, sizeof msg };
    if (sl_lua_protect(c->wd->st->L, traceback_cb, &a, NULL, 0) != 0)
        snprintf(msg, sizeof msg, "%s", lua_type(c->co, -1) == LUA_TSTRING
                                            ? lua_tostring(c->co, -1)
                                            : "(no message: out of memory)");
    log_failure(c, c->req->r, msg);
}

/* ---- request records -------------------------------------------------------------- */

static void drop_call(sl_lua_call_t *c);

static void unlink_req(sl_lua_state_t *st, sl_lua_req_t *rec)
{
    if (rec->prev)
        rec->prev->next = rec->next;
    else
        st->reqs = rec->next;
    if (rec->next)
        rec->next->prev = rec->prev;
    rec->prev = rec->next = NULL;
    st->n_reqs--;
}

/* Records are kept for the next request rather than freed: a request
 * passes through here once per Lua-using request, malloc costs show. */
static sl_lua_req_t *req_record_new(sl_lua_state_t *st)
{
    sl_lua_req_t *rec = st->spare_reqs;
    if (!rec)
        return calloc(1, sizeof *rec);
    st->spare_reqs = rec->next;
    st->n_spare_reqs--;
    memset(rec, 0, sizeof *rec);
    return rec;
}

static void req_record_release(sl_lua_state_t *st, sl_lua_req_t *rec)
{
    if (st && st->n_spare_reqs < SL_LUA_IDLE_COROUTINES) {
        rec->next = st->spare_reqs;
        st->spare_reqs = rec;
        st->n_spare_reqs++;
        return;
    }
    free(rec);
}

static void call_free(sl_lua_call_t *c)
{
    if (c->embedded)
        c->req->call_busy = 0;
    else
        free(c);
}

static int ctx_slot_take(sl_lua_state_t *st)
{
    return st->n_free_slots > 0 ? st->free_slots[--st->n_free_slots] : ++st->next_slot;
}

/* Empties the slot (never allocates: only a present entry is set to nil)
 * and keeps its number for the next request. */
static void ctx_slot_release(sl_lua_state_t *st, int slot)
{
    lua_State *L = st->L;
    sl_lua_getref(L, st->ref_ctxs);
    lua_rawgeti(L, -1, slot);
    int present = !lua_isnil(L, -1);
    lua_pop(L, 1);
    if (present) {
        lua_pushnil(L);
        lua_rawseti(L, -2, slot);
    }
    lua_pop(L, 1);
    if (st->n_free_slots == st->cap_free_slots) {
        int cap = st->cap_free_slots ? st->cap_free_slots * 2 : 64;
        int *grown = realloc(st->free_slots, sizeof *grown * (size_t)cap);
        if (!grown)
            return;   /* this number is not reused; nothing else is lost */
        st->free_slots = grown;
        st->cap_free_slots = cap;
    }
    st->free_slots[st->n_free_slots++] = slot;
}

static void req_freed(void *arg)
{
    sl_lua_req_t *rec = arg;
    sl_lua_state_t *st = rec->st;
    if (st) {
        if (rec->suspended)
            drop_call(rec->suspended);
        ctx_slot_release(st, rec->ctx_slot);
        unlink_req(st, rec);
    }
    req_record_release(st, rec);
}

void sl_lua_detach_requests(sl_lua_state_t *st)
{
    while (st->reqs) {
        sl_lua_req_t *rec = st->reqs;
        sl_lua_call_t *c = rec->suspended;
        if (c) {
            /* The state is about to close with everything in it; only the C
             * side needs freeing. */
            if (c->io.release)
                c->io.release(c);
            free(c->io.items);
            call_free(c);
            rec->suspended = NULL;
        }
        unlink_req(st, rec);
        rec->st = NULL;
    }
    while (st->spare_reqs) {
        sl_lua_req_t *rec = st->spare_reqs;
        st->spare_reqs = rec->next;
        free(rec);
    }
    st->n_spare_reqs = 0;
    st->n_suspended = 0;
    st->n_idle = 0;
}

/* The request's record on this worker's state, made on its first Lua call.
 * It lives in the request's plugin slot keyed by the state (every Lua plugin
 * of the worker shares it) and goes with the request's cleanup hook. No Lua
 * work here: the ctx table is made by the entry function, inside the call. */
static sl_lua_req_t *get_req(sl_lua_state_t *st, sl_req_t *r, char *err, size_t errlen)
{
    void **slot = H()->req_slot(r, st);
    if (slot && *slot)
        return *slot;
    sl_lua_req_t *rec = slot ? req_record_new(st) : NULL;
    if (!rec) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    rec->st = st;
    rec->r = r;
    rec->ctx_slot = ctx_slot_take(st);
    if (H()->req_cleanup(r, req_freed, rec) != 0) {
        snprintf(err, errlen, "the gateway refused a cleanup hook");
        ctx_slot_release(st, rec->ctx_slot);
        req_record_release(st, rec);
        return NULL;
    }
    *slot = rec;
    rec->next = st->reqs;
    if (st->reqs)
        st->reqs->prev = rec;
    st->reqs = rec;
    st->n_reqs++;
    return rec;
}

void sl_lua_push_ctx(lua_State *L, sl_lua_call_t *c)
{
    sl_lua_getref(L, c->wd->st->ref_ctxs);
    lua_rawgeti(L, -1, c->req->ctx_slot);
    lua_remove(L, -2);
}

/* Every phase function is entered through this, so a request's ctx table is
 * made (allocating) inside the protected call or coroutine that needs it.
 * The tail calls keep it out of tracebacks; no varargs, which cost LuaJIT
 * a frame adjustment on every call. chunk is only given to body_filter. */
static const char enter_src[] =
    "local ctxs = ...\n"
    "return function(fn, conf, slot, chunk, last)\n"
    "  local ctx = ctxs[slot]\n"
    "  if ctx == nil then ctx = {} ctxs[slot] = ctx end\n"
    "  if chunk == nil then return fn(conf, ctx) end\n"
    "  return fn(conf, ctx, chunk, last)\n"
    "end\n";

static int traceback_handler(lua_State *L);

void sl_lua_runner_prepare(lua_State *L, sl_lua_state_t *st)
{
    if (luaL_loadbuffer(L, enter_src, sizeof enter_src - 1, "=sluice.enter") != 0)
        lua_error(L);
    sl_lua_getref(L, st->ref_ctxs);
    lua_call(L, 1, 1);
    st->ref_enter = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pushcfunction(L, traceback_handler);
    st->ref_traceback = luaL_ref(L, LUA_REGISTRYINDEX);
}

/* ---- the running call ------------------------------------------------------------ */

sl_lua_call_t *sl_lua_current(lua_State *L, sl_lua_state_t *st, const char *fname)
{
    if (!st->current)
        sl_lua_fail(L, fname, "no request here (only phase functions serve a request)");
    return st->current;
}

/* ---- coroutine phases ----------------------------------------------------------- */

/* A coroutine for a new call: an idle one, or a new one anchored in
 * ref_threads (which allocates, so protected). */
static int new_coroutine_cb(lua_State *L)
{
    sl_lua_call_t *c = lua_touserdata(L, 1);
    lua_State *co = lua_newthread(L);
    sl_lua_getref(L, c->wd->st->ref_threads);
    lua_pushlightuserdata(L, co);
    lua_pushvalue(L, -3);
    lua_rawset(L, -3);
    c->co = co;
    return 0;
}

static int take_coroutine(sl_lua_call_t *c, char *err, size_t errlen)
{
    sl_lua_state_t *st = c->wd->st;
    if (st->n_idle > 0)
        c->co = st->idle[--st->n_idle];
    else if (sl_lua_protect(st->L, new_coroutine_cb, c, err, errlen) != 0)
        return -1;
    st->n_suspended++;
    return 0;
}

/* A coroutine that ended normally is as good as new once its stack is
 * cleared; one that raised or still waits is dead to us and left to the
 * collector. */
static void give_back_coroutine(sl_lua_call_t *c, int reusable)
{
    sl_lua_state_t *st = c->wd->st;
    lua_State *co = c->co;
    c->co = NULL;
    st->n_suspended--;
    if (reusable && st->n_idle < SL_LUA_IDLE_COROUTINES && lua_status(co) == 0) {
        lua_settop(co, 0);
        st->idle[st->n_idle++] = co;
        return;
    }
    sl_lua_reg_clear(st->L, st->ref_threads, co);
}

static void drop_call(sl_lua_call_t *c)
{
    sl_lua_state_t *st = c->wd->st;
    if (c->io.release)
        c->io.release(c);
    free(c->io.items);
    if (c->co) {
        if (c->did_io)
            sl_lua_reg_clear(st->L, st->ref_results, c);
        give_back_coroutine(c, 0);
    }
    if (c->req && c->req->suspended == c)
        c->req->suspended = NULL;
    call_free(c);
}

static int is_exit(lua_State *co)
{
    return lua_islightuserdata(co, -1) && lua_touserdata(co, -1) == sl_lua_exit_marker();
}

static int over_limit(sl_lua_call_t *c)
{
    return sl_lua_over_limit(c->wd->st, plugin_name(c), c->req->r);
}

/* Resumes the coroutine until it ends or waits for I/O. */
static sl_status_t drive(sl_lua_call_t *c, int nargs)
{
    sl_lua_state_t *st = c->wd->st;
    for (;;) {
        sl_lua_call_t *outer = st->current;
        st->current = c;
        int rc = lua_resume(c->co, nargs);
        st->current = outer;
        if (rc == LUA_YIELD) {
            void (*start)(sl_lua_call_t *) = c->io.start;
            if (!start) {
                log_failure(c, c->req->r, "the coroutine yielded outside a PDK call");
                return SL_ERROR;
            }
            if (over_limit(c))
                return SL_ERROR;
            c->io.start = NULL;
            c->io.pending = c->io.n_items;
            c->did_io = 1;
            start(c);
            /* The host copies what it is given, so the arguments can go. */
            if (c->io.release) {
                c->io.release(c);
                c->io.release = NULL;
            }
            if (c->io.pending > 0) {
                c->io.waiting = 1;
                return SL_YIELD;
            }
            nargs = 0;
            continue;
        }
        if (rc == 0)
            return SL_OK;
        if (is_exit(c->co))
            return SL_DONE;
        report_coroutine_error(c);
        return SL_ERROR;
    }
}

/* Frees an ended call, then checks the memory limit: the dead coroutine's
 * stack no longer pins what it held. */
static sl_status_t finish_call(sl_lua_call_t *c, sl_status_t s)
{
    sl_lua_state_t *st = c->wd->st;
    const char *name = plugin_name(c);
    sl_req_t *r = c->req->r;
    if (c->co) {
        if (c->did_io)   /* results a failed call never took */
            sl_lua_reg_clear(st->L, st->ref_results, c);
        give_back_coroutine(c, s == SL_OK);
    }
    drop_call(c);
    if (sl_lua_over_limit(st, name, r))
        return SL_ERROR;
    return s;
}

void sl_lua_io_settle(sl_lua_call_t *c)
{
    if (--c->io.pending > 0 || !c->io.waiting)
        return;   /* more to come, or settled while starting: drive() goes on */
    c->io.waiting = 0;
    sl_status_t s = drive(c, 0);
    if (s == SL_YIELD)
        return;
    sl_req_t *r = c->req->r;
    s = finish_call(c, s);
    /* Last: resume may run the rest of the chain and even free the request. */
    H()->resume(r, s);
}

static sl_lua_wdata_t *wdata(void *instance, sl_req_t *r, int phase)
{
    sl_lua_wdata_t *wd = H()->worker_data(r, instance);
    if (!wd) {
        const sl_lua_instance_t *inst = instance;
        H()->log(SL_LOG_LEVEL_ERROR,
                 "lua plugin %s: %s failed (request %s): not initialised on this worker",
                 inst && inst->plugin ? inst->plugin->name : "?", sl_lua_phase_names[phase],
                 req_id(r));
    }
    return wd;
}

static sl_status_t run_coroutine_phase(void *instance, sl_req_t *r, int phase)
{
    sl_lua_wdata_t *wd = wdata(instance, r, phase);
    if (!wd)
        return SL_ERROR;
    if (wd->mod->ref_fn[phase] == LUA_NOREF)
        return SL_OK;
    char err[256] = "";
    sl_lua_req_t *rec = get_req(wd->st, r, err, sizeof err);
    sl_lua_call_t *c = NULL;
    if (rec && !rec->suspended) {
        if (!rec->call_busy) {
            c = &rec->call;
            memset(c, 0, sizeof *c);
            c->embedded = 1;
            rec->call_busy = 1;
        } else if (!(c = calloc(1, sizeof *c))) {
            snprintf(err, sizeof err, "out of memory");
        }
    } else if (rec) {
        snprintf(err, sizeof err, "a previous call of this request is still waiting");
    }
    if (c) {
        c->wd = wd;
        c->phase = phase;
        c->req = rec;
        if (take_coroutine(c, err, sizeof err) != 0) {
            drop_call(c);
            c = NULL;
        }
    }
    if (!c) {
        sl_lua_call_t failed = { .wd = wd, .phase = phase };
        log_failure(&failed, r, err);
        return SL_ERROR;
    }
    /* A coroutine at rest has LUA_MINSTACK free slots: these pushes never
     * allocate. */
    lua_State *co = c->co;
    sl_lua_getref(co, wd->st->ref_enter);
    sl_lua_getref(co, wd->mod->ref_fn[phase]);
    sl_lua_getref(co, wd->ref_conf);
    lua_pushinteger(co, rec->ctx_slot);
    sl_status_t s = drive(c, 3);
    if (s == SL_YIELD) {
        c->req->suspended = c;
        return SL_YIELD;
    }
    return finish_call(c, s);
}

sl_status_t sl_lua_run_rewrite(void *instance, sl_req_t *r)
{
    return run_coroutine_phase(instance, r, SL_LUA_REWRITE);
}

sl_status_t sl_lua_run_access(void *instance, sl_req_t *r)
{
    return run_coroutine_phase(instance, r, SL_LUA_ACCESS);
}

/* ---- direct phases ----------------------------------------------------------------- */

typedef struct {
    sl_lua_call_t *c;
    sl_body_chunk_t *chunk;
    sl_status_t status;
    char err[ERRBUF];
} direct_args_t;

static int traceback_handler(lua_State *L)
{
    if (lua_islightuserdata(L, 1) && lua_touserdata(L, 1) == sl_lua_exit_marker())
        return 1;
    const char *msg = lua_type(L, 1) == LUA_TSTRING || lua_type(L, 1) == LUA_TNUMBER
                          ? lua_tostring(L, 1)
                          : lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    luaL_traceback(L, L, msg, 1);
    return 1;
}

/* Calls the phase function on the state's main thread. Nothing allocates
 * before lua_pcall unless there is a chunk to push, so header_filter and log
 * run it unprotected; body_filter runs it inside sl_lua_protect. */
static void call_direct(lua_State *L, direct_args_t *a)
{
    sl_lua_call_t *c = a->c;
    sl_lua_state_t *st = c->wd->st;
    int base = lua_gettop(L);
    sl_lua_getref(L, st->ref_traceback);
    sl_lua_getref(L, st->ref_enter);
    sl_lua_getref(L, c->wd->mod->ref_fn[c->phase]);
    sl_lua_getref(L, c->wd->ref_conf);
    lua_pushinteger(L, c->req->ctx_slot);
    int nargs = 3;
    if (a->chunk) {
        lua_pushlstring(L, a->chunk->data ? a->chunk->data : "", a->chunk->len);
        lua_pushboolean(L, a->chunk->last);
        nargs = 5;
    }
    if (lua_pcall(L, nargs, 1, base + 1) != 0) {
        if (lua_islightuserdata(L, -1) && lua_touserdata(L, -1) == sl_lua_exit_marker()) {
            a->status = SL_DONE;
        } else {
            a->status = SL_ERROR;
            snprintf(a->err, sizeof a->err, "%s", sl_lua_errmsg(L, -1));
        }
    } else {
        a->status = SL_OK;
        if (a->chunk && !lua_isnil(L, -1)) {
            size_t len;
            const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &len) : NULL;
            if (!s) {
                snprintf(a->err, sizeof a->err, "body_filter must return a string or nil, not a %s",
                         luaL_typename(L, -1));
                a->status = SL_ERROR;
            } else if (H()->body_replace(c->req->r, a->chunk, s, len) != 0) {
                snprintf(a->err, sizeof a->err, "the gateway refused the replacement body");
                a->status = SL_ERROR;
            }
        }
    }
    lua_settop(L, base);
}

static int direct_cb(lua_State *L)
{
    call_direct(L, lua_touserdata(L, 1));
    return 0;
}

static sl_status_t run_direct_phase(void *instance, sl_req_t *r, int phase, sl_body_chunk_t *chunk)
{
    sl_lua_wdata_t *wd = wdata(instance, r, phase);
    if (!wd)
        return SL_ERROR;
    if (wd->mod->ref_fn[phase] == LUA_NOREF)
        return SL_OK;
    sl_lua_state_t *st = wd->st;
    sl_lua_call_t c = { .wd = wd, .phase = phase };
    direct_args_t a = { .c = &c, .chunk = chunk, .status = SL_ERROR };
    c.req = get_req(st, r, a.err, sizeof a.err);
    if (c.req) {
        sl_lua_call_t *outer = st->current;
        st->current = &c;
        if (!chunk)
            call_direct(st->L, &a);
        else if (sl_lua_protect(st->L, direct_cb, &a, a.err, sizeof a.err) != 0)
            a.status = SL_ERROR;
        st->current = outer;
    }
    if (a.status == SL_ERROR)
        log_failure(&c, r, a.err);
    if (sl_lua_over_limit(st, wd->inst->plugin->name, r))
        a.status = SL_ERROR;
    return a.status;
}

sl_status_t sl_lua_run_header_filter(void *instance, sl_req_t *r)
{
    return run_direct_phase(instance, r, SL_LUA_HEADER_FILTER, NULL);
}

sl_status_t sl_lua_run_body_filter(void *instance, sl_req_t *r, sl_body_chunk_t *chunk)
{
    return run_direct_phase(instance, r, SL_LUA_BODY_FILTER, chunk);
}

void sl_lua_run_log(void *instance, sl_req_t *r)
{
    (void)run_direct_phase(instance, r, SL_LUA_LOG, NULL);
}
