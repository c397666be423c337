/* OpenAI chat completions <-> Anthropic Messages: requests, responses, stream
 * events, usage and error vocabulary. */
#include <stdlib.h>
#include <string.h>

#include "translate_internal.h"

/* ---- vocabulary ---- */

const char *ai_anthropic_finish_reason(const char *stop_reason) {
    if (!stop_reason)
        return "stop";
    if (strcmp(stop_reason, "max_tokens") == 0)
        return "length";
    if (strcmp(stop_reason, "tool_use") == 0)
        return "tool_calls";
    if (strcmp(stop_reason, "refusal") == 0)
        return "content_filter";
    return "stop"; /* end_turn, stop_sequence, pause_turn */
}

const char *ai_anthropic_error_type(const char *t) {
    static const char *const map[][2] = {
        {"invalid_request_error", "invalid_request_error"},
        {"request_too_large", "invalid_request_error"},
        {"authentication_error", "authentication_error"},
        {"permission_error", "permission_error"},
        {"not_found_error", "not_found_error"},
        {"rate_limit_error", "rate_limit_error"},
        {"billing_error", "insufficient_quota"},
        {"timeout_error", "timeout_error"},
        {"api_error", "server_error"},
        {"overloaded_error", "server_error"},
    };
    if (!t)
        return NULL;
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(t, map[i][0]) == 0)
            return map[i][1];
    return NULL;
}

/* input_tokens excludes cache reads and writes; OpenAI's prompt_tokens
 * includes both. Stream events carry subsets (message_delta often only
 * output_tokens), so components absent here keep their earlier values. */
void ai_anthropic_usage(const json_t *usage, ai_usage_t *out) {
    const json_t *in = json_object_get(usage, "input_tokens");
    const json_t *rd = json_object_get(usage, "cache_read_input_tokens");
    const json_t *wr = json_object_get(usage, "cache_creation_input_tokens");
    const json_t *outp = json_object_get(usage, "output_tokens");
    long input = out->prompt - out->cached - out->cache_write;
    if (json_is_integer(in))
        input = (long)json_integer_value(in);
    if (json_is_integer(rd))
        out->cached = (long)json_integer_value(rd);
    if (json_is_integer(wr))
        out->cache_write = (long)json_integer_value(wr);
    if (json_is_integer(outp))
        out->completion = (long)json_integer_value(outp);
    out->prompt = input + out->cached + out->cache_write;
    out->total = out->prompt + out->completion;
    if (json_is_integer(in) || json_is_integer(rd) || json_is_integer(wr) || json_is_integer(outp))
        out->present = true;
}

/* ---- requests ---- */

static json_t *text_block(const char *text) {
    json_t *b = json_object();
    json_object_set_new(b, "type", json_string("text"));
    json_object_set_new(b, "text", json_string(text));
    return b;
}

static json_t *image_block(const json_t *part, char *err, size_t n) {
    const json_t *iu = json_object_get(part, "image_url");
    const char *url = json_is_string(iu) ? json_string_value(iu) : json_string_value(json_object_get(iu, "url"));
    if (!url)
        return ai_fail(err, n, "image_url part without a url");
    json_t *source = json_object();
    const char *mime, *data;
    size_t mime_len;
    if (ai_parse_data_url(url, &mime, &mime_len, &data)) {
        json_object_set_new(source, "type", json_string("base64"));
        json_object_set_new(source, "media_type", json_stringn(mime, mime_len));
        json_object_set_new(source, "data", json_string(data));
    } else if (strncmp(url, "https://", 8) == 0 || strncmp(url, "http://", 7) == 0) {
        json_object_set_new(source, "type", json_string("url"));
        json_object_set_new(source, "url", json_string(url));
    } else {
        json_decref(source);
        return ai_fail(err, n, "image url must be a base64 data: URL or an http(s) URL");
    }
    json_t *b = json_object();
    json_object_set_new(b, "type", json_string("image"));
    json_object_set_new(b, "source", source);
    return b;
}

/* User (or assistant) content as Anthropic blocks appended to blocks. */
static int content_blocks(json_t *blocks, const json_t *content, bool images, char *err, size_t n) {
    if (json_is_string(content)) {
        if (json_string_length(content) > 0)
            json_array_append_new(blocks, text_block(json_string_value(content)));
        return 0;
    }
    if (json_is_null(content) || !content)
        return 0;
    if (!json_is_array(content)) {
        ai_fail(err, n, "message content must be a string or an array of parts");
        return -1;
    }
    size_t i;
    const json_t *part;
    json_array_foreach(content, i, part) {
        const char *type = json_string_value(json_object_get(part, "type"));
        if (!type) {
            ai_fail(err, n, "content part %zu has no type", i);
            return -1;
        }
        if (strcmp(type, "text") == 0 || strcmp(type, "refusal") == 0) {
            const char *text = json_string_value(json_object_get(part, type));
            if (!text) {
                ai_fail(err, n, "%s part %zu has no %s", type, i, type);
                return -1;
            }
            json_array_append_new(blocks, text_block(text));
        } else if (images && strcmp(type, "image_url") == 0) {
            json_t *b = image_block(part, err, n);
            if (!b)
                return -1;
            json_array_append_new(blocks, b);
        } else {
            ai_fail(err, n, "content part type '%s' is not supported by anthropic", type);
            return -1;
        }
    }
    return 0;
}

static int tool_use_blocks(json_t *blocks, const json_t *calls, char *err, size_t n) {
    if (!calls || json_is_null(calls))
        return 0;
    if (!json_is_array(calls)) {
        ai_fail(err, n, "tool_calls must be an array");
        return -1;
    }
    size_t i;
    const json_t *call;
    json_array_foreach(calls, i, call) {
        const json_t *fn = json_object_get(call, "function");
        const char *id = json_string_value(json_object_get(call, "id"));
        const char *name = json_string_value(json_object_get(fn, "name"));
        const char *args = json_string_value(json_object_get(fn, "arguments"));
        if (!id || !name) {
            ai_fail(err, n, "tool_calls[%zu] needs an id and function.name", i);
            return -1;
        }
        json_t *input = args && *args ? json_loads(args, 0, NULL) : json_object();
        if (!json_is_object(input)) {
            json_decref(input);
            ai_fail(err, n, "tool_calls[%zu].function.arguments is not a JSON object", i);
            return -1;
        }
        json_t *b = json_object();
        json_object_set_new(b, "type", json_string("tool_use"));
        json_object_set_new(b, "id", json_string(id));
        json_object_set_new(b, "name", json_string(name));
        json_object_set_new(b, "input", input);
        json_array_append_new(blocks, b);
    }
    return 0;
}

/* Anthropic wants the tool results answering one assistant turn together in
 * the next user turn, so consecutive turns of one role become one. */
static void append_turn(json_t *messages, const char *role, json_t *blocks) {
    size_t last = json_array_size(messages);
    json_t *prev = last ? json_array_get(messages, last - 1) : NULL;
    if (prev && strcmp(json_string_value(json_object_get(prev, "role")), role) == 0) {
        json_array_extend(json_object_get(prev, "content"), blocks);
        json_decref(blocks);
        return;
    }
    json_t *m = json_object();
    json_object_set_new(m, "role", json_string(role));
    json_object_set_new(m, "content", blocks);
    json_array_append_new(messages, m);
}

/* A turn that is a single text block reads better (and is smaller) as a string. */
static void simplify_turns(json_t *messages) {
    size_t i;
    json_t *m;
    json_array_foreach(messages, i, m) {
        json_t *blocks = json_object_get(m, "content");
        json_t *only = json_array_size(blocks) == 1 ? json_array_get(blocks, 0) : NULL;
        const char *type = json_string_value(json_object_get(only, "type"));
        if (type && strcmp(type, "text") == 0)
            json_object_set(m, "content", json_object_get(only, "text"));
    }
}

static int translate_message(json_t *messages, json_t *system, const json_t *m, size_t idx, char *err,
                             size_t n) {
    const char *role = json_string_value(json_object_get(m, "role"));
    const json_t *content = json_object_get(m, "content");
    if (!role) {
        ai_fail(err, n, "messages[%zu].role must be a string", idx);
        return -1;
    }
    if (strcmp(role, "system") == 0 || strcmp(role, "developer") == 0) {
        char *text = ai_content_text(content);
        if (!text) {
            ai_fail(err, n, "messages[%zu]: system content must be text", idx);
            return -1;
        }
        /* Both providers reject empty text blocks. */
        if (*text)
            json_array_append_new(system, text_block(text));
        free(text);
        return 0;
    }
    json_t *blocks = json_array();
    if (strcmp(role, "user") == 0) {
        if (!json_is_string(content) && !json_is_array(content)) {
            json_decref(blocks);
            ai_fail(err, n, "messages[%zu].content must be a string or an array of parts", idx);
            return -1;
        }
        if (content_blocks(blocks, content, true, err, n) != 0)
            goto fail;
        append_turn(messages, "user", blocks);
    } else if (strcmp(role, "assistant") == 0) {
        if (content_blocks(blocks, content, false, err, n) != 0 ||
            tool_use_blocks(blocks, json_object_get(m, "tool_calls"), err, n) != 0)
            goto fail;
        if (json_array_size(blocks) == 0) {
            /* Anthropic rejects empty turns; an empty assistant turn says nothing. */
            json_decref(blocks);
            return 0;
        }
        append_turn(messages, "assistant", blocks);
    } else if (strcmp(role, "tool") == 0) {
        const char *id = json_string_value(json_object_get(m, "tool_call_id"));
        char *text = ai_content_text(content);
        if (!id || !text) {
            free(text);
            ai_fail(err, n, "messages[%zu]: a tool message needs tool_call_id and text content", idx);
            goto fail;
        }
        json_t *b = json_object();
        json_object_set_new(b, "type", json_string("tool_result"));
        json_object_set_new(b, "tool_use_id", json_string(id));
        json_object_set_new(b, "content", json_string(text));
        free(text);
        json_array_append_new(blocks, b);
        append_turn(messages, "user", blocks);
    } else {
        json_decref(blocks);
        ai_fail(err, n, "messages[%zu].role '%s' is not supported by anthropic", idx, role);
        return -1;
    }
    return 0;
fail:
    json_decref(blocks);
    return -1;
}

static json_t *translate_tools(const json_t *tools, char *err, size_t n) {
    /* input_schema is required; OpenAI allows a tool with no parameters. */
    return ai_function_declarations(tools, "input_schema", true, err, n);
}

static json_t *translate_tool_choice(const json_t *choice, const json_t *parallel, char *err, size_t n) {
    json_t *out = json_object();
    const char *s = json_string_value(choice);
    if (!choice || json_is_null(choice) || (s && strcmp(s, "auto") == 0)) {
        json_object_set_new(out, "type", json_string("auto"));
    } else if (s && strcmp(s, "none") == 0) {
        json_object_set_new(out, "type", json_string("none"));
    } else if (s && strcmp(s, "required") == 0) {
        json_object_set_new(out, "type", json_string("any"));
    } else if (json_is_object(choice) &&
               json_is_string(json_object_get(json_object_get(choice, "function"), "name"))) {
        json_object_set_new(out, "type", json_string("tool"));
        json_object_set(out, "name", json_object_get(json_object_get(choice, "function"), "name"));
    } else {
        json_decref(out);
        return ai_fail(err, n, "tool_choice must be auto, none, required or {\"type\":\"function\",...}");
    }
    if (json_is_false(parallel) && strcmp(json_string_value(json_object_get(out, "type")), "none") != 0)
        json_object_set_new(out, "disable_parallel_tool_use", json_true());
    return out;
}

static int copy_number(json_t *out, const char *to, const json_t *req, const char *from, char *err, size_t n) {
    const json_t *v = json_object_get(req, from);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_number(v)) {
        ai_fail(err, n, "%s must be a number", from);
        return -1;
    }
    json_object_set_new(out, to, json_deep_copy(v));
    return 0;
}

json_t *ai_to_anthropic_request(const json_t *req, const char *model, int default_max_tokens, char *err,
                                size_t n) {
    if (!json_is_object(req))
        return ai_fail(err, n, "request body must be a JSON object");
    const json_t *msgs = json_object_get(req, "messages");
    if (!json_is_array(msgs) || json_array_size(msgs) == 0)
        return ai_fail(err, n, "messages must be a non-empty array");
    if (!model)
        model = json_string_value(json_object_get(req, "model"));
    if (!model)
        return ai_fail(err, n, "model is required");
    if (ai_check_single_choice(req, err, n) != 0)
        return NULL;
    long max_tokens = ai_max_tokens(req, err, n);
    if (max_tokens < 0)
        return NULL;
    if (max_tokens == 0)
        max_tokens = default_max_tokens;
    if (max_tokens <= 0)
        return ai_fail(err, n, "max_tokens is required for anthropic");

    json_t *out = json_object();
    json_t *system = json_array(), *messages = json_array();
    json_object_set_new(out, "model", json_string(model));
    json_object_set_new(out, "max_tokens", json_integer(max_tokens));
    size_t i;
    const json_t *m;
    json_array_foreach(msgs, i, m) {
        if (translate_message(messages, system, m, i, err, n) != 0)
            goto fail;
    }
    if (json_array_size(messages) == 0) {
        ai_fail(err, n, "at least one user or assistant message is required");
        goto fail;
    }
    simplify_turns(messages);
    if (json_array_size(system) == 1)
        json_object_set(out, "system", json_object_get(json_array_get(system, 0), "text"));
    else if (json_array_size(system) > 1)
        json_object_set(out, "system", system);
    json_object_set(out, "messages", messages);

    if (copy_number(out, "temperature", req, "temperature", err, n) != 0 ||
        copy_number(out, "top_p", req, "top_p", err, n) != 0)
        goto fail;
    json_t *stop;
    if (ai_stop_sequences(req, &stop, err, n) != 0)
        goto fail;
    if (stop)
        json_object_set_new(out, "stop_sequences", stop);
    if (json_is_true(json_object_get(req, "stream")))
        json_object_set_new(out, "stream", json_true());
    const json_t *user = json_object_get(req, "user");
    if (json_is_string(user)) {
        json_t *meta = json_object();
        json_object_set(meta, "user_id", (json_t *)user);
        json_object_set_new(out, "metadata", meta);
    }
    const json_t *tools = json_object_get(req, "tools");
    if (tools && !json_is_null(tools)) {
        json_t *t = translate_tools(tools, err, n);
        if (!t)
            goto fail;
        if (json_array_size(t) > 0)
            json_object_set_new(out, "tools", t);
        else
            json_decref(t);
    }
    const json_t *choice = json_object_get(req, "tool_choice");
    const json_t *parallel = json_object_get(req, "parallel_tool_calls");
    if ((choice && !json_is_null(choice)) || json_is_false(parallel)) {
        json_t *c = translate_tool_choice(choice, parallel, err, n);
        if (!c)
            goto fail;
        json_object_set_new(out, "tool_choice", c);
    }
    json_decref(system);
    json_decref(messages);
    return out;
fail:
    json_decref(system);
    json_decref(messages);
    json_decref(out);
    return NULL;
}

/* ---- responses ---- */

json_t *ai_from_anthropic_response(const json_t *resp, const char *model, long created) {
    const json_t *content = json_object_get(resp, "content");
    if (!json_is_object(resp) || !json_is_array(content))
        return NULL;
    size_t text_len = 0, i;
    const json_t *b;
    json_t *calls = json_array();
    json_array_foreach(content, i, b) {
        const char *type = json_string_value(json_object_get(b, "type"));
        if (!type)
            continue;
        if (strcmp(type, "text") == 0) {
            text_len += json_string_length(json_object_get(b, "text"));
        } else if (strcmp(type, "tool_use") == 0) {
            const json_t *input = json_object_get(b, "input");
            char *args = input ? json_dumps(input, JSON_COMPACT) : strdup("{}");
            json_t *fn = json_object();
            json_object_set(fn, "name", json_object_get(b, "name"));
            json_object_set_new(fn, "arguments", json_string(args ? args : "{}"));
            free(args);
            json_t *call = json_object();
            json_object_set(call, "id", json_object_get(b, "id"));
            json_object_set_new(call, "type", json_string("function"));
            json_object_set_new(call, "function", fn);
            json_array_append_new(calls, call);
        }
    }
    char *text = malloc(text_len + 1);
    size_t off = 0;
    json_array_foreach(content, i, b) {
        const char *type = json_string_value(json_object_get(b, "type"));
        const json_t *t = json_object_get(b, "text");
        if (text && type && strcmp(type, "text") == 0 && json_is_string(t)) {
            memcpy(text + off, json_string_value(t), json_string_length(t));
            off += json_string_length(t);
        }
    }
    json_t *msg = json_object();
    json_object_set_new(msg, "role", json_string("assistant"));
    /* OpenAI sends null content beside tool calls when there is no text. */
    if (text && (off > 0 || json_array_size(calls) == 0))
        json_object_set_new(msg, "content", json_stringn(text, off));
    else
        json_object_set_new(msg, "content", json_null());
    free(text);
    if (json_array_size(calls) > 0)
        json_object_set_new(msg, "tool_calls", calls);
    else
        json_decref(calls);

    json_t *choice = json_object();
    json_object_set_new(choice, "index", json_integer(0));
    json_object_set_new(choice, "message", msg);
    json_object_set_new(choice, "finish_reason",
                        json_string(ai_anthropic_finish_reason(json_string_value(json_object_get(resp, "stop_reason")))));
    json_t *choices = json_array();
    json_array_append_new(choices, choice);

    json_t *out = json_object();
    const char *id = json_string_value(json_object_get(resp, "id"));
    json_object_set_new(out, "id", json_string(id ? id : ""));
    json_object_set_new(out, "object", json_string("chat.completion"));
    json_object_set_new(out, "created", json_integer(created));
    json_object_set_new(out, "model", json_string(model ? model : ""));
    json_object_set_new(out, "choices", choices);
    ai_usage_t u = {0};
    if (json_is_object(json_object_get(resp, "usage"))) {
        ai_anthropic_usage(json_object_get(resp, "usage"), &u);
        json_object_set_new(out, "usage", ai_usage_to_json(&u));
    }
    return out;
}

/* ---- stream events ---- */

static int emit_text(ai_stream_t *s, const json_t *text) {
    if (!json_is_string(text) || json_string_length(text) == 0)
        return 0;
    json_t *delta = json_object();
    json_object_set(delta, "content", (json_t *)text);
    return ai_stream_emit_delta(s, delta, NULL);
}

static int block_start(ai_stream_t *s, const json_t *ev) {
    const json_t *idx = json_object_get(ev, "index");
    const json_t *cb = json_object_get(ev, "content_block");
    const char *type = json_string_value(json_object_get(cb, "type"));
    if (!json_is_integer(idx) || !type)
        return -1;
    s->block = (long)json_integer_value(idx);
    s->block_args = false;
    if (strcmp(type, "text") == 0) {
        s->block_kind = AI_BLOCK_TEXT;
        return emit_text(s, json_object_get(cb, "text"));
    }
    if (strcmp(type, "tool_use") != 0) {
        s->block_kind = AI_BLOCK_OTHER; /* thinking, server tools: nothing for the client */
        return 0;
    }
    const char *id = json_string_value(json_object_get(cb, "id"));
    const char *name = json_string_value(json_object_get(cb, "name"));
    if (!id || !name)
        return -1;
    s->block_kind = AI_BLOCK_TOOL;
    s->block_tool = s->tools++;
    if (ai_stream_emit_delta(s, ai_tool_call_delta(s->block_tool, id, name, ""), NULL) != 0)
        return -1;
    /* Streams send input {} here and the arguments as deltas; should a whole
     * input ever come at once, pass it on as the first fragment. */
    const json_t *input = json_object_get(cb, "input");
    if (json_object_size(input) > 0) {
        char *args = json_dumps(input, JSON_COMPACT);
        int rc = args ? ai_stream_emit_delta(s, ai_tool_call_delta(s->block_tool, NULL, NULL, args), NULL) : -1;
        free(args);
        s->block_args = true;
        return rc;
    }
    return 0;
}

static int block_delta(ai_stream_t *s, const json_t *ev) {
    const json_t *idx = json_object_get(ev, "index");
    const json_t *delta = json_object_get(ev, "delta");
    const char *type = json_string_value(json_object_get(delta, "type"));
    /* Deltas for a block that is not open cannot be placed: the order is broken. */
    if (!json_is_integer(idx) || (long)json_integer_value(idx) != s->block || !type)
        return -1;
    if (strcmp(type, "text_delta") == 0)
        return emit_text(s, json_object_get(delta, "text"));
    if (strcmp(type, "input_json_delta") == 0 && s->block_kind == AI_BLOCK_TOOL) {
        const json_t *frag = json_object_get(delta, "partial_json");
        if (!json_is_string(frag))
            return -1;
        if (json_string_length(frag) == 0)
            return 0;
        s->block_args = true;
        return ai_stream_emit_delta(s, ai_tool_call_delta(s->block_tool, NULL, NULL, json_string_value(frag)),
                                    NULL);
    }
    return 0; /* thinking_delta, signature_delta, citations_delta */
}

static int block_stop(ai_stream_t *s) {
    int rc = 0;
    /* A tool without parameters streams no fragment; clients parse arguments as JSON. */
    if (s->block_kind == AI_BLOCK_TOOL && !s->block_args)
        rc = ai_stream_emit_delta(s, ai_tool_call_delta(s->block_tool, NULL, NULL, "{}"), NULL);
    s->block = -1;
    s->block_kind = AI_BLOCK_NONE;
    return rc;
}

int ai_anthropic_stream_event(ai_stream_t *s, const sse_event_t *ev) {
    if (!ev->has_data)
        return 0;
    json_t *e = json_loadb(ev->data, ev->data_len, 0, NULL);
    if (!json_is_object(e)) {
        json_decref(e);
        return -1;
    }
    const char *type = json_string_value(json_object_get(e, "type"));
    if (!type)
        type = ev->type;
    int rc = 0;
    if (strcmp(type, "message_start") == 0) {
        const json_t *usage = json_object_get(json_object_get(e, "message"), "usage");
        if (json_is_object(usage))
            ai_anthropic_usage(usage, &s->usage);
        rc = ai_stream_emit_role(s);
    } else if (strcmp(type, "content_block_start") == 0) {
        rc = block_start(s, e);
    } else if (strcmp(type, "content_block_delta") == 0) {
        rc = block_delta(s, e);
    } else if (strcmp(type, "content_block_stop") == 0) {
        rc = block_stop(s);
    } else if (strcmp(type, "message_delta") == 0) {
        const json_t *usage = json_object_get(e, "usage");
        if (json_is_object(usage))
            ai_anthropic_usage(usage, &s->usage);
        const char *reason = json_string_value(json_object_get(json_object_get(e, "delta"), "stop_reason"));
        if (reason && !s->finish_sent)
            rc = ai_stream_emit_delta(s, json_object(), ai_anthropic_finish_reason(reason));
    } else if (strcmp(type, "message_stop") == 0) {
        if (!s->finish_sent)
            rc = ai_stream_emit_delta(s, json_object(), "stop");
        s->done = true;
    } else if (strcmp(type, "error") == 0) {
        const json_t *err = json_object_get(e, "error");
        const char *etype = ai_anthropic_error_type(json_string_value(json_object_get(err, "type")));
        ai_stream_set_error(s, json_string_value(json_object_get(err, "message")), etype ? etype : "server_error");
    }
    /* ping and event types added later carry nothing a client needs. */
    json_decref(e);
    return rc;
}
