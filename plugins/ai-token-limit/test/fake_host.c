/* The stand-in host table; see fake_host.h. */
#include "fake_host.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

int fake_redis_configured;

typedef struct counter {
    char *key;
    int64_t value;
} counter_t;

static counter_t counters[64];
static int n_counters;
static int new_budget = -1;   /* -1: new counters can always be made */

void fake_dict_clear(void)
{
    for (int i = 0; i < n_counters; i++)
        free(counters[i].key);
    n_counters = 0;
    new_budget = -1;
}

void fake_fail_new_after(int n) { new_budget = n; }

int64_t fake_counter(const char *key)
{
    for (int i = 0; i < n_counters; i++)
        if (strcmp(counters[i].key, key) == 0)
            return counters[i].value;
    return INT64_MIN;
}

static int f_shared_incr(const char *dict, const char *key, int64_t delta, int64_t init, int64_t ttl_ms,
                         int64_t *out)
{
    (void)dict; (void)ttl_ms;
    counter_t *c = NULL;
    for (int i = 0; i < n_counters && !c; i++)
        if (strcmp(counters[i].key, key) == 0)
            c = &counters[i];
    if (!c) {
        /* Like the real dict: an existing counter is rewritten in place,
         * only a new one needs room. */
        if (n_counters == 64 || new_budget == 0)
            return -1;
        if (new_budget > 0)
            new_budget--;
        c = &counters[n_counters++];
        c->key = strdup(key);
        c->value = init;
    }
    c->value += delta;
    if (out)
        *out = c->value;
    return 0;
}

static int f_redis_configured(void) { return fake_redis_configured; }

static void f_log(sl_log_level_sdk_t level, const char *fmt, ...) { (void)level; (void)fmt; }

static sl_json_t *f_json_parse(const char *text, size_t len, char *err, size_t errlen)
{
    json_error_t e;
    json_t *v = json_loadb(text, len, JSON_DECODE_ANY, &e);
    if (!v && err && errlen)
        err[0] = '\0';
    return (sl_json_t *)v;
}

static void f_json_free(sl_json_t *v) { json_decref((json_t *)v); }

static sl_json_type_t f_json_type(const sl_json_t *v)
{
    switch (json_typeof((const json_t *)v)) {
    case JSON_OBJECT: return SL_JSON_OBJECT;
    case JSON_ARRAY: return SL_JSON_ARRAY;
    case JSON_STRING: return SL_JSON_STRING;
    case JSON_INTEGER: return SL_JSON_INTEGER;
    case JSON_REAL: return SL_JSON_REAL;
    case JSON_TRUE:
    case JSON_FALSE: return SL_JSON_BOOL;
    default: return SL_JSON_NULL;
    }
}

static const sl_json_t *f_json_get(const sl_json_t *obj, const char *key)
{
    return (const sl_json_t *)json_object_get((const json_t *)obj, key);
}

static size_t f_json_len(const sl_json_t *v)
{
    const json_t *j = (const json_t *)v;
    return json_is_array(j) ? json_array_size(j) : json_is_object(j) ? json_object_size(j) : 0;
}

static const sl_json_t *f_json_at(const sl_json_t *arr, size_t i)
{
    return (const sl_json_t *)json_array_get((const json_t *)arr, i);
}

static const char *f_json_string(const sl_json_t *v, size_t *len)
{
    const json_t *j = (const json_t *)v;
    if (!json_is_string(j))
        return NULL;
    if (len)
        *len = json_string_length(j);
    return json_string_value(j);
}

static int64_t f_json_integer(const sl_json_t *v) { return json_integer_value((const json_t *)v); }

const sl_host_t *fake_host(void)
{
    static sl_host_t h;
    h.abi_major = SLUICE_ABI_MAJOR;
    h.abi_minor = SLUICE_ABI_MINOR;
    h.size = sizeof h;
    h.shared_incr = f_shared_incr;
    h.redis_configured = f_redis_configured;
    h.log = f_log;
    h.json_parse = f_json_parse;
    h.json_free = f_json_free;
    h.json_type = f_json_type;
    h.json_get = f_json_get;
    h.json_len = f_json_len;
    h.json_at = f_json_at;
    h.json_string = f_json_string;
    h.json_integer = f_json_integer;
    return &h;
}
