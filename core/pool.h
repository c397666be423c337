/* Per-worker keep-alive pool of upstream connections, keyed by
 * "scheme|host:port|tls-context". Idle connections watch for the upstream
 * closing them and expire after the upstream's idle timeout; the most
 * recently used is handed out first so the others age out. */
#ifndef SLUICE_POOL_H
#define SLUICE_POOL_H

#include <stdbool.h>
#include <stdint.h>

struct bufferevent;
struct event_base;

typedef struct sl_pool sl_pool_t;

typedef struct sl_upconn {
    struct bufferevent *bev;
    sl_pool_t *pool;
    struct sl_pool_bucket *bucket;
    struct sl_upconn *prev, *next;   /* idle list links */
    unsigned uses;                    /* requests served on this connection */
    int64_t read_timeout_ms;          /* what the bufferevent has now; 0: none */
    int64_t write_timeout_ms;
} sl_upconn_t;

sl_pool_t *sl_pool_new(struct event_base *base);
void sl_pool_free(sl_pool_t *p);
/* An idle connection for key, or NULL. The caller owns the result and must set
 * its own bufferevent callbacks and timeouts (sl_upconn_timeouts): the idle
 * read timeout is still set. */
sl_upconn_t *sl_pool_get(sl_pool_t *p, const char *key);
/* Wraps a freshly connected bufferevent (the key names where it goes). */
sl_upconn_t *sl_upconn_new(sl_pool_t *p, const char *key, struct bufferevent *bev);
/* Gives the connection these read and write timeouts (0: none). Setting
 * them re-arms libevent's events, so this does nothing when they are set
 * already: a keep-alive connection usually goes from request to idle to
 * request with the same values. */
void sl_upconn_timeouts(sl_upconn_t *uc, int64_t read_ms, int64_t write_ms);
/* Parks a connection whose last response was complete. */
void sl_pool_put(sl_upconn_t *uc, int64_t idle_timeout_ms, int max_idle);
void sl_upconn_close(sl_upconn_t *uc);
int sl_pool_idle_count(sl_pool_t *p);

#endif
