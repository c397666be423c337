/* Shared by the config_*.c files that together turn a YAML tree into an
 * sl_config_t. Not for use outside the config loader. */
#ifndef SLUICE_CONFIG_INTERNAL_H
#define SLUICE_CONFIG_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "ydoc.h"

/* What every section parser needs to report errors. */
typedef struct slc {
    const char *file;
    sl_errors_t *errs;
} slc_t;

/* Path buffers are local arrays of this size in each parser. */
#define SLC_PATH YDOC_PATH_MAX

/* --- allocation: the loader has no sensible way on from out-of-memory --- */
void *slc_calloc(size_t n, size_t size);
char *slc_strdup(const char *s);
char *slc_strndup(const char *s, size_t n);
char *slc_lower(const char *s);   /* a lowercased copy */

/* --- errors, each "file:line: path: message" --- */
void slc_err(slc_t *c, int line, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void slc_unknown_key(slc_t *c, const ydoc_node_t *key, const char *path);
void slc_missing_key(slc_t *c, const ydoc_node_t *map, const char *map_path, const char *key);
void slc_bad_enum(slc_t *c, const ydoc_node_t *n, const char *path, const char *expected);

/* --- typed readers: true on success; false after reporting an error, or
 * silently for a node already reported by the YAML layer (invalid) --- */
bool slc_map(slc_t *c, const ydoc_node_t *n, const char *path);      /* a mapping, or null = empty */
bool slc_list(slc_t *c, const ydoc_node_t *n, const char *path);     /* a list */
bool slc_scalar(slc_t *c, const ydoc_node_t *n, const char *path, const char *what);
bool slc_string(slc_t *c, const ydoc_node_t *n, const char *path, char **out); /* non-empty; replaces *out */
bool slc_bool(slc_t *c, const ydoc_node_t *n, const char *path, bool *out);
bool slc_int(slc_t *c, const ydoc_node_t *n, const char *path, int min, int max, int *out);
bool slc_duration(slc_t *c, const ydoc_node_t *n, const char *path, int64_t min_ms, int64_t *out);
bool slc_size(slc_t *c, const ydoc_node_t *n, const char *path, int64_t *out); /* > 0 */
bool slc_status_list(slc_t *c, const ydoc_node_t *n, const char *path, int *out, int *n_out);
bool slc_readable_file(slc_t *c, const ydoc_node_t *n, const char *path, char **out);

/* ${VAR} / ${VAR:-default} / $$ substitution, as a ydoc scalar hook. */
int slc_env_expand(void *ctx, char **str, size_t *len, char *err, size_t errlen);

/* YAML to JSON for plugin configs and consumers: NULL after an error. */
json_t *slc_to_json(slc_t *c, const ydoc_node_t *n, const char *path);

/* --- sections --- */
void slc_load_listen(slc_t *c, const ydoc_node_t *n, sl_config_t *cfg);
int slc_auto_workers(void);  /* online CPUs, at least 1 */
void slc_load_workers(slc_t *c, const ydoc_node_t *n, sl_config_t *cfg);
void slc_load_server(slc_t *c, const ydoc_node_t *n, sl_server_opts_t *s);
void slc_load_log(slc_t *c, const ydoc_node_t *n, sl_log_opts_t *l);
void slc_load_plugin_dirs(slc_t *c, const ydoc_node_t *n, sl_config_t *cfg);
void slc_load_redis(slc_t *c, const ydoc_node_t *n, sl_redis_opts_t *r);
void slc_load_consumers(slc_t *c, const ydoc_node_t *n, sl_config_t *cfg);
void slc_load_upstreams(slc_t *c, const ydoc_node_t *n, sl_config_t *cfg);
void slc_load_routes(slc_t *c, const ydoc_node_t *n, sl_config_t *cfg);
void slc_load_match(slc_t *c, const ydoc_node_t *n, const char *path, sl_route_t *r);
void slc_load_plugin_chain(slc_t *c, const ydoc_node_t *n, const char *path,
                           sl_plugin_ref_t **out, int *n_out);

/* --- pieces shared between upstreams and routes --- */
void slc_upstream_defaults(sl_upstream_t *u);
void slc_retries_defaults(sl_retries_t *r);
/* Bits of `given` say which retries keys were written, so that a route can
 * take the rest from its upstream. */
enum {
    SLC_R_ATTEMPTS = 1 << 0, SLC_R_BACKOFF = 1 << 1, SLC_R_MAX_BACKOFF = 1 << 2,
    SLC_R_ON_STATUS = 1 << 3, SLC_R_NON_IDEMPOTENT = 1 << 4, SLC_R_BUDGET = 1 << 5,
};
void slc_parse_retries(slc_t *c, const ydoc_node_t *n, const char *path, sl_retries_t *r, unsigned *given);
void slc_check_retries(slc_t *c, const ydoc_node_t *n, const char *path, const sl_retries_t *r);
void slc_merge_retries(sl_retries_t *dst, const sl_retries_t *src, unsigned given);
void slc_parse_timeouts(slc_t *c, const ydoc_node_t *n, const char *path, sl_timeouts_t *t);
/* "http://host:port" with no path: 0, or -1 with a message in err. */
int slc_parse_target_url(const char *url, sl_target_t *t, char *err, size_t errlen);

/* --- freeing --- */
void slc_free_upstream(sl_upstream_t *u);
void slc_free_route(sl_route_t *r);
void slc_free_plugins(sl_plugin_ref_t *p, int n);

#endif
