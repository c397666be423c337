/* ai-cache: an exact-match response cache for chat completions, in front of
 * ai-proxy in the same chain.
 *
 * access looks the request up (shared dict or Redis) and answers a hit
 * itself, streamed or not as the client asked, whichever way the answer was
 * first produced. A miss goes on to ai-proxy; body_filter keeps a copy of
 * what the client gets and log stores it once the answer is known to be a
 * complete 200, so a failed or cut answer is never replayed.
 *
 * The request's state is found again in later phases through
 * host->req_slot. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cache_answer.h"
#include "cache_key.h"
#include "sluice/host.h"
#include "sluice/plugin.h"

#define DICT "ai-cache"
#define REDIS_PREFIX "ai-cache:"
#define MAX_FIELDS 64
/* Most entries fit here; larger ones are read again into a heap buffer. */
#define SMALL_ENTRY 16384

static const sl_host_t *host;

typedef enum { POLICY_LOCAL, POLICY_REDIS } policy_t;

typedef struct conf {
    int64_t ttl_ms;
    policy_t policy;
    size_t max_entry_bytes;
    const char *bypass_header;
    int cache_streams;
    size_t n_fields;
    const char *fields[MAX_FIELDS];
} conf_t;

typedef enum { BODY_UNKNOWN, BODY_JSON, BODY_SSE, BODY_SKIP } body_kind_t;

/* Per request, in request memory. */
typedef struct req_state {
    const conf_t *c;
    char key[sizeof REDIS_PREFIX + ACACHE_KEY_HEX];
    acache_request_t req;
    int hit;
    body_kind_t kind;
    int complete;
    char *body;               /* the answer as the client got it (malloc) */
    size_t len, cap;
} req_state_t;

static const char schema[] =
    "{\"fields\": {"
    "\"ttl\": {\"type\": \"duration\", \"min\": \"1ms\", \"max\": \"8784h\", \"default\": \"1h\"},"
    "\"policy\": {\"type\": \"string\", \"enum\": [\"local\", \"redis\"], \"default\": \"local\"},"
    "\"max_entry_bytes\": {\"type\": \"size\", \"min\": 64, \"max\": \"1m\", \"default\": \"256k\"},"
    "\"key_fields\": {\"type\": \"array\", \"min\": 1, \"max\": 64,"
    "  \"items\": {\"type\": \"string\", \"min\": 1, \"max\": 128},"
    "  \"default\": [\"model\", \"messages\", \"tools\", \"tool_choice\", \"temperature\", \"top_p\","
    "               \"max_tokens\", \"stop\", \"response_format\", \"seed\"]},"
    "\"bypass_header\": {\"type\": \"string\", \"pattern\": \"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$\","
    "  \"default\": \"X-Sluice-Cache-Bypass\"},"
    "\"cache_streams\": {\"type\": \"boolean\", \"default\": true}"
    "}}";

static int init(const sl_host_t *h)
{
    host = h;
    return 0;
}

static void *configure(const sl_json_t *conf, char *err, size_t errlen)
{
    conf_t *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->ttl_ms = host->json_integer(host->json_get(conf, "ttl"));
    const char *policy = host->json_string(host->json_get(conf, "policy"), NULL);
    c->policy = policy && strcmp(policy, "redis") == 0 ? POLICY_REDIS : POLICY_LOCAL;
    c->max_entry_bytes = (size_t)host->json_integer(host->json_get(conf, "max_entry_bytes"));
    c->bypass_header = host->json_string(host->json_get(conf, "bypass_header"), NULL);
    c->cache_streams = host->json_bool(host->json_get(conf, "cache_streams"));
    const sl_json_t *fields = host->json_get(conf, "key_fields");
    c->n_fields = host->json_len(fields);
    if (c->n_fields > MAX_FIELDS)
        c->n_fields = MAX_FIELDS;
    for (size_t i = 0; i < c->n_fields; i++)
        c->fields[i] = host->json_string(host->json_at(fields, i), NULL);
    if (c->policy == POLICY_REDIS && !host->redis_configured()) {
        snprintf(err, errlen, "policy: redis needs a top-level redis: section");
        free(c);
        return NULL;
    }
    return c;
}

static void unconfigure(void *instance) { free(instance); }

static void state_release(void *arg)
{
    req_state_t *st = arg;
    free(st->body);
}

static req_state_t *state_of(void *instance, sl_req_t *r)
{
    void **slot = host->req_slot(r, instance);
    return slot ? *slot : NULL;
}

static req_state_t *state_new(void *instance, sl_req_t *r)
{
    void **slot = host->req_slot(r, instance);
    req_state_t *st = slot ? host->req_alloc(r, sizeof *st) : NULL;
    if (!st || host->req_cleanup(r, state_release, st) != 0)
        return NULL;
    *slot = st;
    return st;
}

static void set_cache_header(sl_req_t *r, const char *value)
{
    host->resp_set_header(r, "X-Sluice-Cache", value, strlen(value));
}

/* ---- answering a hit -------------------------------------------------------------- */

/* SL_DONE when the client got the stored answer; SL_OK when the entry could
 * not be used (then it is a miss). */
static sl_status_t answer_hit(sl_req_t *r, req_state_t *st, const char *entry, size_t len)
{
    if (!st->req.stream) {
        set_cache_header(r, "HIT");
        host->ctx_set(r, "ai.cache", "hit", 3);
        st->hit = 1;
        return host->respond(r, 200, "application/json", entry, len) == 0 ? SL_DONE : SL_ERROR;
    }
    size_t n = 0;
    char *sse = acache_replay_sse(entry, len, st->req.include_usage, &n);
    if (!sse) {
        host->log(SL_LOG_LEVEL_WARN, "ai-cache: a stored entry is not a chat.completion; ignoring it");
        return SL_OK;
    }
    set_cache_header(r, "HIT");
    host->ctx_set(r, "ai.cache", "hit", 3);
    st->hit = 1;
    host->resp_set_header(r, "Content-Type", "text/event-stream", 17);
    host->resp_set_header(r, "Cache-Control", "no-cache", 8);
    int rc = host->stream_start(r, 200);
    if (rc == 0)
        rc = host->stream_write(r, sse, n);
    free(sse);
    return rc == 0 ? SL_DONE : SL_ERROR;
}

static sl_status_t miss(sl_req_t *r)
{
    set_cache_header(r, "MISS");
    return SL_OK;
}

static sl_status_t lookup_local(sl_req_t *r, req_state_t *st)
{
    char small[SMALL_ENTRY];
    size_t len = 0;
    int found = host->shared_get(DICT, st->key, small, sizeof small, &len);
    if (found == 1)
        return answer_hit(r, st, small, len);
    if (found == 0 || st->c->max_entry_bytes <= sizeof small)
        return miss(r);
    /* -1: too small for this entry (or a dict error, which the retry shows). */
    char *big = malloc(st->c->max_entry_bytes);
    if (!big)
        return miss(r);
    found = host->shared_get(DICT, st->key, big, st->c->max_entry_bytes, &len);
    sl_status_t s = found == 1 ? answer_hit(r, st, big, len) : SL_OK;
    free(big);
    return found == 1 && s != SL_OK ? s : miss(r);
}

static void redis_got(sl_req_t *r, void *arg, const sl_reply_t *reply, const char *err)
{
    req_state_t *st = arg;
    sl_status_t s = SL_OK;
    if (err || !reply || reply->type == SL_REPLY_ERROR)
        host->log(SL_LOG_LEVEL_WARN, "ai-cache: redis GET failed (%s); answering without the cache",
                  err ? err : reply && reply->str ? reply->str : "no reply");
    else if (reply->type == SL_REPLY_STRING)
        s = answer_hit(r, st, reply->str, reply->len);
    host->resume(r, s == SL_OK ? miss(r) : s);
}

/* ---- phases ------------------------------------------------------------------------- */

static int is_chat_completion(sl_req_t *r)
{
    size_t mlen = 0, plen = 0;
    const char *method = host->req_method(r, &mlen);
    const char *path = host->req_path(r, &plen);
    static const char suffix[] = "/chat/completions";
    size_t slen = sizeof suffix - 1;
    return method && mlen == 4 && memcmp(method, "POST", 4) == 0 && path && plen >= slen &&
           memcmp(path + plen - slen, suffix, slen) == 0;
}

static int bypassed(sl_req_t *r, const conf_t *c)
{
    size_t len = 0;
    const char *v = host->req_header(r, c->bypass_header, &len);
    return v && len == 1 && v[0] == '1';
}

static sl_status_t access_phase(void *instance, sl_req_t *r)
{
    const conf_t *c = instance;
    if (!is_chat_completion(r))
        return SL_OK;
    if (bypassed(r, c)) {
        set_cache_header(r, "BYPASS");
        return SL_OK;
    }
    size_t blen = 0;
    const char *body = host->req_body(r, &blen);
    json_t *doc = json_loadb(body, blen, 0, NULL);
    if (!json_is_object(doc)) {   /* ai-proxy answers it with the right 400 */
        json_decref(doc);
        return SL_OK;
    }
    acache_request_t flags;
    acache_request_flags(doc, &flags);
    char hex[ACACHE_KEY_HEX + 1];
    /* The route is part of the key: two routes may map one alias to
     * different models. */
    int rc = acache_key_of(host->req_route(r), doc, c->fields, c->n_fields, hex);
    json_decref(doc);
    if (rc != 0)
        return SL_ERROR;
    if (flags.stream && !c->cache_streams) {
        set_cache_header(r, "BYPASS");
        return SL_OK;
    }
    /* From here on the request is a candidate for storing (see log_phase). */
    req_state_t *st = state_new(instance, r);
    if (!st)
        return SL_ERROR;
    st->c = c;
    st->req = flags;
    snprintf(st->key, sizeof st->key, "%s%s", c->policy == POLICY_REDIS ? REDIS_PREFIX : "", hex);
    if (c->policy == POLICY_LOCAL)
        return lookup_local(r, st);
    const char *argv[] = {"GET", st->key};
    const size_t lens[] = {3, strlen(st->key)};
    if (host->redis_call(r, 2, argv, lens, redis_got, st) != 0) {
        host->log(SL_LOG_LEVEL_WARN, "ai-cache: redis GET could not be sent; answering without the cache");
        return miss(r);
    }
    return SL_YIELD;
}

/* Keeps what the client gets of a 200 answer, up to max_entry_bytes. */
static sl_status_t body_filter(void *instance, sl_req_t *r, sl_body_chunk_t *chunk)
{
    req_state_t *st = state_of(instance, r);
    if (!st || st->hit || st->kind == BODY_SKIP)
        return SL_OK;
    if (st->kind == BODY_UNKNOWN) {
        size_t n = 0;
        const char *ct = host->resp_header(r, "Content-Type", &n);
        if (host->resp_status(r) != 200 || !ct)
            st->kind = BODY_SKIP;
        else if (n >= 17 && strncasecmp(ct, "text/event-stream", 17) == 0)
            st->kind = BODY_SSE;
        else if (n >= 16 && strncasecmp(ct, "application/json", 16) == 0)
            st->kind = BODY_JSON;
        else
            st->kind = BODY_SKIP;
        if (st->kind == BODY_SKIP)
            return SL_OK;
    }
    if (chunk->len > st->c->max_entry_bytes - st->len) {
        st->kind = BODY_SKIP;   /* too big to keep: never stored */
        free(st->body);
        st->body = NULL;
        st->len = st->cap = 0;
        return SL_OK;
    }
    if (chunk->len > 0) {
        if (st->len + chunk->len > st->cap) {
            size_t cap = st->cap ? st->cap : 4096;
            while (cap < st->len + chunk->len)
                cap *= 2;
            char *p = realloc(st->body, cap);
            if (!p) {
                st->kind = BODY_SKIP;
                return SL_OK;
            }
            st->body = p;
            st->cap = cap;
        }
        memcpy(st->body + st->len, chunk->data, chunk->len);
        st->len += chunk->len;
    }
    if (chunk->last)
        st->complete = 1;
    return SL_OK;
}

static long long ctx_number(sl_req_t *r, const char *key, int *known)
{
    size_t n = 0;
    const char *v = host->ctx_get(r, key, &n);
    if (!v || n == 0 || n > 18) {
        *known = 0;
        return 0;
    }
    long long x = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9') {
            *known = 0;
            return 0;
        }
        x = x * 10 + (v[i] - '0');
    }
    return x;
}

static void stored(sl_req_t *r, void *arg, const sl_reply_t *reply, const char *err)
{
    (void)r;
    (void)arg;
    if (err || (reply && reply->type == SL_REPLY_ERROR))
        host->log(SL_LOG_LEVEL_WARN, "ai-cache: redis SET failed (%s)",
                  err ? err : reply->str ? reply->str : "error reply");
}

static void store(sl_req_t *r, const req_state_t *st, const char *entry, size_t len)
{
    if (len > st->c->max_entry_bytes)
        return;
    if (st->c->policy == POLICY_LOCAL) {
        if (host->shared_set(DICT, st->key, entry, len, st->c->ttl_ms) != 0)
            host->log(SL_LOG_LEVEL_WARN, "ai-cache: could not store an answer of %zu bytes in the shared dict",
                      len);
        return;
    }
    char ttl[24];
    int n = snprintf(ttl, sizeof ttl, "%lld", (long long)st->c->ttl_ms);
    const char *argv[] = {"SET", st->key, entry, "PX", ttl};
    const size_t lens[] = {3, strlen(st->key), len, 2, (size_t)n};
    /* The request ends right after log: the command is on its way to Redis
     * already, only the reply is not waited for. */
    if (host->redis_call(r, 5, argv, lens, stored, NULL) != 0)
        host->log(SL_LOG_LEVEL_WARN, "ai-cache: redis SET could not be sent");
}

/* Stores a complete 200 answer; anything else (an error, a cut stream, an
 * answer over the size cap) is left out. */
static void log_phase(void *instance, sl_req_t *r)
{
    req_state_t *st = state_of(instance, r);
    if (!st || st->hit || !st->complete || !st->body || host->resp_status(r) != 200)
        return;
    if (st->kind == BODY_JSON) {
        if (acache_json_answer_ok(st->body, st->len))
            store(r, st, st->body, st->len);
        return;
    }
    if (st->kind != BODY_SSE)
        return;
    acache_usage_t usage = {.known = 1};
    usage.prompt = ctx_number(r, "ai.usage.prompt_tokens", &usage.known);
    usage.completion = ctx_number(r, "ai.usage.completion_tokens", &usage.known);
    int cached_known = 1;
    usage.cached = ctx_number(r, "ai.usage.cached_tokens", &cached_known);
    size_t n = 0;
    char *entry = acache_entry_from_sse(st->body, st->len, &usage, &n);
    if (entry) {
        store(r, st, entry, n);
        free(entry);
    }
}

static const sl_plugin_desc_t desc = {
    .abi_major = SLUICE_ABI_MAJOR,
    .abi_minor = SLUICE_ABI_MINOR,
    .name = "ai-cache",
    .version = "1.0.0",
    .phases = SL_PHASE_ACCESS | SL_PHASE_BODY_FILTER | SL_PHASE_LOG,
    .schema = schema,
    .init = init,
    .configure = configure,
    .unconfigure = unconfigure,
    .access = access_phase,
    .body_filter = body_filter,
    .log = log_phase,
};

__attribute__((visibility("default"))) const sl_plugin_desc_t *SLUICE_PLUGIN_ENTRY(void) { return &desc; }
