/* json_scan.c (validation as strict as jansson's, reading members in place)
 * and the in-place OpenAI request rewrite built on it; every verdict is
 * also compared with jansson's own. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "check.h"
#include "json_scan.h"
#include "translate.h"

/* The span's bytes as a string (static buffer, for comparisons). */
static const char *text_of(js_span_t v)
{
    static char buf[256];
    if (!v.p)
        return "(absent)";
    snprintf(buf, sizeof buf, "%.*s", (int)v.len, v.p);
    return buf;
}

static bool valid(const char *s, size_t len)
{
    js_span_t v;
    return js_validate(s, len, &v);
}

/* jansson's verdict on a top-level value of any kind. */
static bool jansson_valid(const char *s, size_t len)
{
    json_t *j = json_loadb(s, len, JSON_DECODE_ANY, NULL);
    json_decref(j);
    return j != NULL;
}

static void test_validate_agrees_with_jansson(void)
{
    static const char *const cases[] = {
        "{}", "[]", " {\"a\" : [1, -2.5e+3, true, false, null, \"x\"]} \n", "{\"a\":}", "{\"a\" 1}", "{,}",
        "[1,]", "[1 2]", "{\"a\":1,}", "\"\\u00e9\\ud83d\\ude00\"", "\"\\ud83d\"", "\"\\ude00\"", "\"\\u0000\"",
        "\"\\x\"", "\"a\tb\"", "01", "-", "1.", ".5", "1e", "-0", "0.0e-0", "tru", "nul", "{} x", "[[[]]]",
        "\"\xc3\xa9\"", "\"\xc3\"", "\"\xe0\x80\x80\"", "\"\xed\xa0\x80\"", "\"\xf4\x90\x80\x80\"", "\"\xff\"",
        "\"\\uZZZZ\"", "", "   ", "{\"a\":\"b\"", "[\"\\\"\"]",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len = strlen(cases[i]);
        bool ours = valid(cases[i], len), theirs = jansson_valid(cases[i], len);
        if (ours != theirs)
            fprintf(stderr, "case %zu: %s\n", i, cases[i]);
        CHECK_INT(theirs, ours);
    }
    /* A NUL byte inside the text ends nothing: it is invalid there. */
    CHECK_INT(0, valid("{\"a\":1}\0", 8));
    CHECK_INT(0, valid(NULL, 0));
}

static void test_depth_limit(void)
{
    /* 2048 levels are jansson's limit: the innermost value is the 2048th. */
    char deep[2 * 2049];
    memset(deep, '[', 2047);
    memset(deep + 2047, ']', 2047);
    CHECK_INT(1, valid(deep, 2 * 2047));
    CHECK_INT(jansson_valid(deep, 2 * 2047), valid(deep, 2 * 2047));
    memset(deep, '[', 2049);
    memset(deep + 2049, ']', 2049);
    CHECK_INT(0, valid(deep, 2 * 2049));
    CHECK_INT(jansson_valid(deep, 2 * 2049), valid(deep, 2 * 2049));
}

static void test_members(void)
{
    const char *s = " { \"a\" : 1 , \"b\":{\"c\":[1,{\"d\":\"}\"}]}, \"a\":\"x\\\"y\", \"\\u0065\":null, \"t\":true } ";
    js_span_t obj;
    CHECK_INT(1, js_validate(s, strlen(s), &obj));
    CHECK_INT('{', js_kind(obj));
    int n = 0;
    CHECK_STR("\"x\\\"y\"", text_of(js_member(obj, "a", &n)));
    CHECK_INT(2, n);
    CHECK_STR("{\"c\":[1,{\"d\":\"}\"}]}", text_of(js_member(obj, "b", NULL)));
    CHECK_STR("null", text_of(js_member(obj, "e", NULL)));
    CHECK_INT('z', js_kind(js_member(obj, "e", NULL)));
    CHECK_INT('t', js_kind(js_member(obj, "t", NULL)));
    CHECK_STR("(absent)", text_of(js_member(obj, "z", &n)));
    CHECK_INT(0, n);
    CHECK_INT(0, js_kind(js_member(obj, "z", NULL)));
    /* Not an object: no members. */
    js_span_t arr = js_member(js_member(obj, "b", NULL), "c", NULL);
    CHECK_STR("(absent)", text_of(js_member(arr, "a", NULL)));

    size_t pos = 0;
    js_span_t el;
    CHECK_INT(1, js_next(arr, &pos, &el));
    CHECK_STR("1", text_of(el));
    CHECK_INT(1, js_next(arr, &pos, &el));
    CHECK_STR("{\"d\":\"}\"}", text_of(el));
    CHECK_INT(0, js_next(arr, &pos, &el));
    pos = 0;
    CHECK_INT(0, js_next(obj, &pos, &el));
    js_span_t empty;
    CHECK_INT(1, js_validate("[ ]", 3, &empty));
    pos = 0;
    CHECK_INT(0, js_next(empty, &pos, &el));

    /* Several keys in one pass: the same answers as one at a time. */
    static const char *const keys[] = {"a", "b", "z", "t"};
    js_span_t f[4];
    js_members(obj, keys, 4, f);
    CHECK_STR("\"x\\\"y\"", text_of(f[0]));
    CHECK_STR("{\"c\":[1,{\"d\":\"}\"}]}", text_of(f[1]));
    CHECK_STR("(absent)", text_of(f[2]));
    CHECK_STR("true", text_of(f[3]));
    js_members(arr, keys, 4, f);
    CHECK_STR("(absent)", text_of(f[0]));
    CHECK_STR("(absent)", text_of(f[3]));

    /* Escaped keys match their unescaped form, and only that. */
    const char *k = "{\"\\u00e9t\\u00e9\":1,\"a\\/b\":2,\"\\ud83d\\ude00\":3,\"q\\\"\":4}";
    CHECK_INT(1, js_validate(k, strlen(k), &obj));
    CHECK_STR("1", text_of(js_member(obj, "\xc3\xa9t\xc3\xa9", NULL)));
    CHECK_STR("2", text_of(js_member(obj, "a/b", NULL)));
    CHECK_STR("3", text_of(js_member(obj, "\xf0\x9f\x98\x80", NULL)));
    CHECK_STR("4", text_of(js_member(obj, "q\"", NULL)));
    CHECK_STR("(absent)", text_of(js_member(obj, "a\\/b", NULL)));
    CHECK_STR("(absent)", text_of(js_member(obj, "\xc3\xa9t", NULL)));
}

static void test_scalars(void)
{
    js_span_t v;
    const char *s = "{\"i\":42,\"neg\":-7,\"r\":4.0,\"e\":1e2,\"big\":99999999999999999999,\"s\":\"\",\"t\":\"\\n\"}";
    CHECK_INT(1, js_validate(s, strlen(s), &v));
    CHECK_INT(42, js_integer(js_member(v, "i", NULL), -1));
    CHECK_INT(-7, js_integer(js_member(v, "neg", NULL), -1));
    CHECK_INT(-1, js_integer(js_member(v, "r", NULL), -1));
    CHECK_INT(-1, js_integer(js_member(v, "e", NULL), -1));
    CHECK_INT(-1, js_integer(js_member(v, "big", NULL), -1));
    CHECK_INT(-1, js_integer(js_member(v, "s", NULL), -1));
    CHECK_INT(-1, js_integer(js_member(v, "absent", NULL), -1));
    CHECK_INT(0, js_nonempty_string(js_member(v, "s", NULL)));
    CHECK_INT(1, js_nonempty_string(js_member(v, "t", NULL)));
    CHECK_INT(0, js_nonempty_string(js_member(v, "i", NULL)));
}

/* ai_openai_request_text against ai_to_openai_request: the same JSON, and
 * the client's own bytes everywhere else. */
static void check_rewrite(const char *in, const char *model, const char *expected, int expect_usage)
{
    bool wants = true;
    size_t len = 0;
    char *out = ai_openai_request_text(in, strlen(in), model, &wants, &len);
    CHECK_STR(expected, out);
    CHECK_INT(out ? strlen(out) : 0, len);
    CHECK_INT(expect_usage, wants);
    if (out) {
        json_t *req = json_loads(in, 0, NULL), *a = json_loads(out, 0, NULL);
        bool wants2 = false;
        json_t *b = ai_to_openai_request(req, model, &wants2, NULL, 0);
        CHECK_INT(1, json_equal(a, b));
        CHECK_INT(wants2, wants);
        json_decref(req);
        json_decref(a);
        json_decref(b);
    }
    free(out);
}

static void test_openai_request_text(void)
{
    check_rewrite("{\"model\":\"alias\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", "gpt-4o",
                  "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", 0);
    /* Spacing, key order and unknown fields stay as the client wrote them. */
    check_rewrite("{ \"messages\" : [], \"x_custom\" : 1.50, \"model\" : \"a\" }\n", "m",
                  "{ \"messages\" : [], \"x_custom\" : 1.50, \"model\" : \"m\" }\n", 0);
    check_rewrite("{\"model\":\"a\",\"messages\":[],\"stream\":true}", "m",
                  "{\"model\":\"m\",\"messages\":[],\"stream\":true,\"stream_options\":{\"include_usage\":true}}", 0);
    check_rewrite("{\"model\":\"a\",\"stream\":true,\"stream_options\":{\"include_usage\":true}} ", "m",
                  "{\"model\":\"m\",\"stream\":true,\"stream_options\":{\"include_usage\":true}} ", 1);
    check_rewrite("{\"model\":\"a\",\"stream\":false,\"stream_options\":null}", "m",
                  "{\"model\":\"m\",\"stream\":false,\"stream_options\":null}", 0);
    check_rewrite("{\"model\":\"a\",\"model2\":\"\\u00e9\"}", "caf\xc3\xa9",
                  "{\"model\":\"caf\xc3\xa9\",\"model2\":\"\\u00e9\"}", 0);

    /* What it leaves to ai_to_openai_request: NULL, nothing half done. */
    bool wants = true;
    size_t len = 7;
    static const char *const refused[] = {
        "{\"model\":\"a\",\"model\":\"b\"}",                                    /* repeated model */
        "{\"messages\":[]}",                                                   /* no model */
        "{\"model\":\"a\",\"stream\":true,\"stream_options\":{}}",             /* options to merge */
        "{\"model\":\"a\",\"stream\":true,\"stream_options\":{\"include_usage\":false}}",
        "{\"model\":\"a\",\"stream\":true,\"stream_options\":null}",
        "{\"model\":\"a\",\"stream_options\":\"yes\"}",                        /* an error to report */
        "[\"model\"]", "{\"model\":\"a\"", "",
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        char *out = ai_openai_request_text(refused[i], strlen(refused[i]), "m", &wants, &len);
        if (out)
            fprintf(stderr, "refused case %zu: %s\n", i, refused[i]);
        CHECK_INT(0, out != NULL);
        CHECK_INT(0, wants);
        free(out);
    }
    /* A model name jansson would have to escape. */
    char *out = ai_openai_request_text("{\"model\":\"a\"}", 13, "we\"ird", &wants, &len);
    CHECK_INT(0, out != NULL);
    free(out);
    out = ai_openai_request_text("{\"model\":\"a\"}", 13, NULL, &wants, &len);
    CHECK_INT(0, out != NULL);
    free(out);
}

static void test_usage_text(void)
{
    const char *s = "{\"id\":\"x\",\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":6,"
                    "\"prompt_tokens_details\":{\"cached_tokens\":4},"
                    "\"completion_tokens_details\":{\"reasoning_tokens\":2}}}";
    js_span_t body;
    CHECK_INT(1, js_validate(s, strlen(s), &body));
    ai_usage_t u = {0};
    CHECK_INT(1, ai_openai_usage_extract_text(body, &u));
    CHECK_INT(9, u.prompt);
    CHECK_INT(6, u.completion);
    CHECK_INT(15, u.total);   /* absent: the sum, as from the jansson path */
    CHECK_INT(4, u.cached);
    CHECK_INT(2, u.reasoning);
    CHECK_INT(0, u.cache_write);

    /* The same figures as ai_usage_extract gives from a jansson tree. */
    json_t *j = json_loads(s, 0, NULL);
    ai_usage_t v = {0};
    ai_usage_extract("openai", j, &v);
    json_decref(j);
    CHECK_INT(v.total, u.total);
    CHECK_INT(v.cached, u.cached);

    ai_usage_t none = {0};
    CHECK_INT(1, js_validate("{\"usage\":null}", 14, &body));
    CHECK_INT(0, ai_openai_usage_extract_text(body, &none));
    CHECK_INT(0, none.prompt);
}

/* Members picked out during validation: the same spans js_members finds
 * afterwards, counts of repeats, and nothing at all for invalid text. */
static void test_validate_members(void)
{
    static const char *const keys[] = {"model", "stream", "m\u00e9", "nested"};
    const char *s = " {\"model\":\"a\",\"nested\":{\"model\":\"inner\"},\"stream\":true,"
                    "\"m\\u00e9\":[1,2],\"model\":\"b\"} ";
    js_span_t body, f[4], g[4];
    int counts[4];
    CHECK_INT(1, js_validate_members(s, strlen(s), &body, keys, 4, f, counts));
    CHECK_INT('{', js_kind(body));
    CHECK_STR("\"b\"", text_of(f[0]));   /* the last one, as jansson keeps */
    CHECK_INT(2, counts[0]);
    CHECK_STR("true", text_of(f[1]));
    CHECK_INT(1, counts[1]);
    CHECK_STR("[1,2]", text_of(f[2]));   /* matched after unescaping */
    CHECK_INT(1, counts[2]);
    CHECK_STR("{\"model\":\"inner\"}", text_of(f[3]));
    CHECK_INT(1, counts[3]);
    js_members(body, keys, 4, g);
    for (int i = 0; i < 4; i++)
        CHECK_INT(1, f[i].p == g[i].p && f[i].len == g[i].len);

    /* Invalid text: false, every member absent and counted 0. */
    const char *bad = "{\"model\":\"a\",\"stream\":tru}";
    CHECK_INT(0, js_validate_members(bad, strlen(bad), &body, keys, 4, f, counts));
    CHECK_STR("(absent)", text_of(f[0]));
    CHECK_INT(0, counts[0]);
    CHECK_STR("(absent)", text_of(body));

    /* Not an object: valid, nothing found; counts may be NULL. */
    CHECK_INT(1, js_validate_members("[{\"model\":1}]", 13, &body, keys, 4, f, NULL));
    CHECK_INT('[', js_kind(body));
    CHECK_STR("(absent)", text_of(f[0]));

    /* A key that only starts like a wanted one, and one with a raw quote escape. */
    const char *near = "{\"models\":1,\"mod\":2,\"str\\\"eam\":3}";
    CHECK_INT(1, js_validate_members(near, strlen(near), &body, keys, 2, f, counts));
    CHECK_STR("(absent)", text_of(f[0]));
    CHECK_STR("(absent)", text_of(f[1]));
    CHECK_INT(0, counts[0] + counts[1]);
}

/* Strings with every byte class the fast loop of the validator skips or
 * stops at, each compared with jansson's verdict. */
static void test_string_bytes(void)
{
    static const char *const cases[] = {
        "\"plain ~ text {} [] : , 0x7f:\x7f\"", "\"tab\tin\"", "\"nl\nin\"", "\"\\u00e9 \\\" \\\\ \\/\"",
        "\"caf\xc3\xa9\"", "\"bad \xc3\"", "\"bad \xff\"", "\"unterminated", "\"ends in backslash\\",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        current_case = cases[i];
        CHECK_INT(jansson_valid(cases[i], strlen(cases[i])), valid(cases[i], strlen(cases[i])));
    }
    current_case = "";
    CHECK_INT(1, valid("\"plain\"", 7));
    CHECK_INT(0, valid("\"tab\tin\"", 8));
}

/* The scan of ai_chat_scan feeds the rewrite: the same output as the
 * one-call ai_openai_request_text. */
static void test_chat_scan(void)
{
    const char *s = "{\"model\":\"alias\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"stream\":true}";
    ai_chat_scan_t scan;
    CHECK_INT(1, ai_chat_scan(s, strlen(s), &scan));
    CHECK_STR("\"alias\"", text_of(scan.model));
    CHECK_INT(1, scan.n_model);
    CHECK_INT('[', js_kind(scan.messages));
    CHECK_STR("true", text_of(scan.stream));
    CHECK_STR("(absent)", text_of(scan.stream_options));
    bool wants = true;
    size_t len = 0, len2 = 0;
    char *out = ai_openai_request_scanned(&scan, "gpt-x", &wants, &len);
    CHECK_STR("{\"model\":\"gpt-x\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"stream\":true,"
              "\"stream_options\":{\"include_usage\":true}}", out);
    CHECK_INT(0, wants);
    CHECK_INT((long long)strlen(out ? out : ""), (long long)len);
    char *again = ai_openai_request_text(s, strlen(s), "gpt-x", &wants, &len2);
    CHECK_STR(out, again);
    free(out);
    free(again);

    CHECK_INT(0, ai_chat_scan("{\"model\":", 9, &scan));
    CHECK_INT(0, ai_chat_scan("[1]", 3, &scan));
    CHECK_INT(0, ai_chat_scan(NULL, 0, &scan));
    const char *twice = "{\"model\":\"a\",\"model\":\"b\"}";
    CHECK_INT(1, ai_chat_scan(twice, strlen(twice), &scan));
    CHECK_INT(2, scan.n_model);
    CHECK_NULL(ai_openai_request_scanned(&scan, "m", &wants, &len));
}

int main(void)
{
    test_validate_agrees_with_jansson();
    test_depth_limit();
    test_members();
    test_scalars();
    test_openai_request_text();
    test_usage_text();
    test_validate_members();
    test_string_bytes();
    test_chat_scan();
    return check_summary();
}
