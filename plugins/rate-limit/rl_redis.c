/* The token bucket's script and its arguments; see rl_redis.h. The
 * arithmetic mirrors rl_token_bucket() in rl_algo.c line for line (same operations in the same
 * order, so the doubles round alike): change both together.
 *
 * Lua 5.1 prints large numbers in exponent form when concatenated, so every
 * number that becomes part of a key or a command argument goes through
 * string.format('%d'). */
#include "rl_redis.h"

#include <stdio.h>
#include <string.h>

const char rl_redis_script[] =
    "if redis.replicate_commands then pcall(redis.replicate_commands) end\n"
    "local t = redis.call('TIME')\n"
    "local now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
    "local n = tonumber(ARGV[1])\n"
    "local function int(x) return string.format('%d', x) end\n"
    "local function ceil_ms(us) return math.ceil(us / 1000) end\n"
    "local out, writes = {1}, {}\n"
    "for i = 1, n do\n"
    "  local a = 1 + (i - 1) * 4\n"
    "  local interval, burst = tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4])\n"
    "  local key = KEYS[1] .. ':' .. int(i - 1) .. ':tat'\n"
    "  local ok, remaining, reset, retry = 0, 0, 0, 0\n"
    "  local tat = tonumber(redis.call('GET', key)) or 0\n"
    "  local tolerance = burst * interval\n"
    "  local next_tat = math.max(tat, now_us) + interval\n"
    "  if next_tat - now_us <= tolerance then\n"
    "    ok = 1\n"
    "    remaining = math.floor((tolerance - (next_tat - now_us)) / interval)\n"
    "    reset = ceil_ms(next_tat - now_us)\n"
    "    writes[#writes + 1] = {key, int(next_tat), int(reset + 1000)}\n"
    "  else\n"
    "    retry = ceil_ms(next_tat - tolerance - now_us)\n"
    "    reset = retry\n"
    "    out[1] = 0\n"
    "  end\n"
    "  out[#out + 1] = ok\n"
    "  out[#out + 1] = remaining\n"
    "  out[#out + 1] = reset\n"
    "  out[#out + 1] = retry\n"
    "end\n"
    "if out[1] == 1 then\n"
    "  for _, w in ipairs(writes) do redis.call('SET', w[1], w[2], 'PX', w[3]) end\n"
    "end\n"
    "return out\n";

static void add(rl_redis_args_t *a, const char *s, size_t len)
{
    a->argv[a->argc] = s;
    a->lens[a->argc] = len;
    a->argc++;
}

void rl_redis_args(const rl_conf_t *c, const char *prefix, size_t prefix_len, rl_redis_args_t *a)
{
    a->argc = 0;
    add(a, prefix, prefix_len);
    for (int i = 0; i < 1 + 4 * c->n_limits; i++)
        add(a, c->script_numbers[i].s, c->script_numbers[i].len);
}

int rl_redis_parse(const sl_reply_t *reply, int n, rl_verdict_t *out, char *why, size_t whylen)
{
    if (!reply) {
        snprintf(why, whylen, "no reply");
        return -1;
    }
    if (reply->type == SL_REPLY_ERROR) {
        snprintf(why, whylen, "%.*s", (int)(reply->len > 200 ? 200 : reply->len),
                 reply->str ? reply->str : "");
        return -1;
    }
    if (reply->type != SL_REPLY_ARRAY || reply->elements != (size_t)(1 + 4 * n)) {
        snprintf(why, whylen, "unexpected reply from the rate-limit script");
        return -1;
    }
    for (size_t i = 0; i < reply->elements; i++) {
        const sl_reply_t *e = reply->element[i];
        if (!e || e->type != SL_REPLY_INTEGER || e->integer < 0) {
            snprintf(why, whylen, "unexpected reply from the rate-limit script");
            return -1;
        }
    }
    for (int i = 0; i < n; i++) {
        sl_reply_t *const *e = reply->element + 1 + 4 * i;
        out[i].allowed = e[0]->integer == 1;
        out[i].remaining = e[1]->integer;
        out[i].reset_ms = e[2]->integer;
        out[i].retry_ms = e[3]->integer;
    }
    return reply->element[0]->integer == 1;
}
