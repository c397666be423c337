/* The cache key of a chat completion request: which fields of the body make
 * two requests "the same question", and their SHA-256. */
#ifndef AI_CACHE_KEY_H
#define AI_CACHE_KEY_H

#include <jansson.h>
#include <stddef.h>

#define ACACHE_KEY_HEX 64

/* The request facts ai-cache needs besides the key. */
typedef struct acache_request {
    int stream;          /* "stream": true */
    int include_usage;   /* "stream_options": {"include_usage": true} */
} acache_request_t;

/* Writes the lowercase hex SHA-256 (plus NUL) of `scope`, a newline and the
 * compact JSON, keys sorted at every depth, of the members of `body` named in
 * `fields` (absent members are left out). 0 on success; -1 when `body` is not
 * an object or memory ran out. */
int acache_key_of(const char *scope, const json_t *body, const char *const *fields, size_t nfields,
               char out[ACACHE_KEY_HEX + 1]);

/* Reads the stream flags of a request body (an object). */
void acache_request_flags(const json_t *body, acache_request_t *out);

#endif
