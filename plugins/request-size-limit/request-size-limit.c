/* request-size-limit: answers 413 when a request body is larger than
 * `max_body` bytes.
 *
 * The core reads the whole body (up to the route's max_body_size) before any
 * plugin runs, so this plugin can only refuse a body that has already been
 * received: it saves the upstream, not the gateway. A route's own
 * max_body_size stops an oversized body while it arrives and is the
 * efficient choice for a large limit; this plugin is for a tighter limit
 * set per route or per plugin chain (e.g. globally with a route override). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "sluice/host.h"
#include "sluice/plugin.h"

static const sl_host_t *host;

typedef struct size_limit {
    int64_t max_body;
} size_limit_t;

static int init(const sl_host_t *h)
{
    host = h;
    return 0;
}

static void *configure(const sl_json_t *conf, char *err, size_t errlen)
{
    size_limit_t *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->max_body = host->json_integer(host->json_get(conf, "max_body"));
    return s;
}

static void unconfigure(void *instance) { free(instance); }

/* The body's length: the declared Content-Length when there is one (the
 * core has read exactly that many bytes, and its parser refused anything
 * but 1*18DIGIT, or a list of equal such values), else the length of the
 * buffered chunked body. Going by the header spares a copy of the body:
 * host->req_body hands out a copy. */
static int64_t body_length(sl_req_t *r)
{
    size_t len = 0;
    const char *cl = host->req_header(r, "Content-Length", &len);
    if (cl && len > 0 && cl[0] >= '0' && cl[0] <= '9') {
        int64_t n = 0;
        for (size_t i = 0; i < len && i < 18 && cl[i] >= '0' && cl[i] <= '9'; i++)
            n = n * 10 + (cl[i] - '0');
        return n;
    }
    size_t body_len = 0;
    host->req_body(r, &body_len);
    return (int64_t)body_len;
}

static sl_status_t rewrite(void *instance, sl_req_t *r)
{
    const size_limit_t *s = instance;
    if (body_length(r) <= s->max_body)
        return SL_OK;
    char msg[96];
    snprintf(msg, sizeof msg, "the request body is larger than %lld bytes", (long long)s->max_body);
    host->respond_error(r, 413, "body_too_large", msg);
    return SL_DONE;
}

static const sl_plugin_desc_t desc = {
    .abi_major = SLUICE_ABI_MAJOR,
    .abi_minor = SLUICE_ABI_MINOR,
    .name = "request-size-limit",
    .version = "1.0.0",
    .phases = SL_PHASE_REWRITE,
    .schema = "{\"fields\": {\"max_body\": {\"type\": \"size\", \"required\": true}}}",
    .init = init,
    .configure = configure,
    .unconfigure = unconfigure,
    .rewrite = rewrite,
};

__attribute__((visibility("default"))) const sl_plugin_desc_t *SLUICE_PLUGIN_ENTRY(void)
{
    return &desc;
}
