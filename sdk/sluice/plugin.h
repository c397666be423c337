/* sluice plugin SDK: the contract between the gateway and a .so plugin.
 *
 * A plugin is a shared object exporting one symbol, SLUICE_PLUGIN_ENTRY,
 * returning a static descriptor. The gateway dlopen()s it, refuses it when
 * its ABI major differs from the gateway's, validates each configured
 * instance's config against the descriptor's schema, and calls the phase
 * functions for every request on routes that list the plugin. Everything the
 * plugin may ask of the gateway goes through the host table (sluice/host.h).
 *
 * No libevhtp, libevent, hiredis or jansson type appears here: plugins see
 * opaque handles only, so the gateway can change its insides without
 * breaking them. Growth happens by appending to the host table and by the
 * reserved fields below, with SLUICE_ABI_MINOR bumped; anything that changes
 * a layout or a meaning bumps SLUICE_ABI_MAJOR.
 *
 * Threads: phase functions of one request run on one worker thread, one at a
 * time. Instances are shared by all workers: keep per-request state in
 * memory from host->req_alloc(), per-worker state in what worker_init
 * returns, and shared state in the shared dictionary.
 */
#ifndef SLUICE_PLUGIN_H
#define SLUICE_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SLUICE_ABI_MAJOR 1
#define SLUICE_ABI_MINOR 1

/* One request as a plugin sees it. Valid until the request's log phase ends. */
typedef struct sl_req sl_req_t;

/* A JSON value owned by the gateway (see the json_* host functions). */
typedef struct sl_json sl_json_t;

typedef enum sl_status {
    SL_OK = 0,      /* go on with the next plugin */
    SL_DONE = 1,    /* the plugin answered (host->respond); skip the rest of the chain */
    SL_YIELD = 2,   /* suspended on I/O; the plugin calls host->resume() later */
    SL_ERROR = 3,   /* failed: the client gets 500 with the request id; logged */
} sl_status_t;

typedef enum sl_phase {
    SL_PHASE_REWRITE = 1 << 0,        /* before routing decisions: change path, headers */
    SL_PHASE_ACCESS = 1 << 1,         /* auth, limits: may answer 401/403/429 */
    SL_PHASE_HEADER_FILTER = 1 << 2,  /* response status and headers, before they are sent */
    SL_PHASE_BODY_FILTER = 1 << 3,    /* each response body piece as it streams */
    SL_PHASE_LOG = 1 << 4,            /* after the client has its last byte */
} sl_phase_t;

/* A piece of the response body in body_filter. The plugin may read it and
 * replace it (host->body_replace); `last` marks the end of the body (then
 * data may be empty). */
typedef struct sl_body_chunk {
    const char *data;
    size_t len;
    int last;
} sl_body_chunk_t;

struct sl_host;

typedef struct sl_plugin_desc {
    uint32_t abi_major;            /* SLUICE_ABI_MAJOR */
    uint32_t abi_minor;            /* SLUICE_ABI_MINOR */
    const char *name;              /* as written in configs: [a-z0-9-]+ */
    const char *version;
    uint32_t phases;               /* sl_phase_t bits the plugin implements */
    int priority;                  /* unused by the chain (declared order wins); for display */

    /* The config schema as JSON text, in the same language Lua plugins use:
     *   {"fields": {"header": {"type": "string", "required": true},
     *               "limit":  {"type": "integer", "min": 1, "default": 10},
     *               "mode":   {"type": "string", "enum": ["a", "b"]},
     *               "names":  {"type": "array", "items": {"type": "string"}},
     *               "nested": {"type": "object", "fields": {...}},
     *               "pattern_field": {"type": "string", "pattern": "^x-"}}}
     * Types: string integer number boolean array object any. The gateway
     * fills defaults and rejects unknown fields before configure() runs. */
    const char *schema;

    /* Capabilities this plugin puts on the request for later plugins (e.g.
     * "consumer"), comma separated, or NULL. */
    const char *provides;

    /* Once after loading. Keep `host`; it is valid until fini. 0 = ok. */
    int (*init)(const struct sl_host *host);
    /* One instance per place the plugin is configured. `conf` is the
     * validated config with defaults; it lives as long as the instance.
     * Return NULL and write a message to err to reject the config. */
    void *(*configure)(const sl_json_t *conf, char *err, size_t errlen);
    /* Capabilities this instance needs from plugins earlier in the chain
     * (comma separated), or NULL. Checked when the config is loaded. */
    const char *(*requires)(void *instance);
    void (*unconfigure)(void *instance);
    /* Called on each worker thread for each instance; the result is handed
     * back by host->worker_data(). May be NULL. */
    void *(*worker_init)(void *instance, int worker_id);
    void (*worker_fini)(void *instance, void *worker_data);
    void (*fini)(void);

    sl_status_t (*rewrite)(void *instance, sl_req_t *r);
    sl_status_t (*access)(void *instance, sl_req_t *r);
    /* Filters may not yield: they run while the response streams. */
    sl_status_t (*header_filter)(void *instance, sl_req_t *r);
    sl_status_t (*body_filter)(void *instance, sl_req_t *r, sl_body_chunk_t *chunk);
    void (*log)(void *instance, sl_req_t *r);

    void *reserved[8];             /* zero; for growth without an ABI break */
} sl_plugin_desc_t;

/* The one symbol a plugin exports. */
#define SLUICE_PLUGIN_ENTRY sluice_plugin_entry
#define SLUICE_PLUGIN_ENTRY_NAME "sluice_plugin_entry"
typedef const sl_plugin_desc_t *(*sl_plugin_entry_fn)(void);

#ifdef __cplusplus
}
#endif

#endif
