/* Scripts and their arguments for the redis policy; see aic_redis.h.
 *
 * Lua 5.1 numbers are doubles: micro-dollar amounts stay exact below 2^53,
 * and every number written back goes through HINCRBY (integers only). */
#include "aic_redis.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* KEYS: the budget records. ARGV: estimate, then per key its limit and TTL. */
const char aic_redis_reserve_script[] =
    "local est, n = tonumber(ARGV[1]), #KEYS\n"
    "for i = 1, n do\n"
    "  local spent = tonumber(redis.call('HGET', KEYS[i], 'spent')) or 0\n"
    "  local reserved = tonumber(redis.call('HGET', KEYS[i], 'reserved')) or 0\n"
    "  local left = tonumber(ARGV[2 * i]) - spent - reserved\n"
    "  if left <= 0 or left < est then return i end\n"
    "end\n"
    "for i = 1, n do\n"
    "  redis.call('HINCRBY', KEYS[i], 'reserved', ARGV[1])\n"
    "  if redis.call('PTTL', KEYS[i]) < 0 then redis.call('PEXPIRE', KEYS[i], ARGV[2 * i + 1]) end\n"
    "end\n"
    "return 0\n";

/* KEYS: the records, then the index set. ARGV: actual cost, model ('' when
 * nothing was used), prompt, completion and cached tokens, then per record
 * the reservation to give back, its TTL and whether it is a day record. */
const char aic_redis_settle_script[] =
    "local actual, model = ARGV[1], ARGV[2]\n"
    "local n = #KEYS - 1\n"
    "for i = 1, n do\n"
    "  local key, a = KEYS[i], 5 + (i - 1) * 3\n"
    "  if tonumber(actual) > 0 then redis.call('HINCRBY', key, 'spent', actual) end\n"
    "  if tonumber(ARGV[a + 1]) > 0 and\n"
    "     redis.call('HINCRBY', key, 'reserved', '-' .. ARGV[a + 1]) < 0 then\n"
    "    redis.call('HSET', key, 'reserved', 0)\n"
    "  end\n"
    "  if ARGV[a + 3] == '1' and model ~= '' then\n"
    "    local m = 'm:' .. model .. ':'\n"
    "    redis.call('HINCRBY', key, m .. 'requests', 1)\n"
    "    redis.call('HINCRBY', key, m .. 'prompt_tokens', ARGV[3])\n"
    "    redis.call('HINCRBY', key, m .. 'completion_tokens', ARGV[4])\n"
    "    redis.call('HINCRBY', key, m .. 'cached_tokens', ARGV[5])\n"
    "    redis.call('HINCRBY', key, m .. 'cost', actual)\n"
    "    redis.call('SADD', KEYS[#KEYS], key)\n"
    "  end\n"
    "  if redis.call('EXISTS', key) == 1 and redis.call('PTTL', key) < 0 then\n"
    "    redis.call('PEXPIRE', key, ARGV[a + 2])\n"
    "  end\n"
    "end\n"
    "return 0\n";

/* KEYS: the index set. Returns record, fields, record, fields ...; records
 * that have expired leave the index. */
const char aic_redis_report_script[] =
    "local out = {}\n"
    "for _, key in ipairs(redis.call('SMEMBERS', KEYS[1])) do\n"
    "  local h = redis.call('HGETALL', key)\n"
    "  if #h == 0 then redis.call('SREM', KEYS[1], key)\n"
    "  else out[#out + 1] = key; out[#out + 1] = h end\n"
    "end\n"
    "return out\n";

static void add(aic_redis_args_t *a, const char *s, size_t len)
{
    a->argv[a->argc] = s;
    a->lens[a->argc] = len;
    a->argc++;
}

static void add_str(aic_redis_args_t *a, const char *s) { add(a, s, strlen(s)); }

static void add_num(aic_redis_args_t *a, long long v)
{
    char *slot = a->num[a->argc];
    int n = snprintf(slot, sizeof a->num[0], "%lld", v);
    add(a, slot, (size_t)n);
}

void aic_redis_reserve_args(const aic_reservation_t *res, aic_redis_args_t *a)
{
    a->argc = 0;
    a->nkeys = res->n;
    for (int i = 0; i < res->n; i++)
        add_str(a, res->keys[i]);
    add_num(a, res->estimate);
    for (int i = 0; i < res->n; i++) {
        add_num(a, res->limits[i]);
        add_num(a, res->ttl_ms[i]);
    }
}

void aic_redis_settle_args(const aic_settlement_t *s, aic_redis_args_t *a)
{
    a->argc = 0;
    a->nkeys = s->n + 1;
    add_str(a, "EVAL");
    add_str(a, aic_redis_settle_script);
    add_num(a, a->nkeys);
    for (int i = 0; i < s->n; i++)
        add_str(a, s->keys[i]);
    add_str(a, AIC_REDIS_INDEX);
    add_num(a, s->actual);
    add_str(a, s->model ? s->model : "");
    add_num(a, s->usage.prompt);
    add_num(a, s->usage.completion);
    add_num(a, s->usage.cached);
    for (int i = 0; i < s->n; i++) {
        add_num(a, s->release[i]);
        add_num(a, s->ttl_ms[i]);
        add_num(a, s->is_day[i]);
    }
}

int aic_redis_reserve_parse(const sl_reply_t *reply)
{
    if (!reply || reply->type != SL_REPLY_INTEGER || reply->integer < 0 ||
        reply->integer > AIC_MAX_BUDGETS)
        return -2;
    return (int)reply->integer - 1;
}

static char *dup_reply(const sl_reply_t *r)
{
    char *s = malloc(r->len + 1);
    if (s) {
        memcpy(s, r->str, r->len);
        s[r->len] = '\0';
    }
    return s;
}

/* Fields m:<model>:<stat>; the model may itself hold ':' so the stat is
 * what follows the last one. */
static int stat_index(const char *stat)
{
    static const char *const names[AIC_N_STATS] = {"requests", "prompt_tokens", "completion_tokens",
                                                   "cached_tokens", "cost"};
    for (int i = 0; i < AIC_N_STATS; i++)
        if (strcmp(stat, names[i]) == 0)
            return i;
    return -1;
}

typedef struct model_stats {
    char *model;
    int64_t v[AIC_N_STATS];
} model_stats_t;

static int add_record(aic_report_t *rep, const char *record, const sl_reply_t *h)
{
    model_stats_t *ms = calloc(h->elements / 2 + 1, sizeof *ms);
    size_t n = 0;
    int rc = ms ? 0 : -2;
    for (size_t i = 0; rc == 0 && i + 1 < h->elements; i += 2) {
        const sl_reply_t *f = h->element[i], *v = h->element[i + 1];
        if (f->type != SL_REPLY_STRING || v->type != SL_REPLY_STRING || f->len < 3 ||
            memcmp(f->str, "m:", 2) != 0)
            continue;
        char *field = dup_reply(f), *value = dup_reply(v);
        char *colon = field ? strrchr(field, ':') : NULL;
        int k = colon && colon > field + 1 ? stat_index(colon + 1) : -1;
        if (!field || !value) {
            rc = -2;
        } else if (k >= 0) {
            *colon = '\0';
            size_t j = 0;
            while (j < n && strcmp(ms[j].model, field + 2) != 0)
                j++;
            if (j == n && !(ms[n++].model = strdup(field + 2)))
                rc = -2;
            else
                ms[j].v[k] = strtoll(value, NULL, 10);
        }
        free(field);
        free(value);
    }
    for (size_t j = 0; j < n; j++) {
        if (rc == 0 && aic_report_add(rep, record, ms[j].model, ms[j].v) != 0)
            rc = -2;
        free(ms[j].model);
    }
    free(ms);
    return rc;
}

int aic_redis_report_parse(const sl_reply_t *reply, aic_report_t *rep)
{
    if (!reply || reply->type != SL_REPLY_ARRAY || reply->elements % 2 != 0)
        return -1;
    for (size_t i = 0; i < reply->elements; i += 2) {
        const sl_reply_t *k = reply->element[i], *h = reply->element[i + 1];
        if (k->type != SL_REPLY_STRING || h->type != SL_REPLY_ARRAY)
            return -1;
        char *record = dup_reply(k);
        int rc = record ? add_record(rep, record, h) : -2;
        free(record);
        if (rc != 0)
            return rc;
    }
    return 0;
}
