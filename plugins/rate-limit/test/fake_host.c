/* The stand-in host table; see fake_host.h. */
#include "fake_host.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int fake_redis_configured;

typedef struct entry {
    char *dict, *key, *value;
    size_t len;
} entry_t;

static entry_t *entries;
static size_t n_entries, cap_entries;

void fake_dict_clear(void)
{
    for (size_t i = 0; i < n_entries; i++) {
        free(entries[i].dict);
        free(entries[i].key);
        free(entries[i].value);
    }
    free(entries);
    entries = NULL;
    n_entries = cap_entries = 0;
}

static entry_t *find(const char *dict, const char *key, int create)
{
    for (size_t i = 0; i < n_entries; i++)
        if (strcmp(entries[i].dict, dict) == 0 && strcmp(entries[i].key, key) == 0)
            return &entries[i];
    if (!create)
        return NULL;
    if (n_entries == cap_entries) {
        cap_entries = cap_entries ? cap_entries * 2 : 64;
        entries = realloc(entries, cap_entries * sizeof *entries);
    }
    entry_t *e = &entries[n_entries++];
    e->dict = strdup(dict);
    e->key = strdup(key);
    e->value = NULL;
    e->len = 0;
    return e;
}

static int f_shared_get(const char *d, const char *key, char *buf, size_t cap, size_t *len)
{
    entry_t *e = find(d, key, 0);
    if (!e)
        return 0;
    if (len)
        *len = e->len;
    if (cap < e->len)
        return -1;
    memcpy(buf, e->value, e->len);
    return 1;
}

static int f_shared_set(const char *d, const char *key, const char *val, size_t len, int64_t ttl_ms)
{
    (void)ttl_ms;
    entry_t *e = find(d, key, 1);
    free(e->value);
    e->value = malloc(len + 1);
    memcpy(e->value, val, len);
    e->value[len] = '\0';
    e->len = len;
    return 0;
}

static int f_shared_incr(const char *d, const char *key, int64_t delta, int64_t init, int64_t ttl_ms,
                         int64_t *out)
{
    entry_t *e = find(d, key, 0);
    long long v = e ? strtoll(e->value, NULL, 10) + delta : init + delta;
    char buf[24];
    int n = snprintf(buf, sizeof buf, "%lld", v);
    f_shared_set(d, key, buf, (size_t)n, ttl_ms);
    if (out)
        *out = v;
    return 0;
}

static const char *lookup(const char *const *names, const char *const *values, int n,
                          const char *name, size_t *len, int ignore_case)
{
    for (int i = 0; i < n; i++) {
        if (ignore_case ? strcasecmp(names[i], name) == 0 : strcmp(names[i], name) == 0) {
            if (len)
                *len = strlen(values[i]);
            return values[i];
        }
    }
    return NULL;
}

static const char *f_req_header(sl_req_t *r, const char *name, size_t *len)
{
    return lookup(r->header_names, r->header_values, r->n_headers, name, len, 1);
}

static const char *f_ctx_get(sl_req_t *r, const char *key, size_t *len)
{
    return lookup(r->ctx_keys, r->ctx_values, r->n_ctx, key, len, 0);
}

static const char *f_req_client_ip(sl_req_t *r) { return r->client_ip; }
static const char *f_req_route(sl_req_t *r) { return r->route; }

const char *fake_resp_header(const struct sl_req *r, const char *name)
{
    for (int i = 0; i < r->n_resp; i++)
        if (strcasecmp(r->resp_names[i], name) == 0)
            return r->resp_values[i];
    return NULL;
}

static int f_resp_set_header(sl_req_t *r, const char *name, const char *value, size_t vlen)
{
    int i = 0;
    while (i < r->n_resp && strcasecmp(r->resp_names[i], name) != 0)
        i++;
    if (i == FAKE_MAX)
        return -1;
    if (i == r->n_resp)
        r->n_resp++;
    snprintf(r->resp_names[i], sizeof r->resp_names[i], "%s", name);
    snprintf(r->resp_values[i], sizeof r->resp_values[i], "%.*s", (int)vlen, value);
    return 0;
}

static int f_respond_error(sl_req_t *r, int status, const char *code, const char *message)
{
    r->status = status;
    snprintf(r->code, sizeof r->code, "%s", code);
    snprintf(r->message, sizeof r->message, "%s", message);
    return 0;
}

static int f_redis_configured(void) { return fake_redis_configured; }

static void f_log(sl_log_level_sdk_t level, const char *fmt, ...)
{
    (void)level;
    (void)fmt;
}

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
    return json_is_array(j) ? json_array_size(j) : json_object_size(j);
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
static int f_json_bool(const sl_json_t *v) { return json_is_true((const json_t *)v); }

static const sl_host_t table = {
    .abi_major = SLUICE_ABI_MAJOR,
    .abi_minor = SLUICE_ABI_MINOR,
    .size = sizeof(sl_host_t),
    .req_header = f_req_header,
    .req_client_ip = f_req_client_ip,
    .req_route = f_req_route,
    .respond_error = f_respond_error,
    .resp_set_header = f_resp_set_header,
    .ctx_get = f_ctx_get,
    .redis_configured = f_redis_configured,
    .shared_get = f_shared_get,
    .shared_set = f_shared_set,
    .shared_incr = f_shared_incr,
    .log = f_log,
    .json_type = f_json_type,
    .json_get = f_json_get,
    .json_len = f_json_len,
    .json_at = f_json_at,
    .json_string = f_json_string,
    .json_integer = f_json_integer,
    .json_bool = f_json_bool,
};

const sl_host_t *fake_host(void) { return &table; }
