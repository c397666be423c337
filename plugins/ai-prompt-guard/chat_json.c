#include "chat_json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Deeper than any real chat body; bounds the walk on a hostile one. */
#define MAX_DEPTH 64

json_t *chat_json_parse(const char *body, size_t len, char *why, size_t whylen)
{
    json_error_t jerr;
    /* Any value, not only containers: a scalar body then gets "must be a
     * JSON object", which says more than a parse error would. */
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (!root)
        snprintf(why, whylen, "the request body is not valid JSON: %s", jerr.text);
    return root;
}

json_t *chat_request_parse(const char *body, size_t len, char *why, size_t whylen)
{
    json_t *root = chat_json_parse(body, len, why, whylen);
    if (!root)
        return NULL;
    if (!json_is_object(root)) {
        snprintf(why, whylen, "the request body must be a JSON object");
        json_decref(root);
        return NULL;
    }
    json_t *messages = json_object_get(root, "messages");
    if (!json_is_array(messages)) {
        snprintf(why, whylen, "\"messages\" must be an array");
        json_decref(root);
        return NULL;
    }
    size_t i;
    json_t *m;
    json_array_foreach(messages, i, m) {
        if (!json_is_object(m) || !json_is_string(json_object_get(m, "role"))) {
            snprintf(why, whylen, "messages[%zu] must be an object with a string \"role\"", i);
            json_decref(root);
            return NULL;
        }
    }
    return root;
}

static int digits_needed(double d)
{
    char text[40];
    for (int p = 15; p < 17; p++) {
        snprintf(text, sizeof text, "%.*g", p, d);
        if (strtod(text, NULL) == d)
            return p;
    }
    return 17;
}

void chat_json_real_text(double d, char *out, size_t cap)
{
    snprintf(out, cap, "%.*g", digits_needed(d), d);
}

/* jansson applies one precision to a whole dump: the neediest real decides.
 * More digits never break a round trip, so the maximum is enough. */
static int precision_for(const json_t *v, int p, int depth)
{
    if (p >= 17 || depth > MAX_DEPTH)
        return 17;
    size_t i;
    const char *key;
    json_t *child;
    switch (json_typeof(v)) {
    case JSON_REAL: {
        int need = digits_needed(json_real_value(v));
        return need > p ? need : p;
    }
    case JSON_ARRAY:
        json_array_foreach(v, i, child)
            p = precision_for(child, p, depth + 1);
        return p;
    case JSON_OBJECT:
        json_object_foreach((json_t *)v, key, child)
            p = precision_for(child, p, depth + 1);
        return p;
    default:
        return p;
    }
}

char *chat_json_dump(const json_t *v, size_t *len)
{
    size_t flags = JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(precision_for(v, 15, 0));
    char *text = json_dumps(v, flags);
    if (text && len)
        *len = strlen(text);
    return text;
}
