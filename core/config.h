/* The validated, immutable configuration snapshot.
 *
 * A snapshot is built from one YAML file by sl_config_load(), shared by every
 * worker, and reference counted so that a reload can swap it while in-flight
 * requests finish on the one they started with. Nothing in it changes after
 * load: runtime state (health, counters, pools) lives elsewhere and is keyed by
 * the indexes found here. */
#ifndef SLUICE_CONFIG_H
#define SLUICE_CONFIG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define SL_MAX_RETRY_STATUSES 16

typedef struct sl_listen {
    char *host;            /* numeric address or "0.0.0.0" / "::" */
    int port;
    char *tls_cert;        /* both NULL when plain HTTP */
    char *tls_key;
} sl_listen_t;

typedef struct sl_target {
    char *host;            /* host name or address, as written */
    int port;
    bool tls;              /* https:// */
    int weight;            /* >= 1, default 1 */
    char *name;            /* "host:port", for logs and hashing */
} sl_target_t;

typedef enum sl_balance {
    SL_BALANCE_ROUND_ROBIN = 0,
    SL_BALANCE_LEAST_CONN,
    SL_BALANCE_HASH,
    SL_BALANCE_EWMA,
} sl_balance_t;

typedef enum sl_hash_on {
    SL_HASH_IP = 0,
    SL_HASH_HEADER,
    SL_HASH_COOKIE,
} sl_hash_on_t;

typedef enum sl_host_header {
    SL_HOST_PRESERVE = 0,  /* forward the client's Host */
    SL_HOST_TARGET,        /* Host: target host[:port] */
    SL_HOST_FIXED,         /* Host: upstream.host_value */
} sl_host_header_t;

typedef struct sl_timeouts {
    int64_t connect_ms;    /* 0 = not set (inherit) */
    int64_t send_ms;
    int64_t read_ms;
} sl_timeouts_t;

typedef struct sl_retries {
    bool set;              /* false = inherit from the upstream */
    int attempts;          /* extra tries after the first; 0 = none */
    int64_t backoff_ms;    /* base of the exponential backoff */
    int64_t max_backoff_ms;
    int on_status[SL_MAX_RETRY_STATUSES];
    int n_on_status;
    bool non_idempotent;   /* retry POST/PATCH on listed statuses too */
    int budget_percent;    /* retries may add at most this % of requests */
} sl_retries_t;

typedef struct sl_active_health {
    bool enabled;
    char *path;            /* GET path, default "/health" */
    int64_t interval_ms;
    int64_t timeout_ms;
    int healthy;           /* consecutive successes to mark up */
    int unhealthy;         /* consecutive failures to mark down */
    int statuses[SL_MAX_RETRY_STATUSES]; /* healthy statuses; empty = 2xx/3xx */
    int n_statuses;
} sl_active_health_t;

typedef struct sl_upstream {
    char *name;
    int index;             /* position in sl_config_t.upstreams */
    sl_target_t *targets;
    int n_targets;
    sl_balance_t balance;
    sl_hash_on_t hash_on;
    char *hash_key;        /* header or cookie name for SL_HASH_HEADER/COOKIE */
    sl_host_header_t host_header;
    char *host_value;      /* for SL_HOST_FIXED */
    bool tls_verify;       /* default true */
    char *tls_ca_file;     /* NULL = system store */
    char *tls_sni;         /* NULL = target host */
    sl_timeouts_t timeouts;        /* defaults filled in: 1s / 10s / 60s */
    int64_t keepalive_idle_ms;     /* default 60s */
    int keepalive_max_idle;        /* per target per worker, default 256 */
    sl_retries_t retries;          /* defaults: 1 attempt on connect failure */
    int max_fails;                 /* consecutive failures opening the circuit, default 5; 0 = off */
    int64_t open_ms;               /* circuit open time before half-open, default 10s */
    sl_active_health_t active;
    bool inline_url;               /* synthesised from a route's "upstream: http://..." */
} sl_upstream_t;

typedef enum sl_path_kind {
    SL_PATH_EXACT = 0,
    SL_PATH_PREFIX,        /* written "/api/" followed by "*"; stored without the star */
    SL_PATH_REGEX,         /* written "~ ^/users/[0-9]+$" */
} sl_path_kind_t;

typedef struct sl_path_match {
    sl_path_kind_t kind;
    char *value;           /* exact path, prefix, or POSIX ERE source */
} sl_path_match_t;

typedef struct sl_header_match {
    char *name;
    char *value;           /* exact value, or regex source when is_regex */
    bool is_regex;         /* written "~ regex" */
} sl_header_match_t;

/* One plugin instance in a chain: its name and its config as JSON (the YAML
 * mapping converted, line numbers kept aside for error messages). */
typedef struct sl_plugin_ref {
    char *name;
    json_t *conf;          /* owned; an object, possibly empty */
    int line;              /* line in the config file, for later errors */
} sl_plugin_ref_t;

/* HTTP methods as a bitmask for route matching. */
enum {
    SL_M_GET = 1 << 0, SL_M_HEAD = 1 << 1, SL_M_POST = 1 << 2, SL_M_PUT = 1 << 3,
    SL_M_DELETE = 1 << 4, SL_M_PATCH = 1 << 5, SL_M_OPTIONS = 1 << 6,
    SL_M_CONNECT = 1 << 7, SL_M_TRACE = 1 << 8,
};

typedef struct sl_route {
    char *name;
    int index;
    char **hosts;          /* exact, or "*.example.com" suffix wildcards */
    int n_hosts;
    unsigned methods;      /* 0 = any */
    sl_path_match_t *paths;
    int n_paths;           /* 0 = any path */
    sl_header_match_t *headers;
    int n_headers;
    sl_upstream_t *upstream;       /* points into sl_config_t.upstreams; NULL = plugins answer */
    sl_plugin_ref_t *plugins;
    int n_plugins;
    int64_t max_body_size;         /* 0 = server default */
    sl_timeouts_t timeouts;        /* 0 fields inherit from the upstream */
    sl_retries_t retries;          /* .set = false inherits */
    int line;
} sl_route_t;

typedef struct sl_server_opts {
    int64_t client_header_timeout_ms;  /* default 10s: slowloris bound */
    int64_t client_body_timeout_ms;    /* default 30s between body reads */
    int64_t keepalive_timeout_ms;      /* default 60s idle between requests */
    int64_t send_timeout_ms;           /* default 30s: client must take bytes */
    int64_t max_uri_size;              /* default 8kb -> 414 */
    int64_t max_header_size;           /* default 32kb -> 431 */
    int64_t max_body_size;             /* default 1mb -> 413 */
    int64_t drain_timeout_ms;          /* default 10s on SIGTERM */
    int64_t max_response_buffer;       /* default 256kb: backpressure bound */
    bool server_timing;                /* default false */
} sl_server_opts_t;

typedef struct sl_log_opts {
    char *access;          /* "stdout" (default), "off", or a file path */
    char *level;           /* "debug" | "info" (default) | "warn" | "error" */
} sl_log_opts_t;

typedef struct sl_redis_opts {
    bool enabled;
    char *url;             /* as written (may hold a password: never log it) */
    char *host;
    int port;
    char *username;
    char *password;
    int db;
    int64_t connect_timeout_ms;    /* default 500ms */
    int64_t command_timeout_ms;    /* default 200ms */
} sl_redis_opts_t;

typedef struct sl_config {
    atomic_int refs;
    char *path;            /* file it was loaded from */
    sl_listen_t *listens;
    int n_listens;
    int workers;           /* resolved: "auto" -> number of cores */
    sl_server_opts_t server;
    sl_log_opts_t log;
    sl_redis_opts_t redis;
    sl_upstream_t *upstreams;      /* named ones first, then inline ones */
    int n_upstreams;
    json_t *consumers;             /* array, validated by the auth plugins */
    sl_plugin_ref_t *plugins;      /* global chain */
    int n_plugins;
    sl_route_t *routes;
    int n_routes;
    char **plugin_dirs;            /* where .so and .lua plugins are found */
    int n_plugin_dirs;
} sl_config_t;

/* Collected errors: every problem found, each "file:line: key.path: message". */
typedef struct sl_errors {
    char **items;
    int n;
    int cap;
} sl_errors_t;

void sl_errors_add(sl_errors_t *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void sl_errors_free(sl_errors_t *e);

/* Loads and validates a file. Returns NULL and fills errs (all of them) on
 * failure; never prints. The result has refs == 1. */
sl_config_t *sl_config_load(const char *path, sl_errors_t *errs);

/* Same, from a string (for tests); name is used in messages. */
sl_config_t *sl_config_load_string(const char *name, const char *yaml, sl_errors_t *errs);

sl_config_t *sl_config_ref(sl_config_t *c);
void sl_config_unref(sl_config_t *c);

/* Small parsers shared with plugins' schema code. Return 0 on success. */
int sl_parse_duration_ms(const char *s, int64_t *out);  /* "250ms" "5s" "2m" "1h", bare number = ms */
int sl_parse_size(const char *s, int64_t *out);         /* "512", "16kb", "8mb", "1gb" (1024-based) */
unsigned sl_method_bit(const char *m, size_t len);      /* 0 when unknown */

#endif
