#include "worker.h"

#include <evhtp/evhtp.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "clock.h"
#include "conn.h"
#include "log.h"
#include "pool.h"
#include "proxy.h"
#include "redis.h"
#include "reqid.h"

typedef struct listener_ctx {
    sl_worker_t *w;
    bool tls;
    evhtp_ssl_cfg_t ssl;          /* evhtp keeps a pointer to it */
} listener_ctx_t;

/* libevhtp accepted the connection and, for TLS, started the handshake. We
 * take the bufferevent and speak HTTP ourselves (see conn.h for why), then
 * return an error so that evhtp frees its own connection object — its
 * bufferevent pointer is already cleared by take_ownership. */
static evhtp_res on_post_accept(evhtp_connection_t *ec, void *arg)
{
    listener_ctx_t *lc = arg;
    struct sockaddr_storage sa;
    memset(&sa, 0, sizeof sa);
    if (ec->saddr) {
        size_t len = ec->saddr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                      : sizeof(struct sockaddr_in);
        memcpy(&sa, ec->saddr, len);
    }
    if (ec->ssl)
        SSL_set_app_data(ec->ssl, NULL);
    struct bufferevent *bev = evhtp_connection_take_ownership(ec);
    if (atomic_load(&lc->w->draining) || !sl_conn_new(lc->w, bev, (struct sockaddr *)&sa, lc->tls))
        bufferevent_free(bev);
    return EVHTP_RES_ERROR;
}

static void bind_address(const sl_listen_t *l, char *out, size_t len)
{
    if (strchr(l->host, ':'))
        snprintf(out, len, "ipv6:%s", l->host);
    else
        snprintf(out, len, "%s", l->host);
}

static void release_on_worker(sl_worker_t *w, sl_snapshot_t *s)
{
    sl_plugins_worker_fini(s->plugins, w->id);
    sl_snapshot_unref(s);
}

static void retire(sl_worker_t *w, sl_snapshot_t *s)
{
    if (s->inflight[w->id] == 0) {
        release_on_worker(w, s);
        return;
    }
    sl_snapshot_t **grown = realloc(w->retired, sizeof *grown * (size_t)(w->n_retired + 1));
    if (!grown) {   /* cannot wait for its requests: keep the plugin state alive */
        sl_error("worker %d: out of memory retiring a config snapshot", w->id);
        return;
    }
    w->retired = grown;
    w->retired[w->n_retired++] = s;
}

void sl_worker_request_started(sl_worker_t *w, sl_snapshot_t *s) { s->inflight[w->id]++; }

void sl_worker_request_done(sl_worker_t *w, sl_snapshot_t *s)
{
    if (--s->inflight[w->id] > 0 || s == w->snap)
        return;
    for (int i = 0; i < w->n_retired; i++) {
        if (w->retired[i] == s) {
            w->retired[i] = w->retired[--w->n_retired];
            release_on_worker(w, s);
            return;
        }
    }
}

static void switch_snapshot(sl_worker_t *w)
{
    sl_snapshot_t *s = atomic_exchange(&w->pending, NULL);
    if (!s)
        return;
    sl_snapshot_t *old = w->snap;
    sl_plugins_worker_init(s->plugins, w->id);
    w->snap = s;
    retire(w, old);
}

static void drain_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    sl_worker_t *w = arg;
    sl_warn("worker %d: drain timeout with %d connections open; closing them", w->id, w->n_conns);
    event_base_loopbreak(w->base);
}

static void begin_drain(sl_worker_t *w)
{
    atomic_store(&w->draining, true);
    for (int i = 0; i < w->n_htps; i++)
        evhtp_unbind_socket(w->htps[i]);
    sl_conn_t *c = w->conns;
    while (c) {
        sl_conn_t *next = c->next;
        sl_conn_drain(c);
        c = next;
    }
    if (w->n_conns == 0) {
        event_base_loopbreak(w->base);
        return;
    }
    struct timeval tv = sl_tv_ms(w->snap->cfg->server.drain_timeout_ms);
    evtimer_add(w->drain_timer, &tv);
}

/* The main thread rang: a new snapshot, a drain, or both. */
static void wake_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    sl_worker_t *w = arg;
    uint64_t n;
    (void)!read(fd, &n, sizeof n);
    switch_snapshot(w);
    if (atomic_exchange(&w->stop_requested, false))
        begin_drain(w);
}

/* The worker's loop is touched by its own thread only, so it runs without
 * libevent's base lock: every event_add/event_del (several per request)
 * would otherwise take and release a mutex. The main thread reaches the
 * worker through atomics plus an eventfd instead of event_active. */
static struct event_base *new_unlocked_base(void)
{
    struct event_config *cfg = event_config_new();
    if (!cfg)
        return NULL;
    event_config_set_flag(cfg, EVENT_BASE_FLAG_NOLOCK);
    struct event_base *base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    return base;
}

int sl_worker_init(sl_worker_t *w, int id, sl_snapshot_t *snap)
{
    memset(w, 0, sizeof *w);
    w->id = id;
    w->snap = sl_snapshot_ref(snap);
    atomic_init(&w->pending, NULL);
    atomic_init(&w->draining, false);
    atomic_init(&w->stop_requested, false);
    w->wake_fd = -1;
    sl_reqid_seed(&w->rng);
    w->base = new_unlocked_base();
    if (!w->base) {
        snprintf(w->bind_error, sizeof w->bind_error, "cannot create an event loop");
        return -1;
    }
    w->dns = evdns_base_new(w->base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
                                         EVDNS_BASE_DISABLE_WHEN_INACTIVE);
    if (!w->dns)   /* no resolv.conf: names in /etc/hosts still resolve */
        w->dns = evdns_base_new(w->base, 0);
    w->pool = sl_pool_new(w->base);
    w->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->wake_fd >= 0)
        w->wake_ev = event_new(w->base, w->wake_fd, EV_READ | EV_PERSIST, wake_cb, w);
    w->drain_timer = evtimer_new(w->base, drain_timeout_cb, w);
    if (!w->dns || !w->pool || !w->wake_ev || event_add(w->wake_ev, NULL) != 0 ||
        !w->drain_timer) {
        snprintf(w->bind_error, sizeof w->bind_error, "out of memory");
        return -1;
    }

    const sl_config_t *cfg = snap->cfg;
    w->htps = calloc((size_t)cfg->n_listens, sizeof *w->htps);
    if (!w->htps)
        return -1;
    for (int i = 0; i < cfg->n_listens; i++) {
        const sl_listen_t *l = &cfg->listens[i];
        evhtp_t *htp = evhtp_new(w->base, NULL);
        listener_ctx_t *lc = calloc(1, sizeof *lc);
        if (!htp || !lc) {
            free(lc);
            if (htp)
                evhtp_free(htp);
            snprintf(w->bind_error, sizeof w->bind_error, "out of memory");
            return -1;
        }
        lc->w = w;
        htp->arg = lc;
        w->htps[w->n_htps++] = htp;
        evhtp_enable_flag(htp, EVHTP_FLAG_ENABLE_REUSEPORT | EVHTP_FLAG_ENABLE_NODELAY);
        if (l->tls_cert) {
            lc->tls = true;
            lc->ssl.pemfile = l->tls_cert;
            lc->ssl.privfile = l->tls_key;
            lc->ssl.ssl_opts = SSL_OP_NO_SSLv2 | SSL_OP_NO_SSLv3 | SSL_OP_NO_TLSv1 | SSL_OP_NO_TLSv1_1;
            lc->ssl.ssl_ctx_timeout = 300;
            lc->ssl.scache_type = evhtp_ssl_scache_type_disabled;
            if (evhtp_ssl_init(htp, &lc->ssl) != 0) {
                snprintf(w->bind_error, sizeof w->bind_error, "%s:%d: cannot set up TLS", l->host,
                         l->port);
                return -1;
            }
        }
        evhtp_set_post_accept_cb(htp, on_post_accept, lc);
        char addr[128];
        bind_address(l, addr, sizeof addr);
        if (evhtp_bind_socket(htp, addr, (uint16_t)l->port, 1024) != 0) {
            snprintf(w->bind_error, sizeof w->bind_error, "cannot listen on %s:%d: %m", l->host,
                     l->port);
            return -1;
        }
    }
    return 0;
}

static void *worker_main(void *arg)
{
    sl_worker_t *w = arg;
    /* Plugin per-worker state (Lua states above all) belongs to this thread. */
    sl_plugins_worker_init(w->snap->plugins, w->id);
    if (w->snap->cfg->redis.enabled)
        w->redis = sl_redis_new(w->base, &w->snap->cfg->redis);
    event_base_loop(w->base, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

int sl_worker_start(sl_worker_t *w)
{
    return pthread_create(&w->thread, NULL, worker_main, w) == 0 ? 0 : -1;
}

static void ring(sl_worker_t *w)
{
    uint64_t one = 1;
    /* Only a full counter (2^64 - 2 unread rings) could refuse this. */
    (void)!write(w->wake_fd, &one, sizeof one);
}

void sl_worker_offer_snapshot(sl_worker_t *w, sl_snapshot_t *s)
{
    sl_snapshot_t *old = atomic_exchange(&w->pending, sl_snapshot_ref(s));
    if (old)   /* two reloads before the worker looked: skip the middle one */
        sl_snapshot_unref(old);
    ring(w);
}

void sl_worker_stop(sl_worker_t *w)
{
    atomic_store(&w->stop_requested, true);
    ring(w);
}

void sl_worker_conn_added(sl_worker_t *w, sl_conn_t *c)
{
    c->prev = NULL;
    c->next = w->conns;
    if (w->conns)
        w->conns->prev = c;
    w->conns = c;
    w->n_conns++;
}

void sl_worker_conn_removed(sl_worker_t *w, sl_conn_t *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    w->n_conns--;
    if (w->n_conns == 0 && atomic_load(&w->draining))
        event_base_loopbreak(w->base);
}

void sl_worker_join_and_free(sl_worker_t *w)
{
    if (w->thread)
        pthread_join(w->thread, NULL);
    while (w->conns)
        sl_conn_free(w->conns);
    sl_conn_worker_free(w);
    for (int i = 0; i < w->n_htps; i++) {
        evhtp_t *htp = w->htps[i];
        listener_ctx_t *lc = htp->arg;
        evhtp_unbind_socket(htp);
        evhtp_free(htp);
        free(lc);
    }
    free(w->htps);
    sl_pool_free(w->pool);
    sl_proxy_worker_free(w);
    if (w->wake_ev)
        event_free(w->wake_ev);
    if (w->base && w->wake_fd >= 0)   /* a worker never initialised has fd 0 */
        close(w->wake_fd);
    if (w->drain_timer)
        event_free(w->drain_timer);
    if (w->dns)
        evdns_base_free(w->dns, 0);
    /* bufferevents with deferred callbacks pending are freed by the loop, not
     * by bufferevent_free: let it run those once before the base goes. */
    if (w->base)
        for (int i = 0; i < 3; i++)
            event_base_loop(w->base, EVLOOP_NONBLOCK);
    if (w->redis)
        sl_redis_free(w->redis);
    sl_snapshot_t *p = atomic_exchange(&w->pending, NULL);
    if (p)
        sl_snapshot_unref(p);
    /* The worker thread is gone: its plugin state can be released here. */
    for (int i = 0; i < w->n_retired; i++)
        release_on_worker(w, w->retired[i]);
    free(w->retired);
    if (w->snap && w->thread)
        sl_plugins_worker_fini(w->snap->plugins, w->id);
    sl_snapshot_unref(w->snap);
    if (w->base)
        event_base_free(w->base);
}
