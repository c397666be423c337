/* One client request from its parsed head to its access-log line, and the
 * response API used by the proxy (and later by plugins): a structured status
 * and header list, then body pieces, then end. Framing towards the client
 * (Content-Length, chunked, or close-delimited) is decided here, once. */
#ifndef SLUICE_REQUEST_H
#define SLUICE_REQUEST_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "arena.h"
#include "http1.h"
#include "snapshot.h"

struct evbuffer;
struct sl_conn;
struct sl_proxy;

typedef struct sl_hdr {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} sl_hdr_t;

typedef struct sl_hdrs {
    sl_hdr_t *items;
    int n;
    int cap;
} sl_hdrs_t;

typedef enum {
    SL_FRAME_NONE = 0,     /* HEAD, 1xx, 204, 304: no body bytes at all */
    SL_FRAME_LENGTH,       /* Content-Length given */
    SL_FRAME_CHUNKED,      /* HTTP/1.1 client, length unknown */
    SL_FRAME_CLOSE,        /* HTTP/1.0 client, length unknown: close ends it */
} sl_framing_t;

typedef struct sl_request {
    struct sl_conn *conn;
    sl_arena_t arena;
    sl_snapshot_t *snap;            /* reference held until the request ends */
    const sl_route_t *route;
    char *head_copy;
    size_t head_len;
    char *norm_path;                /* for matching only */
    unsigned method_bit;
    struct evbuffer *body;          /* de-chunked request body */
    int64_t body_limit;
    int64_t body_expected;          /* Content-Length, or -1 when chunked */
    sl_chunked_t chunked;
    char request_id[204];
    bool client_sent_id;

    /* response */
    int status;
    sl_hdrs_t resp_headers;
    bool head_sent;
    bool ended;
    sl_framing_t framing;
    int64_t resp_length;            /* for SL_FRAME_LENGTH */
    uint64_t bytes_out;             /* bytes written to the client: head, framing, body */
    uint64_t body_bytes;            /* body bytes alone (Content-Length check) */
    uint64_t bytes_in;              /* head + body bytes received */

    /* bookkeeping for the access log and Server-Timing */
    int64_t t_start_us;
    int64_t t_head_us;              /* response head sent */
    int64_t upstream_us;            /* time spent waiting for upstream heads */
    const char *upstream_name;      /* target that answered */
    int retries;
    const char *error_code;         /* gateway error code, if any */

    /* plugins */
    const struct sl_chain *chain;   /* NULL when no route matched */
    int chain_phase;                /* SL_PHASE_REWRITE or SL_PHASE_ACCESS while running */
    int chain_idx;                  /* next plugin to run in that phase */
    int chain_ran;                  /* plugins [0, chain_ran) ran a phase: they filter the response */
    bool chain_yielded;
    bool plugin_answered;           /* host->respond() was called */
    struct evbuffer *plugin_body;   /* the body host->respond() set */
    char *filter_buf[2];            /* body_filter replacements, alternating */
    size_t filter_cap[2];
    int filter_turn;
    /* what plugins changed for the upstream request */
    const char *up_method;
    const char *up_target;
    size_t up_target_len;
    sl_hdrs_t up_headers;           /* value NULL = remove */
    sl_hdrs_t ctx;                  /* host->ctx_set / ctx_get */
    struct sl_cleanup *cleanups;
    struct sl_plugin_slot *plugin_slots;   /* host->req_slot */
    struct sl_async *pending;       /* in-flight plugin I/O, cancelled if the client leaves */

    struct sl_proxy *proxy;
    /* Set by whoever streams the body: called when the client's output
     * buffer has drained below the low watermark (backpressure release). */
    void (*on_drain)(struct sl_request *);

    /* Last, and not zeroed as a whole at allocation: its header array is
     * large and the parser fills what it uses (see request_new). */
    sl_http_request_head_t head;    /* pointers into head_copy */
} sl_request_t;

/* header list helpers (memory from the request arena) */
int sl_hdrs_add(sl_request_t *r, sl_hdrs_t *h, const char *name, size_t nlen, const char *value,
                size_t vlen);
const sl_hdr_t *sl_hdrs_get(const sl_hdrs_t *h, const char *name);
void sl_hdrs_remove(sl_hdrs_t *h, const char *name);

/* request accessors */
const sl_http_header_t *sl_request_header(const sl_request_t *r, const char *name);
const char *sl_request_client_ip(const sl_request_t *r);
bool sl_request_is_tls(const sl_request_t *r);
const sl_server_opts_t *sl_request_server_opts(const sl_request_t *r);
struct event_base *sl_request_base(const sl_request_t *r);
struct sl_worker *sl_request_worker(const sl_request_t *r);

/* response: set r->status and r->resp_headers, then send the head */
int sl_request_send_head(sl_request_t *r);
int sl_request_send_body(sl_request_t *r, const char *data, size_t n);
int sl_request_send_body_buf(sl_request_t *r, struct evbuffer *buf);  /* drains buf */
/* The response is complete: final chunk if chunked, then the request
 * finishes once the client took every byte. */
void sl_request_end(sl_request_t *r);
/* Something failed after the head went out: the client must not take a
 * truncated body for a whole one, so the connection is closed as is. */
void sl_request_abort(sl_request_t *r);
/* A gateway-generated JSON error (also usable before any head was sent). */
void sl_request_error(sl_request_t *r, int status, const char *code, const char *message);
/* Bytes queued towards the client and not yet written. */
size_t sl_request_output_pending(const sl_request_t *r);
/* Ask for on_drain once the output falls to `low` bytes. */
void sl_request_want_drain(sl_request_t *r, size_t low);

/* JSON error body shared by every gateway-generated error. */
const char *sl_error_type_for(int status);
size_t sl_error_json(char *out, size_t cap, int status, const char *code, const char *message,
                     const char *request_id);

#endif
