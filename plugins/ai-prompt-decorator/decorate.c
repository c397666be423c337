#include "decorate.h"

#include <string.h>

int decoration_is_instruction(const json_t *message)
{
    const char *role = json_string_value(json_object_get(message, "role"));
    return role && (strcmp(role, "system") == 0 || strcmp(role, "developer") == 0);
}

int decoration_init(decoration_t *d, const json_t *prepend, const json_t *append)
{
    d->lead = json_array();
    d->prepend = json_array();
    d->append = append ? json_deep_copy(append) : json_array();
    if (!d->lead || !d->prepend || !d->append) {
        decoration_free(d);
        return -1;
    }
    size_t i;
    json_t *m;
    json_array_foreach(prepend, i, m) {
        json_t *into = decoration_is_instruction(m) ? d->lead : d->prepend;
        if (json_array_append_new(into, json_deep_copy(m)) != 0) {
            decoration_free(d);
            return -1;
        }
    }
    return 0;
}

void decoration_free(decoration_t *d)
{
    json_decref(d->lead);
    json_decref(d->prepend);
    json_decref(d->append);
    d->lead = d->prepend = d->append = NULL;
}

static int add_copies(json_t *out, const json_t *from)
{
    size_t i;
    json_t *m;
    json_array_foreach(from, i, m)
        if (json_array_append_new(out, json_deep_copy(m)) != 0)
            return -1;
    return 0;
}

json_t *decoration_apply(const decoration_t *d, const json_t *client_messages)
{
    json_t *out = json_array();
    if (!out || add_copies(out, d->lead) != 0)
        goto fail;
    size_t n = json_array_size(client_messages), i = 0;
    for (; i < n && decoration_is_instruction(json_array_get(client_messages, i)); i++)
        if (json_array_append(out, json_array_get(client_messages, i)) != 0)
            goto fail;
    if (add_copies(out, d->prepend) != 0)
        goto fail;
    for (; i < n; i++)
        if (json_array_append(out, json_array_get(client_messages, i)) != 0)
            goto fail;
    if (add_copies(out, d->append) != 0)
        goto fail;
    return out;
fail:
    json_decref(out);
    return NULL;
}
