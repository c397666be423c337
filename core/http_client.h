/* Asynchronous HTTP/1.1 client for plugins (sluice.http in Lua, http_call in
 * the C SDK, the AI gateway's provider calls). One call is one exchange on a
 * worker's event loop: it never blocks, keeps connections alive through the
 * worker's pool (under keys of its own, so it never takes a proxy
 * connection), and ends exactly once, unless cancelled first: through the
 * callback with the whole response (buffered mode), or through on_end after
 * the head and the body pieces as they arrived (stream mode). */
#ifndef SLUICE_HTTP_CLIENT_H
#define SLUICE_HTTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct evdns_base;
struct sl_pool;

#define SL_HTTP_CLIENT_DEFAULT_TIMEOUT_MS 5000
#define SL_HTTP_CLIENT_DEFAULT_MAX_BODY ((size_t)16 << 20)
#define SL_HTTP_CLIENT_DEFAULT_IDLE_TIMEOUT_MS 60000

typedef struct sl_http_client_req sl_http_client_req_t;

typedef struct sl_http_call {
    const char *method;            /* "GET" ...; NULL = GET. CONNECT is refused. */
    const char *url;               /* http:// or https://, host may be a name or an IP, optional port, path+query */
    const char *const *headers;    /* name, value, name, value, ..., NULL */
    const char *body; size_t body_len;
    int64_t timeout_ms;            /* buffered: the whole exchange; stream: until the whole response head
                                      has arrived. Name lookup included; <= 0 means 5000 */
    bool tls_verify;               /* default true: see sl_http_call_init */
    const char *ca_file;           /* NULL = system store */
    size_t max_body;               /* buffered only: 0 means 16 MiB; larger → error "response too large" */
    int64_t idle_timeout_ms;       /* stream only: the longest wait for more body bytes once the head is
                                      in; <= 0 means 60000 */
} sl_http_call_t;

/* Zeroes *call and applies the defaults. Use it: a call built by zero
 * initialisation alone has tls_verify false, i.e. certificates unchecked. */
void sl_http_call_init(sl_http_call_t *call);

typedef struct sl_http_response {
    int status;                    /* 0 on transport error */
    const char *error;             /* NULL, or one of the messages below */
    int n_headers;                 /* pairs in headers */
    const char *const *headers;    /* name, value, ..., NULL; never NULL itself */
    const char *body;              /* never NULL; NUL-terminated after body_len bytes */
    size_t body_len;
} sl_http_response_t;              /* valid during the callback only */

/* Error messages (status 0, no headers, empty body):
 *   "bad url", "bad method", "bad header", "bad body"   the call itself is invalid
 *   "timeout"                                           timeout_ms passed
 *   "connect failed: <reason>"                          name lookup or TCP connect
 *   "tls: <reason>"                                     handshake or certificate
 *   "connection closed"                                 the peer closed before the response was complete
 *   "connection error: <reason>"                        a socket error after connecting
 *   "bad response"                                      malformed or unexpected HTTP from the peer
 *   "response too large"                                body longer than max_body
 *   "out of memory" */
typedef void (*sl_http_client_cb)(void *arg, const sl_http_response_t *res);

/* Starts an exchange on `base` (the caller's thread's loop). `dns` resolves
 * host names (IP literals need none; with dns NULL a name fails with
 * "connect failed: ..."). `pool` may be NULL: then every exchange gets its own
 * connection and closes it. Every string and the body in `call` are copied.
 * Never calls cb synchronously (errors are delivered from a zero-delay
 * timer). Returns NULL only when base, call or cb is NULL or the handle itself
 * cannot be allocated; then cb never runs. The handle is freed right after cb
 * returns: do not use it afterwards. */
sl_http_client_req_t *sl_http_client_request(struct event_base *base, struct evdns_base *dns, struct sl_pool *pool,
                                             const sl_http_call_t *call, sl_http_client_cb cb, void *arg);

/* Stream mode: the body is handed over in pieces as it arrives instead of
 * being gathered, for responses too long or too slow to wait for (server-sent
 * events, say). There is no max_body: the caller bounds what it keeps. */
typedef struct sl_http_stream_cbs {
    /* The final response head arrived (interim 1xx ones are skipped): headers
     * are name, value, ..., NULL, valid until on_end returns or the handle is
     * cancelled. May be NULL. */
    void (*on_head)(void *arg, int status, int n_headers, const char *const *headers);
    /* A piece of the body, de-chunked, never empty; data is valid during the
     * call only. Where pieces break follows the reads and the chunks and
     * means nothing: an event may span pieces, a piece may hold several
     * events. May be NULL. */
    void (*on_data)(void *arg, const char *data, size_t len);
    /* The exchange ended: error NULL means the body is complete; otherwise one
     * of the messages above except "response too large". An error before the
     * head comes without on_head; "timeout" is timeout_ms before the head and
     * idle_timeout_ms after it. After on_end nothing more is called and the
     * handle is freed. Required. */
    void (*on_end)(void *arg, const char *error);
} sl_http_stream_cbs_t;

/* Starts a stream-mode exchange; everything said of sl_http_client_request
 * holds, with on_end in the place of cb: it never runs synchronously, NULL
 * comes back only for NULL base, call, cbs or cbs->on_end or when the handle
 * cannot be allocated, and a connection whose body completed goes back to
 * the pool (before on_end, so an exchange on_end starts can reuse it). *cbs
 * is copied. */
sl_http_client_req_t *sl_http_client_stream(struct event_base *base, struct evdns_base *dns, struct sl_pool *pool,
                                            const sl_http_call_t *call, const sl_http_stream_cbs_t *cbs, void *arg);

/* Abandons the exchange and closes its connection; no callback runs
 * afterwards. NULL is ignored; so is a call from inside the request's own cb
 * or on_end. From inside on_head or on_data it takes effect when that
 * callback returns (the handle stays valid until then). Call it on the loop's
 * thread, and for every request still pending before the loop, its pool or
 * its resolver is freed. */
void sl_http_client_cancel(sl_http_client_req_t *req);

/* Frees the TLS contexts shared by every worker. Call once at exit, after the
 * last loop that made requests has stopped and its connections are closed. */
void sl_http_client_shutdown(void);

#endif
