/* The OpenAI side of every translation: reading OpenAI request pieces, the
 * OpenAI-format upstream request and stream relay (include_usage), usage in
 * OpenAI terms, and the OpenAI error shape. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "translate_internal.h"

ai_provider_t ai_provider_kind(const char *name) {
    if (!name)
        return AI_PROVIDER_UNKNOWN;
    if (strcmp(name, "openai") == 0 || strcmp(name, "azure") == 0 || strcmp(name, "azure-openai") == 0 ||
        strcmp(name, "openai-compatible") == 0)
        return AI_PROVIDER_OPENAI;
    if (strcmp(name, "anthropic") == 0)
        return AI_PROVIDER_ANTHROPIC;
    if (strcmp(name, "gemini") == 0)
        return AI_PROVIDER_GEMINI;
    return AI_PROVIDER_UNKNOWN;
}

json_t *ai_fail(char *err, size_t n, const char *fmt, ...) {
    if (err && n) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, n, fmt, ap);
        va_end(ap);
    }
    return NULL;
}

/* ---- reading OpenAI requests ---- */

int ai_stop_sequences(const json_t *req, json_t **out, char *err, size_t n) {
    const json_t *stop = json_object_get(req, "stop");
    *out = NULL;
    if (!stop || json_is_null(stop))
        return 0;
    if (json_is_string(stop)) {
        *out = json_array();
        json_array_append_new(*out, json_string(json_string_value(stop)));
        return 0;
    }
    if (!json_is_array(stop)) {
        ai_fail(err, n, "stop must be a string or an array of strings");
        return -1;
    }
    size_t i;
    const json_t *v;
    json_array_foreach(stop, i, v) {
        if (!json_is_string(v)) {
            ai_fail(err, n, "stop[%zu] must be a string", i);
            return -1;
        }
    }
    if (json_array_size(stop) > 0)
        *out = json_deep_copy(stop);
    return 0;
}

long ai_max_tokens(const json_t *req, char *err, size_t n) {
    static const char *const keys[] = {"max_completion_tokens", "max_tokens"};
    for (size_t i = 0; i < 2; i++) {
        const json_t *v = json_object_get(req, keys[i]);
        if (!v || json_is_null(v))
            continue;
        if (!json_is_integer(v) || json_integer_value(v) < 1) {
            ai_fail(err, n, "%s must be a positive integer", keys[i]);
            return -1;
        }
        return (long)json_integer_value(v);
    }
    return 0;
}

int ai_check_single_choice(const json_t *req, char *err, size_t n) {
    const json_t *choices = json_object_get(req, "n");
    if (!choices || json_is_null(choices))
        return 0;
    if (!json_is_integer(choices) || json_integer_value(choices) != 1) {
        ai_fail(err, n, "n must be 1 for this provider");
        return -1;
    }
    return 0;
}

char *ai_content_text(const json_t *content) {
    if (json_is_string(content))
        return strdup(json_string_value(content));
    if (!json_is_array(content))
        return NULL;
    size_t len = 0, i;
    const json_t *part;
    json_array_foreach(content, i, part) {
        const json_t *text = json_object_get(part, "text");
        if (!json_is_string(text) || !json_is_string(json_object_get(part, "type")) ||
            strcmp(json_string_value(json_object_get(part, "type")), "text") != 0)
            return NULL;
        len += json_string_length(text);
    }
    char *out = malloc(len + 1);
    if (!out)
        return NULL;
    size_t off = 0;
    json_array_foreach(content, i, part) {
        const json_t *text = json_object_get(part, "text");
        memcpy(out + off, json_string_value(text), json_string_length(text));
        off += json_string_length(text);
    }
    out[off] = '\0';
    return out;
}

json_t *ai_function_declarations(const json_t *tools, const char *params_key, bool schema_required, char *err,
                                 size_t n) {
    if (!json_is_array(tools))
        return ai_fail(err, n, "tools must be an array");
    json_t *out = json_array();
    size_t i;
    const json_t *t;
    json_array_foreach(tools, i, t) {
        const json_t *fn = json_object_get(t, "function");
        const char *type = json_string_value(json_object_get(t, "type"));
        const char *name = json_string_value(json_object_get(fn, "name"));
        if (!type || strcmp(type, "function") != 0 || !name) {
            json_decref(out);
            return ai_fail(err, n, "tools[%zu] must be a function tool with a name", i);
        }
        json_t *decl = json_object();
        json_object_set_new(decl, "name", json_string(name));
        const json_t *desc = json_object_get(fn, "description");
        if (json_is_string(desc))
            json_object_set(decl, "description", (json_t *)desc);
        const json_t *params = json_object_get(fn, "parameters");
        if (json_is_object(params))
            json_object_set_new(decl, params_key, json_deep_copy(params));
        else if (schema_required)
            json_object_set_new(decl, params_key, json_pack("{s:s,s:{}}", "type", "object", "properties"));
        json_array_append_new(out, decl);
    }
    return out;
}

bool ai_parse_data_url(const char *url, const char **mime, size_t *mime_len, const char **data) {
    if (strncmp(url, "data:", 5) != 0)
        return false;
    const char *m = url + 5;
    const char *comma = strchr(m, ',');
    if (!comma)
        return false;
    static const char b64[] = ";base64";
    size_t blen = sizeof b64 - 1;
    if ((size_t)(comma - m) < blen || strncmp(comma - blen, b64, blen) != 0)
        return false;
    *mime = m;
    *mime_len = (size_t)(comma - blen - m);
    *data = comma + 1;
    return *mime_len > 0;
}

/* ---- OpenAI-format upstreams ---- */

json_t *ai_to_openai_request(const json_t *openai, const char *model, bool *client_wants_usage, char *err,
                             size_t n) {
    *client_wants_usage = false;
    if (!json_is_object(openai))
        return ai_fail(err, n, "request body must be a JSON object");
    const json_t *opts = json_object_get(openai, "stream_options");
    if (opts && !json_is_null(opts) && !json_is_object(opts))
        return ai_fail(err, n, "stream_options must be an object");
    json_t *out = json_deep_copy(openai);
    if (!out)
        return ai_fail(err, n, "out of memory");
    if (model)
        json_object_set_new(out, "model", json_string(model));
    if (!json_is_true(json_object_get(openai, "stream")))
        return out;
    json_t *o = json_object_get(out, "stream_options");
    if (json_is_object(o)) {
        *client_wants_usage = json_is_true(json_object_get(o, "include_usage"));
    } else {
        o = json_object();
        json_object_set_new(out, "stream_options", o);
    }
    json_object_set_new(o, "include_usage", json_true());
    return out;
}

/* A name jansson would write as it is between the quotes. */
static bool needs_no_escape(const char *s) {
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == '"' || *s == '\\' || *s == 0x7f)
            return false;
    return true;
}

bool ai_chat_scan(const char *text, size_t len, ai_chat_scan_t *out) {
    static const char *const keys[] = {"model", "messages", "stream", "stream_options"};
    js_span_t f[4];
    int counts[4];
    memset(out, 0, sizeof *out);
    if (!js_validate_members(text, len, &out->body, keys, 4, f, counts) || js_kind(out->body) != '{')
        return false;
    out->text = text;
    out->len = len;
    out->model = f[0];
    out->n_model = counts[0];
    out->messages = f[1];
    out->stream = f[2];
    out->stream_options = f[3];
    return true;
}

char *ai_openai_request_text(const char *text, size_t len, const char *model, bool *client_wants_usage,
                             size_t *out_len) {
    ai_chat_scan_t scan;
    *client_wants_usage = false;
    if (!ai_chat_scan(text, len, &scan))
        return NULL;
    return ai_openai_request_scanned(&scan, model, client_wants_usage, out_len);
}

char *ai_openai_request_scanned(const ai_chat_scan_t *s, const char *model, bool *client_wants_usage,
                                size_t *out_len) {
    static const char usage_opt[] = ",\"stream_options\":{\"include_usage\":true}";
    const char *text = s->text;
    size_t len = s->len;
    js_span_t body = s->body, old_model = s->model;
    *client_wants_usage = false;
    if (!text || !model || s->n_model != 1 || !needs_no_escape(model))
        return NULL;
    bool add_usage = false;
    if (js_kind(s->stream) == 't') {
        js_span_t opts = s->stream_options;
        if (!opts.p)
            add_usage = true;
        else if (js_kind(js_member(opts, "include_usage", NULL)) == 't')
            *client_wants_usage = true;
        else
            return NULL;
    } else {
        js_span_t opts = s->stream_options;
        if (opts.p && js_kind(opts) != '{' && js_kind(opts) != 'z')
            return NULL;
    }
    size_t mlen = strlen(model);
    size_t head = (size_t)(old_model.p - text), tail_at = head + old_model.len;
    /* The body's closing brace: the new member goes right before it. */
    size_t close_at = (size_t)(body.p - text) + body.len - 1;
    size_t total = len - old_model.len + mlen + 2 + (add_usage ? sizeof usage_opt - 1 : 0);
    char *out = malloc(total + 1);
    if (!out)
        return NULL;
    char *w = out;
    memcpy(w, text, head);
    w += head;
    *w++ = '"';
    memcpy(w, model, mlen);
    w += mlen;
    *w++ = '"';
    if (add_usage) {
        memcpy(w, text + tail_at, close_at - tail_at);
        w += close_at - tail_at;
        memcpy(w, usage_opt, sizeof usage_opt - 1);
        w += sizeof usage_opt - 1;
        memcpy(w, text + close_at, len - close_at);
        w += len - close_at;
    } else {
        memcpy(w, text + tail_at, len - tail_at);
        w += len - tail_at;
    }
    *w = '\0';
    *out_len = (size_t)(w - out);
    return out;
}

static void openai_usage_span(js_span_t usage, ai_usage_t *out);

static bool delta_carries_content(js_span_t choices) {
    size_t pos = 0;
    js_span_t choice;
    static const char *const keys[] = {"content", "refusal", "tool_calls", "function_call"};
    while (js_next(choices, &pos, &choice)) {
        js_span_t d[4];
        js_members(js_member(choice, "delta", NULL), keys, 4, d);
        size_t tpos = 0;
        js_span_t first;
        if (js_nonempty_string(d[0]) || js_nonempty_string(d[1]) || js_next(d[2], &tpos, &first) ||
            js_kind(d[3]) == '{')
            return true;
    }
    return false;
}

static void openai_stream_error(ai_stream_t *s, const json_t *body) {
    const json_t *e = json_object_get(body, "error");
    const char *message = NULL, *type = NULL;
    if (json_is_object(e)) {
        message = json_string_value(json_object_get(e, "message"));
        type = json_string_value(json_object_get(e, "type"));
    } else if (json_is_string(e)) {
        message = json_string_value(e);
    } else {
        message = json_string_value(json_object_get(body, "message"));
    }
    ai_stream_set_error(s, message, type ? type : "server_error");
}

/* Relayed byte for byte; only looked into for usage, content, errors, the end,
 * and the include_usage chunk the client did not ask for. */
int ai_openai_stream_event(ai_stream_t *s, const sse_event_t *ev) {
    if (!ev->has_data) {
        s->emit(s->arg, ev->raw, ev->raw_len);
        return 0;
    }
    if (strcmp(ev->data, "[DONE]") == 0) {
        s->done = true;
        s->done_emitted = true;
        s->emit(s->arg, ev->raw, ev->raw_len);
        return 0;
    }
    /* Read in place: a jansson tree per chunk was most of a stream's cost,
     * and only the error case needs more than a few fields. */
    js_span_t chunk;
    static const char *const keys[] = {"error", "usage", "choices"};
    js_span_t f[3];
    if (!js_validate_members(ev->data, ev->data_len, &chunk, keys, 3, f, NULL) || js_kind(chunk) != '{')
        return -1;
    js_span_t e = f[0], usage = f[1], choices = f[2];
    if ((e.p && js_kind(e) != 'z') || strcmp(ev->type, "error") == 0) {
        json_t *body = json_loadb(ev->data, ev->data_len, 0, NULL);
        if (!json_is_object(body)) {
            json_decref(body);
            return -1;
        }
        openai_stream_error(s, body);
        json_decref(body);
        return 0;
    }
    size_t pos = 0;
    js_span_t first;
    bool usage_only = js_kind(usage) == '{' && js_kind(choices) == '[' && !js_next(choices, &pos, &first);
    if (js_kind(usage) == '{')
        openai_usage_span(usage, &s->usage);
    /* Once content has been seen no chunk can change the answer: not read. */
    bool content = !s->content && delta_carries_content(choices);
    /* Added upstream only for metering: a client that did not ask for it may
     * not expect a chunk without choices. (Azure's leading prompt-filter chunk
     * also has "choices": [] but no usage, so it stays.) */
    if (usage_only && !s->wants_usage)
        return 0;
    s->emit(s->arg, ev->raw, ev->raw_len);
    if (content)
        s->content = true;
    return 0;
}

/* ---- usage ---- */

static long int_field(const json_t *obj, const char *key, long dflt) {
    const json_t *v = json_object_get(obj, key);
    return json_is_integer(v) ? (long)json_integer_value(v) : dflt;
}

void ai_openai_usage(const json_t *usage, ai_usage_t *out) {
    out->prompt = int_field(usage, "prompt_tokens", 0);
    out->completion = int_field(usage, "completion_tokens", 0);
    out->total = int_field(usage, "total_tokens", out->prompt + out->completion);
    out->cached = int_field(json_object_get(usage, "prompt_tokens_details"), "cached_tokens", 0);
    out->reasoning = int_field(json_object_get(usage, "completion_tokens_details"), "reasoning_tokens", 0);
    out->cache_write = 0;
    out->present = true;
}

static long span_int(js_span_t obj, const char *key, long dflt) {
    return (long)js_integer(js_member(obj, key, NULL), dflt);
}

static void openai_usage_span(js_span_t usage, ai_usage_t *out) {
    static const char *const keys[] = {"prompt_tokens", "completion_tokens", "total_tokens",
                                       "prompt_tokens_details", "completion_tokens_details"};
    js_span_t f[5];
    js_members(usage, keys, 5, f);
    out->prompt = (long)js_integer(f[0], 0);
    out->completion = (long)js_integer(f[1], 0);
    out->total = (long)js_integer(f[2], out->prompt + out->completion);
    out->cached = span_int(f[3], "cached_tokens", 0);
    out->reasoning = span_int(f[4], "reasoning_tokens", 0);
    out->cache_write = 0;
    out->present = true;
}

bool ai_openai_usage_from_span(js_span_t usage, ai_usage_t *out) {
    if (js_kind(usage) == '{')
        openai_usage_span(usage, out);
    return out->present;
}

bool ai_openai_usage_extract_text(js_span_t body, ai_usage_t *out) {
    return ai_openai_usage_from_span(js_member(body, "usage", NULL), out);
}

bool ai_usage_extract(const char *provider, const json_t *body, ai_usage_t *out) {
    switch (ai_provider_kind(provider)) {
    case AI_PROVIDER_OPENAI:
        if (json_is_object(json_object_get(body, "usage")))
            ai_openai_usage(json_object_get(body, "usage"), out);
        break;
    case AI_PROVIDER_ANTHROPIC: {
        const json_t *u = json_object_get(json_object_get(body, "message"), "usage");
        if (!json_is_object(u))
            u = json_object_get(body, "usage");
        if (json_is_object(u))
            ai_anthropic_usage(u, out);
        break;
    }
    case AI_PROVIDER_GEMINI:
        if (json_is_array(body)) {
            /* The non-SSE stream body: an array of frames, each cumulative. */
            size_t i;
            const json_t *frame;
            json_array_foreach(body, i, frame) {
                if (json_is_object(json_object_get(frame, "usageMetadata")))
                    ai_gemini_usage(json_object_get(frame, "usageMetadata"), out);
            }
        } else if (json_is_object(json_object_get(body, "usageMetadata"))) {
            ai_gemini_usage(json_object_get(body, "usageMetadata"), out);
        }
        break;
    default:
        break;
    }
    return out->present;
}

json_t *ai_usage_to_json(const ai_usage_t *u) {
    json_t *o = json_object();
    json_object_set_new(o, "prompt_tokens", json_integer(u->prompt));
    json_object_set_new(o, "completion_tokens", json_integer(u->completion));
    json_object_set_new(o, "total_tokens", json_integer(u->total));
    json_t *pd = json_object();
    json_object_set_new(pd, "cached_tokens", json_integer(u->cached));
    json_object_set_new(o, "prompt_tokens_details", pd);
    json_t *cd = json_object();
    json_object_set_new(cd, "reasoning_tokens", json_integer(u->reasoning));
    json_object_set_new(o, "completion_tokens_details", cd);
    return o;
}

/* ---- errors ---- */

const char *ai_error_type_for_status(int status) {
    switch (status) {
    case 400:
    case 413:
    case 422:
        return "invalid_request_error";
    case 401:
        return "authentication_error";
    case 402:
        return "insufficient_quota";
    case 403:
        return "permission_error";
    case 404:
        return "not_found_error";
    case 408:
    case 504:
        return "timeout_error";
    case 429:
        return "rate_limit_error";
    default:
        return status >= 400 && status < 500 ? "invalid_request_error" : "server_error";
    }
}

static json_t *copy_or_null(const json_t *v) {
    return v ? json_deep_copy(v) : json_null();
}

json_t *ai_error_to_openai(const char *provider, int status, const json_t *body) {
    ai_provider_t kind = ai_provider_kind(provider);
    const char *message = NULL, *type = NULL, *code = NULL;
    json_t *param = NULL, *code_json = NULL;
    /* Gemini's non-SSE stream endpoint wraps even its error in an array. */
    if (json_is_array(body) && json_array_size(body) == 1)
        body = json_array_get(body, 0);
    const json_t *e = json_object_get(body, "error");
    if (json_is_string(body)) {
        message = json_string_value(body);
    } else if (json_is_string(e)) {
        message = json_string_value(e);
    } else if (json_is_object(e)) {
        message = json_string_value(json_object_get(e, "message"));
        if (kind == AI_PROVIDER_ANTHROPIC) {
            code = json_string_value(json_object_get(e, "type"));
            type = ai_anthropic_error_type(code);
        } else if (kind == AI_PROVIDER_GEMINI) {
            code = json_string_value(json_object_get(e, "status"));
            type = ai_gemini_error_type(code);
        } else {
            type = json_string_value(json_object_get(e, "type"));
            param = json_object_get(e, "param");
            code_json = json_object_get(e, "code");
        }
    } else if (json_is_object(body)) {
        /* vLLM / FastAPI style: the fields at the top level, or "detail". */
        message = json_string_value(json_object_get(body, "message"));
        if (!message)
            message = json_string_value(json_object_get(body, "detail"));
    }
    char fallback[96];
    if (!message || !*message) {
        snprintf(fallback, sizeof fallback, "upstream %s returned HTTP %d", provider ? provider : "provider",
                 status);
        message = fallback;
    }
    json_t *inner = json_object();
    json_object_set_new(inner, "message", json_string(message));
    json_object_set_new(inner, "type", json_string(type ? type : ai_error_type_for_status(status)));
    json_object_set_new(inner, "param", copy_or_null(param));
    json_object_set_new(inner, "code", code ? json_string(code) : copy_or_null(code_json));
    json_t *out = json_object();
    json_object_set_new(out, "error", inner);
    return out;
}
