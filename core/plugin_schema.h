/* Plugin config schemas: checking a plugin's declared schema, and validating
 * each configured instance against it with defaults filled in.
 *
 * A schema is JSON, the same language for C plugins (descriptor text) and
 * Lua plugins (their table converted):
 *
 *   {"fields": {NAME: FIELD, ...}, "one_of_required": [NAME, ...]}
 *
 *   FIELD = {"type": T, "required": bool, "default": V, "enum": [V, ...],
 *            "min": N, "max": N, "pattern": ERE, "items": FIELD,
 *            "fields": {NAME: FIELD, ...}, "values": FIELD,
 *            "one_of_required": [NAME, ...], "description": anything}
 *
 *   T = string | integer | number | boolean | array | object | any
 *     | duration (a string "250ms" / "5s" / "2m" / "1h", or an integer of ms;
 *                stored as integer milliseconds)
 *     | size     (a string "512" / "16kb" / "8mb" / "1gb", or an integer of
 *                bytes; stored as integer bytes)
 *
 * Rules worth knowing:
 *  - A config key whose value is null (YAML "key:" with nothing after it)
 *    counts as not set: it gets the default, or "missing required field".
 *  - Defaults are filled only for absent fields that have a "default". An
 *    absent object field without a default stays absent, so the defaults of
 *    its nested fields appear only when the object is given or has a default
 *    itself (write "default": {} to always get them). A required field that
 *    is absent is an error, so it never needs filling. Defaults go through
 *    the same conversion as configured values ("5s" becomes 5000, nested
 *    defaults inside a default object are filled too).
 *  - integer rejects 1.5 and accepts 2.0 (stored as the integer 2), because
 *    Lua numbers are all doubles; number accepts both and keeps them as given.
 *    Booleans are strict: "true" is a string.
 *  - min/max bound the value of integer, number, duration and size fields
 *    (for duration and size they may be written "1s" / "1kb"), the length in
 *    characters (UTF-8 code points) of strings, and the item count of arrays.
 *  - pattern is a POSIX ERE searched for anywhere in the string (anchor it
 *    with ^ and $ to match the whole string).
 *  - enum compares converted values ("1s" equals 1000 for a duration).
 *  - An object field with "fields" rejects other keys unless it also has
 *    "values", which then validates every key not named in "fields". One with
 *    neither accepts any object as it is.
 *  - one_of_required is met only by keys set in the config, not by defaults.
 *  - "required" and "default" are only allowed on named fields (not on
 *    "items" or "values"), and "default" not together with "required": true.
 *  - Strings may not contain NUL characters: plugins read them as C strings.
 *  - Errors come in the order the config wrote its keys, then the missing
 *    required fields in schema order, then an unmet one_of_required. A value
 *    of the wrong type gets that one error; one of the right type gets one
 *    error per rule it breaks (enum, then min/max, then pattern).
 *
 * Thread safety: no shared state; safe from any thread. Nothing here blocks. */
#ifndef SLUICE_PLUGIN_SCHEMA_H
#define SLUICE_PLUGIN_SCHEMA_H

#include <stddef.h>

#include <jansson.h>

#include "config.h"

/* Is `schema` itself well formed? 0, or -1 with the first problem written to
 * err (when err is not NULL and errlen > 0), e.g.
 * "fields.limit.type: unknown type \"int\"". Defaults are checked against
 * their own field, so a bad default is a schema error too. */
int sl_schema_check(const json_t *schema, char *err, size_t errlen);

/* Parses schema text (what a C plugin's descriptor holds) and checks it.
 * A new reference, or NULL with the problem in err ("line 1 column 9: ..."
 * for bad JSON, or sl_schema_check's message). */
json_t *sl_schema_parse(const char *text, char *err, size_t errlen);

/* Validates conf (NULL means {}) against schema. Returns a NEW json object
 * with defaults filled in (conf is not modified and shares nothing with the
 * result), or NULL after adding one error per problem to errs, each
 * "<where>.<field path>: <message>", e.g.
 * "conf.yaml:12: routes[0].plugins[1] (rate-limit).limits[0].window: must be one of \"second\", \"minute\"".
 * Problems with the config as a whole (not an object, one_of_required unmet)
 * are "<where>: <message>". A NULL schema accepts only an empty config. An
 * invalid schema yields one error, "<where>: invalid schema: <message>".
 * errs may be NULL when only the verdict matters; where may be NULL or "". */
json_t *sl_schema_apply(const json_t *schema, const json_t *conf, const char *where, sl_errors_t *errs);

#endif
