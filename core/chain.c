#include "chain.h"

#include <event2/buffer.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "proxy.h"

static sl_status_t call_phase(sl_plugin_inst_t *p, sl_request_t *r, int phase)
{
    const sl_plugin_desc_t *d = p->type->desc;
    sl_req_t *handle = (sl_req_t *)r;
    if (phase == SL_PHASE_REWRITE)
        return d->rewrite ? d->rewrite(p->state, handle) : SL_OK;
    return d->access ? d->access(p->state, handle) : SL_OK;
}

/* Sends what host->respond() recorded, through the filters of the plugins
 * that ran. */
static void send_plugin_answer(sl_request_t *r)
{
    struct evbuffer *body = r->plugin_body;
    r->plugin_body = NULL;
    size_t n = body ? evbuffer_get_length(body) : 0;
    sl_request_send_head(r);
    if (n > 0)
        sl_request_send_body(r, (const char *)evbuffer_pullup(body, -1), n);
    if (body)
        evbuffer_free(body);
    sl_request_end(r);
}

static void plugin_failed(sl_request_t *r, const sl_plugin_inst_t *p, const char *what)
{
    sl_error("request %s: plugin %s: %s", r->request_id, p->type->name, what);
    if (r->plugin_body) {
        evbuffer_free(r->plugin_body);
        r->plugin_body = NULL;
    }
    r->resp_headers.n = 0;
    sl_request_error(r, 500, "plugin_error", "a plugin failed while handling the request");
}

/* Returns true when the request left the chain (answered or failed). */
static bool handle_status(sl_request_t *r, sl_plugin_inst_t *p, sl_status_t st)
{
    switch (st) {
    case SL_OK:
        return false;
    case SL_YIELD:
        r->chain_yielded = true;
        return true;
    case SL_DONE:
        if (r->head_sent) {   /* a streamed answer (host->stream_start) is complete */
            sl_request_end(r);
            return true;
        }
        if (!r->plugin_answered) {
            plugin_failed(r, p, "returned DONE without an answer");
            return true;
        }
        send_plugin_answer(r);
        return true;
    case SL_ERROR:
    default:
        plugin_failed(r, p, "returned an error");
        return true;
    }
}

static void run(sl_request_t *r)
{
    const sl_chain_t *c = r->chain;
    while (r->chain_phase == SL_PHASE_REWRITE || r->chain_phase == SL_PHASE_ACCESS) {
        while (r->chain_idx < c->n) {
            int i = r->chain_idx++;
            sl_plugin_inst_t *p = c->items[i];
            if (!(p->type->desc->phases & (uint32_t)r->chain_phase))
                continue;
            if (i >= r->chain_ran)
                r->chain_ran = i + 1;
            if (handle_status(r, p, call_phase(p, r, r->chain_phase)))
                return;
        }
        if (r->chain_phase == SL_PHASE_REWRITE) {
            r->chain_phase = SL_PHASE_ACCESS;
            r->chain_idx = 0;
        } else {
            r->chain_phase = 0;
        }
    }
    if (!r->route->upstream) {
        sl_request_error(r, 404, "route_not_found", "no plugin of this route answered");
        return;
    }
    sl_proxy_start(r);
}

void sl_chain_start(sl_request_t *r)
{
    r->chain_phase = SL_PHASE_REWRITE;
    r->chain_idx = 0;
    if (!r->chain || !(r->chain->phases & (SL_PHASE_REWRITE | SL_PHASE_ACCESS)))
        r->chain_phase = 0;
    run(r);
}

void sl_chain_resume(sl_request_t *r, sl_status_t status)
{
    if (!r->chain_yielded)
        return;
    r->chain_yielded = false;
    sl_plugin_inst_t *p = r->chain->items[r->chain_idx - 1];
    if (handle_status(r, p, status))
        return;
    run(r);
}

void sl_chain_header_filter(sl_request_t *r)
{
    const sl_chain_t *c = r->chain;
    if (!c || !(c->phases & SL_PHASE_HEADER_FILTER))
        return;
    for (int i = 0; i < r->chain_ran && i < c->n; i++) {
        sl_plugin_inst_t *p = c->items[i];
        if (!p->type->desc->header_filter)
            continue;
        if (p->type->desc->header_filter(p->state, (sl_req_t *)r) == SL_ERROR)
            sl_error("request %s: plugin %s: header_filter failed", r->request_id, p->type->name);
    }
}

bool sl_chain_has_body_filter(const sl_request_t *r)
{
    const sl_chain_t *c = r->chain;
    return c && (c->phases & SL_PHASE_BODY_FILTER) && r->chain_ran > 0;
}

void sl_chain_body_filter(sl_request_t *r, const char *data, size_t len, bool last,
                          const char **out, size_t *out_len)
{
    const sl_chain_t *c = r->chain;
    sl_body_chunk_t chunk = { data, len, last };
    for (int i = 0; i < r->chain_ran && i < c->n; i++) {
        sl_plugin_inst_t *p = c->items[i];
        if (!p->type->desc->body_filter)
            continue;
        if (p->type->desc->body_filter(p->state, (sl_req_t *)r, &chunk) == SL_ERROR)
            sl_error("request %s: plugin %s: body_filter failed", r->request_id, p->type->name);
    }
    *out = chunk.data;
    *out_len = chunk.len;
}

void sl_chain_log(sl_request_t *r)
{
    const sl_chain_t *c = r->chain;
    if (!c || !(c->phases & SL_PHASE_LOG))
        return;
    for (int i = 0; i < c->n; i++) {
        sl_plugin_inst_t *p = c->items[i];
        if (p->type->desc->log)
            p->type->desc->log(p->state, (sl_req_t *)r);
    }
}
