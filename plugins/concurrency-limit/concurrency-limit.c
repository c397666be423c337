/* concurrency-limit: at most `max` requests in flight per key (route,
 * consumer, upstream, or all requests), from the access phase until the
 * client has the response's last byte. Up to `queue` more wait, each at
 * most `queue_timeout`, for a slot; anyone beyond that gets 503 with
 * Retry-After.
 *
 * The counts live in the shared dictionary "concurrency-limit", so every
 * worker of this process sees the same numbers (not other nodes: the limit
 * is per gateway process). A slot is taken with one atomic increment that
 * is undone when it overshoots, so two workers never both get the last
 * slot. Waiting requests poll for a slot: there is no wake-up between
 * workers, and polling keeps a waiter cheap to cancel. They are therefore
 * not served in arrival order. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sluice/host.h"
#include "sluice/plugin.h"

#define DICT "concurrency-limit"
#define POLL_FIRST_MS 10
#define POLL_MAX_MS 50

static const sl_host_t *host;

typedef enum { KEY_ROUTE, KEY_CONSUMER, KEY_UPSTREAM, KEY_GLOBAL } key_kind_t;

typedef struct limit {
    int64_t max;
    int64_t queue;
    int64_t queue_timeout_ms;
    key_kind_t key;
} limit_t;

typedef enum { SLOT_NONE, SLOT_WAITING, SLOT_HELD } slot_state_t;

/* Per request and instance, in request memory. The cleanup gives back what
 * the request still holds, however it ends: answered, failed, or left by a
 * client while it waited. */
typedef struct slot {
    const limit_t *limit;
    slot_state_t state;
    char *running_key;
    char *waiting_key;
    int64_t deadline_ms;
    uint64_t poll_ms;
} slot_t;

static int init(const sl_host_t *h)
{
    host = h;
    return 0;
}

static void *configure(const sl_json_t *conf, char *err, size_t errlen)
{
    limit_t *l = calloc(1, sizeof *l);
    if (!l) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    l->max = host->json_integer(host->json_get(conf, "max"));
    l->queue = host->json_integer(host->json_get(conf, "queue"));
    l->queue_timeout_ms = host->json_integer(host->json_get(conf, "queue_timeout"));
    const char *key = host->json_string(host->json_get(conf, "key"), NULL);
    l->key = !key || strcmp(key, "route") == 0 ? KEY_ROUTE
             : strcmp(key, "consumer") == 0    ? KEY_CONSUMER
             : strcmp(key, "upstream") == 0    ? KEY_UPSTREAM
                                               : KEY_GLOBAL;
    return l;
}

static void unconfigure(void *instance) { free(instance); }

static const char *requires_caps(void *instance)
{
    const limit_t *l = instance;
    return l->key == KEY_CONSUMER ? "consumer" : NULL;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* "route:<name>", "consumer:<name>", "upstream:<name>" or "global", then
 * ":running" or ":waiting". A request without a consumer (an auth plugin
 * that let an anonymous request through) counts as the consumer "", one on
 * a route without an upstream (its plugins answer) as the upstream "". */
static char *counter_key(sl_req_t *r, const limit_t *l, const char *which)
{
    const char *kind = l->key == KEY_ROUTE      ? "route:"
                       : l->key == KEY_CONSUMER ? "consumer:"
                       : l->key == KEY_UPSTREAM ? "upstream:"
                                                : "global";
    const char *name = "";
    size_t nlen = 0;
    if (l->key == KEY_ROUTE || l->key == KEY_UPSTREAM) {
        name = l->key == KEY_ROUTE ? host->req_route(r) : host->req_upstream(r);
        nlen = name ? strlen(name) : 0;
    } else if (l->key == KEY_CONSUMER) {
        name = host->ctx_get(r, "consumer", &nlen);
    }
    if (!name)
        nlen = 0;
    size_t cap = strlen(kind) + nlen + strlen(which) + 2;
    char *key = host->req_alloc(r, cap);
    if (key)
        snprintf(key, cap, "%s%.*s:%s", kind, (int)nlen, name ? name : "", which);
    return key;
}

typedef enum { TAKE_OK, TAKE_FULL, TAKE_ERROR } take_t;

/* +1 on the counter unless that passes `limit`. */
static take_t take(const char *key, int64_t limit)
{
    int64_t n = 0;
    if (host->shared_incr(DICT, key, 1, 0, 0, &n) != 0)
        return TAKE_ERROR;
    if (n <= limit)
        return TAKE_OK;
    host->shared_incr(DICT, key, -1, 0, 0, NULL);
    return TAKE_FULL;
}

/* The dictionary failed (out of memory): the request goes on uncounted
 * rather than the gateway refusing all traffic over its own trouble. */
static void count_failed(sl_req_t *r, const char *key)
{
    host->log(SL_LOG_LEVEL_WARN, "concurrency-limit: request %s: cannot count %s; letting it through",
              host->req_id(r), key);
}

static void give_back(void *arg)
{
    slot_t *s = arg;
    if (s->state == SLOT_HELD)
        host->shared_incr(DICT, s->running_key, -1, 0, 0, NULL);
    else if (s->state == SLOT_WAITING)
        host->shared_incr(DICT, s->waiting_key, -1, 0, 0, NULL);
    s->state = SLOT_NONE;
}

static void refuse(sl_req_t *r, const char *message)
{
    host->respond_error(r, 503, "concurrency_limit", message);
    host->resp_set_header(r, "Retry-After", "1", 1);
}

static void poll_slot(sl_req_t *r, void *arg)
{
    slot_t *s = arg;
    take_t t = take(s->running_key, s->limit->max);
    if (t != TAKE_FULL) {
        give_back(s);
        if (t == TAKE_OK)
            s->state = SLOT_HELD;
        else
            count_failed(r, s->running_key);
        host->resume(r, SL_OK);
        return;
    }
    int64_t left = s->deadline_ms - now_ms();
    if (left <= 0) {
        give_back(s);
        refuse(r, "timed out waiting for a free slot: too many requests in flight");
        host->resume(r, SL_DONE);
        return;
    }
    /* Start eager (a slot often frees within a few ms), then back off so
     * a long queue does not spin the worker. */
    uint64_t wait = s->poll_ms < (uint64_t)left ? s->poll_ms : (uint64_t)left;
    s->poll_ms = s->poll_ms * 2 > POLL_MAX_MS ? POLL_MAX_MS : s->poll_ms * 2;
    if (host->sleep(r, wait, poll_slot, s) != 0) {
        give_back(s);
        host->resume(r, SL_ERROR);
    }
}

static sl_status_t access_phase(void *instance, sl_req_t *r)
{
    const limit_t *l = instance;
    slot_t *s = host->req_alloc(r, sizeof *s);
    if (!s)
        return SL_ERROR;
    s->limit = l;
    s->running_key = counter_key(r, l, "running");
    s->waiting_key = counter_key(r, l, "waiting");
    if (!s->running_key || !s->waiting_key || host->req_cleanup(r, give_back, s) != 0)
        return SL_ERROR;
    take_t t = take(s->running_key, l->max);
    if (t != TAKE_FULL) {
        if (t == TAKE_OK)
            s->state = SLOT_HELD;
        else
            count_failed(r, s->running_key);
        return SL_OK;
    }
    t = take(s->waiting_key, l->queue);
    if (t == TAKE_FULL) {
        refuse(r, "too many requests in flight");
        return SL_DONE;
    }
    if (t == TAKE_ERROR) {
        count_failed(r, s->waiting_key);
        return SL_OK;
    }
    s->state = SLOT_WAITING;
    s->deadline_ms = now_ms() + l->queue_timeout_ms;
    s->poll_ms = POLL_FIRST_MS;
    uint64_t first = l->queue_timeout_ms < POLL_FIRST_MS ? (uint64_t)l->queue_timeout_ms : POLL_FIRST_MS;
    if (host->sleep(r, first, poll_slot, s) != 0)
        return SL_ERROR;   /* the cleanup gives the waiting place back */
    return SL_YIELD;
}

static const sl_plugin_desc_t desc = {
    .abi_major = SLUICE_ABI_MAJOR,
    .abi_minor = SLUICE_ABI_MINOR,
    .name = "concurrency-limit",
    .version = "1.0.0",
    .phases = SL_PHASE_ACCESS,
    .schema = "{\"fields\": {"
              "\"max\": {\"type\": \"integer\", \"required\": true, \"min\": 1},"
              "\"key\": {\"type\": \"string\", \"enum\": [\"route\", \"consumer\", \"upstream\", \"global\"],"
              " \"default\": \"route\"},"
              "\"queue\": {\"type\": \"integer\", \"min\": 0, \"default\": 0},"
              "\"queue_timeout\": {\"type\": \"duration\", \"min\": 0, \"max\": \"1h\", \"default\": \"1s\"}}}",
    .init = init,
    .configure = configure,
    .requires = requires_caps,
    .unconfigure = unconfigure,
    .access = access_phase,
};

__attribute__((visibility("default"))) const sl_plugin_desc_t *SLUICE_PLUGIN_ENTRY(void)
{
    return &desc;
}
