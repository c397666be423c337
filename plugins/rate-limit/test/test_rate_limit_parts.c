/* Unit tests of the rate-limit plugin's parts (everything but the
 * descriptor and the request flow, which the black-box specs cover):
 * arithmetic, keys, config, headers and answers, the token bucket script's
 * arguments and replies, the local policy over a stand-in dict, the script
 * itself run in LuaJIT against the C arithmetic, and the window algorithms'
 * plain Redis commands over a fake Redis against the local policy. */
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_host.h"
#include "lua_twin.h"
#include "rl_algo.h"
#include "rl_answer.h"
#include "rl_conf.h"
#include "rl_host.h"
#include "rl_key.h"
#include "rl_local.h"
#include "rl_redis.h"
#include "rl_redis_window.h"

const sl_host_t *rl_host;

static int passed, failed;

#define CHECK_INT(expected, actual)                                                              \
    do {                                                                                         \
        long long e_ = (long long)(expected), a_ = (long long)(actual);                          \
        if (e_ == a_) {                                                                          \
            passed++;                                                                            \
        } else {                                                                                 \
            failed++;                                                                            \
            fprintf(stderr, "%s:%d: expected %lld, got %lld (%s)\n", __FILE__, __LINE__, e_, a_, \
                    #actual);                                                                    \
        }                                                                                        \
    } while (0)

#define CHECK_STR(expected, actual)                                                              \
    do {                                                                                         \
        const char *e_ = (expected), *a_ = (actual);                                             \
        if ((!e_ && !a_) || (e_ && a_ && strcmp(e_, a_) == 0)) {                                 \
            passed++;                                                                            \
        } else {                                                                                 \
            failed++;                                                                            \
            fprintf(stderr, "%s:%d: expected \"%s\", got \"%s\" (%s)\n", __FILE__, __LINE__,     \
                    e_ ? e_ : "(null)", a_ ? a_ : "(null)", #actual);                            \
        }                                                                                        \
    } while (0)

#define CHECK_VERDICT(v, allowed_, remaining_, reset_, retry_)                                   \
    do {                                                                                         \
        CHECK_INT(allowed_, (v).allowed);                                                        \
        CHECK_INT(remaining_, (v).remaining);                                                    \
        CHECK_INT(reset_, (v).reset_ms);                                                         \
        CHECK_INT(retry_, (v).retry_ms);                                                         \
    } while (0)

/* ---- arithmetic --------------------------------------------------------- */

static void test_fixed_window(void)
{
    rl_limit_t l = {.count = 3, .window_ms = 1000};
    CHECK_INT(18000000, rl_window_start_ms(18000017, 3600000));
    CHECK_INT(0, rl_window_start_ms(999, 1000));
    CHECK_VERDICT(rl_fixed_window(&l, 0, 10000250), 1, 2, 750, 0);
    CHECK_VERDICT(rl_fixed_window(&l, 2, 10000250), 1, 0, 750, 0);
    CHECK_VERDICT(rl_fixed_window(&l, 3, 10000250), 0, 0, 750, 750);
    CHECK_VERDICT(rl_fixed_window(&l, 7, 10000999), 0, 0, 1, 1);
    CHECK_VERDICT(rl_fixed_window(&l, 0, 10001000), 1, 2, 1000, 0);
}

static void test_sliding_window(void)
{
    rl_limit_t l = {.count = 4, .window_ms = 1000};
    /* 250 ms into the window: the previous one weighs 3/4 */
    CHECK_VERDICT(rl_sliding_window(&l, 4, 0, 5000250), 1, 0, 750, 0);
    CHECK_VERDICT(rl_sliding_window(&l, 3, 0, 5000250), 1, 0, 750, 0);
    CHECK_VERDICT(rl_sliding_window(&l, 2, 0, 5000250), 1, 1, 750, 0);
    CHECK_VERDICT(rl_sliding_window(&l, 0, 0, 5000250), 1, 3, 750, 0);
    /* 4 * 0.75 + 1 + 1 > 4: fits once the previous share is 2, at 500 ms */
    CHECK_VERDICT(rl_sliding_window(&l, 4, 1, 5000250), 0, 0, 250, 250);
    /* the current window alone is full: next window, once 4 * (1 - e) <= 3 */
    CHECK_VERDICT(rl_sliding_window(&l, 0, 4, 5000250), 0, 0, 1000, 1000);
    rl_limit_t one = {.count = 1, .window_ms = 1000};
    CHECK_VERDICT(rl_sliding_window(&one, 0, 1, 5000250), 0, 0, 1750, 1750);
    CHECK_VERDICT(rl_sliding_window(&one, 1, 0, 5000250), 0, 0, 750, 750);
    CHECK_VERDICT(rl_sliding_window(&one, 1, 0, 5000000), 0, 0, 1000, 1000);
    /* the previous window still weighs a little at its very end */
    CHECK_VERDICT(rl_sliding_window(&one, 1, 0, 5000999), 0, 0, 1, 1);
}

static void test_token_bucket(void)
{
    rl_limit_t l = {.count = 3, .window_ms = 3000, .burst = 3, .interval_us = 1000000};
    int64_t now = 50000000000LL, tat = -1;
    CHECK_VERDICT(rl_token_bucket(&l, 0, now, &tat), 1, 2, 1000, 0);
    CHECK_INT(now + 1000000, tat);
    CHECK_VERDICT(rl_token_bucket(&l, now - 5000000, now, &tat), 1, 2, 1000, 0);
    CHECK_INT(now + 1000000, tat);
    CHECK_VERDICT(rl_token_bucket(&l, now + 1000000, now, &tat), 1, 1, 2000, 0);
    CHECK_VERDICT(rl_token_bucket(&l, now + 2000000, now, &tat), 1, 0, 3000, 0);
    CHECK_INT(now + 3000000, tat);
    tat = -1;
    CHECK_VERDICT(rl_token_bucket(&l, now + 3000000, now, &tat), 0, 0, 1000, 1000);
    CHECK_INT(-1, tat);
    CHECK_VERDICT(rl_token_bucket(&l, now + 2999999, now, &tat), 0, 0, 1000, 1000);
    CHECK_VERDICT(rl_token_bucket(&l, now + 2000001, now, &tat), 0, 0, 1, 1);
    rl_limit_t strict = {.count = 3, .window_ms = 3000, .burst = 1, .interval_us = 1000000};
    CHECK_VERDICT(rl_token_bucket(&strict, now + 500000, now, &tat), 0, 0, 500, 500);
    CHECK_VERDICT(rl_token_bucket(&strict, now, now, &tat), 1, 0, 1000, 0);
    CHECK_INT(0, rl_us_to_ms_ceil(0));
    CHECK_INT(1, rl_us_to_ms_ceil(1));
    CHECK_INT(1, rl_us_to_ms_ceil(1000));
    CHECK_INT(2, rl_us_to_ms_ceil(1001));
}

/* ---- keys ---------------------------------------------------------------- */

static void test_key_encoding(void)
{
    char out[RL_PREFIX_MAX + 1];
    const char *values[3] = {"alice", NULL, "a|b{c}%d e"};
    size_t lens[3] = {5, 0, 10};
    CHECK_INT(38, rl_key_prefix_from("main", values, lens, 3, out));
    CHECK_STR("rl:{main|alice|-|a%7Cb%7Bc%7D%25d%20e}", out);

    const char *v6[1] = {"::1"};
    size_t l6[1] = {3};
    rl_key_prefix_from("main", v6, l6, 1, out);
    CHECK_STR("rl:{main|::1}", out);

    const char *empty[1] = {""};
    size_t lempty[1] = {0};
    rl_key_prefix_from(NULL, empty, lempty, 1, out);
    CHECK_STR("rl:{-|}", out);

    char bytes[2] = {'\x01', '\xff'};
    const char *raw[1] = {bytes};
    size_t lraw[1] = {2};
    rl_key_prefix_from("r", raw, lraw, 1, out);
    CHECK_STR("rl:{r|%01%FF}", out);

    char longv[201];
    memset(longv, 'x', 200);
    longv[200] = '\0';
    const char *lv[1] = {longv};
    size_t ll[1] = {200};
    rl_key_prefix_from("main", lv, ll, 1, out);
    CHECK_STR("rl:{main|#aa20c23e3201834050679e1d88941b9a6fed0557c9a705cb2c315e2e63fd486d}", out);

    /* exactly RL_PART_MAX once encoded stays readable; one more is hashed */
    char edge[RL_PART_MAX + 1];
    memset(edge, 'y', RL_PART_MAX);
    edge[RL_PART_MAX] = '\0';
    const char *ev[1] = {edge};
    size_t el[1] = {RL_PART_MAX};
    CHECK_INT(4 + 2 + RL_PART_MAX + 1, rl_key_prefix_from("r", ev, el, 1, out));
    edge[RL_PART_MAX - 1] = ' ';   /* now 127 + 3 encoded bytes */
    CHECK_INT(4 + 2 + 65 + 1, rl_key_prefix_from("r", ev, el, 1, out));
    CHECK_INT('#', out[6]);

    /* the longest possible prefix fits the buffer */
    const char *many[RL_MAX_KEY_PARTS];
    size_t mlen[RL_MAX_KEY_PARTS];
    memset(edge, 'y', RL_PART_MAX);
    for (int i = 0; i < RL_MAX_KEY_PARTS; i++) {
        many[i] = edge;
        mlen[i] = RL_PART_MAX;
    }
    CHECK_INT(RL_PREFIX_MAX, rl_key_prefix_from(edge, many, mlen, RL_MAX_KEY_PARTS, out));

    char key[RL_KEY_MAX + 1];
    CHECK_INT(27, rl_key_counter("rl:{main|a}", 2, 1700000000000LL, key));
    CHECK_STR("rl:{main|a}:2:1700000000000", key);
    rl_key_counter("rl:{main|a}", 0, -1, key);
    CHECK_STR("rl:{main|a}:0:tat", key);
    CHECK_INT(11, rl_key_counter("rl:{x}", 15, 0, key));
    CHECK_STR("rl:{x}:15:0", key);

    /* The tail alone, as the local policy rewrites it after the prefix */
    char tail[32];
    CHECK_INT(16, rl_key_counter_suffix(3, 1700000000000LL, tail));
    CHECK_STR(":3:1700000000000", tail);
    CHECK_INT(7, rl_key_counter_suffix(12, -1, tail));
    CHECK_STR(":12:tat", tail);
    CHECK_INT(22, rl_key_counter_suffix(0, INT64_MAX, tail));
    CHECK_STR(":0:9223372036854775807", tail);
}

static void test_format_int(void)
{
    char out[24];
    CHECK_INT(1, rl_format_int(0, out));
    CHECK_STR("0", out);
    CHECK_INT(1, rl_format_int(7, out));
    CHECK_STR("7", out);
    CHECK_INT(2, rl_format_int(-1, out));
    CHECK_STR("-1", out);
    CHECK_INT(10, rl_format_int(1000000000, out));
    CHECK_STR("1000000000", out);
    CHECK_INT(19, rl_format_int(INT64_MAX, out));
    CHECK_STR("9223372036854775807", out);
    CHECK_INT(20, rl_format_int(INT64_MIN, out));
    CHECK_STR("-9223372036854775808", out);
    /* digit pairs: every length and every pair position against snprintf */
    int wrong = 0;
    char want[32];
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        int64_t v = i < 100000 ? i - 50000 : (int64_t)(x >> (i % 64));
        snprintf(want, sizeof want, "%lld", (long long)v);
        size_t n = rl_format_int(v, out);
        wrong += n != strlen(want) || strcmp(out, want) != 0;
    }
    CHECK_INT(0, wrong);
}

/* The key tail reuses a thread's recent window-start texts: starts that come
 * back after others (more than the cache holds) still read right. */
static void test_counter_suffix_cache(void)
{
    char out[40];
    int wrong_suffixes = 0;
    for (int round = 0; round < 3; round++) {
        for (int64_t k = 0; k < 7; k++) {
            int64_t start = 1700000000000LL + k * 60000;
            char want[40];
            snprintf(want, sizeof want, ":%d:%lld", (int)k, (long long)start);
            size_t n = rl_key_counter_suffix((int)k, start, out);
            wrong_suffixes += n != strlen(want) || strcmp(out, want) != 0;
        }
    }
    CHECK_INT(0, wrong_suffixes);
    CHECK_INT(6, rl_key_counter_suffix(3, -1, out));
    CHECK_STR(":3:tat", out);
}

static json_t *parse(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);
    if (!j) {
        fprintf(stderr, "bad test JSON: %s\n", e.text);
        abort();
    }
    return j;
}

static void test_key_from_request(void)
{
    json_t *j = parse("{\"limits\": [{\"count\": 1, \"window\": 1000}],"
                      " \"key\": [\"consumer\", \"credential\", \"ip\", \"route\", \"global\","
                      " \"header:X-User\"]}");
    char err[256] = "";
    rl_conf_t *c = rl_conf_new((const sl_json_t *)j, err, sizeof err);
    CHECK_STR("", err);
    struct sl_req r = {.route = "api", .client_ip = "10.0.0.1"};
    r.ctx_keys[0] = "consumer";
    r.ctx_values[0] = "alice";
    r.n_ctx = 1;
    r.header_names[0] = "x-user";
    r.header_values[0] = "bob";
    r.n_headers = 1;
    char out[RL_PREFIX_MAX + 1];
    rl_key_prefix(c, &r, out);
    CHECK_STR("rl:{api|alice|-|10.0.0.1|api|*|bob}", out);
    r.n_headers = 0;
    r.ctx_keys[1] = "credential";
    r.ctx_values[1] = "key-auth:0123456789ab";
    r.n_ctx = 2;
    rl_key_prefix(c, &r, out);
    CHECK_STR("rl:{api|alice|key-auth:0123456789ab|10.0.0.1|api|*|-}", out);
    rl_conf_free(c);
    json_decref(j);
}

/* ---- config -------------------------------------------------------------- */

static rl_conf_t *conf_of(const char *text, char *err, size_t errlen)
{
    json_t *j = parse(text);
    err[0] = '\0';
    rl_conf_t *c = rl_conf_new((const sl_json_t *)j, err, errlen);
    json_decref(j);   /* the instance copies what it keeps */
    return c;
}

static void test_conf_defaults(void)
{
    char err[256];
    rl_conf_t *c = conf_of("{\"limits\": [{\"count\": 5, \"window\": 1000}]}", err, sizeof err);
    CHECK_STR("", err);
    CHECK_INT(RL_SLIDING_WINDOW, c->algorithm);
    CHECK_INT(1, c->n_limits);
    CHECK_INT(5, c->limits[0].count);
    CHECK_INT(1000, c->limits[0].window_ms);
    CHECK_INT(5, c->limits[0].burst);
    CHECK_INT(1, c->n_parts);
    CHECK_INT(RL_PART_CONSUMER, c->parts[0].kind);
    CHECK_INT(RL_POLICY_LOCAL, c->policy);
    CHECK_INT(RL_MODE_REJECT, c->mode);
    CHECK_INT(1000, c->max_delay_ms);
    CHECK_INT(RL_ON_ERROR_ALLOW, c->on_redis_error);
    CHECK_INT(1, c->headers);
    CHECK_STR("rate-limit", c->dict);
    CHECK_STR("consumer", rl_conf_requires(c));
    rl_conf_free(c);
}

static void test_conf_values(void)
{
    char err[256];
    fake_redis_configured = 1;
    rl_conf_t *c = conf_of("{\"limits\": [{\"count\": 3, \"window\": 1000},"
                           " {\"count\": 10, \"window\": 60000, \"burst\": 2}],"
                           " \"algorithm\": \"token_bucket\", \"key\": [\"ip\", \"header:X-Org\"],"
                           " \"policy\": \"redis\", \"mode\": \"delay\", \"max_delay\": 250,"
                           " \"on_redis_error\": \"local\", \"headers\": false, \"dict\": \"d2\"}",
                           err, sizeof err);
    fake_redis_configured = 0;
    CHECK_STR("", err);
    CHECK_INT(RL_TOKEN_BUCKET, c->algorithm);
    CHECK_INT(333333, c->limits[0].interval_us);
    CHECK_INT(3, c->limits[0].burst);
    CHECK_INT(6000000, c->limits[1].interval_us);
    CHECK_INT(2, c->limits[1].burst);
    CHECK_INT(2, c->n_parts);
    CHECK_INT(RL_PART_IP, c->parts[0].kind);
    CHECK_INT(RL_PART_HEADER, c->parts[1].kind);
    CHECK_STR("X-Org", c->parts[1].header);
    CHECK_INT(RL_POLICY_REDIS, c->policy);
    CHECK_INT(RL_MODE_DELAY, c->mode);
    CHECK_INT(250, c->max_delay_ms);
    CHECK_INT(RL_ON_ERROR_LOCAL, c->on_redis_error);
    CHECK_INT(0, c->headers);
    CHECK_STR("d2", c->dict);
    CHECK_STR(NULL, rl_conf_requires(c));
    rl_conf_free(c);

    c = conf_of("{\"limits\": [{\"count\": 1, \"window\": 1000}], \"key\": [\"ip\", \"credential\"]}",
                err, sizeof err);
    CHECK_STR("consumer", rl_conf_requires(c));
    rl_conf_free(c);
}

static void test_conf_errors(void)
{
    static const struct {
        const char *conf, *err;
    } cases[] = {
        {"{\"limits\": [{\"count\": 5, \"window\": 1000}, {\"count\": 5, \"window\": 10, \"burst\": 2}]}",
         "limits[1].burst: only token_bucket uses burst"},
        {"{\"limits\": [{\"count\": 2000, \"window\": 1}], \"algorithm\": \"token_bucket\"}",
         "limits[0]: token_bucket needs at most one request per microsecond"},
        {"{\"limits\": [{\"count\": 1, \"window\": 31622400000, \"burst\": 1000}],"
         " \"algorithm\": \"token_bucket\"}",
         "limits[0].burst: too large for this window"},
        {"{\"limits\": [{\"count\": 1, \"window\": 1000}], \"policy\": \"redis\"}",
         "policy: redis needs a top-level redis: section"},
        {"{\"limits\": []}", "limits: between 1 and 16 limits are needed"},
        {"{}", "limits: between 1 and 16 limits are needed"},
        {"{\"limits\": [{\"count\": 0, \"window\": 1000}]}",
         "limits[0]: count and window must be positive"},
        {"{\"limits\": [{\"count\": 1, \"window\": 1000}], \"key\": [\"cookie:sid\"]}",
         "key[0]: must be consumer, credential, ip, route, global or header:<Name>"},
        {"{\"limits\": [{\"count\": 1, \"window\": 1000}], \"key\": [\"header:\"]}",
         "key[0]: must be consumer, credential, ip, route, global or header:<Name>"},
        {"{\"limits\": [{\"count\": 1, \"window\": 1000}], \"key\": []}",
         "key: between 1 and 8 parts are needed"},
        {"{\"limits\": [{\"count\": 1, \"window\": 1000}], \"mode\": \"queue\"}",
         "algorithm, policy, mode or on_redis_error has an unknown value"},
        {"{\"limits\": [{\"count\": 1, \"window\": 1000}], \"dict\": \"\"}",
         "dict: must be 1 to 64 characters"},
        {"{\"limits\": [{\"count\": 1, \"window\": 1000}], \"max_delay\": -1}",
         "max_delay: must not be negative"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[256];
        rl_conf_t *c = conf_of(cases[i].conf, err, sizeof err);
        CHECK_INT(1, c == NULL);
        CHECK_STR(cases[i].err, err);
        rl_conf_free(c);
    }
}

/* ---- headers and answers -------------------------------------------------- */

static void test_tightest_and_formats(void)
{
    rl_verdict_t allowed[3] = {{1, 3, 10, 0}, {1, 1, 20, 0}, {1, 1, 5, 0}};
    CHECK_INT(1, rl_tightest(allowed, 3));
    rl_verdict_t mixed[3] = {{1, 0, 10, 0}, {0, 0, 500, 500}, {0, 0, 900, 900}};
    CHECK_INT(2, rl_tightest(mixed, 3));
    rl_verdict_t tie[2] = {{1, 1, 5, 0}, {1, 1, 5, 0}};
    CHECK_INT(0, rl_tightest(tie, 2));
    rl_verdict_t refused_first[2] = {{0, 0, 7, 7}, {1, 0, 900, 0}};
    CHECK_INT(0, rl_tightest(refused_first, 2));

    static const struct { int64_t ms; const char *text; } windows[] = {
        {3600000, "1h"}, {86400000, "24h"}, {60000, "1m"}, {90000, "90s"}, {1000, "1s"},
        {1500, "1500ms"}, {1, "1ms"},
    };
    for (size_t i = 0; i < sizeof windows / sizeof windows[0]; i++) {
        char out[32];
        rl_format_window(windows[i].ms, out, sizeof out);
        CHECK_STR(windows[i].text, out);
    }
    CHECK_INT(0, rl_seconds_ceil(0));
    CHECK_INT(1, rl_seconds_ceil(1));
    CHECK_INT(1, rl_seconds_ceil(1000));
    CHECK_INT(2, rl_seconds_ceil(1001));
}

static void test_answers(void)
{
    char err[256];
    rl_conf_t *c = conf_of("{\"limits\": [{\"count\": 10, \"window\": 1000},"
                           " {\"count\": 5, \"window\": 3600000}], \"key\": [\"ip\"]}",
                           err, sizeof err);
    rl_verdict_t v[2] = {{1, 3, 1000, 0}, {0, 0, 1500, 1500}};
    struct sl_req r = {0};
    CHECK_INT(SL_DONE, rl_answer_limited(&r, c, v));
    CHECK_INT(429, r.status);
    CHECK_STR("rate_limited", r.code);
    CHECK_STR("rate limit exceeded: 5 per 1h", r.message);
    CHECK_STR("2", fake_resp_header(&r, "Retry-After"));
    CHECK_STR("5", fake_resp_header(&r, "RateLimit-Limit"));
    CHECK_STR("0", fake_resp_header(&r, "RateLimit-Remaining"));
    CHECK_STR("2", fake_resp_header(&r, "RateLimit-Reset"));

    rl_verdict_t quick[2] = {{0, 0, 1, 1}, {1, 4, 5000, 0}};
    struct sl_req r2 = {0};
    rl_answer_limited(&r2, c, quick);
    CHECK_STR("rate limit exceeded: 10 per 1s", r2.message);
    CHECK_STR("1", fake_resp_header(&r2, "Retry-After"));

    rl_verdict_t ok[2] = {{1, 9, 400, 0}, {1, 2, 3599001, 0}};
    struct sl_req r3 = {0};
    rl_set_headers(&r3, c, ok);
    CHECK_INT(3, r3.n_resp);
    CHECK_STR("5", fake_resp_header(&r3, "RateLimit-Limit"));
    CHECK_STR("2", fake_resp_header(&r3, "RateLimit-Remaining"));
    CHECK_STR("3600", fake_resp_header(&r3, "RateLimit-Reset"));

    c->headers = false;
    struct sl_req r4 = {0};
    rl_set_headers(&r4, c, ok);
    CHECK_INT(0, r4.n_resp);
    rl_answer_limited(&r4, c, v);
    CHECK_INT(1, r4.n_resp);
    CHECK_STR("2", fake_resp_header(&r4, "Retry-After"));

    struct sl_req r5 = {0};
    CHECK_INT(SL_DONE, rl_answer_unavailable(&r5));
    CHECK_INT(503, r5.status);
    CHECK_STR("rate_limit_unavailable", r5.code);
    CHECK_STR("rate limiting is unavailable", r5.message);
    rl_conf_free(c);
}

/* ---- redis arguments and replies ------------------------------------------ */

static void test_redis_args(void)
{
    char err[256];
    rl_conf_t *c = conf_of("{\"limits\": [{\"count\": 3, \"window\": 1000},"
                           " {\"count\": 10, \"window\": 60000, \"burst\": 2}],"
                           " \"algorithm\": \"token_bucket\", \"key\": [\"ip\"]}",
                           err, sizeof err);
    rl_redis_args_t a;
    rl_redis_args(c, "rl:{x|1}", 8, &a);
    static const char *const expected[] = {"rl:{x|1}", "2", "3", "1000", "333333",
                                           "3", "10", "60000", "6000000", "2"};
    CHECK_INT(10, a.argc);
    for (int i = 0; i < 10 && i < a.argc; i++) {
        CHECK_STR(expected[i], a.argv[i]);
        CHECK_INT(strlen(expected[i]), a.lens[i]);
    }
    rl_conf_free(c);
}

static sl_reply_t integer(long long v) { return (sl_reply_t){.type = SL_REPLY_INTEGER, .integer = v}; }

static void test_redis_parse(void)
{
    rl_verdict_t v[2];
    char why[128];
    sl_reply_t items[9] = {integer(0), integer(1), integer(2), integer(750), integer(0),
                           integer(0), integer(0), integer(1500), integer(1500)};
    sl_reply_t *ptrs[9];
    for (int i = 0; i < 9; i++)
        ptrs[i] = &items[i];
    sl_reply_t reply = {.type = SL_REPLY_ARRAY, .elements = 9, .element = ptrs};
    CHECK_INT(0, rl_redis_parse(&reply, 2, v, why, sizeof why));
    CHECK_VERDICT(v[0], 1, 2, 750, 0);
    CHECK_VERDICT(v[1], 0, 0, 1500, 1500);

    items[0] = integer(1);
    reply.elements = 5;
    CHECK_INT(1, rl_redis_parse(&reply, 1, v, why, sizeof why));

    CHECK_INT(-1, rl_redis_parse(&reply, 2, v, why, sizeof why));
    CHECK_STR("unexpected reply from the rate-limit script", why);
    items[2] = integer(-1);
    CHECK_INT(-1, rl_redis_parse(&reply, 1, v, why, sizeof why));
    CHECK_STR("unexpected reply from the rate-limit script", why);
    items[2] = (sl_reply_t){.type = SL_REPLY_STRING, .str = "2", .len = 1};
    CHECK_INT(-1, rl_redis_parse(&reply, 1, v, why, sizeof why));
    sl_reply_t error = {.type = SL_REPLY_ERROR, .str = "ERR boom", .len = 8};
    CHECK_INT(-1, rl_redis_parse(&error, 1, v, why, sizeof why));
    CHECK_STR("ERR boom", why);
    sl_reply_t nil = {.type = SL_REPLY_NIL};
    CHECK_INT(-1, rl_redis_parse(&nil, 1, v, why, sizeof why));
    CHECK_STR("unexpected reply from the rate-limit script", why);
    CHECK_INT(-1, rl_redis_parse(NULL, 1, v, why, sizeof why));
    CHECK_STR("no reply", why);
}

/* ---- local policy ----------------------------------------------------------- */

static const char *dict_value(const char *key)
{
    static char buf[64];
    size_t len = 0;
    if (rl_host->shared_get("rate-limit", key, buf, sizeof buf - 1, &len) != 1)
        return NULL;
    buf[len] = '\0';
    return buf;
}

static void test_local_all_or_nothing(void)
{
    char err[256];
    rl_conf_t *c = conf_of("{\"limits\": [{\"count\": 2, \"window\": 1000},"
                           " {\"count\": 3, \"window\": 60000}], \"algorithm\": \"fixed_window\","
                           " \"key\": [\"ip\"]}", err, sizeof err);
    fake_dict_clear();
    rl_verdict_t v[2];
    int64_t t0 = 1700000040000000LL;   /* on a minute boundary */
    CHECK_INT(1, rl_local_check(c, "rl:{a}", t0, v));
    CHECK_VERDICT(v[0], 1, 1, 1000, 0);
    CHECK_VERDICT(v[1], 1, 2, 60000, 0);
    CHECK_INT(1, rl_local_check(c, "rl:{a}", t0 + 1000, v));
    CHECK_INT(0, rl_local_check(c, "rl:{a}", t0 + 2000, v));
    CHECK_VERDICT(v[0], 0, 0, 998, 998);
    CHECK_VERDICT(v[1], 1, 0, 59998, 0);
    /* the refused request used nothing of the minute limit */
    CHECK_STR("2", dict_value("rl:{a}:0:1700000040000"));
    CHECK_STR("2", dict_value("rl:{a}:1:1700000040000"));
    CHECK_INT(1, rl_local_check(c, "rl:{a}", t0 + 1000000, v));
    CHECK_VERDICT(v[1], 1, 0, 59000, 0);
    CHECK_INT(0, rl_local_check(c, "rl:{a}", t0 + 1001000, v));
    CHECK_VERDICT(v[0], 1, 0, 999, 0);
    CHECK_VERDICT(v[1], 0, 0, 58999, 58999);
    CHECK_STR("1", dict_value("rl:{a}:0:1700000041000"));
    CHECK_STR(NULL, dict_value("rl:{a}:0:1700000041001"));
    /* another key has its own counters */
    CHECK_INT(1, rl_local_check(c, "rl:{b}", t0 + 1001000, v));
    CHECK_VERDICT(v[1], 1, 2, 58999, 0);
    rl_conf_free(c);
}

static void test_local_token_bucket(void)
{
    char err[256];
    rl_conf_t *c = conf_of("{\"limits\": [{\"count\": 2, \"window\": 2000, \"burst\": 2}],"
                           " \"algorithm\": \"token_bucket\", \"key\": [\"ip\"]}", err, sizeof err);
    fake_dict_clear();
    rl_verdict_t v[1];
    int64_t t0 = 1700000000000000LL;
    CHECK_INT(1, rl_local_check(c, "rl:{g}", t0, v));
    CHECK_VERDICT(v[0], 1, 1, 1000, 0);
    CHECK_STR("1700000001000000", dict_value("rl:{g}:0:tat"));
    CHECK_INT(1, rl_local_check(c, "rl:{g}", t0 + 100, v));
    CHECK_VERDICT(v[0], 1, 0, 2000, 0);
    CHECK_INT(0, rl_local_check(c, "rl:{g}", t0 + 200, v));
    CHECK_VERDICT(v[0], 0, 0, 1000, 1000);
    CHECK_STR("1700000002000000", dict_value("rl:{g}:0:tat"));
    CHECK_INT(1, rl_local_check(c, "rl:{g}", t0 + 1000000, v));
    CHECK_VERDICT(v[0], 1, 0, 2000, 0);
    rl_conf_free(c);
}

typedef struct {
    const rl_conf_t *c;
    int admitted;
} hammer_t;

static void *hammer(void *arg)
{
    hammer_t *h = arg;
    rl_verdict_t v[1];
    for (int i = 0; i < 1000; i++)
        h->admitted += rl_local_check(h->c, "rl:{shared}", 1700000000000000LL + i, v);
    return NULL;
}

/* Eight threads on one key: the stripe lock must admit exactly count. */
static void test_local_threads(void)
{
    char err[256];
    rl_conf_t *c = conf_of("{\"limits\": [{\"count\": 3000, \"window\": 3600000}],"
                           " \"algorithm\": \"sliding_window\", \"key\": [\"ip\"]}", err, sizeof err);
    fake_dict_clear();
    pthread_t threads[8];
    hammer_t h[8];
    for (int i = 0; i < 8; i++) {
        h[i] = (hammer_t){c, 0};
        pthread_create(&threads[i], NULL, hammer, &h[i]);
    }
    int total = 0;
    for (int i = 0; i < 8; i++) {
        pthread_join(threads[i], NULL);
        total += h[i].admitted;
    }
    CHECK_INT(3000, total);
    rl_conf_free(c);
}

/* ---- the token bucket's script against the C arithmetic ------------------------- */

static uint64_t rng_state = 88172645463325252ULL;

static uint64_t next_random(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void compare_script(const char *conf_text)
{
    char err[256];
    rl_conf_t *c = conf_of(conf_text, err, sizeof err);
    CHECK_STR("", err);
    if (!c)
        return;
    fake_dict_clear();
    lua_twin_t *twin = lua_twin_new();
    int64_t now = 1700000000123456LL;
    int mismatches = 0, admitted = 0, refused = 0;
    for (int step = 0; step < 3000; step++) {
        now += (int64_t)(next_random() % 400000);
        rl_verdict_t local[RL_MAX_LIMITS], script[RL_MAX_LIMITS];
        int a = rl_local_check(c, "rl:{twin}", now, local);
        int b = lua_twin_check(twin, c, "rl:{twin}", now, script);
        admitted += a == 1;
        refused += a == 0;
        int same = a == b;
        for (int i = 0; same && i < c->n_limits; i++)
            same = local[i].allowed == script[i].allowed && local[i].remaining == script[i].remaining &&
                   local[i].reset_ms == script[i].reset_ms && local[i].retry_ms == script[i].retry_ms;
        if (!same && mismatches++ < 3)
            fprintf(stderr, "step %d at %lld: C says %d, the script %d\n", step, (long long)now, a, b);
    }
    CHECK_INT(0, mismatches);
    /* both outcomes were exercised */
    CHECK_INT(1, admitted > 100 && refused > 100);
    lua_twin_free(twin);
    rl_conf_free(c);
}

/* Only the token bucket still runs a script; the windows are compared
 * through their plain commands below. */
static void test_script_matches_c(void)
{
    compare_script("{\"limits\": [{\"count\": 3, \"window\": 1000, \"burst\": 2},"
                   " {\"count\": 7, \"window\": 3700}], \"algorithm\": \"token_bucket\","
                   " \"key\": [\"ip\"]}");
    compare_script("{\"limits\": [{\"count\": 1, \"window\": 700},"
                   " {\"count\": 5, \"window\": 2000, \"burst\": 2}], \"algorithm\": \"token_bucket\","
                   " \"key\": [\"ip\"]}");
}

/* ---- the window algorithms' commands over the fake Redis -------------------------- */

/* What the check's done callback saw; result -9 until it ran. */
typedef struct window_run {
    const char *prefix;
    int done_calls;
    int result;
    rl_verdict_t verdicts[RL_MAX_LIMITS];
} window_run_t;

static void window_done(sl_req_t *r, rl_redis_window_t *w, void *arg)
{
    window_run_t *run = arg;
    run->done_calls++;
    run->result = rl_redis_window_finish(w, r, run->prefix, strlen(run->prefix), run->verdicts);
}

/* Sends a check at now_us and leaves its replies queued. */
static int window_send(rl_redis_window_t *w, window_run_t *run, const rl_conf_t *c, struct sl_req *r,
                       const char *prefix, int64_t now_us)
{
    *run = (window_run_t){.prefix = prefix, .result = -9};
    return rl_redis_window_send(w, c, r, prefix, strlen(prefix), now_us, window_done, run);
}

static int same_text(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

/* The same random clock steps as compare_script, through the window path
 * and the local policy side by side: the same answers, and the same count
 * in every current counter afterwards. */
static void compare_window(const char *conf_text)
{
    char err[256];
    rl_conf_t *c = conf_of(conf_text, err, sizeof err);
    CHECK_STR("", err);
    if (!c)
        return;
    fake_dict_clear();
    fake_redis_clear();
    struct sl_req r = {0};
    int64_t now = 1700000000123456LL;
    int mismatches = 0, admitted = 0, refused = 0, unsent = 0;
    for (int step = 0; step < 3000; step++) {
        now += (int64_t)(next_random() % 400000);
        rl_verdict_t local[RL_MAX_LIMITS];
        int a = rl_local_check(c, "rl:{twin}", now, local);
        rl_redis_window_t w;
        window_run_t run;
        unsent += window_send(&w, &run, c, &r, "rl:{twin}", now) != 0;
        fake_redis_deliver();
        admitted += a == 1;
        refused += a == 0;
        int same = run.done_calls == 1 && a == run.result;
        for (int i = 0; same && i < c->n_limits; i++) {
            const rl_verdict_t *v = &run.verdicts[i];
            same = local[i].allowed == v->allowed && local[i].remaining == v->remaining &&
                   local[i].reset_ms == v->reset_ms && local[i].retry_ms == v->retry_ms;
            char key[RL_KEY_MAX + 1];
            rl_key_counter("rl:{twin}", i, rl_window_start_ms(now / 1000, c->limits[i].window_ms), key);
            same = same && same_text(dict_value(key), fake_redis_value(key));
        }
        if (!same && mismatches++ < 3)
            fprintf(stderr, "step %d at %lld: local says %d, the window path %d (done %d times)\n",
                    step, (long long)now, a, run.result, run.done_calls);
        fake_redis_forget_sent();
    }
    CHECK_INT(0, mismatches);
    CHECK_INT(0, unsent);
    CHECK_INT(0, fake_redis_pending());
    CHECK_INT(1, admitted > 100 && refused > 100);
    rl_conf_free(c);
}

static void test_window_matches_local(void)
{
    compare_window("{\"limits\": [{\"count\": 3, \"window\": 1000}, {\"count\": 7, \"window\": 3700}],"
                   " \"algorithm\": \"fixed_window\", \"key\": [\"ip\"]}");
    compare_window("{\"limits\": [{\"count\": 1, \"window\": 700}, {\"count\": 5, \"window\": 2000}],"
                   " \"algorithm\": \"fixed_window\", \"key\": [\"ip\"]}");
    compare_window("{\"limits\": [{\"count\": 3, \"window\": 1000}, {\"count\": 7, \"window\": 3700}],"
                   " \"algorithm\": \"sliding_window\", \"key\": [\"ip\"]}");
    compare_window("{\"limits\": [{\"count\": 1, \"window\": 700}, {\"count\": 5, \"window\": 2000}],"
                   " \"algorithm\": \"sliding_window\", \"key\": [\"ip\"]}");
}

/* The fake itself, so the tests below read real Redis behaviour off it. */
typedef struct seen_reply {
    int calls;
    sl_reply_type_t type;
    long long integer;
    char str[64];
    char err[32];
} seen_reply_t;

static void record_reply(sl_req_t *r, void *arg, const sl_reply_t *reply, const char *err)
{
    (void)r;
    seen_reply_t *s = arg;
    s->calls++;
    s->type = reply ? reply->type : 0;
    s->integer = reply ? reply->integer : 0;
    snprintf(s->str, sizeof s->str, "%.*s", reply && reply->str ? (int)reply->len : 0,
             reply && reply->str ? reply->str : "");
    snprintf(s->err, sizeof s->err, "%s", err ? err : "");
}

static seen_reply_t fake_command(const char *a0, const char *a1, const char *a2)
{
    const char *argv[3] = {a0, a1, a2};
    size_t lens[3] = {strlen(a0), a1 ? strlen(a1) : 0, a2 ? strlen(a2) : 0};
    seen_reply_t s = {0};
    int rc = rl_host->redis_call(NULL, a2 ? 3 : a1 ? 2 : 1, argv, lens, record_reply, &s);
    CHECK_INT(0, rc);
    CHECK_INT(0, s.calls);   /* never during the call */
    CHECK_INT(1, fake_redis_deliver());
    return s;
}

static void test_fake_redis(void)
{
    fake_redis_clear();
    seen_reply_t s = fake_command("GET", "k", NULL);
    CHECK_INT(1, s.calls);
    CHECK_INT(SL_REPLY_NIL, s.type);
    s = fake_command("INCR", "k", NULL);
    CHECK_INT(SL_REPLY_INTEGER, s.type);
    CHECK_INT(1, s.integer);
    CHECK_INT(-1, fake_redis_ttl("k"));
    s = fake_command("PEXPIRE", "k", "1500");
    CHECK_INT(SL_REPLY_INTEGER, s.type);
    CHECK_INT(1, s.integer);
    CHECK_INT(1500, fake_redis_ttl("k"));
    s = fake_command("incr", "k", NULL);
    CHECK_INT(2, s.integer);
    CHECK_INT(1500, fake_redis_ttl("k"));   /* INCR keeps the expiry, as in Redis */
    s = fake_command("GET", "k", NULL);
    CHECK_INT(SL_REPLY_STRING, s.type);
    CHECK_STR("2", s.str);
    s = fake_command("DECR", "gone", NULL);
    CHECK_INT(-1, s.integer);
    s = fake_command("PEXPIRE", "nothing", "10");
    CHECK_INT(0, s.integer);
    CHECK_INT(-2, fake_redis_ttl("nothing"));
    s = fake_command("PEXPIRE", "k", "soon");
    CHECK_INT(SL_REPLY_ERROR, s.type);
    CHECK_STR("ERR value is not an integer or out of range", s.str);
    s = fake_command("EVAL", "k", NULL);
    CHECK_STR("ERR unknown command", s.str);
    s = fake_command("GET", NULL, NULL);
    CHECK_STR("ERR wrong number of arguments", s.str);
    static const char *const not_integers[] = {"abc", "", "007", "+7", " 7", "-0", "1.5",
                                               "9223372036854775808"};
    for (size_t i = 0; i < sizeof not_integers / sizeof not_integers[0]; i++) {
        fake_redis_set("n", not_integers[i]);
        s = fake_command("INCR", "n", NULL);
        CHECK_STR("ERR value is not an integer or out of range", s.str);
        CHECK_STR(not_integers[i], fake_redis_value("n"));
    }
    fake_redis_set("n", "9223372036854775807");
    s = fake_command("INCR", "n", NULL);
    CHECK_STR("ERR increment or decrement would overflow", s.str);
    fake_redis_set("n", "-9223372036854775808");
    s = fake_command("DECR", "n", NULL);
    CHECK_STR("ERR increment or decrement would overflow", s.str);

    CHECK_INT(20, fake_redis_n_sent());
    CHECK_STR("PEXPIRE k 1500", fake_redis_sent(2));
    fake_redis_forget_sent();
    fake_redis_fault(2, FAKE_REPLY_ERROR);
    fake_redis_fault(3, FAKE_REPLY_TIMEOUT);
    fake_redis_fault(1, FAKE_SEND_FAILS);
    const char *argv[2] = {"INCR", "k"};
    size_t lens[2] = {4, 1};
    seen_reply_t r1 = {0}, r2 = {0}, r3 = {0};
    CHECK_INT(-1, rl_host->redis_call(NULL, 2, argv, lens, record_reply, &r1));
    CHECK_INT(0, rl_host->redis_call(NULL, 2, argv, lens, record_reply, &r2));
    CHECK_INT(0, rl_host->redis_call(NULL, 2, argv, lens, record_reply, &r3));
    CHECK_INT(2, fake_redis_pending());
    CHECK_INT(2, fake_redis_deliver());
    CHECK_INT(0, r1.calls);
    CHECK_INT(SL_REPLY_ERROR, r2.type);
    CHECK_STR("ERR boom", r2.str);
    CHECK_STR("", r2.err);
    CHECK_INT(0, r3.type);   /* no reply at all */
    CHECK_STR("timeout", r3.err);
    CHECK_STR("2", fake_redis_value("k"));   /* none of the three ran */
    CHECK_INT(2, fake_redis_n_sent());   /* what could not be sent is not in the log */
    fake_redis_clear();
    CHECK_INT(0, fake_redis_n_sent());
    CHECK_STR(NULL, fake_redis_value("k"));
}

/* t0 is 250 ms into a 1 s window: limit windows of 1000 and 2000 ms start
 * at 1700000000000, one of 3700 ms at 1699999998300. */
static const int64_t t0 = 1700000000250000LL;

static void test_window_sliding_shapes(void)
{
    char err[256];
    rl_conf_t *c = conf_of("{\"limits\": [{\"count\": 3, \"window\": 1000},"
                           " {\"count\": 7, \"window\": 3700}],"
                           " \"algorithm\": \"sliding_window\", \"key\": [\"ip\"]}", err, sizeof err);
    fake_redis_clear();
    struct sl_req r = {0};
    rl_redis_window_t w;
    window_run_t run;
    const char *k0 = "rl:{s}:0:1700000000000", *k1 = "rl:{s}:1:1699999998300";

    /* the first request of both windows */
    CHECK_INT(0, window_send(&w, &run, c, &r, "rl:{s}", t0));
    CHECK_INT(0, run.done_calls);
    CHECK_INT(4, fake_redis_pending());
    CHECK_INT(4, fake_redis_n_sent());
    CHECK_STR("INCR rl:{s}:0:1700000000000", fake_redis_sent(0));
    CHECK_STR("GET rl:{s}:0:1699999999000", fake_redis_sent(1));
    CHECK_STR("INCR rl:{s}:1:1699999998300", fake_redis_sent(2));
    CHECK_STR("GET rl:{s}:1:1699999994600", fake_redis_sent(3));
    CHECK_INT(6, fake_redis_deliver());   /* the four replies, then the two PEXPIREs' */
    CHECK_INT(1, run.done_calls);
    CHECK_INT(1, run.result);
    CHECK_VERDICT(run.verdicts[0], 1, 2, 750, 0);
    CHECK_VERDICT(run.verdicts[1], 1, 6, 1750, 0);
    CHECK_INT(6, fake_redis_n_sent());
    /* window end - now + 1000, and one window more to serve as the previous */
    CHECK_STR("PEXPIRE rl:{s}:0:1700000000000 2750", fake_redis_sent(4));
    CHECK_STR("PEXPIRE rl:{s}:1:1699999998300 6450", fake_redis_sent(5));
    CHECK_INT(2750, fake_redis_ttl(k0));
    CHECK_INT(6450, fake_redis_ttl(k1));
    CHECK_STR("1", fake_redis_value(k0));
    CHECK_STR("1", fake_redis_value(k1));

    /* the second one: counted, no new expiry */
    fake_redis_forget_sent();
    CHECK_INT(0, window_send(&w, &run, c, &r, "rl:{s}", t0 + 100000));
    CHECK_INT(4, fake_redis_deliver());
    CHECK_INT(1, run.result);
    CHECK_VERDICT(run.verdicts[0], 1, 1, 650, 0);
    CHECK_VERDICT(run.verdicts[1], 1, 5, 1650, 0);
    CHECK_INT(4, fake_redis_n_sent());
    CHECK_INT(2750, fake_redis_ttl(k0));
    CHECK_STR("2", fake_redis_value(k0));
    CHECK_STR("2", fake_redis_value(k1));

    CHECK_INT(0, window_send(&w, &run, c, &r, "rl:{s}", t0 + 200000));
    fake_redis_deliver();
    CHECK_INT(1, run.result);
    CHECK_VERDICT(run.verdicts[0], 1, 0, 550, 0);

    /* refused by limit 0: taken back out of both */
    fake_redis_forget_sent();
    CHECK_INT(0, window_send(&w, &run, c, &r, "rl:{s}", t0 + 300000));
    CHECK_INT(6, fake_redis_deliver());
    CHECK_INT(1, run.done_calls);
    CHECK_INT(0, run.result);
    CHECK_VERDICT(run.verdicts[0], 0, 0, 784, 784);
    CHECK_VERDICT(run.verdicts[1], 1, 3, 1450, 0);
    CHECK_INT(6, fake_redis_n_sent());
    CHECK_STR("DECR rl:{s}:0:1700000000000", fake_redis_sent(4));
    CHECK_STR("DECR rl:{s}:1:1699999998300", fake_redis_sent(5));
    CHECK_STR("3", fake_redis_value(k0));
    CHECK_STR("3", fake_redis_value(k1));

    /* an error reply to the first GET: failed, both counts taken back */
    fake_redis_forget_sent();
    fake_redis_fault(2, FAKE_REPLY_ERROR);
    CHECK_INT(0, window_send(&w, &run, c, &r, "rl:{s}", t0 + 400000));
    CHECK_INT(6, fake_redis_deliver());
    CHECK_INT(1, run.done_calls);
    CHECK_INT(-1, run.result);
    CHECK_STR("ERR boom", w.why);
    CHECK_INT(6, fake_redis_n_sent());
    CHECK_STR("DECR rl:{s}:0:1700000000000", fake_redis_sent(4));
    CHECK_STR("DECR rl:{s}:1:1699999998300", fake_redis_sent(5));
    CHECK_STR("3", fake_redis_value(k0));
    CHECK_STR("3", fake_redis_value(k1));

    /* no answer to the last GET */
    fake_redis_fault(4, FAKE_REPLY_TIMEOUT);
    CHECK_INT(0, window_send(&w, &run, c, &r, "rl:{s}", t0 + 400000));
    fake_redis_deliver();
    CHECK_INT(1, run.done_calls);
    CHECK_INT(-1, run.result);
    CHECK_STR("timeout", w.why);
    CHECK_STR("3", fake_redis_value(k0));
    CHECK_STR("3", fake_redis_value(k1));

    /* two failures: the first one is the reason; an INCR refused by Redis
     * is not taken back, and one without an answer (it may have landed)
     * gets its counter's expiry, which nothing else would set */
    fake_redis_forget_sent();
    fake_redis_fault(1, FAKE_REPLY_ERROR);
    fake_redis_fault(3, FAKE_REPLY_TIMEOUT);
    CHECK_INT(0, window_send(&w, &run, c, &r, "rl:{s}", t0 + 400000));
    CHECK_INT(5, fake_redis_deliver());
    CHECK_INT(1, run.done_calls);
    CHECK_INT(-1, run.result);
    CHECK_STR("ERR boom", w.why);
    CHECK_INT(5, fake_redis_n_sent());
    /* window end 1699999998300 + 3700, less now 1700000000650, plus a second
     * and (sliding) one window */
    CHECK_STR("PEXPIRE rl:{s}:1:1699999998300 6050", fake_redis_sent(4));
    CHECK_STR("3", fake_redis_value(k0));
    CHECK_STR("3", fake_redis_value(k1));

    /* the first command cannot be sent: nothing in flight, done never runs */
    fake_redis_forget_sent();
    fake_redis_fault(1, FAKE_SEND_FAILS);
    CHECK_INT(-1, window_send(&w, &run, c, &r, "rl:{s}", t0 + 400000));
    CHECK_STR("could not send the command", w.why);
    CHECK_INT(0, fake_redis_pending());
    CHECK_INT(0, fake_redis_deliver());
    CHECK_INT(0, run.done_calls);
    CHECK_INT(0, fake_redis_n_sent());
    CHECK_STR("3", fake_redis_value(k0));

    /* the second cannot be sent: the first still ends the check, as failed */
    fake_redis_fault(2, FAKE_SEND_FAILS);
    CHECK_INT(0, window_send(&w, &run, c, &r, "rl:{s}", t0 + 400000));
    CHECK_INT(1, fake_redis_pending());
    CHECK_INT(0, run.done_calls);
    CHECK_INT(2, fake_redis_deliver());
    CHECK_INT(1, run.done_calls);
    CHECK_INT(-1, run.result);
    CHECK_STR("could not send the command", w.why);
    CHECK_INT(2, fake_redis_n_sent());
    CHECK_STR("INCR rl:{s}:0:1700000000000", fake_redis_sent(0));
    CHECK_STR("DECR rl:{s}:0:1700000000000", fake_redis_sent(1));
    CHECK_STR("3", fake_redis_value(k0));
    CHECK_STR("3", fake_redis_value(k1));

    /* a failed check that created a counter still gives it its expiry */
    fake_redis_forget_sent();
    fake_redis_fault(4, FAKE_REPLY_ERROR);
    CHECK_INT(0, window_send(&w, &run, c, &r, "rl:{s}", t0 + 1000000));
    CHECK_INT(7, fake_redis_deliver());
    CHECK_INT(-1, run.result);
    CHECK_INT(7, fake_redis_n_sent());
    CHECK_STR("GET rl:{s}:0:1700000000000", fake_redis_sent(1));
    CHECK_STR("PEXPIRE rl:{s}:0:1700000001000 2750", fake_redis_sent(4));
    CHECK_STR("DECR rl:{s}:0:1700000001000", fake_redis_sent(5));
    CHECK_STR("DECR rl:{s}:1:1699999998300", fake_redis_sent(6));
    CHECK_STR("0", fake_redis_value("rl:{s}:0:1700000001000"));
    CHECK_INT(2750, fake_redis_ttl("rl:{s}:0:1700000001000"));
    CHECK_STR("3", fake_redis_value(k1));
    rl_conf_free(c);
}

static void test_window_fixed_shapes(void)
{
    char err[256];
    rl_conf_t *c = conf_of("{\"limits\": [{\"count\": 5, \"window\": 1000},"
                           " {\"count\": 2, \"window\": 2000}],"
                           " \"algorithm\": \"fixed_window\", \"key\": [\"ip\"]}", err, sizeof err);
    fake_redis_clear();
    struct sl_req r = {0};
    rl_redis_window_t w;
    window_run_t run;
    CHECK_INT(0, window_send(&w, &run, c, &r, "rl:{f}", t0));
    CHECK_INT(2, fake_redis_pending());
    CHECK_INT(4, fake_redis_deliver());
    CHECK_INT(1, run.result);
    CHECK_VERDICT(run.verdicts[0], 1, 4, 750, 0);
    CHECK_VERDICT(run.verdicts[1], 1, 1, 1750, 0);
    CHECK_INT(4, fake_redis_n_sent());
    CHECK_STR("INCR rl:{f}:0:1700000000000", fake_redis_sent(0));
    CHECK_STR("INCR rl:{f}:1:1700000000000", fake_redis_sent(1));
    /* window end - now + 1000: a fixed window is never read as the previous */
    CHECK_STR("PEXPIRE rl:{f}:0:1700000000000 1750", fake_redis_sent(2));
    CHECK_STR("PEXPIRE rl:{f}:1:1700000000000 2750", fake_redis_sent(3));

    CHECK_INT(0, window_send(&w, &run, c, &r, "rl:{f}", t0 + 50000));
    fake_redis_deliver();
    CHECK_INT(1, run.result);
    CHECK_VERDICT(run.verdicts[0], 1, 3, 700, 0);
    CHECK_VERDICT(run.verdicts[1], 1, 0, 1700, 0);

    /* refused by limit 1 only: limit 0 does not keep it either */
    fake_redis_forget_sent();
    CHECK_INT(0, window_send(&w, &run, c, &r, "rl:{f}", t0 + 100000));
    CHECK_INT(4, fake_redis_deliver());
    CHECK_INT(0, run.result);
    CHECK_VERDICT(run.verdicts[0], 1, 2, 650, 0);
    CHECK_VERDICT(run.verdicts[1], 0, 0, 1650, 1650);
    CHECK_INT(4, fake_redis_n_sent());
    CHECK_STR("DECR rl:{f}:0:1700000000000", fake_redis_sent(2));
    CHECK_STR("DECR rl:{f}:1:1700000000000", fake_redis_sent(3));
    CHECK_STR("2", fake_redis_value("rl:{f}:0:1700000000000"));
    CHECK_STR("2", fake_redis_value("rl:{f}:1:1700000000000"));
    CHECK_INT(1750, fake_redis_ttl("rl:{f}:0:1700000000000"));

    /* the second limit's INCR cannot be sent: the first is taken back */
    fake_redis_forget_sent();
    fake_redis_fault(2, FAKE_SEND_FAILS);
    CHECK_INT(0, window_send(&w, &run, c, &r, "rl:{f}", t0 + 100000));
    CHECK_INT(2, fake_redis_deliver());
    CHECK_INT(-1, run.result);
    CHECK_STR("could not send the command", w.why);
    CHECK_STR("DECR rl:{f}:0:1700000000000", fake_redis_sent(1));
    CHECK_STR("2", fake_redis_value("rl:{f}:0:1700000000000"));
    rl_conf_free(c);
}

/* Two checks in flight at once share the counters: INCR gives each its own
 * count, so only one of them gets the last place. */
static void test_window_in_flight_together(void)
{
    char err[256];
    rl_conf_t *c = conf_of("{\"limits\": [{\"count\": 1, \"window\": 1000}],"
                           " \"algorithm\": \"fixed_window\", \"key\": [\"ip\"]}", err, sizeof err);
    fake_redis_clear();
    struct sl_req ra = {0}, rb = {0};
    rl_redis_window_t wa, wb;
    window_run_t a, b;
    CHECK_INT(0, window_send(&wa, &a, c, &ra, "rl:{c}", t0));
    CHECK_INT(0, window_send(&wb, &b, c, &rb, "rl:{c}", t0));
    CHECK_INT(4, fake_redis_deliver());   /* two INCRs, A's PEXPIRE, B's DECR */
    CHECK_INT(1, a.result);
    CHECK_VERDICT(a.verdicts[0], 1, 0, 750, 0);
    CHECK_INT(0, b.result);
    CHECK_VERDICT(b.verdicts[0], 0, 0, 750, 750);
    CHECK_STR("PEXPIRE rl:{c}:0:1700000000000 1750", fake_redis_sent(2));
    CHECK_STR("DECR rl:{c}:0:1700000000000", fake_redis_sent(3));
    CHECK_STR("1", fake_redis_value("rl:{c}:0:1700000000000"));
    rl_conf_free(c);
}

/* What Redis may hold that this plugin did not write. */
static void test_window_odd_values(void)
{
    char err[256];
    rl_conf_t *c = conf_of("{\"limits\": [{\"count\": 3, \"window\": 1000}],"
                           " \"algorithm\": \"sliding_window\", \"key\": [\"ip\"]}", err, sizeof err);
    struct sl_req r = {0};
    rl_redis_window_t w;
    window_run_t run;
    /* The previous window's count as GET returns it: only plain decimals of
     * up to 18 digits are numbers, anything else is an empty counter. */
    static const struct {
        const char *text;
        int64_t prev;
        int result;
    } previous[] = {
        {"1", 1, 1}, {"007", 7, 0}, {"999999999999999999", 999999999999999999LL, 0},
        {"abc", 0, 1}, {"", 0, 1}, {"12a", 0, 1}, {"-5", 0, 1}, {"+7", 0, 1}, {" 7", 0, 1},
        {"1234567890123456789", 0, 1},
    };
    for (size_t i = 0; i < sizeof previous / sizeof previous[0]; i++) {
        fake_redis_clear();
        fake_redis_set("rl:{o}:0:1699999999000", previous[i].text);
        CHECK_INT(0, window_send(&w, &run, c, &r, "rl:{o}", t0));
        fake_redis_deliver();
        CHECK_INT(1, run.done_calls);
        CHECK_INT(previous[i].prev, w.prev[0]);
        CHECK_INT(previous[i].result, run.result);
    }
    fake_redis_clear();
    fake_redis_set("rl:{o}:0:1699999999000", "1");
    window_send(&w, &run, c, &r, "rl:{o}", t0);
    fake_redis_deliver();
    CHECK_VERDICT(run.verdicts[0], 1, 1, 750, 0);   /* 1 * 0.75 + 0 + 1 = 1.75 of 3 */

    /* a current counter INCR cannot add to: Redis refuses, nothing counted */
    fake_redis_clear();
    fake_redis_set("rl:{o}:0:1700000000000", "abc");
    CHECK_INT(0, window_send(&w, &run, c, &r, "rl:{o}", t0));
    fake_redis_deliver();
    CHECK_INT(-1, run.result);
    CHECK_STR("ERR value is not an integer or out of range", w.why);
    CHECK_INT(2, fake_redis_n_sent());
    CHECK_STR("abc", fake_redis_value("rl:{o}:0:1700000000000"));

    /* a counter below zero (a take-back that came after its counter had
     * expired): INCR answers 0; the request counts as the window's first,
     * which gives the counter its expiry back */
    fake_redis_clear();
    fake_redis_set("rl:{o}:0:1700000000000", "-1");
    CHECK_INT(0, window_send(&w, &run, c, &r, "rl:{o}", t0));
    fake_redis_deliver();
    CHECK_INT(1, run.result);
    CHECK_STR("", w.why);
    CHECK_INT(0, w.curr[0]);
    CHECK_INT(3, fake_redis_n_sent());
    /* 750 ms left of the window, a second, and one window (sliding) */
    CHECK_STR("PEXPIRE rl:{o}:0:1700000000000 2750", fake_redis_sent(2));
    CHECK_STR("0", fake_redis_value("rl:{o}:0:1700000000000"));
    fake_redis_clear();
    rl_conf_free(c);
}

int main(void)
{
    rl_host = fake_host();
    test_fixed_window();
    test_sliding_window();
    test_token_bucket();
    test_key_encoding();
    test_format_int();
    test_counter_suffix_cache();
    test_key_from_request();
    test_conf_defaults();
    test_conf_values();
    test_conf_errors();
    test_tightest_and_formats();
    test_answers();
    test_redis_args();
    test_redis_parse();
    test_local_all_or_nothing();
    test_local_token_bucket();
    test_local_threads();
    test_script_matches_c();
    test_fake_redis();
    test_window_matches_local();
    test_window_sliding_shapes();
    test_window_fixed_shapes();
    test_window_in_flight_together();
    test_window_odd_values();
    fake_dict_clear();
    fake_redis_clear();
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
