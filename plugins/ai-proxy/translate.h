/* Translation between the OpenAI chat-completions format (what clients speak
 * to sluice) and the providers' own formats, both ways, streaming included.
 *
 * Pure functions over jansson values and byte buffers: no I/O, no clock, no
 * randomness, so the plugin decides ids and timestamps and tests can compare
 * exact output. Provider names: "openai" (also "azure", "azure-openai",
 * "openai-compatible": same wire format), "anthropic", "gemini". */
#ifndef SLUICE_AI_TRANSLATE_H
#define SLUICE_AI_TRANSLATE_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "json_scan.h"

/* ---- requests: OpenAI chat body -> provider body ----
 * NULL and a message in err on input the provider cannot take (an image URL
 * Gemini cannot fetch, n > 1, a tool call whose arguments are not JSON ...).
 * Fields with no provider equivalent are dropped; mapped ones: temperature,
 * top_p, max_tokens / max_completion_tokens, stop, tools, tool_choice,
 * parallel_tool_calls, user (Anthropic metadata.user_id), stream, and for
 * Gemini also seed, presence/frequency_penalty and response_format. */
json_t *ai_to_anthropic_request(const json_t *openai, const char *model, int default_max_tokens,
                                char *err, size_t n);
/* The Gemini model goes in the URL, so the body carries none. */
json_t *ai_to_gemini_request(const json_t *openai, char *err, size_t n);
/* For OpenAI-format upstreams: a copy with every field kept, "model" replaced
 * when model is not NULL, and for a streaming request
 * stream_options.include_usage set so usage can always be counted.
 * *client_wants_usage tells whether the client itself had asked for it (pass
 * it to ai_stream_new so the extra usage chunk is removed otherwise). */
json_t *ai_to_openai_request(const json_t *openai, const char *model, bool *client_wants_usage,
                             char *err, size_t n);
/* The same for the client's body as text, without a jansson tree: the text
 * with "model" replaced (and, for a streaming request that lacks it,
 * "stream_options":{"include_usage":true} added), every other byte as the
 * client sent it. Returns a malloc'd buffer and its length in *out_len, or
 * NULL when the text needs more than that (a repeated "model", a model name
 * that would need escaping, stream_options to merge into, invalid input):
 * then ai_to_openai_request, which handles every case, is the way. */
char *ai_openai_request_text(const char *text, size_t len, const char *model, bool *client_wants_usage,
                             size_t *out_len);

/* A chat request validated and read in place once, in one pass: what the
 * gateway checks (model, messages, stream) and what the text rewrite
 * needs, for every OpenAI-format attempt of the request to reuse. */
typedef struct ai_chat_scan {
    const char *text;
    size_t len;
    js_span_t body, model, messages, stream, stream_options;
    int n_model;   /* how often "model" occurs */
} ai_chat_scan_t;
/* false when the text is not one valid JSON object. */
bool ai_chat_scan(const char *text, size_t len, ai_chat_scan_t *out);
/* ai_openai_request_text over a scan of ai_chat_scan. */
char *ai_openai_request_scanned(const ai_chat_scan_t *s, const char *model, bool *client_wants_usage,
                                size_t *out_len);

/* ---- non-streaming responses -> OpenAI chat.completion ----
 * created and model (the alias the client asked for) are the caller's.
 * NULL when the body is not a response of that provider. */
json_t *ai_from_anthropic_response(const json_t *resp, const char *model, long created);
json_t *ai_from_gemini_response(const json_t *resp, const char *model, long created, const char *id);

/* ---- errors -> {"error":{"message","type","param","code"}} ----
 * Keeps the provider's message; type is mapped to the OpenAI vocabulary
 * (invalid_request_error, authentication_error, permission_error,
 * not_found_error, rate_limit_error, insufficient_quota, timeout_error,
 * server_error), code keeps the provider's own error type or status name.
 * body_or_null may be anything the upstream sent. Never NULL. */
json_t *ai_error_to_openai(const char *provider, int status, const json_t *body_or_null);

/* ---- usage in OpenAI terms ----
 * prompt includes cached tokens (for Anthropic: cache reads and cache
 * writes); completion includes reasoning tokens. cached (cache reads) and
 * reasoning are the subsets OpenAI reports in prompt/completion_tokens_details;
 * cache_write (Anthropic cache creation, priced above plain input) is the
 * part of prompt OpenAI has no field for. */
typedef struct ai_usage {
    long prompt, completion, total, cached, reasoning, cache_write;
    bool present;
} ai_usage_t;

/* From a provider's response body or one stream event's JSON (OpenAI chunk,
 * Anthropic message_start / message_delta, Gemini frame or array of frames).
 * Anthropic events carry subsets (message_delta: output_tokens), so fields an
 * Anthropic body lacks keep their value in *out and events fold in one after
 * another; OpenAI usage and Gemini usageMetadata are complete each time and
 * replace it. Start from a zeroed struct. Returns out->present. */
bool ai_usage_extract(const char *provider, const json_t *body, ai_usage_t *out);
/* ai_usage_extract for an OpenAI-format body read in place (a validated
 * object span, see json_scan.h). */
bool ai_openai_usage_extract_text(js_span_t body, ai_usage_t *out);
/* The same from the body's "usage" member already found (absent: nothing). */
bool ai_openai_usage_from_span(js_span_t usage, ai_usage_t *out);
/* {"prompt_tokens","completion_tokens","total_tokens",
 *  "prompt_tokens_details":{"cached_tokens"},
 *  "completion_tokens_details":{"reasoning_tokens"}} */
json_t *ai_usage_to_json(const ai_usage_t *u);

/* ---- streams ----
 * One translator per upstream stream. Feed it the upstream body bytes as
 * they arrive, split anywhere; it emits OpenAI SSE bytes (whole events only,
 * never a torn one) through emit. */
typedef struct ai_stream ai_stream_t;
typedef void (*ai_emit_fn)(void *arg, const char *data, size_t len);

/* NULL for an unknown provider (or out of memory). id and created go into
 * every translated chunk; OpenAI-format streams are relayed as they are. */
ai_stream_t *ai_stream_new(const char *provider, const char *model_alias, const char *id, long created,
                           bool client_wants_usage, ai_emit_fn emit, void *arg);
/* 0 ok; -1 the upstream stream is malformed (bad JSON, an event over 1 MiB).
 * Once -1, it stays -1. */
int ai_stream_feed(ai_stream_t *s, const char *data, size_t len);
/* The upstream body ended. If it ended cleanly, emits what is still owed
 * and returns 0: for a translated stream the usage chunk (when the client
 * asked for usage) and data: [DONE]; an OpenAI-format stream's own [DONE]
 * was already relayed when it came. Otherwise emits nothing and returns -1. */
int ai_stream_finish(ai_stream_t *s);
/* Real content (non-empty text or a tool-call delta) has been emitted. */
bool ai_stream_has_content(const ai_stream_t *s);
/* A clean end was seen: message_stop, a finishReason, or [DONE]. */
bool ai_stream_done(const ai_stream_t *s);
/* The upstream's mid-stream error message, or NULL. Nothing is emitted for
 * it: the caller fails over, or ends the stream with ai_stream_emit_error(). */
const char *ai_stream_error(const ai_stream_t *s);
/* That error's type in OpenAI terms (as ai_error_to_openai maps it), or NULL. */
const char *ai_stream_error_type(const ai_stream_t *s);
void ai_stream_usage(const ai_stream_t *s, ai_usage_t *out);
/* Ends the client's stream early: data: {"error":{...}} then data: [DONE].
 * Does nothing once [DONE] has been emitted. type NULL = "server_error". */
void ai_stream_emit_error(ai_stream_t *s, const char *message, const char *type);
void ai_stream_free(ai_stream_t *s);

#endif
