/* Window counters in Redis with plain commands; see rl_redis_window.h. */
#include "rl_redis_window.h"

#include <stdio.h>
#include <string.h>

#include "rl_host.h"
#include "rl_key.h"

static int64_t window_start(const rl_redis_window_t *w, int limit)
{
    return rl_window_start_ms(w->now_ms, w->conf->limits[limit].window_ms);
}

/* Counters written by this plugin hold plain positive decimals; anything
 * else reads as empty, as an expired counter would (the local policy does
 * the same). */
static int64_t counter_value(const sl_reply_t *reply)
{
    if (reply->type != SL_REPLY_STRING || reply->len == 0 || reply->len > 18)
        return 0;
    int64_t v = 0;
    for (size_t i = 0; i < reply->len; i++) {
        if (reply->str[i] < '0' || reply->str[i] > '9')
            return 0;
        v = v * 10 + (reply->str[i] - '0');
    }
    return v;
}

static void fail(rl_redis_window_t *w, const char *why, size_t len)
{
    if (w->failed)
        return;
    w->failed = true;
    snprintf(w->why, sizeof w->why, "%.*s", (int)(len > 150 ? 150 : len), why);
}

static void on_reply(sl_req_t *r, void *arg, const sl_reply_t *reply, const char *err)
{
    rl_window_tag_t *tag = arg;
    rl_redis_window_t *w = tag->w;
    if (err) {
        fail(w, err, strlen(err));
        w->lost[tag->limit] |= !tag->previous;
    } else if (reply->type == SL_REPLY_ERROR) {
        fail(w, reply->str ? reply->str : "", reply->len);
    } else if (tag->previous) {
        w->prev[tag->limit] = counter_value(reply);
    } else if (reply->type == SL_REPLY_INTEGER) {
        /* Below 1 only when a take-back arrived after its counter had
         * expired and made it anew, below zero and without expiry: this
         * request then counts as the window's first, which gives the counter
         * its expiry back. */
        w->counted[tag->limit] = true;
        w->curr[tag->limit] = reply->integer > 0 ? reply->integer - 1 : 0;
    } else {
        const char *why = "unexpected reply to INCR";
        fail(w, why, strlen(why));
    }
    if (--w->waiting == 0)
        w->done(r, w, w->done_arg);
}

static bool send_counter_command(rl_redis_window_t *w, sl_req_t *r, rl_window_tag_t *tag,
                                 const char *cmd, size_t cmd_len, const rl_counter_key_t *k)
{
    const char *argv[] = {cmd, k->text};
    const size_t lens[] = {cmd_len, k->len};
    if (rl_host->redis_call(r, 2, argv, lens, on_reply, tag) != 0) {
        const char *why = "could not send the command";
        fail(w, why, strlen(why));
        return false;
    }
    w->waiting++;
    return true;
}

int rl_redis_window_send(rl_redis_window_t *w, const rl_conf_t *c, sl_req_t *r,
                         const char *prefix, size_t prefix_len, int64_t now_us,
                         rl_window_done_cb done, void *arg)
{
    w->conf = c;
    w->now_ms = now_us / 1000;
    w->waiting = 0;
    w->failed = false;
    w->why[0] = '\0';
    w->done = done;
    w->done_arg = arg;
    /* All limits, not only those the loop below reaches: after a failed
     * send, finish() must not see an earlier check's state (a delayed
     * request checks again with the same w). */
    memset(w->counted, 0, sizeof w->counted);
    memset(w->lost, 0, sizeof w->lost);
    memset(w->curr, 0, sizeof w->curr);
    memset(w->prev, 0, sizeof w->prev);
    rl_counter_key_t k;
    rl_counter_key_init(&k, prefix, prefix_len);
    bool ok = true;
    for (int i = 0; ok && i < c->n_limits; i++) {
        int64_t start = window_start(w, i);
        rl_window_tag_t *tag = &w->tags[2 * i];
        *tag = (rl_window_tag_t){.w = w, .limit = i, .previous = false};
        rl_counter_key_at(&k, i, start);
        ok = send_counter_command(w, r, tag, "INCR", 4, &k);
        if (ok && c->algorithm == RL_SLIDING_WINDOW) {
            tag = &w->tags[2 * i + 1];
            *tag = (rl_window_tag_t){.w = w, .limit = i, .previous = true};
            rl_counter_key_at(&k, i, start - c->limits[i].window_ms);
            ok = send_counter_command(w, r, tag, "GET", 3, &k);
        }
    }
    /* Replies come from the event loop, never during a send, so the count
     * is complete before the first one can arrive. After a failed send the
     * commands already out still finish the check (as failed). */
    return w->waiting > 0 ? 0 : -1;
}

static void ignore_reply(sl_req_t *r, void *arg, const sl_reply_t *reply, const char *err)
{
    (void)r, (void)arg, (void)reply, (void)err;
}

static void follow_up(sl_req_t *r, const char *cmd, size_t cmd_len, const rl_counter_key_t *k,
                      const char *ttl, size_t ttl_len)
{
    const char *argv[] = {cmd, k->text, ttl};
    const size_t lens[] = {cmd_len, k->len, ttl_len};
    /* The command is on its way once queued: a request that ends before the
     * reply only drops the (empty) callback. */
    rl_host->redis_call(r, ttl ? 3 : 2, argv, lens, ignore_reply, NULL);
}

int rl_redis_window_finish(rl_redis_window_t *w, sl_req_t *r, const char *prefix,
                           size_t prefix_len, rl_verdict_t *out)
{
    const rl_conf_t *c = w->conf;
    int all = w->failed ? -1 : 1;
    for (int i = 0; all >= 0 && i < c->n_limits; i++) {
        const rl_limit_t *l = &c->limits[i];
        out[i] = c->algorithm == RL_FIXED_WINDOW
                     ? rl_fixed_window(l, w->curr[i], w->now_ms)
                     : rl_sliding_window(l, w->prev[i], w->curr[i], w->now_ms);
        if (!out[i].allowed)
            all = 0;
    }
    rl_counter_key_t k;
    rl_counter_key_init(&k, prefix, prefix_len);
    for (int i = 0; i < c->n_limits; i++) {
        /* An INCR without an answer (a timeout, the connection lost) may
         * still have created its counter, and nothing else would give it an
         * expiry: set it anyway (on a missing key PEXPIRE does nothing). Its
         * count stays, as nobody knows whether it landed. */
        if (!w->counted[i] && !w->lost[i])
            continue;
        if (w->counted[i] && w->curr[i] != 0 && all == 1)
            continue;   /* nothing to follow up */
        const rl_limit_t *l = &c->limits[i];
        int64_t start = window_start(w, i);
        rl_counter_key_at(&k, i, start);
        if (w->lost[i] || w->curr[i] == 0) {
            char ttl[24];
            size_t ttl_len = rl_format_int(rl_counter_ttl_ms(l, c->algorithm, w->now_ms), ttl);
            follow_up(r, "PEXPIRE", 7, &k, ttl, ttl_len);
        }
        if (w->counted[i] && all != 1)
            follow_up(r, "DECR", 4, &k, NULL, 0);
    }
    return all;
}
