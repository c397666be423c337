/* Where ai-prompt-decorator puts the operator's messages among the
 * client's. Pure jansson, unit-tested on its own. */
#ifndef SLUICE_DECORATE_H
#define SLUICE_DECORATE_H

#include <jansson.h>

typedef struct decoration {
    json_t *lead;      /* prepended system/developer messages: before everything */
    json_t *prepend;   /* the other prepended messages: after the client's leading instructions */
    json_t *append;    /* after the client's last message */
} decoration_t;

/* Splits the configured prepend list into lead and prepend, keeps append.
 * Takes copies; 0, or -1 when out of memory. */
int decoration_init(decoration_t *d, const json_t *prepend, const json_t *append);
void decoration_free(decoration_t *d);

/* Is this a role that instructs the model (system, developer)? */
int decoration_is_instruction(const json_t *message);

/* The messages the upstream gets, as a new array:
 *   lead, the client's leading system/developer messages, prepend,
 *   the rest of the client's messages, append.
 * Operator messages are deep copies, so the request's tree shares nothing
 * with the instance that every worker reads. NULL when out of memory. */
json_t *decoration_apply(const decoration_t *d, const json_t *client_messages);

#endif
