/* Lua plugins: the LuaJIT host, its sandbox, the coroutine runner and the
 * PDK (the sluice.* modules plugins require).
 *
 * A Lua plugin reaches the gateway as an ordinary C plugin descriptor whose
 * functions are trampolines into Lua, so the chain runner needs no special
 * case. Everything the PDK does goes through the public sl_host_t table.
 *
 * States. Each worker has exactly one lua_State, created on that worker's
 * thread by the first worker_init; every Lua plugin of the worker shares it,
 * each plugin file loaded once per descriptor into it with its own sandboxed
 * environment. Loading a file to build its descriptor happens in a
 * short-lived scratch state on the calling (main) thread.
 *
 * rewrite and access run in a coroutine each (taken from a small per-state
 * pool of finished ones), so PDK I/O (redis, http, sleep) suspends the
 * request without blocking the event loop: the trampoline returns SL_YIELD
 * and the I/O callback resumes the coroutine, calling host->resume() once it
 * ends. header_filter, body_filter and log run as plain protected calls; PDK
 * I/O there is an error.
 *
 * The plugin-facing reference (every module and function, the sandbox, the
 * limits) is lua/README.md. */
#ifndef SLUICE_LUA_HOST_H
#define SLUICE_LUA_HOST_H

#include <stddef.h>

#include "sluice/host.h"
#include "sluice/plugin.h"

/* Once at start-up, before any load. lua_dir: a directory of Lua modules for
 * the PDK; the PDK is entirely built in today, so it is only remembered and
 * may be NULL. mem_limit_bytes: per Lua state, 64 MiB when 0. 0 ok, -1 when
 * already initialised or the arguments are unusable (NULL host, a host
 * table older than this SDK, n_workers < 1). */
int sl_lua_host_init(const sl_host_t *host, int n_workers, const char *lua_dir,
                     size_t mem_limit_bytes);
/* After every worker has stopped: closes the worker states. Requests still
 * holding Lua data are detached, so their cleanup hooks stay harmless.
 * sl_lua_host_init may be called again afterwards. */
void sl_lua_host_shutdown(void);

/* Loads a plugin file in a scratch sandboxed state on the calling thread to
 * read its name, version, schema (as JSON text) and phase functions. Returns
 * a heap descriptor (free with sl_lua_plugin_free once no instance uses it)
 * or NULL with a message naming the file, with Lua's line when it has one:
 * "plugins/x.lua:3: '=' expected near 'y'", "plugins/x.lua: missing name". */
sl_plugin_desc_t *sl_lua_plugin_load(const char *path, char *err, size_t errlen);
void sl_lua_plugin_free(sl_plugin_desc_t *d);

/* At most this many Lua descriptors may be alive at once (configure() gets
 * no descriptor argument, so each live descriptor takes one of a fixed set
 * of configure trampolines). */
#define SL_LUA_MAX_PLUGINS 256

/* Counters for tests and metrics; -1 when worker_id has no state. */
typedef struct sl_lua_stats {
    size_t mem_bytes;     /* lua_gc(LUA_GCCOUNT) */
    int requests;         /* requests with a live record on this worker */
    int suspended;        /* coroutines in use (running or waiting for I/O) */
    int registry_items;   /* per-request registry entries: ctx tables, coroutines
                             in use, captured results (idle pooled coroutines
                             are not counted) */
} sl_lua_stats_t;
int sl_lua_host_stats(int worker_id, sl_lua_stats_t *out);

/* ======================================================================
 * Internal to core/lua_host.c and core/lua_pdk_*.c; nothing else uses it.
 * ====================================================================== */

#include <jansson.h>
#include <lauxlib.h>
#include <lua.h>
#include <stdint.h>

typedef struct sl_lua_state sl_lua_state_t;
typedef struct sl_lua_plugin sl_lua_plugin_t;
typedef struct sl_lua_call sl_lua_call_t;
typedef struct sl_lua_req sl_lua_req_t;

#define SL_LUA_IDLE_COROUTINES 64

enum { SL_LUA_REWRITE, SL_LUA_ACCESS, SL_LUA_HEADER_FILTER, SL_LUA_BODY_FILTER, SL_LUA_LOG,
       SL_LUA_N_PHASES };
extern const char *const sl_lua_phase_names[SL_LUA_N_PHASES];

struct sl_lua_state {
    lua_State *L;
    int worker_id;                /* -1: a scratch state used while loading */
    size_t mem_limit;
    sl_lua_call_t *current;       /* the call running now (calls nest) */
    sl_lua_req_t *reqs;           /* live request records, to detach at shutdown */
    int n_reqs, n_suspended;
    /* Coroutines that ended normally, kept for the next call: a new one costs
     * a stack allocation and more garbage per request than the phase itself. */
    lua_State *idle[SL_LUA_IDLE_COROUTINES];
    int n_idle;
    sl_lua_req_t *spare_reqs;     /* records of finished requests, for reuse */
    int n_spare_reqs;
    /* registry refs of per-state tables and helpers */
    int ref_ctxs;                 /* ctx slot (integer) -> the request's ctx table */
    /* ctx slots: small integers, reused, so the ctx tables sit in the array
     * part of one table instead of churning a hash keyed by request. */
    int *free_slots;
    int n_free_slots, cap_free_slots, next_slot;
    int ref_threads;              /* lightuserdata(coroutine) -> it (in use or idle) */
    int ref_results;              /* lightuserdata(call) -> captured I/O results */
    int ref_json;                 /* the sluice.json module table */
    int ref_io_wrap;              /* function(start) -> function(...) start(...) return take() end */
    int ref_guards;               /* {pcall, xpcall} that let exit() through */
    int ref_format;               /* string.format */
    int ref_enter;                /* function(fn, conf, slot[, chunk, last]): finds or makes
                                     ctx, calls fn */
    int ref_traceback;            /* the message handler of the direct phases */
};

/* The plugin's module in one worker state: its phase functions (which
 * keep its environment alive). */
typedef struct sl_lua_mod {
    int users;                    /* instances of this worker using it */
    int ref_fn[SL_LUA_N_PHASES];  /* LUA_NOREF for phases the plugin lacks */
} sl_lua_mod_t;

struct sl_lua_plugin {
    sl_plugin_desc_t desc;        /* first, so a desc pointer is a plugin pointer */
    int slot;
    char *path, *name, *version, *schema, *provides;
    char *requires;               /* from a static list; NULL when none or computed */
    int requires_is_fn;
    char *source;
    size_t source_len;
    int n_workers;
    sl_lua_mod_t *mods;           /* one per worker, each touched only by its thread */
};

typedef struct sl_lua_instance {
    sl_lua_plugin_t *plugin;
    const json_t *conf;           /* borrowed for the instance's lifetime */
    char *requires;
} sl_lua_instance_t;

/* What worker_init returns: one instance on one worker. */
typedef struct sl_lua_wdata {
    sl_lua_state_t *st;
    sl_lua_instance_t *inst;
    sl_lua_mod_t *mod;
    int ref_conf;
    unsigned generation;          /* sl_lua_generation() when made */
} sl_lua_wdata_t;

/* I/O a coroutine asked for: filled by the PDK function before it yields,
 * started by the runner once the yield went through. */
typedef struct sl_lua_io_item {
    sl_lua_call_t *call;
    int index;                    /* 1-based slot in the result list; 0 = spread */
} sl_lua_io_item_t;

typedef struct sl_lua_io {
    /* Starts the host call(s). Each result, also a start failure, is reported
     * with sl_lua_io_capture + sl_lua_io_settle. */
    void (*start)(sl_lua_call_t *c);
    void (*release)(sl_lua_call_t *c);   /* frees what start needed */
    void *data;
    int n_items;                  /* results expected */
    int many;                     /* return them as a list, not spread */
    int pending;                  /* results not captured yet */
    int waiting;                  /* the trampoline returned SL_YIELD */
    const char *failed;           /* a result could not be captured */
    sl_lua_io_item_t *items;
} sl_lua_io_t;

struct sl_lua_call {
    sl_lua_req_t *req;
    sl_lua_wdata_t *wd;
    int phase;                    /* SL_LUA_* */
    lua_State *co;                /* NULL when run without a coroutine */
    int embedded;                 /* the request record's own call, not malloc'ed */
    int did_io;                   /* results may have been captured for it */
    sl_lua_io_t io;
};

struct sl_lua_req {
    sl_lua_state_t *st;           /* NULL once the state is closed */
    sl_req_t *r;
    sl_lua_call_t *suspended;     /* the coroutine waiting for I/O, if any */
    sl_lua_req_t *prev, *next;    /* live records; next also links spare ones */
    int ctx_slot;
    int call_busy;
    sl_lua_call_t call;           /* a request runs one coroutine call at a time */
};

/* ---- lua_host.c ---- */
const sl_host_t *sl_lua_host(void);
size_t sl_lua_default_mem_limit(void);
sl_lua_state_t *sl_lua_state_new(int worker_id);      /* NULL when out of memory */
void sl_lua_state_free(sl_lua_state_t *st);
/* The state of a worker, created on first use (NULL on failure). */
sl_lua_state_t *sl_lua_worker_state(int worker_id);
int sl_lua_n_workers(void);
/* Changes at every shutdown: data from an older generation has no state. */
unsigned sl_lua_generation(void);
/* 1 (and logged, with r's id when r is not NULL) when the state stays above
 * its limit after a full GC. */
int sl_lua_over_limit(sl_lua_state_t *st, const char *plugin, sl_req_t *r);
/* Runs fn(L) with ud as its only argument under lua_cpcall; on failure
 * copies the message to err. 0 ok. */
int sl_lua_protect(lua_State *L, lua_CFunction fn, void *ud, char *err, size_t errlen);
/* The value identifying sluice.response.exit() when it unwinds. */
void *sl_lua_exit_marker(void);
/* Pushes registry[ref]. */
void sl_lua_getref(lua_State *L, int ref);
/* Pushes registry[table_ref][lightuserdata(key)]. */
void sl_lua_reg_get(lua_State *L, int table_ref, void *key);
/* Removes that entry if present; never allocates, so safe unprotected. */
void sl_lua_reg_clear(lua_State *L, int table_ref, void *key);
/* Sets fns into the table on the stack top as closures with st as upvalue 1. */
void sl_lua_setfuncs(lua_State *L, sl_lua_state_t *st, const luaL_Reg *fns);
#define SL_LUA_UP_STATE(L) ((sl_lua_state_t *)lua_touserdata((L), lua_upvalueindex(1)))
/* The message of the error value at idx: the string, a number as text, or
 * "(error object is not a string)". Never allocates in Lua, so it is safe
 * outside protected calls; the result is valid until the value is popped
 * (numbers: until the next call on this thread). */
const char *sl_lua_errmsg(lua_State *L, int idx);

/* ---- lua_pdk_sandbox.c ---- */
/* One-time set-up of a fresh state: the libraries, the locked string
 * metatable, the helper functions. Raises on failure (run protected). */
void sl_lua_sandbox_prepare(lua_State *L, sl_lua_state_t *st);
/* Pushes a new sandbox environment; `who` names the plugin in logs. */
void sl_lua_sandbox_push_env(lua_State *L, sl_lua_state_t *st, const char *who);
/* Loads plugin source as text into a function whose environment is the
 * table on the stack top (which it pops). 0 ok (function pushed), or an
 * error message pushed and a nonzero status. */
int sl_lua_sandbox_load(lua_State *L, const char *src, size_t len, const char *chunkname);

/* ---- lua_pdk_runner.c ---- */
/* Part of preparing a state: the runner's helper functions. Raises on
 * failure (run protected), after st->ref_ctxs exists. */
void sl_lua_runner_prepare(lua_State *L, sl_lua_state_t *st);
/* The running call of the request being served; raises "<fname>: no request
 * here" when there is none (module top level). */
sl_lua_call_t *sl_lua_current(lua_State *L, sl_lua_state_t *st, const char *fname);
/* One expected result arrived (or failed to start): resumes the coroutine
 * when it was the last one. */
void sl_lua_io_settle(sl_lua_call_t *c);
/* Pushes the ctx table of the call's request. */
void sl_lua_push_ctx(lua_State *L, sl_lua_call_t *c);

sl_status_t sl_lua_run_rewrite(void *instance, sl_req_t *r);
sl_status_t sl_lua_run_access(void *instance, sl_req_t *r);
sl_status_t sl_lua_run_header_filter(void *instance, sl_req_t *r);
sl_status_t sl_lua_run_body_filter(void *instance, sl_req_t *r, sl_body_chunk_t *chunk);
void sl_lua_run_log(void *instance, sl_req_t *r);
/* Detaches every live request record of st (at shutdown). */
void sl_lua_detach_requests(sl_lua_state_t *st);

/* ---- lua_pdk_io.c ---- */
/* For I/O PDK functions: the running call if it may yield (raises
 * "<fname>: cannot yield in body_filter" otherwise). */
sl_lua_call_t *sl_lua_io_begin(lua_State *L, sl_lua_state_t *st, const char *fname);
/* Ends the PDK function after sl_lua_io_begin and filling c->io. */
int sl_lua_io_yield(lua_State *L, sl_lua_call_t *c);
/* Stores the values push(L, ud) pushes as result `index` (0: the only
 * result, spread on return). Runs protected; never raises. */
void sl_lua_io_capture(sl_lua_call_t *c, int index, int (*push)(lua_State *L, void *ud), void *ud);
/* Wraps the C start function on the stack top so it returns the results. */
void sl_lua_io_wrap(lua_State *L, sl_lua_state_t *st);

/* ---- lua_pdk_plugin.c and lua_pdk_slots.c ---- */
void *sl_lua_configure(sl_lua_plugin_t *p, const json_t *conf, char *err, size_t errlen);
/* Binds p to a free configure trampoline: its slot, or -1 when all are
 * taken. */
int sl_lua_slot_take(sl_lua_plugin_t *p);
void sl_lua_slot_release(int slot);
/* The configure function of a slot, which calls sl_lua_configure for the
 * plugin bound to it. */
void *(*sl_lua_slot_configure(int slot))(const sl_json_t *conf, char *err, size_t errlen);

/* ---- lua_pdk_<module>.c: each pushes a new module table ---- */
void sl_lua_open_request(lua_State *L, sl_lua_state_t *st);
void sl_lua_open_response(lua_State *L, sl_lua_state_t *st);
void sl_lua_open_upstream(lua_State *L, sl_lua_state_t *st);
void sl_lua_open_ctx(lua_State *L, sl_lua_state_t *st);
void sl_lua_open_log(lua_State *L, sl_lua_state_t *st, const char *who);
void sl_lua_open_shared(lua_State *L, sl_lua_state_t *st);
void sl_lua_open_redis(lua_State *L, sl_lua_state_t *st);
void sl_lua_open_http(lua_State *L, sl_lua_state_t *st);
void sl_lua_open_geoip(lua_State *L, sl_lua_state_t *st);
/* Pushes sluice.sleep (a function). */
void sl_lua_push_sleep(lua_State *L, sl_lua_state_t *st);
/* print(...) for the sandbox: logs at info with `who`. */
void sl_lua_push_print(lua_State *L, sl_lua_state_t *st, const char *who);

/* ---- lua_pdk_check.c: argument checks shared by the modules ---- */
/* RFC 9110 token (header names, methods). */
int sl_lua_is_token(const char *s, size_t len);
/* Whether the value at idx is a number holding an integer in [lo, hi]
 * (checked before any conversion to C integers, which would be undefined
 * out of range). */
int sl_lua_is_integer_in(lua_State *L, int idx, double lo, double hi);
/* A header value: no CR, LF or NUL. */
int sl_lua_is_field_value(const char *s, size_t len);
/* luaL_checklstring that also refuses embedded NULs (C strings downstream). */
const char *sl_lua_check_cstring(lua_State *L, int idx, const char *fname, const char *what);
const char *sl_lua_check_header_name(lua_State *L, int idx, const char *fname);
const char *sl_lua_check_header_value(lua_State *L, int idx, const char *fname, size_t *len);
/* Raises "<where>: <fname>: <msg>", where = the calling Lua line. */
int sl_lua_fail(lua_State *L, const char *fname, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The same, naming the line `level` frames up (2 for I/O functions, which
 * are called through a small Lua wrapper). */
int sl_lua_fail_at(lua_State *L, int level, const char *fname, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Raises "<fname>: refused by the gateway in <phase>" after a host call
 * returned an error. */
int sl_lua_refused(lua_State *L, const sl_lua_call_t *c, const char *fname);

#endif
