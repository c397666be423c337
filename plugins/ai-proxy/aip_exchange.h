/* Serving one chat-completions or embeddings request: try the model's
 * targets in order until one answers, translating to and from each
 * provider's format, and answer the client (a JSON body, or an SSE stream
 * that is held back until the first real content so that a failure before
 * it can still move to the next target unseen). */
#ifndef AIP_EXCHANGE_H
#define AIP_EXCHANGE_H

#include <jansson.h>

#include "aip_conf.h"
#include "aip_upstream.h"
#include "translate.h"
#include "sluice/plugin.h"

/* raw (raw_len bytes) is the client's body and must live as long as the
 * request; req is its parse (stolen), or NULL when it was only validated
 * (json_scan.h), in which case it is parsed when a target needs it. scan:
 * the chat body's in-place reading (copied; it points into raw), or NULL
 * when the body was not read that way. stream:
 * the body's "stream" is true. Returns what the access phase returns:
 * SL_YIELD while providers are being called, SL_DONE when it could answer at
 * once (no target could take the request), SL_ERROR when out of memory. */
sl_status_t aip_exchange_start(sl_req_t *r, const aip_conf_t *c, const aip_model_t *m, aip_op_t op, json_t *req,
                               const ai_chat_scan_t *scan, const char *raw, size_t raw_len, bool stream);

#endif
