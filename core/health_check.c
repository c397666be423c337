#include "health_check.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "http1.h"
#include "log.h"
#include "upstream_tls.h"

typedef struct probe {
    struct sl_checker *checker;
    sl_upstream_rt_t *up;
    int target;
    struct event *tick;       /* next probe */
    struct event *deadline;   /* this probe's timeout */
    struct bufferevent *bev;
} probe_t;

struct sl_checker {
    struct event_base *base;
    struct evdns_base *dns;
    sl_snapshot_t *snap;
    probe_t *probes;
    int n_probes;
};

static void schedule(probe_t *p)
{
    struct timeval tv = sl_tv_ms(p->up->conf->active.interval_ms);
    evtimer_add(p->tick, &tv);
}

static bool status_ok(const sl_active_health_t *a, int status)
{
    if (a->n_statuses == 0)
        return status >= 200 && status < 400;
    for (int i = 0; i < a->n_statuses; i++)
        if (a->statuses[i] == status)
            return true;
    return false;
}

static void conclude(probe_t *p, bool ok, const char *why)
{
    if (p->bev) {
        bufferevent_free(p->bev);
        p->bev = NULL;
    }
    evtimer_del(p->deadline);
    const sl_upstream_t *u = p->up->conf;
    if (sl_health_active_result(p->up->health, p->target, ok)) {
        if (ok)
            sl_info("upstream %s: target %s is healthy again", u->name, u->targets[p->target].name);
        else
            sl_warn("upstream %s: target %s is unhealthy (%s)", u->name, u->targets[p->target].name,
                    why);
    }
    schedule(p);
}

static void probe_readcb(struct bufferevent *bev, void *arg)
{
    probe_t *p = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t len = evbuffer_get_length(in);
    size_t n = len < 65536 ? len : 65536;
    const char *buf = (const char *)evbuffer_pullup(in, (ssize_t)n);
    sl_http_response_head_t *rh = malloc(sizeof *rh);
    size_t used = 0;
    sl_http_result_t res = rh ? sl_http_parse_response_head(buf, n, 65536, rh, &used)
                              : SL_HTTP_BAD_REQUEST;
    int status = rh ? rh->status : 0;
    free(rh);
    if (res == SL_HTTP_INCOMPLETE)
        return;
    char why[64];
    snprintf(why, sizeof why, res == SL_HTTP_DONE ? "status %d" : "malformed response", status);
    conclude(p, res == SL_HTTP_DONE && status_ok(&p->up->conf->active, status), why);
}

static void probe_eventcb(struct bufferevent *bev, short events, void *arg)
{
    probe_t *p = arg;
    if (events & BEV_EVENT_CONNECTED) {
        const sl_upstream_t *u = p->up->conf;
        const sl_target_t *t = &u->targets[p->target];
        evbuffer_add_printf(bufferevent_get_output(bev),
                            "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: sluice-health-check\r\n"
                            "Connection: close\r\n\r\n",
                            u->active.path, u->host_header == SL_HOST_FIXED ? u->host_value : t->name);
        return;
    }
    conclude(p, false, (events & BEV_EVENT_EOF) ? "closed without a response" : "connect failed");
}

static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    conclude(arg, false, "timed out");
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    probe_t *p = arg;
    const sl_upstream_t *u = p->up->conf;
    const sl_target_t *t = &u->targets[p->target];
    int flags = BEV_OPT_CLOSE_ON_FREE;
    if (t->tls) {
        SSL *ssl = sl_upstream_tls_ssl(p->up->ssl_ctx, u, t);
        p->bev = ssl ? bufferevent_openssl_socket_new(p->checker->base, -1, ssl,
                                                      BUFFEREVENT_SSL_CONNECTING, flags)
                     : NULL;
        if (p->bev)
            bufferevent_openssl_set_allow_dirty_shutdown(p->bev, 1);
    } else {
        p->bev = bufferevent_socket_new(p->checker->base, -1, flags);
    }
    if (!p->bev) {
        conclude(p, false, "out of memory");
        return;
    }
    bufferevent_setcb(p->bev, probe_readcb, NULL, probe_eventcb, p);
    bufferevent_enable(p->bev, EV_READ | EV_WRITE);
    struct timeval tv = sl_tv_ms(u->active.timeout_ms);
    evtimer_add(p->deadline, &tv);
    if (bufferevent_socket_connect_hostname(p->bev, p->checker->dns, AF_UNSPEC, t->host, t->port) != 0)
        conclude(p, false, "connect failed");
}

sl_checker_t *sl_checker_start(struct event_base *base, struct evdns_base *dns, sl_snapshot_t *snap)
{
    sl_checker_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->base = base;
    c->dns = dns;
    c->snap = sl_snapshot_ref(snap);
    int total = 0;
    for (int i = 0; i < snap->cfg->n_upstreams; i++)
        if (snap->cfg->upstreams[i].active.enabled)
            total += snap->cfg->upstreams[i].n_targets;
    c->probes = calloc((size_t)total + 1, sizeof *c->probes);
    if (!c->probes) {
        sl_checker_stop(c);
        return NULL;
    }
    for (int i = 0; i < snap->cfg->n_upstreams; i++) {
        if (!snap->cfg->upstreams[i].active.enabled)
            continue;
        for (int t = 0; t < snap->cfg->upstreams[i].n_targets; t++) {
            probe_t *p = &c->probes[c->n_probes++];
            p->checker = c;
            p->up = &snap->upstreams[i];
            p->target = t;
            p->tick = evtimer_new(base, tick_cb, p);
            p->deadline = evtimer_new(base, deadline_cb, p);
            struct timeval now = { 0, 0 };
            evtimer_add(p->tick, &now);   /* first probe right away */
        }
    }
    return c;
}

void sl_checker_stop(sl_checker_t *c)
{
    if (!c)
        return;
    for (int i = 0; i < c->n_probes; i++) {
        probe_t *p = &c->probes[i];
        if (p->bev)
            bufferevent_free(p->bev);
        if (p->tick)
            event_free(p->tick);
        if (p->deadline)
            event_free(p->deadline);
    }
    free(c->probes);
    sl_snapshot_unref(c->snap);
    free(c);
}
