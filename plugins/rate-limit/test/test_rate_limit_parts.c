/* Unit tests of the rate-limit plugin's parts (everything but the
 * descriptor and the request flow, which the black-box specs cover):
 * arithmetic, keys, config, headers and answers, the Redis script's
 * arguments and replies, the local policy over a stand-in dict, and the
 * script itself run in LuaJIT against the C arithmetic. */
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
    static const char *const expected[] = {"rl:{x|1}", "token_bucket", "2", "3", "1000", "333333",
                                           "3", "10", "60000", "6000000", "2"};
    CHECK_INT(11, a.argc);
    for (int i = 0; i < 11 && i < a.argc; i++) {
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

/* ---- the script against the C arithmetic --------------------------------------- */

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

static void test_script_matches_c(void)
{
    compare_script("{\"limits\": [{\"count\": 3, \"window\": 1000}, {\"count\": 7, \"window\": 3700}],"
                   " \"algorithm\": \"fixed_window\", \"key\": [\"ip\"]}");
    compare_script("{\"limits\": [{\"count\": 3, \"window\": 1000}, {\"count\": 7, \"window\": 3700}],"
                   " \"algorithm\": \"sliding_window\", \"key\": [\"ip\"]}");
    compare_script("{\"limits\": [{\"count\": 1, \"window\": 700}, {\"count\": 5, \"window\": 2000}],"
                   " \"algorithm\": \"sliding_window\", \"key\": [\"ip\"]}");
    compare_script("{\"limits\": [{\"count\": 3, \"window\": 1000, \"burst\": 2},"
                   " {\"count\": 7, \"window\": 3700}], \"algorithm\": \"token_bucket\","
                   " \"key\": [\"ip\"]}");
}

int main(void)
{
    rl_host = fake_host();
    test_fixed_window();
    test_sliding_window();
    test_token_bucket();
    test_key_encoding();
    test_format_int();
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
    fake_dict_clear();
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
