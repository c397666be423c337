/* The stream translator object: upstream SSE in, OpenAI SSE out. The
 * provider-specific event handling lives in translate_<provider>.c. */
#include <stdlib.h>
#include <string.h>

#include "translate_internal.h"

static const char DONE_EVENT[] = "data: [DONE]\n\n";

#define OUT_INITIAL_CAPACITY ((size_t)1024)
#define OUT_KEEP_CAPACITY ((size_t)64 << 10)

static char *dup_or_empty(const char *s) {
    return strdup(s ? s : "");
}

static int on_sse_event(void *arg, const sse_event_t *ev) {
    ai_stream_t *s = arg;
    /* After an upstream error the stream is over for the client too; after an
     * OpenAI [DONE] nothing further may reach it. */
    if (s->error || s->done_emitted)
        return 0;
    switch (s->kind) {
    case AI_PROVIDER_OPENAI:
        return ai_openai_stream_event(s, ev);
    case AI_PROVIDER_ANTHROPIC:
        return ai_anthropic_stream_event(s, ev);
    case AI_PROVIDER_GEMINI:
        return ai_gemini_stream_event(s, ev);
    default:
        return -1;
    }
}

ai_stream_t *ai_stream_new(const char *provider, const char *model_alias, const char *id, long created,
                           bool client_wants_usage, ai_emit_fn emit, void *arg) {
    ai_provider_t kind = ai_provider_kind(provider);
    if (kind == AI_PROVIDER_UNKNOWN || !emit)
        return NULL;
    ai_stream_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->kind = kind;
    s->alias = dup_or_empty(model_alias);
    s->id = dup_or_empty(id);
    s->created = created;
    s->wants_usage = client_wants_usage;
    s->emit = emit;
    s->arg = arg;
    s->block = -1;
    s->sse = sse_parser_new(SSE_DEFAULT_MAX_EVENT, on_sse_event, s);
    /* Allocated up front so json_dumpb never sees a NULL buffer. */
    s->out_cap = OUT_INITIAL_CAPACITY;
    s->out = malloc(s->out_cap);
    if (!s->alias || !s->id || !s->sse || !s->out) {
        ai_stream_free(s);
        return NULL;
    }
    return s;
}

void ai_stream_free(ai_stream_t *s) {
    if (!s)
        return;
    sse_parser_free(s->sse);
    free(s->alias);
    free(s->id);
    free(s->out);
    free(s->error);
    free(s->error_type);
    free(s);
}

int ai_stream_feed(ai_stream_t *s, const char *data, size_t len) {
    if (s->malformed)
        return -1;
    if (sse_parser_feed(s->sse, data, len) != 0) {
        s->malformed = true;
        return -1;
    }
    return 0;
}

static json_t *chunk_head(ai_stream_t *s) {
    json_t *c = json_object();
    json_object_set_new(c, "id", json_string(s->id));
    json_object_set_new(c, "object", json_string("chat.completion.chunk"));
    json_object_set_new(c, "created", json_integer(s->created));
    json_object_set_new(c, "model", json_string(s->alias));
    return c;
}

int ai_stream_finish(ai_stream_t *s) {
    if (!s->malformed && sse_parser_end(s->sse) != 0)
        s->malformed = true;
    if (s->malformed || s->error || !s->done)
        return -1;
    if (s->done_emitted)
        return 0;
    if (!s->finish_sent && ai_stream_emit_delta(s, json_object(), "stop") != 0)
        return -1;
    if (s->wants_usage && s->usage.present) {
        json_t *c = chunk_head(s);
        json_object_set_new(c, "choices", json_array());
        json_object_set_new(c, "usage", ai_usage_to_json(&s->usage));
        if (ai_stream_emit_json(s, c) != 0)
            return -1;
    }
    s->emit(s->arg, DONE_EVENT, sizeof DONE_EVENT - 1);
    s->done_emitted = true;
    return 0;
}

bool ai_stream_has_content(const ai_stream_t *s) {
    return s->content;
}

bool ai_stream_done(const ai_stream_t *s) {
    return s->done;
}

const char *ai_stream_error(const ai_stream_t *s) {
    return s->error;
}

const char *ai_stream_error_type(const ai_stream_t *s) {
    return s->error_type;
}

void ai_stream_usage(const ai_stream_t *s, ai_usage_t *out) {
    *out = s->usage;
}

void ai_stream_emit_error(ai_stream_t *s, const char *message, const char *type) {
    if (s->done_emitted)
        return;
    json_t *e = json_object();
    json_object_set_new(e, "message", json_string(message ? message : "upstream error"));
    json_object_set_new(e, "type", json_string(type ? type : "server_error"));
    json_object_set_new(e, "param", json_null());
    json_object_set_new(e, "code", json_null());
    json_t *body = json_object();
    json_object_set_new(body, "error", e);
    ai_stream_emit_json(s, body);
    s->emit(s->arg, DONE_EVENT, sizeof DONE_EVENT - 1);
    s->done_emitted = true;
}

void ai_stream_set_error(ai_stream_t *s, const char *message, const char *type) {
    if (s->error)
        return;
    s->error = strdup(message && *message ? message : "upstream error");
    s->error_type = strdup(type ? type : "server_error");
}

int ai_stream_emit_json(ai_stream_t *s, json_t *obj) {
    static const char prefix[] = "data: ";
    const size_t plen = sizeof prefix - 1;
    if (!obj)
        return -1;
    size_t room = s->out_cap - plen - 2;
    size_t need = json_dumpb(obj, s->out + plen, room, JSON_COMPACT);
    if (need == 0) {
        json_decref(obj);
        return -1;
    }
    if (need > room) {
        char *p = realloc(s->out, need + plen + 2);
        if (!p) {
            json_decref(obj);
            return -1;
        }
        s->out = p;
        s->out_cap = need + plen + 2;
        json_dumpb(obj, s->out + plen, need, JSON_COMPACT);
    }
    json_decref(obj);
    memcpy(s->out, prefix, plen);
    memcpy(s->out + plen + need, "\n\n", 2);
    s->emit(s->arg, s->out, plen + need + 2);
    /* One huge chunk should not pin its buffer for the rest of a long stream. */
    if (s->out_cap > OUT_KEEP_CAPACITY) {
        char *p = realloc(s->out, OUT_INITIAL_CAPACITY);
        if (p) {
            s->out = p;
            s->out_cap = OUT_INITIAL_CAPACITY;
        }
    }
    return 0;
}

static bool delta_has_content(const json_t *delta) {
    const json_t *content = json_object_get(delta, "content");
    if (json_is_string(content) && json_string_length(content) > 0)
        return true;
    return json_array_size(json_object_get(delta, "tool_calls")) > 0;
}

int ai_stream_emit_role(ai_stream_t *s) {
    if (s->role_sent)
        return 0;
    s->role_sent = true;
    json_t *delta = json_object();
    json_object_set_new(delta, "role", json_string("assistant"));
    json_object_set_new(delta, "content", json_string(""));
    return ai_stream_emit_delta(s, delta, NULL);
}

int ai_stream_emit_delta(ai_stream_t *s, json_t *delta, const char *finish) {
    if (!delta)
        return -1;
    if (!s->role_sent && ai_stream_emit_role(s) != 0) {
        json_decref(delta);
        return -1;
    }
    bool content = delta_has_content(delta);
    json_t *choice = json_object();
    json_object_set_new(choice, "index", json_integer(0));
    json_object_set_new(choice, "delta", delta);
    json_object_set_new(choice, "finish_reason", finish ? json_string(finish) : json_null());
    json_t *choices = json_array();
    json_array_append_new(choices, choice);
    json_t *c = chunk_head(s);
    json_object_set_new(c, "choices", choices);
    /* OpenAI puts "usage": null on every chunk once include_usage is on. */
    if (s->wants_usage)
        json_object_set_new(c, "usage", json_null());
    if (ai_stream_emit_json(s, c) != 0)
        return -1;
    if (content)
        s->content = true;
    if (finish)
        s->finish_sent = true;
    return 0;
}

json_t *ai_tool_call_delta(int index, const char *id, const char *name, const char *arguments) {
    json_t *call = json_object();
    json_object_set_new(call, "index", json_integer(index));
    if (id)
        json_object_set_new(call, "id", json_string(id));
    if (id || name)
        json_object_set_new(call, "type", json_string("function"));
    json_t *fn = json_object();
    if (name)
        json_object_set_new(fn, "name", json_string(name));
    json_object_set_new(fn, "arguments", json_string(arguments ? arguments : ""));
    json_object_set_new(call, "function", fn);
    json_t *calls = json_array();
    json_array_append_new(calls, call);
    json_t *delta = json_object();
    json_object_set_new(delta, "tool_calls", calls);
    return delta;
}
