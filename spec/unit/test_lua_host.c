/* Unit tests for the Lua plugin host (core/lua_host.c, core/lua_pdk_*.c),
 * against a fake host table that records what plugins ask for and lets a
 * test complete asynchronous calls when it chooses. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <jansson.h>

#include "check.h"
#include "lua_host.h"

/* ================================================================ fake host */

#define MAX_OPS 8192

struct sl_req {
    const char *method, *path, *query, *body, *ip, *id, *route, *upstream;
    int tls;
    const char *hdrs[16];   /* name, value, ... */
    int n_hdrs;
    int refuse_writes;      /* upstream and response changes fail (a late phase) */
    char ops[MAX_OPS];      /* every change a plugin made, one per line */
    int status;
    char rh_name[16][64];
    char rh_value[16][256];
    int n_rh;
    struct {
        void (*fn)(void *);
        void *arg;
    } cleanups[8];
    int n_cleanups;
    struct {
        void *instance, *value;
    } slots[4];
    int n_slots;
    int resumed;
    sl_status_t resume_status;
};

static void op(sl_req_t *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void op(sl_req_t *r, const char *fmt, ...)
{
    size_t n = strlen(r->ops);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->ops + n, sizeof r->ops - n, fmt, ap);
    va_end(ap);
    n = strlen(r->ops);
    if (n + 1 < sizeof r->ops) {
        r->ops[n] = '\n';
        r->ops[n + 1] = '\0';
    }
}

static const char *f_req_method(sl_req_t *r, size_t *len)
{
    *len = strlen(r->method);
    return r->method;
}
static const char *f_req_path(sl_req_t *r, size_t *len)
{
    *len = strlen(r->path);
    return r->path;
}
static const char *f_req_query(sl_req_t *r, size_t *len)
{
    if (!r->query)
        return NULL;
    *len = strlen(r->query);
    return r->query;
}
static const char *f_req_header(sl_req_t *r, const char *name, size_t *len)
{
    for (int i = 0; i < r->n_hdrs; i++) {
        if (strcasecmp(r->hdrs[2 * i], name) == 0) {
            *len = strlen(r->hdrs[2 * i + 1]);
            return r->hdrs[2 * i + 1];
        }
    }
    return NULL;
}
static int f_req_header_at(sl_req_t *r, int i, const char **name, size_t *nlen, const char **value,
                           size_t *vlen)
{
    if (i < 0 || i >= r->n_hdrs)
        return 0;
    *name = r->hdrs[2 * i];
    *nlen = strlen(*name);
    *value = r->hdrs[2 * i + 1];
    *vlen = strlen(*value);
    return 1;
}
static const char *f_req_body(sl_req_t *r, size_t *len)
{
    *len = strlen(r->body);
    return r->body;
}
static const char *f_req_client_ip(sl_req_t *r) { return r->ip; }
static const char *f_req_id(sl_req_t *r) { return r->id; }
static const char *f_req_route(sl_req_t *r) { return r->route; }
static const char *f_req_upstream(sl_req_t *r) { return r->upstream; }
static int f_req_is_tls(sl_req_t *r) { return r->tls; }

static int f_up_set_header(sl_req_t *r, const char *n, const char *v, size_t vlen)
{
    if (r->refuse_writes)
        return -1;
    op(r, "up.set %s=%.*s", n, (int)vlen, v);
    return 0;
}
static int f_up_remove_header(sl_req_t *r, const char *n)
{
    if (r->refuse_writes)
        return -1;
    op(r, "up.remove %s", n);
    return 0;
}
static int f_up_set_target(sl_req_t *r, const char *t, size_t len)
{
    if (r->refuse_writes)
        return -1;
    op(r, "up.target %.*s", (int)len, t);
    return 0;
}
static int f_up_set_body(sl_req_t *r, const char *b, size_t len)
{
    if (r->refuse_writes)
        return -1;
    op(r, "up.body %.*s", (int)len, b);
    return 0;
}
static int f_up_set_method(sl_req_t *r, const char *m)
{
    if (r->refuse_writes)
        return -1;
    op(r, "up.method %s", m);
    return 0;
}
static int f_respond(sl_req_t *r, int status, const char *ct, const char *body, size_t len)
{
    if (r->refuse_writes)
        return -1;
    r->status = status;
    op(r, "respond %d %s %.*s", status, ct ? ct : "-", (int)len, body);
    return 0;
}
static int f_respond_error(sl_req_t *r, int status, const char *code, const char *message)
{
    if (r->refuse_writes)
        return -1;
    r->status = status;
    op(r, "respond_error %d %s %s", status, code, message);
    return 0;
}
static int f_resp_status(sl_req_t *r) { return r->status; }
static int f_resp_set_status(sl_req_t *r, int status)
{
    if (r->refuse_writes)
        return -1;
    r->status = status;
    op(r, "resp.status %d", status);
    return 0;
}
static const char *f_resp_header(sl_req_t *r, const char *name, size_t *len)
{
    for (int i = 0; i < r->n_rh; i++) {
        if (strcasecmp(r->rh_name[i], name) == 0) {
            *len = strlen(r->rh_value[i]);
            return r->rh_value[i];
        }
    }
    return NULL;
}
static void rh_remove(sl_req_t *r, const char *name)
{
    int o = 0;
    for (int i = 0; i < r->n_rh; i++) {
        if (strcasecmp(r->rh_name[i], name) == 0)
            continue;
        memmove(r->rh_name[o], r->rh_name[i], sizeof r->rh_name[0]);
        memmove(r->rh_value[o], r->rh_value[i], sizeof r->rh_value[0]);
        o++;
    }
    r->n_rh = o;
}
static int f_resp_add_header(sl_req_t *r, const char *name, const char *v, size_t vlen)
{
    if (r->refuse_writes || r->n_rh == 16)
        return -1;
    snprintf(r->rh_name[r->n_rh], sizeof r->rh_name[0], "%s", name);
    snprintf(r->rh_value[r->n_rh], sizeof r->rh_value[0], "%.*s", (int)vlen, v);
    r->n_rh++;
    op(r, "resp.add %s=%.*s", name, (int)vlen, v);
    return 0;
}
static int f_resp_set_header(sl_req_t *r, const char *name, const char *v, size_t vlen)
{
    if (r->refuse_writes)
        return -1;
    rh_remove(r, name);
    op(r, "resp.set %s=%.*s", name, (int)vlen, v);
    snprintf(r->rh_name[r->n_rh], sizeof r->rh_name[0], "%s", name);
    snprintf(r->rh_value[r->n_rh], sizeof r->rh_value[0], "%.*s", (int)vlen, v);
    r->n_rh++;
    return 0;
}
static int f_resp_remove_header(sl_req_t *r, const char *name)
{
    if (r->refuse_writes)
        return -1;
    rh_remove(r, name);
    op(r, "resp.remove %s", name);
    return 0;
}

static char replaced[256];
static int f_body_replace(sl_req_t *r, sl_body_chunk_t *chunk, const char *data, size_t len)
{
    snprintf(replaced, sizeof replaced, "%.*s", (int)len, data);
    chunk->data = replaced;
    chunk->len = strlen(replaced);
    op(r, "body.replace %s", replaced);
    return 0;
}

/* worker_data: what the test's worker_init calls returned */
static struct {
    void *inst;
    void *wd;
} wdmap[16];
static int n_wdmap;

static void *f_worker_data(sl_req_t *r, void *instance)
{
    (void)r;
    for (int i = 0; i < n_wdmap; i++)
        if (wdmap[i].inst == instance)
            return wdmap[i].wd;
    return NULL;
}

static int f_req_cleanup(sl_req_t *r, void (*fn)(void *arg), void *arg)
{
    if (r->n_cleanups == 8)
        return -1;
    r->cleanups[r->n_cleanups].fn = fn;
    r->cleanups[r->n_cleanups].arg = arg;
    r->n_cleanups++;
    return 0;
}

static void **f_req_slot(sl_req_t *r, void *instance)
{
    for (int i = 0; i < r->n_slots; i++)
        if (r->slots[i].instance == instance)
            return &r->slots[i].value;
    if (r->n_slots == 4)
        return NULL;
    r->slots[r->n_slots].instance = instance;
    return &r->slots[r->n_slots++].value;
}

static void f_resume(sl_req_t *r, sl_status_t status)
{
    r->resumed++;
    r->resume_status = status;
}

/* ---- asynchronous calls wait here until a test completes them ---- */
enum { P_SLEEP = 1, P_HTTP, P_REDIS };
typedef struct {
    int kind;
    sl_req_t *r;
    void *cb;
    void *arg;
    char desc[512];
} pending_t;
static pending_t pending[16];
static int n_pending;
static int refuse_async;

static int add_pending(int kind, sl_req_t *r, void *cb, void *arg, const char *desc)
{
    if (refuse_async || n_pending == 16)
        return -1;
    pending_t *p = &pending[n_pending++];
    p->kind = kind;
    p->r = r;
    p->cb = cb;
    p->arg = arg;
    snprintf(p->desc, sizeof p->desc, "%s", desc);
    return 0;
}

static pending_t take_pending(int i)
{
    pending_t p = pending[i];
    memmove(&pending[i], &pending[i + 1], sizeof pending[0] * (size_t)(n_pending - i - 1));
    n_pending--;
    return p;
}

static int f_sleep(sl_req_t *r, uint64_t ms, sl_timer_cb cb, void *arg)
{
    char d[64];
    snprintf(d, sizeof d, "sleep %llu", (unsigned long long)ms);
    return add_pending(P_SLEEP, r, (void *)cb, arg, d);
}

static int f_http_call(sl_req_t *r, const sl_http_request_spec_t *spec, sl_http_call_cb cb,
                       void *arg)
{
    char d[512];
    int n = snprintf(d, sizeof d, "%s %s timeout=%lld verify=%d body=%.*s", spec->method, spec->url,
                     (long long)spec->timeout_ms, spec->tls_verify, (int)spec->body_len,
                     spec->body ? spec->body : "");
    for (int i = 0; spec->headers && spec->headers[i]; i += 2)
        n += snprintf(d + n, sizeof d - (size_t)n, " [%s: %s]", spec->headers[i],
                      spec->headers[i + 1]);
    return add_pending(P_HTTP, r, (void *)cb, arg, d);
}

static int f_redis_call(sl_req_t *r, int argc, const char *const *argv, const size_t *lens,
                        sl_redis_reply_cb cb, void *arg)
{
    char d[512] = "";
    size_t n = 0;
    for (int i = 0; i < argc; i++)
        n += (size_t)snprintf(d + n, sizeof d - n, "%s%.*s", i ? " " : "", (int)lens[i], argv[i]);
    return add_pending(P_REDIS, r, (void *)cb, arg, d);
}

/* ---- shared dict: a few entries, no TTLs ---- */
static struct {
    char key[128];
    char val[64];
    size_t len;
} shd[8];
static int n_shd;

static int shd_find(const char *dict, const char *key)
{
    char k[128];
    snprintf(k, sizeof k, "%s/%s", dict, key);
    for (int i = 0; i < n_shd; i++)
        if (strcmp(shd[i].key, k) == 0)
            return i;
    return -1;
}

static int f_shared_get(const char *dict, const char *key, char *buf, size_t cap, size_t *len)
{
    int i = shd_find(dict, key);
    if (i < 0)
        return 0;
    *len = shd[i].len;
    if (cap < shd[i].len)
        return -1;
    memcpy(buf, shd[i].val, shd[i].len);
    return 1;
}

static int f_shared_set(const char *dict, const char *key, const char *val, size_t len,
                        int64_t ttl_ms)
{
    (void)ttl_ms;
    if (len >= sizeof shd[0].val)
        return -1;
    int i = shd_find(dict, key);
    if (i < 0) {
        if (n_shd == 8)
            return -1;
        i = n_shd++;
        snprintf(shd[i].key, sizeof shd[i].key, "%s/%s", dict, key);
    }
    memcpy(shd[i].val, val, len);
    shd[i].len = len;
    return 0;
}

static int f_shared_incr(const char *dict, const char *key, int64_t delta, int64_t init,
                         int64_t ttl_ms, int64_t *out)
{
    int i = shd_find(dict, key);
    long long v = init;
    if (i >= 0) {
        char tmp[64];
        snprintf(tmp, sizeof tmp, "%.*s", (int)shd[i].len, shd[i].val);
        char *end;
        v = strtoll(tmp, &end, 10);
        if (*end || end == tmp)
            return -1;
    }
    v += delta;
    char num[32];
    int n = snprintf(num, sizeof num, "%lld", v);
    *out = v;
    return f_shared_set(dict, key, num, (size_t)n, ttl_ms);
}

static int f_shared_delete(const char *dict, const char *key)
{
    int i = shd_find(dict, key);
    if (i < 0)
        return 0;
    shd[i] = shd[--n_shd];
    return 1;
}

/* ---- log lines, kept for the tests to read ---- */
static char logs[64][2048];
static int log_levels[64];
static int n_logs;

static void f_log(sl_log_level_sdk_t level, const char *fmt, ...)
{
    if (n_logs == 64)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(logs[n_logs], sizeof logs[0], fmt, ap);
    va_end(ap);
    log_levels[n_logs++] = (int)level;
}

/* The log line without its traceback (which follows " | "). */
static const char *log_head(int i)
{
    static char head[2048];
    if (i < 0 || i >= n_logs)
        return "(no such log line)";
    snprintf(head, sizeof head, "%s", logs[i]);
    char *bar = strstr(head, " | ");
    if (bar)
        *bar = '\0';
    return head;
}

static int f_geoip_lookup(const char *ip, sl_geo_t *out)
{
    memset(out, 0, sizeof *out);
    if (strcmp(ip, "81.2.69.160") != 0)
        return -1;
    snprintf(out->country, sizeof out->country, "GB");
    snprintf(out->continent, sizeof out->continent, "EU");
    out->asn = 20712;
    snprintf(out->asn_org, sizeof out->asn_org, "Andrews & Arnold Ltd");
    return 0;
}

static const sl_host_t fake_host = {
    .abi_major = SLUICE_ABI_MAJOR,
    .abi_minor = SLUICE_ABI_MINOR,
    .size = sizeof(sl_host_t),
    .req_method = f_req_method,
    .req_path = f_req_path,
    .req_query = f_req_query,
    .req_header = f_req_header,
    .req_header_at = f_req_header_at,
    .req_body = f_req_body,
    .req_client_ip = f_req_client_ip,
    .req_id = f_req_id,
    .req_route = f_req_route,
    .req_is_tls = f_req_is_tls,
    .upstream_set_header = f_up_set_header,
    .upstream_remove_header = f_up_remove_header,
    .upstream_set_target = f_up_set_target,
    .upstream_set_body = f_up_set_body,
    .upstream_set_method = f_up_set_method,
    .respond = f_respond,
    .respond_error = f_respond_error,
    .resp_status = f_resp_status,
    .resp_set_status = f_resp_set_status,
    .resp_header = f_resp_header,
    .resp_set_header = f_resp_set_header,
    .resp_add_header = f_resp_add_header,
    .resp_remove_header = f_resp_remove_header,
    .body_replace = f_body_replace,
    .worker_data = f_worker_data,
    .req_cleanup = f_req_cleanup,
    .req_slot = f_req_slot,
    .req_upstream = f_req_upstream,
    .resume = f_resume,
    .sleep = f_sleep,
    .http_call = f_http_call,
    .redis_call = f_redis_call,
    .shared_get = f_shared_get,
    .shared_set = f_shared_set,
    .shared_incr = f_shared_incr,
    .shared_delete = f_shared_delete,
    .log = f_log,
    .geoip_lookup = f_geoip_lookup,
};

/* ================================================================ fixtures */

static char dir[64];
static char path_buf[256];

static const char *write_plugin(const char *file, const char *src, size_t len)
{
    snprintf(path_buf, sizeof path_buf, "%s/%s", dir, file);
    FILE *f = fopen(path_buf, "wb");
    if (!f || fwrite(src, 1, len, f) != len) {
        perror(path_buf);
        exit(2);
    }
    fclose(f);
    return path_buf;
}

static sl_req_t *req_new(const char *id)
{
    sl_req_t *r = calloc(1, sizeof *r);
    r->method = "POST";
    r->path = "/v1/chat";
    r->query = "a=1&b=2";
    r->body = "{\"x\":1}";
    r->ip = "10.0.0.7";
    r->id = id;
    r->route = "api";
    r->upstream = "backend";
    r->tls = 1;
    r->status = 200;
    static const char *h[] = { "Host", "api.test", "X-Key", "k1", "x-key", "k2", "Accept", "*/*" };
    memcpy(r->hdrs, h, sizeof h);
    r->n_hdrs = 4;
    return r;
}

/* The request goes away: its cleanup hooks run (last registered first) and
 * calls still pending for it are cancelled, as the gateway does. */
static void req_free(sl_req_t *r)
{
    for (int i = n_pending - 1; i >= 0; i--)
        if (pending[i].r == r)
            take_pending(i);
    while (r->n_cleanups > 0) {
        r->n_cleanups--;
        r->cleanups[r->n_cleanups].fn(r->cleanups[r->n_cleanups].arg);
    }
    free(r);
}

typedef struct {
    sl_plugin_desc_t *d;
    json_t *conf;
    void *inst;
    void *wd;
} plugin_t;

/* Loads src as plugin `file`, configures it with conf_text and starts it
 * on worker 0. Exits the test run if any step fails: later checks would
 * only crash. */
static plugin_t plugin_up(const char *file, const char *src, const char *conf_text)
{
    plugin_t p = { 0 };
    char err[512];
    p.d = sl_lua_plugin_load(write_plugin(file, src, strlen(src)), err, sizeof err);
    if (!p.d) {
        fprintf(stderr, "cannot load %s: %s\n", file, err);
        exit(2);
    }
    p.conf = json_loads(conf_text, 0, NULL);
    p.inst = p.d->configure((const sl_json_t *)p.conf, err, sizeof err);
    if (!p.inst) {
        fprintf(stderr, "cannot configure %s: %s\n", file, err);
        exit(2);
    }
    p.wd = p.d->worker_init(p.inst, 0);
    if (!p.wd) {
        fprintf(stderr, "cannot start %s on worker 0\n", file);
        exit(2);
    }
    wdmap[n_wdmap].inst = p.inst;
    wdmap[n_wdmap].wd = p.wd;
    n_wdmap++;
    return p;
}

static void plugin_down(plugin_t *p)
{
    for (int i = 0; i < n_wdmap; i++) {
        if (wdmap[i].inst == p->inst) {
            wdmap[i] = wdmap[--n_wdmap];
            break;
        }
    }
    p->d->worker_fini(p->inst, p->wd);
    p->d->unconfigure(p->inst);
    sl_lua_plugin_free(p->d);
    json_decref(p->conf);
}

static void reset_logs(void) { n_logs = 0; }

static void host_up(size_t mem_limit)
{
    if (sl_lua_host_init(&fake_host, 2, NULL, mem_limit) != 0) {
        fprintf(stderr, "sl_lua_host_init failed\n");
        exit(2);
    }
}

/* A leak check on the Lua side: nothing per-request may stay behind. */
static void check_no_request_data(int line)
{
    sl_lua_stats_t s = {0};
    int rc = sl_lua_host_stats(0, &s);
    check_report(__FILE__, line, rc == 0 && s.requests == 0 && s.suspended == 0 && s.registry_items == 0,
                 "request data left: rc=%d requests=%d suspended=%d registry=%d", rc, s.requests,
                 s.suspended, s.registry_items);
}

/* ================================================================ tests */

static void expect_load_error(const char *file, const char *src, size_t len, const char *expected)
{
    char err[512] = "";
    const char *path = write_plugin(file, src, len);
    char want[512];
    snprintf(want, sizeof want, expected, path);
    sl_plugin_desc_t *d = sl_lua_plugin_load(path, err, sizeof err);
    CHECK_INT(1, d == NULL);
    CHECK_STR(want, err);
    sl_lua_plugin_free(d);
}

#define LOAD_ERROR(file, src, expected) expect_load_error(file, src, sizeof src - 1, expected)

static void test_load_errors(void)
{
    LOAD_ERROR("syntax.lua", "return {\n  name = 'x',\n  version = = 1,\n}\n",
               "%s:3: unexpected symbol near '='");
    LOAD_ERROR("noname.lua", "return { version = '1.0' }", "%s: missing name");
    LOAD_ERROR("badname.lua", "return { name = 'Add Header' }",
               "%s: name must be a string of a-z, 0-9 and '-' (at most 64)");
    LOAD_ERROR("bytecode.lua", "\033LJ\002\000garbage", "%s: precompiled bytecode is not accepted; give the source");
    LOAD_ERROR("schema_type.lua", "return { name = 'x', schema = 'fields' }",
               "%s: schema must be a table, not a string");
    LOAD_ERROR("schema_field.lua",
               "return { name = 'x', schema = { fields = { limit = { type = 'int' } } } }",
               "%s: schema: fields.limit.type: unknown type \"int\"");
    LOAD_ERROR("noreturn.lua", "local x = 1", "%s: must return a table (returned nil)");
    LOAD_ERROR("typo.lua", "return { name = 'x', acess = function() end }",
               "%s: unknown field \"acess\" (known: name, version, priority, schema, requires, "
               "provides, rewrite, access, header_filter, body_filter, log)");
    LOAD_ERROR("phase.lua", "return { name = 'x', access = 5 }",
               "%s: access must be a function, not a number");
    LOAD_ERROR("toplevel.lua", "local t = nil\nreturn t.x", "%s:2: attempt to index local 't' (a nil value)");
    LOAD_ERROR("provides.lua", "return { name = 'x', provides = { 'a b' } }",
               "%s: provides[1] must be a name of a-z, 0-9, '-' and '_'");
    LOAD_ERROR("version.lua", "return { name = 'x', version = 2 }", "%s: version must be a string");
    LOAD_ERROR("priority.lua", "return { name = 'x', priority = 1e20 }", "%s: priority must be an integer");
    LOAD_ERROR("spin.lua", "while true do end",
               "%s:1: ran for too long while loading (over 50 million instructions)");
    LOAD_ERROR("escape.lua", "return { name = io.open('/etc/passwd') }",
               "%s:1: attempt to index global 'io' (a nil value)");

    char err[512];
    sl_plugin_desc_t *d = sl_lua_plugin_load("/nonexistent/x.lua", err, sizeof err);
    CHECK_INT(1, d == NULL);
    CHECK_STR("/nonexistent/x.lua: cannot open: No such file or directory", err);
}

static void test_load_ok(void)
{
    const char *src =
        "local json = require('sluice.json')\n"
        "return {\n"
        "  name = 'add-header', version = '1.2.0', priority = 7,\n"
        "  schema = { fields = { header = { type = 'string', required = true },\n"
        "                        value = { type = 'string', default = 'x' },\n"
        "                        tags = { type = 'array', items = { type = 'string' }, default = json.empty_array } } },\n"
        "  requires = { 'consumer' }, provides = { 'tagged', 'x_y' },\n"
        "  rewrite = function(conf, ctx) end,\n"
        "  body_filter = function(conf, ctx, chunk, last) return chunk end,\n"
        "}\n";
    char err[512];
    sl_plugin_desc_t *d = sl_lua_plugin_load(write_plugin("ok.lua", src, strlen(src)), err, sizeof err);
    CHECK_INT(1, d != NULL);
    if (!d) {
        fprintf(stderr, "load: %s\n", err);
        return;
    }
    CHECK_INT(SLUICE_ABI_MAJOR, d->abi_major);
    CHECK_STR("add-header", d->name);
    CHECK_STR("1.2.0", d->version);
    CHECK_INT(7, d->priority);
    CHECK_INT(SL_PHASE_REWRITE | SL_PHASE_BODY_FILTER, d->phases);
    CHECK_STR("{\"fields\":{\"header\":{\"required\":true,\"type\":\"string\"},\"tags\":{\"default\":[],"
              "\"items\":{\"type\":\"string\"},\"type\":\"array\"},\"value\":{\"default\":\"x\","
              "\"type\":\"string\"}}}",
              d->schema);
    CHECK_STR("tagged,x_y", d->provides);
    CHECK_INT(1, d->rewrite != NULL);
    CHECK_INT(1, d->access == NULL);
    CHECK_INT(1, d->header_filter == NULL);
    CHECK_INT(1, d->body_filter != NULL);
    CHECK_INT(1, d->log == NULL);
    CHECK_INT(0, d->init(&fake_host));
    void *inst = d->configure(NULL, err, sizeof err);
    CHECK_STR("consumer", d->requires(inst));
    d->unconfigure(inst);
    sl_lua_plugin_free(d);

    /* no schema: an empty one, so any setting is reported as unknown */
    const char *bare = "return { name = 'bare', log = function() end }";
    d = sl_lua_plugin_load(write_plugin("bare.lua", bare, strlen(bare)), err, sizeof err);
    CHECK_STR("{\"fields\":{}}", d ? d->schema : NULL);
    CHECK_STR("0.0.0", d ? d->version : NULL);
    CHECK_INT(1, d && d->provides == NULL);
    sl_lua_plugin_free(d);
}

static void test_requires_function(void)
{
    const char *src =
        "return { name = 'needs', access = function() end,\n"
        "  requires = function(conf) if conf.anonymous then return {} end\n"
        "    return { 'consumer', conf.extra } end }\n";
    char err[512];
    sl_plugin_desc_t *d = sl_lua_plugin_load(write_plugin("needs.lua", src, strlen(src)), err, sizeof err);
    CHECK_INT(1, d != NULL);
    if (!d)
        return;
    json_t *c1 = json_loads("{\"extra\":\"quota\"}", 0, NULL);
    json_t *c2 = json_loads("{\"anonymous\":true}", 0, NULL);
    json_t *c3 = json_loads("{\"extra\":5}", 0, NULL);
    void *i1 = d->configure((sl_json_t *)c1, err, sizeof err);
    void *i2 = d->configure((sl_json_t *)c2, err, sizeof err);
    CHECK_STR("consumer,quota", i1 ? d->requires(i1) : NULL);
    CHECK_INT(1, i2 && d->requires(i2) == NULL);
    void *i3 = d->configure((sl_json_t *)c3, err, sizeof err);
    CHECK_INT(1, i3 == NULL);
    char want[512];
    snprintf(want, sizeof want,
             "%s/needs.lua: requires(conf) failed: requires(conf): the result[2] must be a name of "
             "a-z, 0-9, '-' and '_'",
             dir);
    CHECK_STR(want, err);
    d->unconfigure(i1);
    d->unconfigure(i2);
    sl_lua_plugin_free(d);
    json_decref(c1);
    json_decref(c2);
    json_decref(c3);
}

static const char probe_src[] =
    "local response = require('sluice.response')\n"
    "return { name = 'probe', access = function(conf, ctx)\n"
    "  local r = {}\n"
    "  local names = { 'io', 'ffi', 'debug', 'jit', 'package', 'load', 'loadstring', 'loadfile',\n"
    "    'dofile', 'collectgarbage', 'getfenv', 'setfenv', 'newproxy', 'module', 'coroutine',\n"
    "    'gcinfo', 'bit' }\n"
    "  for _, n in ipairs(names) do r[n] = type(_G[n]) end\n"
    "  r.os_execute = type(os.execute); r.os_getenv = type(os.getenv); r.os_exit = type(os.exit)\n"
    "  r.os_time = type(os.time)\n"
    "  r.string_dump = type(string.dump); r.method_dump = type(('').dump)\n"
    "  r.string_mt = tostring(getmetatable(''))\n"
    "  r.require_os = select(2, pcall(require, 'os'))\n"
    "  r.require_ffi = select(2, pcall(require, 'ffi'))\n"
    "  r.rep = select(2, pcall(string.rep, 'x', 1e10))\n"
    "  r.method_rep = select(2, pcall(function() return ('x'):rep(1e10) end))\n"
    "  string.upper = nil\n"
    "  r.pcall = type(pcall); r.print = type(print); r.json = type(require('sluice.json').encode)\n"
    "  response.exit(200, r)\n"
    "end }\n";

static void test_sandbox(void)
{
    plugin_t p = plugin_up("probe.lua", probe_src, "{}");
    /* a second plugin in the same state must still have string.upper */
    plugin_t q = plugin_up("upper.lua",
                           "return { name = 'upper', access = function()\n"
                           "  require('sluice.response').exit(200, string.upper('ok') .. ('x'):upper())\n"
                           "end }\n",
                           "{}");
    sl_req_t *r = req_new("req-sandbox");
    CHECK_INT(SL_DONE, p.d->access(p.inst, r));
    CHECK_STR("respond 200 application/json {\"bit\":\"nil\",\"collectgarbage\":\"nil\",\"coroutine\":"
              "\"nil\",\"debug\":\"nil\",\"dofile\":\"nil\",\"ffi\":\"nil\",\"gcinfo\":\"nil\","
              "\"getfenv\":\"nil\",\"io\":\"nil\",\"jit\":\"nil\",\"json\":\"function\",\"load\":"
              "\"nil\",\"loadfile\":\"nil\",\"loadstring\":\"nil\",\"method_dump\":\"nil\","
              "\"method_rep\":\"string.rep: the result would exceed the Lua memory limit\","
              "\"module\":\"nil\",\"newproxy\":\"nil\",\"os_execute\":\"nil\",\"os_exit\":\"nil\","
              "\"os_getenv\":\"nil\",\"os_time\":\"function\",\"package\":\"nil\",\"pcall\":"
              "\"function\",\"print\":\"function\",\"rep\":\"string.rep: the result would exceed "
              "the Lua memory limit\",\"require_ffi\":\"module 'ffi' not found: plugins may "
              "require only the sluice.* modules\",\"require_os\":\"module 'os' not found: "
              "plugins may require only the sluice.* modules\",\"setfenv\":\"nil\","
              "\"string_dump\":\"nil\",\"string_mt\":\"false\"}\n",
              r->ops);
    r->ops[0] = '\0';
    CHECK_INT(SL_DONE, q.d->access(q.inst, r));
    CHECK_STR("respond 200 - OKX\n", r->ops);
    req_free(r);
    plugin_down(&p);
    plugin_down(&q);
    check_no_request_data(__LINE__);
}

static void test_phase_results(void)
{
    plugin_t p = plugin_up(
        "phases.lua",
        "local response = require('sluice.response')\n"
        "local upstream = require('sluice.upstream')\n"
        "local request = require('sluice.request')\n"
        "local function deep(n) if n == 0 then response.exit(403, 'nope', { ['X-B'] = { 'p', 'q' } }) end deep(n - 1) end\n"
        "return { name = 'phases', schema = { fields = { mode = { type = 'string' } } },\n"
        "access = function(conf, ctx)\n"
        "  local m = conf.mode\n"
        "  if m == 'ok' then upstream.set_header('X-Mode', m); upstream.remove_header('Cookie');\n"
        "    upstream.set_target('/v2/chat?x=1'); upstream.set_method('PUT'); upstream.set_body('{}'); return end\n"
        "  if m == 'exit' then deep(3) end\n"
        "  if m == 'pcall_exit' then local ok, e = pcall(deep, 2); error('not reached') end\n"
        "  if m == 'xpcall_exit' then xpcall(function() response.exit(204) end, function(e) return 'caught' end); error('not reached') end\n"
        "  if m == 'json' then response.exit(429, { error = { code = 'slow', n = 1 } }, { ['Retry-After'] = 3 }) end\n"
        "  if m == 'ctype' then response.exit(200, { a = 1 }, { ['content-type'] = 'application/vnd+json' }) end\n"
        "  if m == 'error_shape' then response.error(429, 'rate_limited', 'slow down') end\n"
        "  if m == 'fail' then local t = nil; return t.x end\n"
        "  if m == 'bad_status' then response.exit(99) end\n"
        "  if m == 'bad_header' then upstream.set_header('X-A', 'a\\r\\nB: c') end\n"
        "  if m == 'bad_name' then response.set_header('X A', 'v') end\n"
        "  if m == 'bad_target' then upstream.set_target('no-slash') end\n"
        "  if m == 'bad_body' then response.exit(200, function() end) end\n"
        "  if m == 'error_object' then error({ code = 1 }) end\n"
        "  if m == 'caught_error' then local ok, e = pcall(error, 'inner'); upstream.set_header('X-E', e) end\n"
        "end }\n",
        "{}");
    struct {
        const char *mode;
        sl_status_t status;
        const char *ops;
        const char *log;   /* the first log line without its traceback, or NULL */
    } cases[] = {
        { "ok", SL_OK, "up.set X-Mode=ok\nup.remove Cookie\nup.target /v2/chat?x=1\nup.method PUT\nup.body {}\n", NULL },
        { "exit", SL_DONE, "respond 403 - nope\nresp.remove X-B\nresp.add X-B=p\nresp.add X-B=q\n", NULL },
        { "pcall_exit", SL_DONE, "respond 403 - nope\nresp.remove X-B\nresp.add X-B=p\nresp.add X-B=q\n", NULL },
        { "xpcall_exit", SL_DONE, "respond 204 - \n", NULL },
        { "json", SL_DONE, "respond 429 application/json {\"error\":{\"code\":\"slow\",\"n\":1}}\nresp.set Retry-After=3\n", NULL },
        { "ctype", SL_DONE, "respond 200 application/vnd+json {\"a\":1}\n", NULL },
        { "error_shape", SL_DONE, "respond_error 429 rate_limited slow down\n", NULL },
        { "fail", SL_ERROR, "", "lua plugin phases: access failed (request req-phase): %s/phases.lua:16: attempt to index local 't' (a nil value)" },
        { "bad_status", SL_ERROR, "", "lua plugin phases: access failed (request req-phase): %s/phases.lua:17: sluice.response.exit: the status must be an integer from 200 to 599" },
        { "bad_header", SL_ERROR, "", "lua plugin phases: access failed (request req-phase): %s/phases.lua:18: sluice.upstream.set_header: the header value must not contain CR, LF or NUL" },
        { "bad_name", SL_ERROR, "", "lua plugin phases: access failed (request req-phase): %s/phases.lua:19: sluice.response.set_header: invalid header name \"X A\"" },
        { "bad_target", SL_ERROR, "", "lua plugin phases: access failed (request req-phase): %s/phases.lua:20: sluice.upstream.set_target: the target must start with / and hold only visible ASCII (percent-encode the rest)" },
        { "bad_body", SL_ERROR, "", "lua plugin phases: access failed (request req-phase): %s/phases.lua:21: sluice.response.exit: the body must be a string or a table, not function" },
        { "error_object", SL_ERROR, "", "lua plugin phases: access failed (request req-phase): (error object is a table value)" },
        { "caught_error", SL_OK, "up.set X-E=inner\n", NULL },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *conf = json_pack("{s:s}", "mode", cases[i].mode);
        void *inst = p.d->configure((sl_json_t *)conf, NULL, 0);
        void *wd = p.d->worker_init(inst, 0);
        wdmap[n_wdmap].inst = inst;
        wdmap[n_wdmap].wd = wd;
        n_wdmap++;
        reset_logs();
        sl_req_t *r = req_new("req-phase");
        CHECK_INT(cases[i].status, p.d->access(inst, r));
        CHECK_STR(cases[i].ops, r->ops);
        if (cases[i].log) {
            char want[1024];
            snprintf(want, sizeof want, cases[i].log, dir);
            CHECK_STR(want, log_head(0));
            CHECK_INT(SL_LOG_LEVEL_ERROR, log_levels[0]);
            CHECK_INT(1, n_logs);
        } else {
            CHECK_INT(0, n_logs);
        }
        req_free(r);
        n_wdmap--;
        p.d->worker_fini(inst, wd);
        p.d->unconfigure(inst);
        json_decref(conf);
    }
    plugin_down(&p);
    check_no_request_data(__LINE__);
}

static void test_traceback_logged(void)
{
    plugin_t p = plugin_up("tb.lua",
                           "local function inner() error('boom') end\n"
                           "return { name = 'tb', rewrite = function() inner() end }\n",
                           "{}");
    reset_logs();
    sl_req_t *r = req_new("req-tb");
    CHECK_INT(SL_ERROR, p.d->rewrite(p.inst, r));
    char want[1024];
    snprintf(want, sizeof want,
             "lua plugin tb: rewrite failed (request req-tb): %s/tb.lua:1: boom | stack traceback: | "
             "[C]: in function 'error' | %s/tb.lua:1: in function 'inner' | %s/tb.lua:2: in "
             "function <%s/tb.lua:2>",
             dir, dir, dir, dir);
    CHECK_STR(want, logs[0]);
    req_free(r);
    plugin_down(&p);
}

static void test_request_getters(void)
{
    plugin_t p = plugin_up(
        "getters.lua",
        "local request = require('sluice.request')\n"
        "local s = require('sluice')\n"
        "return { name = 'getters', rewrite = function(conf, ctx)\n"
        "  local h = request.get_headers()\n"
        "  local list = {}\n"
        "  for i, kv in ipairs(request.get_headers_list()) do list[i] = kv[1] .. '=' .. kv[2] end\n"
        "  s.response.exit(200, { method = request.get_method(), path = request.get_path(),\n"
        "    query = request.get_query(), key = request.get_header('X-KEY'), missing = request.get_header('Nope') == nil,\n"
        "    headers = h, list = table.concat(list, ','), body = request.get_body(), ip = request.get_client_ip(),\n"
        "    id = request.get_id(), route = request.get_route(), upstream = request.get_upstream(),\n"
        "    tls = request.is_tls(), same = s.request == request, conf = conf })\n"
        "end }\n",
        "{\"n\":[1,2],\"s\":\"v\"}");
    sl_req_t *r = req_new("req-get");
    CHECK_INT(SL_DONE, p.d->rewrite(p.inst, r));
    CHECK_STR("respond 200 application/json {\"body\":\"{\\\"x\\\":1}\",\"conf\":{\"n\":[1,2],\"s\":\"v\"},"
              "\"headers\":{\"accept\":\"*/*\",\"host\":\"api.test\",\"x-key\":\"k1\"},\"id\":\"req-get\","
              "\"ip\":\"10.0.0.7\",\"key\":\"k1\",\"list\":\"Host=api.test,X-Key=k1,x-key=k2,Accept=*/*\","
              "\"method\":\"POST\",\"missing\":true,\"path\":\"/v1/chat\",\"query\":\"a=1&b=2\",\"route\":"
              "\"api\",\"same\":true,\"tls\":true,\"upstream\":\"backend\"}\n",
              r->ops);
    req_free(r);

    /* a route without an upstream (its plugins answer): nil, so the key is left out */
    r = req_new("req-get");
    r->upstream = NULL;
    CHECK_INT(SL_DONE, p.d->rewrite(p.inst, r));
    CHECK_STR("respond 200 application/json {\"body\":\"{\\\"x\\\":1}\",\"conf\":{\"n\":[1,2],\"s\":\"v\"},"
              "\"headers\":{\"accept\":\"*/*\",\"host\":\"api.test\",\"x-key\":\"k1\"},\"id\":\"req-get\","
              "\"ip\":\"10.0.0.7\",\"key\":\"k1\",\"list\":\"Host=api.test,X-Key=k1,x-key=k2,Accept=*/*\","
              "\"method\":\"POST\",\"missing\":true,\"path\":\"/v1/chat\",\"query\":\"a=1&b=2\",\"route\":"
              "\"api\",\"same\":true,\"tls\":true}\n",
              r->ops);
    req_free(r);
    plugin_down(&p);
}

static void test_ctx_shared(void)
{
    plugin_t a = plugin_up("ctx_a.lua",
                           "return { name = 'ctx-a', rewrite = function(conf, ctx)\n"
                           "  ctx.user = (ctx.user or '') .. 'bob'; string.upper = nil end }\n",
                           "{}");
    plugin_t b = plugin_up("ctx_b.lua",
                           "local upstream = require('sluice.upstream')\n"
                           "return { name = 'ctx-b', access = function(conf, ctx)\n"
                           "  upstream.set_header('X-User', ctx.user or 'none')\n"
                           "  upstream.set_header('X-Same', tostring(require('sluice.ctx').get() == ctx))\n"
                           "  upstream.set_header('X-Upper', string.upper('a'))\n"
                           "end,\n"
                           "log = function(conf, ctx) require('sluice.log').info('user %s, n=%d', ctx.user, 5) end }\n",
                           "{}");
    sl_req_t *r1 = req_new("req-1");
    sl_req_t *r2 = req_new("req-2");
    CHECK_INT(SL_OK, a.d->rewrite(a.inst, r1));
    CHECK_INT(SL_OK, b.d->access(b.inst, r1));
    CHECK_INT(SL_OK, b.d->access(b.inst, r2));
    CHECK_STR("up.set X-User=bob\nup.set X-Same=true\nup.set X-Upper=A\n", r1->ops);
    CHECK_STR("up.set X-User=none\nup.set X-Same=true\nup.set X-Upper=A\n", r2->ops);
    sl_lua_stats_t s;
    sl_lua_host_stats(0, &s);
    CHECK_INT(2, s.requests);
    CHECK_INT(2, s.registry_items);   /* two requests: a ctx table each */
    reset_logs();
    b.d->log(b.inst, r1);
    CHECK_STR("lua plugin ctx-b (request req-1): user bob, n=5", logs[0]);
    CHECK_INT(SL_LOG_LEVEL_INFO, log_levels[0]);
    req_free(r1);
    req_free(r2);
    check_no_request_data(__LINE__);
    plugin_down(&a);
    plugin_down(&b);
}

/* Two instances of one plugin share the module (loaded once per state),
 * each with its own conf. */
static void test_module_shared_by_instances(void)
{
    const char *src =
        "local calls = 0\n"
        "return { name = 'count', schema = { fields = { tag = { type = 'string' } } },\n"
        "access = function(conf) calls = calls + 1\n"
        "  require('sluice.upstream').set_header('X-' .. conf.tag, tostring(calls)) end }\n";
    char err[256];
    sl_plugin_desc_t *d = sl_lua_plugin_load(write_plugin("count.lua", src, strlen(src)), err, sizeof err);
    json_t *c1 = json_loads("{\"tag\":\"a\"}", 0, NULL), *c2 = json_loads("{\"tag\":\"b\"}", 0, NULL);
    void *i1 = d->configure((sl_json_t *)c1, err, sizeof err);
    void *i2 = d->configure((sl_json_t *)c2, err, sizeof err);
    void *w1 = d->worker_init(i1, 0), *w2 = d->worker_init(i2, 0);
    wdmap[n_wdmap].inst = i1;
    wdmap[n_wdmap++].wd = w1;
    wdmap[n_wdmap].inst = i2;
    wdmap[n_wdmap++].wd = w2;
    sl_req_t *r = req_new("req-count");
    CHECK_INT(SL_OK, d->access(i1, r));
    CHECK_INT(SL_OK, d->access(i2, r));
    CHECK_INT(SL_OK, d->access(i1, r));
    CHECK_STR("up.set X-a=1\nup.set X-b=2\nup.set X-a=3\n", r->ops);
    req_free(r);
    n_wdmap -= 2;
    d->worker_fini(i1, w1);
    d->worker_fini(i2, w2);
    d->unconfigure(i1);
    d->unconfigure(i2);
    sl_lua_plugin_free(d);
    json_decref(c1);
    json_decref(c2);
}

static const char redis_src[] =
    "local redis = require('sluice.redis')\n"
    "local upstream = require('sluice.upstream')\n"
    "local json = require('sluice.json')\n"
    "local function show(v, err) if v == nil then return 'nil,' .. tostring(err) end\n"
    "  if type(v) == 'table' then return json.encode(v) end return type(v) .. ':' .. tostring(v) end\n"
    "return { name = 'counter', schema = { fields = { mode = { type = 'string' } } },\n"
    "access = function(conf, ctx)\n"
    "  if conf.mode == 'pipeline' then\n"
    "    local res = redis.pipeline({ { 'INCR', 'a' }, { 'EXPIRE', 'a', 10 } })\n"
    "    local parts = {}\n"
    "    for i, item in ipairs(res) do parts[i] = show(item[1], item[2]) end\n"
    "    upstream.set_header('X-P', #res .. ':' .. table.concat(parts, '|')); return end\n"
    "  if conf.mode == 'eval' then\n"
    "    upstream.set_header('X-E', show(redis.eval('return 1', 1, 'k', 2.5))); return end\n"
    "  if conf.mode == 'twice' then\n"
    "    local a = redis.call('GET', 'x'); local b, e = redis.call('GET', 'y')\n"
    "    upstream.set_header('X-T', show(a) .. '|' .. show(b, e)); return end\n"
    "  if conf.mode == 'exit_after' then redis.call('PING'); require('sluice.response').exit(401, 'no') end\n"
    "  if conf.mode == 'fail_after' then redis.call('PING'); error('after the reply') end\n"
    "  if conf.mode == 'in_pcall' then local ok, v = pcall(redis.call, 'GET', 'p')\n"
    "    upstream.set_header('X-C', tostring(ok) .. ',' .. show(v)); return end\n"
    "  if conf.mode == 'gsub' then ('x'):gsub('x', function() redis.call('PING') end) end\n"
    "  if conf.mode == 'bad_arg' then redis.call('SET', 'k', {}) end\n"
    "  local v, err = redis.call('INCR', 'hits:' .. ctx.user_id, 1e15)\n"
    "  upstream.set_header('X-Count', show(v, err))\n"
    "end,\n"
    "body_filter = function() redis.call('PING') end }\n";

static sl_reply_t reply_int(long long v)
{
    sl_reply_t r = { .type = SL_REPLY_INTEGER, .integer = v };
    return r;
}

static sl_reply_t reply_str(sl_reply_type_t t, const char *s)
{
    sl_reply_t r = { .type = t, .str = s, .len = strlen(s) };
    return r;
}

static void complete_redis(int i, const sl_reply_t *reply, const char *err)
{
    pending_t p = take_pending(i);
    ((sl_redis_reply_cb)p.cb)(p.r, p.arg, reply, err);
}

static void test_redis(void)
{
    plugin_t p = plugin_up("counter.lua", redis_src, "{\"mode\":\"incr\"}");
    plugin_t ctxset = plugin_up("uid.lua",
                                "return { name = 'uid', rewrite = function(c, ctx) ctx.user_id = 'u7' end }",
                                "{}");

    /* yield, then the reply resumes the coroutine and the chain */
    sl_req_t *r = req_new("req-redis");
    CHECK_INT(SL_OK, ctxset.d->rewrite(ctxset.inst, r));
    CHECK_INT(SL_YIELD, p.d->access(p.inst, r));
    CHECK_INT(1, n_pending);
    CHECK_STR("INCR hits:u7 1000000000000000", pending[0].desc);
    CHECK_INT(0, r->resumed);
    sl_lua_stats_t s;
    sl_lua_host_stats(0, &s);
    CHECK_INT(1, s.suspended);
    sl_reply_t rep = reply_int(5);
    complete_redis(0, &rep, NULL);
    CHECK_INT(1, r->resumed);
    CHECK_INT(SL_OK, r->resume_status);
    CHECK_STR("up.set X-Count=number:5\n", r->ops);
    req_free(r);
    check_no_request_data(__LINE__);

    /* replies of every kind */
    struct {
        sl_reply_t reply;
        const char *err;
        const char *header;
    } replies[] = {
        { reply_str(SL_REPLY_ERROR, "ERR wrong type"), NULL, "up.set X-Count=nil,ERR wrong type\n" },
        { reply_str(SL_REPLY_STATUS, "OK"), NULL, "up.set X-Count=string:OK\n" },
        { reply_str(SL_REPLY_STRING, "bulk"), NULL, "up.set X-Count=string:bulk\n" },
        { { .type = SL_REPLY_NIL }, NULL, "up.set X-Count=nil,nil\n" },
        { reply_int(9007199254740993LL), NULL, "up.set X-Count=userdata:9007199254740993\n" },
        { { .type = SL_REPLY_INTEGER }, "timeout", "up.set X-Count=nil,timeout\n" },
    };
    for (size_t i = 0; i < sizeof replies / sizeof replies[0]; i++) {
        r = req_new("req-kinds");
        ctxset.d->rewrite(ctxset.inst, r);
        CHECK_INT(SL_YIELD, p.d->access(p.inst, r));
        complete_redis(0, replies[i].err ? NULL : &replies[i].reply, replies[i].err);
        CHECK_STR(replies[i].header, r->ops);
        CHECK_INT(SL_OK, r->resume_status);
        req_free(r);
    }

    /* an array reply with a nil and an error inside */
    sl_reply_t e0 = reply_str(SL_REPLY_STRING, "a"), e1 = { .type = SL_REPLY_NIL },
               e2 = reply_str(SL_REPLY_ERROR, "ERR x"), e3 = reply_int(3);
    sl_reply_t inner_empty = { .type = SL_REPLY_ARRAY, .elements = 0 };
    sl_reply_t *elems[] = { &e0, &e1, &e2, &e3, &inner_empty };
    sl_reply_t arr = { .type = SL_REPLY_ARRAY, .elements = 5, .element = elems };
    r = req_new("req-array");
    ctxset.d->rewrite(ctxset.inst, r);
    CHECK_INT(SL_YIELD, p.d->access(p.inst, r));
    complete_redis(0, &arr, NULL);
    CHECK_STR("up.set X-Count=[\"a\",null,{\"err\":\"ERR x\"},3,[]]\n", r->ops);
    req_free(r);

    /* redis not configured: the call returns nil, err without waiting */
    refuse_async = 1;
    r = req_new("req-refused");
    ctxset.d->rewrite(ctxset.inst, r);
    CHECK_INT(SL_OK, p.d->access(p.inst, r));
    CHECK_STR("up.set X-Count=nil,redis is not available (is there a redis section in the config?)\n",
              r->ops);
    req_free(r);
    refuse_async = 0;

    /* a filter cannot yield */
    reset_logs();
    r = req_new("req-filter");
    sl_body_chunk_t chunk = { "abc", 3, 0 };
    CHECK_INT(SL_ERROR, p.d->body_filter(p.inst, r, &chunk));
    char want[512];
    snprintf(want, sizeof want,
             "lua plugin counter: body_filter failed (request req-filter): %s/counter.lua:27: "
             "sluice.redis.call: cannot yield in body_filter",
             dir);
    CHECK_STR(want, log_head(0));
    CHECK_INT(0, n_pending);
    req_free(r);
    plugin_down(&p);

    /* other modes, each its own instance */
    struct {
        const char *mode;
        int n_replies;
        sl_status_t first, final;
        const char *calls;   /* what reached redis, in order */
        const char *ops;
        const char *log;
    } modes[] = {
        { "eval", 1, SL_YIELD, SL_OK, "EVAL return 1 1 k 2.5", "up.set X-E=number:7\n", NULL },
        { "twice", 2, SL_YIELD, SL_OK, "GET x|GET y", "up.set X-T=number:7|nil,ERR no\n", NULL },
        { "exit_after", 1, SL_YIELD, SL_DONE, "PING", "respond 401 - no\n", NULL },
        { "fail_after", 1, SL_YIELD, SL_ERROR, "PING", "",
          "lua plugin counter: access failed (request req-mode): %s/counter.lua:19: after the reply" },
        { "in_pcall", 1, SL_YIELD, SL_OK, "GET p", "up.set X-C=true,number:7\n", NULL },
        { "gsub", 0, SL_ERROR, SL_ERROR, "", "",
          "lua plugin counter: access failed (request req-mode): %s/counter.lua:22: sluice.redis.call: "
          "cannot yield here (inside a C function such as string.gsub or a table.sort comparator)" },
        { "bad_arg", 0, SL_ERROR, SL_ERROR, "", "",
          "lua plugin counter: access failed (request req-mode): %s/counter.lua:23: sluice.redis.call: "
          "argument #3 must be a string or a finite number" },
    };
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        char conf[64];
        snprintf(conf, sizeof conf, "{\"mode\":\"%s\"}", modes[i].mode);
        p = plugin_up("counter.lua", redis_src, conf);
        reset_logs();
        r = req_new("req-mode");
        CHECK_INT(modes[i].first, p.d->access(p.inst, r));
        char calls[1200] = "";
        sl_reply_t seven = reply_int(7), no = reply_str(SL_REPLY_ERROR, "ERR no");
        for (int k = 0; k < modes[i].n_replies; k++) {
            CHECK_INT(1, n_pending);
            if (n_pending != 1)
                break;
            snprintf(calls + strlen(calls), sizeof calls - strlen(calls), "%s%s", *calls ? "|" : "",
                     pending[0].desc);
            complete_redis(0, k == 0 ? &seven : &no, NULL);
        }
        CHECK_STR(modes[i].calls, calls);
        CHECK_INT(0, n_pending);
        CHECK_STR(modes[i].ops, r->ops);
        if (modes[i].first == SL_YIELD) {
            CHECK_INT(1, r->resumed);
            CHECK_INT(modes[i].final, r->resume_status);
        }
        if (modes[i].log) {
            snprintf(want, sizeof want, modes[i].log, dir);
            CHECK_STR(want, log_head(0));
        } else {
            CHECK_INT(0, n_logs);
        }
        req_free(r);
        plugin_down(&p);
        check_no_request_data(__LINE__);
    }
    plugin_down(&ctxset);
}

/* The pipeline's commands go out together, before any reply. */
static void test_pipeline_order(void)
{
    plugin_t p = plugin_up("counter.lua", redis_src, "{\"mode\":\"pipeline\"}");
    sl_req_t *r = req_new("req-pipe");
    CHECK_INT(SL_YIELD, p.d->access(p.inst, r));
    CHECK_INT(2, n_pending);
    CHECK_STR("INCR a", pending[0].desc);
    CHECK_STR("EXPIRE a 10", pending[1].desc);
    /* replies may arrive in any order; each lands in its command's slot */
    sl_reply_t one = reply_int(1), err = reply_str(SL_REPLY_ERROR, "ERR no such key");
    complete_redis(1, &err, NULL);
    CHECK_INT(0, r->resumed);
    complete_redis(0, &one, NULL);
    CHECK_INT(1, r->resumed);
    CHECK_INT(SL_OK, r->resume_status);
    CHECK_STR("up.set X-P=2:number:1|nil,ERR no such key\n", r->ops);
    req_free(r);
    plugin_down(&p);
}

/* The client leaves while the coroutine waits: the cleanup hook releases
 * the coroutine, its ctx and its pending call's memory. */
static void test_disconnect_cleanup(void)
{
    plugin_t p = plugin_up("counter.lua", redis_src, "{\"mode\":\"pipeline\"}");
    sl_req_t *r = req_new("req-gone");
    CHECK_INT(SL_YIELD, p.d->access(p.inst, r));
    CHECK_INT(2, n_pending);
    sl_lua_stats_t s;
    sl_lua_host_stats(0, &s);
    CHECK_INT(1, s.suspended);
    CHECK_INT(1, s.requests);
    CHECK_INT(2, s.registry_items);   /* ctx, coroutine */
    req_free(r);                      /* cancels both calls, runs the hook */
    CHECK_INT(0, n_pending);
    check_no_request_data(__LINE__);
    plugin_down(&p);

    /* the same after one of two replies was captured */
    p = plugin_up("counter.lua", redis_src, "{\"mode\":\"pipeline\"}");
    r = req_new("req-gone2");
    CHECK_INT(SL_YIELD, p.d->access(p.inst, r));
    sl_reply_t one = reply_int(1);
    complete_redis(0, &one, NULL);
    sl_lua_host_stats(0, &s);
    CHECK_INT(3, s.registry_items);   /* ctx, coroutine, captured results */
    req_free(r);
    check_no_request_data(__LINE__);
    plugin_down(&p);
}

static void test_sleep_and_http(void)
{
    plugin_t p = plugin_up(
        "io.lua",
        "local s = require('sluice')\n"
        "return { name = 'io', access = function(conf, ctx)\n"
        "  local ok = s.sleep(0.0015)\n"
        "  if require('sluice.sleep') ~= s.sleep then error('two sleeps') end\n"
        "  local res, err = s.http.request{ method = 'POST', url = 'https://auth.test/check',\n"
        "    headers = { ['X-Key'] = 'k' }, body = 'q', timeout = 2, ssl_verify = false }\n"
        "  if not res then s.upstream.set_header('X-Err', err); return end\n"
        "  s.upstream.set_header('X-R', tostring(ok) .. ' ' .. res.status .. ' ' .. res.headers['x-a'] .. ' ' .. res.body)\n"
        "end,\n"
        "rewrite = function() local ok, e = pcall(s.http.request, { url = 'ftp://x' }); s.upstream.set_header('X-Bad', e) end }\n",
        "{}");
    sl_req_t *r = req_new("req-io");
    CHECK_INT(SL_YIELD, p.d->access(p.inst, r));
    CHECK_STR("sleep 2", pending[0].desc);
    pending_t t = take_pending(0);
    ((sl_timer_cb)t.cb)(t.r, t.arg);
    CHECK_INT(0, r->resumed);
    CHECK_INT(1, n_pending);
    CHECK_STR("POST https://auth.test/check timeout=2000 verify=-1 body=q [X-Key: k]", pending[0].desc);
    const char *hdrs[] = { "X-A", "1", "x-a", "2", "Content-Type", "text/plain" };
    sl_http_call_result_t res = { .status = 201, .n_headers = 3, .headers = hdrs, .body = "yes", .body_len = 3 };
    t = take_pending(0);
    ((sl_http_call_cb)t.cb)(t.r, t.arg, &res);
    CHECK_INT(1, r->resumed);
    CHECK_INT(SL_OK, r->resume_status);
    CHECK_STR("up.set X-R=true 201 1, 2 yes\n", r->ops);
    req_free(r);

    r = req_new("req-io2");
    CHECK_INT(SL_YIELD, p.d->access(p.inst, r));
    t = take_pending(0);
    ((sl_timer_cb)t.cb)(t.r, t.arg);
    sl_http_call_result_t bad = { .status = 0, .error = "connect failed: refused" };
    t = take_pending(0);
    ((sl_http_call_cb)t.cb)(t.r, t.arg, &bad);
    CHECK_STR("up.set X-Err=connect failed: refused\n", r->ops);
    req_free(r);

    r = req_new("req-io3");
    CHECK_INT(SL_OK, p.d->rewrite(p.inst, r));
    CHECK_STR("up.set X-Bad=sluice.http.request: url must start with http:// or https://\n", r->ops);
    req_free(r);
    plugin_down(&p);
    check_no_request_data(__LINE__);
}

static void test_filters_and_log(void)
{
    plugin_t p = plugin_up(
        "filters.lua",
        "local response = require('sluice.response')\n"
        "local seen = ''\n"
        "return { name = 'filters',\n"
        "header_filter = function(conf, ctx)\n"
        "  response.set_header('X-Status', response.get_status()); response.set_status(201)\n"
        "  response.add_header('Via', 'lua'); ctx.n = 0\n"
        "  response.set_header('X-Got', response.get_header('via'))\n"
        "end,\n"
        "body_filter = function(conf, ctx, chunk, last)\n"
        "  ctx.n = ctx.n + 1; seen = seen .. chunk .. (last and '$' or '')\n"
        "  if chunk == 'keep' then return nil end\n"
        "  if chunk == 'bad' then return 5 end\n"
        "  return chunk:upper()\n"
        "end,\n"
        "log = function(conf, ctx)\n"
        "  print('chunks', ctx.n, seen, nil)\n"
        "  response.set_header('X-Late', '1')\n"
        "end }\n",
        "{}");
    sl_req_t *r = req_new("req-f");
    CHECK_INT(SL_OK, p.d->header_filter(p.inst, r));
    CHECK_STR("resp.set X-Status=200\nresp.status 201\nresp.add Via=lua\nresp.set X-Got=lua\n", r->ops);
    r->ops[0] = '\0';
    sl_body_chunk_t c1 = { "abc", 3, 0 };
    CHECK_INT(SL_OK, p.d->body_filter(p.inst, r, &c1));
    CHECK_STR("ABC", c1.data);
    CHECK_INT(3, c1.len);
    sl_body_chunk_t c2 = { "keep", 4, 0 };
    CHECK_INT(SL_OK, p.d->body_filter(p.inst, r, &c2));
    CHECK_STR("keep", c2.data);
    sl_body_chunk_t c3 = { "", 0, 1 };
    CHECK_INT(SL_OK, p.d->body_filter(p.inst, r, &c3));
    CHECK_INT(0, c3.len);
    CHECK_STR("body.replace ABC\nbody.replace \n", r->ops);
    reset_logs();
    sl_body_chunk_t c4 = { "bad", 3, 0 };
    CHECK_INT(SL_ERROR, p.d->body_filter(p.inst, r, &c4));
    CHECK_STR("lua plugin filters: body_filter failed (request req-f): body_filter must return a string or nil, not a number",
              log_head(0));
    reset_logs();
    r->refuse_writes = 1;
    p.d->log(p.inst, r);
    CHECK_INT(2, n_logs);
    CHECK_STR("lua plugin filters (request req-f): chunks\t4\tabckeep$bad\tnil", logs[0]);
    CHECK_INT(SL_LOG_LEVEL_INFO, log_levels[0]);
    char want[512];
    snprintf(want, sizeof want,
             "lua plugin filters: log failed (request req-f): %s/filters.lua:17: "
             "sluice.response.set_header: refused by the gateway in log",
             dir);
    CHECK_STR(want, log_head(1));
    req_free(r);
    plugin_down(&p);
    check_no_request_data(__LINE__);
}

static void test_shared_geoip_json(void)
{
    plugin_t p = plugin_up(
        "misc.lua",
        "local shared = require('sluice.shared')\n"
        "local geoip = require('sluice.geoip')\n"
        "local json = require('sluice.json')\n"
        "local log = require('sluice.log')\n"
        "return { name = 'misc', access = function()\n"
        "  local out = {}\n"
        "  out.set = shared.set('d', 'k', 'v1', 60)\n"
        "  out.get = shared.get('d', 'k')\n"
        "  out.missing = shared.get('d', 'nope') == nil\n"
        "  out.incr1 = shared.incr('d', 'n', 2, 10)\n"
        "  out.incr2 = shared.incr('d', 'n')\n"
        "  local v, err = shared.incr('d', 'k')\n"
        "  out.incr_err = err\n"
        "  out.del = shared.delete('d', 'k'); out.del2 = shared.delete('d', 'k')\n"
        "  local big, berr = shared.set('d', 'big', string.rep('x', 100))\n"
        "  out.big = berr\n"
        "  out.bad_key = select(2, pcall(shared.get, 'd', ''))\n"
        "  out.geo = geoip.lookup('81.2.69.160'); out.nogeo = geoip.lookup('10.0.0.1') == nil\n"
        "  out.decoded = json.decode('{\"a\":[1,null,{}],\"b\":9007199254740993}')\n"
        "  out.ununsed_null = json.null ~= nil\n"
        "  log.warn('100% sure'); log.error('%d%%', 50); log.debug({})\n"
        "  log.info('line\\nbreak\\1')\n"
        "  require('sluice.response').exit(200, out)\n"
        "end }\n",
        "{}");
    reset_logs();
    sl_req_t *r = req_new("req-misc");
    CHECK_INT(SL_DONE, p.d->access(p.inst, r));
    CHECK_STR("respond 200 application/json {\"bad_key\":\"sluice.shared.get: the dict name and the "
              "key must not be empty\",\"big\":\"shared dict refused the value (too big?)\","
              "\"decoded\":{\"a\":[1,null,{}],\"b\":9007199254740993},\"del\":true,\"del2\":false,"
              "\"geo\":{\"asn\":20712,\"asn_org\":\"Andrews & Arnold Ltd\",\"continent\":\"EU\","
              "\"country\":\"GB\"},\"get\":\"v1\",\"incr1\":12,\"incr2\":13,\"incr_err\":\"cannot "
              "increment (the value is not an integer, or it overflowed)\",\"missing\":true,"
              "\"nogeo\":true,\"set\":true,\"ununsed_null\":true}\n",
              r->ops);
    CHECK_INT(4, n_logs);
    CHECK_STR("lua plugin misc (request req-misc): 100% sure", logs[0]);
    CHECK_INT(SL_LOG_LEVEL_WARN, log_levels[0]);
    CHECK_STR("lua plugin misc (request req-misc): 50%", logs[1]);
    CHECK_INT(SL_LOG_LEVEL_ERROR, log_levels[1]);
    CHECK_INT(SL_LOG_LEVEL_DEBUG, log_levels[2]);
    CHECK_INT(0, strncmp(logs[2], "lua plugin misc (request req-misc): table: 0x", 45));
    CHECK_STR("lua plugin misc (request req-misc): line\\nbreak\\x01", logs[3]);
    req_free(r);
    plugin_down(&p);
    n_shd = 0;
}

/* Bad arguments raise errors that name the function and the problem (no
 * position here: pcall calls them straight from C). */
static void test_bad_input(void)
{
    plugin_t p = plugin_up(
        "bad.lua",
        "local s = require('sluice')\n"
        "return { name = 'bad', access = function()\n"
        "  local out = {}\n"
        "  local function try(name, f, ...) local ok, e = pcall(f, ...); out[name] = ok and 'ok' or e end\n"
        "  try('ttl', s.shared.set, 'd', 'k', 'v', -1)\n"
        "  try('value', s.shared.set, 'd', 'k', {})\n"
        "  try('nul_key', s.shared.get, 'd', 'a\\0b')\n"
        "  try('delta', s.shared.incr, 'd', 'n', 1.5)\n"
        "  try('exit_headers', s.response.exit, 200, 'x', 'text/plain')\n"
        "  try('exit_list', s.response.exit, 200, 'x', { ['X-A'] = { {} } })\n"
        "  try('exit_ctype', s.response.exit, 200, 'x', { ['Content-Type'] = 5 })\n"
        "  try('exit_json', s.response.exit, 200, { f = print })\n"
        "  try('error_code', s.response.error, 400, '', 'm')\n"
        "  try('set_status', s.response.set_status, 'x')\n"
        "  try('huge_status', s.response.set_status, 1e300)\n"
        "  try('method', s.upstream.set_method, 'GE T')\n"
        "  try('body', s.upstream.set_body, 5)\n"
        "  try('http_url', s.http.request, {})\n"
        "  try('http_timeout', s.http.request, { url = 'http://x', timeout = 0 })\n"
        "  try('http_header', s.http.request, { url = 'http://x', headers = { ['Bad Name'] = 'v' } })\n"
        "  try('http_verify', s.http.request, { url = 'http://x', ssl_verify = 'no' })\n"
        "  try('sleep', s.sleep, -1)\n"
        "  try('eval', s.redis.eval, 'return 1', 3, 'k')\n"
        "  try('pipeline', s.redis.pipeline, { 'GET' })\n"
        "  try('no_command', s.redis.call)\n"
        "  try('log', s.log.info)\n"
        "  try('geoip', s.geoip.lookup, 5)\n"
        "  try('header_nul', s.request.get_header, 'a\\0')\n"
        "  s.response.exit(200, out)\n"
        "end }\n",
        "{}");
    sl_req_t *r = req_new("req-bad");
    CHECK_INT(SL_DONE, p.d->access(p.inst, r));
    CHECK_STR("respond 200 application/json {"
              "\"body\":\"sluice.upstream.set_body: the body must be a string, not number\","
              "\"delta\":\"sluice.shared.incr: delta must be an integer\","
              "\"error_code\":\"sluice.response.error: the code must not be empty\","
              "\"eval\":\"sluice.redis.eval: nkeys must be an integer from 0 to the number of arguments after it\","
              "\"exit_ctype\":\"sluice.response.exit: Content-Type must be a string\","
              "\"exit_headers\":\"sluice.response.exit: the headers must be a table, not string\","
              "\"exit_json\":\"sluice.response.exit: the body cannot be encoded as JSON: cannot encode a function at $.f\","
              "\"exit_list\":\"sluice.response.exit: the header value must be a string, not table\","
              "\"geoip\":\"sluice.geoip.lookup: the address must be a string, not number\","
              "\"header_nul\":\"sluice.request.get_header: the header name must not contain a NUL byte\","
              "\"http_header\":\"sluice.http.request: invalid header name\","
              "\"http_timeout\":\"sluice.http.request: timeout must be a number of seconds from 0 to 3600\","
              "\"http_url\":\"sluice.http.request: url is required\","
              "\"http_verify\":\"sluice.http.request: ssl_verify must be a boolean\","
              "\"huge_status\":\"sluice.response.set_status: the status must be an integer from 100 to 599\","
              "\"log\":\"sluice.log: a message is required\","
              "\"method\":\"sluice.upstream.set_method: invalid method \\\"GE T\\\"\","
              "\"no_command\":\"sluice.redis.call: a command needs at least its name\","
              "\"nul_key\":\"sluice.shared.get: the key must not contain a NUL byte\","
              "\"pipeline\":\"sluice.redis.pipeline: command #1 must be a list\","
              "\"set_status\":\"sluice.response.set_status: the status must be an integer from 100 to 599\","
              "\"sleep\":\"sluice.sleep: seconds must be a number from 0 to 86400\","
              "\"ttl\":\"sluice.shared.set: the ttl must be a number of seconds >= 0 (0 = none)\","
              "\"value\":\"sluice.shared.set: the value must be a string or a number, not table\"}\n",
              r->ops);
    CHECK_INT(0, n_pending);
    req_free(r);
    plugin_down(&p);
    check_no_request_data(__LINE__);
}

/* The example plugin of lua/README.md, found next to this file's source. */
static char *read_example(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s", __FILE__);
    char *slash = strrchr(path, '/');
    size_t keep = slash ? (size_t)(slash - path) + 1 : 0;
    snprintf(path + keep, sizeof path - keep, "../../lua/examples/quota.lua");
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return NULL;
    }
    char *buf = calloc(1, 65536);
    size_t n = fread(buf, 1, 65535, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

static void test_example_plugin(void)
{
    char *src = read_example();
    CHECK_INT(1, src != NULL);
    if (!src)
        return;
    plugin_t p = plugin_up("quota.lua", src, "{\"header\":\"X-Key\",\"limit\":3,\"window\":60,\"fail_open\":true}");
    free(src);

    /* no key */
    sl_req_t *r = req_new("req-q0");
    r->n_hdrs = 1;
    CHECK_INT(SL_DONE, p.d->access(p.inst, r));
    CHECK_STR("respond_error 401 missing_api_key send an API key in X-Key\n", r->ops);
    req_free(r);

    /* the first request opens the window */
    r = req_new("req-q1");
    CHECK_INT(SL_YIELD, p.d->access(p.inst, r));
    CHECK_STR("INCR quota:k1", pending[0].desc);
    sl_reply_t one = reply_int(1);
    complete_redis(0, &one, NULL);
    CHECK_STR("EXPIRE quota:k1 60", pending[0].desc);
    complete_redis(0, &one, NULL);
    CHECK_INT(1, r->resumed);
    CHECK_INT(SL_OK, r->resume_status);
    CHECK_INT(SL_OK, p.d->header_filter(p.inst, r));
    CHECK_STR("up.set X-Quota-Remaining=2\nresp.set X-Quota-Remaining=2\n", r->ops);
    req_free(r);

    /* over the limit */
    r = req_new("req-q2");
    CHECK_INT(SL_YIELD, p.d->access(p.inst, r));
    sl_reply_t four = reply_int(4), ttl = reply_int(42);
    complete_redis(0, &four, NULL);
    CHECK_STR("TTL quota:k1", pending[0].desc);
    complete_redis(0, &ttl, NULL);
    CHECK_INT(SL_DONE, r->resume_status);
    reset_logs();
    p.d->log(p.inst, r);
    CHECK_STR("respond_error 429 quota_exceeded at most 3 requests per 60 seconds\nresp.set Retry-After=42\n",
              r->ops);
    CHECK_STR("lua plugin quota (request req-q2): k1 reached its quota", logs[0]);
    req_free(r);

    /* Redis unreachable: counted in the shared dict instead */
    refuse_async = 1;
    reset_logs();
    r = req_new("req-q3");
    CHECK_INT(SL_OK, p.d->access(p.inst, r));
    CHECK_STR("up.set X-Quota-Remaining=2\n", r->ops);
    CHECK_STR("lua plugin quota (request req-q3): redis: redis is not available (is there a redis "
              "section in the config?); counting on this gateway only",
              logs[0]);
    CHECK_INT(SL_LOG_LEVEL_WARN, log_levels[0]);
    refuse_async = 0;
    req_free(r);
    n_shd = 0;
    plugin_down(&p);
    check_no_request_data(__LINE__);
}

/* Functions that need a request fail cleanly at a plugin's top level. */
static void test_no_request_at_top_level(void)
{
    const char *src = "local id = require('sluice.request').get_id()\nreturn { name = 'early' }";
    char err[512], want[512];
    sl_plugin_desc_t *d = sl_lua_plugin_load(write_plugin("early.lua", src, strlen(src)), err, sizeof err);
    CHECK_INT(1, d == NULL);
    snprintf(want, sizeof want,
             "%s/early.lua:1: sluice.request.get_id: no request here (only phase functions serve "
             "a request)",
             dir);
    CHECK_STR(want, err);
    const char *io = "require('sluice').sleep(1)\nreturn { name = 'early' }";
    d = sl_lua_plugin_load(write_plugin("early_io.lua", io, strlen(io)), err, sizeof err);
    CHECK_INT(1, d == NULL);
    snprintf(want, sizeof want,
             "%s/early_io.lua:1: sluice.sleep: no request here (only phase functions serve a "
             "request)",
             dir);
    CHECK_STR(want, err);
}

/* Big strings come from request bodies: lua_pushlstring makes them
 * directly, without LuaJIT's scratch buffer, whose size would blur what
 * the plugin holds. */
static void test_memory_limit(void)
{
    sl_lua_host_shutdown();
    host_up(2 * 1024 * 1024);
    static const char hog_src[] =
        "local keep = {}\n"
        "local request = require('sluice.request')\n"
        "return { name = 'hog', schema = { fields = { keep = { type = 'boolean' } } },\n"
        "access = function(conf)\n"
        "  local body = request.get_body()\n"
        "  if conf.keep then keep[#keep + 1] = body end\n"
        "end }\n";
    plugin_t p = plugin_up("hog.lua", hog_src, "{\"keep\":false}");
    plugin_t q = plugin_up("hog.lua", hog_src, "{\"keep\":true}");
    size_t big_len = 1024 * 1024;
    char *big = malloc(big_len + 1);
    memset(big, 'x', big_len);
    big[big_len] = '\0';
    /* garbage only: a full collection brings it back under the limit */
    for (int i = 0; i < 6; i++) {
        sl_req_t *r = req_new("req-garbage");
        big[0] = (char)('a' + i);
        r->body = big;
        CHECK_INT(SL_OK, p.d->access(p.inst, r));
        req_free(r);
    }
    reset_logs();
    int first_error = -1;
    for (int i = 0; i < 6 && first_error < 0; i++) {
        sl_req_t *r = req_new("req-hog");
        big[0] = (char)('A' + i);
        r->body = big;
        if (q.d->access(q.inst, r) == SL_ERROR)
            first_error = i;
        req_free(r);
    }
    /* one kept 1 MiB body fits in 2 MiB with the state's own data; two do not */
    CHECK_INT(1, first_error);
    CHECK_INT(1, n_logs);
    CHECK_INT(0, strncmp(logs[0], "lua plugin hog (request req-hog): Lua memory limit exceeded: ", 61));
    free(big);
    plugin_down(&p);
    plugin_down(&q);
    sl_lua_host_shutdown();
    host_up(0);
}

static void test_init_and_shutdown(void)
{
    CHECK_INT(-1, sl_lua_host_init(&fake_host, 1, NULL, 0));   /* already initialised */
    sl_lua_host_shutdown();
    CHECK_INT(-1, sl_lua_host_init(NULL, 1, NULL, 0));
    CHECK_INT(-1, sl_lua_host_init(&fake_host, 0, NULL, 0));
    sl_host_t old = fake_host;
    old.size = sizeof(sl_host_t) - 8;
    CHECK_INT(-1, sl_lua_host_init(&old, 1, NULL, 0));
    char err[256];
    CHECK_INT(1, sl_lua_plugin_load("/x.lua", err, sizeof err) == NULL);
    CHECK_STR("/x.lua: the Lua host is not initialised", err);
    host_up(0);

    /* shutdown while a coroutine waits: the request's hook stays harmless */
    plugin_t p = plugin_up("counter.lua", redis_src, "{\"mode\":\"pipeline\"}");
    sl_req_t *r = req_new("req-shutdown");
    CHECK_INT(SL_YIELD, p.d->access(p.inst, r));
    n_wdmap = 0;
    sl_lua_host_shutdown();
    req_free(r);
    sl_lua_stats_t s;
    CHECK_INT(-1, sl_lua_host_stats(0, &s));
    p.d->worker_fini(p.inst, p.wd);   /* late: only frees */
    p.d->unconfigure(p.inst);
    sl_lua_plugin_free(p.d);
    json_decref(p.conf);
    host_up(0);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/sluice-lua-test-XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 2;
    }
    host_up(0);
    test_load_errors();
    test_load_ok();
    test_requires_function();
    test_sandbox();
    test_phase_results();
    test_traceback_logged();
    test_request_getters();
    test_ctx_shared();
    test_module_shared_by_instances();
    test_redis();
    test_pipeline_order();
    test_disconnect_cleanup();
    test_sleep_and_http();
    test_filters_and_log();
    test_shared_geoip_json();
    test_bad_input();
    test_example_plugin();
    test_no_request_at_top_level();
    test_memory_limit();
    test_init_and_shutdown();
    sl_lua_host_shutdown();

    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return check_summary();
}
