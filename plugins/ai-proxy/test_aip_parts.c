/* Unit tests of ai-proxy's pure parts: the byte buffer, failover signals,
 * the built-in mock provider and the order targets are tried in. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aip_buf.h"
#include "aip_conf.h"
#include "aip_host.h"
#include "aip_mock.h"
#include "aip_retry.h"
#include "aip_select.h"

/* aip_health.c (linked for aip_select.c) reads it; these tests never reach it. */
const sl_host_t *aip_host;

static int passed, failed;

#define CHECK_INT(expected, actual)                                                                              \
    do {                                                                                                         \
        long long e_ = (long long)(expected), a_ = (long long)(actual);                                          \
        if (e_ == a_) {                                                                                          \
            passed++;                                                                                            \
        } else {                                                                                                 \
            failed++;                                                                                            \
            fprintf(stderr, "%s:%d: %s: expected %lld, got %lld\n", __FILE__, __LINE__, #actual, e_, a_);        \
        }                                                                                                        \
    } while (0)

#define CHECK_STR(expected, actual)                                                                              \
    do {                                                                                                         \
        const char *e_ = (expected), *a_ = (actual);                                                             \
        if ((!e_ && !a_) || (e_ && a_ && strcmp(e_, a_) == 0)) {                                                 \
            passed++;                                                                                            \
        } else {                                                                                                 \
            failed++;                                                                                            \
            fprintf(stderr, "%s:%d: %s:\n  expected %s\n  got      %s\n", __FILE__, __LINE__, #actual,           \
                    e_ ? e_ : "(null)", a_ ? a_ : "(null)");                                                     \
        }                                                                                                        \
    } while (0)

static json_t *parse(const char *text)
{
    json_t *v = json_loads(text, 0, NULL);
    if (!v) {
        fprintf(stderr, "bad test JSON: %s\n", text);
        exit(2);
    }
    return v;
}

/* Compact JSON text of v (v is released). */
static char *dump(json_t *v)
{
    char *s = v ? json_dumps(v, JSON_COMPACT) : NULL;
    json_decref(v);
    return s;
}

/* ---- aip_buf ---- */

static void test_buf(void)
{
    aip_buf_t b = {.limit = 5};
    CHECK_INT(0, aip_buf_add(&b, "abc", 3));
    CHECK_INT(0, aip_buf_add(&b, "de", 2));
    CHECK_STR("abcde", b.p);
    CHECK_INT(-1, aip_buf_add(&b, "f", 1));
    CHECK_INT(1, b.over);
    CHECK_INT(-1, aip_buf_add(&b, "", 0));
    aip_buf_reset(&b);
    CHECK_INT(0, b.over);
    CHECK_INT(0, b.len);
    CHECK_STR("", b.p);
    CHECK_INT(0, aip_buf_str(&b, "xyz"));
    CHECK_STR("xyz", b.p);
    aip_buf_free(&b);
    CHECK_INT(0, b.len);

    aip_buf_t big = {0};
    for (int i = 0; i < 1000; i++)
        aip_buf_add(&big, "0123456789", 10);
    CHECK_INT(10000, big.len);
    CHECK_INT(0, big.over);
    CHECK_INT('9', big.p[9999]);
    aip_buf_free(&big);
}

/* ---- aip_retry ---- */

static void test_retryable(void)
{
    static const int yes[] = {408, 429, 500, 502, 503, 504, 529};
    static const int no[] = {200, 400, 401, 403, 404, 409, 413, 422, 501, 505};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        CHECK_INT(1, aip_status_retryable(yes[i], NULL));
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        CHECK_INT(0, aip_status_retryable(no[i], NULL));

    json_t *quota_code = parse("{\"error\":{\"message\":\"x\",\"type\":\"requests\",\"code\":\"insufficient_quota\"}}");
    json_t *quota_type = parse("{\"error\":{\"message\":\"x\",\"type\":\"insufficient_quota\",\"code\":null}}");
    json_t *limited = parse("{\"error\":{\"message\":\"x\",\"type\":\"requests\",\"code\":\"rate_limit_exceeded\"}}");
    json_t *odd = parse("{\"error\":\"insufficient_quota\"}");
    CHECK_INT(0, aip_status_retryable(429, quota_code));
    CHECK_INT(0, aip_status_retryable(429, quota_type));
    CHECK_INT(1, aip_status_retryable(429, limited));
    CHECK_INT(1, aip_status_retryable(429, odd));
    CHECK_INT(1, aip_is_quota_error(quota_code));
    CHECK_INT(0, aip_is_quota_error(limited));
    CHECK_INT(0, aip_is_quota_error(NULL));
    /* A 503 is retryable whatever its body says. */
    CHECK_INT(1, aip_status_retryable(503, quota_code));
    json_decref(quota_code);
    json_decref(quota_type);
    json_decref(limited);
    json_decref(odd);

    CHECK_INT(503, aip_client_status(529));
    CHECK_INT(429, aip_client_status(429));
    CHECK_INT(400, aip_client_status(400));
}

static int64_t hint1(const char *name, const char *value, time_t now)
{
    const char *h[] = {"content-type", "application/json", name, value, NULL};
    return aip_retry_hint_ms(2, h, now);
}

static void test_retry_hints(void)
{
    time_t now = 1700000000; /* Tue, 14 Nov 2023 22:13:20 GMT */
    CHECK_INT(-1, aip_retry_hint_ms(0, NULL, now));
    CHECK_INT(200, hint1("retry-after-ms", "200", now));
    CHECK_INT(201, hint1("Retry-After-Ms", "200.5", now));
    CHECK_INT(0, hint1("retry-after-ms", "0", now));
    CHECK_INT(1500, hint1("x-ms-retry-after-ms", "1500", now));
    CHECK_INT(1000, hint1("Retry-After", "1", now));
    CHECK_INT(2500, hint1("retry-after", " 2.5 ", now));
    CHECK_INT(-1, hint1("retry-after", "-1", now));
    CHECK_INT(-1, hint1("retry-after", "soon", now));
    CHECK_INT(-1, hint1("retry-after", "1s", now));
    CHECK_INT(-1, hint1("retry-after", "", now));
    CHECK_INT(-1, hint1("retry-after-ms", "1e400", now));
    CHECK_INT(5000, hint1("retry-after", "Tue, 14 Nov 2023 22:13:25 GMT", now));
    CHECK_INT(0, hint1("retry-after", "Tue, 14 Nov 2023 22:13:00 GMT", now));
    CHECK_INT(-1, hint1("retry-after", "Tue, 14 Nov 2023 22:13:25 PST", now));
    CHECK_INT(-1, hint1("x-other", "5", now));

    /* Preference: retry-after-ms, then x-ms-retry-after-ms, then retry-after. */
    const char *all[] = {"retry-after", "9", "x-ms-retry-after-ms", "300", "retry-after-ms", "100", NULL};
    CHECK_INT(100, aip_retry_hint_ms(3, all, now));
    CHECK_INT(300, aip_retry_hint_ms(2, all, now));
    /* An unreadable preferred hint gives way to the next. */
    const char *bad_ms[] = {"retry-after-ms", "abc", "retry-after", "2", NULL};
    CHECK_INT(2000, aip_retry_hint_ms(2, bad_ms, now));
}

/* ---- aip_mock ---- */

static const char REQ[] = "{\"model\":\"m\",\"messages\":["
                          "{\"role\":\"system\",\"content\":\"be brief\"},"
                          "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"first  q\"},"
                          "{\"type\":\"image_url\",\"image_url\":{\"url\":\"x\"}},{\"type\":\"text\",\"text\":\"here\"}]},"
                          "{\"role\":\"assistant\",\"content\":\"an answer\"},"
                          "{\"role\":\"tool\",\"tool_call_id\":\"c\",\"content\":\"tool says\"},"
                          "{\"role\":\"user\",\"content\":\"hi  you \"}]}";

static void test_mock_text(void)
{
    CHECK_INT(0, aip_words(""));
    CHECK_INT(0, aip_words(NULL));
    CHECK_INT(0, aip_words(" \t\n"));
    CHECK_INT(3, aip_words(" one\ttwo\nthree "));
    json_t *req = parse(REQ);
    CHECK_INT(11, aip_mock_prompt_words(req));
    char *reply = aip_mock_reply(req, NULL);
    CHECK_STR("mock reply to: hi  you ", reply);
    free(reply);
    reply = aip_mock_reply(req, "");
    CHECK_STR("mock reply to: hi  you ", reply);
    free(reply);
    reply = aip_mock_reply(req, "fixed answer");
    CHECK_STR("fixed answer", reply);
    free(reply);
    json_decref(req);

    req = parse("{\"messages\":[{\"role\":\"assistant\",\"content\":\"only me\"},{\"role\":\"user\",\"content\":7}]}");
    reply = aip_mock_reply(req, NULL);
    CHECK_STR("mock reply to: ", reply);
    CHECK_INT(2, aip_mock_prompt_words(req));
    free(reply);
    json_decref(req);

    req = parse("{\"messages\":\"not a list\"}");
    CHECK_INT(0, aip_mock_prompt_words(req));
    json_decref(req);
}

static void test_mock_completion(void)
{
    json_t *req = parse("{\"messages\":[{\"role\":\"user\",\"content\":\"hello there\"}]}");
    char *s = dump(aip_mock_completion(req, "mock-1", "chatcmpl-x", 42, "mock reply to: hello there"));
    CHECK_STR("{\"id\":\"chatcmpl-x\",\"object\":\"chat.completion\",\"created\":42,\"model\":\"mock-1\","
              "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"mock reply to: hello there\"},"
              "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":2,\"completion_tokens\":5,\"total_tokens\":7}}",
              s);
    free(s);
    json_decref(req);
}

#define HEAD "{\"id\":\"i\",\"object\":\"chat.completion.chunk\",\"created\":7,\"model\":\"m\","

static void test_mock_stream(void)
{
    json_t *req = parse("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");
    size_t len = 0;
    char *s = aip_mock_stream(req, "m", "i", 7, "a b", 1, &len);
    const char *want =
        "data: " HEAD "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n"
        "data: " HEAD "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"},\"finish_reason\":null}]}\n\n"
        "data: " HEAD "\"choices\":[{\"index\":0,\"delta\":{\"content\":\" b\"},\"finish_reason\":null}]}\n\n"
        "data: " HEAD "\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"
        "data: [DONE]\n\n";
    CHECK_STR(want, s);
    CHECK_INT(strlen(want), len);
    free(s);
    json_decref(req);

    /* include_usage: "usage": null on every chunk, then the usage chunk; pieces of two words. */
    req = parse("{\"stream_options\":{\"include_usage\":true},\"messages\":[{\"role\":\"user\",\"content\":\"x y\"}]}");
    s = aip_mock_stream(req, "m", "i", 7, " one two  three ", 2, &len);
    want = "data: " HEAD "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}],\"usage\":null}\n\n"
           "data: " HEAD "\"choices\":[{\"index\":0,\"delta\":{\"content\":\" one two\"},\"finish_reason\":null}],\"usage\":null}\n\n"
           "data: " HEAD "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"  three \"},\"finish_reason\":null}],\"usage\":null}\n\n"
           "data: " HEAD "\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":null}\n\n"
           "data: " HEAD "\"choices\":[],\"usage\":{\"prompt_tokens\":2,\"completion_tokens\":3,\"total_tokens\":5}}\n\n"
           "data: [DONE]\n\n";
    CHECK_STR(want, s);
    free(s);

    /* An empty reply has no content chunk; chunk_words below 1 counts as 1. */
    s = aip_mock_stream(req, "m", "i", 7, "", 0, &len);
    CHECK_INT(0, strstr(s, "\"content\":\"\"}") == NULL);
    CHECK_INT(1, strstr(s, "{\"content\":") == NULL);
    free(s);
    s = aip_mock_stream(req, "m", "i", 7, "p q", 0, &len);
    CHECK_INT(0, strstr(s, "{\"content\":\" q\"}") == NULL);
    free(s);
    json_decref(req);
}

static void test_mock_embeddings(void)
{
    char err[128] = "";
    json_t *req = parse("{\"input\":\"hello world\"}");
    char *s = dump(aip_mock_embeddings(req, "e", err, sizeof err));
    /* SHA-256("hello world") starts b9 4d 27 b9 93 4d 3e 08. */
    CHECK_STR("{\"object\":\"list\",\"data\":[{\"object\":\"embedding\",\"index\":0,\"embedding\":"
              "[0.4453125,-0.3984375,-0.6953125,0.4453125,0.1484375,-0.3984375,-0.515625,-0.9375]}],"
              "\"model\":\"e\",\"usage\":{\"prompt_tokens\":2,\"total_tokens\":2}}",
              s);
    free(s);
    json_decref(req);

    req = parse("{\"input\":[\"hello world\",\"a b c\"],\"dimensions\":2}");
    s = dump(aip_mock_embeddings(req, "e", err, sizeof err));
    CHECK_INT(0, strstr(s, "\"index\":1,\"embedding\":[") == NULL);
    CHECK_INT(0, strstr(s, "[0.4453125,-0.3984375]") == NULL);
    CHECK_INT(0, strstr(s, "\"usage\":{\"prompt_tokens\":5,\"total_tokens\":5}") == NULL);
    free(s);
    json_decref(req);

    static const struct {
        const char *req, *err;
    } bad[] = {
        {"{}", "input must be a string or a non-empty array of strings"},
        {"{\"input\":[]}", "input must be a string or a non-empty array of strings"},
        {"{\"input\":7}", "input must be a string or a non-empty array of strings"},
        {"{\"input\":[\"a\",[1]]}", "input[1] must be a string"},
        {"{\"input\":\"a\",\"dimensions\":0}", "dimensions must be an integer from 1 to 32"},
        {"{\"input\":\"a\",\"dimensions\":33}", "dimensions must be an integer from 1 to 32"},
        {"{\"input\":\"a\",\"dimensions\":\"8\"}", "dimensions must be an integer from 1 to 32"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        req = parse(bad[i].req);
        err[0] = '\0';
        json_t *out = aip_mock_embeddings(req, "e", err, sizeof err);
        CHECK_INT(1, out == NULL);
        CHECK_STR(bad[i].err, err);
        json_decref(out);
        json_decref(req);
    }
}

/* ---- aip_select ---- */

static aip_model_t model_of(aip_strategy_t s, int n, const int *weights)
{
    aip_model_t m;
    memset(&m, 0, sizeof m);
    m.strategy = s;
    m.n_targets = n;
    for (int i = 0; i < n; i++)
        m.targets[i].weight = weights ? weights[i] : 1;
    return m;
}

static void order_str(char *out, const int *order, int n)
{
    for (int i = 0; i < n; i++)
        out[i] = (char)('0' + order[i]);
    out[n] = '\0';
}

static void test_order(void)
{
    int order[AIP_MAX_TARGETS];
    char s[AIP_MAX_TARGETS + 1];
    bool all[4] = {true, true, true, true};
    int64_t none[4] = {-1, -1, -1, -1};

    aip_model_t m = model_of(AIP_FAILOVER, 4, NULL);
    order_str(s, order, aip_order_pure(&m, all, none, 0, order));
    CHECK_STR("0123", s);
    bool some[4] = {false, true, false, true};
    order_str(s, order, aip_order_pure(&m, some, none, 0, order));
    CHECK_STR("13", s);
    bool nothing[4] = {false, false, false, false};
    CHECK_INT(0, aip_order_pure(&m, nothing, none, 0, order));

    int w[4] = {1, 0, 3, 2};
    m = model_of(AIP_WEIGHTED, 4, w);
    /* picks 0 -> t0; 1..3 -> t2; 4..5 -> t3; then modulo the total 6 */
    static const struct {
        uint32_t pick;
        const char *want;
    } picks[] = {{0, "0123"}, {1, "2013"}, {3, "2013"}, {4, "3012"}, {5, "3012"}, {6, "0123"}, {7, "2013"}};
    for (size_t i = 0; i < sizeof picks / sizeof picks[0]; i++) {
        order_str(s, order, aip_order_pure(&m, all, none, picks[i].pick, order));
        CHECK_STR(picks[i].want, s);
    }
    bool no_first[4] = {false, true, true, true};
    order_str(s, order, aip_order_pure(&m, no_first, none, 0, order));
    CHECK_STR("213", s);
    int zero[3] = {0, 0, 0};
    m = model_of(AIP_WEIGHTED, 3, zero);
    order_str(s, order, aip_order_pure(&m, all, none, 2, order));
    CHECK_STR("012", s);

    m = model_of(AIP_LOWEST_LATENCY, 4, NULL);
    int64_t lat[4] = {300, 20, -1, 20};
    order_str(s, order, aip_order_pure(&m, all, lat, 0, order));
    CHECK_STR("2130", s);
    bool not_untried[4] = {true, true, false, true};
    order_str(s, order, aip_order_pure(&m, not_untried, lat, 0, order));
    CHECK_STR("130", s);
    order_str(s, order, aip_order_pure(&m, all, none, 0, order));
    CHECK_STR("0123", s);

    m = model_of(AIP_FAILOVER, 1, NULL);
    order_str(s, order, aip_order_pure(&m, all, none, 0, order));
    CHECK_STR("0", s);
}

int main(void)
{
    test_buf();
    test_retryable();
    test_retry_hints();
    test_mock_text();
    test_mock_completion();
    test_mock_stream();
    test_mock_embeddings();
    test_order();
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
