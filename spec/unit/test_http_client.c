/* Unit tests for core/http_client.c against a tiny scripted server running
 * in threads of this process (plain TCP, or TLS with a CA and certificate the
 * openssl CLI makes at start). The client side runs on a libevent loop in the
 * main thread, the way a worker runs it. */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "clock.h"
#include "http_client.h"
#include "pool.h"

static void die(const char *what)
{
    perror(what);
    exit(2);
}

/* ---- the scripted server ------------------------------------------------------ */

#define MAX_CONNS 64
#define CONN_BUF (256 * 1024)

typedef struct server server_t;

typedef struct sconn {
    server_t *srv;
    int fd;
    SSL *ssl;
    pthread_t thread;
    int requests;           /* served on this connection so far */
    char buf[CONN_BUF];
    size_t len;
} sconn_t;

struct server {
    int lfd;
    int port;
    SSL_CTX *tls;           /* NULL: plain HTTP */
    const char *greet;      /* non-NULL: write this on accept and close, no HTTP */
    pthread_t acceptor;
    pthread_mutex_t lock;
    int accepted;
    sconn_t *conns[MAX_CONNS];
    int n_conns;
    atomic_bool stopping;
};

static ssize_t c_read(sconn_t *c, char *buf, size_t n)
{
    if (c->ssl) {
        int r = SSL_read(c->ssl, buf, (int)n);
        return r > 0 ? r : -1;
    }
    for (;;) {
        ssize_t r = recv(c->fd, buf, n, 0);
        if (r < 0 && errno == EINTR)
            continue;
        return r > 0 ? r : -1;
    }
}

static void c_write(sconn_t *c, const char *data, size_t n)
{
    while (n > 0) {
        ssize_t w;
        if (c->ssl) {
            int r = SSL_write(c->ssl, data, (int)n);
            w = r > 0 ? r : -1;
        } else {
            w = send(c->fd, data, n, MSG_NOSIGNAL);
            if (w < 0 && errno == EINTR)
                continue;
        }
        if (w <= 0)
            return;
        data += w;
        n -= (size_t)w;
    }
}

static void c_print(sconn_t *c, const char *s) { c_write(c, s, strlen(s)); }

static const char *find_nocase(const char *hay, size_t n, const char *needle)
{
    size_t m = strlen(needle);
    for (size_t i = 0; i + m <= n; i++)
        if (strncasecmp(hay + i, needle, m) == 0)
            return hay + i;
    return NULL;
}

/* Reads one whole request (head and Content-Length body) into the front of
 * c->buf; returns its length, or -1 at EOF. */
static long read_request(sconn_t *c)
{
    for (;;) {
        const char *end = c->len >= 4 ? memmem(c->buf, c->len, "\r\n\r\n", 4) : NULL;
        if (end) {
            size_t head = (size_t)(end - c->buf) + 4;
            const char *cl = find_nocase(c->buf, head, "\r\ncontent-length:");
            if (strncmp(c->buf, "POST /early ", 12) == 0)   /* answers before reading the body */
                cl = NULL;
            size_t total = head + (cl ? strtoul(cl + 17, NULL, 10) : 0);
            if (total > sizeof c->buf)
                return -1;
            if (c->len >= total)
                return (long)total;
        }
        if (c->len == sizeof c->buf)
            return -1;
        ssize_t r = c_read(c, c->buf + c->len, sizeof c->buf - c->len);
        if (r <= 0)
            return -1;
        c->len += (size_t)r;
    }
}

static void wait_for_close(sconn_t *c)
{
    char tmp[4096];
    while (c_read(c, tmp, sizeof tmp) > 0)
        ;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* The gate lets the test hold a streaming response between pieces: a route
 * sends a piece, then waits until the test has opened the next step, so what
 * the client saw before opening was sent before the rest existed. Steps only
 * grow; a route takes its base step from the query ("/sse?7" waits for 8,
 * then 9), so a server thread that is late to a wait never sees a reset. */
static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static int gate_step;

static int gate_now(void)
{
    pthread_mutex_lock(&gate_lock);
    int step = gate_step;
    pthread_mutex_unlock(&gate_lock);
    return step;
}

static void gate_open(int step)
{
    pthread_mutex_lock(&gate_lock);
    if (step > gate_step)
        gate_step = step;
    pthread_cond_broadcast(&gate_cond);
    pthread_mutex_unlock(&gate_lock);
}

/* False when the server is stopping or the test never opened the step (a
 * failed test must not hang the run). */
static bool gate_wait(sconn_t *c, int step)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10;
    pthread_mutex_lock(&gate_lock);
    while (gate_step < step && !atomic_load(&c->srv->stopping))
        if (pthread_cond_timedwait(&gate_cond, &gate_lock, &until) == ETIMEDOUT)
            break;
    bool open = gate_step >= step;
    pthread_mutex_unlock(&gate_lock);
    return open;
}

static void gate_wake_all(void)
{
    pthread_mutex_lock(&gate_lock);
    pthread_cond_broadcast(&gate_cond);
    pthread_mutex_unlock(&gate_lock);
}

static int query_int(const char *target)
{
    const char *q = strchr(target, '?');
    return q ? atoi(q + 1) : 0;
}

/* Routes for stream mode; 1: keep the connection, 0: close it, -1: not one
 * of these. */
static int respond_stream(sconn_t *c, const char *target)
{
    int g = query_int(target);
    if (strncmp(target, "/sse?", 5) == 0) {   /* three events; the second split across two chunks */
        c_print(c, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
                   "b\r\ndata: one\n\n\r\n");
        if (!gate_wait(c, g + 1))
            return 0;
        c_print(c, "7\r\ndata: t\r\n");
        c_print(c, "4\r\nwo\n\n\r\n");
        if (!gate_wait(c, g + 2))
            return 0;
        c_print(c, "e\r\ndata: [DONE]\n\n\r\n0\r\n\r\n");
        return 1;
    }
    if (strncmp(target, "/streamlen?", 11) == 0) {
        c_print(c, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\npart1");
        if (!gate_wait(c, g + 1))
            return 0;
        c_print(c, "part2");
        return 1;
    }
    if (strncmp(target, "/streamclose?", 13) == 0) {
        c_print(c, "HTTP/1.1 200 OK\r\nX-Mode: close\r\n\r\npart1");
        if (gate_wait(c, g + 1))
            c_print(c, "part2");
        return 0;
    }
    if (strncmp(target, "/midclose?", 10) == 0) {   /* closes inside the chunked body */
        c_print(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n7\r\npartial\r\n");
        gate_wait(c, g + 1);
        return 0;
    }
    if (strncmp(target, "/headonly?", 10) == 0) {   /* the head alone, then the body */
        c_print(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        if (!gate_wait(c, g + 1))
            return 0;
        c_print(c, "5\r\nlater\r\n0\r\n\r\n");
        return 1;
    }
    if (strcmp(target, "/idle") == 0) {   /* one piece, then silence */
        c_print(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n");
        wait_for_close(c);
        return 0;
    }
    if (strcmp(target, "/together") == 0) {   /* head and three chunks in one write */
        c_print(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                   "3\r\none\r\n3\r\ntwo\r\n5\r\nthree\r\n0\r\n\r\n");
        return 1;
    }
    if (strcmp(target, "/badchunk2") == 0) {   /* good data, then a broken size line */
        c_print(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\nzz\r\n");
        return 1;
    }
    if (strcmp(target, "/trickle") == 0) {   /* five pieces 100 ms apart */
        c_print(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        for (int i = 0; i < 5; i++) {
            sleep_ms(100);
            c_print(c, "1\r\nx\r\n");
        }
        c_print(c, "0\r\n\r\n");
        return 1;
    }
    return -1;
}

/* Answers one request by its path; returns false to end the connection. */
static bool respond(sconn_t *c, const char *method, const char *target, size_t req_len)
{
    char head[512];
    int streamed = respond_stream(c, target);
    if (streamed >= 0)
        return streamed == 1;
    if (strncmp(target, "/echo", 5) == 0) {
        snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\nContent-Type: text/plain\r\n\r\n",
                 req_len);
        c_print(c, head);
        c_write(c, c->buf, req_len);
        return true;
    }
    if (strcmp(target, "/head") == 0) {
        c_print(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n");   /* only ever asked with HEAD */
        return true;
    }
    if (strcmp(target, "/headbare") == 0) {   /* HEAD, neither length nor chunked said */
        c_print(c, "HTTP/1.1 200 OK\r\nX-H: 1\r\n\r\n");
        return true;
    }
    if (strcmp(target, "/204") == 0) {
        c_print(c, "HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n");
        return true;
    }
    if (strcmp(target, "/304") == 0) {
        c_print(c, "HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\n\r\n");
        return true;
    }
    if (strcmp(target, "/headers") == 0) {
        c_print(c, "HTTP/1.1 201 Created\r\nX-One: 1\r\nx-two:  two words  \r\nSet-Cookie: a=1\r\n"
                   "Set-Cookie: b=2\r\nContent-Length: 0\r\n\r\n");
        return true;
    }
    if (strcmp(target, "/chunked") == 0) {
        c_print(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n");
        sleep_ms(20);
        c_print(c, "1\r\n \r\n");
        sleep_ms(20);
        c_print(c, "5\r\nworld\r\n0\r\nX-Trailer: t\r\n\r\n");
        return true;
    }
    if (strcmp(target, "/bigchunked") == 0) {
        /* 1 MiB in 1024 chunks of 1 KiB, each byte its offset mod 251 */
        c_print(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        char chunk[1024 + 16];
        for (int i = 0; i < 1024; i++) {
            int n = snprintf(chunk, sizeof chunk, "400\r\n");
            for (int j = 0; j < 1024; j++)
                chunk[n + j] = (char)((i * 1024 + j) % 251);
            memcpy(chunk + n + 1024, "\r\n", 2);
            c_write(c, chunk, (size_t)n + 1026);
        }
        c_print(c, "0\r\n\r\n");
        return true;
    }
    if (strncmp(target, "/big?", 5) == 0) {
        size_t n = strtoul(target + 5, NULL, 10);
        snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", n);
        c_print(c, head);
        char block[4096];
        for (size_t off = 0; off < n;) {
            size_t k = n - off < sizeof block ? n - off : sizeof block;
            for (size_t j = 0; j < k; j++)
                block[j] = (char)((off + j) % 251);
            c_write(c, block, k);
            off += k;
        }
        return true;
    }
    if (strncmp(target, "/close?", 7) == 0) {   /* close-delimited body of n bytes of 'x' */
        size_t n = strtoul(target + 7, NULL, 10);
        c_print(c, "HTTP/1.1 200 OK\r\nX-Mode: close\r\n\r\n");
        for (size_t i = 0; i < n; i++)
            c_write(c, "x", 1);
        return false;
    }
    if (strcmp(target, "/http10") == 0) {
        c_print(c, "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok");
        return false;
    }
    if (strcmp(target, "/continue") == 0) {
        c_print(c, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
                   "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndone");
        return true;
    }
    if (strcmp(target, "/extra") == 0) {
        c_print(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA");
        return true;
    }
    if (strcmp(target, "/garbage") == 0) {
        c_print(c, "garbage\r\n\r\n");
        return true;
    }
    if (strcmp(target, "/badchunk") == 0) {
        c_print(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n");
        return true;
    }
    if (strcmp(target, "/upgrade") == 0) {
        c_print(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n");
        return true;
    }
    if (strcmp(target, "/hugehead") == 0) {
        c_print(c, "HTTP/1.1 200 OK\r\n");
        char line[1024];
        memset(line, 'a', sizeof line);
        memcpy(line, "X-Pad: ", 7);
        memcpy(line + sizeof line - 2, "\r\n", 2);
        for (int i = 0; i < 70; i++)
            c_write(c, line, sizeof line);
        c_print(c, "Content-Length: 0\r\n\r\n");
        return true;
    }
    if (strcmp(target, "/truncated") == 0) {
        c_print(c, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
        return false;
    }
    if (strcmp(target, "/early") == 0) {
        c_print(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        wait_for_close(c);
        return false;
    }
    if (strcmp(target, "/drop") == 0)
        return false;
    if (strcmp(target, "/flaky") == 0) {   /* answers only the first request on each connection */
        if (c->requests > 1)
            return false;
        c_print(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nflaky");
        return true;
    }
    if (strcmp(target, "/slowhead") == 0) {
        c_print(c, "HTTP/1.1 200 OK\r\n");
        wait_for_close(c);
        return false;
    }
    if (strcmp(target, "/silent") == 0) {
        wait_for_close(c);
        return false;
    }
    /* anything else: 404 with the request line as the body */
    size_t line = (size_t)((const char *)memchr(c->buf, '\r', req_len) - c->buf);
    snprintf(head, sizeof head, "HTTP/1.1 404 Not Found\r\nContent-Length: %zu\r\n\r\n", line);
    c_print(c, head);
    c_write(c, c->buf, line);
    return true;
}

static void serve(sconn_t *c)
{
    if (c->srv->greet) {
        c_print(c, c->srv->greet);
        return;
    }
    for (;;) {
        long total = read_request(c);
        if (total < 0)
            return;
        c->requests++;
        char method[16] = "", target[256] = "";
        if (sscanf(c->buf, "%15s %255s", method, target) != 2)
            return;
        bool keep = respond(c, method, target, (size_t)total);
        memmove(c->buf, c->buf + total, c->len - (size_t)total);
        c->len -= (size_t)total;
        if (!keep)
            return;
    }
}

static void *conn_main(void *arg)
{
    sconn_t *c = arg;
    if (c->srv->tls) {
        c->ssl = SSL_new(c->srv->tls);
        if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1 || SSL_accept(c->ssl) != 1) {
            ERR_clear_error();
            shutdown(c->fd, SHUT_RDWR);
            return NULL;
        }
    }
    serve(c);
    if (c->ssl)
        SSL_shutdown(c->ssl);
    ERR_clear_error();
    /* The descriptor closes in server_stop, after the join, so its number
     * cannot be reused while the main thread may still shut it down. */
    shutdown(c->fd, SHUT_RDWR);
    return NULL;
}

static void *acceptor_main(void *arg)
{
    server_t *s = arg;
    for (;;) {
        int fd = accept(s->lfd, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR && !atomic_load(&s->stopping))
                continue;
            return NULL;
        }
        pthread_mutex_lock(&s->lock);
        if (atomic_load(&s->stopping) || s->n_conns == MAX_CONNS) {
            pthread_mutex_unlock(&s->lock);
            close(fd);
            if (atomic_load(&s->stopping))
                return NULL;
            continue;
        }
        sconn_t *c = calloc(1, sizeof *c);
        if (!c)
            die("calloc");
        c->srv = s;
        c->fd = fd;
        s->accepted++;
        s->conns[s->n_conns++] = c;
        if (pthread_create(&c->thread, NULL, conn_main, c) != 0)
            die("pthread_create");
        pthread_mutex_unlock(&s->lock);
    }
}

/* small_window keeps the server's receive buffer small, so a client's big
 * body stays partly unsent while the server does not read. */
static server_t *server_start_opts(SSL_CTX *tls, bool ipv6, bool small_window)
{
    server_t *s = calloc(1, sizeof *s);
    if (!s)
        die("calloc");
    s->tls = tls;
    pthread_mutex_init(&s->lock, NULL);
    s->lfd = socket(ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
    if (s->lfd < 0)
        die("socket");
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t len;
    if (ipv6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_addr = in6addr_loopback;
        len = sizeof *a;
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        len = sizeof *a;
    }
    int small = 16384;
    if (small_window && setsockopt(s->lfd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small) != 0)
        die("setsockopt");
    if (bind(s->lfd, (struct sockaddr *)&ss, len) != 0) {
        close(s->lfd);
        pthread_mutex_destroy(&s->lock);
        free(s);
        return NULL;
    }
    if (listen(s->lfd, 64) != 0 || getsockname(s->lfd, (struct sockaddr *)&ss, &len) != 0)
        die("listen");
    s->port = ntohs(ipv6 ? ((struct sockaddr_in6 *)&ss)->sin6_port : ((struct sockaddr_in *)&ss)->sin_port);
    if (pthread_create(&s->acceptor, NULL, acceptor_main, s) != 0)
        die("pthread_create");
    return s;
}

static server_t *server_start(SSL_CTX *tls, bool ipv6) { return server_start_opts(tls, ipv6, false); }

static int server_accepted(server_t *s)
{
    pthread_mutex_lock(&s->lock);
    int n = s->accepted;
    pthread_mutex_unlock(&s->lock);
    return n;
}

static void server_stop(server_t *s)
{
    atomic_store(&s->stopping, true);
    gate_wake_all();
    shutdown(s->lfd, SHUT_RDWR);   /* wakes accept() */
    pthread_join(s->acceptor, NULL);
    close(s->lfd);
    for (int i = 0; i < s->n_conns; i++) {
        sconn_t *c = s->conns[i];
        shutdown(c->fd, SHUT_RDWR);   /* wakes a blocked read */
        pthread_join(c->thread, NULL);
        if (c->ssl)
            SSL_free(c->ssl);
        close(c->fd);
        free(c);
    }
    pthread_mutex_destroy(&s->lock);
    free(s);
}

/* ---- the client side ------------------------------------------------------------ */

static struct event_base *base;
static sl_pool_t *pool;
static struct evdns_base *dns;   /* knows good.sluice.test and wrong.sluice.test from a hosts file */
static char tmpdir[64];

typedef struct result {
    int calls;
    int status;
    char *error;
    int n_headers;
    char **headers;
    char *body;
    size_t body_len;
    bool headers_terminated;
    bool body_terminated;
    sl_http_client_req_t *req;
    bool cancel_inside;          /* calls sl_http_client_cancel(req) from the callback */
    const sl_http_call_t *chain; /* a call to start from inside the callback */
    struct result *chained;
} result_t;

static char *dup_mem(const char *p, size_t n)
{
    char *d = malloc(n + 1);
    if (!d)
        die("malloc");
    memcpy(d, p, n);
    d[n] = '\0';
    return d;
}

static void on_response(void *arg, const sl_http_response_t *res);

static sl_http_client_req_t *start(const sl_http_call_t *call, result_t *r, sl_pool_t *p)
{
    r->req = sl_http_client_request(base, dns, p, call, on_response, r);
    return r->req;
}

static void on_response(void *arg, const sl_http_response_t *res)
{
    result_t *r = arg;
    r->calls++;
    r->status = res->status;
    r->error = res->error ? dup_mem(res->error, strlen(res->error)) : NULL;
    r->n_headers = res->n_headers;
    r->headers_terminated = res->headers && res->headers[2 * res->n_headers] == NULL;
    r->headers = calloc((size_t)res->n_headers * 2 + 1, sizeof *r->headers);
    for (int i = 0; i < 2 * res->n_headers; i++)
        r->headers[i] = dup_mem(res->headers[i], strlen(res->headers[i]));
    r->body_terminated = res->body && res->body[res->body_len] == '\0';
    r->body = res->body ? dup_mem(res->body, res->body_len) : NULL;
    r->body_len = res->body_len;
    if (r->cancel_inside)
        sl_http_client_cancel(r->req);
    if (r->chain)
        start(r->chain, r->chained, pool);
}

static void result_clear(result_t *r)
{
    free(r->error);
    for (int i = 0; r->headers && i < 2 * r->n_headers; i++)
        free(r->headers[i]);
    free(r->headers);
    free(r->body);
    memset(r, 0, sizeof *r);
}

/* Runs the loop until every result has its callback or max_ms passes. */
static void wait_all(result_t *rs, int n, int max_ms)
{
    int64_t deadline = sl_now_ms() + max_ms;
    for (;;) {
        bool all = true;
        for (int i = 0; i < n; i++)
            all = all && rs[i].calls > 0;
        if (all || sl_now_ms() > deadline)
            return;
        event_base_loop(base, EVLOOP_ONCE);
    }
}

static void run_for(int ms)
{
    int64_t deadline = sl_now_ms() + ms;
    while (sl_now_ms() < deadline)
        event_base_loop(base, EVLOOP_ONCE);
}

/* One call to completion; checks that the callback never runs before the
 * request function returns. */
static void call_sync(const sl_http_call_t *call, result_t *r)
{
    memset(r, 0, sizeof *r);
    sl_http_client_req_t *req = start(call, r, pool);
    CHECK(1, req != NULL);
    CHECK(0, r->calls);
    wait_all(r, 1, 20000);
    CHECK(1, r->calls);
}

static sl_http_call_t make_call(const char *method, const char *url)
{
    sl_http_call_t c;
    sl_http_call_init(&c);
    c.method = method;
    c.url = url;
    return c;
}

static void url_of(char *buf, size_t len, const char *scheme, const char *host, int port, const char *path)
{
    snprintf(buf, len, "%s://%s:%d%s", scheme, host, port, path);
}

/* The response an error must look like: nothing but the message. */
static void check_error(const char *file, int line, const result_t *r, const char *error)
{
    check_int(file, line, "calls", 1, r->calls);
    check_int(file, line, "status", 0, r->status);
    check_mem(file, line, "error", error, r->error, r->error ? strlen(r->error) : 0);
    check_int(file, line, "n_headers", 0, r->n_headers);
    check_int(file, line, "headers terminated", 1, r->headers_terminated);
    check_mem(file, line, "body", "", r->body, r->body_len);
    check_int(file, line, "body terminated", 1, r->body_terminated);
}
#define CHECK_ERROR(r, error) check_error(__FILE__, __LINE__, (r), (error))

/* ---- the client side, stream mode ------------------------------------------------ */

typedef struct sresult {
    int heads, datas, ends;
    int status;
    int n_headers;
    char **headers;
    bool headers_terminated;
    char *body;                   /* every piece, in order */
    size_t body_len;
    char *error;                  /* on_end's */
    bool data_before_head;        /* on_data without on_head first */
    bool after_end;               /* any callback after on_end */
    int64_t last_data_ms, end_ms;
    sl_http_client_req_t *req;
    bool cancel_in_head;          /* these call sl_http_client_cancel(req) from the callback */
    int cancel_at_data;           /* ... from the Nth on_data */
    bool cancel_in_end;
    const sl_http_call_t *chain;  /* a stream to start from on_end */
    struct sresult *chained;
} sresult_t;

static void on_s_head(void *arg, int status, int n_headers, const char *const *headers);
static void on_s_data(void *arg, const char *data, size_t len);
static void on_s_end(void *arg, const char *error);
static const sl_http_stream_cbs_t scbs = {on_s_head, on_s_data, on_s_end};

static sl_http_client_req_t *sstart(const sl_http_call_t *call, sresult_t *r)
{
    r->req = sl_http_client_stream(base, dns, pool, call, &scbs, r);
    return r->req;
}

static void on_s_head(void *arg, int status, int n_headers, const char *const *headers)
{
    sresult_t *r = arg;
    r->after_end = r->after_end || r->ends > 0;
    r->heads++;
    r->status = status;
    r->n_headers = n_headers;
    r->headers_terminated = headers && headers[2 * n_headers] == NULL;
    r->headers = calloc((size_t)n_headers * 2 + 1, sizeof *r->headers);
    if (!r->headers)
        die("calloc");
    for (int i = 0; i < 2 * n_headers; i++)
        r->headers[i] = dup_mem(headers[i], strlen(headers[i]));
    if (r->cancel_in_head)
        sl_http_client_cancel(r->req);
}

static void on_s_data(void *arg, const char *data, size_t len)
{
    sresult_t *r = arg;
    r->after_end = r->after_end || r->ends > 0;
    r->data_before_head = r->data_before_head || r->heads == 0;
    r->datas++;
    r->body = realloc(r->body, r->body_len + len + 1);
    if (!r->body)
        die("realloc");
    memcpy(r->body + r->body_len, data, len);
    r->body_len += len;
    r->body[r->body_len] = '\0';
    r->last_data_ms = sl_now_ms();
    if (r->cancel_at_data == r->datas) {
        sl_http_client_cancel(r->req);
        sl_http_client_cancel(r->req);   /* twice is as good as once */
    }
}

static void on_s_end(void *arg, const char *error)
{
    sresult_t *r = arg;
    r->after_end = r->after_end || r->ends > 0;
    r->ends++;
    r->error = error ? dup_mem(error, strlen(error)) : NULL;
    r->end_ms = sl_now_ms();
    if (r->cancel_in_end)
        sl_http_client_cancel(r->req);
    if (r->chain)
        sstart(r->chain, r->chained);
}

static void sresult_clear(sresult_t *r)
{
    for (int i = 0; r->headers && i < 2 * r->n_headers; i++)
        free(r->headers[i]);
    free(r->headers);
    free(r->body);
    free(r->error);
    memset(r, 0, sizeof *r);
}

/* Runs the loop until on_end, or until the body holds at least `len` bytes
 * when len > 0, or max_ms passes. */
static void swait(sresult_t *r, size_t len, int max_ms)
{
    int64_t deadline = sl_now_ms() + max_ms;
    while (r->ends == 0 && (len == 0 || r->body_len < len) && sl_now_ms() <= deadline)
        event_base_loop(base, EVLOOP_ONCE);
}

/* One stream to its end; checks that nothing runs before sl_http_client_stream
 * returns. */
static void stream_sync(const sl_http_call_t *call, sresult_t *r)
{
    memset(r, 0, sizeof *r);
    CHECK(1, sstart(call, r) != NULL);
    CHECK(0, r->heads + r->datas + r->ends);
    swait(r, 0, 20000);
}

/* What every ended stream must show: one on_end with this error, callbacks
 * in order, and the body seen. */
static void check_stream(const char *file, int line, const sresult_t *r, int heads, const char *error,
                         const char *body)
{
    check_int(file, line, "heads", heads, r->heads);
    check_int(file, line, "ends", 1, r->ends);
    check_mem(file, line, "error", error, r->error, r->error ? strlen(r->error) : 0);
    check_mem(file, line, "body", body, r->body ? r->body : "", r->body_len);
    check_int(file, line, "data before head", 0, r->data_before_head);
    check_int(file, line, "callback after on_end", 0, r->after_end);
}
#define CHECK_STREAM(r, heads, error, body) check_stream(__FILE__, __LINE__, (r), (heads), (error), (body))

/* ---- tests ------------------------------------------------------------------------ */

static void test_defaults(void)
{
    current_case = "defaults";
    sl_http_call_t c;
    memset(&c, 0x5a, sizeof c);
    sl_http_call_init(&c);
    CHECK_STR("GET", c.method);
    CHECK_STR(NULL, c.url);
    CHECK(1, c.headers == NULL);
    CHECK(1, c.body == NULL);
    CHECK(0, c.body_len);
    CHECK(5000, c.timeout_ms);
    CHECK(1, c.tls_verify);
    CHECK_STR(NULL, c.ca_file);
    CHECK(16 << 20, c.max_body);
    CHECK(60000, c.idle_timeout_ms);
    CHECK(1, sl_http_client_request(NULL, dns, pool, &c, on_response, NULL) == NULL);
    CHECK(1, sl_http_client_request(base, dns, pool, NULL, on_response, NULL) == NULL);
    CHECK(1, sl_http_client_request(base, dns, pool, &c, NULL, NULL) == NULL);
    sl_http_client_cancel(NULL);
}

static void test_get(void)
{
    current_case = "GET";
    server_t *s = server_start(NULL, false);
    char url[128], expect[512];
    url_of(url, sizeof url, "http", "127.0.0.1", s->port, "/echo?x=1&y=%20#frag");
    const char *hdrs[] = {"X-Test", "yes", "Accept", "*/*", NULL};
    sl_http_call_t c = make_call("GET", url);
    c.headers = hdrs;
    result_t r;
    call_sync(&c, &r);
    snprintf(expect, sizeof expect,
             "GET /echo?x=1&y=%%20 HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUser-Agent: sluice\r\nX-Test: yes\r\n"
             "Accept: */*\r\nConnection: keep-alive\r\n\r\n",
             s->port);
    CHECK(200, r.status);
    CHECK_STR(NULL, r.error);
    CHECK_MEM(expect, r.body, r.body_len);
    CHECK(1, r.body_terminated);
    CHECK(2, r.n_headers);
    char cl[24];
    snprintf(cl, sizeof cl, "%zu", strlen(expect));
    CHECK_STR("Content-Length", r.headers[0]);
    CHECK_STR(cl, r.headers[1]);
    CHECK_STR("Content-Type", r.headers[2]);
    CHECK_STR("text/plain", r.headers[3]);
    CHECK(1, r.headers_terminated);
    CHECK(1, server_accepted(s));
    CHECK(1, sl_pool_idle_count(pool));
    result_clear(&r);

    current_case = "GET without a path";
    url_of(url, sizeof url, "http", "127.0.0.1", s->port, "?q=1");
    c = make_call(NULL, url);
    call_sync(&c, &r);
    CHECK(404, r.status);
    CHECK_MEM("GET /?q=1 HTTP/1.1", r.body, r.body_len);
    result_clear(&r);
    url_of(url, sizeof url, "HTTP", "127.0.0.1", s->port, "");
    c = make_call("OPTIONS", url);
    call_sync(&c, &r);
    CHECK(404, r.status);
    CHECK_MEM("OPTIONS / HTTP/1.1", r.body, r.body_len);
    CHECK(1, server_accepted(s));
    result_clear(&r);
    server_stop(s);
}

static void test_post(void)
{
    current_case = "POST";
    server_t *s = server_start(NULL, false);
    char url[128], expect[512];
    url_of(url, sizeof url, "http", "127.0.0.1", s->port, "/echo");
    /* Framing and connection headers belong to the client: these are dropped. */
    const char *hdrs[] = {"Content-Length", "999", "connection", "close", "Transfer-Encoding", "chunked",
                          "User-Agent", "plugin/1.0", "Host", "api.example", "X-Empty", "", NULL};
    sl_http_call_t c = make_call("POST", url);
    c.headers = hdrs;
    c.body = "hello\0world";
    c.body_len = 11;
    result_t r;
    call_sync(&c, &r);
    const char head[] = "POST /echo HTTP/1.1\r\nUser-Agent: plugin/1.0\r\nHost: api.example\r\nX-Empty: \r\n"
                        "Content-Length: 11\r\nConnection: keep-alive\r\n\r\nhello";
    memcpy(expect, head, sizeof head);
    memcpy(expect + sizeof head, "world", 6);   /* the NUL inside the body is kept */
    CHECK(200, r.status);
    CHECK(sizeof head + 5, r.body_len);
    CHECK(0, memcmp(r.body, expect, sizeof head + 5));
    result_clear(&r);

    current_case = "POST without a body says Content-Length: 0";
    c = make_call("PUT", url);
    call_sync(&c, &r);
    snprintf(expect, sizeof expect,
             "PUT /echo HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUser-Agent: sluice\r\nContent-Length: 0\r\n"
             "Connection: keep-alive\r\n\r\n",
             s->port);
    CHECK(200, r.status);
    CHECK_MEM(expect, r.body, r.body_len);
    result_clear(&r);

    current_case = "DELETE with a body";
    c = make_call("DELETE", url);
    c.body = "x";
    c.body_len = 1;
    call_sync(&c, &r);
    snprintf(expect, sizeof expect,
             "DELETE /echo HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUser-Agent: sluice\r\nContent-Length: 1\r\n"
             "Connection: keep-alive\r\n\r\nx",
             s->port);
    CHECK_MEM(expect, r.body, r.body_len);
    CHECK(1, server_accepted(s));
    result_clear(&r);

    current_case = "no pool: Connection: close";
    result_t r2 = {0};
    c = make_call("GET", url);
    CHECK(1, start(&c, &r2, NULL) != NULL);
    wait_all(&r2, 1, 20000);
    snprintf(expect, sizeof expect,
             "GET /echo HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUser-Agent: sluice\r\nConnection: close\r\n\r\n", s->port);
    CHECK(200, r2.status);
    CHECK_MEM(expect, r2.body, r2.body_len);
    CHECK(2, server_accepted(s));
    CHECK(1, sl_pool_idle_count(pool));
    result_clear(&r2);
    server_stop(s);
}

static void test_bodiless(void)
{
    server_t *s = server_start(NULL, false);
    char url[128];
    result_t r;

    current_case = "HEAD";
    url_of(url, sizeof url, "http", "127.0.0.1", s->port, "/head");
    sl_http_call_t c = make_call("HEAD", url);
    call_sync(&c, &r);
    CHECK(200, r.status);
    CHECK_STR(NULL, r.error);
    CHECK(1, r.n_headers);
    CHECK_STR("Content-Length", r.headers[0]);
    CHECK_STR("100", r.headers[1]);
    CHECK_MEM("", r.body, r.body_len);
    result_clear(&r);

    current_case = "HEAD without a length keeps the connection";
    url_of(url, sizeof url, "http", "127.0.0.1", s->port, "/headbare");
    call_sync(&c, &r);
    CHECK(200, r.status);
    CHECK_MEM("", r.body, r.body_len);
    CHECK(1, sl_pool_idle_count(pool));
    result_clear(&r);

    current_case = "204";
    url_of(url, sizeof url, "http", "127.0.0.1", s->port, "/204");
    c = make_call("GET", url);
    call_sync(&c, &r);
    CHECK(204, r.status);
    CHECK(1, r.n_headers);
    CHECK_STR("X-A", r.headers[0]);
    CHECK_STR("1", r.headers[1]);
    CHECK_MEM("", r.body, r.body_len);
    result_clear(&r);

    current_case = "304";
    url_of(url, sizeof url, "http", "127.0.0.1", s->port, "/304");
    call_sync(&c, &r);
    CHECK(304, r.status);
    CHECK_STR("\"v1\"", r.headers[1]);
    CHECK_MEM("", r.body, r.body_len);
    result_clear(&r);

    current_case = "interim 1xx responses are skipped";
    url_of(url, sizeof url, "http", "127.0.0.1", s->port, "/continue");
    call_sync(&c, &r);
    CHECK(200, r.status);
    CHECK(1, r.n_headers);
    CHECK_MEM("done", r.body, r.body_len);
    result_clear(&r);

    current_case = "headers are copied in order, duplicates kept";
    url_of(url, sizeof url, "http", "127.0.0.1", s->port, "/headers");
    call_sync(&c, &r);
    CHECK(201, r.status);
    CHECK(5, r.n_headers);
    CHECK_STR("X-One", r.headers[0]);
    CHECK_STR("1", r.headers[1]);
    CHECK_STR("x-two", r.headers[2]);
    CHECK_STR("two words", r.headers[3]);
    CHECK_STR("Set-Cookie", r.headers[4]);
    CHECK_STR("a=1", r.headers[5]);
    CHECK_STR("Set-Cookie", r.headers[6]);
    CHECK_STR("b=2", r.headers[7]);
    CHECK_STR("Content-Length", r.headers[8]);
    CHECK_STR("0", r.headers[9]);
    CHECK(1, r.headers_terminated);
    result_clear(&r);

    /* Every one of those left the connection reusable. */
    CHECK(1, server_accepted(s));
    CHECK(1, sl_pool_idle_count(pool));
    server_stop(s);
}

static void test_framing(void)
{
    server_t *s = server_start(NULL, false);
    char url[128];
    result_t r;

    current_case = "chunked";
    url_of(url, sizeof url, "http", "127.0.0.1", s->port, "/chunked");
    sl_http_call_t c = make_call("GET", url);
    call_sync(&c, &r);
    CHECK(200, r.status);
    CHECK_MEM("hello world", r.body, r.body_len);
    CHECK(1, r.body_terminated);
    result_clear(&r);
    CHECK(1, sl_pool_idle_count(pool));

    current_case = "chunked, 1 MiB";
    url_of(url, sizeof url, "http", "127.0.0.1", s->port, "/bigchunked");
    call_sync(&c, &r);
    CHECK(200, r.status);
    CHECK(1 << 20, r.body_len);
    size_t bad = 0;
    for (size_t i = 0; i < r.body_len; i++)
        bad += (unsigned char)r.body[i] != i % 251;
    CHECK(0, bad);
    result_clear(&r);

    current_case = "Content-Length, 1 MiB";
    url_of(url, sizeof url, "http", "127.0.0.1", s->port, "/big?1048576");
    call_sync(&c, &r);
    CHECK(200, r.status);
    CHECK(1 << 20, r.body_len);
    bad = 0;
    for (size_t i = 0; i < r.body_len; i++)
        bad += (unsigned char)r.body[i] != i % 251;
    CHECK(0, bad);
    result_clear(&r);
    CHECK(1, server_accepted(s));
    CHECK(1, sl_pool_idle_count(pool));

    current_case = "close-delimited";
    url_of(url, sizeof url, "http", "127.0.0.1", s->port, "/close?3");
    call_sync(&c, &r);
    CHECK(200, r.status);
    CHECK(1, r.n_headers);
    CHECK_STR("X-Mode", r.headers[0]);
    CHECK_MEM("xxx", r.body, r.body_len);
    result_clear(&r);
    CHECK(0, sl_pool_idle_count(pool));   /* the pooled one was used, then closed */

    current_case = "close-delimited, empty";
    url_of(url, sizeof url, "http", "127.0.0.1", s->port, "/close?0");
    call_sync(&c, &r);
    CHECK(200, r.status);
    CHECK_MEM("", r.body, r.body_len);
    result_clear(&r);

    current_case = "HTTP/1.0 with Content-Length is not kept";
    url_of(url, sizeof url, "http", "127.0.0.1", s->port, "/http10");
    call_sync(&c, &r);
    CHECK(200, r.status);
    CHECK_MEM("ok", r.body, r.body_len);
    result_clear(&r);
    CHECK(0, sl_pool_idle_count(pool));

    current_case = "bytes after the response: not kept";
    url_of(url, sizeof url, "http", "127.0.0.1", s->port, "/extra");
    call_sync(&c, &r);
    CHECK(200, r.status);
    CHECK_MEM("ok", r.body, r.body_len);
    result_clear(&r);
    CHECK(0, sl_pool_idle_count(pool));
    CHECK(4, server_accepted(s));
    server_stop(s);
}

static void test_keepalive(void)
{
    current_case = "keep-alive reuse";
    server_t *s = server_start(NULL, false);
    char url[128];
    url_of(url, sizeof url, "http", "127.0.0.1", s->port, "/echo");
    sl_http_call_t c = make_call("GET", url);
    result_t r;
    for (int i = 0; i < 3; i++) {
        call_sync(&c, &r);
        CHECK(200, r.status);
        result_clear(&r);
    }
    CHECK(1, server_accepted(s));
    CHECK(1, sl_pool_idle_count(pool));

    current_case = "a request started in the callback reuses the connection";
    result_t second = {0};
    memset(&r, 0, sizeof r);
    r.chain = &c;
    r.chained = &second;
    CHECK(1, start(&c, &r, pool) != NULL);
    wait_all(&r, 1, 20000);
    wait_all(&second, 1, 20000);
    CHECK(200, r.status);
    CHECK(200, second.status);
    CHECK(1, server_accepted(s));
    result_clear(&r);
    result_clear(&second);

    current_case = "concurrent requests each take a connection; the pool keeps them all";
    result_t many[20];
    memset(many, 0, sizeof many);
    for (int i = 0; i < 20; i++)
        CHECK(1, start(&c, &many[i], pool) != NULL);
    wait_all(many, 20, 20000);
    int ok = 0;
    for (int i = 0; i < 20; i++) {
        ok += many[i].calls == 1 && many[i].status == 200;
        result_clear(&many[i]);
    }
    CHECK(20, ok);
    CHECK(20, server_accepted(s));   /* the idle one plus 19 new */
    CHECK(20, sl_pool_idle_count(pool));   /* the bound (256) is well above (test_pool.c) */

    current_case = "cancel inside the callback is ignored";
    memset(&r, 0, sizeof r);
    r.cancel_inside = true;
    CHECK(1, start(&c, &r, pool) != NULL);
    wait_all(&r, 1, 20000);
    CHECK(1, r.calls);
    CHECK(200, r.status);
    result_clear(&r);
    server_stop(s);
    run_for(50);   /* the pool notices the closes */
    CHECK(0, sl_pool_idle_count(pool));
}

static void test_retry(void)
{
    current_case = "a pooled connection failing before any byte is retried once";
    server_t *s = server_start(NULL, false);
    char url[128];
    url_of(url, sizeof url, "http", "127.0.0.1", s->port, "/flaky");
    sl_http_call_t c = make_call("GET", url);
    result_t r;
    call_sync(&c, &r);
    CHECK(200, r.status);
    result_clear(&r);
    CHECK(1, sl_pool_idle_count(pool));
    call_sync(&c, &r);   /* the pooled connection is dropped; a fresh one answers */
    CHECK(200, r.status);
    CHECK_MEM("flaky", r.body, r.body_len);
    CHECK(2, server_accepted(s));
    result_clear(&r);

    current_case = "only once";
    url_of(url, sizeof url, "http", "127.0.0.1", s->port, "/drop");
    c = make_call("GET", url);
    call_sync(&c, &r);
    CHECK_ERROR(&r, "connection closed");
    CHECK(3, server_accepted(s));
    result_clear(&r);

    current_case = "a fresh connection is not retried";
    call_sync(&c, &r);
    CHECK_ERROR(&r, "connection closed");
    CHECK(4, server_accepted(s));
    result_clear(&r);
    server_stop(s);
}

static void test_failures(void)
{
    server_t *s = server_start(NULL, false);
    char url[128];
    result_t r;
    sl_http_call_t c;

    struct {
        const char *path;
        const char *error;
    } cases[] = {
        {"/garbage", "bad response"},
        {"/badchunk", "bad response"},
        {"/upgrade", "bad response"},
        {"/hugehead", "bad response"},
        {"/truncated", "connection closed"},
        {"/drop", "connection closed"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        current_case = cases[i].path;
        url_of(url, sizeof url, "http", "127.0.0.1", s->port, cases[i].path);
        c = make_call("GET", url);
        call_sync(&c, &r);
        CHECK_ERROR(&r, cases[i].error);
        result_clear(&r);
    }
    CHECK(0, sl_pool_idle_count(pool));

    current_case = "timeout waiting for the head";
    url_of(url, sizeof url, "http", "127.0.0.1", s->port, "/silent");
    c = make_call("GET", url);
    c.timeout_ms = 200;
    int64_t t0 = sl_now_ms();
    call_sync(&c, &r);
    int64_t took = sl_now_ms() - t0;
    CHECK_ERROR(&r, "timeout");
    CHECK(1, took >= 195 && took < 5000);
    result_clear(&r);

    current_case = "timeout inside the head";
    url_of(url, sizeof url, "http", "127.0.0.1", s->port, "/slowhead");
    c = make_call("GET", url);
    c.timeout_ms = 150;
    call_sync(&c, &r);
    CHECK_ERROR(&r, "timeout");
    result_clear(&r);

    current_case = "oversize, Content-Length";
    url_of(url, sizeof url, "http", "127.0.0.1", s->port, "/big?11");
    c = make_call("GET", url);
    c.max_body = 10;
    call_sync(&c, &r);
    CHECK_ERROR(&r, "response too large");
    result_clear(&r);

    current_case = "exactly max_body is fine";
    url_of(url, sizeof url, "http", "127.0.0.1", s->port, "/big?10");
    call_sync(&c, &r);
    CHECK(200, r.status);
    CHECK(10, r.body_len);
    result_clear(&r);

    current_case = "oversize, chunked";
    url_of(url, sizeof url, "http", "127.0.0.1", s->port, "/chunked");
    call_sync(&c, &r);
    CHECK_ERROR(&r, "response too large");
    result_clear(&r);

    current_case = "oversize, close-delimited";
    url_of(url, sizeof url, "http", "127.0.0.1", s->port, "/close?11");
    call_sync(&c, &r);
    CHECK_ERROR(&r, "response too large");
    result_clear(&r);

    current_case = "oversize, default limit";
    url_of(url, sizeof url, "http", "127.0.0.1", s->port, "/big?16777217");
    c = make_call("GET", url);
    call_sync(&c, &r);
    CHECK_ERROR(&r, "response too large");
    result_clear(&r);
    server_stop(s);

    current_case = "an answer before the whole request was sent: not kept";
    s = server_start_opts(NULL, false, true);
    size_t big = (size_t)8 << 20;
    char *payload = calloc(1, big);
    if (!payload)
        die("calloc");
    url_of(url, sizeof url, "http", "127.0.0.1", s->port, "/early");
    c = make_call("POST", url);
    c.body = payload;
    c.body_len = big;
    call_sync(&c, &r);
    free(payload);
    CHECK(200, r.status);
    CHECK(0, sl_pool_idle_count(pool));
    result_clear(&r);
    server_stop(s);

    current_case = "connect refused";
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || getsockname(fd, (struct sockaddr *)&a, &alen) != 0)
        die("bind");
    close(fd);   /* nothing listens there now */
    url_of(url, sizeof url, "http", "127.0.0.1", ntohs(a.sin_port), "/");
    c = make_call("GET", url);
    call_sync(&c, &r);
    CHECK_ERROR(&r, "connect failed: Connection refused");
    result_clear(&r);
}

static void test_bad_input(void)
{
    /* request targets of 64 KiB + 1 (refused) and exactly 64 KiB (sent) */
    static char long_url[64 * 1024 + 64], max_url[64 * 1024 + 64];
    size_t pre = strlen("http://127.0.0.1:1");
    memcpy(long_url, "http://127.0.0.1:1", pre);
    memset(long_url + pre, 'a', 64 * 1024 + 1);
    long_url[pre] = '/';
    long_url[pre + 64 * 1024 + 1] = '\0';
    memcpy(max_url, long_url, pre + 64 * 1024);
    max_url[pre + 64 * 1024] = '\0';
    struct {
        const char *method;
        const char *url;
        const char *error;
    } cases[] = {
        {"GET", NULL, "bad url"},
        {"GET", "", "bad url"},
        {"GET", "ftp://example.com/", "bad url"},
        {"GET", "http:/example.com/", "bad url"},
        {"GET", "http://", "bad url"},
        {"GET", "http:///path", "bad url"},
        {"GET", "http://user@example.com/", "bad url"},
        {"GET", "http://example.com:/", "bad url"},
        {"GET", "http://example.com:0/", "bad url"},
        {"GET", "http://example.com:65536/", "bad url"},
        {"GET", "http://example.com:1234567/", "bad url"},
        {"GET", "http://example.com:80a/", "bad url"},
        {"GET", "http://exa mple.com/", "bad url"},
        {"GET", "http://example.com/a b", "bad url"},
        {"GET", "http://example.com/a\r\nX-Injected: 1", "bad url"},
        {"GET", "http://example.com/\x7f", "bad url"},
        {"GET", "http://example.com/caf\xc3\xa9", "bad url"},
        {"GET", "http://[::1/", "bad url"},
        {"GET", "http://[zz::1]/", "bad url"},
        {"GET", "http://[]/", "bad url"},
        {"GET", "http://aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.com/", "bad url"},
        {"GET", long_url, "bad url"},
        {"", "http://127.0.0.1/", "bad method"},
        {"GE T", "http://127.0.0.1/", "bad method"},
        {"GET\r\n", "http://127.0.0.1/", "bad method"},
        {"CONNECT", "http://127.0.0.1/", "bad method"},
        {"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "http://127.0.0.1/", "bad method"},   /* 33 */
    };
    result_t r;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        current_case = cases[i].url ? cases[i].url : "(null url)";
        sl_http_call_t c = make_call(cases[i].method, cases[i].url);
        call_sync(&c, &r);
        CHECK_ERROR(&r, cases[i].error);
        result_clear(&r);
    }

    const char *bad_headers[][5] = {
        {"X-A", "1\r\nX-Injected: 1", NULL},
        {"X-A", "line\nbreak", NULL},
        {"X-A", "bell\a", NULL},
        {"X A", "1", NULL},
        {"X-A:", "1", NULL},
        {"", "1", NULL},
        {"X-A", NULL},                       /* a name without a value */
        {"Host", "", NULL},
        {"Host", "a", "host", "b", NULL},    /* two Hosts */
    };
    for (size_t i = 0; i < sizeof bad_headers / sizeof bad_headers[0]; i++) {
        current_case = "bad header";
        sl_http_call_t c = make_call("GET", "http://127.0.0.1:1/");
        c.headers = bad_headers[i];
        call_sync(&c, &r);
        CHECK_ERROR(&r, "bad header");
        result_clear(&r);
    }

    current_case = "the longest target is sent";
    sl_http_call_t longest = make_call("GET", max_url);
    call_sync(&longest, &r);
    CHECK_ERROR(&r, "connect failed: Connection refused");
    result_clear(&r);

    current_case = "bad body";
    sl_http_call_t c = make_call("POST", "http://127.0.0.1:1/");
    c.body_len = 3;
    call_sync(&c, &r);
    CHECK_ERROR(&r, "bad body");
    result_clear(&r);

    current_case = "a name without a resolver";
    memset(&r, 0, sizeof r);
    c = make_call("GET", "http://good.sluice.test:1/");
    r.req = sl_http_client_request(base, NULL, pool, &c, on_response, &r);
    CHECK(1, r.req != NULL);
    CHECK(0, r.calls);
    wait_all(&r, 1, 20000);
    CHECK_ERROR(&r, "connect failed: cannot resolve good.sluice.test: no resolver");
    result_clear(&r);
}

static void test_cancel(void)
{
    server_t *s = server_start(NULL, false);
    char url[128];
    result_t r = {0};

    current_case = "cancel while waiting for the response";
    url_of(url, sizeof url, "http", "127.0.0.1", s->port, "/silent");
    sl_http_call_t c = make_call("POST", url);
    c.body = "payload";
    c.body_len = 7;
    c.timeout_ms = 0;   /* the default 5 s: far away */
    CHECK(1, start(&c, &r, pool) != NULL);
    int64_t deadline = sl_now_ms() + 5000;
    while (server_accepted(s) == 0 && sl_now_ms() < deadline)
        event_base_loop(base, EVLOOP_ONCE);
    run_for(50);
    CHECK(1, server_accepted(s));
    sl_http_client_cancel(r.req);
    run_for(100);
    CHECK(0, r.calls);
    CHECK(0, sl_pool_idle_count(pool));

    current_case = "cancel before anything happened";
    memset(&r, 0, sizeof r);
    url_of(url, sizeof url, "http", "127.0.0.1", s->port, "/echo");
    c = make_call("GET", url);
    CHECK(1, start(&c, &r, pool) != NULL);
    sl_http_client_cancel(r.req);
    run_for(100);
    CHECK(0, r.calls);

    current_case = "cancel a request whose error is pending";
    memset(&r, 0, sizeof r);
    c = make_call("GET", "nonsense");
    CHECK(1, start(&c, &r, pool) != NULL);
    sl_http_client_cancel(r.req);
    run_for(50);
    CHECK(0, r.calls);

    current_case = "cancel a reused connection mid-body";
    url_of(url, sizeof url, "http", "127.0.0.1", s->port, "/echo");
    c = make_call("GET", url);
    call_sync(&c, &r);
    CHECK(200, r.status);
    result_clear(&r);
    CHECK(1, sl_pool_idle_count(pool));
    url_of(url, sizeof url, "http", "127.0.0.1", s->port, "/slowhead");
    c = make_call("GET", url);
    CHECK(1, start(&c, &r, pool) != NULL);
    CHECK(0, sl_pool_idle_count(pool));
    run_for(100);
    sl_http_client_cancel(r.req);
    run_for(50);
    CHECK(0, r.calls);
    CHECK(0, sl_pool_idle_count(pool));
    server_stop(s);
}

static int udp_socket(void)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0)
        die("udp");
    return fd;
}

static struct evdns_base *resolver_at(int fd)
{
    struct sockaddr_in a;
    socklen_t alen = sizeof a;
    struct evdns_base *d = evdns_base_new(base, 0);
    char ns[64];
    if (!d || getsockname(fd, (struct sockaddr *)&a, &alen) != 0)
        die("evdns");
    snprintf(ns, sizeof ns, "127.0.0.1:%d", ntohs(a.sin_port));
    if (evdns_base_nameserver_ip_add(d, ns) != 0)
        die("evdns");
    return d;
}

/* A DNS reply is the query with QR set and a response code: here RA and
 * NXDOMAIN (RFC 1035 4.1.1), no records. */
static void nxdomain_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    (void)arg;
    unsigned char msg[512];
    struct sockaddr_storage from;
    socklen_t flen = sizeof from;
    ssize_t n = recvfrom(fd, msg, sizeof msg, 0, (struct sockaddr *)&from, &flen);
    if (n < 12)
        return;
    msg[2] |= 0x80;
    msg[3] = 0x83;
    sendto(fd, msg, (size_t)n, 0, (struct sockaddr *)&from, flen);
}

static void test_dns(void)
{
    server_t *s = server_start(NULL, false);
    char url[128], expect[512];
    result_t r;

    current_case = "a host name";
    url_of(url, sizeof url, "http", "good.sluice.test", s->port, "/echo");
    sl_http_call_t c = make_call("GET", url);
    call_sync(&c, &r);
    snprintf(expect, sizeof expect,
             "GET /echo HTTP/1.1\r\nHost: good.sluice.test:%d\r\nUser-Agent: sluice\r\nConnection: keep-alive\r\n\r\n",
             s->port);
    CHECK(200, r.status);
    CHECK_MEM(expect, r.body, r.body_len);
    result_clear(&r);

    /* Two tiny name servers on this loop: one answers every query with
     * NXDOMAIN, one never answers (the deadline covers the lookup, and
     * cancelling mid-lookup is clean). */
    int nx_fd = udp_socket(), mute_fd = udp_socket();
    struct event *nx_ev = event_new(base, nx_fd, EV_READ | EV_PERSIST, nxdomain_cb, NULL);
    event_add(nx_ev, NULL);
    struct evdns_base *nx = resolver_at(nx_fd), *mute = resolver_at(mute_fd);

    current_case = "a name nobody knows";
    url_of(url, sizeof url, "http", "nowhere.sluice.test", s->port, "/echo");
    c = make_call("GET", url);
    memset(&r, 0, sizeof r);
    r.req = sl_http_client_request(base, nx, pool, &c, on_response, &r);
    CHECK(1, r.req != NULL);
    wait_all(&r, 1, 20000);
    CHECK_ERROR(&r, "connect failed: cannot resolve nowhere.sluice.test: nodename nor servname provided, or not known");
    result_clear(&r);

    current_case = "timeout during the lookup";
    url_of(url, sizeof url, "http", "slow.sluice.test", s->port, "/echo");
    c = make_call("GET", url);
    c.timeout_ms = 200;
    memset(&r, 0, sizeof r);
    r.req = sl_http_client_request(base, mute, pool, &c, on_response, &r);
    CHECK(1, r.req != NULL);
    wait_all(&r, 1, 20000);
    CHECK_ERROR(&r, "timeout");
    result_clear(&r);

    current_case = "cancel during the lookup";
    r.req = sl_http_client_request(base, mute, pool, &c, on_response, &r);
    CHECK(1, r.req != NULL);
    run_for(50);
    sl_http_client_cancel(r.req);
    run_for(50);
    CHECK(0, r.calls);

    evdns_base_free(mute, 1);
    evdns_base_free(nx, 1);
    event_free(nx_ev);
    close(nx_fd);
    close(mute_fd);
    CHECK(1, server_accepted(s));
    server_stop(s);
}

static void test_ipv6(void)
{
    current_case = "IPv6 literal";
    server_t *s = server_start(NULL, true);
    if (!s) {
        printf("note: no IPv6 loopback here; IPv6 test skipped\n");
        return;
    }
    char url[128], expect[512];
    snprintf(url, sizeof url, "http://[::1]:%d/echo", s->port);
    sl_http_call_t c = make_call("GET", url);
    result_t r;
    call_sync(&c, &r);
    snprintf(expect, sizeof expect,
             "GET /echo HTTP/1.1\r\nHost: [::1]:%d\r\nUser-Agent: sluice\r\nConnection: keep-alive\r\n\r\n", s->port);
    CHECK(200, r.status);
    CHECK_MEM(expect, r.body, r.body_len);
    result_clear(&r);
    server_stop(s);
}

/* ---- stream mode ------------------------------------------------------------------ */

static void gated_url(char *buf, size_t len, int port, const char *route, int gate)
{
    char path[64];
    snprintf(path, sizeof path, "%s?%d", route, gate);
    url_of(buf, len, "http", "127.0.0.1", port, path);
}

static void test_stream_sse(void)
{
    server_t *s = server_start(NULL, false);
    char url[128];
    sresult_t r;

    current_case = "stream: SSE pieces arrive before the server sends the rest";
    int g = gate_now();
    gated_url(url, sizeof url, s->port, "/sse", g);
    sl_http_call_t c = make_call("GET", url);
    memset(&r, 0, sizeof r);
    CHECK(1, sstart(&c, &r) != NULL);
    CHECK(0, r.heads + r.datas + r.ends);
    swait(&r, 11, 5000);
    /* The server waits at the gate: this is everything it has sent. */
    CHECK(1, r.heads);
    CHECK(200, r.status);
    CHECK(2, r.n_headers);
    CHECK_STR("Content-Type", r.headers[0]);
    CHECK_STR("text/event-stream", r.headers[1]);
    CHECK_STR("Transfer-Encoding", r.headers[2]);
    CHECK_STR("chunked", r.headers[3]);
    CHECK(1, r.headers_terminated);
    CHECK(1, r.datas);
    CHECK_MEM("data: one\n\n", r.body, r.body_len);
    CHECK(0, r.ends);
    gate_open(g + 1);
    swait(&r, 22, 5000);   /* an event split across two chunks */
    CHECK_MEM("data: one\n\ndata: two\n\n", r.body, r.body_len);
    CHECK(0, r.ends);
    gate_open(g + 2);
    swait(&r, 0, 5000);
    CHECK_STREAM(&r, 1, NULL, "data: one\n\ndata: two\n\ndata: [DONE]\n\n");
    CHECK(200, r.status);
    sresult_clear(&r);
    CHECK(1, sl_pool_idle_count(pool));

    current_case = "stream: the connection is reused after a complete stream";
    url_of(url, sizeof url, "http", "127.0.0.1", s->port, "/together");
    c = make_call("GET", url);
    stream_sync(&c, &r);
    CHECK_STREAM(&r, 1, NULL, "onetwothree");
    sresult_clear(&r);
    CHECK(1, server_accepted(s));
    CHECK(1, sl_pool_idle_count(pool));

    current_case = "stream: a buffered request takes the streamed connection";
    result_t b;
    url_of(url, sizeof url, "http", "127.0.0.1", s->port, "/together");
    sl_http_call_t bc = make_call("GET", url);
    call_sync(&bc, &b);
    CHECK(200, b.status);
    CHECK_MEM("onetwothree", b.body, b.body_len);
    result_clear(&b);
    CHECK(1, server_accepted(s));

    current_case = "stream: a stream started in on_end reuses the connection";
    sresult_t second = {0};
    memset(&r, 0, sizeof r);
    r.chain = &c;
    r.chained = &second;
    CHECK(1, sstart(&c, &r) != NULL);
    swait(&r, 0, 20000);
    swait(&second, 0, 20000);
    CHECK_STREAM(&r, 1, NULL, "onetwothree");
    CHECK_STREAM(&second, 1, NULL, "onetwothree");
    sresult_clear(&r);
    sresult_clear(&second);
    CHECK(1, server_accepted(s));

    current_case = "stream: interim 1xx responses are skipped";
    url_of(url, sizeof url, "http", "127.0.0.1", s->port, "/continue");
    c = make_call("GET", url);
    stream_sync(&c, &r);
    CHECK_STREAM(&r, 1, NULL, "done");
    CHECK(200, r.status);
    CHECK(1, r.n_headers);
    sresult_clear(&r);

    current_case = "stream: 204 has a head and no data";
    url_of(url, sizeof url, "http", "127.0.0.1", s->port, "/204");
    c = make_call("GET", url);
    stream_sync(&c, &r);
    CHECK_STREAM(&r, 1, NULL, "");
    CHECK(204, r.status);
    CHECK(0, r.datas);
    CHECK(1, r.n_headers);
    CHECK_STR("X-A", r.headers[0]);
    CHECK_STR("1", r.headers[1]);
    sresult_clear(&r);

    current_case = "stream: HEAD";
    url_of(url, sizeof url, "http", "127.0.0.1", s->port, "/head");
    c = make_call("HEAD", url);
    stream_sync(&c, &r);
    CHECK_STREAM(&r, 1, NULL, "");
    CHECK(200, r.status);
    CHECK(0, r.datas);
    sresult_clear(&r);

    current_case = "stream: on_head and on_data may be NULL";
    url_of(url, sizeof url, "http", "127.0.0.1", s->port, "/together");
    c = make_call("GET", url);
    const sl_http_stream_cbs_t end_only = {NULL, NULL, on_s_end};
    memset(&r, 0, sizeof r);
    r.req = sl_http_client_stream(base, dns, pool, &c, &end_only, &r);
    CHECK(1, r.req != NULL);
    swait(&r, 0, 20000);
    CHECK_STREAM(&r, 0, NULL, "");
    sresult_clear(&r);
    CHECK(1, server_accepted(s));   /* every one of these on the first connection */
    CHECK(1, sl_pool_idle_count(pool));

    current_case = "stream: NULL arguments";
    const sl_http_stream_cbs_t no_end = {on_s_head, on_s_data, NULL};
    CHECK(1, sl_http_client_stream(NULL, dns, pool, &c, &scbs, NULL) == NULL);
    CHECK(1, sl_http_client_stream(base, dns, pool, NULL, &scbs, NULL) == NULL);
    CHECK(1, sl_http_client_stream(base, dns, pool, &c, NULL, NULL) == NULL);
    CHECK(1, sl_http_client_stream(base, dns, pool, &c, &no_end, NULL) == NULL);
    server_stop(s);
    run_for(50);   /* the pool notices the close */
    CHECK(0, sl_pool_idle_count(pool));
}

static void test_stream_framing(void)
{
    server_t *s = server_start(NULL, false);
    char url[128];
    sresult_t r;

    current_case = "stream: Content-Length body in pieces";
    int g = gate_now();
    gated_url(url, sizeof url, s->port, "/streamlen", g);
    sl_http_call_t c = make_call("GET", url);
    memset(&r, 0, sizeof r);
    CHECK(1, sstart(&c, &r) != NULL);
    swait(&r, 5, 5000);
    CHECK_MEM("part1", r.body, r.body_len);
    CHECK(1, r.heads);
    CHECK(0, r.ends);
    gate_open(g + 1);
    swait(&r, 0, 5000);
    CHECK_STREAM(&r, 1, NULL, "part1part2");
    sresult_clear(&r);
    CHECK(1, sl_pool_idle_count(pool));

    current_case = "stream: close-delimited body in pieces";
    g = gate_now();
    gated_url(url, sizeof url, s->port, "/streamclose", g);
    c = make_call("GET", url);
    memset(&r, 0, sizeof r);
    CHECK(1, sstart(&c, &r) != NULL);
    swait(&r, 5, 5000);
    CHECK_MEM("part1", r.body, r.body_len);
    CHECK(1, r.heads);
    CHECK(0, r.ends);
    gate_open(g + 1);
    swait(&r, 0, 5000);
    CHECK_STREAM(&r, 1, NULL, "part1part2");
    CHECK(1, r.n_headers);
    CHECK_STR("X-Mode", r.headers[0]);
    sresult_clear(&r);
    CHECK(0, sl_pool_idle_count(pool));   /* the pooled one was used, then closed */
    CHECK(1, server_accepted(s));

    current_case = "stream: no max_body, Content-Length";
    url_of(url, sizeof url, "http", "127.0.0.1", s->port, "/big?1048576");
    c = make_call("GET", url);
    c.max_body = 10;
    stream_sync(&c, &r);
    CHECK(1, r.heads);
    CHECK(1, r.ends);
    CHECK_STR(NULL, r.error);
    CHECK(1 << 20, r.body_len);
    size_t bad = 0;
    for (size_t i = 0; i < r.body_len; i++)
        bad += (unsigned char)r.body[i] != i % 251;
    CHECK(0, bad);
    sresult_clear(&r);

    current_case = "stream: no max_body, chunked";
    url_of(url, sizeof url, "http", "127.0.0.1", s->port, "/bigchunked");
    stream_sync(&c, &r);
    CHECK(1, r.heads);
    CHECK(1, r.ends);
    CHECK_STR(NULL, r.error);
    CHECK(1 << 20, r.body_len);
    bad = 0;
    for (size_t i = 0; i < r.body_len; i++)
        bad += (unsigned char)r.body[i] != i % 251;
    CHECK(0, bad);
    sresult_clear(&r);
    CHECK(2, server_accepted(s));
    CHECK(1, sl_pool_idle_count(pool));
    server_stop(s);
    run_for(50);
    CHECK(0, sl_pool_idle_count(pool));
}

static void test_stream_failures(void)
{
    server_t *s = server_start(NULL, false);
    char url[128];
    sresult_t r;
    sl_http_call_t c;

    struct {
        const char *path;   /* NULL: the url is the whole string in error's place */
        const char *url;
        const char *error;
    } before_head[] = {
        {NULL, "nonsense", "bad url"},
        {NULL, "http://127.0.0.1:1/", "connect failed: Connection refused"},
        {"/drop", NULL, "connection closed"},
        {"/garbage", NULL, "bad response"},
        {"/upgrade", NULL, "bad response"},
        {"/hugehead", NULL, "bad response"},
    };
    for (size_t i = 0; i < sizeof before_head / sizeof before_head[0]; i++) {
        current_case = before_head[i].error;
        if (before_head[i].path)
            url_of(url, sizeof url, "http", "127.0.0.1", s->port, before_head[i].path);
        c = make_call("GET", before_head[i].path ? url : before_head[i].url);
        stream_sync(&c, &r);
        CHECK_STREAM(&r, 0, before_head[i].error, "");
        CHECK(0, r.datas);
        sresult_clear(&r);
    }

    current_case = "stream: the server closes mid-body";
    int g = gate_now();
    gated_url(url, sizeof url, s->port, "/midclose", g);
    c = make_call("GET", url);
    memset(&r, 0, sizeof r);
    CHECK(1, sstart(&c, &r) != NULL);
    swait(&r, 7, 5000);
    CHECK_MEM("partial", r.body, r.body_len);
    CHECK(0, r.ends);
    gate_open(g + 1);
    swait(&r, 0, 5000);
    CHECK_STREAM(&r, 1, "connection closed", "partial");
    sresult_clear(&r);

    current_case = "stream: Content-Length cut short";
    url_of(url, sizeof url, "http", "127.0.0.1", s->port, "/truncated");
    c = make_call("GET", url);
    stream_sync(&c, &r);
    CHECK_STREAM(&r, 1, "connection closed", "abc");
    sresult_clear(&r);

    current_case = "stream: a bad chunk after good data";
    url_of(url, sizeof url, "http", "127.0.0.1", s->port, "/badchunk2");
    stream_sync(&c, &r);
    CHECK_STREAM(&r, 1, "bad response", "ok");
    sresult_clear(&r);
    CHECK(0, sl_pool_idle_count(pool));
    server_stop(s);
}

static void test_stream_timeouts(void)
{
    server_t *s = server_start(NULL, false);
    char url[128];
    sresult_t r;

    current_case = "stream: timeout waiting for the head";
    url_of(url, sizeof url, "http", "127.0.0.1", s->port, "/silent");
    sl_http_call_t c = make_call("GET", url);
    c.timeout_ms = 200;
    c.idle_timeout_ms = 5000;
    int64_t t0 = sl_now_ms();
    stream_sync(&c, &r);
    int64_t took = sl_now_ms() - t0;
    CHECK_STREAM(&r, 0, "timeout", "");
    CHECK(1, took >= 195 && took < 5000);
    sresult_clear(&r);

    current_case = "stream: timeout inside the head";
    url_of(url, sizeof url, "http", "127.0.0.1", s->port, "/slowhead");
    c.timeout_ms = 150;
    stream_sync(&c, &r);
    CHECK_STREAM(&r, 0, "timeout", "");
    sresult_clear(&r);

    current_case = "stream: idle timeout after some data";
    url_of(url, sizeof url, "http", "127.0.0.1", s->port, "/idle");
    c.timeout_ms = 5000;
    c.idle_timeout_ms = 200;
    stream_sync(&c, &r);
    CHECK_STREAM(&r, 1, "timeout", "a");
    CHECK(1, r.end_ms - r.last_data_ms >= 195 && r.end_ms - r.last_data_ms < 5000);
    sresult_clear(&r);

    current_case = "stream: the head timeout does not bound the body; idle 0 is 60 s";
    int g = gate_now();
    gated_url(url, sizeof url, s->port, "/sse", g);
    c = make_call("GET", url);
    c.timeout_ms = 150;
    c.idle_timeout_ms = 0;
    memset(&r, 0, sizeof r);
    CHECK(1, sstart(&c, &r) != NULL);
    swait(&r, 11, 5000);
    run_for(300);
    CHECK(0, r.ends);
    gate_open(g + 2);
    swait(&r, 0, 5000);
    CHECK_STREAM(&r, 1, NULL, "data: one\n\ndata: two\n\ndata: [DONE]\n\n");
    sresult_clear(&r);

    current_case = "stream: the head alone ends the head timeout";
    g = gate_now();
    gated_url(url, sizeof url, s->port, "/headonly", g);
    c = make_call("GET", url);
    c.timeout_ms = 150;
    memset(&r, 0, sizeof r);
    CHECK(1, sstart(&c, &r) != NULL);
    int64_t deadline = sl_now_ms() + 5000;
    while (r.heads == 0 && sl_now_ms() < deadline)
        event_base_loop(base, EVLOOP_ONCE);
    run_for(300);
    CHECK(1, r.heads);
    CHECK(0, r.ends);
    gate_open(g + 1);
    swait(&r, 0, 5000);
    CHECK_STREAM(&r, 1, NULL, "later");
    sresult_clear(&r);

    current_case = "stream: every read restarts the idle timer";
    url_of(url, sizeof url, "http", "127.0.0.1", s->port, "/trickle");
    c = make_call("GET", url);
    c.idle_timeout_ms = 400;   /* shorter than the whole body, five times a gap */
    t0 = sl_now_ms();
    stream_sync(&c, &r);
    took = sl_now_ms() - t0;
    CHECK_STREAM(&r, 1, NULL, "xxxxx");
    CHECK(1, took >= 495);
    sresult_clear(&r);
    server_stop(s);
}

static void test_stream_cancel(void)
{
    server_t *s = server_start(NULL, false);
    char url[128];
    sresult_t r;

    current_case = "stream: cancel inside on_data";
    int g = gate_now();
    gated_url(url, sizeof url, s->port, "/sse", g);
    sl_http_call_t c = make_call("GET", url);
    memset(&r, 0, sizeof r);
    r.cancel_at_data = 1;
    CHECK(1, sstart(&c, &r) != NULL);
    swait(&r, 11, 5000);
    gate_open(g + 2);   /* the rest is sent to a closed connection */
    run_for(100);
    CHECK(1, r.heads);
    CHECK(1, r.datas);
    CHECK(0, r.ends);
    CHECK_MEM("data: one\n\n", r.body, r.body_len);
    sresult_clear(&r);
    CHECK(0, sl_pool_idle_count(pool));

    /* /together hands the decoder three chunks at once: the cancel must stop
     * it between them. */
    current_case = "stream: cancel inside on_data, more chunks in the same read";
    url_of(url, sizeof url, "http", "127.0.0.1", s->port, "/together");
    c = make_call("GET", url);
    for (int at = 1; at <= 3; at++) {
        static const char *const seen[] = {"", "one", "onetwo", "onetwothree"};
        memset(&r, 0, sizeof r);
        r.cancel_at_data = at;
        CHECK(1, sstart(&c, &r) != NULL);
        swait(&r, strlen(seen[at]), 5000);
        run_for(50);
        CHECK(1, r.heads);
        CHECK(at, r.datas);
        CHECK(0, r.ends);
        CHECK_MEM(seen[at], r.body, r.body_len);
        sresult_clear(&r);
    }
    CHECK(0, sl_pool_idle_count(pool));

    current_case = "stream: cancel inside on_data, Content-Length";
    char big_url[128];
    url_of(big_url, sizeof big_url, "http", "127.0.0.1", s->port, "/big?1048576");
    sl_http_call_t big = make_call("GET", big_url);
    memset(&r, 0, sizeof r);
    r.cancel_at_data = 1;
    CHECK(1, sstart(&big, &r) != NULL);
    swait(&r, 1, 5000);
    run_for(50);
    CHECK(1, r.heads);
    CHECK(1, r.datas);
    CHECK(0, r.ends);
    size_t bad = 0;
    for (size_t i = 0; i < r.body_len; i++)
        bad += (unsigned char)r.body[i] != i % 251;
    CHECK(0, bad);
    sresult_clear(&r);
    CHECK(0, sl_pool_idle_count(pool));

    current_case = "stream: cancel inside on_head";
    memset(&r, 0, sizeof r);
    r.cancel_in_head = true;
    CHECK(1, sstart(&c, &r) != NULL);
    int64_t deadline = sl_now_ms() + 5000;
    while (r.heads == 0 && sl_now_ms() < deadline)
        event_base_loop(base, EVLOOP_ONCE);
    run_for(50);
    CHECK(1, r.heads);
    CHECK(0, r.datas);
    CHECK(0, r.ends);
    sresult_clear(&r);
    CHECK(0, sl_pool_idle_count(pool));

    current_case = "stream: cancel inside on_end is ignored";
    memset(&r, 0, sizeof r);
    r.cancel_in_end = true;
    CHECK(1, sstart(&c, &r) != NULL);
    swait(&r, 0, 5000);
    run_for(20);
    CHECK_STREAM(&r, 1, NULL, "onetwothree");
    sresult_clear(&r);
    CHECK(1, sl_pool_idle_count(pool));

    current_case = "stream: cancel between pieces";
    g = gate_now();
    gated_url(url, sizeof url, s->port, "/sse", g);
    c = make_call("GET", url);
    memset(&r, 0, sizeof r);
    CHECK(1, sstart(&c, &r) != NULL);
    CHECK(0, sl_pool_idle_count(pool));   /* it took the pooled connection */
    swait(&r, 11, 5000);
    sl_http_client_cancel(r.req);
    gate_open(g + 2);
    run_for(100);
    CHECK(1, r.heads);
    CHECK(1, r.datas);
    CHECK(0, r.ends);
    sresult_clear(&r);
    CHECK(0, sl_pool_idle_count(pool));

    current_case = "stream: cancel before anything happened";
    memset(&r, 0, sizeof r);
    CHECK(1, sstart(&c, &r) != NULL);
    sl_http_client_cancel(r.req);
    run_for(50);
    CHECK(0, r.heads + r.datas + r.ends);

    current_case = "stream: cancel a stream whose error is pending";
    c = make_call("GET", "nonsense");
    CHECK(1, sstart(&c, &r) != NULL);
    sl_http_client_cancel(r.req);
    run_for(50);
    CHECK(0, r.heads + r.datas + r.ends);
    server_stop(s);
}

/* ---- TLS ---------------------------------------------------------------------------- */

static char ca_file[128];

static bool make_certs(void)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "cd %s && "
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key "
             "-out ca.pem -days 2 -subj /CN=sluice-test-ca -addext basicConstraints=critical,CA:TRUE "
             "-addext keyUsage=critical,keyCertSign,cRLSign && "
             "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout srv.key -out srv.csr "
             "-subj /CN=good.sluice.test && "
             "printf 'subjectAltName=DNS:good.sluice.test,IP:127.0.0.1\\n' > ext.cnf && "
             "openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem -days 2 "
             "-extfile ext.cnf",
             tmpdir);
    char quiet[2100];
    snprintf(quiet, sizeof quiet, "( %s ) >/dev/null 2>&1", cmd);
    if (system(quiet) != 0)
        return false;
    snprintf(ca_file, sizeof ca_file, "%s/ca.pem", tmpdir);
    return true;
}

static SSL_CTX *server_tls_ctx(void)
{
    char cert[128], key[128];
    snprintf(cert, sizeof cert, "%s/srv.pem", tmpdir);
    snprintf(key, sizeof key, "%s/srv.key", tmpdir);
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx || SSL_CTX_use_certificate_file(ctx, cert, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
        die("server TLS context");
    return ctx;
}

static void test_tls(void)
{
    if (!make_certs()) {
        current_case = "TLS";
        CHECK_FAIL("cannot make test certificates with the openssl CLI");
        return;
    }
    SSL_CTX *sctx = server_tls_ctx();
    server_t *s = server_start(sctx, false);
    char url[128], expect[512];
    result_t r;

    current_case = "https, verified against the CA file";
    url_of(url, sizeof url, "https", "good.sluice.test", s->port, "/echo");
    sl_http_call_t c = make_call("GET", url);
    c.ca_file = ca_file;
    call_sync(&c, &r);
    snprintf(expect, sizeof expect,
             "GET /echo HTTP/1.1\r\nHost: good.sluice.test:%d\r\nUser-Agent: sluice\r\nConnection: keep-alive\r\n\r\n",
             s->port);
    CHECK(200, r.status);
    CHECK_STR(NULL, r.error);
    CHECK_MEM(expect, r.body, r.body_len);
    result_clear(&r);

    current_case = "https keep-alive";
    call_sync(&c, &r);
    CHECK(200, r.status);
    result_clear(&r);
    CHECK(1, server_accepted(s));
    CHECK(1, sl_pool_idle_count(pool));

    current_case = "https stream";
    url_of(url, sizeof url, "https", "good.sluice.test", s->port, "/together");
    sresult_t sr;
    stream_sync(&c, &sr);
    CHECK_STREAM(&sr, 1, NULL, "onetwothree");
    sresult_clear(&sr);
    CHECK(1, server_accepted(s));

    current_case = "https chunked and close-delimited";
    url_of(url, sizeof url, "https", "good.sluice.test", s->port, "/chunked");
    call_sync(&c, &r);
    CHECK(200, r.status);
    CHECK_MEM("hello world", r.body, r.body_len);
    result_clear(&r);
    url_of(url, sizeof url, "https", "good.sluice.test", s->port, "/close?5");
    call_sync(&c, &r);
    CHECK(200, r.status);
    CHECK_MEM("xxxxx", r.body, r.body_len);
    result_clear(&r);
    CHECK(1, server_accepted(s));

    current_case = "https to an IP literal in the certificate";
    url_of(url, sizeof url, "https", "127.0.0.1", s->port, "/echo");
    call_sync(&c, &r);
    CHECK(200, r.status);
    result_clear(&r);
    CHECK(2, server_accepted(s));

    current_case = "wrong host name";
    url_of(url, sizeof url, "https", "wrong.sluice.test", s->port, "/echo");
    c.url = url;
    call_sync(&c, &r);
    CHECK_ERROR(&r, "tls: certificate verification failed: hostname mismatch");
    result_clear(&r);

    current_case = "wrong host name, verify off";
    c.tls_verify = false;
    call_sync(&c, &r);
    CHECK(200, r.status);
    result_clear(&r);

    current_case = "verify off is a different pool key from verify on";
    c.tls_verify = true;
    url_of(url, sizeof url, "https", "127.0.0.1", s->port, "/echo");
    int before = server_accepted(s);
    c.tls_verify = false;
    call_sync(&c, &r);
    CHECK(200, r.status);
    result_clear(&r);
    CHECK(before + 1, server_accepted(s));
    c.tls_verify = true;

    current_case = "the system store does not know the test CA";
    url_of(url, sizeof url, "https", "good.sluice.test", s->port, "/echo");
    c.ca_file = NULL;
    call_sync(&c, &r);
    CHECK_ERROR(&r, "tls: certificate verification failed: unable to get local issuer certificate");
    result_clear(&r);

    current_case = "a CA file that does not exist";
    c.ca_file = "/nonexistent/ca.pem";
    call_sync(&c, &r);
    CHECK_ERROR(&r, "tls: cannot load /nonexistent/ca.pem: No such file or directory");
    result_clear(&r);

    current_case = "a CA file without certificates";
    char junk[160];
    snprintf(junk, sizeof junk, "%s/hosts", tmpdir);
    c.ca_file = junk;
    call_sync(&c, &r);
    char expect_err[256];
    snprintf(expect_err, sizeof expect_err, "tls: cannot load %s: no certificate or crl found", junk);
    CHECK_ERROR(&r, expect_err);
    result_clear(&r);
    server_stop(s);

    current_case = "https to a server that does not speak TLS";
    server_t *plain = server_start(NULL, false);
    plain->greet = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
    url_of(url, sizeof url, "https", "127.0.0.1", plain->port, "/");
    c.ca_file = ca_file;
    call_sync(&c, &r);
    CHECK_ERROR(&r, "tls: wrong version number");
    result_clear(&r);

    current_case = "https to a server that closes at once";
    plain->greet = "";
    call_sync(&c, &r);
    CHECK_ERROR(&r, "tls: unexpected eof while reading");
    result_clear(&r);
    server_stop(plain);

    current_case = "cancel during the handshake";
    s = server_start(sctx, false);
    s->greet = NULL;
    url_of(url, sizeof url, "https", "127.0.0.1", s->port, "/silent");
    memset(&r, 0, sizeof r);
    CHECK(1, start(&c, &r, pool) != NULL);
    sl_http_client_cancel(r.req);
    run_for(50);
    CHECK(0, r.calls);
    server_stop(s);
    SSL_CTX_free(sctx);
}

static void guard_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/sluice-httpc-XXXXXX");
    if (!mkdtemp(tmpdir))
        die("mkdtemp");
    char hosts[128];
    snprintf(hosts, sizeof hosts, "%s/hosts", tmpdir);
    FILE *f = fopen(hosts, "w");
    if (!f)
        die("hosts");
    fprintf(f, "127.0.0.1 good.sluice.test wrong.sluice.test\n");
    fclose(f);

    base = event_base_new();
    pool = base ? sl_pool_new(base) : NULL;
    dns = base ? evdns_base_new(base, 0) : NULL;
    if (!pool || !dns || evdns_base_load_hosts(dns, hosts) != 0)
        die("setup");
    /* Keeps EVLOOP_ONCE from sleeping forever if a test goes wrong. */
    struct event *guard = event_new(base, -1, EV_PERSIST, guard_cb, NULL);
    struct timeval tick = {0, 20000};
    event_add(guard, &tick);

    test_defaults();
    test_get();
    test_post();
    test_bodiless();
    test_framing();
    test_keepalive();
    test_retry();
    test_failures();
    test_bad_input();
    test_cancel();
    test_stream_sse();
    test_stream_framing();
    test_stream_failures();
    test_stream_timeouts();
    test_stream_cancel();
    test_dns();
    test_ipv6();
    test_tls();

    sl_pool_free(pool);
    evdns_base_free(dns, 1);
    event_free(guard);
    for (int i = 0; i < 3; i++)   /* deferred bufferevent frees */
        event_base_loop(base, EVLOOP_NONBLOCK);
    event_base_free(base);
    sl_http_client_shutdown();

    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);

    return check_summary();
}
