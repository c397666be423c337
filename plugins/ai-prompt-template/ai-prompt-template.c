/* ai-prompt-template: prompts as REST endpoints. The client POSTs a JSON
 * object of variables; the plugin fills the route's template (a system and
 * a user message) and sends an OpenAI chat-completions body upstream, to
 * ai-proxy or any OpenAI-compatible server. Versions of a template can
 * share traffic (A/B). With output "simple" the answer is cut down to
 * {"text", "model", "usage"}.
 *
 * Runs in access, so auth plugins listed earlier judge the request first.
 * The response side (the version header, the simple output) finds the
 * request's state again in header_filter and body_filter through
 * host->req_slot. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "chat_json.h"
#include "response_shape.h"
#include "sluice/host.h"
#include "sluice/plugin.h"
#include "template_conf.h"
#include "template_render.h"

/* Past this, the answer is not a chat.completion worth reshaping: it goes
 * on unchanged rather than being held in memory. */
#define SHAPE_MAX_BYTES (8u << 20)

static const sl_host_t *host;

typedef struct req_state {
    const tpl_version_t *version;
    bool simple;
    bool shaping;                 /* header_filter chose to reshape this answer */
    char *buf;                    /* the answer so far while shaping */
    size_t len, cap;
} req_state_t;

static int init(const sl_host_t *h)
{
    host = h;
    return 0;
}

/* The SDK hands the config over as opaque values: its JSON text read back
 * gives plain jansson values to walk. */
static void *configure(const sl_json_t *conf, char *err, size_t errlen)
{
    size_t n = 0;
    char *text = host->json_dump(conf, &n);
    json_t *c = text ? json_loadb(text, n, 0, NULL) : NULL;
    if (text)
        host->json_free_string(text);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    tpl_conf_t *tc = tpl_conf_new(c, err, errlen);
    json_decref(c);
    return tc;
}

static void unconfigure(void *instance) { tpl_conf_free(instance); }

static void state_release(void *arg)
{
    req_state_t *st = arg;
    free(st->buf);
}

static req_state_t *state_of(void *instance, sl_req_t *r)
{
    void **slot = host->req_slot(r, instance);
    return slot ? *slot : NULL;
}

static req_state_t *state_new(void *instance, sl_req_t *r)
{
    void **slot = host->req_slot(r, instance);
    req_state_t *st = slot ? host->req_alloc(r, sizeof *st) : NULL;
    if (!st || host->req_cleanup(r, state_release, st) != 0)
        return NULL;
    *slot = st;
    return st;
}

/* ------------------------------------------------------------ request */

/* A 400 naming the variable at fault. */
static sl_status_t refuse(sl_req_t *r, json_t *given, const char *code, const char *name, const char *must)
{
    char message[256];
    if (must)
        snprintf(message, sizeof message, "variable \"%s\" must be %s", name, must);
    else
        snprintf(message, sizeof message, "missing variable \"%s\"", name);
    json_decref(given);
    host->respond_error(r, 400, code, message);
    return SL_DONE;
}

/* The request's variables: its body, a JSON object ({} when empty). NULL
 * with a client-facing reason in why. */
static json_t *read_variables(const char *body, size_t len, char *why, size_t whylen)
{
    if (len == 0)
        return json_object();
    json_t *v = chat_json_parse(body, len, why, whylen);
    if (v && !json_is_object(v)) {
        json_decref(v);
        snprintf(why, whylen, "the request body must be a JSON object of template variables");
        return NULL;
    }
    return v;
}

/* Declared variables: required ones present, given ones of their type.
 * NULL when all is well, else the variable at fault (*missing tells which
 * way). */
static const tpl_var_t *check_declared(const tpl_conf_t *c, const json_t *given, bool *missing)
{
    for (size_t i = 0; i < c->n_vars; i++) {
        const tpl_var_t *v = &c->vars[i];
        const json_t *value = json_object_get(given, v->name);
        if (!value || json_is_null(value)) {
            if (v->required) {
                *missing = true;
                return v;
            }
            continue;
        }
        if (!var_value_fits(value, v->type)) {
            *missing = false;
            return v;
        }
    }
    return NULL;
}

static json_t *message(const char *role, const char *content, size_t len)
{
    json_t *m = json_object();
    if (m && (json_object_set_new(m, "role", json_string(role)) != 0 ||
              json_object_set_new(m, "content", json_stringn_nocheck(content, len)) != 0)) {
        json_decref(m);
        m = NULL;
    }
    return m;
}

/* The chat body for this version; messages are the rendered texts. */
static char *chat_body(const tpl_version_t *v, const char *system, size_t system_len, const char *user,
                       size_t user_len, size_t *len)
{
    json_t *body = json_object(), *messages = json_array();
    char *text = NULL;
    if (!body || !messages)
        goto out;
    if (json_object_set_new(body, "model", json_string(v->model)) != 0 ||
        json_object_set(body, "messages", messages) != 0)
        goto out;
    if (system && json_array_append_new(messages, message("system", system, system_len)) != 0)
        goto out;
    if (json_array_append_new(messages, message("user", user, user_len)) != 0)
        goto out;
    if (v->has_temperature && json_object_set_new(body, "temperature", json_real(v->temperature)) != 0)
        goto out;
    if (v->max_tokens > 0 && json_object_set_new(body, "max_tokens", json_integer(v->max_tokens)) != 0)
        goto out;
    text = chat_json_dump(body, len);
out:
    json_decref(messages);
    json_decref(body);
    return text;
}

/* The chat body of version v filled with the request's variables. */
static render_status_t fill(const tpl_version_t *v, const json_t *given, char **body, size_t *body_len,
                            char name[TEMPLATE_NAME_MAX + 1])
{
    char *system = NULL, *user = NULL;
    size_t system_len = 0, user_len = 0;
    render_status_t rs = RENDER_OK;
    if (v->system)
        rs = template_render(v->system, given, v->defaults, &system, &system_len, name);
    if (rs == RENDER_OK)
        rs = template_render(v->user, given, v->defaults, &user, &user_len, name);
    if (rs == RENDER_OK && !(*body = chat_body(v, system, system_len, user, user_len, body_len)))
        rs = RENDER_NO_MEMORY;
    free(system);
    free(user);
    return rs;
}

static sl_status_t access_phase(void *instance, sl_req_t *r)
{
    const tpl_conf_t *c = instance;
    req_state_t *st = state_of(instance, r);
    if (!st && !(st = state_new(instance, r)))
        return SL_ERROR;
    uint32_t roll = c->total_weight > 1 ? arc4random_uniform(c->total_weight) : 0;
    const tpl_version_t *v = st->version = tpl_conf_pick(c, roll);
    st->simple = c->simple;
    host->ctx_set(r, "ai.prompt.template", c->template_name, strlen(c->template_name));
    host->ctx_set(r, "ai.prompt.version", v->name, strlen(v->name));

    size_t mlen = 0;
    const char *method = host->req_method(r, &mlen);
    if (mlen != 4 || memcmp(method, "POST", 4) != 0) {
        host->respond_error(r, 405, "method_not_allowed", "a prompt endpoint takes POST");
        host->resp_set_header(r, "Allow", "POST", 4);
        return SL_DONE;
    }
    size_t len = 0;
    const char *body = host->req_body(r, &len);
    if (!body)
        return SL_ERROR;
    char why[256];
    json_t *given = read_variables(body, len, why, sizeof why);
    if (!given) {
        host->respond_error(r, 400, "invalid_body", why);
        return SL_DONE;
    }
    bool missing = false;
    const tpl_var_t *bad = check_declared(c, given, &missing);
    if (bad)
        return missing ? refuse(r, given, "missing_variable", bad->name, NULL)
                       : refuse(r, given, "invalid_variable", bad->name, var_type_expectation(bad->type));

    char *chat = NULL, name[TEMPLATE_NAME_MAX + 1];
    size_t chat_len = 0;
    render_status_t rs = fill(v, given, &chat, &chat_len, name);
    if (rs == RENDER_MISSING)
        return refuse(r, given, "missing_variable", name, NULL);
    if (rs == RENDER_INVALID)
        return refuse(r, given, "invalid_variable", name, var_type_expectation(VAR_ANY));
    json_decref(given);
    if (rs != RENDER_OK)
        return SL_ERROR;
    int rc = host->upstream_set_body(r, chat, chat_len);
    free(chat);
    if (rc != 0 || host->upstream_set_header(r, "Content-Type", "application/json", 16) != 0 ||
        host->upstream_set_target(r, c->upstream_path, strlen(c->upstream_path)) != 0)
        return SL_ERROR;
    /* the simple output reads the answer: it must come uncompressed */
    if (c->simple)
        host->upstream_remove_header(r, "Accept-Encoding");
    return SL_OK;
}

/* ------------------------------------------------------------ response */

static sl_status_t header_filter(void *instance, sl_req_t *r)
{
    req_state_t *st = state_of(instance, r);
    if (!st || !st->version)
        return SL_OK;
    host->resp_set_header(r, "X-Sluice-Prompt-Version", st->version->name, strlen(st->version->name));
    size_t ct_len = 0, ce_len = 0;
    const char *ct = host->resp_header(r, "Content-Type", &ct_len);
    const char *ce = host->resp_header(r, "Content-Encoding", &ce_len);
    st->shaping = st->simple && host->resp_status(r) == 200 && shape_content_type_ok(ct, ct_len) &&
                  (!ce || (ce_len == 8 && strncasecmp(ce, "identity", 8) == 0));
    return SL_OK;
}

static int keep(req_state_t *st, const char *data, size_t len)
{
    if (st->len + len > st->cap) {
        size_t cap = st->cap ? st->cap : 4096;
        while (cap < st->len + len)
            cap *= 2;
        char *p = realloc(st->buf, cap);
        if (!p)
            return -1;
        st->buf = p;
        st->cap = cap;
    }
    memcpy(st->buf + st->len, data, len);
    st->len += len;
    return 0;
}

/* Stop shaping: what was held back goes out now, with this piece. */
static sl_status_t give_up(req_state_t *st, sl_req_t *r, sl_body_chunk_t *chunk)
{
    st->shaping = false;
    int rc = 0;
    if (st->len) {
        rc = keep(st, chunk->data, chunk->len) == 0 ? host->body_replace(r, chunk, st->buf, st->len) : -1;
        free(st->buf);
        st->buf = NULL;
        st->len = st->cap = 0;
    }
    return rc == 0 ? SL_OK : SL_ERROR;
}

static sl_status_t body_filter(void *instance, sl_req_t *r, sl_body_chunk_t *chunk)
{
    req_state_t *st = state_of(instance, r);
    if (!st || !st->shaping)
        return SL_OK;
    if (st->len + chunk->len > SHAPE_MAX_BYTES)
        return give_up(st, r, chunk);
    if (keep(st, chunk->data, chunk->len) != 0)
        return give_up(st, r, chunk);
    if (!chunk->last)
        return host->body_replace(r, chunk, "", 0) == 0 ? SL_OK : SL_ERROR;
    size_t n = 0;
    char *shaped = shape_simple(st->buf, st->len, &n);
    int rc = shaped ? host->body_replace(r, chunk, shaped, n)
                    : host->body_replace(r, chunk, st->buf, st->len);   /* not one: as it came */
    free(shaped);
    return rc == 0 ? SL_OK : SL_ERROR;
}

#define VERSION_FIELDS                                                                             \
    "{\"type\": \"object\", \"fields\": {"                                                         \
    "\"system\": {\"type\": \"string\"},"                                                          \
    "\"user\": {\"type\": \"string\", \"required\": true},"                                        \
    "\"defaults\": {\"type\": \"object\"},"                                                        \
    "\"model\": {\"type\": \"string\", \"min\": 1},"                                               \
    "\"temperature\": {\"type\": \"number\", \"min\": 0, \"max\": 2},"                             \
    "\"max_tokens\": {\"type\": \"integer\", \"min\": 1}}}"

static const sl_plugin_desc_t desc = {
    .abi_major = SLUICE_ABI_MAJOR,
    .abi_minor = SLUICE_ABI_MINOR,
    .name = "ai-prompt-template",
    .version = "1.0.0",
    .phases = SL_PHASE_ACCESS | SL_PHASE_HEADER_FILTER | SL_PHASE_BODY_FILTER,
    .schema = "{\"fields\": {"
              "\"templates\": {\"type\": \"object\", \"required\": true, \"values\": {\"type\": \"object\","
              " \"fields\": {\"versions\": {\"type\": \"object\", \"required\": true,"
              " \"values\": " VERSION_FIELDS "}}}},"
              "\"template\": {\"type\": \"string\", \"required\": true},"
              "\"version\": {\"type\": \"string\"},"
              "\"split\": {\"type\": \"array\", \"min\": 1, \"max\": 100, \"items\": {\"type\": \"object\","
              " \"fields\": {\"version\": {\"type\": \"string\", \"required\": true},"
              " \"weight\": {\"type\": \"integer\", \"required\": true, \"min\": 0, \"max\": 1000000}}}},"
              "\"model\": {\"type\": \"string\", \"min\": 1},"
              "\"output\": {\"type\": \"string\", \"enum\": [\"simple\", \"openai\"],"
              " \"default\": \"simple\"},"
              "\"variables\": {\"type\": \"object\", \"values\": {\"type\": \"object\", \"fields\": {"
              " \"type\": {\"type\": \"string\","
              " \"enum\": [\"string\", \"number\", \"integer\", \"boolean\", \"array\"]},"
              " \"required\": {\"type\": \"boolean\", \"default\": false}}}},"
              "\"upstream_path\": {\"type\": \"string\", \"pattern\": \"^/[!-~]*$\","
              " \"default\": \"/v1/chat/completions\"}}}",
    .init = init,
    .configure = configure,
    .unconfigure = unconfigure,
    .access = access_phase,
    .header_filter = header_filter,
    .body_filter = body_filter,
};

__attribute__((visibility("default"))) const sl_plugin_desc_t *SLUICE_PLUGIN_ENTRY(void)
{
    return &desc;
}
