/* OpenAI chat completions <-> Gemini generateContent: requests, responses,
 * stream frames, usage and error vocabulary. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "translate_internal.h"

/* ---- vocabulary ---- */

const char *ai_gemini_finish_reason(const char *reason, bool had_tool_calls) {
    static const char *const filtered[] = {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII",
                                           "IMAGE_SAFETY"};
    if (!reason)
        return "stop";
    if (strcmp(reason, "MAX_TOKENS") == 0)
        return "length";
    for (size_t i = 0; i < sizeof filtered / sizeof filtered[0]; i++)
        if (strcmp(reason, filtered[i]) == 0)
            return "content_filter";
    /* Gemini ends a function-calling turn with STOP; OpenAI clients loop on
     * finish_reason "tool_calls" to run the tools. */
    return had_tool_calls ? "tool_calls" : "stop";
}

const char *ai_gemini_error_type(const char *status) {
    static const char *const map[][2] = {
        {"INVALID_ARGUMENT", "invalid_request_error"},
        {"FAILED_PRECONDITION", "invalid_request_error"},
        {"OUT_OF_RANGE", "invalid_request_error"},
        {"UNAUTHENTICATED", "authentication_error"},
        {"PERMISSION_DENIED", "permission_error"},
        {"NOT_FOUND", "not_found_error"},
        {"RESOURCE_EXHAUSTED", "rate_limit_error"},
        {"DEADLINE_EXCEEDED", "timeout_error"},
        {"INTERNAL", "server_error"},
        {"UNAVAILABLE", "server_error"},
        {"UNKNOWN", "server_error"},
    };
    if (!status)
        return NULL;
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(status, map[i][0]) == 0)
            return map[i][1];
    return NULL;
}

static long count(const json_t *o, const char *key) {
    const json_t *v = json_object_get(o, key);
    return json_is_integer(v) ? (long)json_integer_value(v) : 0;
}

/* promptTokenCount already includes cachedContentTokenCount; thoughts are
 * output the model was billed for, which OpenAI counts in completion_tokens.
 * Zero counts are simply left out of the JSON, hence the replacement. */
void ai_gemini_usage(const json_t *um, ai_usage_t *out) {
    out->prompt = count(um, "promptTokenCount") + count(um, "toolUsePromptTokenCount");
    out->cached = count(um, "cachedContentTokenCount");
    out->cache_write = 0;
    out->reasoning = count(um, "thoughtsTokenCount");
    out->completion = count(um, "candidatesTokenCount") + out->reasoning;
    const json_t *total = json_object_get(um, "totalTokenCount");
    out->total = json_is_integer(total) ? (long)json_integer_value(total) : out->prompt + out->completion;
    out->present = true;
}

/* Gemini may give a call no id; clients need one to answer it, unique within
 * the conversation, so it is derived from the response id. */
static char *call_id(const json_t *fc, const char *resp_id, int index) {
    const char *id = json_string_value(json_object_get(fc, "id"));
    if (id && *id)
        return strdup(id);
    size_t len = strlen(resp_id) + 32;
    char *out = malloc(len);
    if (out)
        snprintf(out, len, "call_%s_%d", resp_id, index);
    return out;
}

/* ---- requests ---- */

static json_t *text_part(const char *text) {
    json_t *p = json_object();
    json_object_set_new(p, "text", json_string(text));
    return p;
}

static json_t *inline_part(const char *mime, size_t mime_len, const char *data) {
    json_t *d = json_object();
    json_object_set_new(d, "mimeType", json_stringn(mime, mime_len));
    json_object_set_new(d, "data", json_string(data));
    json_t *p = json_object();
    json_object_set_new(p, "inlineData", d);
    return p;
}

static json_t *media_part(const json_t *part, const char *type, char *err, size_t n) {
    if (strcmp(type, "input_audio") == 0) {
        const json_t *a = json_object_get(part, "input_audio");
        const char *data = json_string_value(json_object_get(a, "data"));
        const char *format = json_string_value(json_object_get(a, "format"));
        if (!data || !format)
            return ai_fail(err, n, "input_audio part needs data and format");
        char mime[64];
        int len = snprintf(mime, sizeof mime, "audio/%s", format);
        if (len < 0 || (size_t)len >= sizeof mime)
            return ai_fail(err, n, "input_audio format is too long");
        return inline_part(mime, (size_t)len, data);
    }
    const json_t *iu = json_object_get(part, "image_url");
    const char *url = json_is_string(iu) ? json_string_value(iu) : json_string_value(json_object_get(iu, "url"));
    const char *mime, *data;
    size_t mime_len;
    if (!url)
        return ai_fail(err, n, "image_url part without a url");
    if (!ai_parse_data_url(url, &mime, &mime_len, &data))
        return ai_fail(err, n, "gemini cannot fetch image URLs; send the image as a base64 data: URL");
    return inline_part(mime, mime_len, data);
}

static int content_parts(json_t *parts, const json_t *content, bool media, char *err, size_t n) {
    if (json_is_string(content)) {
        if (json_string_length(content) > 0)
            json_array_append_new(parts, text_part(json_string_value(content)));
        return 0;
    }
    if (!content || json_is_null(content))
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
            json_array_append_new(parts, text_part(text));
        } else if (media && (strcmp(type, "image_url") == 0 || strcmp(type, "input_audio") == 0)) {
            json_t *p = media_part(part, type, err, n);
            if (!p)
                return -1;
            json_array_append_new(parts, p);
        } else {
            ai_fail(err, n, "content part type '%s' is not supported by gemini", type);
            return -1;
        }
    }
    return 0;
}

static int function_call_parts(json_t *parts, const json_t *calls, char *err, size_t n) {
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
        const char *name = json_string_value(json_object_get(fn, "name"));
        const char *args = json_string_value(json_object_get(fn, "arguments"));
        if (!name) {
            ai_fail(err, n, "tool_calls[%zu] needs function.name", i);
            return -1;
        }
        json_t *a = args && *args ? json_loads(args, 0, NULL) : json_object();
        if (!json_is_object(a)) {
            json_decref(a);
            ai_fail(err, n, "tool_calls[%zu].function.arguments is not a JSON object", i);
            return -1;
        }
        json_t *fc = json_object();
        json_object_set_new(fc, "name", json_string(name));
        json_object_set_new(fc, "args", a);
        json_t *p = json_object();
        json_object_set_new(p, "functionCall", fc);
        json_array_append_new(parts, p);
    }
    return 0;
}

/* A functionResponse names the function, not the call: find the call's name
 * in the assistant turns before the tool message. */
static const char *called_name(const json_t *msgs, size_t before, const char *id) {
    for (size_t i = before; i-- > 0;) {
        const json_t *m = json_array_get(msgs, i);
        size_t k;
        const json_t *call;
        json_array_foreach(json_object_get(m, "tool_calls"), k, call) {
            const char *cid = json_string_value(json_object_get(call, "id"));
            if (cid && strcmp(cid, id) == 0)
                return json_string_value(json_object_get(json_object_get(call, "function"), "name"));
        }
    }
    return NULL;
}

static json_t *function_response_part(const char *name, const char *text) {
    json_t *response = json_loads(text, 0, NULL);
    if (!json_is_object(response)) {
        /* The response must be an object; "output" is the key Gemini documents. */
        json_decref(response);
        response = json_object();
        json_object_set_new(response, "output", json_string(text));
    }
    json_t *fr = json_object();
    json_object_set_new(fr, "name", json_string(name));
    json_object_set_new(fr, "response", response);
    json_t *p = json_object();
    json_object_set_new(p, "functionResponse", fr);
    return p;
}

/* Parallel calls must be answered in one turn, so consecutive turns of one
 * role are joined. */
static void append_turn(json_t *contents, const char *role, json_t *parts) {
    size_t last = json_array_size(contents);
    json_t *prev = last ? json_array_get(contents, last - 1) : NULL;
    if (prev && strcmp(json_string_value(json_object_get(prev, "role")), role) == 0) {
        json_array_extend(json_object_get(prev, "parts"), parts);
        json_decref(parts);
        return;
    }
    json_t *c = json_object();
    json_object_set_new(c, "role", json_string(role));
    json_object_set_new(c, "parts", parts);
    json_array_append_new(contents, c);
}

static int translate_message(json_t *contents, json_t *system, const json_t *msgs, size_t idx, char *err,
                             size_t n) {
    const json_t *m = json_array_get(msgs, idx);
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
        /* Both providers reject empty text parts. */
        if (*text)
            json_array_append_new(system, text_part(text));
        free(text);
        return 0;
    }
    json_t *parts = json_array();
    if (strcmp(role, "user") == 0) {
        if (!json_is_string(content) && !json_is_array(content)) {
            ai_fail(err, n, "messages[%zu].content must be a string or an array of parts", idx);
            goto fail;
        }
        if (content_parts(parts, content, true, err, n) != 0)
            goto fail;
        append_turn(contents, "user", parts);
    } else if (strcmp(role, "assistant") == 0) {
        if (content_parts(parts, content, false, err, n) != 0 ||
            function_call_parts(parts, json_object_get(m, "tool_calls"), err, n) != 0)
            goto fail;
        if (json_array_size(parts) == 0) {
            json_decref(parts);
            return 0;
        }
        append_turn(contents, "model", parts);
    } else if (strcmp(role, "tool") == 0) {
        const char *id = json_string_value(json_object_get(m, "tool_call_id"));
        char *text = ai_content_text(content);
        const char *name = id ? called_name(msgs, idx, id) : NULL;
        if (!id || !text) {
            free(text);
            ai_fail(err, n, "messages[%zu]: a tool message needs tool_call_id and text content", idx);
            goto fail;
        }
        if (!name) {
            free(text);
            ai_fail(err, n, "messages[%zu]: tool_call_id '%s' matches no earlier tool call", idx, id);
            goto fail;
        }
        json_array_append_new(parts, function_response_part(name, text));
        free(text);
        append_turn(contents, "user", parts);
    } else {
        ai_fail(err, n, "messages[%zu].role '%s' is not supported by gemini", idx, role);
        goto fail;
    }
    return 0;
fail:
    json_decref(parts);
    return -1;
}

static json_t *translate_tools(const json_t *tools, char *err, size_t n) {
    /* parametersJsonSchema takes JSON Schema as OpenAI clients write it
     * ("parameters" is an OpenAPI subset that rejects e.g.
     * additionalProperties, which strict OpenAI tools require). */
    json_t *decls = ai_function_declarations(tools, "parametersJsonSchema", false, err, n);
    if (!decls)
        return NULL;
    if (json_array_size(decls) == 0) {
        json_decref(decls);
        return json_array();
    }
    json_t *tool = json_object();
    json_object_set_new(tool, "functionDeclarations", decls);
    json_t *out = json_array();
    json_array_append_new(out, tool);
    return out;
}

static json_t *translate_tool_choice(const json_t *choice, char *err, size_t n) {
    json_t *cfg = json_object();
    const char *s = json_string_value(choice);
    if (s && strcmp(s, "auto") == 0) {
        json_object_set_new(cfg, "mode", json_string("AUTO"));
    } else if (s && strcmp(s, "none") == 0) {
        json_object_set_new(cfg, "mode", json_string("NONE"));
    } else if (s && strcmp(s, "required") == 0) {
        json_object_set_new(cfg, "mode", json_string("ANY"));
    } else if (json_is_object(choice) &&
               json_is_string(json_object_get(json_object_get(choice, "function"), "name"))) {
        json_object_set_new(cfg, "mode", json_string("ANY"));
        json_t *names = json_array();
        json_array_append(names, json_object_get(json_object_get(choice, "function"), "name"));
        json_object_set_new(cfg, "allowedFunctionNames", names);
    } else {
        json_decref(cfg);
        return ai_fail(err, n, "tool_choice must be auto, none, required or {\"type\":\"function\",...}");
    }
    json_t *out = json_object();
    json_object_set_new(out, "functionCallingConfig", cfg);
    return out;
}

static int copy_number(json_t *out, const char *to, const json_t *req, const char *from, bool integer,
                       char *err, size_t n) {
    const json_t *v = json_object_get(req, from);
    if (!v || json_is_null(v))
        return 0;
    if (integer ? !json_is_integer(v) : !json_is_number(v)) {
        ai_fail(err, n, "%s must be %s", from, integer ? "an integer" : "a number");
        return -1;
    }
    json_object_set_new(out, to, json_deep_copy(v));
    return 0;
}

static int response_format(json_t *cfg, const json_t *req, char *err, size_t n) {
    const json_t *rf = json_object_get(req, "response_format");
    if (!rf || json_is_null(rf))
        return 0;
    const char *type = json_string_value(json_object_get(rf, "type"));
    if (!type) {
        ai_fail(err, n, "response_format needs a type");
        return -1;
    }
    if (strcmp(type, "text") == 0)
        return 0;
    if (strcmp(type, "json_object") == 0) {
        json_object_set_new(cfg, "responseMimeType", json_string("application/json"));
        return 0;
    }
    const json_t *schema = json_object_get(json_object_get(rf, "json_schema"), "schema");
    if (strcmp(type, "json_schema") == 0 && json_is_object(schema)) {
        json_object_set_new(cfg, "responseMimeType", json_string("application/json"));
        json_object_set_new(cfg, "responseJsonSchema", json_deep_copy(schema));
        return 0;
    }
    ai_fail(err, n, "response_format type '%s' is not supported by gemini", type);
    return -1;
}

static json_t *generation_config(const json_t *req, char *err, size_t n) {
    json_t *cfg = json_object();
    long max_tokens = ai_max_tokens(req, err, n);
    json_t *stop = NULL;
    if (max_tokens < 0 || copy_number(cfg, "temperature", req, "temperature", false, err, n) != 0 ||
        copy_number(cfg, "topP", req, "top_p", false, err, n) != 0 ||
        ai_stop_sequences(req, &stop, err, n) != 0 ||
        copy_number(cfg, "seed", req, "seed", true, err, n) != 0 ||
        copy_number(cfg, "presencePenalty", req, "presence_penalty", false, err, n) != 0 ||
        copy_number(cfg, "frequencyPenalty", req, "frequency_penalty", false, err, n) != 0 ||
        response_format(cfg, req, err, n) != 0) {
        json_decref(cfg);
        return NULL;
    }
    if (max_tokens > 0)
        json_object_set_new(cfg, "maxOutputTokens", json_integer(max_tokens));
    if (stop)
        json_object_set_new(cfg, "stopSequences", stop);
    return cfg;
}

json_t *ai_to_gemini_request(const json_t *req, char *err, size_t n) {
    if (!json_is_object(req))
        return ai_fail(err, n, "request body must be a JSON object");
    const json_t *msgs = json_object_get(req, "messages");
    if (!json_is_array(msgs) || json_array_size(msgs) == 0)
        return ai_fail(err, n, "messages must be a non-empty array");
    if (ai_check_single_choice(req, err, n) != 0)
        return NULL;
    json_t *out = json_object();
    json_t *contents = json_array(), *system = json_array();
    for (size_t i = 0; i < json_array_size(msgs); i++)
        if (translate_message(contents, system, msgs, i, err, n) != 0)
            goto fail;
    if (json_array_size(contents) == 0) {
        ai_fail(err, n, "at least one user or assistant message is required");
        goto fail;
    }
    json_object_set(out, "contents", contents);
    if (json_array_size(system) > 0) {
        json_t *si = json_object();
        json_object_set(si, "parts", system);
        json_object_set_new(out, "systemInstruction", si);
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
    if (choice && !json_is_null(choice)) {
        json_t *tc = translate_tool_choice(choice, err, n);
        if (!tc)
            goto fail;
        json_object_set_new(out, "toolConfig", tc);
    }
    json_t *cfg = generation_config(req, err, n);
    if (!cfg)
        goto fail;
    if (json_object_size(cfg) > 0)
        json_object_set_new(out, "generationConfig", cfg);
    else
        json_decref(cfg);
    json_decref(contents);
    json_decref(system);
    return out;
fail:
    json_decref(contents);
    json_decref(system);
    json_decref(out);
    return NULL;
}

/* ---- responses ---- */

static bool is_thought(const json_t *part) {
    return json_is_true(json_object_get(part, "thought"));
}

static json_t *candidate_message(const json_t *cand, const char *id, int *tools) {
    const json_t *parts = json_object_get(json_object_get(cand, "content"), "parts");
    size_t len = 0, i;
    const json_t *p;
    json_array_foreach(parts, i, p) {
        if (!is_thought(p))
            len += json_string_length(json_object_get(p, "text"));
    }
    char *text = malloc(len + 1);
    size_t off = 0;
    json_t *calls = json_array();
    json_array_foreach(parts, i, p) {
        if (is_thought(p))
            continue;
        const json_t *t = json_object_get(p, "text");
        const json_t *fc = json_object_get(p, "functionCall");
        if (text && json_is_string(t)) {
            memcpy(text + off, json_string_value(t), json_string_length(t));
            off += json_string_length(t);
        } else if (json_is_object(fc)) {
            const json_t *args = json_object_get(fc, "args");
            char *a = args ? json_dumps(args, JSON_COMPACT) : NULL;
            char *cid = call_id(fc, id, (*tools)++);
            json_t *f = json_object();
            json_object_set(f, "name", json_object_get(fc, "name"));
            json_object_set_new(f, "arguments", json_string(a ? a : "{}"));
            json_t *call = json_object();
            json_object_set_new(call, "id", json_string(cid ? cid : ""));
            json_object_set_new(call, "type", json_string("function"));
            json_object_set_new(call, "function", f);
            json_array_append_new(calls, call);
            free(a);
            free(cid);
        }
    }
    json_t *msg = json_object();
    json_object_set_new(msg, "role", json_string("assistant"));
    if (text && (off > 0 || json_array_size(calls) == 0))
        json_object_set_new(msg, "content", json_stringn(text, off));
    else
        json_object_set_new(msg, "content", json_null());
    free(text);
    if (json_array_size(calls) > 0)
        json_object_set_new(msg, "tool_calls", calls);
    else
        json_decref(calls);
    return msg;
}

static json_t *choice_new(long index, json_t *msg, const char *finish) {
    json_t *c = json_object();
    json_object_set_new(c, "index", json_integer(index));
    json_object_set_new(c, "message", msg);
    json_object_set_new(c, "finish_reason", json_string(finish));
    return c;
}

json_t *ai_from_gemini_response(const json_t *resp, const char *model, long created, const char *id) {
    if (!json_is_object(resp))
        return NULL;
    if (!id)
        id = "";
    const json_t *cands = json_object_get(resp, "candidates");
    json_t *choices = json_array();
    size_t i;
    const json_t *cand;
    json_array_foreach(cands, i, cand) {
        int tools = 0;
        json_t *msg = candidate_message(cand, id, &tools);
        const json_t *idx = json_object_get(cand, "index");
        const char *reason = json_string_value(json_object_get(cand, "finishReason"));
        json_array_append_new(choices, choice_new(json_is_integer(idx) ? (long)json_integer_value(idx) : (long)i,
                                                  msg, ai_gemini_finish_reason(reason, tools > 0)));
    }
    if (json_array_size(choices) == 0) {
        /* A blocked prompt gets no candidates, only promptFeedback.blockReason. */
        if (!json_is_string(json_object_get(json_object_get(resp, "promptFeedback"), "blockReason"))) {
            json_decref(choices);
            return NULL;
        }
        json_t *msg = json_object();
        json_object_set_new(msg, "role", json_string("assistant"));
        json_object_set_new(msg, "content", json_null());
        json_array_append_new(choices, choice_new(0, msg, "content_filter"));
    }
    json_t *out = json_object();
    json_object_set_new(out, "id", json_string(id));
    json_object_set_new(out, "object", json_string("chat.completion"));
    json_object_set_new(out, "created", json_integer(created));
    json_object_set_new(out, "model", json_string(model ? model : ""));
    json_object_set_new(out, "choices", choices);
    const json_t *um = json_object_get(resp, "usageMetadata");
    if (json_is_object(um)) {
        ai_usage_t u = {0};
        ai_gemini_usage(um, &u);
        json_object_set_new(out, "usage", ai_usage_to_json(&u));
    }
    return out;
}

/* ---- stream frames ---- */

static int emit_function_call(ai_stream_t *s, const json_t *fc) {
    const char *name = json_string_value(json_object_get(fc, "name"));
    if (!name)
        return -1;
    const json_t *args = json_object_get(fc, "args");
    char *a = json_is_object(args) ? json_dumps(args, JSON_COMPACT) : strdup("{}");
    int index = s->tools++;
    char *cid = call_id(fc, s->id, index);
    int rc = a && cid ? ai_stream_emit_delta(s, ai_tool_call_delta(index, cid, name, a), NULL) : -1;
    free(a);
    free(cid);
    return rc;
}

static const json_t *first_candidate(const json_t *frame) {
    size_t i;
    const json_t *c;
    json_array_foreach(json_object_get(frame, "candidates"), i, c) {
        const json_t *idx = json_object_get(c, "index");
        if (!idx || (json_is_integer(idx) && json_integer_value(idx) == 0))
            return c;
    }
    return NULL;
}

static int frame_parts(ai_stream_t *s, const json_t *cand) {
    size_t i;
    const json_t *p;
    json_array_foreach(json_object_get(json_object_get(cand, "content"), "parts"), i, p) {
        if (is_thought(p))
            continue;
        const json_t *t = json_object_get(p, "text");
        const json_t *fc = json_object_get(p, "functionCall");
        int rc = 0;
        if (json_is_string(t) && json_string_length(t) > 0) {
            json_t *delta = json_object();
            json_object_set(delta, "content", (json_t *)t);
            rc = ai_stream_emit_delta(s, delta, NULL);
        } else if (json_is_object(fc)) {
            rc = emit_function_call(s, fc);
        }
        if (rc != 0)
            return -1;
    }
    return 0;
}

int ai_gemini_stream_event(ai_stream_t *s, const sse_event_t *ev) {
    if (!ev->has_data)
        return 0;
    json_t *f = json_loadb(ev->data, ev->data_len, 0, NULL);
    if (!json_is_object(f)) {
        json_decref(f);
        return -1;
    }
    int rc = 0;
    const json_t *err = json_object_get(f, "error");
    if (json_is_object(err)) {
        const char *type = ai_gemini_error_type(json_string_value(json_object_get(err, "status")));
        ai_stream_set_error(s, json_string_value(json_object_get(err, "message")), type ? type : "server_error");
        json_decref(f);
        return 0;
    }
    const json_t *um = json_object_get(f, "usageMetadata");
    if (json_is_object(um))
        ai_gemini_usage(um, &s->usage);
    rc = ai_stream_emit_role(s);
    const json_t *cand = first_candidate(f);
    const char *block = json_string_value(json_object_get(json_object_get(f, "promptFeedback"), "blockReason"));
    if (rc == 0 && cand) {
        rc = frame_parts(s, cand);
        const char *reason = json_string_value(json_object_get(cand, "finishReason"));
        if (rc == 0 && reason && strcmp(reason, "FINISH_REASON_UNSPECIFIED") != 0) {
            if (!s->finish_sent)
                rc = ai_stream_emit_delta(s, json_object(), ai_gemini_finish_reason(reason, s->tools > 0));
            s->done = true;
        }
    } else if (rc == 0 && block) {
        if (!s->finish_sent)
            rc = ai_stream_emit_delta(s, json_object(), "content_filter");
        s->done = true;
    }
    json_decref(f);
    return rc;
}
