#include "response_shape.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "chat_json.h"

static json_t *or_null(json_t *v) { return v ? json_incref(v) : json_null(); }

char *shape_simple(const char *body, size_t len, size_t *out_len)
{
    json_t *root = json_loadb(body, len, 0, NULL);
    json_t *message = json_object_get(json_array_get(json_object_get(root, "choices"), 0), "message");
    json_t *content = json_object_get(message, "content");
    json_t *model = json_object_get(root, "model"), *usage = json_object_get(root, "usage");
    char *text = NULL;
    if (json_is_object(message) && (json_is_string(content) || json_is_null(content))) {
        json_t *out = json_object();
        if (out && json_object_set_new(out, "text", json_incref(content)) == 0 &&
            json_object_set_new(out, "model", or_null(json_is_string(model) ? model : NULL)) == 0 &&
            json_object_set_new(out, "usage", or_null(json_is_object(usage) ? usage : NULL)) == 0)
            text = chat_json_dump(out, out_len);
        json_decref(out);
    }
    json_decref(root);
    return text;
}

int shape_content_type_ok(const char *value, size_t len)
{
    if (!value)
        return 1;
    /* media type up to ';', without the parameters and spaces */
    size_t end = 0;
    while (end < len && value[end] != ';')
        end++;
    while (end > 0 && (value[end - 1] == ' ' || value[end - 1] == '\t'))
        end--;
    static const char json_type[] = "application/json", prefix[] = "application/", suffix[] = "+json";
    size_t plen = sizeof prefix - 1, slen = sizeof suffix - 1;
    if (end == sizeof json_type - 1 && strncasecmp(value, json_type, end) == 0)
        return 1;
    return end > plen + slen && strncasecmp(value, prefix, plen) == 0 &&
           strncasecmp(value + end - slen, suffix, slen) == 0;
}
