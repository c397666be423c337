/* The host table, shared by the plugin's source files (kept by init()). */
#ifndef ATL_HOST_H
#define ATL_HOST_H

#include "sluice/host.h"

extern const sl_host_t *atl_host;

#endif
