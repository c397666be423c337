/* A client connection: reads request heads and bodies with the strict
 * parser in http1.c (libevhtp only accepted it and ran the TLS handshake),
 * runs one request at a time, writes responses with backpressure, and keeps
 * the connection alive between requests. Pipelined requests wait in the
 * input buffer, bounded by a read watermark. */
#ifndef SLUICE_CONN_H
#define SLUICE_CONN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "request.h"
#include "worker.h"

struct bufferevent;
struct event;

typedef enum {
    SL_CONN_HEAD = 0,     /* waiting for (the rest of) a request head */
    SL_CONN_BODY,         /* reading a request body */
    SL_CONN_BUSY,         /* request dispatched; response in progress */
    SL_CONN_CLOSING,      /* flushing the last bytes before close */
} sl_conn_state_t;

typedef struct sl_conn {
    sl_worker_t *w;
    struct bufferevent *bev;
    struct event *timer;
    int64_t deadline_ms;    /* when the current head/body/keep-alive wait times out; 0: none */
    int64_t timer_at_ms;    /* when the timer event fires (<= deadline_ms); 0: not pending */
    struct event *flush_ev; /* plain TCP: writes what a loop pass queued */
    bool flush_pending;
    bool tls;
    char client_ip[64];
    sl_conn_state_t state;
    sl_request_t *req;
    bool close_after;       /* close once the current response is written */
    bool input_seen;        /* bytes of a new request arrived (drain logic) */
    bool drain_mark;        /* a write low-water mark is set (sl_request_want_drain) */
    struct sl_conn *prev, *next;
} sl_conn_t;

/* Takes over an accepted connection's bufferevent. */
sl_conn_t *sl_conn_new(sl_worker_t *w, struct bufferevent *bev, const struct sockaddr *sa,
                       bool tls);
/* Drain: close now if idle between requests, else after the current response. */
void sl_conn_drain(sl_conn_t *c);
/* Closes now, whatever is in flight (shutdown after the drain timeout). */
void sl_conn_free(sl_conn_t *c);
/* Frees the worker's stock of spare request records (after its last
 * connection is gone). */
void sl_conn_worker_free(struct sl_worker *w);

#endif
