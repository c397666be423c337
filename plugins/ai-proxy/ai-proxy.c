/* ai-proxy: one OpenAI-compatible API in front of many LLM providers.
 *
 * The plugin is the upstream of its route: the access phase reads the
 * client's OpenAI request, and either answers it at once (GET /v1/models,
 * bad input, an unknown model) or hands it to aip_exchange.c, which calls
 * the providers of the requested model alias (OpenAI, Azure OpenAI,
 * OpenAI-compatible servers, Anthropic, Gemini, or the built-in mock) with
 * failover, and answers from the first that works. The config is read once
 * in aip_conf.c; per-target memory (circuit breaker, current key, latency)
 * is in aip_health.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "aip_conf.h"
#include "aip_exchange.h"
#include "aip_host.h"
#include "translate.h"

const sl_host_t *aip_host;

static int init(const sl_host_t *h)
{
    aip_host = h;
    return 0;
}

static void *configure(const sl_json_t *conf, char *err, size_t errlen)
{
    return aip_conf_new(conf, err, errlen);
}

static void unconfigure(void *instance) { aip_conf_free(instance); }

static bool ends_with(const char *s, size_t len, const char *suffix)
{
    size_t n = strlen(suffix);
    return len >= n && memcmp(s + len - n, suffix, n) == 0;
}

static sl_status_t list_models(const aip_conf_t *c, sl_req_t *r)
{
    json_t *data = json_array();
    for (int i = 0; i < c->n_models; i++)
        json_array_append_new(data, json_pack("{s:s,s:s,s:i,s:s}", "id", c->models[i].alias, "object", "model",
                                              "created", 0, "owned_by", "sluice"));
    json_t *list = json_pack("{s:s,s:o}", "object", "list", "data", data);
    char *body = list ? json_dumps(list, JSON_COMPACT) : NULL;
    json_decref(list);
    if (!body)
        return SL_ERROR;
    aip_host->respond(r, 200, "application/json", body, strlen(body));
    free(body);
    return SL_DONE;
}

static sl_status_t refuse(sl_req_t *r, int status, const char *code, const char *message)
{
    aip_host->respond_error(r, status, code, message);
    return SL_DONE;
}

/* A chat request read in place (json_scan.h), as long as that is enough:
 * a well-formed object whose model is a plain string. OpenAI-format
 * targets then never need a jansson tree of it. SL_OK (which serving never
 * returns otherwise): read it the
 * full way. */
static sl_status_t serve_scanned(const aip_conf_t *c, sl_req_t *r, const char *text, size_t len)
{
    ai_chat_scan_t scan;
    if (!text || !ai_chat_scan(text, len, &scan))
        return SL_OK;
    js_span_t model = scan.model;
    char alias[256];
    /* Escapes need unescaping: left to jansson. */
    if (js_kind(model) != '"' || model.len - 2 >= sizeof alias || memchr(model.p, '\\', model.len))
        return SL_OK;
    memcpy(alias, model.p + 1, model.len - 2);
    alias[model.len - 2] = '\0';
    const aip_model_t *m = aip_conf_model(c, alias);
    if (!m) {
        char msg[300];
        snprintf(msg, sizeof msg, "the model \"%.200s\" does not exist", alias);
        return refuse(r, 404, "model_not_found", msg);
    }
    if (js_kind(scan.messages) != '[')
        return refuse(r, 400, "invalid_request", "messages must be an array");
    bool stream = js_kind(scan.stream) == 't';
    return aip_exchange_start(r, c, m, AIP_OP_CHAT, NULL, &scan, text, len, stream);
}

/* The client's body as a JSON object with a known model, or an answer. */
static sl_status_t serve(const aip_conf_t *c, sl_req_t *r, aip_op_t op)
{
    size_t len = 0;
    const char *text = aip_host->req_body(r, &len);
    if (op == AIP_OP_CHAT) {
        sl_status_t st = serve_scanned(c, r, text, len);
        if (st != SL_OK)
            return st;
    }
    json_error_t jerr;
    json_t *req = json_loadb(text ? text : "", len, 0, &jerr);
    char msg[300];
    if (!req) {
        snprintf(msg, sizeof msg, "the request body is not valid JSON: %s (line %d, column %d)", jerr.text,
                 jerr.line, jerr.column);
        return refuse(r, 400, "invalid_json", msg);
    }
    if (!json_is_object(req)) {
        json_decref(req);
        return refuse(r, 400, "invalid_request", "the request body must be a JSON object");
    }
    const char *alias = json_string_value(json_object_get(req, "model"));
    if (!alias) {
        json_decref(req);
        return refuse(r, 400, "missing_model", "you must provide a model parameter (a string)");
    }
    const aip_model_t *m = aip_conf_model(c, alias);
    if (!m) {
        snprintf(msg, sizeof msg, "the model \"%.200s\" does not exist", alias);
        json_decref(req);
        return refuse(r, 404, "model_not_found", msg);
    }
    if (op == AIP_OP_CHAT && !json_is_array(json_object_get(req, "messages"))) {
        json_decref(req);
        return refuse(r, 400, "invalid_request", "messages must be an array");
    }
    if (op == AIP_OP_EMBED && !json_object_get(req, "input")) {
        json_decref(req);
        return refuse(r, 400, "invalid_request", "input is required");
    }
    return aip_exchange_start(r, c, m, op, req, NULL, text, len, json_is_true(json_object_get(req, "stream")));
}

static sl_status_t access_phase(void *instance, sl_req_t *r)
{
    const aip_conf_t *c = instance;
    size_t mlen = 0, plen = 0;
    const char *method = aip_host->req_method(r, &mlen);
    /* The target an earlier plugin (e.g. ai-prompt-template) chose, else the
     * client's: the operation follows it, without the query. */
    const char *path = aip_host->upstream_target(r, &plen);
    const char *q = memchr(path, '?', plen);
    if (q)
        plen = (size_t)(q - path);
    bool get = mlen == 3 && memcmp(method, "GET", 3) == 0;
    bool post = mlen == 4 && memcmp(method, "POST", 4) == 0;
    if (get && ends_with(path, plen, "/models"))
        return list_models(c, r);
    if (post && ends_with(path, plen, "/chat/completions"))
        return serve(c, r, AIP_OP_CHAT);
    if (post && ends_with(path, plen, "/embeddings"))
        return serve(c, r, AIP_OP_EMBED);
    char msg[300];
    snprintf(msg, sizeof msg, "Invalid URL (%.10s %.*s)", method, (int)(plen > 200 ? 200 : plen), path);
    return refuse(r, 404, "unknown_url", msg);
}

static const sl_plugin_desc_t desc = {
    .abi_major = SLUICE_ABI_MAJOR,
    .abi_minor = SLUICE_ABI_MINOR,
    .name = "ai-proxy",
    .version = "1.0.0",
    .phases = SL_PHASE_ACCESS,
    .schema = aip_schema,
    .init = init,
    .configure = configure,
    .unconfigure = unconfigure,
    .access = access_phase,
};

__attribute__((visibility("default"))) const sl_plugin_desc_t *SLUICE_PLUGIN_ENTRY(void)
{
    return &desc;
}
