/* Benchmark: read one request header, set one upstream header, in C. */
#include <string.h>

#include "sluice/host.h"
#include "sluice/plugin.h"

static const sl_host_t *host;
static int token;

static int init(const sl_host_t *h)
{
    host = h;
    return 0;
}

static void *configure(const sl_json_t *conf, char *err, size_t errlen)
{
    (void)conf;
    (void)err;
    (void)errlen;
    return &token;
}

static sl_status_t access_phase(void *instance, sl_req_t *r)
{
    (void)instance;
    size_t n = 0;
    const char *v = host->req_header(r, "X-In", &n);
    if (!v) {
        v = "none";
        n = 4;
    }
    host->upstream_set_header(r, "X-Out", v, n);
    return SL_OK;
}

static const sl_plugin_desc_t desc = {
    .abi_major = SLUICE_ABI_MAJOR,
    .abi_minor = SLUICE_ABI_MINOR,
    .name = "header-c",
    .version = "1.0.0",
    .phases = SL_PHASE_ACCESS,
    .init = init,
    .configure = configure,
    .access = access_phase,
};

__attribute__((visibility("default"))) const sl_plugin_desc_t *SLUICE_PLUGIN_ENTRY(void)
{
    return &desc;
}
