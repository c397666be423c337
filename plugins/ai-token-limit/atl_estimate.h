/* The token estimate reserved before the provider is called: a quarter of
 * the prompt's characters (rounded up) plus the most the answer may use. */
#ifndef ATL_ESTIMATE_H
#define ATL_ESTIMATE_H

#include <stddef.h>
#include <stdint.h>

/* body: the client's OpenAI request. Prompt characters are the Unicode
 * characters of every message's `content` (a string, or the `text` of its
 * parts), or of an embeddings `input` (a string or strings). The answer's
 * part is `max_completion_tokens`, else `max_tokens` (non-negative
 * integers), else max_default; embeddings add nothing. A body that is not a
 * JSON object counts 0 prompt characters plus max_default. */
int64_t atl_estimate(const char *body, size_t len, int64_t max_default);

#endif
