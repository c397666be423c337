/* Plugin config schemas: the schema check and the validate-and-fill walk
 * share one recursive validator, so a default is held to exactly the rules a
 * configured value is. See plugin_schema.h for the language. */
#include <math.h>
#include <regex.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plugin_schema.h"

/* Far deeper than any real config; bounds recursion on a hostile schema. */
#define MAX_SCHEMA_DEPTH 32

typedef enum ftype {
    T_STRING, T_INTEGER, T_NUMBER, T_BOOLEAN, T_ARRAY, T_OBJECT, T_ANY, T_DURATION, T_SIZE,
    T_COUNT,
} ftype_t;

static const char *const type_names[T_COUNT] = {
    "string", "integer", "number", "boolean", "array", "object", "any", "duration", "size",
};

#define BIT(t) (1u << (t))
#define ALL_TYPES (BIT(T_COUNT) - 1)
#define BOUNDED (BIT(T_STRING) | BIT(T_INTEGER) | BIT(T_NUMBER) | BIT(T_ARRAY) | BIT(T_DURATION) | BIT(T_SIZE))

/* Which field keys each type may carry. */
static const struct {
    const char *key;
    unsigned types;
} field_keys[] = {
    {"type", ALL_TYPES},       {"required", ALL_TYPES},      {"default", ALL_TYPES},
    {"description", ALL_TYPES}, {"enum", ALL_TYPES},          {"min", BOUNDED},
    {"max", BOUNDED},          {"pattern", BIT(T_STRING)},   {"items", BIT(T_ARRAY)},
    {"fields", BIT(T_OBJECT)}, {"values", BIT(T_OBJECT)},    {"one_of_required", BIT(T_OBJECT)},
};

/* ------------------------------------------------------------ small text */

/* Nothing sensible can go on after running out of memory while loading a
 * config; the config loader makes the same choice. */
static void *must(void *p)
{
    if (!p)
        abort();
    return p;
}

typedef struct buf {
    char *s;
    size_t len, cap;
} buf_t;

static void buf_add(buf_t *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1)
            cap *= 2;
        b->s = must(realloc(b->s, cap));
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void buf_str(buf_t *b, const char *s)
{
    buf_add(b, s, strlen(s));
}

static const char *buf_text(const buf_t *b)
{
    return b->s ? b->s : "";
}

/* Paths grow while descending and are cut back to a saved length after. */
static size_t path_key(buf_t *p, const char *key)
{
    size_t saved = p->len;
    if (p->len)
        buf_str(p, ".");
    buf_str(p, key);
    return saved;
}

static size_t path_index(buf_t *p, size_t i)
{
    size_t saved = p->len;
    char tmp[32];
    snprintf(tmp, sizeof tmp, "[%zu]", i);
    buf_str(p, tmp);
    return saved;
}

static void path_cut(buf_t *p, size_t len)
{
    if (p->s) {
        p->len = len;
        p->s[len] = '\0';
    }
}

/* Shortest text that reads back as the same number. */
static void fmt_number(const json_t *v, char *out, size_t size)
{
    if (json_is_integer(v)) {
        snprintf(out, size, "%lld", (long long)json_integer_value(v));
        return;
    }
    double d = json_number_value(v);
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(out, size, "%.*g", prec, d);
        if (strtod(out, NULL) == d)
            return;
    }
}

static const char *kind_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "object";
    case JSON_ARRAY: return "array";
    case JSON_STRING: return "string";
    case JSON_INTEGER: return "integer";
    case JSON_REAL: return "number";
    case JSON_TRUE:
    case JSON_FALSE: return "boolean";
    default: return "null";
    }
}

/* Integers, and doubles holding an integer (Lua has no other numbers). */
static bool as_int64(const json_t *v, int64_t *out)
{
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return true;
    }
    if (!json_is_real(v))
        return false;
    double d = json_real_value(v);
    if (d != floor(d) || !(d >= -9223372036854775808.0 && d < 9223372036854775808.0))
        return false;
    *out = (int64_t)d;
    return true;
}

static bool has_nul(const json_t *str)
{
    return strlen(json_string_value(str)) != json_string_length(str);
}

/* ------------------------------------------------------------ error sink */

/* Applying collects every error into errs; checking keeps only the first,
 * in a caller's buffer. Both count, which is how callers see failure. */
typedef struct sink {
    sl_errors_t *errs;
    const char *where;
    char *first;
    size_t first_len;
    int count;
} sink_t;

static void report(sink_t *s, const buf_t *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void report(sink_t *s, const buf_t *path, const char *fmt, ...)
{
    s->count++;
    bool keep = s->errs || (s->count == 1 && s->first && s->first_len > 0);
    if (!keep)
        return;
    va_list ap;
    va_start(ap, fmt);
    char *msg = NULL;
    int rc = vasprintf(&msg, fmt, ap);
    va_end(ap);
    if (rc < 0)
        abort();
    const char *where = s->where ? s->where : "", *p = buf_text(path);
    const char *dot = where[0] && p[0] ? "." : "", *colon = where[0] || p[0] ? ": " : "";
    if (s->errs)
        sl_errors_add(s->errs, "%s%s%s%s%s", where, dot, p, colon, msg);
    else
        snprintf(s->first, s->first_len, "%s%s%s%s%s", where, dot, p, colon, msg);
    free(msg);
}

/* ------------------------------------------------------------ field access */

static ftype_t type_of_name(const char *name)
{
    for (int t = 0; t < T_COUNT; t++)
        if (strcmp(type_names[t], name) == 0)
            return (ftype_t)t;
    return T_COUNT;
}

/* Only called on fields that passed the schema check. */
static ftype_t field_type(const json_t *field)
{
    const char *name = json_string_value(json_object_get(field, "type"));
    return name ? type_of_name(name) : T_ANY;
}

static bool scalar_type(ftype_t t)
{
    return t != T_ARRAY && t != T_OBJECT && t != T_ANY;
}

/* ------------------------------------------------------------ values */

static json_t *convert_units(ftype_t t, const json_t *v, const buf_t *p, sink_t *s)
{
    const char *what = t == T_DURATION ? "duration" : "size";
    int64_t n;
    if (json_is_string(v)) {
        const char *text = json_string_value(v);
        int rc = has_nul(v) ? -1 : t == T_DURATION ? sl_parse_duration_ms(text, &n) : sl_parse_size(text, &n);
        if (rc != 0) {
            report(s, p, "invalid %s \"%s\"", what, text);
            return NULL;
        }
        return must(json_integer(n));
    }
    if (!json_is_number(v)) {
        report(s, p, "expected %s, got %s", what, kind_name(v));
        return NULL;
    }
    if (!as_int64(v, &n) || n < 0) {
        char num[40];
        fmt_number(v, num, sizeof num);
        report(s, p, "invalid %s %s", what, num);
        return NULL;
    }
    return must(json_integer(n));
}

/* The value as the field stores it, for every type but array and object;
 * NULL after reporting why it does not fit. */
static json_t *convert_scalar(ftype_t t, const json_t *v, const buf_t *p, sink_t *s)
{
    int64_t n;
    switch (t) {
    case T_STRING:
        if (!json_is_string(v))
            break;
        if (has_nul(v)) {
            report(s, p, "must not contain NUL characters");
            return NULL;
        }
        return must(json_deep_copy(v));
    case T_INTEGER:
        if (as_int64(v, &n))
            return must(json_integer(n));
        break;
    case T_NUMBER:
    case T_BOOLEAN:
        if ((t == T_NUMBER && json_is_number(v)) || (t == T_BOOLEAN && json_is_boolean(v)))
            return must(json_deep_copy(v));
        break;
    case T_DURATION:
    case T_SIZE:
        return convert_units(t, v, p, s);
    default:
        return must(json_deep_copy(v));
    }
    report(s, p, "expected %s, got %s", type_names[t], kind_name(v));
    return NULL;
}

static bool values_equal(const json_t *a, const json_t *b)
{
    if (json_is_number(a) && json_is_number(b)) {
        if (json_is_integer(a) && json_is_integer(b))
            return json_integer_value(a) == json_integer_value(b);
        return json_number_value(a) == json_number_value(b);
    }
    return json_equal(a, b);
}

/* Scalars are compared after conversion, so "1s" in an enum matches 1000;
 * containers as written, before defaults were filled into them. */
static void check_enum(const json_t *field, ftype_t t, const json_t *given, const json_t *converted,
                       const buf_t *p, sink_t *s)
{
    const json_t *choices = json_object_get(field, "enum");
    if (!choices)
        return;
    size_t i;
    const json_t *choice;
    json_array_foreach(choices, i, choice) {
        bool same;
        if (scalar_type(t)) {
            sink_t quiet = {0};
            json_t *c = convert_scalar(t, choice, NULL, &quiet);
            same = c && values_equal(converted, c);
            json_decref(c);
        } else {
            same = values_equal(given, choice);
        }
        if (same)
            return;
    }
    buf_t list = {0};
    json_array_foreach(choices, i, choice) {
        char *text = must(json_dumps(choice, JSON_ENCODE_ANY | JSON_COMPACT));
        if (i)
            buf_str(&list, ", ");
        buf_str(&list, text);
        free(text);
    }
    report(s, p, "must be one of %s", buf_text(&list));
    free(list.s);
}

/* A bound in the unit the field stores, for duration and size fields. */
static bool unit_bound(ftype_t t, const json_t *b, int64_t *out)
{
    if (json_is_string(b))
        return (t == T_DURATION ? sl_parse_duration_ms(json_string_value(b), out)
                                : sl_parse_size(json_string_value(b), out)) == 0;
    return as_int64(b, out);
}

/* The bound as a reader of the error wants it: as the schema wrote it. */
static void bound_text(ftype_t t, const json_t *b, char *out, size_t size)
{
    int64_t n;
    if (json_is_string(b))
        snprintf(out, size, "%s", json_string_value(b));
    else if ((t == T_DURATION || t == T_SIZE) && as_int64(b, &n))
        snprintf(out, size, "%lld%s", (long long)n, t == T_DURATION ? "ms" : "");
    else
        fmt_number(b, out, size);
}

/* <0, 0, >0 as v is below, at or above bound b. */
static int compare_bound(ftype_t t, const json_t *v, const json_t *b)
{
    int64_t x, y;
    if (t == T_DURATION || t == T_SIZE) {
        x = json_integer_value(v);
        if (!unit_bound(t, b, &y))
            return 0;
        return (x > y) - (x < y);
    }
    if (json_is_integer(v) && json_is_integer(b)) {
        x = json_integer_value(v);
        y = json_integer_value(b);
        return (x > y) - (x < y);
    }
    double dx = json_number_value(v), dy = json_number_value(b);
    return (dx > dy) - (dx < dy);
}

static size_t utf8_chars(const json_t *str)
{
    const unsigned char *c = (const unsigned char *)json_string_value(str);
    size_t len = json_string_length(str), n = 0;
    for (size_t i = 0; i < len; i++)
        n += (c[i] & 0xC0) != 0x80;
    return n;
}

static void check_length(const char *at_least, const char *at_most, const char *unit, size_t len,
                         const json_t *min, const json_t *max, const buf_t *p, sink_t *s)
{
    int64_t lo, hi;
    if (min && as_int64(min, &lo) && (int64_t)len < lo)
        report(s, p, "%s %lld %s%s", at_least, (long long)lo, unit, lo == 1 ? "" : "s");
    if (max && as_int64(max, &hi) && (int64_t)len > hi)
        report(s, p, "%s %lld %s%s", at_most, (long long)hi, unit, hi == 1 ? "" : "s");
}

static void check_bounds(const json_t *field, ftype_t t, const json_t *v, const buf_t *p, sink_t *s)
{
    const json_t *min = json_object_get(field, "min"), *max = json_object_get(field, "max");
    if (!min && !max)
        return;
    if (t == T_STRING) {
        check_length("must be at least", "must be at most", "character", utf8_chars(v), min, max, p, s);
    } else if (t == T_ARRAY) {
        check_length("must have at least", "must have at most", "item", json_array_size(v), min, max, p, s);
    } else if (t == T_INTEGER || t == T_NUMBER || t == T_DURATION || t == T_SIZE) {
        char text[64];
        if (min && compare_bound(t, v, min) < 0) {
            bound_text(t, min, text, sizeof text);
            report(s, p, "must be >= %s", text);
        }
        if (max && compare_bound(t, v, max) > 0) {
            bound_text(t, max, text, sizeof text);
            report(s, p, "must be <= %s", text);
        }
    }
}

static void check_pattern(const json_t *field, const json_t *v, const buf_t *p, sink_t *s)
{
    const char *pattern = json_string_value(json_object_get(field, "pattern"));
    if (!pattern)
        return;
    regex_t re;
    if (regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB) != 0) {
        report(s, p, "invalid pattern %s", pattern);
        return;
    }
    if (regexec(&re, json_string_value(v), 0, NULL, 0) != 0)
        report(s, p, "must match %s", pattern);
    regfree(&re);
}

static json_t *apply_value(const json_t *field, const json_t *v, buf_t *p, sink_t *s);

static bool is_set(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    return v && !json_is_null(v);
}

/* An object against a schema level with "fields" and/or "values": the top
 * level, or an object field. */
static json_t *apply_object(const json_t *level, const json_t *obj, buf_t *p, sink_t *s)
{
    const json_t *fields = json_object_get(level, "fields"), *values = json_object_get(level, "values");
    json_t *out = must(json_object());
    int before = s->count;
    const char *key;
    size_t key_len;
    json_t *v;
    json_object_keylen_foreach((json_t *)obj, key, key_len, v) {
        size_t saved = path_key(p, key);
        bool plain_key = strlen(key) == key_len;
        const json_t *field = plain_key ? json_object_get(fields, key) : NULL;
        if (field) {
            json_t *r = json_is_null(v) ? NULL : apply_value(field, v, p, s);
            if (r)
                json_object_setn_new(out, key, key_len, r);
        } else if (values && plain_key) {
            json_t *r = apply_value(values, v, p, s);
            if (r)
                json_object_setn_new(out, key, key_len, r);
        } else {
            report(s, p, values ? "must not contain NUL characters" : "unknown field");
        }
        path_cut(p, saved);
    }
    json_object_foreach((json_t *)fields, key, v) {
        if (is_set(obj, key))
            continue;
        size_t saved = path_key(p, key);
        const json_t *dflt = json_object_get(v, "default");
        if (json_is_true(json_object_get(v, "required"))) {
            report(s, p, "missing required field");
        } else if (dflt) {
            json_t *r = apply_value(v, dflt, p, s);
            if (r)
                json_object_set_new(out, key, r);
        }
        path_cut(p, saved);
    }
    const json_t *one_of = json_object_get(level, "one_of_required");
    if (one_of) {
        bool any = false;
        size_t i;
        json_t *name;
        json_array_foreach(one_of, i, name)
            any |= is_set(obj, json_string_value(name));
        if (!any) {
            buf_t list = {0};
            json_array_foreach(one_of, i, name) {
                buf_str(&list, i ? ", \"" : "\"");
                buf_str(&list, json_string_value(name));
                buf_str(&list, "\"");
            }
            report(s, p, "must set at least one of %s", buf_text(&list));
            free(list.s);
        }
    }
    if (s->count != before) {
        json_decref(out);
        return NULL;
    }
    return out;
}

static json_t *apply_array(const json_t *field, const json_t *v, buf_t *p, sink_t *s)
{
    const json_t *items = json_object_get(field, "items");
    if (!items)
        return must(json_deep_copy(v));
    json_t *out = must(json_array());
    bool ok = true;
    size_t i;
    json_t *item;
    json_array_foreach(v, i, item) {
        size_t saved = path_index(p, i);
        json_t *r = apply_value(items, item, p, s);
        path_cut(p, saved);
        if (r)
            json_array_append_new(out, r);
        ok &= r != NULL;
    }
    if (!ok) {
        json_decref(out);
        return NULL;
    }
    return out;
}

/* The value converted and checked against one field, defaults filled into
 * nested objects; NULL after reporting every problem found. */
static json_t *apply_value(const json_t *field, const json_t *v, buf_t *p, sink_t *s)
{
    ftype_t t = field_type(field);
    json_t *out;
    if (t == T_ARRAY || t == T_OBJECT) {
        bool fits = t == T_ARRAY ? json_is_array(v) : json_is_object(v);
        if (!fits) {
            report(s, p, "expected %s, got %s", type_names[t], kind_name(v));
            return NULL;
        }
        bool shaped = json_object_get(field, "fields") || json_object_get(field, "values");
        out = t == T_ARRAY ? apply_array(field, v, p, s)
              : shaped     ? apply_object(field, v, p, s)
                           : must(json_deep_copy(v));
    } else {
        out = convert_scalar(t, v, p, s);
    }
    if (!out)
        return NULL;
    int before = s->count;
    check_enum(field, t, v, out, p, s);
    check_bounds(field, t, out, p, s);
    check_pattern(field, out, p, s);
    if (s->count != before) {
        json_decref(out);
        return NULL;
    }
    return out;
}

/* ------------------------------------------------------------ schema check */

static bool check_fields(const json_t *fields, buf_t *p, sink_t *s, int depth);

static bool expect_kind(const json_t *v, json_type kind, const char *name, const buf_t *p, sink_t *s)
{
    if (json_typeof(v) == kind || (kind == JSON_TRUE && json_is_boolean(v)))
        return true;
    report(s, p, "expected %s, got %s", name, kind_name(v));
    return false;
}

static bool check_one_of(const json_t *one_of, const json_t *fields, buf_t *p, sink_t *s)
{
    if (!json_is_array(one_of) || json_array_size(one_of) == 0) {
        report(s, p, "expected a non-empty array of field names");
        return false;
    }
    size_t i;
    json_t *name;
    json_array_foreach(one_of, i, name) {
        size_t saved = path_index(p, i);
        bool ok = expect_kind(name, JSON_STRING, "string", p, s);
        if (ok && !json_object_get(fields, json_string_value(name))) {
            report(s, p, "\"%s\" is not a field", json_string_value(name));
            ok = false;
        }
        path_cut(p, saved);
        if (!ok)
            return false;
    }
    return true;
}

/* Bounds are lengths (non-negative integers), durations or sizes (as the
 * field accepts them), or plain numbers. */
static bool check_bound(ftype_t t, const json_t *b, buf_t *p, sink_t *s)
{
    int64_t n;
    if (t == T_STRING || t == T_ARRAY) {
        if (as_int64(b, &n) && n >= 0)
            return true;
        report(s, p, "must be a non-negative integer");
        return false;
    }
    if (t == T_DURATION || t == T_SIZE) {
        if (unit_bound(t, b, &n))
            return true;
        if (json_is_string(b))
            report(s, p, "invalid %s \"%s\"", type_names[t], json_string_value(b));
        else
            report(s, p, "expected %s, got %s", type_names[t], kind_name(b));
        return false;
    }
    if (json_is_number(b))
        return true;
    report(s, p, "expected number, got %s", kind_name(b));
    return false;
}

static bool bounds_inverted(ftype_t t, const json_t *min, const json_t *max)
{
    int64_t lo = 0, hi = 0;
    if (t == T_STRING || t == T_ARRAY)
        return as_int64(min, &lo) && as_int64(max, &hi) && lo > hi;
    if (t == T_DURATION || t == T_SIZE)
        return unit_bound(t, min, &lo) && unit_bound(t, max, &hi) && lo > hi;
    return compare_bound(t, min, max) > 0;
}

static bool check_bounds_keys(const json_t *field, ftype_t t, buf_t *p, sink_t *s)
{
    const json_t *min = json_object_get(field, "min"), *max = json_object_get(field, "max");
    const json_t *bounds[2] = {min, max};
    const char *names[2] = {"min", "max"};
    for (int i = 0; i < 2; i++) {
        if (!bounds[i])
            continue;
        size_t saved = path_key(p, names[i]);
        bool ok = check_bound(t, bounds[i], p, s);
        path_cut(p, saved);
        if (!ok)
            return false;
    }
    if (min && max && bounds_inverted(t, min, max)) {
        size_t saved = path_key(p, "max");
        report(s, p, "must not be less than min");
        path_cut(p, saved);
        return false;
    }
    return true;
}

static bool check_enum_key(const json_t *choices, ftype_t t, buf_t *p, sink_t *s)
{
    if (!json_is_array(choices) || json_array_size(choices) == 0) {
        report(s, p, "expected a non-empty array");
        return false;
    }
    size_t i;
    json_t *choice;
    json_array_foreach(choices, i, choice) {
        size_t saved = path_index(p, i);
        bool ok;
        if (scalar_type(t)) {
            json_t *c = convert_scalar(t, choice, p, s);
            ok = c != NULL;
            json_decref(c);
        } else if (t == T_ARRAY || t == T_OBJECT) {
            ok = expect_kind(choice, t == T_ARRAY ? JSON_ARRAY : JSON_OBJECT, type_names[t], p, s);
        } else {
            ok = true;
        }
        path_cut(p, saved);
        if (!ok)
            return false;
    }
    return true;
}

static bool check_pattern_key(const json_t *pattern, buf_t *p, sink_t *s)
{
    if (!expect_kind(pattern, JSON_STRING, "string", p, s))
        return false;
    regex_t re;
    int rc = regcomp(&re, json_string_value(pattern), REG_EXTENDED | REG_NOSUB);
    if (rc != 0) {
        char why[128];
        regerror(rc, &re, why, sizeof why);
        report(s, p, "invalid regular expression \"%s\": %s", json_string_value(pattern), why);
        return false;
    }
    regfree(&re);
    return true;
}

/* Keys this type may not carry, or that are not keys at all. */
static bool check_key_names(const json_t *field, ftype_t t, bool named, buf_t *p, sink_t *s)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)field, key, v) {
        size_t saved = path_key(p, key);
        int k = -1;
        for (size_t i = 0; i < sizeof field_keys / sizeof field_keys[0]; i++)
            if (strcmp(field_keys[i].key, key) == 0)
                k = (int)i;
        bool ok = false;
        if (k < 0)
            report(s, p, "unknown key");
        else if (!(field_keys[k].types & BIT(t)))
            report(s, p, "not allowed for type %s", type_names[t]);
        else if (!named && (strcmp(key, "required") == 0 || strcmp(key, "default") == 0))
            report(s, p, "only allowed on named fields");
        else
            ok = true;
        path_cut(p, saved);
        if (!ok)
            return false;
    }
    return true;
}

/* Runs `check` on field[key] with the path extended by key, when present. */
#define CHECK_KEY(field, key, call)                                   \
    do {                                                              \
        const json_t *key_value_ = json_object_get((field), (key));   \
        if (key_value_) {                                             \
            size_t saved_ = path_key(p, (key));                       \
            const json_t *v_ = key_value_;                            \
            bool ok_ = (call);                                        \
            path_cut(p, saved_);                                      \
            if (!ok_)                                                 \
                return false;                                         \
        }                                                             \
    } while (0)

static bool check_field(const json_t *field, buf_t *p, sink_t *s, int depth, bool named)
{
    if (!expect_kind(field, JSON_OBJECT, "object", p, s))
        return false;
    if (depth > MAX_SCHEMA_DEPTH) {
        report(s, p, "nested too deeply");
        return false;
    }
    const json_t *type = json_object_get(field, "type");
    if (!type) {
        report(s, p, "missing \"type\"");
        return false;
    }
    CHECK_KEY(field, "type", expect_kind(v_, JSON_STRING, "string", p, s));
    ftype_t t = type_of_name(json_string_value(type));
    if (t == T_COUNT) {
        size_t saved = path_key(p, "type");
        report(s, p, "unknown type \"%s\"", json_string_value(type));
        path_cut(p, saved);
        return false;
    }
    if (!check_key_names(field, t, named, p, s))
        return false;
    CHECK_KEY(field, "required", expect_kind(v_, JSON_TRUE, "boolean", p, s));
    CHECK_KEY(field, "items", check_field(v_, p, s, depth + 1, false));
    CHECK_KEY(field, "fields", check_fields(v_, p, s, depth + 1));
    CHECK_KEY(field, "values", check_field(v_, p, s, depth + 1, false));
    CHECK_KEY(field, "one_of_required", check_one_of(v_, json_object_get(field, "fields"), p, s));
    CHECK_KEY(field, "pattern", check_pattern_key(v_, p, s));
    if (!check_bounds_keys(field, t, p, s))
        return false;
    CHECK_KEY(field, "enum", check_enum_key(v_, t, p, s));
    /* Last: validating a default uses everything checked above. */
    const json_t *dflt = json_object_get(field, "default");
    if (dflt) {
        size_t saved = path_key(p, "default");
        int before = s->count;
        if (json_is_true(json_object_get(field, "required")))
            report(s, p, "not allowed with required");
        else if (json_is_null(dflt))
            report(s, p, "must not be null");
        else
            json_decref(apply_value(field, dflt, p, s));
        path_cut(p, saved);
        if (s->count != before)
            return false;
    }
    return true;
}

static bool check_fields(const json_t *fields, buf_t *p, sink_t *s, int depth)
{
    if (!expect_kind(fields, JSON_OBJECT, "object", p, s))
        return false;
    const char *name;
    json_t *field;
    json_object_foreach((json_t *)fields, name, field) {
        size_t saved = path_key(p, name);
        bool ok = check_field(field, p, s, depth, true);
        path_cut(p, saved);
        if (!ok)
            return false;
    }
    return true;
}

static bool check_top(const json_t *schema, buf_t *p, sink_t *s)
{
    if (!expect_kind(schema, JSON_OBJECT, "object", p, s))
        return false;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)schema, key, v) {
        if (strcmp(key, "fields") && strcmp(key, "one_of_required") && strcmp(key, "description")) {
            path_key(p, key);
            report(s, p, "unknown key");
            return false;
        }
    }
    CHECK_KEY(schema, "fields", check_fields(v_, p, s, 1));
    CHECK_KEY(schema, "one_of_required", check_one_of(v_, json_object_get(schema, "fields"), p, s));
    return true;
}

/* ------------------------------------------------------------ public */

int sl_schema_check(const json_t *schema, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    sink_t s = {.first = err, .first_len = err ? errlen : 0};
    buf_t p = {0};
    if (!schema)
        report(&s, &p, "no schema");
    else
        check_top(schema, &p, &s);
    free(p.s);
    return s.count ? -1 : 0;
}

json_t *sl_schema_parse(const char *text, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!text) {
        if (err && errlen)
            snprintf(err, errlen, "no schema");
        return NULL;
    }
    json_error_t je;
    json_t *schema = json_loads(text, JSON_REJECT_DUPLICATES, &je);
    if (!schema) {
        if (err && errlen)
            snprintf(err, errlen, "line %d column %d: %s", je.line, je.column, je.text);
        return NULL;
    }
    if (sl_schema_check(schema, err, errlen) != 0) {
        json_decref(schema);
        return NULL;
    }
    return schema;
}

json_t *sl_schema_apply(const json_t *schema, const json_t *conf, const char *where, sl_errors_t *errs)
{
    sink_t s = {.errs = errs, .where = where};
    buf_t p = {0};
    json_t *out = NULL;
    json_t *empty = NULL;
    if (!conf)
        conf = empty = must(json_object());
    char why[256];
    if (schema && sl_schema_check(schema, why, sizeof why) != 0)
        report(&s, &p, "invalid schema: %s", why);
    else if (!json_is_object(conf))
        report(&s, &p, "expected object, got %s", kind_name(conf));
    else
        out = apply_object(schema, conf, &p, &s);
    json_decref(empty);
    free(p.s);
    return out;
}
