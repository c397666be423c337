/* sluice plugin SDK: what a plugin may ask of the gateway.
 *
 * The gateway passes one `const sl_host_t *` to the plugin's init(). Every
 * function is safe to call from any phase on the request's worker thread
 * unless its comment says otherwise. Strings returned by the host are owned
 * by the host and valid for the rest of the request unless noted; strings
 * passed in are copied. Lengths are explicit; returned strings are also
 * NUL-terminated for convenience.
 *
 * Asynchronous calls (sleep, http_call, redis_call) take a callback. A phase
 * that starts one returns SL_YIELD; the callback runs later on the same
 * worker and either starts another call or ends the wait with
 * host->resume(r, status). If the client disconnects first, pending calls are
 * cancelled and their callbacks never run. */
#ifndef SLUICE_HOST_H
#define SLUICE_HOST_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { SL_LOG_LEVEL_DEBUG = 0, SL_LOG_LEVEL_INFO, SL_LOG_LEVEL_WARN, SL_LOG_LEVEL_ERROR } sl_log_level_sdk_t;

typedef enum {
    SL_JSON_NULL = 0, SL_JSON_BOOL, SL_JSON_INTEGER, SL_JSON_REAL, SL_JSON_STRING, SL_JSON_ARRAY,
    SL_JSON_OBJECT,
} sl_json_type_t;

/* Result of an HTTP call; valid only during the callback. */
typedef struct sl_http_call_result {
    int status;                      /* 0 on a transport error */
    const char *error;               /* NULL or a message ("timeout", "connect failed: ...") */
    int n_headers;
    const char *const *headers;      /* name, value, name, value ... */
    const char *body;
    size_t body_len;
} sl_http_call_result_t;

typedef struct sl_http_request_spec {
    const char *method;
    const char *url;                 /* http:// or https:// */
    const char *const *headers;      /* name, value, ..., NULL */
    const char *body;
    size_t body_len;
    int64_t timeout_ms;              /* 0 = 5000 */
    int tls_verify;                  /* 1 (default when 0 is passed: verify) ; -1 = do not verify */
} sl_http_request_spec_t;

/* A Redis reply; valid only during the callback. */
typedef enum {
    SL_REPLY_STRING = 1, SL_REPLY_ARRAY, SL_REPLY_INTEGER, SL_REPLY_NIL, SL_REPLY_STATUS, SL_REPLY_ERROR,
} sl_reply_type_t;
typedef struct sl_reply {
    sl_reply_type_t type;
    long long integer;
    const char *str;
    size_t len;
    size_t elements;
    struct sl_reply **element;
} sl_reply_t;

/* GeoIP lookup result (strings NUL-terminated, empty when unknown). */
typedef struct sl_geo {
    char country[8];                 /* ISO 3166-1 alpha-2 */
    char continent[8];               /* two-letter continent code */
    uint32_t asn;                    /* 0 when unknown */
    char asn_org[128];
} sl_geo_t;

typedef void (*sl_timer_cb)(sl_req_t *r, void *arg);

/* An asynchronous operation started with http_stream or timer, cancellable. */
typedef struct sl_call sl_call_t;

/* Callbacks of a streamed HTTP call. After on_end nothing more is called. */
typedef struct sl_http_stream_handlers {
    void (*on_head)(sl_req_t *r, void *arg, int status, int n_headers, const char *const *headers);
    void (*on_data)(sl_req_t *r, void *arg, const char *data, size_t len);
    /* error NULL: the body is complete; else "timeout", "connection closed", ... */
    void (*on_end)(sl_req_t *r, void *arg, const char *error);
} sl_http_stream_handlers_t;
typedef void (*sl_http_call_cb)(sl_req_t *r, void *arg, const sl_http_call_result_t *res);
/* err is non-NULL when there is no reply (timeout, no connection). */
typedef void (*sl_redis_reply_cb)(sl_req_t *r, void *arg, const sl_reply_t *reply, const char *err);

typedef struct sl_host {
    uint32_t abi_major;
    uint32_t abi_minor;
    size_t size;                     /* sizeof(sl_host_t) of the gateway: check before using newer fields */

    /* ---- the request as received ---- */
    const char *(*req_method)(sl_req_t *r, size_t *len);
    const char *(*req_path)(sl_req_t *r, size_t *len);       /* without the query */
    const char *(*req_query)(sl_req_t *r, size_t *len);      /* without '?', NULL if none */
    /* first header with this name (case-insensitive), NULL if absent */
    const char *(*req_header)(sl_req_t *r, const char *name, size_t *len);
    /* i-th header in arrival order; 0 when i is past the end */
    int (*req_header_at)(sl_req_t *r, int i, const char **name, size_t *nlen, const char **value,
                         size_t *vlen);
    const char *(*req_body)(sl_req_t *r, size_t *len);      /* buffered body ("" if none) */
    const char *(*req_client_ip)(sl_req_t *r);
    const char *(*req_id)(sl_req_t *r);
    const char *(*req_route)(sl_req_t *r);                   /* route name */
    int (*req_is_tls)(sl_req_t *r);

    /* ---- what goes upstream (rewrite/access) ---- */
    int (*upstream_set_header)(sl_req_t *r, const char *name, const char *value, size_t vlen);
    int (*upstream_remove_header)(sl_req_t *r, const char *name);
    /* path with optional "?query", as sent upstream */
    int (*upstream_set_target)(sl_req_t *r, const char *target, size_t len);
    int (*upstream_set_body)(sl_req_t *r, const char *body, size_t len);
    int (*upstream_set_method)(sl_req_t *r, const char *method);
    /* the target as it will be sent: a plugin's upstream_set_target, or the client's */
    const char *(*upstream_target)(sl_req_t *r, size_t *len);

    /* ---- the response ---- */
    /* Answer now (the phase then returns SL_DONE). content_type may be NULL. */
    int (*respond)(sl_req_t *r, int status, const char *content_type, const char *body, size_t len);
    /* Answer with the gateway's JSON error shape. */
    int (*respond_error)(sl_req_t *r, int status, const char *code, const char *message);
    int (*resp_status)(sl_req_t *r);
    int (*resp_set_status)(sl_req_t *r, int status);          /* header_filter or before */
    const char *(*resp_header)(sl_req_t *r, const char *name, size_t *len);
    /* Header writes (here and upstream_set_header) refuse (-1) a name that
     * is not an RFC 9110 token and a value with CR, LF, NUL or other
     * controls but HTAB: what the peer would read as another header. */
    int (*resp_set_header)(sl_req_t *r, const char *name, const char *value, size_t vlen);
    int (*resp_add_header)(sl_req_t *r, const char *name, const char *value, size_t vlen);
    int (*resp_remove_header)(sl_req_t *r, const char *name);
    /* body_filter: replace the current chunk's bytes (copied) */
    int (*body_replace)(sl_req_t *r, sl_body_chunk_t *chunk, const char *data, size_t len);

    /* ---- per-request data ---- */
    void *(*req_alloc)(sl_req_t *r, size_t size);            /* zeroed, freed with the request */
    /* value NULL removes the key */
    int (*ctx_set)(sl_req_t *r, const char *key, const char *value, size_t vlen);
    const char *(*ctx_get)(sl_req_t *r, const char *key, size_t *vlen);
    /* the per-worker data worker_init returned for `instance` */
    void *(*worker_data)(sl_req_t *r, void *instance);
    /* fn(arg) runs when the request is freed, also when the client left early */
    int (*req_cleanup)(sl_req_t *r, void (*fn)(void *arg), void *arg);

    /* ---- asynchronous calls ---- */
    void (*resume)(sl_req_t *r, sl_status_t status);
    int (*sleep)(sl_req_t *r, uint64_t ms, sl_timer_cb cb, void *arg);
    int (*http_call)(sl_req_t *r, const sl_http_request_spec_t *spec, sl_http_call_cb cb, void *arg);
    /* any Redis command; needs a `redis:` section in the config */
    int (*redis_call)(sl_req_t *r, int argc, const char *const *argv, const size_t *lens,
                      sl_redis_reply_cb cb, void *arg);

    /* An HTTP call whose response arrives piece by piece. spec->timeout_ms
     * bounds the wait for the response head; idle_timeout_ms (0 = 60 s) the
     * gap between body pieces. NULL when it could not start. */
    sl_call_t *(*http_stream)(sl_req_t *r, const sl_http_request_spec_t *spec, int64_t idle_timeout_ms,
                              const sl_http_stream_handlers_t *h, void *arg);
    /* A one-shot timer that does not by itself suspend the chain (for
     * deadlines next to a stream). */
    sl_call_t *(*timer)(sl_req_t *r, uint64_t ms, sl_timer_cb cb, void *arg);
    /* Stop a stream or timer: its callbacks never run afterwards. Safe from
     * inside the call's own callbacks. */
    void (*call_cancel)(sl_req_t *r, sl_call_t *call);

    /* A streamed answer from a plugin: send the head now (status plus the
     * headers set with resp_set_header; the body goes out chunked), write
     * pieces as they come (each passes the body filters), then end the
     * wait with resume(r, SL_DONE) -- or resume(r, SL_ERROR) to cut the
     * connection when the stream cannot end well. */
    int (*stream_start)(sl_req_t *r, int status);
    int (*stream_write)(sl_req_t *r, const char *data, size_t len);

    /* A Lua script run atomically in Redis: the host loads it once per
     * connection (EVALSHA, falling back to EVAL on NOSCRIPT). `script` must
     * stay valid (a string literal or instance memory). */
    int (*redis_eval)(sl_req_t *r, const char *script, int nkeys, int argc, const char *const *argv,
                      const size_t *lens, sl_redis_reply_cb cb, void *arg);
    /* Is a `redis:` section configured? (whether it is reachable is only
     * known per call) */
    int (*redis_configured)(void);

    /* ---- shared dictionary (all workers of this process) ---- */
    /* 1 found, 0 missing, -1 error/too small */
    int (*shared_get)(const char *dict, const char *key, char *buf, size_t cap, size_t *len);
    int (*shared_set)(const char *dict, const char *key, const char *val, size_t len, int64_t ttl_ms);
    int (*shared_incr)(const char *dict, const char *key, int64_t delta, int64_t init, int64_t ttl_ms,
                       int64_t *out);
    int (*shared_delete)(const char *dict, const char *key);

    /* ---- the config being loaded (only valid inside configure()) ---- */
    /* The top-level `consumers:` list (an array of objects; borrowed). */
    const sl_json_t *(*config_consumers)(void);

    /* ---- logging and metrics ---- */
    void (*log)(sl_log_level_sdk_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
    /* name: [a-z_][a-z0-9_]*; labels: "k=v,k=v" or NULL */
    void (*metric_add)(const char *name, const char *labels, double value);   /* counter */
    void (*metric_set)(const char *name, const char *labels, double value);   /* gauge */

    /* ---- GeoIP ---- */
    /* 0 found, -1 not found or no database configured */
    int (*geoip_lookup)(const char *ip, sl_geo_t *out);

    /* ---- JSON (values are owned by the caller unless noted) ---- */
    sl_json_t *(*json_parse)(const char *text, size_t len, char *err, size_t errlen);
    char *(*json_dump)(const sl_json_t *v, size_t *len);    /* free with json_free_string */
    void (*json_free_string)(char *s);
    void (*json_free)(sl_json_t *v);
    sl_json_type_t (*json_type)(const sl_json_t *v);
    const sl_json_t *(*json_get)(const sl_json_t *obj, const char *key);    /* borrowed; NULL if absent */
    size_t (*json_len)(const sl_json_t *v);                                  /* array or object size */
    const sl_json_t *(*json_at)(const sl_json_t *arr, size_t i);             /* borrowed */
    const char *(*json_string)(const sl_json_t *v, size_t *len);             /* NULL if not a string */
    int64_t (*json_integer)(const sl_json_t *v);
    double (*json_number)(const sl_json_t *v);                               /* integer or real */
    int (*json_bool)(const sl_json_t *v);
    /* i-th member of an object in its stored order: key (borrowed), *value set; NULL past the end */
    const char *(*json_member_at)(const sl_json_t *obj, size_t i, const sl_json_t **value);

    /* ---- appended in ABI 1.0 after the table above (keep appending) ---- */
    /* This instance's pointer-sized slot on this request (NULL at first),
     * to find per-request state again in later phases. NULL only when out
     * of memory. Lives as long as the request. */
    void **(*req_slot)(sl_req_t *r, void *instance);
    /* A keyed 64-bit hash (SipHash-2-4; the key is random per process and
     * never shown): for plugin tables and caches indexed by what clients
     * send, which a plain hash would let them aim at one bucket or collide
     * on purpose. Thread-safe. */
    uint64_t (*hash64)(const void *data, size_t len);

    /* ---- appended in ABI 1.1 ---- */
    /* The name of the upstream the request's route proxies to: a named
     * upstream's name, or "route:<route name>" for a route with an inline
     * URL. NULL when the route has no upstream (its plugins answer). */
    const char *(*req_upstream)(sl_req_t *r);

    void *reserved[32];
} sl_host_t;

#ifdef __cplusplus
}
#endif

#endif
