/* Runs a route's plugin chain over a request: rewrite then access (either may
 * answer, or suspend for I/O), then the upstream; header_filter and
 * body_filter over the plugins that ran, as the response goes out; log for
 * every plugin once the client has its last byte. */
#ifndef SLUICE_CHAIN_H
#define SLUICE_CHAIN_H

#include <stdbool.h>

#include "plugin.h"
#include "request.h"

/* After the body is read: rewrite, access, then the upstream (or the answer a
 * plugin gave). */
void sl_chain_start(sl_request_t *r);
/* A plugin that yielded is done waiting. */
void sl_chain_resume(sl_request_t *r, sl_status_t status);
/* Before the response head is serialised. */
void sl_chain_header_filter(sl_request_t *r);
bool sl_chain_has_body_filter(const sl_request_t *r);
/* Runs body filters over one piece (or the end, last = true); the result is
 * in out and out_len (may point into the request's filter buffers). */
void sl_chain_body_filter(sl_request_t *r, const char *data, size_t len, bool last,
                          const char **out, size_t *out_len);
void sl_chain_log(sl_request_t *r);

#endif
