/* The text of chat messages as ai-prompt-guard judges it: a message's
 * "content" is a string, null (or absent), or a list of parts of which the
 * {"type": "text", "text": ...} ones carry text. Pure jansson, unit-tested. */
#ifndef SLUICE_PROMPT_TEXT_H
#define SLUICE_PROMPT_TEXT_H

#include <stddef.h>

#include <jansson.h>

/* 0 when every message's content has one of the shapes above, else -1 with
 * a client-facing reason in why. */
int prompt_check_shapes(const json_t *messages, char *why, size_t whylen);

/* Characters (Unicode code points) of all text of all messages. */
size_t prompt_chars(const json_t *messages);

/* A message's text: its string content, or its text parts joined with "\n".
 * A new string (free it), or NULL when the message has no text at all; sets
 * *oom when out of memory. */
char *prompt_message_text(const json_t *message, size_t *len, int *oom);

/* Redacts (see redact.h) every text of the message in place. The number of
 * strings changed, or -1 when out of memory. */
int prompt_redact_message(json_t *message, unsigned kinds);

#endif
