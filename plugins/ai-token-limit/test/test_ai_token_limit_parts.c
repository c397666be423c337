/* The parts of ai-token-limit without the descriptor, against a stand-in
 * host: the estimate, windows and config, counter names, the local
 * reserve/undo/correct arithmetic, the Redis reply, and the header values. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "atl_answer.h"
#include "atl_conf.h"
#include "atl_estimate.h"
#include "atl_host.h"
#include "atl_key.h"
#include "atl_local.h"
#include "atl_redis.h"
#include "fake_host.h"

const sl_host_t *atl_host;

#define HOUR 3600000LL

static int64_t estimate_of(const char *body, int64_t max_default)
{
    return atl_estimate(body, strlen(body), max_default);
}

static void test_estimate(void)
{
    current_case = "estimate";
    CHECK_INT(2 + 10, estimate_of("{\"messages\":[{\"role\":\"user\",\"content\":\"hi there\"}],\"max_tokens\":10}", 99));
    /* 9 characters round up to 3 */
    CHECK_INT(3 + 99, estimate_of("{\"messages\":[{\"content\":\"hi there!\"}]}", 99));
    /* every message, array parts' text, characters not bytes (é is 2 bytes) */
    CHECK_INT(5 + 0, estimate_of("{\"messages\":[{\"content\":\"abcde\"},{\"content\":[{\"type\":\"text\",\"text\":"
                                 "\"h\\u00e9llo\"},{\"type\":\"image_url\"}]},{\"content\":\"hi there\"}],"
                                 "\"max_tokens\":0}", 99));
    CHECK_INT(1 + 4, estimate_of("{\"messages\":[{\"content\":\"a\"}],\"max_completion_tokens\":4,\"max_tokens\":50}", 9));
    CHECK_INT(1 + 9, estimate_of("{\"messages\":[{\"content\":\"a\"}],\"max_tokens\":-1}", 9));
    CHECK_INT(1 + 9, estimate_of("{\"messages\":[{\"content\":\"a\"}],\"max_tokens\":\"5\"}", 9));
    CHECK_INT(0 + 9, estimate_of("{\"messages\":[{\"content\":null},{\"role\":\"user\"},7]}", 9));
    /* embeddings: the input, no answer part */
    CHECK_INT(2, estimate_of("{\"input\":\"abcdefgh\"}", 9));
    CHECK_INT(3, estimate_of("{\"input\":[\"abcd\",\"efghi\"]}", 9));
    CHECK_INT(0, estimate_of("{\"input\":[1,2,3]}", 9));
    /* not an object */
    CHECK_INT(9, estimate_of("not json", 9));
    CHECK_INT(9, estimate_of("[1]", 9));
    CHECK_INT(9, atl_estimate("", 0, 9));
    CHECK_INT(9, atl_estimate(NULL, 0, 9));
}

static int window_of(const char *json, int64_t *ms)
{
    json_t *v = json_loads(json, JSON_DECODE_ANY, NULL);
    int rc = atl_parse_window((const sl_json_t *)v, ms);
    json_decref(v);
    return rc;
}

static void test_windows(void)
{
    current_case = "windows";
    int64_t ms = -1;
    CHECK_INT(0, window_of("\"minute\"", &ms));
    CHECK_INT(60000, ms);
    CHECK_INT(0, window_of("\"hour\"", &ms));
    CHECK_INT(HOUR, ms);
    CHECK_INT(0, window_of("\"90s\"", &ms));
    CHECK_INT(90000, ms);
    CHECK_INT(0, window_of("\"5m\"", &ms));
    CHECK_INT(300000, ms);
    CHECK_INT(0, window_of("\"1d\"", &ms));
    CHECK_INT(24 * HOUR, ms);
    CHECK_INT(0, window_of("\"1500ms\"", &ms));
    CHECK_INT(1500, ms);
    CHECK_INT(0, window_of("\"8784h\"", &ms));
    CHECK_INT(8784 * HOUR, ms);
    CHECK_INT(0, window_of("1000", &ms));
    CHECK_INT(1000, ms);
    CHECK_INT(0, window_of("\"2000\"", &ms));
    CHECK_INT(2000, ms);
    ms = 7;
    const char *bad[] = {"\"day\"", "\"999ms\"", "\"8785h\"", "\"-1s\"", "\"1.5h\"", "\"1 h\"", "\"h\"", "\"\"",
                         "999", "-1000", "1.5", "[1]", "null", "\"99999999999999999999h\""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_INT(-1, window_of(bad[i], &ms));
    CHECK_INT(7, ms);
    CHECK_INT(-1, atl_parse_window(NULL, &ms));
}

static atl_conf_t *conf_of(const char *json, char *err, size_t errlen)
{
    json_t *v = json_loads(json, 0, NULL);
    err[0] = '\0';
    atl_conf_t *c = atl_conf_new((const sl_json_t *)v, err, errlen);
    json_decref(v);
    return c;
}

static void test_conf(void)
{
    current_case = "conf";
    char err[256];
    atl_conf_t *c = conf_of("{\"limits\":[{\"tokens\":30,\"window\":\"hour\"},{\"tokens\":5,\"window\":\"1m\"}],"
                            "\"key\":[\"tenant\",\"route\"],\"on_redis_error\":\"local\","
                            "\"estimate_max_tokens_default\":7}", err, sizeof err);
    CHECK_NOT_NULL(c);
    if (c) {
        CHECK_INT(2, c->n_limits);
        CHECK_INT(30, c->limits[0].tokens);
        CHECK_INT(HOUR, c->limits[0].window_ms);
        CHECK_INT(60000, c->limits[1].window_ms);
        CHECK_INT(2, c->n_parts);
        CHECK_INT(ATL_PART_TENANT, c->parts[0]);
        CHECK_INT(ATL_PART_ROUTE, c->parts[1]);
        CHECK_INT(ATL_POLICY_LOCAL, c->policy);
        CHECK_INT(ATL_ON_ERROR_LOCAL, c->on_redis_error);
        CHECK_INT(7, c->estimate_max_tokens_default);
        CHECK_STR("consumer", atl_conf_requires(c));
        free(c);
    }
    c = conf_of("{\"limits\":[{\"tokens\":1,\"window\":60000}],\"key\":[\"route\"]}", err, sizeof err);
    CHECK_NOT_NULL(c);
    if (c) {
        CHECK_NULL(atl_conf_requires(c));
        CHECK_INT(1024, c->estimate_max_tokens_default);
        free(c);
    }
    c = conf_of("{\"limits\":[{\"tokens\":1,\"window\":60000}]}", err, sizeof err);   /* key default */
    CHECK_NOT_NULL(c);
    if (c) {
        CHECK_INT(1, c->n_parts);
        CHECK_INT(ATL_PART_CONSUMER, c->parts[0]);
        free(c);
    }
    static const struct { const char *json, *err; } bad[] = {
        {"{}", "limits: between 1 and 8 limits are needed"},
        {"{\"limits\":[{\"tokens\":0,\"window\":\"hour\"}]}", "limits[0].tokens: must be a positive integer"},
        {"{\"limits\":[{\"tokens\":1,\"window\":\"week\"}]}",
         "limits[0].window: must be minute, hour or a duration from 1s to 8784h (e.g. 30s, 5m, 1h, 1d)"},
        {"{\"limits\":[{\"tokens\":1,\"window\":\"hour\"},{\"tokens\":2,\"window\":\"60m\"}]}",
         "limits[1].window: limits[0] has the same window"},
        {"{\"limits\":[{\"tokens\":1,\"window\":\"hour\"}],\"key\":[\"ip\"]}", "key[0]: must be consumer, tenant or route"},
        {"{\"limits\":[{\"tokens\":1,\"window\":\"hour\"}],\"key\":[]}", "key: between 1 and 3 parts are needed"},
        {"{\"limits\":[{\"tokens\":1,\"window\":\"hour\"}],\"key\":[\"tenant\",\"tenant\"]}",
         "key[1]: tenant is listed twice"},
        {"{\"limits\":[{\"tokens\":1,\"window\":\"hour\"}],\"policy\":\"redis\"}",
         "policy: redis needs a top-level redis: section"},
        {"{\"limits\":[{\"tokens\":1,\"window\":\"hour\"}],\"policy\":\"x\"}",
         "policy or on_redis_error has an unknown value"},
        {"{\"limits\":[{\"tokens\":1,\"window\":\"hour\"}],\"estimate_max_tokens_default\":-1}",
         "estimate_max_tokens_default: must not be negative"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        c = conf_of(bad[i].json, err, sizeof err);
        CHECK_NULL(c);
        CHECK_STR(bad[i].err, err);
        free(c);
    }
    fake_redis_configured = 1;
    c = conf_of("{\"limits\":[{\"tokens\":1,\"window\":\"hour\"}],\"policy\":\"redis\"}", err, sizeof err);
    CHECK_NOT_NULL(c);
    if (c)
        CHECK_INT(ATL_POLICY_REDIS, c->policy);
    free(c);
    fake_redis_configured = 0;
}

static void test_keys(void)
{
    current_case = "keys";
    char out[128], key[128];
    const char *vals[] = {"alice", NULL, "a|b}{%"};
    CHECK_INT(28, (long long)atl_key_prefix_from(vals, 3, out, sizeof out));
    CHECK_STR("atl:{alice|-|a%7Cb%7D%7B%25}", out);
    const char *one[] = {"x.y_z~-"};
    atl_key_prefix_from(one, 1, out, sizeof out);
    CHECK_STR("atl:{x.y_z~-}", out);
    CHECK_INT(0, (long long)atl_key_prefix_from(vals, 3, out, 10));   /* does not fit */
    CHECK_INT(7200000, atl_window_start(7200000 + 59999, HOUR));
    CHECK_INT(7200000, atl_window_start(7200000, HOUR));
    atl_key_counter("atl:{a}", HOUR, 1732370400000LL, key, sizeof key);
    CHECK_STR("atl:{a}:3600000:1732370400000", key);
}

static atl_conf_t two_limits(void)
{
    atl_conf_t c;
    memset(&c, 0, sizeof c);
    c.n_limits = 2;
    c.limits[0] = (atl_limit_t){30, HOUR};
    c.limits[1] = (atl_limit_t){20, 60000};
    return c;
}

static void test_local(void)
{
    current_case = "local";
    atl_conf_t c = two_limits();
    atl_verdict_t v;
    const int64_t t = 100 * HOUR + 30000;   /* 30 s into a minute and an hour */
    const char *hour_key = "atl:{a}:3600000:360000000", *minute_key = "atl:{a}:60000:360000000";

    CHECK_INT(0, atl_local_reserve(&c, "atl:{a}", 12, t, &v));
    CHECK_INT(-1, v.refused);
    CHECK_INT(t, v.at_ms);
    CHECK_INT(12, v.used[0]);
    CHECK_INT(12, v.used[1]);
    CHECK_INT(1, atl_tightest(&c, &v));                /* minute: 8 left, hour: 18 */
    CHECK_INT(8, atl_remaining(&c, &v, 1));
    atl_local_correct(&c, "atl:{a}", 7 - 12, t, t + 10);
    CHECK_INT(7, fake_counter(hour_key));
    CHECK_INT(7, fake_counter(minute_key));

    /* the minute refuses 7 + 14; the hour's increase is undone */
    CHECK_INT(0, atl_local_reserve(&c, "atl:{a}", 14, t + 20, &v));
    CHECK_INT(1, v.refused);
    CHECK_INT(7, v.used[1]);
    CHECK_INT(13, atl_remaining(&c, &v, 1));
    CHECK_INT(1, atl_tightest(&c, &v));
    CHECK_INT(30, atl_retry_after(&c, &v, 1));         /* 29.98 s to the minute's end, rounded up */
    CHECK_INT(3570, atl_retry_after(&c, &v, 0));
    CHECK_INT(7, fake_counter(hour_key));
    CHECK_INT(7, fake_counter(minute_key));

    /* the first limit refuses: the second is never touched */
    CHECK_INT(0, atl_local_reserve(&c, "atl:{a}", 24, t + 30, &v));
    CHECK_INT(0, v.refused);
    CHECK_INT(7, v.used[0]);
    CHECK_INT(7, fake_counter(minute_key));

    /* a correction after the minute ended leaves that window alone */
    atl_local_correct(&c, "atl:{a}", 5, t, t + 40000);
    CHECK_INT(12, fake_counter(hour_key));
    CHECK_INT(7, fake_counter(minute_key));

    /* exactly the limit is admitted; an overshoot leaves remaining at 0 */
    CHECK_INT(0, atl_local_reserve(&c, "atl:{b}", 20, t, &v));
    CHECK_INT(-1, v.refused);
    CHECK_INT(0, atl_remaining(&c, &v, 1));
    atl_local_correct(&c, "atl:{b}", 5, t, t);
    CHECK_INT(0, atl_local_reserve(&c, "atl:{b}", 0, t, &v));
    CHECK_INT(1, v.refused);
    CHECK_INT(0, atl_remaining(&c, &v, 1));

    /* the dict fails on the second counter: the first is undone */
    fake_fail_new_after(1);
    CHECK_INT(-1, atl_local_reserve(&c, "atl:{c}", 3, t, &v));
    fake_fail_new_after(-1);
    CHECK_INT(0, fake_counter("atl:{c}:3600000:360000000"));
    CHECK_INT(INT64_MIN, fake_counter("atl:{c}:60000:360000000"));
    fake_dict_clear();
}

static sl_reply_t *int_reply(long long v)
{
    sl_reply_t *r = calloc(1, sizeof *r);
    r->type = SL_REPLY_INTEGER;
    r->integer = v;
    return r;
}

static int parse_of(const long long *values, size_t n, const atl_conf_t *c, int64_t est, atl_verdict_t *v,
                    char *why)
{
    sl_reply_t arr = {.type = SL_REPLY_ARRAY, .elements = n};
    sl_reply_t *items[8];
    for (size_t i = 0; i < n; i++)
        items[i] = int_reply(values[i]);
    arr.element = items;
    int rc = atl_redis_parse(&arr, c, est, v, why, 128);
    for (size_t i = 0; i < n; i++)
        free(items[i]);
    return rc;
}

static void test_redis_reply(void)
{
    current_case = "redis reply";
    atl_conf_t c = two_limits();
    atl_verdict_t v;
    char why[128];
    CHECK_INT(0, parse_of((const long long[]){0, 5000, 7, 3}, 4, &c, 12, &v, why));
    CHECK_INT(-1, v.refused);
    CHECK_INT(5000, v.at_ms);
    CHECK_INT(19, v.used[0]);
    CHECK_INT(15, v.used[1]);
    CHECK_INT(0, parse_of((const long long[]){2, 5000, 7, 9}, 4, &c, 12, &v, why));
    CHECK_INT(1, v.refused);
    CHECK_INT(9, v.used[1]);
    CHECK_INT(0, parse_of((const long long[]){0, 5000, -4, 0}, 4, &c, 12, &v, why));   /* a counter below 0 */
    CHECK_INT(8, v.used[0]);
    CHECK_INT(-1, parse_of((const long long[]){3, 5000, 7, 9}, 4, &c, 12, &v, why));
    CHECK_STR("unexpected reply from the ai-token-limit script", why);
    CHECK_INT(-1, parse_of((const long long[]){0, -1, 7, 9}, 4, &c, 12, &v, why));
    CHECK_INT(-1, parse_of((const long long[]){0, 5000, 7}, 3, &c, 12, &v, why));
    sl_reply_t err = {.type = SL_REPLY_ERROR, .str = "NOSCRIPT x", .len = 10};
    CHECK_INT(-1, atl_redis_parse(&err, &c, 12, &v, why, sizeof why));
    CHECK_STR("NOSCRIPT x", why);
    CHECK_INT(-1, atl_redis_parse(NULL, &c, 12, &v, why, sizeof why));
    CHECK_STR("no reply", why);

    atl_redis_args_t a;
    atl_redis_reserve_args(&c, "atl:{a}", 12, &a);
    CHECK_INT(6, a.argc);
    CHECK_MEM("atl:{a}", a.argv[0], a.lens[0]);
    CHECK_MEM("12", a.argv[1], a.lens[1]);
    CHECK_MEM("3600000", a.argv[2], a.lens[2]);
    CHECK_MEM("30", a.argv[3], a.lens[3]);
    CHECK_MEM("60000", a.argv[4], a.lens[4]);
    CHECK_MEM("20", a.argv[5], a.lens[5]);
}

static void test_format(void)
{
    current_case = "format";
    char out[32];
    atl_format_window(HOUR, out, sizeof out);
    CHECK_STR("1h", out);
    atl_format_window(24 * HOUR, out, sizeof out);
    CHECK_STR("24h", out);
    atl_format_window(90000, out, sizeof out);
    CHECK_STR("90s", out);
    atl_format_window(120000, out, sizeof out);
    CHECK_STR("2m", out);
    atl_format_window(1500, out, sizeof out);
    CHECK_STR("1500ms", out);
}

int main(void)
{
    atl_host = fake_host();
    test_estimate();
    test_windows();
    test_conf();
    test_keys();
    test_local();
    test_redis_reply();
    test_format();
    return check_summary();
}
