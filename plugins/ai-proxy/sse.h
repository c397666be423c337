/* Incremental server-sent-events parser (the WHATWG event-stream format).
 *
 * Bytes arrive in arbitrary pieces; the parser keeps only the event being
 * assembled, so memory per stream is bounded by max_event. Each block that a
 * blank line ends is reported once, together with its exact bytes, so a
 * caller that relays a stream untouched can copy those instead of
 * re-serialising. */
#ifndef SLUICE_AI_SSE_H
#define SLUICE_AI_SSE_H

#include <stdbool.h>
#include <stddef.h>

#define SSE_DEFAULT_MAX_EVENT ((size_t)1 << 20)

typedef struct sse_event {
    const char *type;  /* value of the last "event:" line, "" when none; NUL-terminated */
    size_t type_len;
    const char *data;  /* "data:" lines joined with '\n'; NUL-terminated */
    size_t data_len;
    bool has_data;     /* false for a block of only comments/other fields (the spec dispatches nothing) */
    const char *raw;   /* the block's bytes as received, up to and including its blank line */
    size_t raw_len;
} sse_event_t;

/* Return 0 to go on, non-zero to make sse_parser_feed() fail with -1. */
typedef int (*sse_event_fn)(void *arg, const sse_event_t *ev);

typedef struct sse_parser sse_parser_t;

/* max_event bounds the bytes of one event, blank line included (0 = default 1 MiB). */
sse_parser_t *sse_parser_new(size_t max_event, sse_event_fn fn, void *arg);
/* 0 ok; -1 when an event exceeds max_event or the callback refused one.
 * After -1 the parser stays failed and ignores further input. */
int sse_parser_feed(sse_parser_t *p, const char *data, size_t len);
/* The input ended. Dispatches an event whose blank line was a lone CR as
 * the very last byte (held back until then in case a LF followed); an
 * unfinished event is dropped, as the spec says. 0 ok, -1 failed. */
int sse_parser_end(sse_parser_t *p);
/* Bytes of an event begun but not yet dispatched. */
size_t sse_parser_pending(const sse_parser_t *p);
void sse_parser_free(sse_parser_t *p);

#endif
