/* What ai-cache stores and how it answers from it.
 *
 * An entry is always a `chat.completion` JSON text: a non-streamed answer
 * as the client received it, byte for byte, or one rebuilt from a streamed
 * answer. Either kind can then be replayed both ways: as it is to a
 * non-streaming request, or as an OpenAI SSE stream to a streaming one. */
#ifndef AI_CACHE_ANSWER_H
#define AI_CACHE_ANSWER_H

#include <stddef.h>

/* Token counts the gateway reported for the request (ai.usage.* ctx keys). */
typedef struct acache_usage {
    int known;
    long long prompt, completion, cached;
} acache_usage_t;

/* 1 when `body` is a complete chat.completion worth storing: a JSON object
 * with "object": "chat.completion" and a non-empty "choices" array. */
int acache_json_answer_ok(const char *body, size_t len);

/* Rebuilds a chat.completion from a chat.completion.chunk SSE stream. Only
 * a finished stream is taken: it ended in `data: [DONE]`, carried no error
 * event, and its one choice (index 0, text only: tool calls are not rebuilt)
 * has a finish_reason. Usage comes from the stream's usage chunk, else from
 * `usage` when known. Returns malloc'd JSON text (length in *outlen), or
 * NULL when the stream is not storable. */
char *acache_entry_from_sse(const char *sse, size_t len, const acache_usage_t *usage, size_t *outlen);

/* Longest content piece of a replayed stream, in bytes (cut on UTF-8
 * character boundaries). */
#define ACACHE_REPLAY_PIECE 512

/* Writes a stored entry as an OpenAI stream: per choice a role chunk, the
 * content in pieces of at most ACACHE_REPLAY_PIECE bytes, one chunk per tool
 * call, a finish chunk; then, with include_usage, a chunk with "choices": []
 * and the usage (and "usage": null on every other chunk); then
 * `data: [DONE]`. Returns malloc'd text (length in *outlen) or NULL when the
 * entry is not a chat.completion object. */
char *acache_replay_sse(const char *entry, size_t len, int include_usage, size_t *outlen);

#endif
