/* The redis policy's scripts and their arguments; see atl_redis.h.
 *
 * Lua 5.1 may print a large number in exponent form when concatenating, so
 * numbers that become part of a key go through string.format('%d'). */
#include "atl_redis.h"

#include <stdio.h>
#include <string.h>

const char atl_redis_reserve_script[] =
    "if redis.replicate_commands then pcall(redis.replicate_commands) end\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local est, n = tonumber(ARGV[1]), (#ARGV - 1) / 2\n"
    "local out, keys = {0, now}, {}\n"
    "for i = 1, n do\n"
    "  local window, tokens = tonumber(ARGV[2 * i]), tonumber(ARGV[2 * i + 1])\n"
    "  local start = now - now % window\n"
    "  local key = KEYS[1] .. ':' .. string.format('%d', window) .. ':' .. string.format('%d', start)\n"
    "  local used = tonumber(redis.call('GET', key)) or 0\n"
    "  if out[1] == 0 and used + est > tokens then out[1] = i end\n"
    "  keys[i] = {key, start + window - now + 1000}\n"
    "  out[#out + 1] = used\n"
    "end\n"
    "if out[1] == 0 then\n"
    "  for _, k in ipairs(keys) do\n"
    "    redis.call('INCRBY', k[1], est)\n"
    "    if redis.call('PTTL', k[1]) < 0 then redis.call('PEXPIRE', k[1], k[2]) end\n"
    "  end\n"
    "end\n"
    "return out\n";

const char atl_redis_correct_script[] =
    "for _, k in ipairs(KEYS) do\n"
    "  if redis.call('EXISTS', k) == 1 then redis.call('INCRBY', k, ARGV[1]) end\n"
    "end\n"
    "return 0\n";

static void add(atl_redis_args_t *a, const char *s, size_t len)
{
    a->argv[a->argc] = s;
    a->lens[a->argc] = len;
    a->argc++;
}

static void add_number(atl_redis_args_t *a, long long v)
{
    char *slot = a->numbers[a->argc];
    int n = snprintf(slot, sizeof a->numbers[0], "%lld", v);
    add(a, slot, (size_t)n);
}

void atl_redis_reserve_args(const atl_conf_t *c, const char *prefix, int64_t estimate, atl_redis_args_t *a)
{
    a->argc = 0;
    add(a, prefix, strlen(prefix));
    add_number(a, estimate);
    for (int i = 0; i < c->n_limits; i++) {
        add_number(a, c->limits[i].window_ms);
        add_number(a, c->limits[i].tokens);
    }
}

int atl_redis_parse(const sl_reply_t *reply, const atl_conf_t *c, int64_t estimate, atl_verdict_t *out,
                    char *why, size_t whylen)
{
    if (!reply) {
        snprintf(why, whylen, "no reply");
        return -1;
    }
    if (reply->type == SL_REPLY_ERROR) {
        snprintf(why, whylen, "%.*s", (int)(reply->len > 200 ? 200 : reply->len), reply->str ? reply->str : "");
        return -1;
    }
    if (reply->type != SL_REPLY_ARRAY || reply->elements != (size_t)(2 + c->n_limits)) {
        snprintf(why, whylen, "unexpected reply from the ai-token-limit script");
        return -1;
    }
    for (size_t i = 0; i < reply->elements; i++) {
        const sl_reply_t *e = reply->element[i];
        /* Counters may dip below 0 after Redis lost a reservation it is
         * then corrected for; only the verdict and the clock must be sane. */
        if (!e || e->type != SL_REPLY_INTEGER || (i < 2 && e->integer < 0) ||
            (i == 0 && e->integer > c->n_limits)) {
            snprintf(why, whylen, "unexpected reply from the ai-token-limit script");
            return -1;
        }
    }
    out->refused = (int)reply->element[0]->integer - 1;
    out->at_ms = reply->element[1]->integer;
    for (int i = 0; i < c->n_limits; i++) {
        int64_t before = reply->element[2 + i]->integer;
        out->used[i] = out->refused < 0 ? before + estimate : before;
    }
    return 0;
}
