/* The host table, shared by the plugin's source files (kept by init()). */
#ifndef RL_HOST_H
#define RL_HOST_H

#include "sluice/host.h"

extern const sl_host_t *rl_host;

#endif
