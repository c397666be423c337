/* The stand-in host table; see fake_host.h. */
#include "fake_host.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
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

/* ---- the fake Redis ------------------------------------------------------- */

typedef struct redis_entry {
    char *key, *value;
    size_t klen;
    int64_t ttl_ms;   /* -1: none */
} redis_entry_t;

static redis_entry_t *store;
static size_t n_store, cap_store;

/* A reply waiting for fake_redis_deliver; str is owned. */
typedef struct queued_reply {
    sl_req_t *r;
    sl_redis_reply_cb cb;
    void *arg;
    sl_reply_t reply;
    char *str;
    const char *err;
} queued_reply_t;

static queued_reply_t *queue;
static size_t queue_head, queue_len, queue_cap;

#define MAX_FAULTS 8
static struct {
    long call;   /* absolute call number it hits */
    fake_redis_fault_t how;
} faults[MAX_FAULTS];
static int n_faults;
static long n_calls;

static char sent_log[FAKE_MAX][256];
static int n_sent;

static redis_entry_t *store_find(const char *key, size_t klen)
{
    /* Newest first: the hot counters are the current window's, made last. */
    for (size_t i = n_store; i-- > 0;)
        if (store[i].klen == klen && memcmp(store[i].key, key, klen) == 0)
            return &store[i];
    return NULL;
}

static redis_entry_t *store_add(const char *key, size_t klen)
{
    if (n_store == cap_store) {
        cap_store = cap_store ? cap_store * 2 : 64;
        store = realloc(store, cap_store * sizeof *store);
    }
    redis_entry_t *e = &store[n_store++];
    e->key = malloc(klen + 1);
    memcpy(e->key, key, klen);
    e->key[klen] = '\0';
    e->klen = klen;
    e->value = NULL;
    e->ttl_ms = -1;
    return e;
}

static void entry_set(redis_entry_t *e, const char *value, size_t len)
{
    free(e->value);
    e->value = malloc(len + 1);
    memcpy(e->value, value, len);
    e->value[len] = '\0';
}

/* What Redis accepts as an integer: optional '-', digits, no leading zero
 * or '+', no spaces, within 64 bits. */
static int parse_redis_int(const char *s, size_t len, long long *out)
{
    if (len == 0 || len > 20)
        return -1;
    char buf[24];
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *end;
    errno = 0;
    long long v = strtoll(buf, &end, 10);
    if (errno != 0 || *end != '\0')
        return -1;
    /* Redis takes only the canonical form: text that prints back otherwise
     * had a '+', a space or a leading zero. */
    char back[24];
    if ((size_t)snprintf(back, sizeof back, "%lld", v) != len || memcmp(back, buf, len) != 0)
        return -1;
    *out = v;
    return 0;
}

static void reply_error(queued_reply_t *q, const char *text)
{
    q->str = strdup(text);
    q->reply = (sl_reply_t){.type = SL_REPLY_ERROR, .str = q->str, .len = strlen(text)};
}

static void reply_integer(queued_reply_t *q, long long v)
{
    q->reply = (sl_reply_t){.type = SL_REPLY_INTEGER, .integer = v};
}

static int is_cmd(const char *arg, size_t len, const char *name)
{
    return len == strlen(name) && strncasecmp(arg, name, len) == 0;
}

static void run_incr(queued_reply_t *q, const char *key, size_t klen, long long delta)
{
    redis_entry_t *e = store_find(key, klen);
    long long v = 0;
    if (e && parse_redis_int(e->value, strlen(e->value), &v) != 0) {
        reply_error(q, "ERR value is not an integer or out of range");
        return;
    }
    if ((delta > 0 && v == LLONG_MAX) || (delta < 0 && v == LLONG_MIN)) {
        reply_error(q, "ERR increment or decrement would overflow");
        return;
    }
    v += delta;
    char text[24];
    int n = snprintf(text, sizeof text, "%lld", v);
    entry_set(e ? e : store_add(key, klen), text, (size_t)n);
    reply_integer(q, v);
}

/* Runs one command against the store and fills its reply in q. */
static void run_command(queued_reply_t *q, int argc, const char *const *argv, const size_t *lens)
{
    int want = argc > 0 && is_cmd(argv[0], lens[0], "PEXPIRE") ? 3 : 2;
    if (argc < 1 || !(is_cmd(argv[0], lens[0], "INCR") || is_cmd(argv[0], lens[0], "DECR") ||
                      is_cmd(argv[0], lens[0], "GET") || is_cmd(argv[0], lens[0], "PEXPIRE"))) {
        reply_error(q, "ERR unknown command");
        return;
    }
    if (argc != want) {
        reply_error(q, "ERR wrong number of arguments");
        return;
    }
    if (is_cmd(argv[0], lens[0], "INCR")) {
        run_incr(q, argv[1], lens[1], 1);
    } else if (is_cmd(argv[0], lens[0], "DECR")) {
        run_incr(q, argv[1], lens[1], -1);
    } else if (is_cmd(argv[0], lens[0], "GET")) {
        redis_entry_t *e = store_find(argv[1], lens[1]);
        if (!e) {
            q->reply = (sl_reply_t){.type = SL_REPLY_NIL};
            return;
        }
        q->str = strdup(e->value);
        q->reply = (sl_reply_t){.type = SL_REPLY_STRING, .str = q->str, .len = strlen(q->str)};
    } else {
        long long ttl;
        if (parse_redis_int(argv[2], lens[2], &ttl) != 0) {
            reply_error(q, "ERR value is not an integer or out of range");
            return;
        }
        redis_entry_t *e = store_find(argv[1], lens[1]);
        if (e)
            e->ttl_ms = ttl;
        reply_integer(q, e != NULL);
    }
}

static void log_sent(int argc, const char *const *argv, const size_t *lens)
{
    if (n_sent < FAKE_MAX) {
        char *out = sent_log[n_sent];
        size_t used = 0, cap = sizeof sent_log[0];
        out[0] = '\0';
        for (int i = 0; i < argc && used < cap; i++)
            used += (size_t)snprintf(out + used, cap - used, "%s%.*s", i ? " " : "", (int)lens[i],
                                     argv[i]);
    }
    n_sent++;
}

static int take_fault(fake_redis_fault_t *how)
{
    for (int i = 0; i < n_faults; i++) {
        if (faults[i].call == n_calls) {
            *how = faults[i].how;
            faults[i] = faults[--n_faults];
            return 1;
        }
    }
    return 0;
}

static int f_redis_call(sl_req_t *r, int argc, const char *const *argv, const size_t *lens,
                        sl_redis_reply_cb cb, void *arg)
{
    n_calls++;
    fake_redis_fault_t how;
    int faulty = take_fault(&how);
    if (faulty && how == FAKE_SEND_FAILS)
        return -1;
    log_sent(argc, argv, lens);
    queued_reply_t q = {.r = r, .cb = cb, .arg = arg};
    if (!faulty)
        run_command(&q, argc, argv, lens);
    else if (how == FAKE_REPLY_ERROR)
        reply_error(&q, "ERR boom");
    else
        q.err = "timeout";
    if (queue_len == queue_cap) {
        queue_cap = queue_cap ? queue_cap * 2 : 16;
        queue = realloc(queue, queue_cap * sizeof *queue);
    }
    queue[queue_len++] = q;
    return 0;
}

void fake_redis_fault(int nth, fake_redis_fault_t how)
{
    if (n_faults == MAX_FAULTS || nth < 1)
        abort();
    faults[n_faults].call = n_calls + nth;
    faults[n_faults].how = how;
    n_faults++;
}

int fake_redis_deliver(void)
{
    int delivered = 0;
    while (queue_head < queue_len) {
        /* Copied out: the callback may queue more and move the array. */
        queued_reply_t q = queue[queue_head++];
        q.cb(q.r, q.arg, q.err ? NULL : &q.reply, q.err);
        free(q.str);
        delivered++;
    }
    queue_head = queue_len = 0;
    return delivered;
}

int fake_redis_pending(void) { return (int)(queue_len - queue_head); }

void fake_redis_clear(void)
{
    for (size_t i = 0; i < n_store; i++) {
        free(store[i].key);
        free(store[i].value);
    }
    free(store);
    store = NULL;
    n_store = cap_store = 0;
    for (size_t i = queue_head; i < queue_len; i++)
        free(queue[i].str);
    free(queue);
    queue = NULL;
    queue_head = queue_len = queue_cap = 0;
    n_faults = 0;
    n_sent = 0;
}

void fake_redis_set(const char *key, const char *value)
{
    redis_entry_t *e = store_find(key, strlen(key));
    entry_set(e ? e : store_add(key, strlen(key)), value, strlen(value));
}

const char *fake_redis_value(const char *key)
{
    redis_entry_t *e = store_find(key, strlen(key));
    return e ? e->value : NULL;
}

int64_t fake_redis_ttl(const char *key)
{
    redis_entry_t *e = store_find(key, strlen(key));
    return e ? e->ttl_ms : -2;
}

int fake_redis_n_sent(void) { return n_sent; }

const char *fake_redis_sent(int i) { return i >= 0 && i < n_sent && i < FAKE_MAX ? sent_log[i] : NULL; }

void fake_redis_forget_sent(void) { n_sent = 0; }

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
    .redis_call = f_redis_call,
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
