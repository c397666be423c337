/* Config of the rate-limit plugin: the schema the gateway validates against,
 * and the checks it cannot express. */
#include "rl_conf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rl_host.h"
#include "rl_key.h"

/* The key pattern spells out RFC 9110 token characters for header names, so a
 * typo in a key kind is a schema error pointing at the item. */
const char rl_conf_schema[] =
    "{\"fields\": {"
    "\"limits\": {\"type\": \"array\", \"required\": true, \"min\": 1, \"max\": 16,"
    "  \"items\": {\"type\": \"object\", \"fields\": {"
    "    \"count\": {\"type\": \"integer\", \"required\": true, \"min\": 1, \"max\": 1000000000},"
    "    \"window\": {\"type\": \"duration\", \"required\": true, \"min\": \"1ms\", \"max\": \"8784h\"},"
    "    \"burst\": {\"type\": \"integer\", \"min\": 1, \"max\": 1000000000}}}},"
    "\"algorithm\": {\"type\": \"string\", \"default\": \"sliding_window\","
    "  \"enum\": [\"fixed_window\", \"sliding_window\", \"token_bucket\"]},"
    "\"key\": {\"type\": \"array\", \"min\": 1, \"max\": 8, \"default\": [\"consumer\"],"
    "  \"items\": {\"type\": \"string\", \"max\": 135, \"pattern\":"
    "    \"^(consumer|credential|ip|route|global|header:[-!#$%&'*+.^_`|~0-9A-Za-z]+)$\"}},"
    "\"policy\": {\"type\": \"string\", \"enum\": [\"local\", \"redis\"], \"default\": \"local\"},"
    "\"mode\": {\"type\": \"string\", \"enum\": [\"reject\", \"delay\"], \"default\": \"reject\"},"
    "\"max_delay\": {\"type\": \"duration\", \"min\": 0, \"max\": \"10m\", \"default\": \"1s\"},"
    "\"on_redis_error\": {\"type\": \"string\", \"enum\": [\"allow\", \"deny\", \"local\"],"
    "  \"default\": \"allow\"},"
    "\"headers\": {\"type\": \"boolean\", \"default\": true},"
    "\"dict\": {\"type\": \"string\", \"min\": 1, \"max\": 64, \"default\": \"rate-limit\"}}}";

/* Lua numbers are doubles: GCRA times must stay exact integers there. */
#define RL_EXACT_IN_DOUBLE ((int64_t)1 << 53)

static const char *str_of(const sl_json_t *conf, const char *key, const char *fallback)
{
    const char *v = rl_host->json_string(rl_host->json_get(conf, key), NULL);
    return v ? v : fallback;
}

static int64_t int_of(const sl_json_t *obj, const char *key, int64_t fallback)
{
    const sl_json_t *v = rl_host->json_get(obj, key);
    return v && rl_host->json_type(v) == SL_JSON_INTEGER ? rl_host->json_integer(v) : fallback;
}

static int parse_choice(const char *value, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (strcmp(value, names[i]) == 0)
            return i;
    return -1;
}

static int parse_limits(rl_conf_t *c, const sl_json_t *list, char *err, size_t errlen)
{
    size_t n = list ? rl_host->json_len(list) : 0;
    if (n < 1 || n > RL_MAX_LIMITS) {
        snprintf(err, errlen, "limits: between 1 and %d limits are needed", RL_MAX_LIMITS);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        const sl_json_t *item = rl_host->json_at(list, i);
        rl_limit_t *l = &c->limits[i];
        l->count = int_of(item, "count", 0);
        l->window_ms = int_of(item, "window", 0);
        if (l->count < 1 || l->window_ms < 1) {
            snprintf(err, errlen, "limits[%zu]: count and window must be positive", i);
            return -1;
        }
        bool has_burst = rl_host->json_get(item, "burst") != NULL;
        l->burst = int_of(item, "burst", l->count);
        if (has_burst && c->algorithm != RL_TOKEN_BUCKET) {
            snprintf(err, errlen, "limits[%zu].burst: only token_bucket uses burst", i);
            return -1;
        }
        if (l->burst < 1) {
            snprintf(err, errlen, "limits[%zu].burst: must be at least 1", i);
            return -1;
        }
        if (c->algorithm == RL_TOKEN_BUCKET) {
            l->interval_us = l->window_ms * 1000 / l->count;
            if (l->interval_us < 1) {
                snprintf(err, errlen,
                         "limits[%zu]: token_bucket needs at most one request per microsecond", i);
                return -1;
            }
            if (l->burst > RL_EXACT_IN_DOUBLE / l->interval_us) {
                snprintf(err, errlen, "limits[%zu].burst: too large for this window", i);
                return -1;
            }
        }
    }
    c->n_limits = (int)n;
    return 0;
}

static int parse_key(rl_conf_t *c, const sl_json_t *list, char *err, size_t errlen)
{
    static const char *const kinds[] = {"consumer", "credential", "ip", "route", "global"};
    if (!list) {   /* the schema default, for callers that skip the schema */
        c->n_parts = 1;
        c->parts[0].kind = RL_PART_CONSUMER;
        return 0;
    }
    size_t n = rl_host->json_len(list);
    if (n < 1 || n > RL_MAX_KEY_PARTS) {
        snprintf(err, errlen, "key: between 1 and %d parts are needed", RL_MAX_KEY_PARTS);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        size_t len = 0;
        const char *s = rl_host->json_string(rl_host->json_at(list, i), &len);
        rl_key_part_t *p = &c->parts[i];
        int kind = s ? parse_choice(s, kinds, 5) : -1;
        if (kind >= 0) {
            p->kind = (rl_part_kind_t)kind;
        } else if (s && strncmp(s, "header:", 7) == 0 && len > 7 && len - 7 <= RL_HEADER_NAME_MAX) {
            p->kind = RL_PART_HEADER;
            memcpy(p->header, s + 7, len - 7);
            p->header[len - 7] = '\0';
        } else {
            snprintf(err, errlen, "key[%zu]: must be consumer, credential, ip, route, global or "
                                  "header:<Name>", i);
            return -1;
        }
    }
    c->n_parts = (int)n;
    return 0;
}

static void number_text(rl_num_text_t *t, int64_t v)
{
    t->len = rl_format_int(v, t->s);
}

/* Everything a request would otherwise format again and again. */
static void format_constants(rl_conf_t *c)
{
    rl_num_text_t *n = c->script_numbers;
    number_text(n++, c->n_limits);
    for (int i = 0; i < c->n_limits; i++) {
        const rl_limit_t *l = &c->limits[i];
        number_text(&c->count_text[i], l->count);
        number_text(n++, l->count);
        number_text(n++, l->window_ms);
        number_text(n++, l->interval_us);
        number_text(n++, l->burst);
    }
}

rl_conf_t *rl_conf_new(const sl_json_t *conf, char *err, size_t errlen)
{
    static const char *const algorithms[] = {"fixed_window", "sliding_window", "token_bucket"};
    static const char *const policies[] = {"local", "redis"};
    static const char *const modes[] = {"reject", "delay"};
    static const char *const on_error[] = {"allow", "deny", "local"};
    rl_conf_t *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    int algorithm = parse_choice(str_of(conf, "algorithm", "sliding_window"), algorithms, 3);
    int policy = parse_choice(str_of(conf, "policy", "local"), policies, 2);
    int mode = parse_choice(str_of(conf, "mode", "reject"), modes, 2);
    int on_err = parse_choice(str_of(conf, "on_redis_error", "allow"), on_error, 3);
    const char *dict = str_of(conf, "dict", "rate-limit");
    const sl_json_t *headers = rl_host->json_get(conf, "headers");
    if (algorithm < 0 || policy < 0 || mode < 0 || on_err < 0) {
        snprintf(err, errlen, "algorithm, policy, mode or on_redis_error has an unknown value");
        goto fail;
    }
    c->algorithm = (rl_algorithm_t)algorithm;
    c->policy = (rl_policy_t)policy;
    c->mode = (rl_mode_t)mode;
    c->on_redis_error = (rl_on_error_t)on_err;
    c->max_delay_ms = int_of(conf, "max_delay", 1000);
    c->headers = headers ? rl_host->json_bool(headers) != 0 : true;
    if (dict[0] == '\0' || strlen(dict) > RL_DICT_NAME_MAX) {
        snprintf(err, errlen, "dict: must be 1 to %d characters", RL_DICT_NAME_MAX);
        goto fail;
    }
    strcpy(c->dict, dict);
    if (c->max_delay_ms < 0) {
        snprintf(err, errlen, "max_delay: must not be negative");
        goto fail;
    }
    if (parse_limits(c, rl_host->json_get(conf, "limits"), err, errlen) != 0 ||
        parse_key(c, rl_host->json_get(conf, "key"), err, errlen) != 0)
        goto fail;
    if (c->policy == RL_POLICY_REDIS && !rl_host->redis_configured()) {
        snprintf(err, errlen, "policy: redis needs a top-level redis: section");
        goto fail;
    }
    format_constants(c);
    return c;
fail:
    free(c);
    return NULL;
}

void rl_conf_free(rl_conf_t *c)
{
    free(c);
}

const char *rl_conf_requires(const rl_conf_t *c)
{
    for (int i = 0; i < c->n_parts; i++)
        if (c->parts[i].kind == RL_PART_CONSUMER || c->parts[i].kind == RL_PART_CREDENTIAL)
            return "consumer";
    return NULL;
}
