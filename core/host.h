/* The host table given to plugins, and the request-side bookkeeping behind
 * it (pending plugin I/O, cleanup hooks). */
#ifndef SLUICE_HOST_CORE_H
#define SLUICE_HOST_CORE_H

#include "request.h"
#include "sluice/host.h"

const sl_host_t *sl_host_table(void);
/* The request is being freed: cancel plugin I/O still pending (its callbacks
 * never run) and run the cleanup hooks plugins registered. */
void sl_host_request_done(sl_request_t *r);
/* The config whose plugins are being configured (NULL when done): what
 * host->config_consumers() returns. */
void sl_host_set_building_config(const sl_config_t *cfg);
/* Frees the process-wide caches (Redis scripts) at exit. */
void sl_host_shutdown(void);

#endif
