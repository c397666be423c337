#include "conn.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "access_log.h"
#include "chain.h"
#include "host.h"
#include "clock.h"
#include "headbuf.h"
#include "log.h"
#include "pathnorm.h"
#include "proxy.h"
#include "reqid.h"

static void conn_readcb(struct bufferevent *bev, void *arg);
static void conn_writecb(struct bufferevent *bev, void *arg);
static void conn_eventcb(struct bufferevent *bev, short events, void *arg);
static void conn_timer_cb(evutil_socket_t fd, short what, void *arg);
static void conn_flush_cb(evutil_socket_t fd, short what, void *arg);
static void conn_queue(sl_conn_t *c, const char *data, size_t n);
static void conn_process_input(sl_conn_t *c);

static const sl_server_opts_t *conn_opts(const sl_conn_t *c) { return &c->w->snap->cfg->server; }

/* The connection's one timer is lazy: each request moves its deadline two
 * or three times (head, keep-alive, none while the request runs), and
 * re-adding a libevent timer each time is a heap update. The event is only
 * re-added when the new deadline is earlier than when it fires; firing
 * early, it looks at the deadline of the moment and waits again if that is
 * later. */
static void timer_fire_at(sl_conn_t *c, int64_t at_ms, int64_t now_ms)
{
    struct timeval tv = sl_tv_ms(at_ms - now_ms);
    evtimer_add(c->timer, &tv);
    c->timer_at_ms = at_ms;
}

static void arm_timer(sl_conn_t *c, int64_t ms)
{
    int64_t now = sl_now_ms();
    c->deadline_ms = now + ms;
    if (c->timer_at_ms == 0 || c->timer_at_ms > c->deadline_ms)
        timer_fire_at(c, c->deadline_ms, now);
}

static void disarm_timer(sl_conn_t *c)
{
    c->deadline_ms = 0;
}

static void format_client_ip(const struct sockaddr *sa, char *out, size_t len)
{
    if (sa->sa_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)len);
    } else if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        /* Dual-stack sockets report IPv4 peers as ::ffff:a.b.c.d; logs and
         * X-Forwarded-For want the plain IPv4 form. */
        if (IN6_IS_ADDR_V4MAPPED(a))
            inet_ntop(AF_INET, &a->s6_addr[12], out, (socklen_t)len);
        else
            inet_ntop(AF_INET6, a, out, (socklen_t)len);
    } else {
        snprintf(out, len, "unix");
    }
}

sl_conn_t *sl_conn_new(sl_worker_t *w, struct bufferevent *bev, const struct sockaddr *sa, bool tls)
{
    sl_conn_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->w = w;
    c->bev = bev;
    c->tls = tls;
    c->timer = evtimer_new(w->base, conn_timer_cb, c);
    c->flush_ev = tls ? NULL : event_new(w->base, -1, 0, conn_flush_cb, c);
    if (!c->timer || (!tls && !c->flush_ev)) {
        if (c->timer)
            event_free(c->timer);
        free(c);
        return NULL;
    }
    format_client_ip(sa, c->client_ip, sizeof c->client_ip);
    const sl_server_opts_t *o = conn_opts(c);
    struct timeval send_tv = sl_tv_ms(o->send_timeout_ms);
    bufferevent_set_timeouts(bev, NULL, &send_tv);
    bufferevent_setcb(bev, conn_readcb, conn_writecb, conn_eventcb, c);
    /* Plain TCP: libevent's write event is enabled only while the socket
     * has refused part of a response (see conn_flush_cb). TLS bytes must
     * go through OpenSSL's bufferevent, which writes as usual. */
    if (!tls)
        bufferevent_disable(bev, EV_WRITE);
    bufferevent_enable(bev, tls ? EV_READ | EV_WRITE : EV_READ);
    arm_timer(c, o->client_header_timeout_ms);
    sl_worker_conn_added(w, c);
    return c;
}

/* ---- request lifetime ---------------------------------------------------- */

/* Ended requests' records (with the first block of their arena) wait in
 * the worker's stock for the next request: a malloc and a free of each per
 * request saved. */

static sl_request_t *request_from_stock(sl_worker_t *w, sl_arena_t *arena)
{
    if (w->n_req_stock == 0) {
        sl_arena_init(arena);
        return malloc(sizeof(sl_request_t));
    }
    sl_request_t *r = w->req_stock[--w->n_req_stock];
    *arena = r->arena;
    return r;
}

static void request_to_stock(sl_worker_t *w, sl_request_t *r)
{
    if (!w->req_stock && SL_WORKER_STOCK_MAX > 0)
        w->req_stock = calloc(SL_WORKER_STOCK_MAX, sizeof *w->req_stock);
    if (!w->req_stock || w->n_req_stock == SL_WORKER_STOCK_MAX) {
        sl_arena_free(&r->arena);
        free(r);
        return;
    }
    sl_arena_reset(&r->arena);
    w->req_stock[w->n_req_stock++] = r;
}

void sl_conn_worker_free(sl_worker_t *w)
{
    for (int i = 0; i < w->n_req_stock; i++) {
        sl_arena_free(&w->req_stock[i]->arena);
        free(w->req_stock[i]);
    }
    free(w->req_stock);
    w->req_stock = NULL;
    w->n_req_stock = 0;
}

static sl_request_t *request_new(sl_conn_t *c)
{
    sl_arena_t arena;
    sl_request_t *r = request_from_stock(c->w, &arena);
    if (!r)
        return NULL;
    /* The header array (4 KiB) is written by the parser before it is read;
     * zeroing it for every request showed up as the top cost in callgrind. */
    memset(r, 0, offsetof(sl_request_t, head));
    memset(&r->head, 0, offsetof(sl_http_request_head_t, headers));
    size_t tail = offsetof(sl_http_request_head_t, headers) + sizeof r->head.headers;
    memset((char *)&r->head + tail, 0, sizeof r->head - tail);
    r->arena = arena;
    r->conn = c;
    r->snap = sl_snapshot_ref(c->w->snap);
    sl_worker_request_started(c->w, r->snap);
    r->t_start_us = sl_now_us();
    r->head.minor = 1;
    r->head.content_length = -1;
    sl_reqid_generate(&c->w->rng, r->request_id);
    c->req = r;
    return r;
}

static void request_log(sl_request_t *r, int status_override)
{
    sl_chain_log(r);
    sl_access_log_write(r->snap->alog, r, status_override);
}

static void request_free(sl_request_t *r)
{
    if (r->proxy)
        sl_proxy_cancel(r);
    sl_host_request_done(r);
    if (r->plugin_body)
        evbuffer_free(r->plugin_body);
    free(r->filter_buf[0]);
    free(r->filter_buf[1]);
    sl_worker_request_done(r->conn->w, r->snap);
    if (r->body)
        evbuffer_free(r->body);
    sl_worker_t *w = r->conn->w;
    sl_snapshot_unref(r->snap);
    request_to_stock(w, r);
}

void sl_conn_free(sl_conn_t *c)
{
    if (c->req) {
        sl_request_t *r = c->req;
        c->req = NULL;
        if (r->head.method)
            request_log(r, r->head_sent ? 0 : 499);
        request_free(r);
    }
    evtimer_del(c->timer);
    event_free(c->timer);
    if (c->flush_ev)
        event_free(c->flush_ev);
    bufferevent_free(c->bev);
    sl_worker_conn_removed(c->w, c);
    free(c);
}

static void request_finish(sl_conn_t *c)
{
    sl_request_t *r = c->req;
    c->req = NULL;
    request_log(r, 0);
    request_free(r);
    if (c->close_after || atomic_load(&c->w->draining)) {
        sl_conn_free(c);
        return;
    }
    c->state = SL_CONN_HEAD;
    c->input_seen = false;
    /* Each of these re-adds libevent's events (a heap update apiece): only
     * when something changed them. */
    if (c->drain_mark) {
        bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
        c->drain_mark = false;
    }
    if (!(bufferevent_get_enabled(c->bev) & EV_READ))
        bufferevent_enable(c->bev, EV_READ);
    arm_timer(c, conn_opts(c)->keepalive_timeout_ms);
    if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
        conn_process_input(c);
}

/* ---- reading requests ---------------------------------------------------- */

static const char *header_lookup(void *arg, const char *name, size_t *len)
{
    const sl_http_header_t *h = sl_request_header(arg, name);
    if (!h)
        return NULL;
    *len = h->value_len;
    return h->value;
}

static bool valid_request_id(const char *v, size_t n)
{
    if (n == 0 || n > 200)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)v[i] < 0x21 || (unsigned char)v[i] > 0x7e)
            return false;
    return true;
}

static void dispatch(sl_conn_t *c, sl_request_t *r)
{
    c->state = SL_CONN_BUSY;
    disarm_timer(c);
    sl_chain_start(r);
}

static void protocol_error(sl_conn_t *c, sl_request_t *r, int status, const char *code,
                           const char *message)
{
    /* After a framing error the byte stream cannot be trusted to find the
     * next request: answer, then close. */
    c->close_after = true;
    c->state = SL_CONN_CLOSING;
    bufferevent_disable(c->bev, EV_READ);
    disarm_timer(c);
    sl_request_error(r, status, code, message);
}

static void head_error(sl_conn_t *c, sl_http_result_t res)
{
    sl_request_t *r = request_new(c);
    if (!r) {
        sl_conn_free(c);
        return;
    }
    r->head.method = "-";
    r->head.method_len = 1;
    switch (res) {
    case SL_HTTP_URI_TOO_LONG:
        protocol_error(c, r, 414, "uri_too_long", "the request line is longer than the limit");
        break;
    case SL_HTTP_HEADERS_TOO_LARGE:
        protocol_error(c, r, 431, "headers_too_large", "the request headers are larger than the limit");
        break;
    case SL_HTTP_NOT_IMPLEMENTED:
        protocol_error(c, r, 501, "not_implemented", "only the chunked transfer coding is supported");
        break;
    case SL_HTTP_VERSION_UNSUPPORTED:
        protocol_error(c, r, 505, "version_not_supported", "only HTTP/1.0 and HTTP/1.1 are supported");
        break;
    default:
        protocol_error(c, r, 400, "bad_request", "malformed request");
        break;
    }
}

/* Returns -1 when the connection was freed (out of memory). */
static int start_request(sl_conn_t *c, const char *buf, size_t consumed)
{
    sl_request_t *r = request_new(c);
    if (!r) {
        sl_conn_free(c);
        return -1;
    }
    const sl_server_opts_t *o = conn_opts(c);
    r->head_copy = sl_arena_strndup(&r->arena, buf, consumed);
    r->head_len = consumed;
    size_t again = 0;
    /* Parse the private copy so every pointer in r->head lives as long as r. */
    if (!r->head_copy ||
        sl_http_parse_request_head(r->head_copy, consumed, (size_t)o->max_uri_size,
                                   (size_t)o->max_header_size, &r->head, &again) != SL_HTTP_DONE) {
        protocol_error(c, r, 400, "bad_request", "malformed request");
        return 0;
    }
    r->bytes_in = consumed;
    r->method_bit = sl_method_bit(r->head.method, r->head.method_len);
    /* Each name ends at its ':' and each value at its CR or trailing
     * whitespace: ending them in place makes every field a C string, so
     * plugins get pointers into the head instead of copies. */
    for (int i = 0; i < r->head.n_headers; i++) {
        sl_http_header_t *h = &r->head.headers[i];
        ((char *)h->name)[h->name_len] = '\0';
        ((char *)h->value)[h->value_len] = '\0';
    }

    const sl_http_header_t *rid = sl_request_header(r, "x-request-id");
    if (rid && valid_request_id(rid->value, rid->value_len)) {
        memcpy(r->request_id, rid->value, rid->value_len);
        r->request_id[rid->value_len] = '\0';
        r->client_sent_id = true;
    }
    if (!r->head.keep_alive || atomic_load(&c->w->draining))
        c->close_after = true;

    r->norm_path = sl_arena_alloc(&r->arena, r->head.path_len + 1);
    if (!r->norm_path ||
        sl_path_normalize(r->head.path, r->head.path_len, r->norm_path, r->head.path_len + 1) < 0) {
        protocol_error(c, r, 400, "bad_request", "invalid request path");
        return 0;
    }

    bool has_body = r->head.chunked || r->head.content_length > 0;
    sl_route_query_t q = {
        .host = r->head.host,
        .host_len = r->head.host_len,
        .method = r->method_bit,
        .path = r->norm_path,
        .path_len = strlen(r->norm_path),
        .header = header_lookup,
        .header_arg = r,
    };
    r->route = sl_router_match(r->snap->router, &q);
    if (!r->route) {
        if (has_body)
            c->close_after = true;
        c->state = SL_CONN_BUSY;
        disarm_timer(c);
        sl_request_error(r, 404, "route_not_found", "no route matches the request");
        return 0;
    }

    r->chain = &r->snap->plugins->chains[r->route->index];
    r->body_limit = r->route->max_body_size > 0 ? r->route->max_body_size : o->max_body_size;
    if (r->head.content_length > r->body_limit) {
        protocol_error(c, r, 413, "body_too_large", "the request body is larger than the limit");
        return 0;
    }
    if (!has_body) {
        dispatch(c, r);
        return 0;
    }
    r->body = evbuffer_new();
    r->body_expected = r->head.chunked ? -1 : r->head.content_length;
    if (r->head.chunked)
        sl_chunked_init(&r->chunked);
    c->state = SL_CONN_BODY;
    if (r->head.expect_continue && r->head.minor == 1)
        conn_queue(c, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    arm_timer(c, o->client_body_timeout_ms);
    return 0;
}

typedef struct body_sink {
    sl_request_t *r;
    bool over;
} body_sink_t;

static void body_emit(void *arg, const char *data, size_t n)
{
    body_sink_t *s = arg;
    if ((int64_t)(evbuffer_get_length(s->r->body) + n) > s->r->body_limit) {
        s->over = true;
        return;
    }
    evbuffer_add(s->r->body, data, n);
}

/* Returns 1 when the body is complete, 0 when more is needed, -1 when the
 * request was answered with an error. */
static int read_body(sl_conn_t *c, sl_request_t *r)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    if (r->body_expected >= 0) {
        size_t have = evbuffer_get_length(r->body);
        size_t need = (size_t)r->body_expected - have;
        size_t avail = evbuffer_get_length(in);
        size_t n = avail < need ? avail : need;
        evbuffer_remove_buffer(in, r->body, n);
        r->bytes_in += n;
        return n == need ? 1 : 0;
    }
    body_sink_t sink = { r, false };
    while (evbuffer_get_length(in) > 0) {
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            break;
        size_t used = 0;
        sl_chunked_result_t res = sl_chunked_feed(&r->chunked, v.iov_base, v.iov_len, &used,
                                                  body_emit, &sink);
        evbuffer_drain(in, used);
        r->bytes_in += used;
        if (sink.over) {
            protocol_error(c, r, 413, "body_too_large", "the request body is larger than the limit");
            return -1;
        }
        if (res == SL_CHUNKED_ERROR) {
            protocol_error(c, r, 400, "bad_request", "malformed chunked request body");
            return -1;
        }
        if (res == SL_CHUNKED_END)
            return 1;
        if (used == 0)
            break;
    }
    return 0;
}

static void conn_process_input(sl_conn_t *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    while (c->state == SL_CONN_HEAD || c->state == SL_CONN_BODY) {
        if (c->state == SL_CONN_HEAD) {
            size_t len = evbuffer_get_length(in);
            if (len == 0)
                return;
            const sl_server_opts_t *o = conn_opts(c);
            if (!c->input_seen) {
                c->input_seen = true;
                arm_timer(c, o->client_header_timeout_ms);
            }
            size_t window = (size_t)o->max_header_size + 4;
            size_t n = len < window ? len : window;
            const char *buf = (const char *)evbuffer_pullup(in, (ssize_t)n);
            sl_http_request_head_t head;
            size_t consumed = 0;
            sl_http_result_t res = sl_http_parse_request_head(
                buf, n, (size_t)o->max_uri_size, (size_t)o->max_header_size, &head, &consumed);
            if (res == SL_HTTP_INCOMPLETE)
                return;
            if (res != SL_HTTP_DONE) {
                head_error(c, res);
                return;
            }
            if (start_request(c, buf, consumed) < 0)
                return;
            evbuffer_drain(in, consumed);
            continue;
        }
        sl_request_t *r = c->req;
        int done = read_body(c, r);
        if (done == 1) {
            dispatch(c, r);
        } else if (done == 0) {
            arm_timer(c, conn_opts(c)->client_body_timeout_ms);
            return;
        }
        return;
    }
}

static void conn_readcb(struct bufferevent *bev, void *arg)
{
    sl_conn_t *c = arg;
    if (c->state == SL_CONN_HEAD || c->state == SL_CONN_BODY) {
        conn_process_input(c);
        return;
    }
    /* Bytes that come while a request runs (the next pipelined requests)
     * wait in the input buffer; past this much, reading stops until the
     * request ends (request_finish enables it again). A read high-water
     * mark on the bufferevent would do the same, but libevent re-adds the
     * read event on every drain of a buffer that has one. */
    size_t limit = (size_t)conn_opts(c)->max_header_size + 16384;
    if (evbuffer_get_length(bufferevent_get_input(bev)) >= limit)
        bufferevent_disable(bev, EV_READ);
}

/* Output written, or below the drain mark: libevent calls this, and so does
 * conn_flush_cb when its direct write took everything. */
static void conn_writecb(struct bufferevent *bev, void *arg)
{
    sl_conn_t *c = arg;
    sl_request_t *r = c->req;
    size_t pending = evbuffer_get_length(bufferevent_get_output(bev));
    if (pending == 0 && !c->tls && (bufferevent_get_enabled(bev) & EV_WRITE))
        bufferevent_disable(bev, EV_WRITE);
    if (!r) {
        if (c->state == SL_CONN_CLOSING && pending == 0)
            sl_conn_free(c);
        return;
    }
    if (r->ended) {
        if (pending == 0) {
            if (c->state == SL_CONN_CLOSING) {
                c->req = NULL;
                request_log(r, 0);
                request_free(r);
                sl_conn_free(c);
            } else {
                request_finish(c);
            }
        }
        return;
    }
    if (r->on_drain) {
        void (*cb)(sl_request_t *) = r->on_drain;
        r->on_drain = NULL;
        bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
        c->drain_mark = false;
        cb(r);
    }
}

/* Responses go out in one direct write at the end of the loop pass that
 * produced them, not one epoll round trip later through libevent's write
 * event: that round trip (arm EPOLLOUT, wake, write, disarm) was three of
 * the thirteen system calls of a proxied request. Deferring to the end of
 * the pass also coalesces a head and its body into one writev and keeps a
 * finished request from starting the next pipelined one inside the call
 * that ended it. */
static void conn_flush_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    sl_conn_t *c = arg;
    c->flush_pending = false;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    if (evbuffer_get_length(out) == 0 || (bufferevent_get_enabled(c->bev) & EV_WRITE))
        return;   /* nothing new, or libevent is already writing */
    /* An error (EPIPE, a reset) leaves the bytes queued: libevent's write
     * then meets it again and reports it to conn_eventcb. */
    /* A socket bufferevent made around an accepted fd keeps its output's
     * front frozen and thaws it only around its own writes; do the same. */
    evbuffer_unfreeze(out, 1);
    (void)evbuffer_write(out, bufferevent_getfd(c->bev));
    evbuffer_freeze(out, 1);
    if (evbuffer_get_length(out) > 0)
        bufferevent_enable(c->bev, EV_WRITE);
    else
        conn_writecb(c->bev, c);
}

static void conn_output_queued(sl_conn_t *c)
{
    if (c->flush_ev && !c->flush_pending) {
        c->flush_pending = true;
        event_active(c->flush_ev, 0, 1);
    }
}

static void conn_queue(sl_conn_t *c, const char *data, size_t n)
{
    evbuffer_add(bufferevent_get_output(c->bev), data, n);
    conn_output_queued(c);
}

static void conn_eventcb(struct bufferevent *bev, short events, void *arg)
{
    (void)bev;
    sl_conn_t *c = arg;
    if (events & BEV_EVENT_CONNECTED)   /* TLS handshake done: nothing to do */
        return;
    if (events & BEV_EVENT_TIMEOUT)
        sl_debug("client %s: send timeout", c->client_ip);
    /* EOF while a request is in flight means the client gave up: cancel
     * the upstream work rather than finish it for nobody. */
    sl_conn_free(c);
}

static void conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    sl_conn_t *c = arg;
    c->timer_at_ms = 0;
    if (c->deadline_ms == 0)
        return;   /* the wait it was set for is over */
    int64_t now = sl_now_ms();
    if (now < c->deadline_ms) {
        timer_fire_at(c, c->deadline_ms, now);
        return;
    }
    if (c->state == SL_CONN_HEAD && !c->input_seen) {
        sl_conn_free(c);   /* idle keep-alive connection: close quietly */
        return;
    }
    if (c->state == SL_CONN_HEAD || c->state == SL_CONN_BODY) {
        sl_request_t *r = c->req ? c->req : request_new(c);
        if (!r) {
            sl_conn_free(c);
            return;
        }
        if (!r->head.method) {
            r->head.method = "-";
            r->head.method_len = 1;
        }
        protocol_error(c, r, 408, "request_timeout",
                       c->state == SL_CONN_BODY ? "the request body was not received in time"
                                                : "the request head was not received in time");
        return;
    }
}

void sl_conn_drain(sl_conn_t *c)
{
    c->close_after = true;
    if (c->state == SL_CONN_HEAD && !c->input_seen && !c->req)
        sl_conn_free(c);
}

/* ---- responses ----------------------------------------------------------- */

const sl_http_header_t *sl_request_header(const sl_request_t *r, const char *name)
{
    return sl_http_find_header(r->head.headers, r->head.n_headers, name);
}

const char *sl_request_client_ip(const sl_request_t *r) { return r->conn->client_ip; }
bool sl_request_is_tls(const sl_request_t *r) { return r->conn->tls; }
const sl_server_opts_t *sl_request_server_opts(const sl_request_t *r) { return &r->snap->cfg->server; }
struct event_base *sl_request_base(const sl_request_t *r) { return r->conn->w->base; }
struct sl_worker *sl_request_worker(const sl_request_t *r) { return r->conn->w; }

size_t sl_request_output_pending(const sl_request_t *r)
{
    return evbuffer_get_length(bufferevent_get_output(r->conn->bev));
}

void sl_request_want_drain(sl_request_t *r, size_t low)
{
    r->conn->drain_mark = true;
    bufferevent_setwatermark(r->conn->bev, EV_WRITE, low, 0);
}

static const char *reason_phrase(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 499: return "Client Closed Request";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

static bool status_has_body(const sl_request_t *r)
{
    if (r->status < 200 || r->status == 204 || r->status == 304)
        return false;
    return !(r->head.method_len == 4 && memcmp(r->head.method, "HEAD", 4) == 0);
}

int sl_request_send_head(sl_request_t *r)
{
    sl_conn_t *c = r->conn;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    sl_chain_header_filter(r);
    /* Body filters may change the length: the body goes out chunked. */
    if (sl_chain_has_body_filter(r) && status_has_body(r))
        sl_hdrs_remove(&r->resp_headers, "content-length");
    const sl_hdr_t *cl = sl_hdrs_get(&r->resp_headers, "content-length");
    if (!status_has_body(r)) {
        r->framing = SL_FRAME_NONE;
    } else if (cl) {
        r->framing = SL_FRAME_LENGTH;
        r->resp_length = strtoll(cl->value, NULL, 10);
    } else if (r->head.minor >= 1) {
        r->framing = SL_FRAME_CHUNKED;
    } else {
        r->framing = SL_FRAME_CLOSE;
        c->close_after = true;
    }
    if (atomic_load(&c->w->draining))
        c->close_after = true;

    sl_headbuf_t hb;
    sl_headbuf_init(&hb);
    /* Every status was checked to be 100-599 where it was set. */
    char status[4] = { (char)('0' + r->status / 100 % 10), (char)('0' + r->status / 10 % 10),
                       (char)('0' + r->status % 10), ' ' };
    sl_headbuf_add(&hb, "HTTP/1.1 ", 9);
    sl_headbuf_add(&hb, status, 4);
    sl_headbuf_str(&hb, reason_phrase(r->status));
    sl_headbuf_add(&hb, "\r\n", 2);
    for (int i = 0; i < r->resp_headers.n; i++) {
        const sl_hdr_t *h = &r->resp_headers.items[i];
        sl_headbuf_field(&hb, h->name, h->name_len, h->value, h->value_len);
    }
    if (r->framing == SL_FRAME_CHUNKED)
        sl_headbuf_add(&hb, "Transfer-Encoding: chunked\r\n", 28);
    sl_headbuf_field(&hb, "X-Request-Id", 12, r->request_id, strlen(r->request_id));
    r->t_head_us = sl_now_us();
    if (r->snap->cfg->server.server_timing) {
        double total_ms = (double)(r->t_head_us - r->t_start_us) / 1000.0;
        double up_ms = (double)r->upstream_us / 1000.0;
        double gw_ms = total_ms - up_ms;
        char timing[96];
        int n = snprintf(timing, sizeof timing, "upstream;dur=%.3f, gateway;dur=%.3f", up_ms,
                         gw_ms < 0 ? 0.0 : gw_ms);
        sl_headbuf_field(&hb, "Server-Timing", 13, timing, (size_t)n);
    }
    if (c->close_after)
        sl_headbuf_add(&hb, "Connection: close\r\n\r\n", 21);
    else if (r->head.minor == 0)
        sl_headbuf_add(&hb, "Connection: keep-alive\r\n\r\n", 26);
    else
        sl_headbuf_add(&hb, "\r\n", 2);
    size_t head_len = hb.len;
    if (sl_headbuf_flush(&hb, out) != 0)
        return -1;
    r->bytes_out += head_len;
    r->head_sent = true;
    conn_output_queued(c);
    return 0;
}

static int write_body(sl_request_t *r, const char *data, size_t n);

int sl_request_send_body(sl_request_t *r, const char *data, size_t n)
{
    if (n == 0 || r->framing == SL_FRAME_NONE)
        return 0;
    if (sl_chain_has_body_filter(r))
        sl_chain_body_filter(r, data, n, false, &data, &n);
    return write_body(r, data, n);
}

static int write_body(sl_request_t *r, const char *data, size_t n)
{
    if (n == 0)
        return 0;
    struct evbuffer *out = bufferevent_get_output(r->conn->bev);
    size_t before = evbuffer_get_length(out);
    if (r->framing == SL_FRAME_CHUNKED) {
        evbuffer_add_printf(out, "%zx\r\n", n);
        evbuffer_add(out, data, n);
        evbuffer_add(out, "\r\n", 2);
    } else {
        evbuffer_add(out, data, n);
    }
    r->bytes_out += evbuffer_get_length(out) - before;
    r->body_bytes += n;
    conn_output_queued(r->conn);
    return 0;
}

int sl_request_send_body_buf(sl_request_t *r, struct evbuffer *buf)
{
    size_t n = evbuffer_get_length(buf);
    if (n == 0)
        return 0;
    if (r->framing == SL_FRAME_NONE) {
        evbuffer_drain(buf, n);
        return 0;
    }
    if (sl_chain_has_body_filter(r)) {
        int rc = sl_request_send_body(r, (const char *)evbuffer_pullup(buf, -1), n);
        evbuffer_drain(buf, n);
        return rc;
    }
    struct evbuffer *out = bufferevent_get_output(r->conn->bev);
    size_t before = evbuffer_get_length(out);
    if (r->framing == SL_FRAME_CHUNKED) {
        evbuffer_add_printf(out, "%zx\r\n", n);
        evbuffer_add_buffer(out, buf);
        evbuffer_add(out, "\r\n", 2);
    } else {
        evbuffer_add_buffer(out, buf);
    }
    r->bytes_out += evbuffer_get_length(out) - before;
    r->body_bytes += n;
    conn_output_queued(r->conn);
    return 0;
}

void sl_request_end(sl_request_t *r)
{
    sl_conn_t *c = r->conn;
    if (r->framing != SL_FRAME_NONE && sl_chain_has_body_filter(r)) {
        const char *tail;
        size_t n;
        sl_chain_body_filter(r, "", 0, true, &tail, &n);
        write_body(r, tail, n);
    }
    if (r->framing == SL_FRAME_CHUNKED) {
        conn_queue(c, "0\r\n\r\n", 5);
        r->bytes_out += 5;
    }
    r->ended = true;
    if (r->framing == SL_FRAME_LENGTH && (int64_t)r->body_bytes != r->resp_length) {
        /* Fewer bytes than promised: the client would wait forever. */
        c->close_after = true;
    }
    if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
        if (c->state == SL_CONN_CLOSING) {
            c->req = NULL;
            request_log(r, 0);
            request_free(r);
            sl_conn_free(c);
        } else {
            request_finish(c);
        }
    }
    /* otherwise conn_writecb finishes once the output has drained */
}

void sl_request_abort(sl_request_t *r)
{
    sl_conn_t *c = r->conn;
    c->req = NULL;
    request_log(r, r->head_sent ? 0 : 502);
    request_free(r);
    sl_conn_free(c);
}

const char *sl_error_type_for(int status)
{
    if (status == 404)
        return "not_found_error";
    if (status == 401)
        return "authentication_error";
    if (status == 403)
        return "permission_error";
    if (status == 429)
        return "rate_limit_error";
    if (status >= 500 && status != 501 && status != 505)
        return "api_error";
    return "invalid_request_error";
}

size_t sl_error_json(char *out, size_t cap, int status, const char *code, const char *message,
                     const char *request_id)
{
    json_t *o = json_pack("{s:{s:s,s:s,s:s,s:s}}", "error", "type", sl_error_type_for(status),
                          "code", code, "message", message, "request_id", request_id);
    size_t n = o ? json_dumpb(o, out, cap, JSON_COMPACT) : 0;
    json_decref(o);
    if (n == 0 || n > cap)
        n = (size_t)snprintf(out, cap, "{\"error\":{\"type\":\"api_error\",\"code\":\"internal\"}}");
    return n;
}

void sl_request_error(sl_request_t *r, int status, const char *code, const char *message)
{
    if (r->head_sent) {
        sl_request_abort(r);
        return;
    }
    char body[1024];
    size_t n = sl_error_json(body, sizeof body, status, code, message, r->request_id);
    char len[24];
    int ln = snprintf(len, sizeof len, "%zu", n);
    r->status = status;
    r->error_code = code;
    sl_hdrs_remove(&r->resp_headers, "content-length");
    sl_hdrs_add(r, &r->resp_headers, "Content-Type", 12, "application/json", 16);
    sl_hdrs_add(r, &r->resp_headers, "Content-Length", 14, len, (size_t)ln);
    sl_request_send_head(r);
    sl_request_send_body(r, body, n);
    sl_request_end(r);
}

/* ---- header lists -------------------------------------------------------- */

int sl_hdrs_add(sl_request_t *r, sl_hdrs_t *h, const char *name, size_t nlen, const char *value,
                size_t vlen)
{
    if (h->n == h->cap) {
        int cap = h->cap ? h->cap * 2 : 16;
        /* Raw: entries are written before they are counted in h->n. */
        sl_hdr_t *items = sl_arena_alloc_raw(&r->arena, sizeof *items * (size_t)cap);
        if (!items)
            return -1;
        if (h->n)
            memcpy(items, h->items, sizeof *items * (size_t)h->n);
        h->items = items;
        h->cap = cap;
    }
    /* One allocation for both, each NUL-terminated. */
    char *text = sl_arena_alloc_raw(&r->arena, nlen + vlen + 2);
    if (!text)
        return -1;
    memcpy(text, name, nlen);
    text[nlen] = '\0';
    memcpy(text + nlen + 1, value, vlen);
    text[nlen + 1 + vlen] = '\0';
    sl_hdr_t *e = &h->items[h->n++];
    e->name = text;
    e->name_len = nlen;
    e->value = text + nlen + 1;
    e->value_len = vlen;
    return 0;
}

const sl_hdr_t *sl_hdrs_get(const sl_hdrs_t *h, const char *name)
{
    size_t n = strlen(name);
    for (int i = 0; i < h->n; i++)
        if (h->items[i].name_len == n && strncasecmp(h->items[i].name, name, n) == 0)
            return &h->items[i];
    return NULL;
}

void sl_hdrs_remove(sl_hdrs_t *h, const char *name)
{
    size_t n = strlen(name);
    int j = 0;
    for (int i = 0; i < h->n; i++) {
        if (h->items[i].name_len == n && strncasecmp(h->items[i].name, name, n) == 0)
            continue;
        h->items[j++] = h->items[i];
    }
    h->n = j;
}
