#include <string.h>
#include <strings.h>

#include "jwt_source.h"

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* Trims optional whitespace off both ends of [*s, *s + *n). */
static void trim(const char **s, size_t *n)
{
    while (*n && is_ows(**s)) {
        (*s)++;
        (*n)--;
    }
    while (*n && is_ows((*s)[*n - 1]))
        (*n)--;
}

const char *jwt_bearer(const char *value, size_t n, bool require_scheme, size_t *len)
{
    trim(&value, &n);
    if (n > 6 && strncasecmp(value, "bearer", 6) == 0 && is_ows(value[6])) {
        value += 6;
        n -= 6;
        trim(&value, &n);
    } else if (require_scheme) {
        return NULL;
    }
    *len = n;
    return n ? value : NULL;
}

/* Walks `sep`-separated items of s; each call yields the next item. */
typedef struct items {
    const char *s;
    size_t n, at;
    char sep;
} items_t;

static bool next_item(items_t *it, const char **item, size_t *len)
{
    if (it->at > it->n)
        return false;
    const char *start = it->s + it->at;
    const char *end = memchr(start, it->sep, it->n - it->at);
    size_t l = end ? (size_t)(end - start) : it->n - it->at;
    it->at += l + 1;
    *item = start;
    *len = l;
    return true;
}

/* Splits "name=value"; *value is NULL without '='. */
static void split_pair(const char *item, size_t len, size_t *name_len, const char **value, size_t *value_len)
{
    const char *eq = memchr(item, '=', len);
    *name_len = eq ? (size_t)(eq - item) : len;
    *value = eq ? eq + 1 : NULL;
    *value_len = eq ? len - *name_len - 1 : 0;
}

static bool name_is(const char *s, size_t n, const char *name)
{
    return strlen(name) == n && memcmp(s, name, n) == 0;
}

const char *jwt_query_find(const char *query, size_t n, const char *name, size_t *len)
{
    items_t it = {query, n, 0, '&'};
    const char *item, *value;
    size_t item_len, name_len;
    while (query && next_item(&it, &item, &item_len)) {
        split_pair(item, item_len, &name_len, &value, len);
        if (name_is(item, name_len, name))
            return value ? value : item + item_len;
    }
    return NULL;
}

size_t jwt_query_without(const char *query, size_t n, const char *name, char *out)
{
    items_t it = {query, n, 0, '&'};
    const char *item, *value;
    size_t item_len, name_len, value_len, o = 0;
    while (query && next_item(&it, &item, &item_len)) {
        split_pair(item, item_len, &name_len, &value, &value_len);
        if (name_is(item, name_len, name))
            continue;
        if (o)
            out[o++] = '&';
        memcpy(out + o, item, item_len);
        o += item_len;
    }
    out[o] = '\0';
    return o;
}

/* One "name=value" cookie pair, trimmed; false for an empty item. */
static bool cookie_pair(const char *item, size_t len, const char **pair, size_t *pair_len, size_t *name_len,
                        const char **value, size_t *value_len)
{
    trim(&item, &len);
    if (len == 0)
        return false;
    *pair = item;
    *pair_len = len;
    split_pair(item, len, name_len, value, value_len);
    const char *nm = item;
    trim(&nm, name_len);
    if (*value)
        trim(value, value_len);
    return true;
}

const char *jwt_cookie_find(const char *header, size_t n, const char *name, size_t *len)
{
    items_t it = {header, n, 0, ';'};
    const char *item, *pair, *value;
    size_t item_len, pair_len, name_len;
    while (header && next_item(&it, &item, &item_len)) {
        if (!cookie_pair(item, item_len, &pair, &pair_len, &name_len, &value, len) ||
            !name_is(pair, name_len, name) || !value)
            continue;
        /* RFC 6265 4.1.1: a cookie-value may be wrapped in DQUOTEs. */
        if (*len >= 2 && value[0] == '"' && value[*len - 1] == '"') {
            value++;
            *len -= 2;
        }
        return value;
    }
    return NULL;
}

size_t jwt_cookie_without(const char *header, size_t n, const char *name, char *out)
{
    items_t it = {header, n, 0, ';'};
    const char *item, *pair, *value;
    size_t item_len, pair_len, name_len, value_len, o = 0;
    while (header && next_item(&it, &item, &item_len)) {
        if (!cookie_pair(item, item_len, &pair, &pair_len, &name_len, &value, &value_len) ||
            name_is(pair, name_len, name))
            continue;
        if (o) {
            out[o++] = ';';
            out[o++] = ' ';
        }
        memcpy(out + o, pair, pair_len);
        o += pair_len;
    }
    out[o] = '\0';
    return o;
}
