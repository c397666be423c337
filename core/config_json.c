/* Plugin configs and consumers are passed on as JSON, typed the way YAML 1.2's
 * core schema types plain scalars; quoted scalars always stay strings, so an
 * operator can write "0123" or "true" and get exactly that text. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "config_internal.h"

static bool all_in(const char *s, const char *set)
{
    return *s != '\0' && strspn(s, set) == strlen(s);
}

static bool is_decimal_int(const char *s)
{
    if (*s == '-' || *s == '+')
        s++;
    return all_in(s, "0123456789");
}

/* [-+]? ( .digits | digits [. digits?] ) ( [eE] [-+]? digits )? */
static bool is_float(const char *s)
{
    if (*s == '-' || *s == '+')
        s++;
    size_t int_digits = strspn(s, "0123456789");
    s += int_digits;
    size_t frac_digits = 0;
    if (*s == '.') {
        s++;
        frac_digits = strspn(s, "0123456789");
        s += frac_digits;
    }
    if (int_digits + frac_digits == 0)
        return false;
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '-' || *s == '+')
            s++;
        if (!all_in(s, "0123456789"))
            return false;
        return true;
    }
    return *s == '\0';
}

static json_t *integer(slc_t *c, const ydoc_node_t *n, const char *path, const char *digits, int base)
{
    errno = 0;
    char *end;
    long long v = strtoll(digits, &end, base);
    if (errno == ERANGE) {
        slc_err(c, n->line, path, "integer %s does not fit in 64 bits", n->str);
        return NULL;
    }
    return json_integer(v);
}

/* Text from the environment need not be UTF-8, which JSON strings must be. */
static json_t *string(slc_t *c, const ydoc_node_t *n, const char *path)
{
    json_t *v = json_stringn(n->str, n->len);
    if (!v)
        slc_err(c, n->line, path, "is not valid UTF-8");
    return v;
}

static json_t *typed_scalar(slc_t *c, const ydoc_node_t *n, const char *path)
{
    const char *s = n->str;
    if (n->quoted || strlen(s) != n->len)
        return string(c, n, path);
    if (ydoc_is_null(n))
        return json_null();
    if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE"))
        return json_true();
    if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE"))
        return json_false();
    if (is_decimal_int(s))
        return integer(c, n, path, s, 10);
    if (s[0] == '0' && s[1] == 'x' && all_in(s + 2, "0123456789abcdefABCDEF"))
        return integer(c, n, path, s + 2, 16);
    if (s[0] == '0' && s[1] == 'o' && all_in(s + 2, "01234567"))
        return integer(c, n, path, s + 2, 8);
    if (is_float(s)) {
        double d = strtod(s, NULL);
        if (!isfinite(d)) {
            slc_err(c, n->line, path, "number %s is out of range", s);
            return NULL;
        }
        return json_real(d);
    }
    return string(c, n, path);
}

json_t *slc_to_json(slc_t *c, const ydoc_node_t *n, const char *path)
{
    if (n->invalid)
        return NULL;
    if (n->kind == YDOC_SCALAR)
        return typed_scalar(c, n, path);
    bool ok = true;
    char child[SLC_PATH];
    if (n->kind == YDOC_SEQ) {
        json_t *arr = json_array();
        for (int i = 0; i < n->n_items; i++) {
            ydoc_path_index(child, sizeof child, path, i);
            json_t *v = slc_to_json(c, n->items[i], child);
            if (v)
                json_array_append_new(arr, v);
            ok &= v != NULL;
        }
        if (!ok)
            json_decref(arr);
        return ok ? arr : NULL;
    }
    json_t *obj = json_object();
    for (int i = 0; i < n->n_pairs; i++) {
        const ydoc_node_t *k = n->pairs[i].key;
        ydoc_path_key(child, sizeof child, path, k->str);
        json_t *v = slc_to_json(c, n->pairs[i].value, child);
        if (v)
            json_object_setn_new(obj, k->str, k->len, v);
        ok &= v != NULL;
    }
    if (!ok)
        json_decref(obj);
    return ok ? obj : NULL;
}
