#include "http_client.h"
#include "netutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "clock.h"
#include "http1.h"
#include "numtext.h"
#include "pool.h"

#define MAX_HOST 253            /* longest DNS name */
#define MAX_METHOD 32
#define MAX_TARGET (64 * 1024)  /* servers refuse far shorter request lines; this only keeps lengths sane */
#define MAX_RESPONSE_HEAD (64 * 1024)
#define MAX_TIMEOUT_MS ((int64_t)7 * 24 * 3600 * 1000)
/* Plugins call few distinct services; idle connections to them are cheap and
 * shorter-lived than most servers' keep-alive timeouts, so a close racing our
 * reuse is rare (and retried once when it happens). The idle bound is per
 * service per worker and must exceed the calls in flight at once, or a burst
 * closes connections it will reopen a moment later (ai-proxy makes one call
 * per client request). */
#define POOL_IDLE_MS 30000
#define POOL_MAX_IDLE 256
/* Each distinct (verify, ca_file) keeps a context for the life of the
 * process; the bound stops a plugin that builds ca_file names from growing it
 * without end. */
#define MAX_TLS_CONTEXTS 32

/* ---- shared TLS contexts ---------------------------------------------------- */

typedef struct tls_entry {
    bool verify;
    char *ca_file;              /* NULL = system store (or verify off) */
    SSL_CTX *ctx;
    struct tls_entry *next;
} tls_entry_t;

/* Workers are threads; an SSL_CTX is safe to share once configured. */
static pthread_mutex_t tls_lock = PTHREAD_MUTEX_INITIALIZER;
static tls_entry_t *tls_entries;
static int n_tls_entries;

static SSL_CTX *tls_ctx_new(bool verify, const char *ca_file, char *err, size_t err_len)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        snprintf(err, err_len, "tls: cannot create a context");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if (!verify) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
        return ctx;
    }
    int ok = ca_file ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL) : SSL_CTX_set_default_verify_paths(ctx);
    if (ok != 1) {
        /* The first error is the cause (often the system's); later ones
         * only say which layer passed it on. */
        unsigned long e = ERR_peek_error();
        char sys[128];
        const char *why = ERR_SYSTEM_ERROR(e) ? strerror_r((int)ERR_GET_REASON(e), sys, sizeof sys)
                                              : ERR_reason_error_string(e);
        snprintf(err, err_len, "tls: cannot load %s: %s", ca_file ? ca_file : "the system CA store",
                 why ? why : "unknown error");
        ERR_clear_error();
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    return ctx;
}

/* The shared context for (verify, ca_file); the cache keeps it until
 * sl_http_client_shutdown. A failed load is not cached, so a CA file that
 * appears later is picked up. */
static SSL_CTX *tls_ctx_get(bool verify, const char *ca_file, char *err, size_t err_len)
{
    if (!verify)
        ca_file = NULL;
    pthread_mutex_lock(&tls_lock);
    SSL_CTX *ctx = NULL;
    for (tls_entry_t *e = tls_entries; e; e = e->next) {
        if (e->verify == verify &&
            (e->ca_file == ca_file || (e->ca_file && ca_file && strcmp(e->ca_file, ca_file) == 0))) {
            ctx = e->ctx;
            break;
        }
    }
    if (!ctx) {
        tls_entry_t *e = NULL;
        if (n_tls_entries >= MAX_TLS_CONTEXTS)
            snprintf(err, err_len, "tls: too many distinct ca_file values");
        else if (!(e = calloc(1, sizeof *e)) || (ca_file && !(e->ca_file = strdup(ca_file))))
            snprintf(err, err_len, "out of memory");
        else if ((e->ctx = tls_ctx_new(verify, ca_file, err, err_len))) {
            e->verify = verify;
            e->next = tls_entries;
            tls_entries = e;
            n_tls_entries++;
            ctx = e->ctx;
            e = NULL;
        }
        if (e) {
            free(e->ca_file);
            free(e);
        }
    }
    pthread_mutex_unlock(&tls_lock);
    return ctx;
}

void sl_http_client_shutdown(void)
{
    pthread_mutex_lock(&tls_lock);
    while (tls_entries) {
        tls_entry_t *e = tls_entries;
        tls_entries = e->next;
        SSL_CTX_free(e->ctx);
        free(e->ca_file);
        free(e);
    }
    n_tls_entries = 0;
    pthread_mutex_unlock(&tls_lock);
}

/* ---- validating the call ---------------------------------------------------- */

/* A C string that is a token of at most max bytes. */
static bool is_token(const char *s, size_t max)
{
    size_t n = strnlen(s, max == SIZE_MAX ? SIZE_MAX : max + 1);
    return n <= max && sl_http_is_token(s, n);
}

static bool is_field_value(const char *s) { return sl_http_is_field_value(s, strlen(s)); }

static bool eq_nocase(const char *a, const char *b)
{
    for (; *a && *b; a++, b++) {
        unsigned char x = (unsigned char)*a, y = (unsigned char)*b;
        if (x >= 'A' && x <= 'Z')
            x = (unsigned char)(x + 32);
        if (y >= 'A' && y <= 'Z')
            y = (unsigned char)(y + 32);
        if (x != y)
            return false;
    }
    return *a == *b;
}

/* The client owns the message framing and the connection, so these request
 * headers from the caller are dropped rather than allowed to contradict it. */
static bool client_owned_header(const char *name)
{
    static const char *const owned[] = {"content-length", "transfer-encoding", "connection", "keep-alive",
                                        "te", "trailer", "upgrade", "proxy-connection"};
    for (size_t i = 0; i < sizeof owned / sizeof owned[0]; i++)
        if (eq_nocase(name, owned[i]))
            return true;
    return false;
}

typedef struct url {
    bool tls;
    bool ipv6;
    char host[MAX_HOST + 1];    /* without IPv6 brackets */
    int port;
    bool explicit_port;
    const char *target;         /* path and query, into the caller's url (so only while the request is
                                   built); "" means "/" */
    size_t target_len;
} url_t;

static bool starts_nocase(const char *s, const char *prefix)
{
    for (; *prefix; s++, prefix++) {
        unsigned char ch = (unsigned char)*s;
        if (ch >= 'A' && ch <= 'Z')
            ch = (unsigned char)(ch + 32);
        if (ch != (unsigned char)*prefix)
            return false;
    }
    return true;
}

static bool is_host_char(unsigned char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '-' ||
           ch == '.' || ch == '_';
}

/* scheme "://" host [":" port] [path] ["?" query] ["#" fragment]; no
 * userinfo (credentials belong in headers). The fragment is never sent. */
static int parse_url(const char *s, url_t *u)
{
    memset(u, 0, sizeof *u);
    if (starts_nocase(s, "http://")) {
        s += 7;
    } else if (starts_nocase(s, "https://")) {
        u->tls = true;
        s += 8;
    } else {
        return -1;
    }
    const char *host = s, *host_end;
    if (*s == '[') {
        host = ++s;
        while (*s && *s != ']')
            s++;
        if (*s != ']')
            return -1;
        host_end = s++;
        u->ipv6 = true;
    } else {
        while (is_host_char((unsigned char)*s))
            s++;
        host_end = s;
    }
    size_t host_len = (size_t)(host_end - host);
    if (host_len == 0 || host_len > MAX_HOST)
        return -1;
    memcpy(u->host, host, host_len);
    u->host[host_len] = '\0';
    if (u->ipv6) {
        struct in6_addr a6;
        if (inet_pton(AF_INET6, u->host, &a6) != 1)
            return -1;
    }
    u->port = u->tls ? 443 : 80;
    if (*s == ':') {
        s++;
        int port = 0, digits = 0;
        while (*s >= '0' && *s <= '9' && digits < 6) {
            port = port * 10 + (*s++ - '0');
            digits++;
        }
        if (digits == 0 || port < 1 || port > 65535)
            return -1;
        u->port = port;
        u->explicit_port = true;
    }
    if (*s && *s != '/' && *s != '?' && *s != '#')
        return -1;
    u->target = s;
    while (*s && *s != '#') {
        unsigned char ch = (unsigned char)*s;
        /* A request target is visible ASCII: anything else would either break
         * the request line or be a byte the server must reject anyway. */
        if (ch <= 0x20 || ch >= 0x7f)
            return -1;
        s++;
    }
    u->target_len = (size_t)(s - u->target);
    return u->target_len <= MAX_TARGET ? 0 : -1;
}

static bool is_ip_literal(const char *host)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

/* ---- the exchange ----------------------------------------------------------- */

typedef enum {
    ST_CONNECTING,      /* name lookup and TCP connect */
    ST_HANDSHAKE,       /* TLS */
    ST_WAIT_HEAD,       /* request sent (or being sent), no complete response head yet */
    ST_BODY,
    ST_FAILED,          /* the error waits for the zero-delay timer */
} state_t;

typedef enum { BODY_NONE, BODY_LENGTH, BODY_CHUNKED, BODY_UNTIL_CLOSE } body_mode_t;

struct sl_http_client_req {
    struct event_base *base;
    struct evdns_base *dns;
    sl_pool_t *pool;
    sl_http_client_cb cb;       /* buffered mode */
    sl_http_stream_cbs_t scbs;  /* stream mode */
    bool stream;
    void *arg;
    /* The deadline (the whole exchange; in stream mode the head, then each
     * wait for body bytes), or the delivery of an error. */
    struct event *timer;
    int64_t idle_ms;            /* stream mode */
    state_t state;
    const char *error;          /* with ST_FAILED */
    bool in_callback;           /* inside cb or on_end: the handle is freed when it returns */
    bool in_piece_cb;           /* inside on_head or on_data */
    bool cancelled;             /* cancel was called from there */

    url_t url;
    char method[MAX_METHOD + 1];
    char key[MAX_HOST + 64];    /* pool key */
    SSL_CTX *ssl_ctx;           /* shared; NULL for http */
    bool tls_verify;
    struct evbuffer *request;   /* the serialised request, kept for a retry */
    size_t max_body;

    struct bufferevent *bev;    /* the connection, NULL when none */
    sl_upconn_t *uc;            /* its pool wrapper when it came from the pool */
    bool reused;                /* the current connection came from the pool */
    bool retried;
    bool got_bytes;             /* any response byte arrived on the current connection */

    int status;
    bool reusable;
    body_mode_t mode;
    uint64_t remaining;         /* BODY_LENGTH */
    sl_chunked_t chunked;
    bool out_of_memory;         /* set by the chunked emitter */
    char *header_block;
    const char **headers;
    int n_headers;
    struct evbuffer *body;

    char errbuf[320];
};

static const char *const no_headers[] = {NULL};

static void conn_release(sl_http_client_req_t *req, bool reusable)
{
    if (!req->bev)
        return;
    bufferevent_setcb(req->bev, NULL, NULL, NULL, NULL);
    if (reusable && req->pool) {
        if (!req->uc)
            req->uc = sl_upconn_new(req->pool, req->key, req->bev);
        if (req->uc) {
            sl_pool_put(req->uc, POOL_IDLE_MS, POOL_MAX_IDLE);
            req->uc = NULL;
            req->bev = NULL;
            return;
        }
    }
    if (req->uc)
        sl_upconn_close(req->uc);
    else
        bufferevent_free(req->bev);
    req->uc = NULL;
    req->bev = NULL;
}

static void req_free(sl_http_client_req_t *req)
{
    conn_release(req, false);
    if (req->timer)
        event_free(req->timer);
    if (req->request)
        evbuffer_free(req->request);
    if (req->body)
        evbuffer_free(req->body);
    free(req->header_block);
    free(req->headers);
    free(req);
}

/* Every failure goes through the timer, so an error found while the caller is
 * still inside sl_http_client_request reaches cb from the loop like any
 * other. The connection closes now so nothing else can fire. */
static void fail(sl_http_client_req_t *req, const char *error)
{
    conn_release(req, false);
    req->state = ST_FAILED;
    req->error = error;
    struct timeval zero = {0, 0};
    evtimer_del(req->timer);
    evtimer_add(req->timer, &zero);
}

__attribute__((format(printf, 2, 3))) static void failf(sl_http_client_req_t *req, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(req->errbuf, sizeof req->errbuf, fmt, ap);
    va_end(ap);
    fail(req, req->errbuf);
}

static void deliver(sl_http_client_req_t *req, const sl_http_response_t *res)
{
    req->in_callback = true;
    req->cb(req->arg, res);
    req_free(req);
}

static void deliver_end(sl_http_client_req_t *req, const char *error)
{
    req->in_callback = true;
    req->scbs.on_end(req->arg, error);
    req_free(req);
}

static void deliver_error(sl_http_client_req_t *req, const char *error)
{
    if (req->stream) {
        deliver_end(req, error);
        return;
    }
    sl_http_response_t res = {.status = 0, .error = error, .n_headers = 0, .headers = no_headers,
                              .body = "", .body_len = 0};
    deliver(req, &res);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    sl_http_client_req_t *req = arg;
    if (req->state == ST_FAILED) {
        deliver_error(req, req->error);
        return;
    }
    conn_release(req, false);
    deliver_error(req, "timeout");
}

static void complete(sl_http_client_req_t *req)
{
    evtimer_del(req->timer);
    /* A server may answer before it has read the whole request; the rest
     * would then be taken for the next request on the connection. */
    bool sent = evbuffer_get_length(bufferevent_get_output(req->bev)) == 0;
    /* Back to the pool before cb runs, so a request cb starts can reuse it. */
    conn_release(req, req->reusable && sent && req->mode != BODY_UNTIL_CLOSE);
    if (req->stream) {
        deliver_end(req, NULL);
        return;
    }
    if (evbuffer_add(req->body, "", 1) != 0) {
        deliver_error(req, "out of memory");
        return;
    }
    size_t len = evbuffer_get_length(req->body);
    const char *body = (const char *)evbuffer_pullup(req->body, -1);
    if (!body) {
        deliver_error(req, "out of memory");
        return;
    }
    sl_http_response_t res = {.status = req->status, .error = NULL, .n_headers = req->n_headers,
                              .headers = req->headers ? req->headers : no_headers, .body = body,
                              .body_len = len - 1};
    deliver(req, &res);
}

static void io_eventcb(struct bufferevent *bev, short events, void *arg);
static void readcb(struct bufferevent *bev, void *arg);
static void open_connection(sl_http_client_req_t *req);

static void send_request(sl_http_client_req_t *req)
{
    req->state = ST_WAIT_HEAD;
    req->got_bytes = false;
    bufferevent_setcb(req->bev, readcb, NULL, io_eventcb, req);
    /* Written in this turn (sl_bev_send); the write event would otherwise be
     * armed by queuing. A failed write surfaces in io_eventcb, which retries
     * a stale pooled connection once. */
    bufferevent_disable(req->bev, EV_WRITE);
    if (evbuffer_add_buffer_reference(bufferevent_get_output(req->bev), req->request) != 0) {
        fail(req, "out of memory");
        return;
    }
    bufferevent_enable(req->bev, EV_READ);
    sl_bev_send(req->bev, req->url.tls);
}

static const char *tls_error(sl_http_client_req_t *req, struct bufferevent *bev, short events)
{
    SSL *ssl = bufferevent_openssl_get_ssl(bev);
    long v = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
    if (v != X509_V_OK) {
        snprintf(req->errbuf, sizeof req->errbuf, "tls: certificate verification failed: %s",
                 X509_verify_cert_error_string(v));
        return req->errbuf;
    }
    /* The bufferevent queues OpenSSL's error codes and, for socket errors, the
     * bare SSL_get_error value, which has no reason string. */
    const char *reason = NULL;
    unsigned long e;
    while ((e = bufferevent_get_openssl_error(bev)))
        if (!reason && ERR_GET_LIB(e) != 0)
            reason = ERR_reason_error_string(e);
    if (reason)
        snprintf(req->errbuf, sizeof req->errbuf, "tls: %s", reason);
    else if (events & BEV_EVENT_EOF)
        snprintf(req->errbuf, sizeof req->errbuf, "tls: connection closed during the handshake");
    else
        snprintf(req->errbuf, sizeof req->errbuf, "tls: handshake failed");
    return req->errbuf;
}

static void handshake_eventcb(struct bufferevent *bev, short events, void *arg)
{
    sl_http_client_req_t *req = arg;
    if (events & BEV_EVENT_CONNECTED) {
        /* Only now: a close without close_notify during the handshake is a
         * failure, but afterwards it is how many servers end a response. */
        bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
        send_request(req);
        return;
    }
    fail(req, tls_error(req, bev, events));
}

/* TCP first, then TLS on the connected socket: an OpenSSL bufferevent that
 * connects by itself reports a refused connection as a TLS failure. */
static void start_tls(sl_http_client_req_t *req)
{
    evutil_socket_t fd = bufferevent_getfd(req->bev);
    SSL *ssl = SSL_new(req->ssl_ctx);
    if (!ssl) {
        fail(req, "out of memory");
        return;
    }
    const char *name = req->url.host;
    /* RFC 6066: SNI carries host names only, never address literals. */
    bool literal = is_ip_literal(name);
    if (!literal)
        SSL_set_tlsext_host_name(ssl, name);
    if (req->tls_verify) {
        if (literal)
            X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name);
        else
            SSL_set1_host(ssl, name);
    }
    /* The plain bufferevent lets go of the socket; the TLS one takes it. */
    bufferevent_setcb(req->bev, NULL, NULL, NULL, NULL);
    bufferevent_setfd(req->bev, -1);
    bufferevent_free(req->bev);
    req->bev = bufferevent_openssl_socket_new(req->base, fd, ssl, BUFFEREVENT_SSL_CONNECTING,
                                              BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (!req->bev) {
        SSL_free(ssl);
        evutil_closesocket(fd);
        fail(req, "out of memory");
        return;
    }
    req->state = ST_HANDSHAKE;
    bufferevent_setcb(req->bev, NULL, NULL, handshake_eventcb, req);
    bufferevent_enable(req->bev, EV_READ | EV_WRITE);
}

static void connect_eventcb(struct bufferevent *bev, short events, void *arg)
{
    sl_http_client_req_t *req = arg;
    if (events & BEV_EVENT_CONNECTED) {
        sl_socket_nodelay(bufferevent_getfd(bev));
        if (req->url.tls)
            start_tls(req);
        else
            send_request(req);
        return;
    }
    int dns_err = bufferevent_socket_get_dns_error(bev);
    if (dns_err)
        failf(req, "connect failed: cannot resolve %s: %s", req->url.host, evutil_gai_strerror(dns_err));
    else
        failf(req, "connect failed: %s", evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
}

static void open_connection(sl_http_client_req_t *req)
{
    req->reused = false;
    req->state = ST_CONNECTING;
    req->bev = bufferevent_socket_new(req->base, -1, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (!req->bev) {
        fail(req, "out of memory");
        return;
    }
    bufferevent_setcb(req->bev, NULL, NULL, connect_eventcb, req);
    int rc;
    if (is_ip_literal(req->url.host)) {
        struct sockaddr_storage ss;
        memset(&ss, 0, sizeof ss);
        socklen_t len;
        if (req->url.ipv6) {
            struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
            sin6->sin6_family = AF_INET6;
            sin6->sin6_port = htons((uint16_t)req->url.port);
            inet_pton(AF_INET6, req->url.host, &sin6->sin6_addr);
            len = sizeof *sin6;
        } else {
            struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
            sin->sin_family = AF_INET;
            sin->sin_port = htons((uint16_t)req->url.port);
            inet_pton(AF_INET, req->url.host, &sin->sin_addr);
            len = sizeof *sin;
        }
        rc = bufferevent_socket_connect(req->bev, (struct sockaddr *)&ss, (int)len);
    } else if (!req->dns) {
        /* libevent would fall back to the blocking system resolver. */
        failf(req, "connect failed: cannot resolve %s: no resolver", req->url.host);
        return;
    } else {
        rc = bufferevent_socket_connect_hostname(req->bev, req->dns, AF_UNSPEC, req->url.host, req->url.port);
    }
    if (rc != 0)
        failf(req, "connect failed: %s", evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
}

/* A persistent connection by the response's own say, for HEAD responses:
 * the head parser judges from the status alone, and a bodiless 200 to HEAD
 * looks close-delimited to it. */
static bool head_response_persistent(const sl_http_response_head_t *h)
{
    bool close = false, keep_alive = false;
    for (int i = 0; i < h->n_headers; i++) {
        const sl_http_header_t *f = &h->headers[i];
        if (f->name_len == 10 && strncasecmp(f->name, "connection", 10) == 0) {
            close = close || sl_http_header_has_token(f->value, f->value_len, "close");
            keep_alive = keep_alive || sl_http_header_has_token(f->value, f->value_len, "keep-alive");
        }
    }
    return h->minor == 1 ? !close : (keep_alive && !close);
}

static int copy_headers(sl_http_client_req_t *req, const sl_http_response_head_t *h)
{
    /* The parser never reports more; saying so bounds the sizes below. */
    if (h->n_headers <= 0 || h->n_headers > SL_HTTP_MAX_HEADERS)
        return 0;
    size_t total = 0;
    for (int i = 0; i < h->n_headers; i++)
        total += h->headers[i].name_len + h->headers[i].value_len + 2;
    req->header_block = malloc(total);
    req->headers = malloc(((size_t)h->n_headers * 2 + 1) * sizeof *req->headers);
    if (!req->header_block || !req->headers)
        return -1;
    char *p = req->header_block;
    for (int i = 0; i < h->n_headers; i++) {
        const sl_http_header_t *f = &h->headers[i];
        req->headers[2 * i] = p;
        memcpy(p, f->name, f->name_len);
        p += f->name_len;
        *p++ = '\0';
        req->headers[2 * i + 1] = p;
        memcpy(p, f->value, f->value_len);
        p += f->value_len;
        *p++ = '\0';
    }
    req->headers[2 * h->n_headers] = NULL;
    req->n_headers = h->n_headers;
    return 0;
}

/* Decides how the body is framed and whether the connection outlives the
 * response; reads nothing from the head but its fields. */
static void plan_body(sl_http_client_req_t *req, const sl_http_response_head_t *h)
{
    req->status = h->status;
    req->reusable = h->keep_alive;
    if (!sl_http_response_has_body(req->method, strlen(req->method), h->status)) {
        req->mode = BODY_NONE;
        if (strcmp(req->method, "HEAD") == 0)
            req->reusable = head_response_persistent(h);
    } else if (h->chunked) {
        req->mode = BODY_CHUNKED;
        sl_chunked_init(&req->chunked);
    } else if (h->content_length >= 0) {
        req->mode = BODY_LENGTH;
        req->remaining = (uint64_t)h->content_length;
    } else {
        req->mode = BODY_UNTIL_CLOSE;
    }
}

/* ---- stream mode: the caller's piece callbacks ---------------------------------- */

/* A cancel from inside on_head or on_data only marks the handle, since the
 * code that called them still uses it; the handle is freed here, once that
 * code is back where it can stop. Returns false when it was. */
static bool survived_cancel(sl_http_client_req_t *req)
{
    if (!req->cancelled)
        return true;
    req_free(req);
    return false;
}

static void call_on_data(sl_http_client_req_t *req, const char *data, size_t len)
{
    /* A chunk decoder emitting several runs from one read keeps calling
     * after a cancel; those calls must not reach the caller. */
    if (len == 0 || !req->scbs.on_data || req->cancelled)
        return;
    req->in_piece_cb = true;
    req->scbs.on_data(req->arg, data, len);
    req->in_piece_cb = false;
}

static void arm_idle_timer(sl_http_client_req_t *req)
{
    struct timeval tv = sl_tv_ms(req->idle_ms);
    evtimer_add(req->timer, &tv);
}

/* Returns false when the exchange ended (failed or completed). */
static bool read_head(sl_http_client_req_t *req, struct evbuffer *in)
{
    for (;;) {
        size_t len = evbuffer_get_length(in);
        if (len == 0)
            return true;
        size_t n = len < MAX_RESPONSE_HEAD ? len : MAX_RESPONSE_HEAD;
        const char *buf = (const char *)evbuffer_pullup(in, (ev_ssize_t)n);
        if (!buf) {
            fail(req, "out of memory");
            return false;
        }
        sl_http_response_head_t h;
        size_t consumed = 0;
        sl_http_result_t r = sl_http_parse_response_head(buf, n, MAX_RESPONSE_HEAD, &h, &consumed);
        if (r == SL_HTTP_INCOMPLETE)
            return true;
        if (r != SL_HTTP_DONE || h.status == 101) {   /* no upgrade was asked for */
            fail(req, "bad response");
            return false;
        }
        if (h.status < 200) {   /* interim: the final response follows */
            evbuffer_drain(in, consumed);
            continue;
        }
        if (copy_headers(req, &h) != 0) {
            fail(req, "out of memory");
            return false;
        }
        plan_body(req, &h);
        /* h points into the bytes drained here; only copies are used below.
         * Draining first also leaves the input empty for the pool. */
        evbuffer_drain(in, consumed);
        if (req->stream) {
            /* From here on the head deadline is met; what remains bounded is
             * the silence between body bytes. */
            arm_idle_timer(req);
            if (req->scbs.on_head) {
                req->in_piece_cb = true;
                req->scbs.on_head(req->arg, req->status, req->n_headers, req->headers ? req->headers : no_headers);
                req->in_piece_cb = false;
                if (!survived_cancel(req))
                    return false;
            }
        }
        if (req->mode == BODY_NONE || (req->mode == BODY_LENGTH && req->remaining == 0)) {
            complete(req);
            return false;
        }
        if (!req->stream && req->mode == BODY_LENGTH && req->remaining > (uint64_t)req->max_body) {
            fail(req, "response too large");
            return false;
        }
        req->state = ST_BODY;
        return true;
    }
}

static void emit_chunk(void *arg, const char *data, size_t n)
{
    sl_http_client_req_t *req = arg;
    if (evbuffer_add(req->body, data, n) != 0)
        req->out_of_memory = true;
}

static void emit_stream_chunk(void *arg, const char *data, size_t n) { call_on_data(arg, data, n); }

/* The first contiguous run of a non-empty buffer. evbuffer_peek reports an
 * empty chain as a zero-length run, which would stall a loop that drains what
 * it used; copying the front together is the way past one. */
static bool front_run(struct evbuffer *in, struct evbuffer_iovec *v)
{
    if (evbuffer_peek(in, -1, NULL, v, 1) == 1 && v->iov_len > 0)
        return true;
    size_t len = evbuffer_get_length(in);
    v->iov_len = len < 4096 ? len : 4096;
    v->iov_base = evbuffer_pullup(in, (ev_ssize_t)v->iov_len);
    return v->iov_base != NULL;
}

/* Hands the body over as it sits in the input, one contiguous run at a time,
 * draining each only after on_data returns (the data points into it). */
static bool stream_body(sl_http_client_req_t *req, struct evbuffer *in)
{
    if (evbuffer_get_length(in) > 0)
        arm_idle_timer(req);
    while (evbuffer_get_length(in) > 0) {
        struct evbuffer_iovec v;
        if (!front_run(in, &v)) {
            fail(req, "out of memory");
            return false;
        }
        if (req->mode == BODY_CHUNKED) {
            size_t used = 0;
            sl_chunked_result_t r = sl_chunked_feed(&req->chunked, v.iov_base, v.iov_len, &used,
                                                    emit_stream_chunk, req);
            if (!survived_cancel(req))
                return false;
            evbuffer_drain(in, used);
            if (r == SL_CHUNKED_ERROR) {
                fail(req, "bad response");
                return false;
            }
            if (r == SL_CHUNKED_END) {
                complete(req);
                return false;
            }
            continue;
        }
        size_t take = v.iov_len;
        if (req->mode == BODY_LENGTH && (uint64_t)take > req->remaining)
            take = (size_t)req->remaining;
        call_on_data(req, v.iov_base, take);
        if (!survived_cancel(req))
            return false;
        evbuffer_drain(in, take);
        if (req->mode == BODY_LENGTH && (req->remaining -= take) == 0) {
            complete(req);
            return false;
        }
    }
    return true;
}

static bool read_body(sl_http_client_req_t *req, struct evbuffer *in)
{
    if (req->stream)
        return stream_body(req, in);
    size_t len = evbuffer_get_length(in);
    if (req->mode == BODY_LENGTH) {
        size_t take = (uint64_t)len < req->remaining ? len : (size_t)req->remaining;
        if (evbuffer_remove_buffer(in, req->body, take) != (int)take) {
            fail(req, "out of memory");
            return false;
        }
        req->remaining -= take;
        if (req->remaining == 0) {
            complete(req);
            return false;
        }
        return true;
    }
    if (req->mode == BODY_UNTIL_CLOSE) {
        if (evbuffer_get_length(req->body) + len > req->max_body) {
            fail(req, "response too large");
            return false;
        }
        if (evbuffer_add_buffer(req->body, in) != 0) {
            fail(req, "out of memory");
            return false;
        }
        return true;
    }
    while (evbuffer_get_length(in) > 0) {
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            break;
        size_t used = 0;
        sl_chunked_result_t r = sl_chunked_feed(&req->chunked, v.iov_base, v.iov_len, &used, emit_chunk, req);
        evbuffer_drain(in, used);
        if (req->out_of_memory) {
            fail(req, "out of memory");
            return false;
        }
        if (evbuffer_get_length(req->body) > req->max_body) {
            fail(req, "response too large");
            return false;
        }
        if (r == SL_CHUNKED_ERROR) {
            fail(req, "bad response");
            return false;
        }
        if (r == SL_CHUNKED_END) {
            complete(req);
            return false;
        }
    }
    return true;
}

/* Returns false when the exchange ended. */
static bool process_input(sl_http_client_req_t *req)
{
    struct evbuffer *in = bufferevent_get_input(req->bev);
    if (evbuffer_get_length(in) > 0)
        req->got_bytes = true;
    if (req->state == ST_WAIT_HEAD && !read_head(req, in))
        return false;
    if (req->state == ST_BODY)
        return read_body(req, in);
    return true;
}

static void readcb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    process_input(arg);
}

static void io_eventcb(struct bufferevent *bev, short events, void *arg)
{
    sl_http_client_req_t *req = arg;
    if (!(events & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
        return;
    /* Whatever arrived with the close is part of the answer. */
    if (!process_input(req))
        return;
    if (req->state == ST_WAIT_HEAD && req->reused && !req->got_bytes && !req->retried) {
        /* A pooled connection the server closed as we reused it: the request
         * most likely never reached the application, so one fresh try. */
        req->retried = true;
        conn_release(req, false);
        open_connection(req);
        return;
    }
    if (events & BEV_EVENT_EOF) {
        if (req->state == ST_BODY && req->mode == BODY_UNTIL_CLOSE)
            complete(req);
        else
            fail(req, "connection closed");
        return;
    }
    if (req->url.tls) {
        unsigned long e = bufferevent_get_openssl_error(bev);
        const char *reason = e && ERR_GET_LIB(e) != 0 ? ERR_reason_error_string(e) : NULL;
        while (bufferevent_get_openssl_error(bev))
            ;
        if (reason) {
            failf(req, "tls: %s", reason);
            return;
        }
    }
    failf(req, "connection error: %s", evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
}

/* ---- building the request ----------------------------------------------------- */

/* Methods whose requests carry content by definition get a Content-Length
 * even when it is 0 (RFC 9110 §8.6); the others only when they have a body. */
static bool method_expects_body(const char *m)
{
    return strcmp(m, "POST") == 0 || strcmp(m, "PUT") == 0 || strcmp(m, "PATCH") == 0;
}

static int add_str(struct evbuffer *b, const char *s) { return evbuffer_add(b, s, strlen(s)); }

/* v's digits, NUL-terminated, at the start of buf (SL_INT_TEXT_MAX + 1). */
static const char *u64_text(char *buf, uint64_t v)
{
    buf[sl_format_uint64(v, buf)] = '\0';
    return buf;
}

/* Pieces rather than printf: this runs for every provider call, and
 * formatting the head was a tenth of the cost of an AI request. */
static const char *build_request(sl_http_client_req_t *req, const sl_http_call_t *call)
{
    const char *const *hv = call->headers;
    bool has_host = false, has_agent = false;
    for (size_t i = 0; hv && hv[i]; i += 2) {
        if (!hv[i + 1] || !is_token(hv[i], SIZE_MAX) || !is_field_value(hv[i + 1]))
            return "bad header";
        if (eq_nocase(hv[i], "host")) {
            if (has_host || hv[i + 1][0] == '\0')
                return "bad header";
            has_host = true;
        }
        has_agent = has_agent || eq_nocase(hv[i], "user-agent");
    }
    if (call->body_len > 0 && !call->body)
        return "bad body";

    struct evbuffer *b = req->request = evbuffer_new();
    if (!b)
        return "out of memory";
    const url_t *u = &req->url;
    bool slash = u->target_len == 0 || u->target[0] == '?';
    int rc = add_str(b, req->method) | evbuffer_add(b, " /", slash ? 2 : 1) |
             evbuffer_add(b, u->target, u->target_len) | add_str(b, " HTTP/1.1\r\n");
    if (!has_host) {
        char port[24];
        rc |= add_str(b, u->ipv6 ? "Host: [" : "Host: ") | add_str(b, u->host);
        if (u->ipv6)
            rc |= add_str(b, "]");
        if (u->explicit_port)
            rc |= add_str(b, ":") | add_str(b, u64_text(port, (uint64_t)u->port));
        rc |= add_str(b, "\r\n");
    }
    if (!has_agent)
        rc |= add_str(b, "User-Agent: sluice\r\n");
    for (size_t i = 0; hv && hv[i]; i += 2)
        if (!client_owned_header(hv[i]))
            rc |= add_str(b, hv[i]) | add_str(b, ": ") | add_str(b, hv[i + 1]) | add_str(b, "\r\n");
    if (call->body_len > 0 || method_expects_body(req->method)) {
        char len[24];
        rc |= add_str(b, "Content-Length: ") | add_str(b, u64_text(len, call->body_len)) |
              add_str(b, "\r\n");
    }
    /* Without a pool the connection cannot be kept: say so. */
    rc |= add_str(b, req->pool ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n");
    if (call->body_len > 0)
        rc |= evbuffer_add(b, call->body, call->body_len);
    return rc != 0 ? "out of memory" : NULL;
}

static const char *prepare(sl_http_client_req_t *req, const sl_http_call_t *call)
{
    const char *method = call->method ? call->method : "GET";
    if (!is_token(method, MAX_METHOD) || strcmp(method, "CONNECT") == 0)
        return "bad method";
    memcpy(req->method, method, strlen(method) + 1);
    if (!call->url || parse_url(call->url, &req->url) != 0)
        return "bad url";
    req->max_body = call->max_body ? call->max_body : SL_HTTP_CLIENT_DEFAULT_MAX_BODY;
    req->idle_ms = call->idle_timeout_ms > 0 ? call->idle_timeout_ms : SL_HTTP_CLIENT_DEFAULT_IDLE_TIMEOUT_MS;
    if (req->idle_ms > MAX_TIMEOUT_MS)
        req->idle_ms = MAX_TIMEOUT_MS;
    req->tls_verify = call->tls_verify;
    const char *err = build_request(req, call);
    if (err)
        return err;
    if (!req->stream && !(req->body = evbuffer_new()))
        return "out of memory";
    if (req->url.tls) {
        req->ssl_ctx = tls_ctx_get(call->tls_verify, call->ca_file, req->errbuf, sizeof req->errbuf);
        if (!req->ssl_ctx)
            return req->errbuf;
    }
    /* "client|scheme|host|port|context", built by hand for the same reason
     * as the request head. */
    char port[24], ctx[24];
    const char *parts[] = {"client|", req->url.tls ? "https|" : "http|", req->url.host, "|",
                           u64_text(port, (uint64_t)req->url.port), "|",
                           u64_text(ctx, (uint64_t)(uintptr_t)req->ssl_ctx)};
    size_t at = 0;
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        size_t n = strlen(parts[i]);
        if (n > sizeof req->key - 1 - at)   /* cannot happen: host is at most MAX_HOST */
            return "bad url";
        memcpy(req->key + at, parts[i], n);
        at += n;
    }
    req->key[at] = '\0';
    return NULL;
}

void sl_http_call_init(sl_http_call_t *call)
{
    memset(call, 0, sizeof *call);
    call->method = "GET";
    call->timeout_ms = SL_HTTP_CLIENT_DEFAULT_TIMEOUT_MS;
    call->tls_verify = true;
    call->max_body = SL_HTTP_CLIENT_DEFAULT_MAX_BODY;
    call->idle_timeout_ms = SL_HTTP_CLIENT_DEFAULT_IDLE_TIMEOUT_MS;
}

static sl_http_client_req_t *req_new(struct event_base *base, struct evdns_base *dns, struct sl_pool *pool,
                                     void *arg)
{
    sl_http_client_req_t *req = calloc(1, sizeof *req);
    if (!req)
        return NULL;
    req->base = base;
    req->dns = dns;
    req->pool = pool;
    req->arg = arg;
    req->timer = evtimer_new(base, timer_cb, req);
    if (!req->timer) {
        free(req);
        return NULL;
    }
    return req;
}

static void begin_exchange(sl_http_client_req_t *req, const sl_http_call_t *call)
{
    const char *err = prepare(req, call);
    if (err) {
        fail(req, err);
        return;
    }
    int64_t timeout_ms = call->timeout_ms > 0 ? call->timeout_ms : SL_HTTP_CLIENT_DEFAULT_TIMEOUT_MS;
    if (timeout_ms > MAX_TIMEOUT_MS)   /* libevent refuses timers past its range: keep one that fires */
        timeout_ms = MAX_TIMEOUT_MS;
    struct timeval tv = sl_tv_ms(timeout_ms);
    evtimer_add(req->timer, &tv);
    if (req->pool && (req->uc = sl_pool_get(req->pool, req->key))) {
        req->bev = req->uc->bev;
        sl_upconn_timeouts(req->uc, 0, 0);   /* req->timer covers the exchange */
        req->reused = true;
        send_request(req);
    } else {
        open_connection(req);
    }
}

sl_http_client_req_t *sl_http_client_request(struct event_base *base, struct evdns_base *dns, struct sl_pool *pool,
                                             const sl_http_call_t *call, sl_http_client_cb cb, void *arg)
{
    if (!base || !call || !cb)
        return NULL;
    sl_http_client_req_t *req = req_new(base, dns, pool, arg);
    if (!req)
        return NULL;
    req->cb = cb;
    begin_exchange(req, call);
    return req;
}

sl_http_client_req_t *sl_http_client_stream(struct event_base *base, struct evdns_base *dns, struct sl_pool *pool,
                                            const sl_http_call_t *call, const sl_http_stream_cbs_t *cbs, void *arg)
{
    if (!base || !call || !cbs || !cbs->on_end)
        return NULL;
    sl_http_client_req_t *req = req_new(base, dns, pool, arg);
    if (!req)
        return NULL;
    req->stream = true;
    req->scbs = *cbs;
    begin_exchange(req, call);
    return req;
}

void sl_http_client_cancel(sl_http_client_req_t *req)
{
    if (!req || req->in_callback || req->cancelled)
        return;
    if (req->in_piece_cb) {
        req->cancelled = true;
        return;
    }
    req_free(req);
}
