/* The host table the gateway handed to init(), for every file of the plugin. */
#ifndef AIP_HOST_H
#define AIP_HOST_H

#include "sluice/host.h"
#include "sluice/plugin.h"

extern const sl_host_t *aip_host;

#endif
