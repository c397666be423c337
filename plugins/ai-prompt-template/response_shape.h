/* The "simple" output of ai-prompt-template: an OpenAI chat.completion
 * reduced to what a prompt endpoint's caller wants. Pure jansson,
 * unit-tested on its own. */
#ifndef SLUICE_RESPONSE_SHAPE_H
#define SLUICE_RESPONSE_SHAPE_H

#include <stddef.h>

/* {"text": choices[0].message.content, "model": model, "usage": usage}
 * ("model" and "usage" null when absent; "text" null when the content is
 * null) as compact JSON (free() it). NULL when `body` is not a
 * chat.completion whose first choice has a message with string or null
 * content: the caller then passes the body on as it came. */
char *shape_simple(const char *body, size_t len, size_t *out_len);

/* Is this Content-Type one whose body shape_simple can read (JSON, or none
 * given)? */
int shape_content_type_ok(const char *value, size_t len);

#endif
