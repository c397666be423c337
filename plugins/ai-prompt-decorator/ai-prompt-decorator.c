/* ai-prompt-decorator: puts operator-written messages around the client's
 * in an OpenAI chat-completions request, before it leaves the gateway.
 *
 * Prepended system/developer messages go first of all, so the operator's
 * instructions lead; the other prepended messages (few-shot examples) go
 * after the client's own leading instructions, where a model expects the
 * conversation to start. Appended messages follow the client's last one.
 * Runs in access, so auth plugins listed earlier judge the request first,
 * and before ai-proxy, which reads the body this plugin rewrote. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "chat_json.h"
#include "decorate.h"
#include "sluice/host.h"
#include "sluice/plugin.h"

static const sl_host_t *host;

static int init(const sl_host_t *h)
{
    host = h;
    return 0;
}

/* The SDK hands the config over as opaque values: its JSON text read back
 * gives plain jansson values to keep. */
static json_t *config_as_jansson(const sl_json_t *conf)
{
    size_t n = 0;
    char *text = host->json_dump(conf, &n);
    if (!text)
        return NULL;
    json_t *v = json_loadb(text, n, 0, NULL);
    host->json_free_string(text);
    return v;
}

static void *configure(const sl_json_t *conf, char *err, size_t errlen)
{
    json_t *c = config_as_jansson(conf);
    decoration_t *d = calloc(1, sizeof *d);
    if (!c || !d || decoration_init(d, json_object_get(c, "prepend"), json_object_get(c, "append")) != 0) {
        snprintf(err, errlen, "out of memory");
        json_decref(c);
        free(d);
        return NULL;
    }
    json_decref(c);
    return d;
}

static void unconfigure(void *instance)
{
    decoration_free(instance);
    free(instance);
}

static sl_status_t access_phase(void *instance, sl_req_t *r)
{
    const decoration_t *d = instance;
    size_t len = 0;
    const char *body = host->req_body(r, &len);
    if (!body)
        return SL_ERROR;
    if (len == 0)   /* no prompt to decorate (GET /v1/models and the like) */
        return SL_OK;
    char why[256];
    json_t *root = chat_request_parse(body, len, why, sizeof why);
    if (!root) {
        host->respond_error(r, 400, "invalid_body", why);
        return SL_DONE;
    }
    json_t *messages = decoration_apply(d, json_object_get(root, "messages"));
    char *text = NULL;
    size_t n = 0;
    if (messages && json_object_set_new(root, "messages", messages) == 0)
        text = chat_json_dump(root, &n);
    json_decref(root);
    if (!text)
        return SL_ERROR;
    int rc = host->upstream_set_body(r, text, n);
    free(text);
    return rc == 0 ? SL_OK : SL_ERROR;
}

#define MESSAGE_LIST                                                                               \
    "{\"type\": \"array\", \"default\": [], \"items\": {\"type\": \"object\", \"fields\": {"        \
    "\"role\": {\"type\": \"string\", \"required\": true,"                                          \
    " \"enum\": [\"system\", \"developer\", \"user\", \"assistant\"]},"                           \
    "\"content\": {\"type\": \"string\", \"required\": true}}}}"

static const sl_plugin_desc_t desc = {
    .abi_major = SLUICE_ABI_MAJOR,
    .abi_minor = SLUICE_ABI_MINOR,
    .name = "ai-prompt-decorator",
    .version = "1.0.0",
    .phases = SL_PHASE_ACCESS,
    .schema = "{\"fields\": {\"prepend\": " MESSAGE_LIST ", \"append\": " MESSAGE_LIST "},"
              " \"one_of_required\": [\"prepend\", \"append\"]}",
    .init = init,
    .configure = configure,
    .unconfigure = unconfigure,
    .access = access_phase,
};

__attribute__((visibility("default"))) const sl_plugin_desc_t *SLUICE_PLUGIN_ENTRY(void)
{
    return &desc;
}
