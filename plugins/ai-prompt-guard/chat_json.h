/* The OpenAI chat-completions request body as the ai-prompt-* plugins read
 * and rewrite it. Shared by ai-prompt-guard, ai-prompt-decorator and
 * ai-prompt-template (compiled into each), so all three refuse the same
 * bodies with the same words and write JSON the same way. Pure jansson: no
 * host table, so it is unit-tested on its own. */
#ifndef SLUICE_CHAT_JSON_H
#define SLUICE_CHAT_JSON_H

#include <stddef.h>

#include <jansson.h>

/* Parses `body` as JSON. Duplicate keys are refused: the gateway and the
 * upstream must not read two different prompts out of one body. NULL with
 * a client-facing reason in `why` when it is not JSON. */
json_t *chat_json_parse(const char *body, size_t len, char *why, size_t whylen);

/* Parses a chat request: a JSON object whose "messages" is an array of
 * objects, each with a string "role". A new reference, or NULL with a
 * client-facing reason in `why`. */
json_t *chat_request_parse(const char *body, size_t len, char *why, size_t whylen);

/* Compact JSON text of v, reals written with the fewest significant digits
 * (15 to 17) that read back as the same double, so 0.7 stays "0.7" and no
 * value changes on the way through the gateway. free() it; NULL when out of
 * memory. */
char *chat_json_dump(const json_t *v, size_t *len);

/* The shortest text of one double that reads back as the same value. */
void chat_json_real_text(double d, char *out, size_t cap);

#endif
