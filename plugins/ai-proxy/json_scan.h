/* Reading JSON text in place, without building values.
 *
 * On the hot path of an OpenAI-format provider the gateway only checks that
 * a body is well formed and looks at a handful of fields (usage, the model,
 * whether a chunk carries content); building a jansson tree for that cost
 * more than everything else the request did. Here a body is validated once
 * (as strictly as jansson's default parse: UTF-8, no \u0000 in strings,
 * nothing after the value, the same nesting limit) and then read through
 * spans that point into it. */
#ifndef AIP_JSON_SCAN_H
#define AIP_JSON_SCAN_H

#include <stdbool.h>
#include <stddef.h>

/* A value's bytes inside a validated text; p NULL means absent. */
typedef struct js_span {
    const char *p;
    size_t len;
} js_span_t;

/* Validates text[0..len) as one JSON value with optional whitespace around
 * it. On success returns true and *value spans the value without the
 * whitespace. Numbers are only checked for syntax (jansson also refuses
 * integers that overflow; such a body is accepted here). */
bool js_validate(const char *text, size_t len, js_span_t *value);

/* js_validate, and in the same pass js_members over the value when it is
 * an object: out[i] is keys[i]'s value, counts[i] (counts may be NULL) how
 * often it occurs. Reading the few fields a caller needs this way costs no
 * second walk over the text. All absent (and false) when the text is not
 * valid; all absent when the value is not an object or n > JS_MAX_KEYS. */
#define JS_MAX_KEYS 8
bool js_validate_members(const char *text, size_t len, js_span_t *value, const char *const *keys, int n,
                         js_span_t *out, int *counts);

/* The kind of a span of a validated value: '{', '[', '"', 'n' (number),
 * 't', 'f', 'z' (null); 0 for an absent span. */
char js_kind(js_span_t v);

/* The member `key` of object obj (the last one when the key repeats, as
 * jansson keeps it); keys are compared after unescaping. An absent span
 * when obj is not an object or has no such member. count, when not NULL,
 * gets how many times the key occurs. */
js_span_t js_member(js_span_t obj, const char *key, int *count);

/* js_member for up to JS_MAX_KEYS keys in one pass over obj: out[i] is
 * keys[i]'s value (absent spans for all when n is over the bound). */
void js_members(js_span_t obj, const char *const *keys, int n, js_span_t *out);

/* Iterates the elements of array arr: start with *pos = 0; false at the
 * end (or when arr is not an array). */
bool js_next(js_span_t arr, size_t *pos, js_span_t *elem);

/* An integer member value as jansson reads one (no fraction, no exponent,
 * in range of long long); dflt otherwise, or when v is absent. */
long long js_integer(js_span_t v, long long dflt);

/* A string other than "" (any escape yields at least one byte). */
bool js_nonempty_string(js_span_t v);

#endif
