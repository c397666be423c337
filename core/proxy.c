#include "proxy.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "headbuf.h"
#include "log.h"
#include "netutil.h"
#include "numtext.h"
#include "pool.h"
#include "upstream_tls.h"
#include "worker.h"

#define SL_MAX_RESPONSE_HEAD (64 * 1024)

typedef enum { PX_CONNECTING, PX_WAIT_HEAD, PX_BODY, PX_BACKOFF } px_state_t;

/* Why an attempt failed decides whether it may be retried and what the
 * client hears if it is the last one. */
typedef enum {
    FAIL_CONNECT,         /* refused, unreachable, TLS handshake: never reached the app */
    FAIL_CONNECT_TIMEOUT,
    FAIL_TIMEOUT,         /* sent, no response head in time */
    FAIL_CLOSED,          /* closed or reset before a complete head */
    FAIL_BAD_RESPONSE,    /* not HTTP we can parse */
} fail_kind_t;

typedef struct sl_proxy {
    sl_request_t *r;
    sl_worker_t *w;
    sl_upstream_rt_t *up;
    sl_balancer_t *bal;
    px_state_t state;
    int target;
    bool trial;
    bool in_flight;           /* balancer_start without balancer_done yet */
    bool *tried;
    int retries_left;
    sl_upconn_t *uc;
    bool reused;
    struct event *timer;
    struct evbuffer *up_head;
    struct evbuffer *scratch;
    int64_t t_attempt_us;
    sl_timeouts_t to;
    const sl_retries_t *retry;
    int64_t remaining;
    bool until_close;
    bool chunked;
    bool reusable_after;      /* the upstream may keep the connection */
    sl_chunked_t ch;
    sl_http_response_head_t *rh;
    const char *key;          /* pool key of the target, owned by the snapshot */
} sl_proxy_t;

static void attempt(sl_proxy_t *px);
static void connect_timeout_cb(evutil_socket_t fd, short what, void *arg);
static void px_readcb(struct bufferevent *bev, void *arg);
static void px_eventcb(struct bufferevent *bev, short events, void *arg);

static bool name_is(const char *name, size_t len, const char *lower)
{
    return strlen(lower) == len && strncasecmp(name, lower, len) == 0;
}

/* Runs for every header of every request and response: the length picks
 * the few names worth comparing. */
static bool is_hop_by_hop_name(const char *name, size_t len)
{
#define IS(lit) (strncasecmp(name, lit, sizeof lit - 1) == 0)
    switch (len) {
    case 2: return IS("te");
    case 7: return IS("trailer") || IS("upgrade");
    case 10: return IS("connection") || IS("keep-alive");
    case 16: return IS("proxy-connection");
    case 17: return IS("transfer-encoding");
    case 19: return IS("proxy-authorization");
    default: return false;
    }
#undef IS
}

/* Hop-by-hop by name, or named in the message's Connection header. */
static bool is_hop_by_hop(const char *name, size_t len, const char *conn_value, size_t conn_len)
{
    return is_hop_by_hop_name(name, len) ||
           (conn_value && sl_http_header_has_token_n(conn_value, conn_len, name, len));
}

static void px_release_conn(sl_proxy_t *px, bool reusable)
{
    if (!px->uc)
        return;
    const sl_upstream_t *u = px->up->conf;
    if (reusable)
        sl_pool_put(px->uc, u->keepalive_idle_ms, u->keepalive_max_idle);
    else
        sl_upconn_close(px->uc);
    px->uc = NULL;
}

static void px_balancer_done(sl_proxy_t *px, bool success)
{
    if (!px->in_flight)
        return;
    px->in_flight = false;
    int64_t now = sl_now_us();
    sl_balancer_done(px->bal, px->target, success, px->trial, now - px->t_attempt_us, now / 1000);
}

/* A request's timer and two buffers go back to the worker's stock when it
 * ends, and the next request takes them from there: making and freeing
 * them cost about 1,300 instructions per request. */

typedef struct px_spare {
    struct event *timer;
    struct evbuffer *up_head, *scratch;
} px_spare_t;

struct sl_proxy_stock {
    int n;
    px_spare_t items[SL_WORKER_STOCK_MAX > 0 ? SL_WORKER_STOCK_MAX : 1];
};

static void spare_free(px_spare_t *s)
{
    if (s->timer)
        event_free(s->timer);
    if (s->up_head)
        evbuffer_free(s->up_head);
    if (s->scratch)
        evbuffer_free(s->scratch);
}

/* Fills px's timer and buffers, from the stock when it has some. */
static bool px_take_spare(sl_proxy_t *px)
{
    struct sl_proxy_stock *st = px->w->px_stock;
    if (st && st->n > 0) {
        px_spare_t *s = &st->items[--st->n];
        px->timer = s->timer;
        px->up_head = s->up_head;
        px->scratch = s->scratch;
        event_assign(px->timer, px->w->base, -1, 0, connect_timeout_cb, px);
        return true;
    }
    px->timer = evtimer_new(px->w->base, connect_timeout_cb, px);
    px->up_head = evbuffer_new();
    px->scratch = evbuffer_new();
    return px->timer && px->up_head && px->scratch;
}

static void px_return_spare(sl_proxy_t *px)
{
    px_spare_t s = {px->timer, px->up_head, px->scratch};
    px->timer = NULL;
    px->up_head = px->scratch = NULL;
    if (!s.timer || !s.up_head || !s.scratch) {
        spare_free(&s);
        return;
    }
    evtimer_del(s.timer);
    evbuffer_drain(s.up_head, evbuffer_get_length(s.up_head));
    evbuffer_drain(s.scratch, evbuffer_get_length(s.scratch));
    struct sl_proxy_stock *st = px->w->px_stock;
    if (!st && SL_WORKER_STOCK_MAX > 0)
        st = px->w->px_stock = calloc(1, sizeof *st);
    if (!st || st->n == SL_WORKER_STOCK_MAX) {
        spare_free(&s);
        return;
    }
    st->items[st->n++] = s;
}

void sl_proxy_worker_free(sl_worker_t *w)
{
    struct sl_proxy_stock *st = w->px_stock;
    if (!st)
        return;
    for (int i = 0; i < st->n; i++)
        spare_free(&st->items[i]);
    free(st);
    w->px_stock = NULL;
}

static void px_free(sl_proxy_t *px)
{
    px_release_conn(px, false);
    px_return_spare(px);
    px->r->proxy = NULL;
}

void sl_proxy_cancel(sl_request_t *r)
{
    sl_proxy_t *px = r->proxy;
    if (!px)
        return;
    /* The client left; that says nothing about the target. */
    if (px->in_flight) {
        px->in_flight = false;
        sl_balancer_cancel(px->bal, px->target, px->trial);
    }
    px_free(px);
}

/* ---- building the upstream request ---------------------------------------- */

static void add_header(sl_headbuf_t *b, const char *name, const char *value, size_t vlen)
{
    sl_headbuf_field(b, name, strlen(name), value, vlen);
}

/* Did a plugin set or remove this header for the upstream? */
static bool overridden(const sl_request_t *r, const char *name, size_t len)
{
    for (int i = 0; i < r->up_headers.n; i++)
        if (r->up_headers.items[i].name_len == len &&
            strncasecmp(r->up_headers.items[i].name, name, len) == 0)
            return true;
    return false;
}

static int build_request_head(sl_proxy_t *px, const sl_target_t *t)
{
    sl_request_t *r = px->r;
    const sl_upstream_t *u = px->up->conf;
    sl_headbuf_t hb, *b = &hb;
    sl_headbuf_init(b);
    evbuffer_drain(px->up_head, evbuffer_get_length(px->up_head));
    if (r->up_method)
        sl_headbuf_str(b, r->up_method);
    else
        sl_headbuf_add(b, r->head.method, r->head.method_len);
    sl_headbuf_add(b, " ", 1);
    if (r->up_target)
        sl_headbuf_add(b, r->up_target, r->up_target_len);
    else
        sl_headbuf_add(b, r->head.target, r->head.target_len);
    sl_headbuf_add(b, " HTTP/1.1\r\n", 11);

    if (u->host_header == SL_HOST_FIXED) {
        add_header(b, "Host", u->host_value, strlen(u->host_value));
    } else if (u->host_header == SL_HOST_PRESERVE && r->head.host) {
        add_header(b, "Host", r->head.host, r->head.host_len);
    } else {
        const sl_target_rt_t *trt = &px->up->targets[px->target];
        add_header(b, "Host", trt->authority, trt->authority_len);
    }

    const sl_http_header_t *conn = sl_request_header(r, "connection");
    const sl_http_header_t *xff = NULL;
    for (int i = 0; i < r->head.n_headers; i++) {
        const sl_http_header_t *h = &r->head.headers[i];
        if (is_hop_by_hop(h->name, h->name_len, conn ? conn->value : NULL,
                          conn ? conn->value_len : 0))
            continue;
        if (name_is(h->name, h->name_len, "x-forwarded-for")) {
            if (!xff)
                xff = h;
            continue;
        }
        if (overridden(r, h->name, h->name_len))
            continue;
        if (name_is(h->name, h->name_len, "host") ||
            name_is(h->name, h->name_len, "x-forwarded-proto") ||
            name_is(h->name, h->name_len, "x-forwarded-host") ||
            name_is(h->name, h->name_len, "x-request-id") ||
            name_is(h->name, h->name_len, "content-length") ||
            name_is(h->name, h->name_len, "expect"))
            continue;
        sl_headbuf_field(b, h->name, h->name_len, h->value, h->value_len);
    }
    const char *ip = sl_request_client_ip(r);
    if (xff) {
        sl_headbuf_add(b, "X-Forwarded-For: ", 17);
        sl_headbuf_add(b, xff->value, xff->value_len);
        sl_headbuf_add(b, ", ", 2);
        sl_headbuf_str(b, ip);
        sl_headbuf_add(b, "\r\n", 2);
    } else {
        add_header(b, "X-Forwarded-For", ip, strlen(ip));
    }
    const char *proto = sl_request_is_tls(r) ? "https" : "http";
    add_header(b, "X-Forwarded-Proto", proto, strlen(proto));
    if (r->head.host)
        add_header(b, "X-Forwarded-Host", r->head.host, r->head.host_len);
    add_header(b, "X-Request-Id", r->request_id, strlen(r->request_id));
    for (int i = 0; i < r->up_headers.n; i++) {   /* set by plugins; NULL value = removed */
        const sl_hdr_t *h = &r->up_headers.items[i];
        if (h->value)
            sl_headbuf_field(b, h->name, h->name_len, h->value, h->value_len);
    }
    if (r->body) {
        sl_headbuf_add(b, "Content-Length: ", 16);
        sl_headbuf_uint(b, evbuffer_get_length(r->body));
        sl_headbuf_add(b, "\r\n", 2);
    } else if (r->head.content_length == 0) {
        sl_headbuf_add(b, "Content-Length: 0\r\n", 19);
    }
    sl_headbuf_add(b, "\r\n", 2);
    return sl_headbuf_flush(b, px->up_head);
}

/* Finds cookie `name` in a Cookie header ("a=1; b=2"). */
static int cookie_value(const char *h, size_t len, const char *name, char *out, size_t cap,
                        size_t *out_len)
{
    size_t nlen = strlen(name);
    size_t i = 0;
    while (i < len) {
        while (i < len && (h[i] == ' ' || h[i] == ';'))
            i++;
        size_t start = i;
        while (i < len && h[i] != ';')
            i++;
        const char *pair = h + start;
        size_t plen = i - start;
        if (plen > nlen && pair[nlen] == '=' && memcmp(pair, name, nlen) == 0) {
            size_t vlen = plen - nlen - 1;
            if (vlen >= cap)
                return -1;
            memcpy(out, pair + nlen + 1, vlen);
            out[vlen] = '\0';
            *out_len = vlen;
            return 0;
        }
    }
    return -1;
}

/* ---- failure, retry, success ---------------------------------------------- */

static bool method_idempotent(unsigned bit)
{
    return (bit & (SL_M_GET | SL_M_HEAD | SL_M_PUT | SL_M_DELETE | SL_M_OPTIONS | SL_M_TRACE)) != 0;
}

static void backoff_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    attempt(arg);
}

static bool may_retry(sl_proxy_t *px, bool request_reached_app)
{
    sl_request_t *r = px->r;
    if (px->retries_left <= 0)
        return false;
    if (request_reached_app && !method_idempotent(r->method_bit) && !px->retry->non_idempotent)
        return false;
    sl_retry_budget_t *budget = &px->up->budgets[px->w->id];
    return sl_retry_budget_take(budget, px->retry->budget_percent, sl_now_ms());
}

static void schedule_retry(sl_proxy_t *px)
{
    px->retries_left--;
    px->r->retries++;
    px->state = PX_BACKOFF;
    evtimer_del(px->timer);
    int64_t ms = sl_retry_backoff_ms(px->r->retries - 1, px->retry->backoff_ms,
                                     px->retry->max_backoff_ms, &px->w->rng);
    event_assign(px->timer, px->w->base, -1, 0, backoff_cb, px);
    struct timeval tv = sl_tv_ms(ms);
    evtimer_add(px->timer, &tv);
}

static void respond_error(sl_proxy_t *px, int status, const char *code, const char *msg)
{
    sl_request_t *r = px->r;
    px_free(px);
    sl_request_error(r, status, code, msg);
}

static void attempt_failed(sl_proxy_t *px, fail_kind_t kind, const char *detail)
{
    sl_request_t *r = px->r;
    const sl_target_t *t = &px->up->conf->targets[px->target];
    sl_warn("request %s: upstream %s: %s", r->request_id, t->name, detail);
    px_release_conn(px, false);
    evtimer_del(px->timer);
    px_balancer_done(px, false);
    r->upstream_name = t->name;
    bool reached = kind != FAIL_CONNECT && kind != FAIL_CONNECT_TIMEOUT;
    if (may_retry(px, reached)) {
        schedule_retry(px);
        return;
    }
    switch (kind) {
    case FAIL_CONNECT:
        respond_error(px, 502, "upstream_error", "could not connect to the upstream");
        break;
    case FAIL_CONNECT_TIMEOUT:
        respond_error(px, 504, "upstream_timeout", "timed out connecting to the upstream");
        break;
    case FAIL_TIMEOUT:
        respond_error(px, 504, "upstream_timeout", "the upstream did not answer in time");
        break;
    case FAIL_CLOSED:
        respond_error(px, 502, "upstream_error",
                      "the upstream closed the connection before a complete response");
        break;
    case FAIL_BAD_RESPONSE:
        respond_error(px, 502, "upstream_error", "the upstream sent an invalid response");
        break;
    }
}

static void finish_ok(sl_proxy_t *px, bool reusable)
{
    sl_request_t *r = px->r;
    if (px->uc && evbuffer_get_length(bufferevent_get_input(px->uc->bev)) > 0)
        reusable = false;
    px_release_conn(px, reusable);
    px_free(px);
    sl_request_end(r);
}

static void upstream_truncated(sl_proxy_t *px, const char *why)
{
    sl_request_t *r = px->r;
    sl_warn("request %s: upstream %s: %s after the response started", r->request_id,
            r->upstream_name ? r->upstream_name : "?", why);
    px_free(px);
    sl_request_abort(r);
}

/* ---- connecting ------------------------------------------------------------ */

static void connect_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    attempt_failed(arg, FAIL_CONNECT_TIMEOUT, "connect timed out");
}

static void send_request(sl_proxy_t *px)
{
    struct bufferevent *bev = px->uc->bev;
    px->state = PX_WAIT_HEAD;
    evtimer_del(px->timer);
    sl_upconn_timeouts(px->uc, px->to.read_ms, px->to.send_ms);
    bufferevent_setcb(bev, px_readcb, NULL, px_eventcb, px);
    /* Upstream connections keep the default read watermarks throughout, and
     * a pooled one is already reading (set_timeouts above re-armed it):
     * each needless enable or disable re-adds libevent's events. */
    short enabled = bufferevent_get_enabled(bev);
    if (enabled & EV_WRITE)
        bufferevent_disable(bev, EV_WRITE);
    struct evbuffer *out = bufferevent_get_output(bev);
    evbuffer_add_buffer_reference(out, px->up_head);
    if (px->r->body)
        evbuffer_add_buffer_reference(out, px->r->body);
    if (!(enabled & EV_READ))
        bufferevent_enable(bev, EV_READ);
    sl_bev_send(bev, px->up->conf->targets[px->target].tls);
}

static int open_connection(sl_proxy_t *px, const sl_target_t *t)
{
    const sl_upstream_t *u = px->up->conf;
    struct event_base *base = px->w->base;
    int flags = BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS;
    struct bufferevent *bev;
    if (t->tls) {
        SSL *ssl = sl_upstream_tls_ssl(px->up->ssl_ctx, u, t);
        if (!ssl)
            return -1;
        bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_CONNECTING, flags);
        if (bev)
            bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    } else {
        bev = bufferevent_socket_new(base, -1, flags);
    }
    if (!bev)
        return -1;
    px->uc = sl_upconn_new(px->w->pool, px->key, bev);
    if (!px->uc) {
        bufferevent_free(bev);
        return -1;
    }
    px->reused = false;
    px->state = PX_CONNECTING;
    bufferevent_setcb(bev, NULL, NULL, px_eventcb, px);
    evtimer_del(px->timer);
    event_assign(px->timer, base, -1, 0, connect_timeout_cb, px);
    struct timeval tv = sl_tv_ms(px->to.connect_ms);
    evtimer_add(px->timer, &tv);

    char addr[300];
    snprintf(addr, sizeof addr, strchr(t->host, ':') ? "[%s]:%d" : "%s:%d", t->host, t->port);
    struct sockaddr_storage ss;
    int sslen = sizeof ss;
    int rc;
    if (evutil_parse_sockaddr_port(addr, (struct sockaddr *)&ss, &sslen) == 0)
        rc = bufferevent_socket_connect(bev, (struct sockaddr *)&ss, sslen);
    else
        rc = bufferevent_socket_connect_hostname(bev, px->w->dns, AF_UNSPEC, t->host, t->port);
    return rc;
}

static void attempt(sl_proxy_t *px)
{
    sl_request_t *r = px->r;
    const sl_upstream_t *u = px->up->conf;
    int64_t now_ms = sl_now_ms();

    const char *key = NULL;
    size_t key_len = 0;
    char cookie_val[256];
    if (u->balance == SL_BALANCE_HASH) {
        if (u->hash_on == SL_HASH_IP) {
            key = sl_request_client_ip(r);
            key_len = strlen(key);
        } else if (u->hash_on == SL_HASH_HEADER) {
            const sl_http_header_t *h = sl_request_header(r, u->hash_key);
            if (h) {
                key = h->value;
                key_len = h->value_len;
            }
        } else {
            const sl_http_header_t *h = sl_request_header(r, "cookie");
            if (h && cookie_value(h->value, h->value_len, u->hash_key, cookie_val,
                                     sizeof cookie_val, &key_len) == 0)
                key = cookie_val;
        }
    }
    bool trial = false;
    int idx = sl_balancer_pick(px->bal, key, key_len, px->tried, now_ms, &px->w->rng, &trial);
    if (idx < 0 && r->retries > 0)   /* every target tried once: allow a repeat */
        idx = sl_balancer_pick(px->bal, key, key_len, NULL, now_ms, &px->w->rng, &trial);
    if (idx < 0) {
        int64_t ms = sl_health_retry_after_ms(px->up->health, now_ms);
        char ra[SL_INT_TEXT_MAX];
        size_t n = sl_format_int64(ms <= 1000 ? 1 : (ms + 999) / 1000, ra);
        sl_hdrs_add(r, &r->resp_headers, "Retry-After", 11, ra, n);
        respond_error(px, 503, "no_healthy_upstream", "no upstream target is available");
        return;
    }
    const sl_target_t *t = &u->targets[idx];
    px->target = idx;
    px->trial = trial;
    px->tried[idx] = true;
    px->in_flight = true;
    sl_balancer_start(px->bal, idx);
    px->t_attempt_us = sl_now_us();
    if (build_request_head(px, t) != 0) {
        attempt_failed(px, FAIL_CONNECT, "out of memory building the request");
        return;
    }
    px->key = px->up->targets[idx].pool_key;

    px->uc = sl_pool_get(px->w->pool, px->key);
    if (px->uc) {
        px->reused = true;
        send_request(px);
        return;
    }
    if (open_connection(px, t) != 0)
        attempt_failed(px, FAIL_CONNECT, "cannot open a connection");
}

/* ---- response -------------------------------------------------------------- */

static void emit_chunk_data(void *arg, const char *data, size_t n)
{
    sl_proxy_t *px = arg;
    sl_request_send_body(px->r, data, n);
}

static void px_resume(sl_request_t *r)
{
    sl_proxy_t *px = r->proxy;
    if (px && px->uc) {
        bufferevent_enable(px->uc->bev, EV_READ);
        px_readcb(px->uc->bev, px);
    }
}

/* Returns true when the body is complete. */
static bool forward_body(sl_proxy_t *px, bool *bad)
{
    sl_request_t *r = px->r;
    struct evbuffer *in = bufferevent_get_input(px->uc->bev);
    if (px->chunked) {
        while (evbuffer_get_length(in) > 0) {
            struct evbuffer_iovec v;
            if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
                break;
            size_t used = 0;
            sl_chunked_result_t res =
                sl_chunked_feed(&px->ch, v.iov_base, v.iov_len, &used, emit_chunk_data, px);
            evbuffer_drain(in, used);
            if (res == SL_CHUNKED_ERROR) {
                *bad = true;
                return false;
            }
            if (res == SL_CHUNKED_END)
                return true;
            if (used == 0)
                break;
        }
        return false;
    }
    if (px->until_close) {
        sl_request_send_body_buf(r, in);
        return false;
    }
    size_t avail = evbuffer_get_length(in);
    if ((int64_t)avail <= px->remaining) {
        px->remaining -= (int64_t)avail;
        sl_request_send_body_buf(r, in);
    } else {
        evbuffer_remove_buffer(in, px->scratch, (size_t)px->remaining);
        px->remaining = 0;
        sl_request_send_body_buf(r, px->scratch);
    }
    return px->remaining == 0;
}

static void continue_body(sl_proxy_t *px)
{
    bool bad = false;
    if (forward_body(px, &bad)) {
        finish_ok(px, px->reusable_after);
        return;
    }
    if (bad) {
        upstream_truncated(px, "malformed chunked body");
        return;
    }
    size_t limit = (size_t)sl_request_server_opts(px->r)->max_response_buffer;
    if (sl_request_output_pending(px->r) > limit) {
        /* The client reads slower than the upstream sends: stop reading the
         * upstream until the client has taken half of what is queued. */
        bufferevent_disable(px->uc->bev, EV_READ);
        px->r->on_drain = px_resume;
        sl_request_want_drain(px->r, limit / 2);
    }
}

static void deliver_head(sl_proxy_t *px, const sl_http_response_head_t *rh)
{
    sl_request_t *r = px->r;
    r->status = rh->status;
    const sl_http_header_t *conn = sl_http_find_header(rh->headers, rh->n_headers, "connection");
    for (int i = 0; i < rh->n_headers; i++) {
        const sl_http_header_t *h = &rh->headers[i];
        if (is_hop_by_hop(h->name, h->name_len, conn ? conn->value : NULL,
                          conn ? conn->value_len : 0))
            continue;
        if (name_is(h->name, h->name_len, "x-request-id"))
            continue;
        if (name_is(h->name, h->name_len, "content-length") &&
            (rh->chunked || rh->content_length < 0))
            continue;
        if (name_is(h->name, h->name_len, "content-length")) {
            /* the parser has folded duplicates into one value */
            char v[SL_INT_TEXT_MAX];
            size_t n = sl_format_int64(rh->content_length, v);
            sl_hdrs_add(r, &r->resp_headers, "Content-Length", 14, v, n);
            continue;
        }
        sl_hdrs_add(r, &r->resp_headers, h->name, h->name_len, h->value, h->value_len);
    }
    bool has_body = sl_http_response_has_body(r->head.method, r->head.method_len, rh->status);
    px->chunked = has_body && rh->chunked;
    px->until_close = has_body && !rh->chunked && rh->content_length < 0;
    px->remaining = has_body && rh->content_length > 0 ? rh->content_length : 0;
    px->reusable_after = rh->keep_alive && !px->until_close;
    if (px->chunked)
        sl_chunked_init(&px->ch);
    sl_request_send_head(r);
}

static bool status_counts_as_failure(const sl_proxy_t *px, int status)
{
    if (status == 502 || status == 503 || status == 504)
        return true;
    for (int i = 0; i < px->retry->n_on_status; i++)
        if (px->retry->on_status[i] == status)
            return true;
    return false;
}

static void on_head(sl_proxy_t *px, const sl_http_response_head_t *rh, size_t consumed)
{
    sl_request_t *r = px->r;
    const sl_target_t *t = &px->up->conf->targets[px->target];
    r->upstream_us += sl_now_us() - px->t_attempt_us;
    r->upstream_name = t->name;
    bool failed = status_counts_as_failure(px, rh->status);
    if (sl_retry_status_allowed(px->retry, r->method_bit, rh->status) && px->retries_left > 0 &&
        may_retry(px, true)) {
        px_balancer_done(px, false);
        px_release_conn(px, false);
        schedule_retry(px);
        return;
    }
    px_balancer_done(px, !failed);
    deliver_head(px, rh);   /* rh points into the input buffer: drain after */
    evbuffer_drain(bufferevent_get_input(px->uc->bev), consumed);
    px->state = PX_BODY;
    if (!px->chunked && !px->until_close && px->remaining == 0) {
        finish_ok(px, px->reusable_after);
        return;
    }
    continue_body(px);
}

static void px_readcb(struct bufferevent *bev, void *arg)
{
    sl_proxy_t *px = arg;
    if (px->state == PX_BODY) {
        continue_body(px);
        return;
    }
    if (px->state != PX_WAIT_HEAD)
        return;
    struct evbuffer *in = bufferevent_get_input(bev);
    for (;;) {
        size_t len = evbuffer_get_length(in);
        size_t n = len < SL_MAX_RESPONSE_HEAD ? len : SL_MAX_RESPONSE_HEAD;
        const char *buf = (const char *)evbuffer_pullup(in, (ssize_t)n);
        /* One head struct per request (it is large: 128 header slots), not
         * one per read. */
        if (!px->rh)
            px->rh = sl_arena_alloc_raw(&px->r->arena, sizeof *px->rh);
        sl_http_response_head_t *rh = px->rh;
        size_t consumed = 0;
        sl_http_result_t res =
            rh ? sl_http_parse_response_head(buf, n, SL_MAX_RESPONSE_HEAD, rh, &consumed)
               : SL_HTTP_BAD_REQUEST;
        if (res == SL_HTTP_INCOMPLETE)
            return;
        if (res != SL_HTTP_DONE) {
            attempt_failed(px, FAIL_BAD_RESPONSE, "malformed response head");
            return;
        }
        if (rh->status >= 100 && rh->status < 200) {
            if (rh->status == 101) {
                attempt_failed(px, FAIL_BAD_RESPONSE, "protocol upgrade is not supported");
                return;
            }
            evbuffer_drain(in, consumed);   /* interim response: the real one follows */
            continue;
        }
        on_head(px, rh, consumed);
        return;
    }
}

static void px_eventcb(struct bufferevent *bev, short events, void *arg)
{
    sl_proxy_t *px = arg;
    if (px->state == PX_CONNECTING) {
        if (events & BEV_EVENT_CONNECTED) {
            sl_socket_nodelay(bufferevent_getfd(bev));
            send_request(px);
            return;
        }
        char why[256];
        if (px->up->conf->targets[px->target].tls)
            sl_upstream_tls_error(bufferevent_openssl_get_ssl(bev), why, sizeof why);
        else
            snprintf(why, sizeof why, "connect failed: %s",
                     evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
        attempt_failed(px, FAIL_CONNECT, why);
        return;
    }
    if (px->state == PX_WAIT_HEAD) {
        bool nothing_read = evbuffer_get_length(bufferevent_get_input(bev)) == 0;
        if ((events & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) && px->reused && nothing_read) {
            /* A pooled connection the upstream closed as we reused it: the
             * request never reached the application, so try a fresh one
             * without counting it as a failure or a retry. */
            px_release_conn(px, false);
            if (open_connection(px, &px->up->conf->targets[px->target]) != 0)
                attempt_failed(px, FAIL_CONNECT, "cannot open a connection");
            return;
        }
        if (events & BEV_EVENT_TIMEOUT)
            attempt_failed(px, FAIL_TIMEOUT, "read timed out waiting for the response head");
        else
            attempt_failed(px, FAIL_CLOSED, "connection closed before the response head");
        return;
    }
    if (px->state == PX_BODY) {
        if (events & BEV_EVENT_EOF) {
            bool bad = false;   /* take what arrived with the close */
            if (forward_body(px, &bad) || (!bad && px->until_close)) {
                finish_ok(px, false);
                return;
            }
        }
        upstream_truncated(px, (events & BEV_EVENT_TIMEOUT) ? "read timeout" : "connection lost");
    }
}

/* ---- entry ----------------------------------------------------------------- */

void sl_proxy_start(sl_request_t *r)
{
    sl_worker_t *w = sl_request_worker(r);
    const sl_route_t *route = r->route;
    const sl_upstream_t *u = route->upstream;
    sl_proxy_t *px = sl_arena_alloc(&r->arena, sizeof *px);
    if (!px) {
        sl_request_error(r, 500, "internal_error", "out of memory");
        return;
    }
    px->r = r;
    px->w = w;
    px->up = &r->snap->upstreams[u->index];
    px->bal = px->up->balancers[w->id];
    px->tried = sl_arena_alloc(&r->arena, sizeof(bool) * (size_t)u->n_targets);
    px->to = u->timeouts;
    if (route->timeouts.connect_ms)
        px->to.connect_ms = route->timeouts.connect_ms;
    if (route->timeouts.send_ms)
        px->to.send_ms = route->timeouts.send_ms;
    if (route->timeouts.read_ms)
        px->to.read_ms = route->timeouts.read_ms;
    px->retry = route->retries.set ? &route->retries : &u->retries;
    px->retries_left = px->retry->attempts;
    bool spare = px_take_spare(px);
    r->proxy = px;
    if (!px->tried || !spare) {
        respond_error(px, 500, "internal_error", "out of memory");
        return;
    }
    sl_retry_budget_on_request(&px->up->budgets[w->id], sl_now_ms());
    attempt(px);
}
