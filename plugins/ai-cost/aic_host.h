/* The host table, shared by the plugin's source files (kept by init()). */
#ifndef AIC_HOST_H
#define AIC_HOST_H

#include "sluice/host.h"

extern const sl_host_t *aic_host;

#endif
