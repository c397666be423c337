#include "pool.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"

typedef struct sl_pool_bucket {
    char *key;
    sl_upconn_t *idle;      /* most recent first */
    int n_idle;
    struct sl_pool_bucket *next;
} sl_pool_bucket_t;

struct sl_pool {
    struct event_base *base;
    sl_pool_bucket_t *buckets;   /* few distinct targets per worker: a list is enough */
    int n_idle;
};

sl_pool_t *sl_pool_new(struct event_base *base)
{
    sl_pool_t *p = calloc(1, sizeof *p);
    if (p)
        p->base = base;
    return p;
}

static sl_pool_bucket_t *bucket_for(sl_pool_t *p, const char *key, bool create)
{
    for (sl_pool_bucket_t *b = p->buckets; b; b = b->next)
        if (strcmp(b->key, key) == 0)
            return b;
    if (!create)
        return NULL;
    sl_pool_bucket_t *b = calloc(1, sizeof *b);
    if (!b || !(b->key = strdup(key))) {
        free(b);
        return NULL;
    }
    b->next = p->buckets;
    p->buckets = b;
    return b;
}

static void unlink_idle(sl_upconn_t *uc)
{
    sl_pool_bucket_t *b = uc->bucket;
    if (uc->prev)
        uc->prev->next = uc->next;
    else
        b->idle = uc->next;
    if (uc->next)
        uc->next->prev = uc->prev;
    uc->prev = uc->next = NULL;
    b->n_idle--;
    uc->pool->n_idle--;
}

static bool is_idle(const sl_upconn_t *uc)
{
    return uc->bucket && (uc->bucket->idle == uc || uc->prev != NULL);
}

void sl_upconn_close(sl_upconn_t *uc)
{
    if (is_idle(uc))
        unlink_idle(uc);
    bufferevent_free(uc->bev);
    free(uc);
}

sl_upconn_t *sl_upconn_new(sl_pool_t *p, const char *key, struct bufferevent *bev)
{
    sl_pool_bucket_t *b = bucket_for(p, key, true);
    sl_upconn_t *uc = b ? calloc(1, sizeof *uc) : NULL;
    if (!uc)
        return NULL;
    uc->bev = bev;
    uc->pool = p;
    uc->bucket = b;
    return uc;
}

sl_upconn_t *sl_pool_get(sl_pool_t *p, const char *key)
{
    sl_pool_bucket_t *b = bucket_for(p, key, false);
    if (!b || !b->idle)
        return NULL;
    sl_upconn_t *uc = b->idle;
    unlink_idle(uc);
    bufferevent_setcb(uc->bev, NULL, NULL, NULL, NULL);
    return uc;
}

/* Anything arriving on an idle connection (data, EOF, error, idle timeout)
 * makes it unusable: a response nobody asked for or a close. */
static void idle_readcb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    sl_upconn_close(arg);
}

static void idle_eventcb(struct bufferevent *bev, short events, void *arg)
{
    (void)bev;
    (void)events;
    sl_upconn_close(arg);
}

void sl_upconn_timeouts(sl_upconn_t *uc, int64_t read_ms, int64_t write_ms)
{
    if (uc->read_timeout_ms == read_ms && uc->write_timeout_ms == write_ms)
        return;
    struct timeval rtv = sl_tv_ms(read_ms), wtv = sl_tv_ms(write_ms);
    bufferevent_set_timeouts(uc->bev, read_ms > 0 ? &rtv : NULL, write_ms > 0 ? &wtv : NULL);
    uc->read_timeout_ms = read_ms;
    uc->write_timeout_ms = write_ms;
}

void sl_pool_put(sl_upconn_t *uc, int64_t idle_timeout_ms, int max_idle)
{
    sl_pool_bucket_t *b = uc->bucket;
    if (max_idle <= 0 || evbuffer_get_length(bufferevent_get_input(uc->bev)) > 0) {
        sl_upconn_close(uc);
        return;
    }
    while (b->n_idle >= max_idle) {
        sl_upconn_t *oldest = b->idle;
        while (oldest->next)
            oldest = oldest->next;
        sl_upconn_close(oldest);
    }
    uc->uses++;
    uc->prev = NULL;
    uc->next = b->idle;
    if (b->idle)
        b->idle->prev = uc;
    b->idle = uc;
    b->n_idle++;
    uc->pool->n_idle++;
    /* The write timeout stays: nothing is written while idle, so it never
     * runs, and leaving it spares a re-arm when the next request sets the
     * same one. */
    sl_upconn_timeouts(uc, idle_timeout_ms, uc->write_timeout_ms);
    bufferevent_setcb(uc->bev, idle_readcb, NULL, idle_eventcb, uc);
    if (!(bufferevent_get_enabled(uc->bev) & EV_READ))
        bufferevent_enable(uc->bev, EV_READ);
}

int sl_pool_idle_count(sl_pool_t *p) { return p->n_idle; }

void sl_pool_free(sl_pool_t *p)
{
    if (!p)
        return;
    sl_pool_bucket_t *b = p->buckets;
    while (b) {
        while (b->idle)
            sl_upconn_close(b->idle);
        sl_pool_bucket_t *next = b->next;
        free(b->key);
        free(b);
        b = next;
    }
    free(p);
}
