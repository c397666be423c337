/* A worker thread: its own event loop, its own evhtp_t per listener bound
 * with SO_REUSEPORT (the kernel spreads connections), its own upstream pool,
 * and its own reference to the current snapshot. Nothing here is touched by
 * another thread except the atomics used to hand over a new snapshot and to
 * ask for a drain. */
#ifndef SLUICE_WORKER_H
#define SLUICE_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "snapshot.h"

struct event_base;
struct evdns_base;
struct event;
struct sl_conn;
struct sl_pool;

/* How many spare objects each per-worker stock keeps (request records in
 * conn.c, proxy timers and buffers in proxy.c): things a request uses and
 * gives back, reused by the next request instead of being made again. None
 * under AddressSanitizer, which must see each request's memory freed when
 * it ends to catch a use after that. */
#ifdef __SANITIZE_ADDRESS__
#define SL_WORKER_STOCK_MAX 0
#else
#define SL_WORKER_STOCK_MAX 64
#endif

typedef struct sl_worker {
    int id;
    pthread_t thread;
    struct event_base *base;
    struct evdns_base *dns;
    void **htps;                     /* evhtp_t*, one per listener */
    int n_htps;
    sl_snapshot_t *snap;             /* what new requests use */
    _Atomic(sl_snapshot_t *) pending;
    atomic_bool stop_requested;
    int wake_fd;                     /* eventfd: the main thread's doorbell */
    struct event *wake_ev;
    struct event *drain_timer;
    atomic_bool draining;
    struct sl_pool *pool;
    struct sl_proxy_stock *px_stock; /* spare timers and buffers for proxied requests */
    struct sl_request **req_stock;   /* spare request records (conn.c) */
    int n_req_stock;
    struct sl_redis *redis;          /* NULL without a redis: section */
    sl_snapshot_t **retired;         /* replaced snapshots with requests still running here */
    int n_retired;
    uint64_t rng;
    int n_conns;
    struct sl_conn *conns;           /* intrusive list, for drain */
    /* startup handshake with the main thread */
    int bind_status;                 /* 0 ok, -1 failed */
    char bind_error[256];
} sl_worker_t;

/* Creates the loop and binds every listener of snap->cfg. 0 or -1 (bind_error set). */
int sl_worker_init(sl_worker_t *w, int id, sl_snapshot_t *snap);
int sl_worker_start(sl_worker_t *w);          /* runs the loop in a new thread */
void sl_worker_offer_snapshot(sl_worker_t *w, sl_snapshot_t *s);   /* takes a ref for w */
void sl_worker_stop(sl_worker_t *w);          /* thread-safe: begin draining */
void sl_worker_join_and_free(sl_worker_t *w);

/* Request accounting per snapshot, so plugin per-worker state is released
 * on this thread once the last request on a replaced snapshot ends. */
void sl_worker_request_started(sl_worker_t *w, sl_snapshot_t *s);
void sl_worker_request_done(sl_worker_t *w, sl_snapshot_t *s);

/* called by connections */
void sl_worker_conn_added(sl_worker_t *w, struct sl_conn *c);
void sl_worker_conn_removed(sl_worker_t *w, struct sl_conn *c);

#endif
