#include "prompt_text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redact.h"

static int is_text_part(const json_t *part)
{
    const char *type = json_string_value(json_object_get(part, "type"));
    return type && strcmp(type, "text") == 0;
}

int prompt_check_shapes(const json_t *messages, char *why, size_t whylen)
{
    size_t i, j;
    const json_t *m, *part;
    json_array_foreach(messages, i, m) {
        const json_t *content = json_object_get(m, "content");
        if (!content || json_is_null(content) || json_is_string(content))
            continue;
        if (!json_is_array(content)) {
            snprintf(why, whylen, "messages[%zu].content must be a string, a list of parts or null", i);
            return -1;
        }
        json_array_foreach(content, j, part) {
            if (!json_is_object(part) || !json_is_string(json_object_get(part, "type"))) {
                snprintf(why, whylen, "messages[%zu].content[%zu] must be an object with a string \"type\"",
                         i, j);
                return -1;
            }
            if (is_text_part(part) && !json_is_string(json_object_get(part, "text"))) {
                snprintf(why, whylen, "messages[%zu].content[%zu].text must be a string", i, j);
                return -1;
            }
        }
    }
    return 0;
}

static size_t code_points(const json_t *str)
{
    const unsigned char *s = (const unsigned char *)json_string_value(str);
    size_t n = json_string_length(str), count = 0;
    for (size_t k = 0; k < n; k++)
        count += (s[k] & 0xC0) != 0x80;
    return count;
}

size_t prompt_chars(const json_t *messages)
{
    size_t total = 0, i, j;
    const json_t *m, *part;
    json_array_foreach(messages, i, m) {
        const json_t *content = json_object_get(m, "content");
        if (json_is_string(content))
            total += code_points(content);
        json_array_foreach(content, j, part)
            if (is_text_part(part))
                total += code_points(json_object_get(part, "text"));
    }
    return total;
}

char *prompt_message_text(const json_t *message, size_t *len, int *oom)
{
    *oom = 0;
    const json_t *content = json_object_get(message, "content"), *part;
    if (json_is_string(content)) {
        *len = json_string_length(content);
        char *copy = malloc(*len + 1);
        if (!copy) {
            *oom = 1;
            return NULL;
        }
        memcpy(copy, json_string_value(content), *len + 1);
        return copy;
    }
    size_t total = 0, parts = 0, j;
    json_array_foreach(content, j, part) {
        if (is_text_part(part)) {
            total += json_string_length(json_object_get(part, "text"));
            parts++;
        }
    }
    if (parts == 0)
        return NULL;
    char *text = malloc(total + parts);   /* parts - 1 newlines and a NUL */
    if (!text) {
        *oom = 1;
        return NULL;
    }
    size_t at = 0;
    json_array_foreach(content, j, part) {
        if (!is_text_part(part))
            continue;
        const json_t *t = json_object_get(part, "text");
        if (at)
            text[at++] = '\n';
        memcpy(text + at, json_string_value(t), json_string_length(t));
        at += json_string_length(t);
    }
    text[at] = '\0';
    *len = at;
    return text;
}

/* 1 changed, 0 unchanged, -1 out of memory. */
static int redact_string(json_t *str, unsigned kinds)
{
    size_t n = 0;
    int failed = 0;
    char *clean = redact_text(json_string_value(str), json_string_length(str), kinds, &n, &failed);
    if (!clean)
        return failed ? -1 : 0;
    /* Only ASCII spans were swapped for ASCII markers: still valid UTF-8. */
    int rc = json_string_setn_nocheck(str, clean, n);
    free(clean);
    return rc == 0 ? 1 : -1;
}

int prompt_redact_message(json_t *message, unsigned kinds)
{
    json_t *content = json_object_get(message, "content"), *part;
    if (json_is_string(content))
        return redact_string(content, kinds);
    int changed = 0;
    size_t j;
    json_array_foreach(content, j, part) {
        if (!is_text_part(part))
            continue;
        int rc = redact_string(json_object_get(part, "text"), kinds);
        if (rc < 0)
            return -1;
        changed += rc;
    }
    return changed;
}
