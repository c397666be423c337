#include "template_render.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat_json.h"

typedef struct buf {
    char *s;
    size_t len, cap;
    bool failed;
} buf_t;

static void put(buf_t *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 128;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->s, cap);
        if (!p) {
            b->failed = true;
            return;
        }
        b->s = p;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void put_str(buf_t *b, const char *s) { put(b, s, strlen(s)); }

var_type_t var_type_from_name(const char *name)
{
    static const char *const names[] = {"", "string", "number", "integer", "boolean", "array"};
    for (int t = VAR_STRING; t <= VAR_ARRAY; t++)
        if (name && strcmp(name, names[t]) == 0)
            return (var_type_t)t;
    return VAR_ANY;
}

const char *var_type_expectation(var_type_t t)
{
    switch (t) {
    case VAR_STRING: return "a string";
    case VAR_NUMBER: return "a number";
    case VAR_INTEGER: return "an integer";
    case VAR_BOOLEAN: return "a boolean";
    case VAR_ARRAY: return "an array of strings, numbers or booleans";
    default: return "a string, number, boolean or array of those";
    }
}

static bool is_scalar(const json_t *v)
{
    return json_is_string(v) || json_is_number(v) || json_is_boolean(v);
}

static bool is_scalar_array(const json_t *v)
{
    if (!json_is_array(v))
        return false;
    size_t i;
    const json_t *item;
    json_array_foreach(v, i, item)
        if (!is_scalar(item))
            return false;
    return true;
}

int var_value_fits(const json_t *v, var_type_t t)
{
    switch (t) {
    case VAR_STRING: return json_is_string(v);
    case VAR_NUMBER: return json_is_number(v);
    case VAR_INTEGER: return json_is_integer(v);
    case VAR_BOOLEAN: return json_is_boolean(v);
    case VAR_ARRAY: return is_scalar_array(v);
    default: return is_scalar(v) || is_scalar_array(v);
    }
}

static void put_scalar(buf_t *b, const json_t *v)
{
    char num[40];
    if (json_is_string(v)) {
        put(b, json_string_value(v), json_string_length(v));
    } else if (json_is_integer(v)) {
        snprintf(num, sizeof num, "%lld", (long long)json_integer_value(v));
        put_str(b, num);
    } else if (json_is_real(v)) {
        chat_json_real_text(json_real_value(v), num, sizeof num);
        put_str(b, num);
    } else {
        put_str(b, json_is_true(v) ? "true" : "false");
    }
}

static void put_value(buf_t *b, const json_t *v)
{
    if (!json_is_array(v)) {
        put_scalar(b, v);
        return;
    }
    size_t i;
    const json_t *item;
    json_array_foreach(v, i, item) {
        if (i)
            put(b, ", ", 2);
        put_scalar(b, item);
    }
}

static bool name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static bool name_char(char c) { return name_start(c) || (c >= '0' && c <= '9'); }

/* The placeholder at tpl (which starts with "{{"): its length, with the
 * name copied out; 0 when it is not one. */
static size_t placeholder_at(const char *tpl, char name[TEMPLATE_NAME_MAX + 1])
{
    size_t j = 2;
    while (tpl[j] == ' ')
        j++;
    if (!name_start(tpl[j]))
        return 0;
    size_t start = j;
    while (name_char(tpl[j]))
        j++;
    size_t n = j - start;
    if (n > TEMPLATE_NAME_MAX)
        return 0;
    while (tpl[j] == ' ')
        j++;
    if (tpl[j] != '}' || tpl[j + 1] != '}')
        return 0;
    memcpy(name, tpl + start, n);
    name[n] = '\0';
    return j + 2;
}

static const json_t *lookup(const json_t *given, const json_t *defaults, const char *name)
{
    const json_t *v = json_object_get(given, name);
    if (v && !json_is_null(v))
        return v;
    v = json_object_get(defaults, name);
    return v && !json_is_null(v) ? v : NULL;
}

render_status_t template_render(const char *tpl, const json_t *given, const json_t *defaults, char **out,
                                size_t *out_len, char name[TEMPLATE_NAME_MAX + 1])
{
    buf_t b = {0};
    render_status_t status = RENDER_OK;
    put(&b, "", 0);   /* an empty template still yields a string */
    size_t i = 0;
    while (tpl[i] && status == RENDER_OK) {
        size_t n = tpl[i] == '{' && tpl[i + 1] == '{' ? placeholder_at(tpl + i, name) : 0;
        if (n == 0) {
            /* copy up to the next '{' at once; a lone "{{" moves on by one */
            size_t k = i + 1;
            while (tpl[k] && tpl[k] != '{')
                k++;
            put(&b, tpl + i, k - i);
            i = k;
            continue;
        }
        const json_t *v = lookup(given, defaults, name);
        if (!v)
            status = RENDER_MISSING;
        else if (!var_value_fits(v, VAR_ANY))
            status = RENDER_INVALID;
        else
            put_value(&b, v);
        i += n;
    }
    if (b.failed && status == RENDER_OK)
        status = RENDER_NO_MEMORY;
    if (status != RENDER_OK) {
        free(b.s);
        *out = NULL;
        return status;
    }
    *out = b.s;
    *out_len = b.len;
    return RENDER_OK;
}
