/* A test plugin that requires the "consumer" capability from an earlier
 * plugin: the config must be refused when none provides it. */
#include <stdlib.h>

#include "sluice/host.h"
#include "sluice/plugin.h"

static int token;

static void *configure(const sl_json_t *conf, char *err, size_t errlen)
{
    (void)conf;
    (void)err;
    (void)errlen;
    return &token;
}

static const char *requires_consumer(void *instance)
{
    (void)instance;
    return "consumer";
}

static const sl_plugin_desc_t desc = {
    .abi_major = SLUICE_ABI_MAJOR,
    .abi_minor = SLUICE_ABI_MINOR,
    .name = "needs-consumer",
    .version = "0.0.1",
    .configure = configure,
    .requires = requires_consumer,
};

__attribute__((visibility("default"))) const sl_plugin_desc_t *SLUICE_PLUGIN_ENTRY(void)
{
    return &desc;
}
