/* Shared between the translate_*.c files only; the plugin uses translate.h. */
#ifndef SLUICE_AI_TRANSLATE_INTERNAL_H
#define SLUICE_AI_TRANSLATE_INTERNAL_H

#include "sse.h"
#include "translate.h"

typedef enum ai_provider { AI_PROVIDER_UNKNOWN, AI_PROVIDER_OPENAI, AI_PROVIDER_ANTHROPIC, AI_PROVIDER_GEMINI } ai_provider_t;

ai_provider_t ai_provider_kind(const char *name);

struct ai_stream {
    ai_provider_t kind;
    char *alias, *id;
    long created;
    bool wants_usage;
    ai_emit_fn emit;
    void *arg;
    sse_parser_t *sse;
    char *out; /* serialisation buffer reused for every chunk */
    size_t out_cap;
    bool role_sent, content, done, finish_sent, done_emitted, malformed;
    char *error, *error_type;
    ai_usage_t usage;
    int tools;          /* tool calls started so far: the next OpenAI tool_calls index */
    /* Anthropic sends content blocks strictly one after another, so the open
     * block is all the state needed to route its deltas. */
    long block;         /* index of the open content block, -1 none */
    int block_kind;     /* AI_BLOCK_* */
    int block_tool;     /* its tool_calls index when a tool_use block */
    bool block_args;    /* a non-empty argument fragment was sent for it */
};

enum { AI_BLOCK_NONE, AI_BLOCK_TEXT, AI_BLOCK_TOOL, AI_BLOCK_OTHER };

/* ---- stream helpers (translate_stream.c) ---- */
/* Emits {"id","object","created","model","choices":[{"index":0,"delta":delta,
 * "finish_reason":finish}]} (+ "usage":null when the client asked for usage).
 * Steals delta. Sends the role chunk first when none was sent yet. */
int ai_stream_emit_delta(ai_stream_t *s, json_t *delta, const char *finish);
/* The role-only opening chunk, once. */
int ai_stream_emit_role(ai_stream_t *s);
int ai_stream_emit_json(ai_stream_t *s, json_t *obj); /* steals obj */
void ai_stream_set_error(ai_stream_t *s, const char *message, const char *type);
json_t *ai_tool_call_delta(int index, const char *id, const char *name, const char *arguments);

/* ---- per-provider stream events; 0 ok, -1 malformed ---- */
int ai_openai_stream_event(ai_stream_t *s, const sse_event_t *ev);
int ai_anthropic_stream_event(ai_stream_t *s, const sse_event_t *ev);
int ai_gemini_stream_event(ai_stream_t *s, const sse_event_t *ev);

/* ---- reading OpenAI requests (translate_openai.c) ---- */
json_t *ai_fail(char *err, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* "stop": a string or an array of strings -> new array; NULL + err when malformed.
 * *out NULL when absent. 0 ok, -1 error. */
int ai_stop_sequences(const json_t *req, json_t **out, char *err, size_t n);
/* max_completion_tokens, else max_tokens; 0 when absent, -1 when malformed. */
long ai_max_tokens(const json_t *req, char *err, size_t n);
/* Rejects n > 1: neither translated provider can return several choices here. */
int ai_check_single_choice(const json_t *req, char *err, size_t n);
/* Text of a system/tool message: a string, or an array of text parts joined. NULL on other shapes. */
char *ai_content_text(const json_t *content);
/* Splits "data:<mime>;base64,<data>"; false if not a base64 data URL. The
 * out strings point into url. */
bool ai_parse_data_url(const char *url, const char **mime, size_t *mime_len, const char **data);
/* "tools" (OpenAI function tools) as the providers' function declarations:
 * per tool {"name", "description" when a string, params_key: a copy of
 * "parameters" when an object}; without parameters, schema_required puts the
 * empty object schema there instead. NULL + err when tools is not an array
 * or a tool is not a function with a name. */
json_t *ai_function_declarations(const json_t *tools, const char *params_key, bool schema_required, char *err,
                                 size_t n);
/* OpenAI error type for an HTTP status. */
const char *ai_error_type_for_status(int status);

/* ---- provider vocabularies ---- */
const char *ai_anthropic_finish_reason(const char *stop_reason);
const char *ai_anthropic_error_type(const char *anthropic_type); /* NULL when unknown */
const char *ai_gemini_finish_reason(const char *finish_reason, bool had_tool_calls);
const char *ai_gemini_error_type(const char *status); /* NULL when unknown */
void ai_anthropic_usage(const json_t *usage, ai_usage_t *out);
void ai_gemini_usage(const json_t *usage_metadata, ai_usage_t *out);
void ai_openai_usage(const json_t *usage, ai_usage_t *out);

#endif
