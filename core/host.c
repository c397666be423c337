/* The host table: what plugins (C, and Lua through lua_host.c) may ask of
 * the gateway. sl_req_t is an sl_request_t seen through the SDK. */
#include "host.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "chain.h"
#include "clock.h"
#include "conn.h"
#include "http1.h"
#include "http_client.h"
#include "log.h"
#include "metrics.h"
#include "redis.h"
#include "shdict.h"
#include "siphash.h"

#define REQ(r) ((sl_request_t *)(r))

typedef enum { ASYNC_SLEEP, ASYNC_TIMER, ASYNC_HTTP, ASYNC_STREAM, ASYNC_REDIS } async_kind_t;

typedef struct sl_async {
    async_kind_t kind;
    sl_request_t *r;
    void *cb;
    void *arg;
    const sl_http_stream_handlers_t *stream;   /* ASYNC_STREAM: the plugin's handlers */
    struct event *timer;
    sl_http_client_req_t *http;
    sl_redis_req_t *redis;
    struct sl_async *next;
} sl_async_t;

typedef struct sl_cleanup {
    void (*fn)(void *arg);
    void *arg;
    struct sl_cleanup *next;
} sl_cleanup_t;

static void async_unlink(sl_async_t *a)
{
    sl_async_t **pp = &a->r->pending;
    while (*pp && *pp != a)
        pp = &(*pp)->next;
    if (*pp)
        *pp = a->next;
}

static void async_free(sl_async_t *a)
{
    if (a->timer)
        event_free(a->timer);
    free(a);
}

void sl_host_request_done(sl_request_t *r)
{
    while (r->pending) {
        sl_async_t *a = r->pending;
        r->pending = a->next;
        if (a->http)
            sl_http_client_cancel(a->http);
        if (a->redis)
            sl_redis_cancel(a->redis);
        async_free(a);
    }
    while (r->cleanups) {
        sl_cleanup_t *c = r->cleanups;
        r->cleanups = c->next;
        c->fn(c->arg);   /* memory is in the request arena */
    }
}

/* ---- request ---------------------------------------------------------------- */

static const char *h_req_method(sl_req_t *r, size_t *len)
{
    if (len)
        *len = REQ(r)->head.method_len;
    return sl_arena_strndup(&REQ(r)->arena, REQ(r)->head.method, REQ(r)->head.method_len);
}

static const char *h_req_path(sl_req_t *r, size_t *len)
{
    if (len)
        *len = REQ(r)->head.path_len;
    return sl_arena_strndup(&REQ(r)->arena, REQ(r)->head.path, REQ(r)->head.path_len);
}

static const char *h_req_query(sl_req_t *r, size_t *len)
{
    if (!REQ(r)->head.query)
        return NULL;
    if (len)
        *len = REQ(r)->head.query_len;
    return sl_arena_strndup(&REQ(r)->arena, REQ(r)->head.query, REQ(r)->head.query_len);
}

static const char *h_req_header(sl_req_t *r, const char *name, size_t *len)
{
    const sl_http_header_t *h = sl_request_header(REQ(r), name);
    if (!h)
        return NULL;
    if (len)
        *len = h->value_len;
    return h->value;   /* NUL-terminated in place when the head was parsed */
}

static int h_req_header_at(sl_req_t *r, int i, const char **name, size_t *nlen, const char **value,
                           size_t *vlen)
{
    if (i < 0 || i >= REQ(r)->head.n_headers)
        return 0;
    const sl_http_header_t *h = &REQ(r)->head.headers[i];
    *name = h->name;
    *nlen = h->name_len;
    *value = h->value;
    *vlen = h->value_len;
    return 1;
}

static const char *h_req_body(sl_req_t *r, size_t *len)
{
    struct evbuffer *b = REQ(r)->body;
    size_t n = b ? evbuffer_get_length(b) : 0;
    if (len)
        *len = n;
    if (n == 0)
        return "";
    /* A NUL after the bytes without touching what goes upstream. */
    char *copy = sl_arena_alloc(&REQ(r)->arena, n + 1);
    if (!copy)
        return NULL;
    evbuffer_copyout(b, copy, n);
    return copy;
}

static const char *h_req_client_ip(sl_req_t *r) { return sl_request_client_ip(REQ(r)); }
static const char *h_req_id(sl_req_t *r) { return REQ(r)->request_id; }
static const char *h_req_route(sl_req_t *r) { return REQ(r)->route ? REQ(r)->route->name : NULL; }
static int h_req_is_tls(sl_req_t *r) { return sl_request_is_tls(REQ(r)); }

static const char *h_req_upstream(sl_req_t *r)
{
    const sl_route_t *route = REQ(r)->route;
    return route && route->upstream ? route->upstream->name : NULL;
}

/* ---- upstream overrides ------------------------------------------------------ */

/* A header a plugin sets must be one the peer reads as one header: the
 * name's length when name and value make one valid header, else -1. */
static ssize_t checked_field(const char *name, const char *value, size_t vlen)
{
    size_t nlen = strlen(name);
    if (!value || !sl_http_is_token(name, nlen) || !sl_http_is_field_value(value, vlen))
        return -1;
    return (ssize_t)nlen;
}

static int set_op(sl_request_t *r, const char *name, const char *value, size_t vlen)
{
    ssize_t nlen = checked_field(name, value ? value : "", value ? vlen : 0);
    if (nlen < 0)
        return -1;
    sl_hdrs_remove(&r->up_headers, name);
    if (sl_hdrs_add(r, &r->up_headers, name, (size_t)nlen, value ? value : "", value ? vlen : 0) != 0)
        return -1;
    if (!value)   /* removal marker */
        r->up_headers.items[r->up_headers.n - 1].value = NULL;
    return 0;
}

static int h_up_set_header(sl_req_t *r, const char *name, const char *value, size_t vlen)
{
    return value ? set_op(REQ(r), name, value, vlen) : -1;
}

static int h_up_remove_header(sl_req_t *r, const char *name) { return set_op(REQ(r), name, NULL, 0); }

static int h_up_set_target(sl_req_t *r, const char *target, size_t len)
{
    if (len == 0 || target[0] != '/')
        return -1;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)target[i] <= 0x20 || (unsigned char)target[i] >= 0x7f)
            return -1;
    REQ(r)->up_target = sl_arena_strndup(&REQ(r)->arena, target, len);
    REQ(r)->up_target_len = len;
    return REQ(r)->up_target ? 0 : -1;
}

static int h_up_set_body(sl_req_t *r, const char *body, size_t len)
{
    sl_request_t *q = REQ(r);
    if (!q->body && !(q->body = evbuffer_new()))
        return -1;
    evbuffer_drain(q->body, evbuffer_get_length(q->body));
    return evbuffer_add(q->body, body, len);
}

static const char *h_up_target(sl_req_t *r, size_t *len)
{
    sl_request_t *q = REQ(r);
    if (q->up_target) {
        if (len)
            *len = q->up_target_len;
        return q->up_target;
    }
    if (len)
        *len = q->head.target_len;
    return sl_arena_strndup(&q->arena, q->head.target, q->head.target_len);
}

static int h_up_set_method(sl_req_t *r, const char *method)
{
    size_t n = strlen(method);
    if (!sl_method_bit(method, n))
        return -1;
    REQ(r)->up_method = sl_arena_strndup(&REQ(r)->arena, method, n);
    return 0;
}

/* ---- response ---------------------------------------------------------------- */

static int h_respond(sl_req_t *r, int status, const char *content_type, const char *body,
                     size_t len)
{
    sl_request_t *q = REQ(r);
    if (q->head_sent || status < 200 || status > 599)
        return -1;
    if (!q->plugin_body && !(q->plugin_body = evbuffer_new()))
        return -1;
    evbuffer_drain(q->plugin_body, evbuffer_get_length(q->plugin_body));
    if (len)
        evbuffer_add(q->plugin_body, body, len);
    q->status = status;
    sl_hdrs_remove(&q->resp_headers, "content-length");
    if (content_type) {
        sl_hdrs_remove(&q->resp_headers, "content-type");
        sl_hdrs_add(q, &q->resp_headers, "Content-Type", 12, content_type, strlen(content_type));
    }
    if (status != 204 && status != 304) {   /* RFC 9110 8.6: no length on those */
        char cl[24];
        int n = snprintf(cl, sizeof cl, "%zu", len);
        sl_hdrs_add(q, &q->resp_headers, "Content-Length", 14, cl, (size_t)n);
    }
    q->plugin_answered = true;
    return 0;
}

static int h_respond_error(sl_req_t *r, int status, const char *code, const char *message)
{
    char body[1024];
    size_t n = sl_error_json(body, sizeof body, status, code, message, REQ(r)->request_id);
    REQ(r)->error_code = sl_arena_strndup(&REQ(r)->arena, code, strlen(code));
    return h_respond(r, status, "application/json", body, n);
}

static int h_resp_status(sl_req_t *r) { return REQ(r)->status; }

static int h_resp_set_status(sl_req_t *r, int status)
{
    if (REQ(r)->head_sent || status < 100 || status > 599)
        return -1;
    REQ(r)->status = status;
    return 0;
}

static const char *h_resp_header(sl_req_t *r, const char *name, size_t *len)
{
    const sl_hdr_t *h = sl_hdrs_get(&REQ(r)->resp_headers, name);
    if (!h)
        return NULL;
    if (len)
        *len = h->value_len;
    return h->value;
}

static int h_resp_add_header(sl_req_t *r, const char *name, const char *value, size_t vlen)
{
    ssize_t nlen = checked_field(name, value, vlen);
    if (REQ(r)->head_sent || nlen < 0)
        return -1;
    return sl_hdrs_add(REQ(r), &REQ(r)->resp_headers, name, (size_t)nlen, value, vlen);
}

static int h_resp_set_header(sl_req_t *r, const char *name, const char *value, size_t vlen)
{
    ssize_t nlen = checked_field(name, value, vlen);
    if (REQ(r)->head_sent || nlen < 0)
        return -1;
    sl_hdrs_remove(&REQ(r)->resp_headers, name);
    return sl_hdrs_add(REQ(r), &REQ(r)->resp_headers, name, (size_t)nlen, value, vlen);
}

static int h_resp_remove_header(sl_req_t *r, const char *name)
{
    if (REQ(r)->head_sent)
        return -1;
    sl_hdrs_remove(&REQ(r)->resp_headers, name);
    return 0;
}

static int h_body_replace(sl_req_t *r, sl_body_chunk_t *chunk, const char *data, size_t len)
{
    sl_request_t *q = REQ(r);
    /* Two buffers taking turns: the data being replaced may live in the
     * other one (a previous filter's output). */
    int t = q->filter_turn;
    q->filter_turn ^= 1;
    if (q->filter_cap[t] < len + 1) {
        char *p = realloc(q->filter_buf[t], len + 1);
        if (!p)
            return -1;
        q->filter_buf[t] = p;
        q->filter_cap[t] = len + 1;
    }
    memcpy(q->filter_buf[t], data, len);
    q->filter_buf[t][len] = '\0';
    chunk->data = q->filter_buf[t];
    chunk->len = len;
    return 0;
}

/* ---- per-request data -------------------------------------------------------- */

static void *h_req_alloc(sl_req_t *r, size_t size) { return sl_arena_alloc(&REQ(r)->arena, size); }

static int h_ctx_set(sl_req_t *r, const char *key, const char *value, size_t vlen)
{
    /* ctx keys are exact (h_ctx_get): not the case-blind header removal. */
    sl_hdrs_t *h = &REQ(r)->ctx;
    size_t n = strlen(key);
    int j = 0;
    for (int i = 0; i < h->n; i++)
        if (h->items[i].name_len != n || memcmp(h->items[i].name, key, n) != 0)
            h->items[j++] = h->items[i];
    h->n = j;
    if (!value)
        return 0;
    return sl_hdrs_add(REQ(r), h, key, n, value, vlen);
}

static const char *h_ctx_get(sl_req_t *r, const char *key, size_t *vlen)
{
    size_t n = strlen(key);
    const sl_hdrs_t *h = &REQ(r)->ctx;
    for (int i = 0; i < h->n; i++) {   /* exact, case-sensitive keys */
        if (h->items[i].name_len == n && memcmp(h->items[i].name, key, n) == 0) {
            if (vlen)
                *vlen = h->items[i].value_len;
            return h->items[i].value;
        }
    }
    return NULL;
}

static void *h_worker_data(sl_req_t *r, void *instance)
{
    const sl_chain_t *c = REQ(r)->chain;
    int w = sl_request_worker(REQ(r))->id;
    for (int i = 0; c && i < c->n; i++)
        if (c->items[i]->state == instance)
            return c->items[i]->worker_data ? c->items[i]->worker_data[w] : NULL;
    return NULL;
}

typedef struct sl_plugin_slot {
    void *instance;
    void *value;
    struct sl_plugin_slot *next;
} sl_plugin_slot_t;

/* A request meets a handful of plugins: a list in the arena is enough. */
static void **h_req_slot(sl_req_t *r, void *instance)
{
    sl_plugin_slot_t *s = REQ(r)->plugin_slots;
    while (s && s->instance != instance)
        s = s->next;
    if (!s && (s = sl_arena_alloc(&REQ(r)->arena, sizeof *s))) {
        s->instance = instance;
        s->next = REQ(r)->plugin_slots;
        REQ(r)->plugin_slots = s;
    }
    return s ? &s->value : NULL;
}

static int h_req_cleanup(sl_req_t *r, void (*fn)(void *arg), void *arg)
{
    sl_cleanup_t *c = sl_arena_alloc(&REQ(r)->arena, sizeof *c);
    if (!c)
        return -1;
    c->fn = fn;
    c->arg = arg;
    c->next = REQ(r)->cleanups;
    REQ(r)->cleanups = c;
    return 0;
}

/* ---- asynchronous calls ------------------------------------------------------ */

static void h_resume(sl_req_t *r, sl_status_t status) { sl_chain_resume(REQ(r), status); }

static sl_async_t *async_new(sl_request_t *r, async_kind_t kind, void *cb, void *arg)
{
    sl_async_t *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->kind = kind;
    a->r = r;
    a->cb = cb;
    a->arg = arg;
    a->next = r->pending;
    r->pending = a;
    return a;
}

static void sleep_fired(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    sl_async_t *a = arg;
    sl_request_t *r = a->r;
    sl_timer_cb cb = (sl_timer_cb)a->cb;
    void *cb_arg = a->arg;
    async_unlink(a);
    async_free(a);
    cb((sl_req_t *)r, cb_arg);
}

static int h_sleep(sl_req_t *r, uint64_t ms, sl_timer_cb cb, void *arg)
{
    sl_async_t *a = async_new(REQ(r), ASYNC_SLEEP, (void *)cb, arg);
    if (!a)
        return -1;
    a->timer = evtimer_new(sl_request_base(REQ(r)), sleep_fired, a);
    struct timeval tv = sl_tv_ms((int64_t)ms);
    if (!a->timer || evtimer_add(a->timer, &tv) != 0) {
        async_unlink(a);
        async_free(a);
        return -1;
    }
    return 0;
}

static void http_done(void *arg, const sl_http_response_t *res)
{
    sl_async_t *a = arg;
    sl_request_t *r = a->r;
    sl_http_call_cb cb = (sl_http_call_cb)a->cb;
    void *cb_arg = a->arg;
    async_unlink(a);
    a->http = NULL;
    async_free(a);
    sl_http_call_result_t out = {
        .status = res->status, .error = res->error, .n_headers = res->n_headers,
        .headers = res->headers, .body = res->body, .body_len = res->body_len,
    };
    cb((sl_req_t *)r, cb_arg, &out);
}

static int h_http_call(sl_req_t *r, const sl_http_request_spec_t *spec, sl_http_call_cb cb,
                       void *arg)
{
    sl_request_t *q = REQ(r);
    sl_worker_t *w = sl_request_worker(q);
    sl_async_t *a = async_new(q, ASYNC_HTTP, (void *)cb, arg);
    if (!a)
        return -1;
    sl_http_call_t call = {
        .method = spec->method ? spec->method : "GET",
        .url = spec->url,
        .headers = spec->headers,
        .body = spec->body,
        .body_len = spec->body_len,
        .timeout_ms = spec->timeout_ms > 0 ? spec->timeout_ms : 5000,
        .tls_verify = spec->tls_verify >= 0,
    };
    a->http = sl_http_client_request(w->base, w->dns, w->pool, &call, http_done, a);
    if (!a->http) {
        async_unlink(a);
        async_free(a);
        return -1;
    }
    return 0;
}

/* ---- streams and cancellable timers ----------------------------------------- */

static sl_call_t *h_timer(sl_req_t *r, uint64_t ms, sl_timer_cb cb, void *arg)
{
    sl_async_t *a = async_new(REQ(r), ASYNC_TIMER, (void *)cb, arg);
    if (!a)
        return NULL;
    a->timer = evtimer_new(sl_request_base(REQ(r)), sleep_fired, a);
    struct timeval tv = sl_tv_ms((int64_t)ms);
    if (!a->timer || evtimer_add(a->timer, &tv) != 0) {
        async_unlink(a);
        async_free(a);
        return NULL;
    }
    return (sl_call_t *)a;
}

static void stream_head(void *arg, int status, int n, const char *const *headers)
{
    sl_async_t *a = arg;
    if (a->stream->on_head)
        a->stream->on_head((sl_req_t *)a->r, a->arg, status, n, headers);
}

static void stream_data(void *arg, const char *data, size_t len)
{
    sl_async_t *a = arg;
    if (a->stream->on_data)
        a->stream->on_data((sl_req_t *)a->r, a->arg, data, len);
}

static void stream_end(void *arg, const char *error)
{
    sl_async_t *a = arg;
    sl_request_t *r = a->r;
    const sl_http_stream_handlers_t *h = a->stream;
    void *uarg = a->arg;
    async_unlink(a);
    a->http = NULL;   /* the client frees its handle after on_end */
    async_free(a);
    if (h->on_end)
        h->on_end((sl_req_t *)r, uarg, error);
}

static const sl_http_stream_cbs_t stream_cbs = { stream_head, stream_data, stream_end };

static sl_call_t *h_http_stream(sl_req_t *r, const sl_http_request_spec_t *spec,
                                int64_t idle_timeout_ms, const sl_http_stream_handlers_t *h,
                                void *arg)
{
    sl_request_t *q = REQ(r);
    sl_worker_t *w = sl_request_worker(q);
    sl_async_t *a = async_new(q, ASYNC_STREAM, NULL, arg);
    if (!a)
        return NULL;
    a->stream = h;
    sl_http_call_t call;
    sl_http_call_init(&call);
    call.method = spec->method ? spec->method : "GET";
    call.url = spec->url;
    call.headers = spec->headers;
    call.body = spec->body;
    call.body_len = spec->body_len;
    call.timeout_ms = spec->timeout_ms > 0 ? spec->timeout_ms : 5000;
    call.idle_timeout_ms = idle_timeout_ms;
    call.tls_verify = spec->tls_verify >= 0;
    a->http = sl_http_client_stream(w->base, w->dns, w->pool, &call, &stream_cbs, a);
    if (!a->http) {
        async_unlink(a);
        async_free(a);
        return NULL;
    }
    return (sl_call_t *)a;
}

static void h_call_cancel(sl_req_t *r, sl_call_t *call)
{
    sl_async_t *a = (sl_async_t *)call;
    sl_async_t *p = REQ(r)->pending;
    while (p && p != a)
        p = p->next;
    if (!p)   /* already finished: the handle is gone */
        return;
    async_unlink(a);
    if (a->http)
        sl_http_client_cancel(a->http);
    if (a->redis)
        sl_redis_cancel(a->redis);
    async_free(a);
}

static int h_stream_start(sl_req_t *r, int status)
{
    sl_request_t *q = REQ(r);
    if (q->head_sent || status < 200 || status > 599)
        return -1;
    q->status = status;
    q->plugin_answered = true;
    sl_hdrs_remove(&q->resp_headers, "content-length");
    return sl_request_send_head(q);
}

static int h_stream_write(sl_req_t *r, const char *data, size_t len)
{
    if (!REQ(r)->head_sent || REQ(r)->ended)
        return -1;
    return sl_request_send_body(REQ(r), data, len);
}

static void copy_reply(const sl_redis_reply_t *in, sl_reply_t *out)
{
    /* sl_reply_t mirrors sl_redis_reply_t field for field (checked below). */
    memcpy(out, in, sizeof *out);
}

_Static_assert(sizeof(sl_reply_t) == sizeof(sl_redis_reply_t), "reply layouts differ");

static void redis_done(void *arg, const sl_redis_reply_t *reply, const char *err)
{
    sl_async_t *a = arg;
    sl_request_t *r = a->r;
    sl_redis_reply_cb cb = (sl_redis_reply_cb)a->cb;
    void *cb_arg = a->arg;
    async_unlink(a);
    a->redis = NULL;
    async_free(a);
    sl_reply_t out;
    if (reply)
        copy_reply(reply, &out);
    cb((sl_req_t *)r, cb_arg, reply ? &out : NULL, err);
}

static int h_redis_call(sl_req_t *r, int argc, const char *const *argv, const size_t *lens,
                        sl_redis_reply_cb cb, void *arg)
{
    sl_request_t *q = REQ(r);
    sl_worker_t *w = sl_request_worker(q);
    if (!w->redis)
        return -1;
    sl_async_t *a = async_new(q, ASYNC_REDIS, (void *)cb, arg);
    if (!a)
        return -1;
    a->redis = sl_redis_command(w->redis, argc, (const char **)argv, lens, redis_done, a);
    if (!a->redis) {
        async_unlink(a);
        async_free(a);
        return -1;
    }
    return 0;
}

/* Scripts are identified by their text; each is hashed once per process and
 * kept until exit (plugins have a handful). The list only grows, so every
 * eval reads it without a lock; adding takes one. */
typedef struct script_entry {
    char *source;
    sl_redis_script_t *script;
    struct script_entry *next;
} script_entry_t;

static struct {
    pthread_mutex_t lock;
    _Atomic(script_entry_t *) head;
} scripts = { PTHREAD_MUTEX_INITIALIZER, NULL };

static script_entry_t *script_find(const char *source)
{
    script_entry_t *e = atomic_load_explicit(&scripts.head, memory_order_acquire);
    while (e && strcmp(e->source, source) != 0)
        e = e->next;
    return e;
}

static sl_redis_script_t *script_for(const char *source)
{
    script_entry_t *e = script_find(source);
    if (e)
        return e->script;
    pthread_mutex_lock(&scripts.lock);
    e = script_find(source);   /* another worker may have added it meanwhile */
    if (!e && (e = calloc(1, sizeof *e))) {
        e->source = strdup(source);
        e->script = sl_redis_script_new(source);
        if (!e->source || !e->script) {
            free(e->source);
            if (e->script)
                sl_redis_script_free(e->script);
            free(e);
            e = NULL;
        } else {
            e->next = atomic_load_explicit(&scripts.head, memory_order_relaxed);
            atomic_store_explicit(&scripts.head, e, memory_order_release);
        }
    }
    pthread_mutex_unlock(&scripts.lock);
    return e ? e->script : NULL;
}

/* After every worker has stopped. */
void sl_host_shutdown(void)
{
    pthread_mutex_lock(&scripts.lock);
    script_entry_t *e = atomic_exchange(&scripts.head, NULL);
    while (e) {
        script_entry_t *next = e->next;
        sl_redis_script_free(e->script);
        free(e->source);
        free(e);
        e = next;
    }
    pthread_mutex_unlock(&scripts.lock);
}

static int h_redis_eval(sl_req_t *r, const char *script, int nkeys, int argc,
                        const char *const *argv, const size_t *lens, sl_redis_reply_cb cb, void *arg)
{
    sl_request_t *q = REQ(r);
    sl_worker_t *w = sl_request_worker(q);
    sl_redis_script_t *s = script ? script_for(script) : NULL;
    if (!w->redis || !s)
        return -1;
    sl_async_t *a = async_new(q, ASYNC_REDIS, (void *)cb, arg);
    if (!a)
        return -1;
    a->redis = sl_redis_eval(w->redis, s, nkeys, argc, (const char **)argv, lens, redis_done, a);
    if (!a->redis) {
        async_unlink(a);
        async_free(a);
        return -1;
    }
    return 0;
}

static _Atomic(const sl_config_t *) building_config;
static atomic_bool redis_on;

void sl_host_set_building_config(const sl_config_t *cfg)
{
    atomic_store(&building_config, cfg);
    if (cfg)
        atomic_store(&redis_on, cfg->redis.enabled);
}

static int h_redis_configured(void) { return atomic_load(&redis_on); }

static const sl_json_t *h_config_consumers(void)
{
    const sl_config_t *cfg = atomic_load(&building_config);
    return cfg ? (const sl_json_t *)cfg->consumers : NULL;
}

/* ---- shared dictionary ------------------------------------------------------- */

#define SL_SHARED_DEFAULT_BYTES (64u * 1024 * 1024)

static sl_shdict_t *dict(const char *name)
{
    return sl_shdict_named(name && *name ? name : "sluice", SL_SHARED_DEFAULT_BYTES);
}

static int h_shared_get(const char *d, const char *key, char *buf, size_t cap, size_t *len)
{
    sl_shdict_t *sd = dict(d);
    return sd ? sl_shdict_get(sd, key, strlen(key), buf, cap, len, NULL, sl_now_ms()) : -1;
}

static int h_shared_set(const char *d, const char *key, const char *val, size_t len, int64_t ttl_ms)
{
    sl_shdict_t *sd = dict(d);
    return sd ? sl_shdict_set(sd, key, strlen(key), val, len, ttl_ms, sl_now_ms()) : -1;
}

static int h_shared_incr(const char *d, const char *key, int64_t delta, int64_t init, int64_t ttl_ms,
                         int64_t *out)
{
    sl_shdict_t *sd = dict(d);
    return sd ? sl_shdict_incr(sd, key, strlen(key), delta, init, ttl_ms, sl_now_ms(), out) : -1;
}

static int h_shared_delete(const char *d, const char *key)
{
    sl_shdict_t *sd = dict(d);
    return sd ? sl_shdict_delete(sd, key, strlen(key)) : -1;
}

/* ---- logging, metrics, geoip -------------------------------------------------- */

static void h_log(sl_log_level_sdk_t level, const char *fmt, ...)
{
    char msg[1500];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    sl_log((sl_log_level_t)level, "%s", msg);
}

static void h_metric_add(const char *name, const char *labels, double value)
{
    sl_metric_add(name, labels, value);
}

static void h_metric_set(const char *name, const char *labels, double value)
{
    sl_metric_set(name, labels, value);
}

static int h_geoip_lookup(const char *ip, sl_geo_t *out)
{
    (void)ip;
    memset(out, 0, sizeof *out);
    return -1;   /* no database configured: the geoip plugin brings one */
}

/* ---- JSON --------------------------------------------------------------------- */

#define J(v) ((json_t *)(v))
#define CJ(v) ((const json_t *)(v))

static sl_json_t *h_json_parse(const char *text, size_t len, char *err, size_t errlen)
{
    json_error_t e;
    json_t *v = json_loadb(text, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
    if (!v && err)
        snprintf(err, errlen, "line %d column %d: %s", e.line, e.column, e.text);
    return (sl_json_t *)v;
}

static char *h_json_dump(const sl_json_t *v, size_t *len)
{
    char *s = json_dumps(CJ(v), JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(17));
    if (s && len)
        *len = strlen(s);
    return s;
}

static void h_json_free_string(char *s) { free(s); }
static void h_json_free(sl_json_t *v) { json_decref(J(v)); }

static sl_json_type_t h_json_type(const sl_json_t *v)
{
    switch (json_typeof(CJ(v))) {
    case JSON_OBJECT: return SL_JSON_OBJECT;
    case JSON_ARRAY: return SL_JSON_ARRAY;
    case JSON_STRING: return SL_JSON_STRING;
    case JSON_INTEGER: return SL_JSON_INTEGER;
    case JSON_REAL: return SL_JSON_REAL;
    case JSON_TRUE:
    case JSON_FALSE: return SL_JSON_BOOL;
    default: return SL_JSON_NULL;
    }
}

static const sl_json_t *h_json_get(const sl_json_t *obj, const char *key)
{
    return (const sl_json_t *)json_object_get(CJ(obj), key);
}

static size_t h_json_len(const sl_json_t *v)
{
    return json_is_array(CJ(v)) ? json_array_size(CJ(v)) : json_object_size(CJ(v));
}

static const sl_json_t *h_json_at(const sl_json_t *arr, size_t i)
{
    return (const sl_json_t *)json_array_get(CJ(arr), i);
}

static const char *h_json_string(const sl_json_t *v, size_t *len)
{
    if (!json_is_string(CJ(v)))
        return NULL;
    if (len)
        *len = json_string_length(CJ(v));
    return json_string_value(CJ(v));
}

static int64_t h_json_integer(const sl_json_t *v) { return json_integer_value(CJ(v)); }
static double h_json_number(const sl_json_t *v) { return json_number_value(CJ(v)); }
static int h_json_bool(const sl_json_t *v) { return json_is_true(CJ(v)); }

static const char *h_json_member_at(const sl_json_t *obj, size_t i, const sl_json_t **value)
{
    if (!json_is_object(CJ(obj)))
        return NULL;
    size_t n = 0;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)CJ(obj), key, v)
    {
        if (n++ == i) {
            if (value)
                *value = (const sl_json_t *)v;
            return key;
        }
    }
    return NULL;
}

/* ---- keyed hashing ------------------------------------------------------------ */

static uint64_t hash_k0, hash_k1;
static pthread_once_t hash_once = PTHREAD_ONCE_INIT;

static void hash_seed(void) { sl_siphash_seed(&hash_k0, &hash_k1, &hash_k0); }

static uint64_t h_hash64(const void *data, size_t len)
{
    return sl_siphash24(hash_k0, hash_k1, data, len);
}

static const sl_host_t host_table = {
    .abi_major = SLUICE_ABI_MAJOR,
    .abi_minor = SLUICE_ABI_MINOR,
    .size = sizeof(sl_host_t),
    .req_method = h_req_method,
    .req_path = h_req_path,
    .req_query = h_req_query,
    .req_header = h_req_header,
    .req_header_at = h_req_header_at,
    .req_body = h_req_body,
    .req_client_ip = h_req_client_ip,
    .req_id = h_req_id,
    .req_route = h_req_route,
    .req_is_tls = h_req_is_tls,
    .upstream_set_header = h_up_set_header,
    .upstream_remove_header = h_up_remove_header,
    .upstream_set_target = h_up_set_target,
    .upstream_set_body = h_up_set_body,
    .upstream_set_method = h_up_set_method,
    .upstream_target = h_up_target,
    .respond = h_respond,
    .respond_error = h_respond_error,
    .resp_status = h_resp_status,
    .resp_set_status = h_resp_set_status,
    .resp_header = h_resp_header,
    .resp_set_header = h_resp_set_header,
    .resp_add_header = h_resp_add_header,
    .resp_remove_header = h_resp_remove_header,
    .body_replace = h_body_replace,
    .req_alloc = h_req_alloc,
    .ctx_set = h_ctx_set,
    .ctx_get = h_ctx_get,
    .worker_data = h_worker_data,
    .req_cleanup = h_req_cleanup,
    .req_slot = h_req_slot,
    .hash64 = h_hash64,
    .req_upstream = h_req_upstream,
    .resume = h_resume,
    .sleep = h_sleep,
    .http_call = h_http_call,
    .redis_call = h_redis_call,
    .http_stream = h_http_stream,
    .timer = h_timer,
    .call_cancel = h_call_cancel,
    .stream_start = h_stream_start,
    .stream_write = h_stream_write,
    .redis_eval = h_redis_eval,
    .redis_configured = h_redis_configured,
    .config_consumers = h_config_consumers,
    .shared_get = h_shared_get,
    .shared_set = h_shared_set,
    .shared_incr = h_shared_incr,
    .shared_delete = h_shared_delete,
    .log = h_log,
    .metric_add = h_metric_add,
    .metric_set = h_metric_set,
    .geoip_lookup = h_geoip_lookup,
    .json_parse = h_json_parse,
    .json_dump = h_json_dump,
    .json_free_string = h_json_free_string,
    .json_free = h_json_free,
    .json_type = h_json_type,
    .json_get = h_json_get,
    .json_len = h_json_len,
    .json_at = h_json_at,
    .json_string = h_json_string,
    .json_integer = h_json_integer,
    .json_number = h_json_number,
    .json_bool = h_json_bool,
    .json_member_at = h_json_member_at,
};

/* The key is made before any plugin can see the table. */
const sl_host_t *sl_host_table(void)
{
    pthread_once(&hash_once, hash_seed);
    return &host_table;
}
