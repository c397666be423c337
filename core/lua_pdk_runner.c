/* The phase trampolines: how a request's call into a Lua plugin runs.
 *
 * rewrite and access run in a fresh coroutine. A PDK I/O function records
 * what it wants and yields; only then does the runner start the host call,
 * so an I/O that cannot yield (inside string.gsub, say) fails before
 * anything is in flight. Results are captured into a table in the registry
 * by the callback and read back by the PDK function inside the coroutine,
 * so every Lua allocation happens in a protected context (lua_pdk_io.c).
 *
 * Filters and log run as plain protected calls on the state's main thread.
 *
 * Per-request Lua data (the ctx table, a suspended coroutine) lives in
 * registry tables keyed by the request pointer and is released by the
 * host's req_cleanup hook, which also runs when the client left early. */
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

static void req_freed(void *arg)
{
    sl_lua_req_t *rec = arg;
    sl_lua_state_t *st = rec->st;
    if (st) {
        if (rec->suspended)
            drop_call(rec->suspended);
        sl_lua_reg_clear(st->L, st->ref_reqs, rec->r);
        sl_lua_reg_clear(st->L, st->ref_ctxs, rec->r);
        unlink_req(st, rec);
    }
    free(rec);
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
            free(c);
            rec->suspended = NULL;
        }
        unlink_req(st, rec);
        rec->st = NULL;
    }
    st->n_suspended = 0;
}

typedef struct {
    sl_lua_state_t *st;
    sl_lua_req_t *rec;
} new_req_args_t;

static int new_req_cb(lua_State *L)
{
    new_req_args_t *a = lua_touserdata(L, 1);
    sl_lua_getref(L, a->st->ref_ctxs);
    lua_pushlightuserdata(L, a->rec->r);
    lua_newtable(L);
    lua_rawset(L, -3);
    sl_lua_getref(L, a->st->ref_reqs);
    lua_pushlightuserdata(L, a->rec->r);
    lua_pushlightuserdata(L, a->rec);
    lua_rawset(L, -3);
    return 0;
}

/* The request's record, created (with its ctx table and cleanup hook) on
 * the first Lua call of the request on this worker. */
static sl_lua_req_t *get_req(sl_lua_state_t *st, sl_req_t *r, char *err, size_t errlen)
{
    sl_lua_reg_get(st->L, st->ref_reqs, r);
    sl_lua_req_t *rec = lua_touserdata(st->L, -1);
    lua_pop(st->L, 1);
    if (rec)
        return rec;
    rec = calloc(1, sizeof *rec);
    if (!rec) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    rec->st = st;
    rec->r = r;
    new_req_args_t a = { st, rec };
    int failed = sl_lua_protect(st->L, new_req_cb, &a, err, errlen) != 0;
    if (!failed && H()->req_cleanup(r, req_freed, rec) != 0) {
        snprintf(err, errlen, "the gateway refused a cleanup hook");
        failed = 1;
    }
    if (failed) {
        sl_lua_reg_clear(st->L, st->ref_reqs, r);
        sl_lua_reg_clear(st->L, st->ref_ctxs, r);
        free(rec);
        return NULL;
    }
    rec->next = st->reqs;
    if (st->reqs)
        st->reqs->prev = rec;
    st->reqs = rec;
    st->n_reqs++;
    return rec;
}

void sl_lua_push_ctx(lua_State *L, sl_lua_call_t *c)
{
    sl_lua_reg_get(L, c->wd->st->ref_ctxs, c->req->r);
}

/* ---- the running call ------------------------------------------------------------ */

sl_lua_call_t *sl_lua_current(lua_State *L, sl_lua_state_t *st, const char *fname)
{
    if (!st->current)
        sl_lua_fail(L, fname, "no request here (only phase functions serve a request)");
    return st->current;
}

/* ---- coroutine phases ----------------------------------------------------------- */

static void drop_call(sl_lua_call_t *c)
{
    sl_lua_state_t *st = c->wd->st;
    if (c->io.release)
        c->io.release(c);
    free(c->io.items);
    if (c->co) {
        sl_lua_reg_clear(st->L, st->ref_threads, c);
        sl_lua_reg_clear(st->L, st->ref_results, c);
        st->n_suspended--;
    }
    if (c->req && c->req->suspended == c)
        c->req->suspended = NULL;
    free(c);
}

static int is_exit(lua_State *co)
{
    return lua_islightuserdata(co, -1) && lua_touserdata(co, -1) == sl_lua_exit_marker();
}

static int over_limit(sl_lua_call_t *c)
{
    return sl_lua_over_limit(c->wd->st, plugin_name(c), req_id(c->req->r));
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
    const char *id = req_id(c->req->r);
    drop_call(c);
    if (sl_lua_over_limit(st, name, id))
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

static int start_coroutine_cb(lua_State *L)
{
    sl_lua_call_t *c = lua_touserdata(L, 1);
    sl_lua_state_t *st = c->wd->st;
    lua_State *co = lua_newthread(L);
    c->co = co;
    st->n_suspended++;
    sl_lua_getref(L, st->ref_threads);
    lua_pushlightuserdata(L, c);
    lua_pushvalue(L, -3);
    lua_rawset(L, -3);
    lua_pop(L, 1);
    sl_lua_getref(L, c->wd->mod->ref_fn[c->phase]);
    sl_lua_getref(L, c->wd->ref_conf);
    sl_lua_push_ctx(L, c);
    lua_xmove(L, co, 3);
    return 0;
}

static sl_status_t run_coroutine_phase(void *instance, sl_req_t *r, int phase)
{
    sl_lua_wdata_t *wd = wdata(instance, r, phase);
    if (!wd)
        return SL_ERROR;
    if (wd->mod->ref_fn[phase] == LUA_NOREF)
        return SL_OK;
    sl_lua_call_t *c = calloc(1, sizeof *c);
    if (!c) {
        H()->log(SL_LOG_LEVEL_ERROR, "lua plugin %s: %s failed (request %s): out of memory",
                 wd->inst->plugin->name, sl_lua_phase_names[phase], req_id(r));
        return SL_ERROR;
    }
    c->wd = wd;
    c->phase = phase;
    char err[256] = "";
    c->req = get_req(wd->st, r, err, sizeof err);
    int ok = c->req != NULL;
    if (ok && c->req->suspended) {
        snprintf(err, sizeof err, "a previous call of this request is still waiting");
        ok = 0;
    }
    if (ok && sl_lua_protect(wd->st->L, start_coroutine_cb, c, err, sizeof err) != 0)
        ok = 0;
    if (!ok) {
        log_failure(c, r, err);
        drop_call(c);
        return SL_ERROR;
    }
    sl_status_t s = drive(c, 2);
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

static int direct_cb(lua_State *L)
{
    direct_args_t *a = lua_touserdata(L, 1);
    sl_lua_call_t *c = a->c;
    lua_pushcfunction(L, traceback_handler);
    int handler = lua_gettop(L);
    sl_lua_getref(L, c->wd->mod->ref_fn[c->phase]);
    sl_lua_getref(L, c->wd->ref_conf);
    sl_lua_push_ctx(L, c);
    int nargs = 2;
    if (a->chunk) {
        lua_pushlstring(L, a->chunk->data ? a->chunk->data : "", a->chunk->len);
        lua_pushboolean(L, a->chunk->last);
        nargs = 4;
    }
    if (lua_pcall(L, nargs, 1, handler) != 0) {
        if (lua_islightuserdata(L, -1) && lua_touserdata(L, -1) == sl_lua_exit_marker()) {
            a->status = SL_DONE;
        } else {
            a->status = SL_ERROR;
            snprintf(a->err, sizeof a->err, "%s", sl_lua_errmsg(L, -1));
        }
        return 0;
    }
    a->status = SL_OK;
    if (!a->chunk || lua_isnil(L, -1))
        return 0;
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
        if (sl_lua_protect(st->L, direct_cb, &a, a.err, sizeof a.err) != 0)
            a.status = SL_ERROR;
        st->current = outer;
    }
    if (a.status == SL_ERROR)
        log_failure(&c, r, a.err);
    if (sl_lua_over_limit(st, wd->inst->plugin->name, req_id(r)))
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
