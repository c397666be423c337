/* Translation library: SSE parsing, request/response/error translation for
 * Anthropic and Gemini, the OpenAI relay with include_usage, and stream
 * translation fed whole, byte by byte and in random splits. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sse.h"
#include "translate.h"

static int passed, failed;

#define CHECK_INT(expected, actual)                                                                  \
    do {                                                                                             \
        long long e_ = (long long)(expected), a_ = (long long)(actual);                              \
        if (e_ == a_) {                                                                              \
            passed++;                                                                                \
        } else {                                                                                     \
            failed++;                                                                                \
            fprintf(stderr, "%s:%d: %s: expected %lld, got %lld\n", __FILE__, __LINE__, #actual, e_, \
                    a_);                                                                             \
        }                                                                                            \
    } while (0)

#define CHECK_STR(expected, actual)                                                                    \
    do {                                                                                               \
        const char *e_ = (expected), *a_ = (actual);                                                   \
        if (a_ && strcmp(e_, a_) == 0) {                                                               \
            passed++;                                                                                  \
        } else {                                                                                       \
            failed++;                                                                                  \
            fprintf(stderr, "%s:%d: %s:\n  expected \"%s\"\n  got      \"%s\"\n", __FILE__, __LINE__, \
                    #actual, e_, a_ ? a_ : "(null)");                                                  \
        }                                                                                              \
    } while (0)

#define CHECK_NULL(actual)                                                                         \
    do {                                                                                           \
        const void *a_ = (actual);                                                                 \
        if (!a_) {                                                                                 \
            passed++;                                                                              \
        } else {                                                                                   \
            failed++;                                                                              \
            fprintf(stderr, "%s:%d: %s: expected NULL, got a value\n", __FILE__, __LINE__, #actual); \
        }                                                                                          \
    } while (0)

/* Compares JSON by value; takes ownership of actual. */
#define CHECK_JSON(expected_text, actual) check_json(__FILE__, __LINE__, #actual, expected_text, actual)

static void check_json(const char *file, int line, const char *what, const char *expected_text, json_t *actual) {
    json_error_t jerr;
    json_t *expected = json_loads(expected_text, JSON_DECODE_ANY, &jerr);
    if (!expected) {
        failed++;
        fprintf(stderr, "%s:%d: bad expected JSON: %s\n", file, line, jerr.text);
    } else if (actual && json_equal(expected, actual)) {
        passed++;
    } else {
        failed++;
        char *a = actual ? json_dumps(actual, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
        char *e = json_dumps(expected, JSON_COMPACT | JSON_SORT_KEYS);
        fprintf(stderr, "%s:%d: %s:\n  expected %s\n  got      %s\n", file, line, what, e, a ? a : "NULL");
        free(a);
        free(e);
    }
    json_decref(expected);
    json_decref(actual);
}

static json_t *J(const char *text) {
    json_error_t jerr;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &jerr);
    if (!v) {
        fprintf(stderr, "test fixture is not JSON (%s): %s\n", jerr.text, text);
        exit(2);
    }
    return v;
}

/* ---- growable byte buffer for captured output ---- */

typedef struct buf {
    char *p;
    size_t len, cap;
} buf_t;

static void buf_add(buf_t *b, const char *s, size_t n) {
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->p = realloc(b->p, b->cap);
        if (!b->p)
            abort();
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void buf_adds(buf_t *b, const char *s) {
    buf_add(b, s, strlen(s));
}

static const char *buf_str(buf_t *b) {
    if (!b->p)
        buf_add(b, "", 0);
    return b->p;
}

/* ================= SSE parser ================= */

typedef struct sse_log {
    buf_t text; /* "type|data|raw-length;" per event */
    buf_t raw;  /* all raw bytes reported */
    int events;
    int refuse_at; /* callback refuses the n-th event (1-based), 0 never */
} sse_log_t;

static int log_event(void *arg, const sse_event_t *ev) {
    sse_log_t *l = arg;
    char tmp[64];
    l->events++;
    buf_add(&l->text, ev->type, ev->type_len);
    buf_adds(&l->text, "|");
    if (ev->has_data)
        buf_add(&l->text, ev->data, ev->data_len);
    else
        buf_adds(&l->text, "-");
    snprintf(tmp, sizeof tmp, "|%zu;", ev->raw_len);
    buf_adds(&l->text, tmp);
    buf_add(&l->raw, ev->raw, ev->raw_len);
    CHECK_INT(strlen(ev->data), ev->data_len);
    CHECK_INT(strlen(ev->type), ev->type_len);
    return l->refuse_at == l->events ? -1 : 0;
}

static void sse_parse_all(const char *in, size_t len, size_t step, sse_log_t *l, int *rc) {
    sse_parser_t *p = sse_parser_new(0, log_event, l);
    *rc = 0;
    for (size_t off = 0; off < len && *rc == 0; off += step)
        *rc = sse_parser_feed(p, in + off, off + step > len ? len - off : step);
    sse_parser_free(p);
}

static void test_sse_fields(void) {
    static const char in[] = "event: greet\ndata: hello\ndata:world\ndata:  two spaces\nid: 7\nretry: 10\n\n"
                             ": a comment\n\n"
                             "data\n\n"
                             "\n"
                             "event: a\nevent: b\ndata: x\n\n"
                             "bogus: field\ndata: y\n\n"
                             "data: tail without blank line\n";
    static const char expected[] = "greet|hello\nworld\n two spaces|71;"
                                   "|-|13;"
                                   "||6;"
                                   "|-|1;"
                                   "b|x|27;"
                                   "|y|22;";
    for (size_t step = 1; step <= sizeof in; step++) {
        sse_log_t l = {0};
        int rc;
        sse_parse_all(in, sizeof in - 1, step, &l, &rc);
        CHECK_INT(0, rc);
        CHECK_STR(expected, buf_str(&l.text));
        /* Everything up to the unfinished last event is reported byte for byte. */
        size_t complete = sizeof in - 1 - strlen("data: tail without blank line\n");
        CHECK_INT(complete, l.raw.len);
        CHECK_INT(0, memcmp(in, buf_str(&l.raw), complete));
        free(l.text.p);
        free(l.raw.p);
    }
}

static void test_sse_line_endings(void) {
    /* CR alone, CRLF, LF, and a BOM at the very start of the stream. */
    static const char in[] = "\xEF\xBB\xBF"
                             "data: a\r\rdata: b\r\n\r\ndata: c\n\r\n"
                             "data: d\r\n\n";
    for (size_t step = 1; step <= sizeof in; step++) {
        sse_log_t l = {0};
        int rc;
        sse_parse_all(in, sizeof in - 1, step, &l, &rc);
        CHECK_INT(0, rc);
        CHECK_STR("|a|12;|b|11;|c|10;|d|10;", buf_str(&l.text));
        CHECK_INT(sizeof in - 1, l.raw.len);
        CHECK_INT(0, memcmp(in, buf_str(&l.raw), sizeof in - 1));
        free(l.text.p);
        free(l.raw.p);
    }
    /* A CR ending one feed and the LF starting the next are one line end;
     * a blank line's CR at the end waits to see whether a LF follows. */
    sse_log_t l = {0};
    sse_parser_t *p = sse_parser_new(0, log_event, &l);
    CHECK_INT(0, sse_parser_feed(p, "data: x\r", 8));
    CHECK_INT(8, sse_parser_pending(p));
    CHECK_INT(0, sse_parser_feed(p, "\n\r", 2));
    CHECK_INT(0, l.events);
    CHECK_INT(10, sse_parser_pending(p));
    CHECK_INT(0, sse_parser_feed(p, "\ndata: y\n\n", 10));
    CHECK_STR("|x|11;|y|9;", buf_str(&l.text));
    CHECK_INT(0, sse_parser_feed(p, "data: z\r\r", 9));
    CHECK_INT(2, l.events);
    CHECK_INT(0, sse_parser_end(p)); /* the stream ended there: z is complete */
    CHECK_STR("|x|11;|y|9;|z|9;", buf_str(&l.text));
    CHECK_INT(0, sse_parser_pending(p));
    CHECK_INT(0, sse_parser_feed(p, "data: w", 7));
    CHECK_INT(0, sse_parser_end(p)); /* unfinished: not dispatched */
    CHECK_INT(3, l.events);
    sse_parser_free(p);
    free(l.text.p);
    free(l.raw.p);
}

static void test_sse_limits(void) {
    sse_log_t l = {0};
    /* exactly at the cap: "data: " + 4 + "\n\n" = 12 bytes */
    sse_parser_t *p = sse_parser_new(12, log_event, &l);
    CHECK_INT(0, sse_parser_feed(p, "data: 1234\n\n", 12));
    CHECK_INT(1, l.events);
    CHECK_INT(0, sse_parser_feed(p, "data: 1234", 10));
    CHECK_INT(0, sse_parser_feed(p, "5", 1)); /* 11 bytes pending, still under */
    CHECK_INT(-1, sse_parser_feed(p, "\n\n", 2));
    CHECK_INT(-1, sse_parser_feed(p, "data: z\n\n", 9)); /* stays failed */
    CHECK_INT(1, l.events);
    sse_parser_free(p);
    free(l.text.p);
    free(l.raw.p);

    /* The default cap is 1 MiB: a larger event fails, many small ones do not. */
    sse_log_t l2 = {0};
    p = sse_parser_new(0, log_event, &l2);
    char *big = malloc(SSE_DEFAULT_MAX_EVENT + 16);
    memset(big, 'x', SSE_DEFAULT_MAX_EVENT + 16);
    memcpy(big, "data: ", 6);
    CHECK_INT(0, sse_parser_feed(p, big, SSE_DEFAULT_MAX_EVENT - 2));
    CHECK_INT(-1, sse_parser_feed(p, big, 3));
    sse_parser_free(p);
    free(big);
    free(l2.text.p);
    free(l2.raw.p);

    sse_log_t l3 = {0};
    p = sse_parser_new(0, log_event, &l3);
    int rc = 0;
    for (int i = 0; i < 200000 && rc == 0; i++)
        rc = sse_parser_feed(p, "data: 12345678\n\n", 16);
    CHECK_INT(0, rc);
    CHECK_INT(200000, l3.events);
    sse_parser_free(p);
    free(l3.text.p);
    free(l3.raw.p);

    /* A callback refusing an event fails the feed. */
    sse_log_t l4 = {.refuse_at = 2};
    p = sse_parser_new(0, log_event, &l4);
    CHECK_INT(-1, sse_parser_feed(p, "data: a\n\ndata: b\n\ndata: c\n\n", 27));
    CHECK_INT(2, l4.events);
    sse_parser_free(p);
    free(l4.text.p);
    free(l4.raw.p);
}

/* ================= requests ================= */

static char err[256];

static void test_anthropic_request_basic(void) {
    json_t *req = J("{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"
                    "{\"role\":\"user\",\"content\":\"Hi\"}],\"temperature\":0.5,\"top_p\":0.9,\"stream\":true,"
                    "\"user\":\"u-1\",\"frequency_penalty\":1,\"logprobs\":true,\"custom\":{\"x\":1},"
                    "\"stream_options\":{\"include_usage\":true}}");
    CHECK_JSON("{\"model\":\"claude-x\",\"max_tokens\":1024,\"system\":\"Be brief.\","
               "\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],\"temperature\":0.5,\"top_p\":0.9,"
               "\"stream\":true,\"metadata\":{\"user_id\":\"u-1\"}}",
               ai_to_anthropic_request(req, "claude-x", 1024, err, sizeof err));
    json_decref(req);

    /* The client's model is used when none is given; several system messages
     * (developer too, text parts too) become system blocks in order. */
    req = J("{\"model\":\"claude-y\",\"messages\":[{\"role\":\"system\",\"content\":\"One.\"},"
            "{\"role\":\"developer\",\"content\":[{\"type\":\"text\",\"text\":\"Two \"},{\"type\":\"text\","
            "\"text\":\"parts.\"}]},{\"role\":\"user\",\"content\":\"Q\"},{\"role\":\"system\",\"content\":\"Three.\"}],"
            "\"max_tokens\":50,\"stop\":\"END\"}");
    CHECK_JSON("{\"model\":\"claude-y\",\"max_tokens\":50,\"system\":[{\"type\":\"text\",\"text\":\"One.\"},"
               "{\"type\":\"text\",\"text\":\"Two parts.\"},{\"type\":\"text\",\"text\":\"Three.\"}],"
               "\"messages\":[{\"role\":\"user\",\"content\":\"Q\"}],\"stop_sequences\":[\"END\"]}",
               ai_to_anthropic_request(req, NULL, 1024, err, sizeof err));
    json_decref(req);
}

static void test_anthropic_request_max_tokens_and_stop(void) {
    static const struct {
        const char *extra;
        int dflt;
        const char *expect_max; /* NULL = error */
        const char *expect_err;
    } cases[] = {
        {"", 4096, "4096", NULL},
        {",\"max_tokens\":77", 4096, "77", NULL},
        {",\"max_tokens\":77,\"max_completion_tokens\":88", 4096, "88", NULL},
        {",\"max_completion_tokens\":null,\"max_tokens\":5", 0, "5", NULL},
        {"", 0, NULL, "max_tokens is required for anthropic"},
        {",\"max_tokens\":0", 100, NULL, "max_tokens must be a positive integer"},
        {",\"max_tokens\":\"9\"", 100, NULL, "max_tokens must be a positive integer"},
        {",\"max_completion_tokens\":1.5", 100, NULL, "max_completion_tokens must be a positive integer"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[512], expect[512];
        snprintf(text, sizeof text, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]%s}", cases[i].extra);
        json_t *req = J(text);
        err[0] = '\0';
        json_t *out = ai_to_anthropic_request(req, "m", cases[i].dflt, err, sizeof err);
        if (cases[i].expect_max) {
            snprintf(expect, sizeof expect,
                     "{\"model\":\"m\",\"max_tokens\":%s,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
                     cases[i].expect_max);
            CHECK_JSON(expect, out);
        } else {
            CHECK_NULL(out);
            CHECK_STR(cases[i].expect_err, err);
        }
        json_decref(req);
    }

    static const struct {
        const char *stop;
        const char *expect; /* stop_sequences JSON, "" none, NULL error */
        const char *expect_err;
    } stops[] = {
        {"\"a\"", "[\"a\"]", NULL},
        {"[\"a\",\"b\"]", "[\"a\",\"b\"]", NULL},
        {"[]", "", NULL},
        {"null", "", NULL},
        {"5", NULL, "stop must be a string or an array of strings"},
        {"[\"a\",1]", NULL, "stop[1] must be a string"},
    };
    for (size_t i = 0; i < sizeof stops / sizeof stops[0]; i++) {
        char text[512], expect[512];
        snprintf(text, sizeof text, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stop\":%s}",
                 stops[i].stop);
        json_t *req = J(text);
        json_t *out = ai_to_anthropic_request(req, "m", 10, err, sizeof err);
        if (stops[i].expect) {
            snprintf(expect, sizeof expect,
                     "{\"model\":\"m\",\"max_tokens\":10,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]%s%s}",
                     *stops[i].expect ? ",\"stop_sequences\":" : "", stops[i].expect);
            CHECK_JSON(expect, out);
        } else {
            CHECK_NULL(out);
            CHECK_STR(stops[i].expect_err, err);
        }
        json_decref(req);
    }
}

static void test_anthropic_request_tools(void) {
    json_t *req = J(
        "{\"messages\":["
        "{\"role\":\"user\",\"content\":\"Weather in Paris and the time?\"},"
        "{\"role\":\"assistant\",\"content\":\"Checking.\",\"tool_calls\":["
        "{\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}},"
        "{\"id\":\"call_2\",\"type\":\"function\",\"function\":{\"name\":\"now\",\"arguments\":\"\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"call_1\",\"content\":\"18C\"},"
        "{\"role\":\"tool\",\"tool_call_id\":\"call_2\",\"content\":[{\"type\":\"text\",\"text\":\"12:00\"}]},"
        "{\"role\":\"user\",\"content\":\"Thanks\"},"
        "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"call_3\",\"type\":\"function\","
        "\"function\":{\"name\":\"now\",\"arguments\":\"{}\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"call_3\",\"content\":\"12:01\"}],"
        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":\"Weather\","
        "\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}},\"required\":[\"city\"]}}},"
        "{\"type\":\"function\",\"function\":{\"name\":\"now\"}}],"
        "\"tool_choice\":\"required\",\"parallel_tool_calls\":false}");
    CHECK_JSON(
        "{\"model\":\"m\",\"max_tokens\":10,\"messages\":["
        "{\"role\":\"user\",\"content\":\"Weather in Paris and the time?\"},"
        "{\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"Checking.\"},"
        "{\"type\":\"tool_use\",\"id\":\"call_1\",\"name\":\"get_weather\",\"input\":{\"city\":\"Paris\"}},"
        "{\"type\":\"tool_use\",\"id\":\"call_2\",\"name\":\"now\",\"input\":{}}]},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"call_1\",\"content\":\"18C\"},"
        "{\"type\":\"tool_result\",\"tool_use_id\":\"call_2\",\"content\":\"12:00\"},"
        "{\"type\":\"text\",\"text\":\"Thanks\"}]},"
        "{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":\"call_3\",\"name\":\"now\",\"input\":{}}]},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"call_3\",\"content\":\"12:01\"}]}],"
        "\"tools\":[{\"name\":\"get_weather\",\"description\":\"Weather\",\"input_schema\":{\"type\":\"object\","
        "\"properties\":{\"city\":{\"type\":\"string\"}},\"required\":[\"city\"]}},"
        "{\"name\":\"now\",\"input_schema\":{\"type\":\"object\",\"properties\":{}}}],"
        "\"tool_choice\":{\"type\":\"any\",\"disable_parallel_tool_use\":true}}",
        ai_to_anthropic_request(req, "m", 10, err, sizeof err));
    json_decref(req);

    static const struct {
        const char *choice;
        const char *expect;
    } choices[] = {
        {"\"auto\"", "{\"type\":\"auto\"}"},
        {"\"none\"", "{\"type\":\"none\"}"},
        {"{\"type\":\"function\",\"function\":{\"name\":\"now\"}}", "{\"type\":\"tool\",\"name\":\"now\"}"},
    };
    for (size_t i = 0; i < sizeof choices / sizeof choices[0]; i++) {
        char text[512], expect[512];
        snprintf(text, sizeof text,
                 "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{\"type\":\"function\","
                 "\"function\":{\"name\":\"now\"}}],\"tool_choice\":%s}",
                 choices[i].choice);
        snprintf(expect, sizeof expect,
                 "{\"model\":\"m\",\"max_tokens\":10,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                 "\"tools\":[{\"name\":\"now\",\"input_schema\":{\"type\":\"object\",\"properties\":{}}}],"
                 "\"tool_choice\":%s}",
                 choices[i].expect);
        json_t *r = J(text);
        CHECK_JSON(expect, ai_to_anthropic_request(r, "m", 10, err, sizeof err));
        json_decref(r);
    }
}

static void test_anthropic_request_images(void) {
    json_t *req = J("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"What is this?\"},"
                    "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,iVBORw0KGgo=\"}},"
                    "{\"type\":\"image_url\",\"image_url\":{\"url\":\"https://example.com/cat.jpg\",\"detail\":\"low\"}}]}]}");
    CHECK_JSON("{\"model\":\"m\",\"max_tokens\":10,\"messages\":[{\"role\":\"user\",\"content\":["
               "{\"type\":\"text\",\"text\":\"What is this?\"},"
               "{\"type\":\"image\",\"source\":{\"type\":\"base64\",\"media_type\":\"image/png\",\"data\":\"iVBORw0KGgo=\"}},"
               "{\"type\":\"image\",\"source\":{\"type\":\"url\",\"url\":\"https://example.com/cat.jpg\"}}]}]}",
               ai_to_anthropic_request(req, "m", 10, err, sizeof err));
    json_decref(req);
}

static void check_request_error(json_t *(*fn)(const char *text), const char *text, const char *expect_err) {
    err[0] = '\0';
    json_t *out = fn(text);
    CHECK_NULL(out);
    CHECK_STR(expect_err, err);
    json_decref(out);
}

static json_t *anthropic_from_text(const char *text) {
    json_t *req = J(text);
    json_t *out = ai_to_anthropic_request(req, "m", 10, err, sizeof err);
    json_decref(req);
    return out;
}

static json_t *gemini_from_text(const char *text) {
    json_t *req = J(text);
    json_t *out = ai_to_gemini_request(req, err, sizeof err);
    json_decref(req);
    return out;
}

#define U "{\"role\":\"user\",\"content\":\"x\"}"

static void test_request_errors(void) {
    static const struct {
        const char *body;
        const char *anthropic_err;
        const char *gemini_err;
    } cases[] = {
        {"[]", "request body must be a JSON object", "request body must be a JSON object"},
        {"{}", "messages must be a non-empty array", "messages must be a non-empty array"},
        {"{\"messages\":[]}", "messages must be a non-empty array", "messages must be a non-empty array"},
        {"{\"messages\":[{\"content\":\"x\"}]}", "messages[0].role must be a string",
         "messages[0].role must be a string"},
        {"{\"messages\":[" U ",{\"role\":\"wizard\",\"content\":\"x\"}]}",
         "messages[1].role 'wizard' is not supported by anthropic",
         "messages[1].role 'wizard' is not supported by gemini"},
        {"{\"messages\":[{\"role\":\"system\",\"content\":\"only\"}]}",
         "at least one user or assistant message is required", "at least one user or assistant message is required"},
        {"{\"messages\":[{\"role\":\"system\",\"content\":5}," U "]}", "messages[0]: system content must be text",
         "messages[0]: system content must be text"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":null}]}",
         "messages[0].content must be a string or an array of parts",
         "messages[0].content must be a string or an array of parts"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"no type\"}]}]}", "content part 0 has no type",
         "content part 0 has no type"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\"}]}]}", "text part 0 has no text",
         "text part 0 has no text"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"file\",\"file\":{}}]}]}",
         "content part type 'file' is not supported by anthropic",
         "content part type 'file' is not supported by gemini"},
        {"{\"messages\":[" U ",{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"c\",\"type\":\"function\","
         "\"function\":{\"name\":\"f\",\"arguments\":\"{not json\"}}]}]}",
         "tool_calls[0].function.arguments is not a JSON object",
         "tool_calls[0].function.arguments is not a JSON object"},
        {"{\"messages\":[" U ",{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"c\",\"type\":\"function\","
         "\"function\":{\"name\":\"f\",\"arguments\":\"[1]\"}}]}]}",
         "tool_calls[0].function.arguments is not a JSON object",
         "tool_calls[0].function.arguments is not a JSON object"},
        {"{\"messages\":[" U ",{\"role\":\"assistant\",\"tool_calls\":{}}]}", "tool_calls must be an array",
         "tool_calls must be an array"},
        {"{\"messages\":[" U ",{\"role\":\"tool\",\"content\":\"r\"}]}",
         "messages[1]: a tool message needs tool_call_id and text content",
         "messages[1]: a tool message needs tool_call_id and text content"},
        {"{\"messages\":[" U "],\"n\":2}", "n must be 1 for this provider", "n must be 1 for this provider"},
        {"{\"messages\":[" U "],\"temperature\":\"hot\"}", "temperature must be a number",
         "temperature must be a number"},
        {"{\"messages\":[" U "],\"tools\":[{\"type\":\"retrieval\"}]}", "tools[0] must be a function tool with a name",
         "tools[0] must be a function tool with a name"},
        {"{\"messages\":[" U "],\"tools\":{}}", "tools must be an array", "tools must be an array"},
        {"{\"messages\":[" U "],\"tool_choice\":\"sometimes\"}",
         "tool_choice must be auto, none, required or {\"type\":\"function\",...}",
         "tool_choice must be auto, none, required or {\"type\":\"function\",...}"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{\"url\":"
         "\"ftp://h/x.png\"}}]}]}",
         "image url must be a base64 data: URL or an http(s) URL",
         "gemini cannot fetch image URLs; send the image as a base64 data: URL"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{}}]}]}",
         "image_url part without a url", "image_url part without a url"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        check_request_error(anthropic_from_text, cases[i].body, cases[i].anthropic_err);
        check_request_error(gemini_from_text, cases[i].body, cases[i].gemini_err);
    }
    check_request_error(anthropic_from_text,
                        "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"input_audio\",\"input_audio\":"
                        "{\"data\":\"AAA=\",\"format\":\"wav\"}}]}]}",
                        "content part type 'input_audio' is not supported by anthropic");
    check_request_error(gemini_from_text,
                        "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{\"url\":"
                        "\"https://example.com/cat.jpg\"}}]}]}",
                        "gemini cannot fetch image URLs; send the image as a base64 data: URL");
    check_request_error(gemini_from_text,
                        "{\"messages\":[" U ",{\"role\":\"tool\",\"tool_call_id\":\"nope\",\"content\":\"r\"}]}",
                        "messages[1]: tool_call_id 'nope' matches no earlier tool call");
    check_request_error(gemini_from_text, "{\"messages\":[" U "],\"response_format\":{\"type\":\"grammar\"}}",
                        "response_format type 'grammar' is not supported by gemini");
    check_request_error(gemini_from_text, "{\"messages\":[" U "],\"seed\":1.5}", "seed must be an integer");
    /* Empty system text is left out (providers reject empty text blocks). */
    json_t *r = J("{\"messages\":[{\"role\":\"system\",\"content\":\"\"}," U "]}");
    CHECK_JSON("{\"model\":\"m\",\"max_tokens\":10,\"messages\":[" U "]}",
               ai_to_anthropic_request(r, "m", 10, err, sizeof err));
    CHECK_JSON("{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"x\"}]}]}",
               ai_to_gemini_request(r, err, sizeof err));
    json_decref(r);
    /* Anthropic needs a model from somewhere. */
    json_t *req = J("{\"messages\":[" U "]}");
    err[0] = '\0';
    CHECK_NULL(ai_to_anthropic_request(req, NULL, 10, err, sizeof err));
    CHECK_STR("model is required", err);
    json_decref(req);
    /* A NULL err buffer is allowed. */
    req = J("[]");
    CHECK_NULL(ai_to_gemini_request(req, NULL, 0));
    json_decref(req);
}

static void test_gemini_request(void) {
    json_t *req = J(
        "{\"model\":\"gpt-4o\",\"messages\":["
        "{\"role\":\"system\",\"content\":\"Be brief.\"},{\"role\":\"developer\",\"content\":\"Use metric.\"},"
        "{\"role\":\"user\",\"content\":\"Hi\"},{\"role\":\"assistant\",\"content\":\"Hello!\"},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Look:\"},{\"type\":\"image_url\","
        "\"image_url\":{\"url\":\"data:image/jpeg;base64,/9j/4AAQ\"}},{\"type\":\"input_audio\",\"input_audio\":"
        "{\"data\":\"UklGRg==\",\"format\":\"wav\"}}]}],"
        "\"temperature\":0.25,\"top_p\":1,\"max_tokens\":64,\"stop\":[\"\\n\\n\"],\"seed\":42,"
        "\"presence_penalty\":0.5,\"frequency_penalty\":-0.5,\"response_format\":{\"type\":\"json_object\"},"
        "\"stream\":true,\"user\":\"u\",\"logit_bias\":{\"1\":2}}");
    CHECK_JSON("{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"Hi\"}]},"
               "{\"role\":\"model\",\"parts\":[{\"text\":\"Hello!\"}]},"
               "{\"role\":\"user\",\"parts\":[{\"text\":\"Look:\"},{\"inlineData\":{\"mimeType\":\"image/jpeg\","
               "\"data\":\"/9j/4AAQ\"}},{\"inlineData\":{\"mimeType\":\"audio/wav\",\"data\":\"UklGRg==\"}}]}],"
               "\"systemInstruction\":{\"parts\":[{\"text\":\"Be brief.\"},{\"text\":\"Use metric.\"}]},"
               "\"generationConfig\":{\"temperature\":0.25,\"topP\":1,\"seed\":42,\"presencePenalty\":0.5,"
               "\"frequencyPenalty\":-0.5,\"responseMimeType\":\"application/json\",\"maxOutputTokens\":64,"
               "\"stopSequences\":[\"\\n\\n\"]}}",
               ai_to_gemini_request(req, err, sizeof err));
    json_decref(req);

    req = J("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_completion_tokens\":9,"
            "\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"r\",\"schema\":"
            "{\"type\":\"object\",\"additionalProperties\":false}}}}");
    CHECK_JSON("{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"x\"}]}],\"generationConfig\":"
               "{\"responseMimeType\":\"application/json\",\"responseJsonSchema\":{\"type\":\"object\","
               "\"additionalProperties\":false},\"maxOutputTokens\":9}}",
               ai_to_gemini_request(req, err, sizeof err));
    json_decref(req);
}

static void test_gemini_request_tools(void) {
    json_t *req = J(
        "{\"messages\":["
        "{\"role\":\"user\",\"content\":\"Weather in Paris and the time?\"},"
        "{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":["
        "{\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}},"
        "{\"id\":\"call_2\",\"type\":\"function\",\"function\":{\"name\":\"now\",\"arguments\":\"{}\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"call_1\",\"content\":\"{\\\"temp\\\":18}\"},"
        "{\"role\":\"tool\",\"tool_call_id\":\"call_2\",\"content\":\"12:00\"},"
        "{\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"18C at noon.\"}]},"
        "{\"role\":\"user\",\"content\":\"Thanks\"}],"
        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":\"Weather\","
        "\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}},"
        "\"additionalProperties\":false}}},{\"type\":\"function\",\"function\":{\"name\":\"now\"}}],"
        "\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"now\"}}}");
    CHECK_JSON(
        "{\"contents\":["
        "{\"role\":\"user\",\"parts\":[{\"text\":\"Weather in Paris and the time?\"}]},"
        "{\"role\":\"model\",\"parts\":[{\"functionCall\":{\"name\":\"get_weather\",\"args\":{\"city\":\"Paris\"}}},"
        "{\"functionCall\":{\"name\":\"now\",\"args\":{}}}]},"
        "{\"role\":\"user\",\"parts\":[{\"functionResponse\":{\"name\":\"get_weather\",\"response\":{\"temp\":18}}},"
        "{\"functionResponse\":{\"name\":\"now\",\"response\":{\"output\":\"12:00\"}}}]},"
        "{\"role\":\"model\",\"parts\":[{\"text\":\"18C at noon.\"}]},"
        "{\"role\":\"user\",\"parts\":[{\"text\":\"Thanks\"}]}],"
        "\"tools\":[{\"functionDeclarations\":[{\"name\":\"get_weather\",\"description\":\"Weather\","
        "\"parametersJsonSchema\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}},"
        "\"additionalProperties\":false}},{\"name\":\"now\"}]}],"
        "\"toolConfig\":{\"functionCallingConfig\":{\"mode\":\"ANY\",\"allowedFunctionNames\":[\"now\"]}}}",
        ai_to_gemini_request(req, err, sizeof err));
    json_decref(req);

    static const struct {
        const char *choice, *mode;
    } modes[] = {{"\"auto\"", "AUTO"}, {"\"none\"", "NONE"}, {"\"required\"", "ANY"}};
    for (size_t i = 0; i < 3; i++) {
        char text[256], expect[512];
        snprintf(text, sizeof text, "{\"messages\":[" U "],\"tools\":[],\"tool_choice\":%s}", modes[i].choice);
        snprintf(expect, sizeof expect,
                 "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"x\"}]}],"
                 "\"toolConfig\":{\"functionCallingConfig\":{\"mode\":\"%s\"}}}",
                 modes[i].mode);
        json_t *r = J(text);
        CHECK_JSON(expect, ai_to_gemini_request(r, err, sizeof err));
        json_decref(r);
    }
}

static void test_openai_request(void) {
    bool wants = true;
    json_t *req = J("{\"model\":\"alias\",\"messages\":[" U "],\"stream\":true,\"vendor_x\":{\"a\":[]}}");
    CHECK_JSON("{\"model\":\"gpt-4o-2024\",\"messages\":[" U "],\"stream\":true,\"vendor_x\":{\"a\":[]},"
               "\"stream_options\":{\"include_usage\":true}}",
               ai_to_openai_request(req, "gpt-4o-2024", &wants, err, sizeof err));
    CHECK_INT(0, wants);
    json_decref(req);

    req = J("{\"model\":\"alias\",\"messages\":[" U "],\"stream\":true,\"stream_options\":{\"include_usage\":true,"
            "\"other\":1}}");
    CHECK_JSON("{\"model\":\"alias\",\"messages\":[" U "],\"stream\":true,\"stream_options\":{\"include_usage\":true,"
               "\"other\":1}}",
               ai_to_openai_request(req, NULL, &wants, err, sizeof err));
    CHECK_INT(1, wants);
    json_decref(req);

    req = J("{\"model\":\"alias\",\"messages\":[" U "],\"stream\":true,\"stream_options\":{\"include_usage\":false}}");
    CHECK_JSON("{\"model\":\"alias\",\"messages\":[" U "],\"stream\":true,\"stream_options\":{\"include_usage\":true}}",
               ai_to_openai_request(req, NULL, &wants, err, sizeof err));
    CHECK_INT(0, wants);
    json_decref(req);

    /* Not streaming: untouched apart from the model. */
    req = J("{\"model\":\"alias\",\"messages\":[" U "],\"stream\":false,\"n\":3}");
    CHECK_JSON("{\"model\":\"real\",\"messages\":[" U "],\"stream\":false,\"n\":3}",
               ai_to_openai_request(req, "real", &wants, err, sizeof err));
    CHECK_INT(0, wants);
    json_decref(req);

    req = J("{\"messages\":[" U "],\"stream\":true,\"stream_options\":true}");
    err[0] = '\0';
    CHECK_NULL(ai_to_openai_request(req, NULL, &wants, err, sizeof err));
    CHECK_STR("stream_options must be an object", err);
    json_decref(req);
    req = J("\"text\"");
    CHECK_NULL(ai_to_openai_request(req, NULL, &wants, err, sizeof err));
    CHECK_STR("request body must be a JSON object", err);
    json_decref(req);
}

/* ================= responses, usage, errors ================= */

static void test_anthropic_response(void) {
    json_t *resp = J("{\"id\":\"msg_01\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-3\","
                     "\"content\":[{\"type\":\"thinking\",\"thinking\":\"hmm\",\"signature\":\"s\"},"
                     "{\"type\":\"text\",\"text\":\"Let me \"},{\"type\":\"text\",\"text\":\"check.\"},"
                     "{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"get_weather\",\"input\":{\"city\":\"Paris\"}}],"
                     "\"stop_reason\":\"tool_use\",\"stop_sequence\":null,\"usage\":{\"input_tokens\":100,"
                     "\"cache_creation_input_tokens\":20,\"cache_read_input_tokens\":30,\"output_tokens\":50}}");
    CHECK_JSON("{\"id\":\"msg_01\",\"object\":\"chat.completion\",\"created\":1700000000,\"model\":\"my-model\","
               "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"Let me check.\","
               "\"tool_calls\":[{\"id\":\"toolu_1\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
               "\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}}]},\"finish_reason\":\"tool_calls\"}],"
               "\"usage\":{\"prompt_tokens\":150,\"completion_tokens\":50,\"total_tokens\":200,"
               "\"prompt_tokens_details\":{\"cached_tokens\":30},\"completion_tokens_details\":{\"reasoning_tokens\":0}}}",
               ai_from_anthropic_response(resp, "my-model", 1700000000));
    ai_usage_t u = {0};
    CHECK_INT(1, ai_usage_extract("anthropic", resp, &u));
    CHECK_INT(150, u.prompt);
    CHECK_INT(50, u.completion);
    CHECK_INT(200, u.total);
    CHECK_INT(30, u.cached);
    CHECK_INT(20, u.cache_write);
    json_decref(resp);

    static const struct {
        const char *stop, *finish;
    } reasons[] = {{"\"end_turn\"", "stop"},     {"\"max_tokens\"", "length"},  {"\"stop_sequence\"", "stop"},
                   {"\"tool_use\"", "tool_calls"}, {"\"refusal\"", "content_filter"}, {"null", "stop"}};
    for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++) {
        char text[512], expect[512];
        snprintf(text, sizeof text,
                 "{\"id\":\"msg_2\",\"type\":\"message\",\"content\":[{\"type\":\"text\",\"text\":\"ok\"}],"
                 "\"stop_reason\":%s,\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}",
                 reasons[i].stop);
        snprintf(expect, sizeof expect,
                 "{\"id\":\"msg_2\",\"object\":\"chat.completion\",\"created\":5,\"model\":\"a\",\"choices\":"
                 "[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"ok\"},\"finish_reason\":\"%s\"}],"
                 "\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1,\"total_tokens\":4,\"prompt_tokens_details\":"
                 "{\"cached_tokens\":0},\"completion_tokens_details\":{\"reasoning_tokens\":0}}}",
                 reasons[i].finish);
        json_t *r = J(text);
        CHECK_JSON(expect, ai_from_anthropic_response(r, "a", 5));
        json_decref(r);
    }

    /* Only a tool call: content is null, as OpenAI sends it. Empty: "". */
    resp = J("{\"id\":\"m\",\"content\":[{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"now\",\"input\":{}}],"
             "\"stop_reason\":\"tool_use\"}");
    CHECK_JSON("{\"id\":\"m\",\"object\":\"chat.completion\",\"created\":1,\"model\":\"a\",\"choices\":[{\"index\":0,"
               "\"message\":{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"t\",\"type\":\"function\","
               "\"function\":{\"name\":\"now\",\"arguments\":\"{}\"}}]},\"finish_reason\":\"tool_calls\"}]}",
               ai_from_anthropic_response(resp, "a", 1));
    json_decref(resp);
    resp = J("{\"id\":\"m\",\"content\":[],\"stop_reason\":\"end_turn\"}");
    CHECK_JSON("{\"id\":\"m\",\"object\":\"chat.completion\",\"created\":1,\"model\":\"a\",\"choices\":[{\"index\":0,"
               "\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":\"stop\"}]}",
               ai_from_anthropic_response(resp, "a", 1));
    json_decref(resp);

    const char *bad[] = {"[]", "{}", "{\"content\":\"text\"}", "{\"type\":\"error\",\"error\":{\"type\":\"x\"}}"};
    for (size_t i = 0; i < 4; i++) {
        json_t *r = J(bad[i]);
        CHECK_NULL(ai_from_anthropic_response(r, "a", 1));
        json_decref(r);
    }
}

static void test_gemini_response(void) {
    json_t *resp = J("{\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"thinking...\","
                     "\"thought\":true},{\"text\":\"Hello \"},{\"text\":\"there.\"}]},\"finishReason\":\"STOP\","
                     "\"index\":0,\"safetyRatings\":[]}],\"usageMetadata\":{\"promptTokenCount\":120,"
                     "\"candidatesTokenCount\":30,\"thoughtsTokenCount\":10,\"cachedContentTokenCount\":40,"
                     "\"totalTokenCount\":160},\"modelVersion\":\"gemini-2.5-flash\"}");
    CHECK_JSON("{\"id\":\"chatcmpl-9\",\"object\":\"chat.completion\",\"created\":7,\"model\":\"my-model\","
               "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"Hello there.\"},"
               "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":120,\"completion_tokens\":40,"
               "\"total_tokens\":160,\"prompt_tokens_details\":{\"cached_tokens\":40},"
               "\"completion_tokens_details\":{\"reasoning_tokens\":10}}}",
               ai_from_gemini_response(resp, "my-model", 7, "chatcmpl-9"));
    json_decref(resp);

    /* Function calls: generated ids unless Gemini gave one; STOP -> tool_calls. */
    resp = J("{\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"functionCall\":{\"name\":\"get_weather\","
             "\"args\":{\"city\":\"Paris\"}}},{\"functionCall\":{\"id\":\"fc-7\",\"name\":\"now\",\"args\":{}}}]},"
             "\"finishReason\":\"STOP\"}],\"usageMetadata\":{\"promptTokenCount\":5,\"toolUsePromptTokenCount\":2,"
             "\"candidatesTokenCount\":4}}");
    CHECK_JSON("{\"id\":\"r1\",\"object\":\"chat.completion\",\"created\":7,\"model\":\"g\",\"choices\":[{\"index\":0,"
               "\"message\":{\"role\":\"assistant\",\"content\":null,\"tool_calls\":["
               "{\"id\":\"call_r1_0\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
               "\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}},"
               "{\"id\":\"fc-7\",\"type\":\"function\",\"function\":{\"name\":\"now\",\"arguments\":\"{}\"}}]},"
               "\"finish_reason\":\"tool_calls\"}],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":4,"
               "\"total_tokens\":11,\"prompt_tokens_details\":{\"cached_tokens\":0},"
               "\"completion_tokens_details\":{\"reasoning_tokens\":0}}}",
               ai_from_gemini_response(resp, "g", 7, "r1"));
    json_decref(resp);

    static const struct {
        const char *reason, *finish;
    } reasons[] = {{"STOP", "stop"},           {"MAX_TOKENS", "length"},     {"SAFETY", "content_filter"},
                   {"RECITATION", "content_filter"}, {"BLOCKLIST", "content_filter"}, {"OTHER", "stop"}};
    for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++) {
        char text[512], expect[512];
        snprintf(text, sizeof text,
                 "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"a\"}]},\"finishReason\":\"%s\"},"
                 "{\"index\":1,\"content\":{\"parts\":[{\"text\":\"b\"}]},\"finishReason\":\"%s\"}]}",
                 reasons[i].reason, reasons[i].reason);
        snprintf(expect, sizeof expect,
                 "{\"id\":\"x\",\"object\":\"chat.completion\",\"created\":1,\"model\":\"g\",\"choices\":["
                 "{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"a\"},\"finish_reason\":\"%s\"},"
                 "{\"index\":1,\"message\":{\"role\":\"assistant\",\"content\":\"b\"},\"finish_reason\":\"%s\"}]}",
                 reasons[i].finish, reasons[i].finish);
        json_t *r = J(text);
        CHECK_JSON(expect, ai_from_gemini_response(r, "g", 1, "x"));
        json_decref(r);
    }

    resp = J("{\"promptFeedback\":{\"blockReason\":\"SAFETY\"},\"usageMetadata\":{\"promptTokenCount\":9,"
             "\"totalTokenCount\":9}}");
    CHECK_JSON("{\"id\":\"x\",\"object\":\"chat.completion\",\"created\":1,\"model\":\"g\",\"choices\":[{\"index\":0,"
               "\"message\":{\"role\":\"assistant\",\"content\":null},\"finish_reason\":\"content_filter\"}],"
               "\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":0,\"total_tokens\":9,"
               "\"prompt_tokens_details\":{\"cached_tokens\":0},\"completion_tokens_details\":{\"reasoning_tokens\":0}}}",
               ai_from_gemini_response(resp, "g", 1, "x"));
    json_decref(resp);

    const char *bad[] = {"[]", "{}", "{\"candidates\":[]}"};
    for (size_t i = 0; i < 3; i++) {
        json_t *r = J(bad[i]);
        CHECK_NULL(ai_from_gemini_response(r, "g", 1, "x"));
        json_decref(r);
    }
}

static void test_usage_extract(void) {
    ai_usage_t u = {0};
    json_t *b = J("{\"usage\":{\"prompt_tokens\":11,\"completion_tokens\":7,\"total_tokens\":18,"
                  "\"prompt_tokens_details\":{\"cached_tokens\":4},\"completion_tokens_details\":{\"reasoning_tokens\":3}}}");
    CHECK_INT(1, ai_usage_extract("openai", b, &u));
    CHECK_INT(11, u.prompt);
    CHECK_INT(7, u.completion);
    CHECK_INT(18, u.total);
    CHECK_INT(4, u.cached);
    CHECK_INT(3, u.reasoning);
    CHECK_JSON("{\"prompt_tokens\":11,\"completion_tokens\":7,\"total_tokens\":18,\"prompt_tokens_details\":"
               "{\"cached_tokens\":4},\"completion_tokens_details\":{\"reasoning_tokens\":3}}",
               ai_usage_to_json(&u));
    json_decref(b);

    /* Nothing there: stays absent. */
    ai_usage_t none = {0};
    b = J("{\"usage\":null}");
    CHECK_INT(0, ai_usage_extract("azure", b, &none));
    CHECK_INT(0, ai_usage_extract("gemini", b, &none));
    CHECK_INT(0, ai_usage_extract("nonsense", b, &none));
    json_decref(b);

    /* Anthropic stream events fold: message_start then message_delta. */
    ai_usage_t a = {0};
    b = J("{\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":25,\"cache_creation_input_tokens\":5,"
          "\"cache_read_input_tokens\":100,\"output_tokens\":1}}}");
    CHECK_INT(1, ai_usage_extract("anthropic", b, &a));
    CHECK_INT(130, a.prompt);
    CHECK_INT(1, a.completion);
    json_decref(b);
    b = J("{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":42}}");
    ai_usage_extract("anthropic", b, &a);
    CHECK_INT(130, a.prompt);
    CHECK_INT(42, a.completion);
    CHECK_INT(172, a.total);
    CHECK_INT(100, a.cached);
    CHECK_INT(5, a.cache_write);
    json_decref(b);
    /* A later event restating input_tokens alone keeps the cache parts. */
    b = J("{\"type\":\"message_delta\",\"usage\":{\"input_tokens\":26,\"output_tokens\":43}}");
    ai_usage_extract("anthropic", b, &a);
    CHECK_INT(131, a.prompt);
    CHECK_INT(174, a.total);
    json_decref(b);

    /* Gemini's non-SSE stream: an array of frames, the last one counts. */
    ai_usage_t g = {0};
    b = J("[{\"usageMetadata\":{\"promptTokenCount\":8,\"totalTokenCount\":8}},{\"candidates\":[]},"
          "{\"usageMetadata\":{\"promptTokenCount\":8,\"candidatesTokenCount\":5,\"totalTokenCount\":13}}]");
    CHECK_INT(1, ai_usage_extract("gemini", b, &g));
    CHECK_INT(8, g.prompt);
    CHECK_INT(5, g.completion);
    CHECK_INT(13, g.total);
    json_decref(b);
    /* Without totalTokenCount the total is the sum. */
    b = J("{\"usageMetadata\":{\"promptTokenCount\":2,\"candidatesTokenCount\":3,\"thoughtsTokenCount\":4}}");
    ai_usage_extract("gemini", b, &g);
    CHECK_INT(9, g.total);
    CHECK_INT(7, g.completion);
    CHECK_INT(4, g.reasoning);
    json_decref(b);
}

static void check_error(const char *provider, int status, const char *body, const char *expect) {
    json_t *b = body ? J(body) : NULL;
    CHECK_JSON(expect, ai_error_to_openai(provider, status, b));
    json_decref(b);
}

static void test_errors(void) {
    check_error("openai", 429,
                "{\"error\":{\"message\":\"You exceeded your current quota.\",\"type\":\"insufficient_quota\","
                "\"param\":null,\"code\":\"insufficient_quota\"}}",
                "{\"error\":{\"message\":\"You exceeded your current quota.\",\"type\":\"insufficient_quota\","
                "\"param\":null,\"code\":\"insufficient_quota\"}}");
    check_error("azure", 400,
                "{\"error\":{\"message\":\"Bad max_tokens\",\"type\":\"invalid_request_error\",\"param\":\"max_tokens\","
                "\"code\":null}}",
                "{\"error\":{\"message\":\"Bad max_tokens\",\"type\":\"invalid_request_error\",\"param\":\"max_tokens\","
                "\"code\":null}}");
    /* OpenAI-compatible servers in other shapes. */
    check_error("openai-compatible", 400,
                "{\"object\":\"error\",\"message\":\"context too long\",\"type\":\"BadRequestError\",\"code\":400}",
                "{\"error\":{\"message\":\"context too long\",\"type\":\"invalid_request_error\",\"param\":null,"
                "\"code\":null}}");
    check_error("openai-compatible", 422, "{\"detail\":\"field required\"}",
                "{\"error\":{\"message\":\"field required\",\"type\":\"invalid_request_error\",\"param\":null,"
                "\"code\":null}}");
    check_error("openai-compatible", 500, "{\"error\":\"model crashed\"}",
                "{\"error\":{\"message\":\"model crashed\",\"type\":\"server_error\",\"param\":null,\"code\":null}}");
    check_error("openai", 401, "{\"error\":{\"message\":\"Incorrect API key\"}}",
                "{\"error\":{\"message\":\"Incorrect API key\",\"type\":\"authentication_error\",\"param\":null,"
                "\"code\":null}}");

    check_error("anthropic", 529,
                "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}",
                "{\"error\":{\"message\":\"Overloaded\",\"type\":\"server_error\",\"param\":null,"
                "\"code\":\"overloaded_error\"}}");
    check_error("anthropic", 429,
                "{\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\",\"message\":\"Slow down\"}}",
                "{\"error\":{\"message\":\"Slow down\",\"type\":\"rate_limit_error\",\"param\":null,"
                "\"code\":\"rate_limit_error\"}}");
    check_error("anthropic", 400,
                "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\",\"message\":\"max_tokens: required\"}}",
                "{\"error\":{\"message\":\"max_tokens: required\",\"type\":\"invalid_request_error\",\"param\":null,"
                "\"code\":\"invalid_request_error\"}}");
    check_error("anthropic", 401,
                "{\"type\":\"error\",\"error\":{\"type\":\"authentication_error\",\"message\":\"invalid x-api-key\"}}",
                "{\"error\":{\"message\":\"invalid x-api-key\",\"type\":\"authentication_error\",\"param\":null,"
                "\"code\":\"authentication_error\"}}");
    check_error("anthropic", 418, "{\"type\":\"error\",\"error\":{\"type\":\"teapot_error\",\"message\":\"short\"}}",
                "{\"error\":{\"message\":\"short\",\"type\":\"invalid_request_error\",\"param\":null,"
                "\"code\":\"teapot_error\"}}");

    check_error("gemini", 429,
                "{\"error\":{\"code\":429,\"message\":\"Resource has been exhausted\",\"status\":\"RESOURCE_EXHAUSTED\","
                "\"details\":[]}}",
                "{\"error\":{\"message\":\"Resource has been exhausted\",\"type\":\"rate_limit_error\",\"param\":null,"
                "\"code\":\"RESOURCE_EXHAUSTED\"}}");
    check_error("gemini", 503,
                "[{\"error\":{\"code\":503,\"message\":\"The model is overloaded.\",\"status\":\"UNAVAILABLE\"}}]",
                "{\"error\":{\"message\":\"The model is overloaded.\",\"type\":\"server_error\",\"param\":null,"
                "\"code\":\"UNAVAILABLE\"}}");
    check_error("gemini", 400,
                "{\"error\":{\"code\":400,\"message\":\"API key not valid.\",\"status\":\"INVALID_ARGUMENT\"}}",
                "{\"error\":{\"message\":\"API key not valid.\",\"type\":\"invalid_request_error\",\"param\":null,"
                "\"code\":\"INVALID_ARGUMENT\"}}");
    check_error("gemini", 403, "{\"error\":{\"code\":403,\"message\":\"denied\",\"status\":\"PERMISSION_DENIED\"}}",
                "{\"error\":{\"message\":\"denied\",\"type\":\"permission_error\",\"param\":null,"
                "\"code\":\"PERMISSION_DENIED\"}}");

    /* No usable body: a message naming provider and status, type by status. */
    static const struct {
        int status;
        const char *type;
    } by_status[] = {{400, "invalid_request_error"}, {401, "authentication_error"}, {402, "insufficient_quota"},
                     {403, "permission_error"},      {404, "not_found_error"},      {408, "timeout_error"},
                     {409, "invalid_request_error"}, {429, "rate_limit_error"},     {500, "server_error"},
                     {502, "server_error"},          {504, "timeout_error"},        {529, "server_error"}};
    for (size_t i = 0; i < sizeof by_status / sizeof by_status[0]; i++) {
        char expect[256];
        snprintf(expect, sizeof expect,
                 "{\"error\":{\"message\":\"upstream anthropic returned HTTP %d\",\"type\":\"%s\",\"param\":null,"
                 "\"code\":null}}",
                 by_status[i].status, by_status[i].type);
        check_error("anthropic", by_status[i].status, NULL, expect);
    }
    check_error("gemini", 502, "12", "{\"error\":{\"message\":\"upstream gemini returned HTTP 502\",\"type\":"
                                     "\"server_error\",\"param\":null,\"code\":null}}");
    check_error("gemini", 500, "\"<html>oops</html>\"",
                "{\"error\":{\"message\":\"<html>oops</html>\",\"type\":\"server_error\",\"param\":null,\"code\":null}}");
    check_error("anthropic", 500, "{\"error\":{\"message\":\"\"}}",
                "{\"error\":{\"message\":\"upstream anthropic returned HTTP 500\",\"type\":\"server_error\","
                "\"param\":null,\"code\":null}}");
    json_t *e = ai_error_to_openai(NULL, 500, NULL);
    CHECK_JSON("{\"error\":{\"message\":\"upstream provider returned HTTP 500\",\"type\":\"server_error\","
               "\"param\":null,\"code\":null}}",
               e);
}

/* ================= streams ================= */

#define ALIAS "my-model"
#define ID "chatcmpl-1"
#define CREATED 1700000000L

typedef struct run {
    buf_t out;
    int feed_rc, finish_rc;
    bool done, content;
    char *error, *error_type;
    ai_usage_t usage;
} run_t;

static void capture(void *arg, const char *data, size_t len) {
    buf_add(arg, data, len);
}

static unsigned next_rand(unsigned *state) {
    *state = *state * 1103515245u + 12345u;
    return (*state >> 16) & 0x7fff;
}

/* mode 0: whole; 1: byte by byte; otherwise random pieces seeded by mode. */
static void run_stream(const char *provider, bool wants_usage, const char *in, size_t len, unsigned mode, run_t *r) {
    memset(r, 0, sizeof *r);
    ai_stream_t *s = ai_stream_new(provider, ALIAS, ID, CREATED, wants_usage, capture, &r->out);
    unsigned state = mode;
    size_t off = 0;
    while (off < len && r->feed_rc == 0) {
        size_t piece = mode == 0 ? len : mode == 1 ? 1 : 1 + next_rand(&state) % (next_rand(&state) % 4 ? 9 : 200);
        if (piece > len - off)
            piece = len - off;
        r->feed_rc = ai_stream_feed(s, in + off, piece);
        off += piece;
    }
    r->finish_rc = ai_stream_finish(s);
    r->done = ai_stream_done(s);
    r->content = ai_stream_has_content(s);
    r->error = ai_stream_error(s) ? strdup(ai_stream_error(s)) : NULL;
    r->error_type = ai_stream_error_type(s) ? strdup(ai_stream_error_type(s)) : NULL;
    ai_stream_usage(s, &r->usage);
    buf_str(&r->out);
    ai_stream_free(s);
}

static void run_free(run_t *r) {
    free(r->out.p);
    free(r->error);
    free(r->error_type);
}

typedef struct expect {
    const char *out;
    int feed_rc, finish_rc;
    bool done, content;
    const char *error, *error_type;
    long prompt, completion, total, cached;
    bool usage_present;
} expect_t;

/* The same input split every way gives exactly the same result. */
static void check_stream(const char *provider, bool wants_usage, const char *in, const expect_t *x) {
    size_t len = strlen(in);
    for (unsigned mode = 0; mode < 24; mode++) {
        int failed_before = failed;
        run_t r;
        run_stream(provider, wants_usage, in, len, mode, &r);
        CHECK_STR(x->out, r.out.p);
        CHECK_INT(x->feed_rc, r.feed_rc);
        CHECK_INT(x->finish_rc, r.finish_rc);
        CHECK_INT(x->done, r.done);
        CHECK_INT(x->content, r.content);
        if (x->error) {
            CHECK_STR(x->error, r.error);
            CHECK_STR(x->error_type, r.error_type);
        } else {
            CHECK_NULL(r.error);
        }
        CHECK_INT(x->usage_present, r.usage.present);
        CHECK_INT(x->prompt, r.usage.prompt);
        CHECK_INT(x->completion, r.usage.completion);
        CHECK_INT(x->total, r.usage.total);
        CHECK_INT(x->cached, r.usage.cached);
        if (failed != failed_before)
            fprintf(stderr, "  (stream %s, wants_usage %d, split mode %u)\n", provider, wants_usage, mode);
        run_free(&r);
    }
}

/* One expected translated chunk. */
static void chunk(buf_t *b, const char *delta, const char *finish, bool usage_null) {
    char tmp[1024];
    snprintf(tmp, sizeof tmp,
             "data: {\"id\":\"" ID "\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"" ALIAS
             "\",\"choices\":[{\"index\":0,\"delta\":%s,\"finish_reason\":%s}]%s}\n\n",
             delta, finish, usage_null ? ",\"usage\":null" : "");
    buf_adds(b, tmp);
}

static void usage_chunk(buf_t *b, const char *usage) {
    buf_adds(b, "data: {\"id\":\"" ID "\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"" ALIAS
                "\",\"choices\":[],\"usage\":");
    buf_adds(b, usage);
    buf_adds(b, "}\n\n");
}

#define DONE "data: [DONE]\n\n"
#define ROLE "{\"role\":\"assistant\",\"content\":\"\"}"
#define AEV(type, json) "event: " type "\ndata: " json "\n\n"

#define A_START                                                                                                 \
    AEV("message_start", "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":"  \
                         "\"assistant\",\"content\":[],\"model\":\"claude-3\",\"stop_reason\":null,\"stop_sequence\":" \
                         "null,\"usage\":{\"input_tokens\":10,\"cache_creation_input_tokens\":2,"                       \
                         "\"cache_read_input_tokens\":3,\"output_tokens\":1}}}")
#define A_PING AEV("ping", "{\"type\": \"ping\"}")
#define A_TEXT_START(i) \
    AEV("content_block_start", "{\"type\":\"content_block_start\",\"index\":" #i ",\"content_block\":{\"type\":\"text\",\"text\":\"\"}}")
#define A_TEXT(i, t) \
    AEV("content_block_delta", "{\"type\":\"content_block_delta\",\"index\":" #i ",\"delta\":{\"type\":\"text_delta\",\"text\":\"" t "\"}}")
#define A_STOP(i) AEV("content_block_stop", "{\"type\":\"content_block_stop\",\"index\":" #i "}")
#define A_DELTA(reason, out)                                                                             \
    AEV("message_delta", "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"" reason "\",\"stop_sequence\":null}," \
                         "\"usage\":{\"output_tokens\":" #out "}}")
#define A_END AEV("message_stop", "{\"type\":\"message_stop\"}")

static const char anthropic_text[] = A_START A_TEXT_START(0) A_PING A_TEXT(0, "Hello") A_TEXT(0, " w\\u00f6rld \\\"q\\\"")
    A_STOP(0) A_PING A_DELTA("end_turn", 7) A_END;

static void test_stream_anthropic_text(void) {
    for (int wants = 0; wants <= 1; wants++) {
        buf_t b = {0};
        chunk(&b, ROLE, "null", wants);
        chunk(&b, "{\"content\":\"Hello\"}", "null", wants);
        chunk(&b, "{\"content\":\" wörld \\\"q\\\"\"}", "null", wants);
        chunk(&b, "{}", "\"stop\"", wants);
        if (wants)
            usage_chunk(&b, "{\"prompt_tokens\":15,\"completion_tokens\":7,\"total_tokens\":22,\"prompt_tokens_details\":"
                            "{\"cached_tokens\":3},\"completion_tokens_details\":{\"reasoning_tokens\":0}}");
        buf_adds(&b, DONE);
        expect_t x = {.out = buf_str(&b), .done = true, .content = true, .usage_present = true,
                      .prompt = 15, .completion = 7, .total = 22, .cached = 3};
        check_stream("anthropic", wants, anthropic_text, &x);
        free(b.p);
    }

    /* The preamble is not content: a plugin may still fail over there. */
    buf_t out = {0};
    ai_stream_t *s = ai_stream_new("anthropic", ALIAS, ID, CREATED, false, capture, &out);
    const char *pre = A_START A_TEXT_START(0) A_PING;
    CHECK_INT(0, ai_stream_feed(s, pre, strlen(pre)));
    CHECK_INT(0, ai_stream_has_content(s));
    CHECK_INT(0, ai_stream_done(s));
    const char *first = A_TEXT(0, "Hi");
    CHECK_INT(0, ai_stream_feed(s, first, strlen(first)));
    CHECK_INT(1, ai_stream_has_content(s));
    ai_stream_free(s);
    free(out.p);
}

static void test_stream_anthropic_truncated(void) {
    /* Cut anywhere: only whole chunks come out, a prefix of the full output,
     * and the stream counts as ended only once message_stop is complete. */
    run_t full;
    size_t len = strlen(anthropic_text);
    run_stream("anthropic", false, anthropic_text, len, 0, &full);
    size_t stop_at = len; /* message_stop is the last event */
    for (size_t cut = 0; cut <= len; cut++) {
        run_t r;
        run_stream("anthropic", false, anthropic_text, cut, 0, &r);
        bool whole = cut == stop_at;
        CHECK_INT(whole ? 0 : -1, r.finish_rc);
        CHECK_INT(whole, r.done);
        bool prefix = r.out.len <= full.out.len && memcmp(r.out.p, full.out.p, r.out.len) == 0;
        CHECK_INT(1, prefix);
        bool boundary = r.out.len == 0 || (r.out.len >= 2 && memcmp(r.out.p + r.out.len - 2, "\n\n", 2) == 0);
        CHECK_INT(1, boundary);
        if (!whole)
            CHECK_INT(0, strstr(r.out.p, DONE) != NULL);
        run_free(&r);
    }
    run_free(&full);
}

static void test_stream_anthropic_tools(void) {
    static const char in[] =
        A_START A_TEXT_START(0) A_TEXT(0, "Let me check.") A_STOP(0)
        AEV("content_block_start", "{\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\","
                                   "\"id\":\"toolu_1\",\"name\":\"get_weather\",\"input\":{}}}")
        AEV("content_block_delta", "{\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\","
                                   "\"partial_json\":\"\"}}")
        A_PING
        AEV("content_block_delta", "{\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\","
                                   "\"partial_json\":\"{\\\"city\\\": \"}}")
        AEV("content_block_delta", "{\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\","
                                   "\"partial_json\":\"\\\"Paris\\\"}\"}}")
        A_STOP(1)
        AEV("content_block_start", "{\"type\":\"content_block_start\",\"index\":2,\"content_block\":{\"type\":\"tool_use\","
                                   "\"id\":\"toolu_2\",\"name\":\"now\",\"input\":{}}}")
        A_STOP(2) A_DELTA("tool_use", 40) A_END;
    buf_t b = {0};
    chunk(&b, ROLE, "null", false);
    chunk(&b, "{\"content\":\"Let me check.\"}", "null", false);
    chunk(&b, "{\"tool_calls\":[{\"index\":0,\"id\":\"toolu_1\",\"type\":\"function\",\"function\":{\"name\":"
              "\"get_weather\",\"arguments\":\"\"}}]}", "null", false);
    chunk(&b, "{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"city\\\": \"}}]}", "null", false);
    chunk(&b, "{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"\\\"Paris\\\"}\"}}]}", "null", false);
    chunk(&b, "{\"tool_calls\":[{\"index\":1,\"id\":\"toolu_2\",\"type\":\"function\",\"function\":{\"name\":"
              "\"now\",\"arguments\":\"\"}}]}", "null", false);
    chunk(&b, "{\"tool_calls\":[{\"index\":1,\"function\":{\"arguments\":\"{}\"}}]}", "null", false);
    chunk(&b, "{}", "\"tool_calls\"", false);
    buf_adds(&b, DONE);
    expect_t x = {.out = buf_str(&b), .done = true, .content = true, .usage_present = true,
                  .prompt = 15, .completion = 40, .total = 55, .cached = 3};
    check_stream("anthropic", false, in, &x);
    free(b.p);

    /* A tool call alone (no text) is content. */
    static const char only_tool[] =
        A_START AEV("content_block_start", "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":"
                                           "{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"f\",\"input\":{}}}");
    buf_t o = {0};
    ai_stream_t *s = ai_stream_new("anthropic", ALIAS, ID, CREATED, false, capture, &o);
    CHECK_INT(0, ai_stream_feed(s, only_tool, strlen(only_tool)));
    CHECK_INT(1, ai_stream_has_content(s));
    ai_stream_free(s);
    free(o.p);
}

static void test_stream_anthropic_errors(void) {
    /* Mid-stream error after content: nothing emitted for it by the
     * translator; the caller closes with ai_stream_emit_error(). */
    static const char mid[] = A_START A_TEXT_START(0) A_TEXT(0, "Hel")
        AEV("error", "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}")
        A_TEXT(0, "lo") A_STOP(0) A_DELTA("end_turn", 2) A_END;
    buf_t b = {0};
    chunk(&b, ROLE, "null", false);
    chunk(&b, "{\"content\":\"Hel\"}", "null", false);
    expect_t x = {.out = buf_str(&b), .finish_rc = -1, .done = false, .content = true, .error = "Overloaded",
                  .error_type = "server_error", .usage_present = true, .prompt = 15, .completion = 1, .total = 16,
                  .cached = 3};
    check_stream("anthropic", false, mid, &x);

    buf_t out = {0};
    ai_stream_t *s = ai_stream_new("anthropic", ALIAS, ID, CREATED, false, capture, &out);
    CHECK_INT(0, ai_stream_feed(s, mid, strlen(mid)));
    CHECK_INT(-1, ai_stream_finish(s));
    ai_stream_emit_error(s, ai_stream_error(s), ai_stream_error_type(s));
    ai_stream_emit_error(s, "again", NULL); /* only once */
    buf_adds(&b, "data: {\"error\":{\"message\":\"Overloaded\",\"type\":\"server_error\",\"param\":null,\"code\":null}}\n\n");
    buf_adds(&b, DONE);
    CHECK_STR(buf_str(&b), buf_str(&out));
    ai_stream_free(s);
    free(out.p);
    free(b.p);

    /* An error before any content leaves the caller free to fail over. */
    static const char early[] = A_START A_PING
        AEV("error", "{\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"Internal server error\"}}");
    buf_t e = {0};
    chunk(&e, ROLE, "null", false);
    expect_t y = {.out = buf_str(&e), .finish_rc = -1, .content = false, .error = "Internal server error",
                  .error_type = "server_error", .usage_present = true, .prompt = 15, .completion = 1, .total = 16,
                  .cached = 3};
    check_stream("anthropic", false, early, &y);
    free(e.p);

    /* Malformed: bad JSON, a delta for a block never opened, no block type. */
    const char *bad[] = {
        A_START "event: content_block_delta\ndata: {not json\n\n",
        A_START A_TEXT(3, "x"),
        A_START AEV("content_block_start", "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{}}"),
        A_START "data: [1,2]\n\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        buf_t o = {0};
        chunk(&o, ROLE, "null", false);
        expect_t z = {.out = buf_str(&o), .feed_rc = -1, .finish_rc = -1, .usage_present = true, .prompt = 15,
                      .completion = 1, .total = 16, .cached = 3};
        check_stream("anthropic", false, bad[i], &z);
        free(o.p);
    }

    /* An event over 1 MiB is refused, and the stream stays failed. */
    buf_t big = {0};
    buf_adds(&big, "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":"
                   "{\"type\":\"text_delta\",\"text\":\"");
    char *pad = malloc(1 << 20);
    memset(pad, 'a', 1 << 20);
    buf_add(&big, pad, 1 << 20);
    free(pad);
    buf_adds(&big, "\"}}\n\n");
    buf_t o = {0};
    s = ai_stream_new("anthropic", ALIAS, ID, CREATED, false, capture, &o);
    CHECK_INT(0, ai_stream_feed(s, A_START A_TEXT_START(0), strlen(A_START A_TEXT_START(0))));
    CHECK_INT(-1, ai_stream_feed(s, big.p, big.len));
    CHECK_INT(-1, ai_stream_feed(s, A_END, strlen(A_END)));
    CHECK_INT(-1, ai_stream_finish(s));
    ai_stream_free(s);
    free(o.p);
    free(big.p);
}

static void test_stream_anthropic_thinking(void) {
    /* Thinking blocks are not for the client; the text index follows. */
    static const char in[] = A_START
        AEV("content_block_start", "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"thinking\","
                                   "\"thinking\":\"\"}}")
        AEV("content_block_delta", "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\","
                                   "\"thinking\":\"Let me think\"}}")
        AEV("content_block_delta", "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"signature_delta\","
                                   "\"signature\":\"EqQB\"}}")
        A_STOP(0) A_TEXT_START(1) A_TEXT(1, "42") A_STOP(1) A_DELTA("max_tokens", 9) A_END;
    buf_t b = {0};
    chunk(&b, ROLE, "null", true);
    chunk(&b, "{\"content\":\"42\"}", "null", true);
    chunk(&b, "{}", "\"length\"", true);
    usage_chunk(&b, "{\"prompt_tokens\":15,\"completion_tokens\":9,\"total_tokens\":24,\"prompt_tokens_details\":"
                    "{\"cached_tokens\":3},\"completion_tokens_details\":{\"reasoning_tokens\":0}}");
    buf_adds(&b, DONE);
    expect_t x = {.out = buf_str(&b), .done = true, .content = true, .usage_present = true,
                  .prompt = 15, .completion = 9, .total = 24, .cached = 3};
    check_stream("anthropic", true, in, &x);
    free(b.p);
}

#define G_FRAME(json) "data: " json "\r\n\r\n"

static void test_stream_gemini(void) {
    static const char text[] =
        G_FRAME("{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Hello\"}],\"role\":\"model\"},\"index\":0}],"
                "\"usageMetadata\":{\"promptTokenCount\":8,\"totalTokenCount\":8},\"modelVersion\":\"gemini-2.0-flash\"}")
        G_FRAME("{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"plan\",\"thought\":true},{\"text\":\" there\"}],"
                "\"role\":\"model\"},\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":8,\"totalTokenCount\":9}}")
        G_FRAME("{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"!\"}],\"role\":\"model\"},\"finishReason\":\"STOP\","
                "\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":8,\"candidatesTokenCount\":3,"
                "\"thoughtsTokenCount\":1,\"cachedContentTokenCount\":2,\"totalTokenCount\":12}}");
    for (int wants = 0; wants <= 1; wants++) {
        buf_t b = {0};
        chunk(&b, ROLE, "null", wants);
        chunk(&b, "{\"content\":\"Hello\"}", "null", wants);
        chunk(&b, "{\"content\":\" there\"}", "null", wants);
        chunk(&b, "{\"content\":\"!\"}", "null", wants);
        chunk(&b, "{}", "\"stop\"", wants);
        if (wants)
            usage_chunk(&b, "{\"prompt_tokens\":8,\"completion_tokens\":4,\"total_tokens\":12,\"prompt_tokens_details\":"
                            "{\"cached_tokens\":2},\"completion_tokens_details\":{\"reasoning_tokens\":1}}");
        buf_adds(&b, DONE);
        expect_t x = {.out = buf_str(&b), .done = true, .content = true, .usage_present = true,
                      .prompt = 8, .completion = 4, .total = 12, .cached = 2};
        check_stream("gemini", wants, text, &x);
        free(b.p);
    }

    static const char tool[] =
        "data: {\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":{\"name\":\"get_weather\",\"args\":"
        "{\"city\":\"Paris\",\"days\":[1,2]}}},{\"functionCall\":{\"id\":\"g-1\",\"name\":\"now\"}}],\"role\":\"model\"},"
        "\"finishReason\":\"STOP\",\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":20,\"candidatesTokenCount\":6,"
        "\"totalTokenCount\":26}}\n\n";
    buf_t b = {0};
    chunk(&b, ROLE, "null", false);
    chunk(&b, "{\"tool_calls\":[{\"index\":0,\"id\":\"call_" ID "_0\",\"type\":\"function\",\"function\":{\"name\":"
              "\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"Paris\\\",\\\"days\\\":[1,2]}\"}}]}", "null", false);
    chunk(&b, "{\"tool_calls\":[{\"index\":1,\"id\":\"g-1\",\"type\":\"function\",\"function\":{\"name\":"
              "\"now\",\"arguments\":\"{}\"}}]}", "null", false);
    chunk(&b, "{}", "\"tool_calls\"", false);
    buf_adds(&b, DONE);
    expect_t x = {.out = buf_str(&b), .done = true, .content = true, .usage_present = true,
                  .prompt = 20, .completion = 6, .total = 26};
    check_stream("gemini", false, tool, &x);
    free(b.p);

    static const struct {
        const char *reason, *finish;
    } reasons[] = {{"MAX_TOKENS", "\"length\""}, {"SAFETY", "\"content_filter\""}, {"RECITATION", "\"content_filter\""}};
    for (size_t i = 0; i < 3; i++) {
        char in[512];
        snprintf(in, sizeof in,
                 "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"a\"}]},\"finishReason\":\"%s\"}]}\n\n",
                 reasons[i].reason);
        buf_t o = {0};
        chunk(&o, ROLE, "null", false);
        chunk(&o, "{\"content\":\"a\"}", "null", false);
        chunk(&o, "{}", reasons[i].finish, false);
        buf_adds(&o, DONE);
        expect_t y = {.out = buf_str(&o), .done = true, .content = true};
        check_stream("gemini", false, in, &y);
        free(o.p);
    }

    /* A blocked prompt: no candidates, only promptFeedback. */
    buf_t o = {0};
    chunk(&o, ROLE, "null", false);
    chunk(&o, "{}", "\"content_filter\"", false);
    buf_adds(&o, DONE);
    expect_t blocked = {.out = buf_str(&o), .done = true, .usage_present = true, .prompt = 4, .total = 4};
    check_stream("gemini", false,
                 "data: {\"promptFeedback\":{\"blockReason\":\"PROHIBITED_CONTENT\"},\"usageMetadata\":"
                 "{\"promptTokenCount\":4,\"totalTokenCount\":4}}\n\n",
                 &blocked);
    free(o.p);
}

static void test_stream_gemini_failures(void) {
    static const char first[] =
        "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Hel\"}],\"role\":\"model\"},\"index\":0}],"
        "\"usageMetadata\":{\"promptTokenCount\":8,\"totalTokenCount\":8}}\n\n";
    buf_t b = {0};
    chunk(&b, ROLE, "null", false);
    chunk(&b, "{\"content\":\"Hel\"}", "null", false);

    /* Truncated: frames but no finishReason. */
    expect_t t = {.out = buf_str(&b), .finish_rc = -1, .content = true, .usage_present = true, .prompt = 8, .total = 8};
    check_stream("gemini", false, first, &t);
    /* ... or cut inside the last frame. */
    char cut[sizeof first + 64];
    snprintf(cut, sizeof cut, "%sdata: {\"candidates\":[{\"finishReason\":\"ST", first);
    check_stream("gemini", false, cut, &t);

    /* Mid-stream error frame. */
    char mid[sizeof first + 256];
    snprintf(mid, sizeof mid,
             "%sdata: {\"error\":{\"code\":503,\"message\":\"The model is overloaded.\",\"status\":\"UNAVAILABLE\"}}\n\n",
             first);
    expect_t m = {.out = buf_str(&b), .finish_rc = -1, .content = true, .error = "The model is overloaded.",
                  .error_type = "server_error", .usage_present = true, .prompt = 8, .total = 8};
    check_stream("gemini", false, mid, &m);

    /* Malformed frame. */
    char bad[sizeof first + 64];
    snprintf(bad, sizeof bad, "%sdata: {\"candidates\": [\n\n", first);
    expect_t x = {.out = buf_str(&b), .feed_rc = -1, .finish_rc = -1, .content = true, .usage_present = true,
                  .prompt = 8, .total = 8};
    check_stream("gemini", false, bad, &x);
    free(b.p);
}

/* An OpenAI upstream stream as it arrives with include_usage added. */
#define O_CHUNK(choices, usage) \
    "data: {\"id\":\"chatcmpl-up\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o\",\"choices\":" choices usage "}\n\n"
#define O_ROLE O_CHUNK("[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]", ",\"usage\":null")
#define O_TEXT O_CHUNK("[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"finish_reason\":null}]", ",\"usage\":null")
#define O_FIN O_CHUNK("[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]", ",\"usage\":null")
#define O_USAGE                                                                                              \
    O_CHUNK("[]", ",\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":1,\"total_tokens\":6,"                 \
                  "\"prompt_tokens_details\":{\"cached_tokens\":2},\"completion_tokens_details\":{\"reasoning_tokens\":0}}")
#define O_AZURE_FILTER \
    "data: {\"choices\":[],\"created\":0,\"id\":\"\",\"model\":\"\",\"object\":\"\",\"prompt_filter_results\":[]}\n\n"

static void test_stream_openai(void) {
    static const char in[] = ": keep-alive\n\n" O_AZURE_FILTER O_ROLE O_TEXT O_FIN O_USAGE DONE;
    expect_t relay = {.out = in, .done = true, .content = true, .usage_present = true,
                      .prompt = 5, .completion = 1, .total = 6, .cached = 2};
    check_stream("openai", true, in, &relay);
    expect_t stripped = relay;
    stripped.out = ": keep-alive\n\n" O_AZURE_FILTER O_ROLE O_TEXT O_FIN DONE;
    check_stream("openai", false, in, &stripped);
    check_stream("azure", false, in, &stripped);

    /* CRLF line ends and an "event:" line survive byte for byte. */
    static const char crlf[] = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"}}]}\r\n\r\n"
                               "event: message\r\ndata: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\r\n\r\n"
                               "data: [DONE]\r\n\r\n";
    expect_t c = {.out = crlf, .done = true, .content = true};
    check_stream("openai-compatible", false, crlf, &c);

    /* Tool-call deltas are content; the role chunk is not. */
    static const char tool[] =
        O_ROLE O_CHUNK("[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"type\":\"function\","
                       "\"function\":{\"name\":\"f\",\"arguments\":\"\"}}]},\"finish_reason\":null}]", "");
    expect_t t = {.out = tool, .finish_rc = -1, .content = true};
    check_stream("openai", false, tool, &t);
    expect_t r = {.out = O_ROLE, .finish_rc = -1, .content = false};
    check_stream("openai", false, O_ROLE, &r);

    /* Mid-stream error: not relayed, reported; nothing after it. */
    static const char err_in[] = O_ROLE O_TEXT "data: {\"error\":{\"message\":\"boom\",\"type\":\"server_error\"}}\n\n" O_FIN DONE;
    expect_t e = {.out = O_ROLE O_TEXT, .finish_rc = -1, .content = true, .error = "boom", .error_type = "server_error"};
    check_stream("openai", false, err_in, &e);
    static const char err_ev[] = O_ROLE "event: error\ndata: {\"message\":\"bad gateway\"}\n\n";
    expect_t e2 = {.out = O_ROLE, .finish_rc = -1, .error = "bad gateway", .error_type = "server_error"};
    check_stream("openai", false, err_ev, &e2);

    /* Truncated: no [DONE]; the usage seen so far is kept. */
    static const char trunc[] = O_ROLE O_TEXT O_FIN O_USAGE "data: {\"id\":";
    expect_t tr = {.out = O_ROLE O_TEXT O_FIN, .finish_rc = -1, .content = true, .usage_present = true,
                   .prompt = 5, .completion = 1, .total = 6, .cached = 2};
    check_stream("openai", false, trunc, &tr);

    /* Malformed chunk. */
    static const char bad[] = O_ROLE "data: {\"choices\":[\n\n" O_FIN DONE;
    expect_t b = {.out = O_ROLE, .feed_rc = -1, .finish_rc = -1};
    check_stream("openai", false, bad, &b);

    /* Nothing reaches the client after [DONE]. */
    static const char after[] = O_TEXT DONE O_TEXT;
    expect_t a = {.out = O_TEXT DONE, .done = true, .content = true};
    check_stream("openai", false, after, &a);
    buf_t o = {0};
    ai_stream_t *s = ai_stream_new("openai", ALIAS, ID, CREATED, false, capture, &o);
    ai_stream_feed(s, after, strlen(after));
    ai_stream_emit_error(s, "late", NULL);
    CHECK_STR(O_TEXT DONE, buf_str(&o));
    ai_stream_free(s);
    free(o.p);
}

static void test_stream_large_chunk(void) {
    /* A 300 KB delta goes out whole, and small chunks after it still do. */
    size_t n = 300 * 1024;
    char *text = malloc(n + 1);
    for (size_t i = 0; i < n; i++)
        text[i] = (char)('a' + i % 26);
    text[n] = '\0';
    buf_t in = {0}, want = {0};
    buf_adds(&in, A_START A_TEXT_START(0));
    buf_adds(&in, "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":"
                  "{\"type\":\"text_delta\",\"text\":\"");
    buf_adds(&in, text);
    buf_adds(&in, "\"}}\n\n" A_TEXT(0, "end") A_STOP(0) A_DELTA("end_turn", 3) A_END);
    chunk(&want, ROLE, "null", false);
    buf_adds(&want, "data: {\"id\":\"" ID "\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,"
                    "\"model\":\"" ALIAS "\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"");
    buf_adds(&want, text);
    buf_adds(&want, "\"},\"finish_reason\":null}]}\n\n");
    chunk(&want, "{\"content\":\"end\"}", "null", false);
    chunk(&want, "{}", "\"stop\"", false);
    buf_adds(&want, DONE);
    expect_t x = {.out = buf_str(&want), .done = true, .content = true, .usage_present = true,
                  .prompt = 15, .completion = 3, .total = 18, .cached = 3};
    check_stream("anthropic", false, buf_str(&in), &x);
    free(text);
    free(in.p);
    free(want.p);
}

static void test_stream_misc(void) {
    buf_t o = {0};
    CHECK_NULL(ai_stream_new("cohere", ALIAS, ID, CREATED, false, capture, &o));
    CHECK_NULL(ai_stream_new(NULL, ALIAS, ID, CREATED, false, capture, &o));
    CHECK_NULL(ai_stream_new("openai", ALIAS, ID, CREATED, false, NULL, &o));
    /* An empty stream has not ended cleanly; emit_error still works. */
    ai_stream_t *s = ai_stream_new("gemini", NULL, NULL, 0, false, capture, &o);
    CHECK_INT(-1, ai_stream_finish(s));
    ai_usage_t u;
    ai_stream_usage(s, &u);
    CHECK_INT(0, u.present);
    ai_stream_emit_error(s, "upstream timed out", "timeout_error");
    CHECK_STR("data: {\"error\":{\"message\":\"upstream timed out\",\"type\":\"timeout_error\",\"param\":null,"
              "\"code\":null}}\n\n" DONE,
              buf_str(&o));
    ai_stream_free(s);
    ai_stream_free(NULL);
    free(o.p);
}

int main(void) {
    test_sse_fields();
    test_sse_line_endings();
    test_sse_limits();
    test_anthropic_request_basic();
    test_anthropic_request_max_tokens_and_stop();
    test_anthropic_request_tools();
    test_anthropic_request_images();
    test_request_errors();
    test_gemini_request();
    test_gemini_request_tools();
    test_openai_request();
    test_anthropic_response();
    test_gemini_response();
    test_usage_extract();
    test_errors();
    test_stream_anthropic_text();
    test_stream_anthropic_truncated();
    test_stream_anthropic_tools();
    test_stream_anthropic_errors();
    test_stream_anthropic_thinking();
    test_stream_gemini();
    test_stream_gemini_failures();
    test_stream_openai();
    test_stream_large_chunk();
    test_stream_misc();
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
