/* The built-in "mock" provider: deterministic OpenAI-format answers made in
 * process, so a gateway (the quickstart, a demo, a spec) works with no
 * network and no key. Pure functions over the request the plugin would send
 * an OpenAI-format upstream; unit-tested in test_aip_parts.c.
 *
 *   reply       "mock reply to: <text of the last user message>", or the
 *               configured reply when it is not empty
 *   usage       prompt = words (whitespace-separated) of the text of every
 *               message; completion = words of the reply
 *   stream      OpenAI SSE: a role chunk, the reply in pieces of
 *               chunk_words words (each word with the whitespace before
 *               it), a finish chunk, the usage chunk when the request has
 *               stream_options.include_usage, data: [DONE]
 *   embeddings  per input string, `dimensions` (default 8, at most 32)
 *               numbers: byte i of SHA-256(text) as (b - 128) / 128 */
#ifndef AIP_MOCK_H
#define AIP_MOCK_H

#include <stddef.h>

#include <jansson.h>

#define AIP_MOCK_PREFIX "mock reply to: "
#define AIP_MOCK_DIMS 8
#define AIP_MOCK_MAX_DIMS 32

/* Whitespace-separated words of s. */
long aip_words(const char *s);
/* Words of the text of every message of an OpenAI chat request. */
long aip_mock_prompt_words(const json_t *req);
/* The reply text (malloc'd). configured NULL or "" = the default reply. */
char *aip_mock_reply(const json_t *req, const char *configured);
/* A chat.completion object for req. */
json_t *aip_mock_completion(const json_t *req, const char *model, const char *id, long created,
                            const char *reply);
/* The whole SSE body for a streamed req (malloc'd, *len set). chunk_words >= 1. */
char *aip_mock_stream(const json_t *req, const char *model, const char *id, long created, const char *reply,
                      int chunk_words, size_t *len);
/* An embeddings list for req ({"input": string or [strings], "dimensions"?}),
 * or NULL with a message in err for input it cannot take. */
json_t *aip_mock_embeddings(const json_t *req, const char *model, char *err, size_t errlen);

#endif
