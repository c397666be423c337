/* The upstream exchange for one request: balancer pick, pooled connection,
 * request bytes, response head, streamed body with backpressure, retries with
 * backoff, passive health bookkeeping. */
#ifndef SLUICE_PROXY_H
#define SLUICE_PROXY_H

#include "request.h"

void sl_proxy_start(sl_request_t *r);
/* The client went away or the request is being torn down: release every
 * upstream resource now; no callback reaches r afterwards. */
void sl_proxy_cancel(sl_request_t *r);
/* Frees the worker's stock of spare request timers and buffers (before its
 * event base goes). */
void sl_proxy_worker_free(struct sl_worker *w);

#endif
