/* Unit tests of ai-cache's pure parts: the cache key, rebuilding a streamed
 * answer, and replaying an entry as a stream. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cache_answer.h"
#include "cache_key.h"
#include "check.h"

static const char *const FIELDS[] = {"model", "messages", "temperature", "seed"};

static void key_of(const char *scope, const char *body, char out[ACACHE_KEY_HEX + 1], int *rc)
{
    json_t *v = json_loads(body, 0, NULL);
    *rc = acache_key_of(scope, v, FIELDS, 4, out);
    json_decref(v);
}

static void test_key(void)
{
    char a[ACACHE_KEY_HEX + 1], b[ACACHE_KEY_HEX + 1];
    int rc = -2;
    current_case = "key";
    /* sha256("llm\n" + the picked fields, compact, keys sorted at every depth) */
    key_of("llm", "{\"temperature\":0.5,\"stream\":true,\"model\":\"chat\","
                  "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"user\":\"u1\"}", a, &rc);
    CHECK_INT(0, rc);
    CHECK_STR("5cd39dbd641ed318b9444f2a22db33e52009ef16ef22b944cea40e9c863fde51", a);
    /* Field order and fields outside key_fields do not matter. */
    key_of("llm", "{\"messages\":[{\"content\":\"hi\",\"role\":\"user\"}],\"model\":\"chat\",\"temperature\":0.5}",
           b, &rc);
    CHECK_INT(0, rc);
    CHECK_STR(a, b);
    /* Nothing picked: the hash of "\n{}". */
    key_of(NULL, "{\"other\":1}", b, &rc);
    CHECK_INT(0, rc);
    CHECK_STR("a062dd4952b935e430d409c4a5e5cd760e8781e3200d5c7e12a232dddba8a528", b);
    /* Another scope, another value: another key. */
    key_of("llm2", "{\"temperature\":0.5,\"model\":\"chat\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
           b, &rc);
    CHECK_INT(0, rc);
    CHECK_INT(1, strcmp(a, b) != 0);
    key_of("llm", "{\"temperature\":0.6,\"model\":\"chat\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
           b, &rc);
    CHECK_INT(1, strcmp(a, b) != 0);
    /* Not an object. */
    key_of("llm", "[1]", b, &rc);
    CHECK_INT(-1, rc);
    CHECK_INT(-1, acache_key_of("llm", NULL, FIELDS, 4, b));
}

static void flags_of(const char *body, int stream, int include_usage)
{
    json_t *v = json_loads(body, 0, NULL);
    acache_request_t f;
    acache_request_flags(v, &f);
    CHECK_INT(stream, f.stream);
    CHECK_INT(include_usage, f.include_usage);
    json_decref(v);
}

static void test_flags(void)
{
    current_case = "flags";
    flags_of("{}", 0, 0);
    flags_of("{\"stream\":true}", 1, 0);
    flags_of("{\"stream\":\"yes\"}", 0, 0);
    flags_of("{\"stream\":true,\"stream_options\":{\"include_usage\":true}}", 1, 1);
    flags_of("{\"stream\":false,\"stream_options\":{\"include_usage\":true}}", 0, 0);
    flags_of("{\"stream\":true,\"stream_options\":{\"include_usage\":1}}", 1, 0);
}

static void test_json_answer_ok(void)
{
    current_case = "json answer";
    const char *ok = "{\"object\":\"chat.completion\",\"choices\":[{}]}";
    CHECK_INT(1, acache_json_answer_ok(ok, strlen(ok)));
    const char *none = "{\"object\":\"chat.completion\",\"choices\":[]}";
    CHECK_INT(0, acache_json_answer_ok(none, strlen(none)));
    const char *other = "{\"object\":\"list\",\"choices\":[{}]}";
    CHECK_INT(0, acache_json_answer_ok(other, strlen(other)));
    const char *err = "{\"error\":{\"message\":\"x\"}}";
    CHECK_INT(0, acache_json_answer_ok(err, strlen(err)));
    CHECK_INT(0, acache_json_answer_ok("{\"object\":", 10));
    CHECK_INT(0, acache_json_answer_ok("", 0));
}

#define CHUNK(delta, finish) \
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":7,\"model\":\"m\"," \
    "\"choices\":[{\"index\":0,\"delta\":" delta ",\"finish_reason\":" finish "}]}\n\n"

static const char STREAM[] = CHUNK("{\"role\":\"assistant\",\"content\":\"\"}", "null")
    CHUNK("{\"content\":\"Hello\"}", "null") CHUNK("{\"content\":\" w\\u00f6rld\"}", "null")
    CHUNK("{}", "\"stop\"") "data: [DONE]\n\n";

static void rebuilt(const char *sse, const acache_usage_t *u, const char *expected)
{
    size_t n = 0;
    char *e = acache_entry_from_sse(sse, strlen(sse), u, &n);
    CHECK_STR(expected, e);
    if (e && expected)
        CHECK_INT((long long)strlen(expected), (long long)n);
    free(e);
}

static void test_entry_from_sse(void)
{
    acache_usage_t u = {.known = 1, .prompt = 3, .completion = 2, .cached = 0};
    current_case = "rebuild, usage from the ctx";
    rebuilt(STREAM, &u,
            "{\"id\":\"c1\",\"object\":\"chat.completion\",\"created\":7,\"model\":\"m\",\"choices\":[{\"index\":0,"
            "\"message\":{\"role\":\"assistant\",\"content\":\"Hello w\xc3\xb6rld\"},\"finish_reason\":\"stop\"}],"
            "\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2,\"total_tokens\":5}}");
    current_case = "rebuild, cached tokens";
    u.cached = 1;
    rebuilt(STREAM, &u,
            "{\"id\":\"c1\",\"object\":\"chat.completion\",\"created\":7,\"model\":\"m\",\"choices\":[{\"index\":0,"
            "\"message\":{\"role\":\"assistant\",\"content\":\"Hello w\xc3\xb6rld\"},\"finish_reason\":\"stop\"}],"
            "\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2,\"total_tokens\":5,"
            "\"prompt_tokens_details\":{\"cached_tokens\":1}}}");
    current_case = "rebuild, no usage known";
    rebuilt(STREAM, NULL,
            "{\"id\":\"c1\",\"object\":\"chat.completion\",\"created\":7,\"model\":\"m\",\"choices\":[{\"index\":0,"
            "\"message\":{\"role\":\"assistant\",\"content\":\"Hello w\xc3\xb6rld\"},\"finish_reason\":\"stop\"}]}");
    current_case = "rebuild, the stream's usage chunk wins, CRLF framing";
    rebuilt("data: {\"id\":\"c2\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"},"
            "\"finish_reason\":\"length\"}],\"usage\":null}\r\n\r\n"
            "data: {\"id\":\"c2\",\"choices\":[],\"usage\":{\"prompt_tokens\":9}}\r\n\r\ndata: [DONE]\r\n\r\n",
            &u,
            "{\"id\":\"c2\",\"object\":\"chat.completion\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,"
            "\"message\":{\"role\":\"assistant\",\"content\":\"a\"},\"finish_reason\":\"length\"}],"
            "\"usage\":{\"prompt_tokens\":9}}");
    current_case = "no [DONE]";
    rebuilt(CHUNK("{\"content\":\"a\"}", "\"stop\""), &u, NULL);
    current_case = "no finish_reason";
    rebuilt(CHUNK("{\"content\":\"a\"}", "null") "data: [DONE]\n\n", &u, NULL);
    current_case = "error event";
    rebuilt(CHUNK("{\"content\":\"a\"}", "null") "data: {\"error\":{\"message\":\"cut\"}}\n\n"
            CHUNK("{}", "\"stop\"") "data: [DONE]\n\n", &u, NULL);
    current_case = "tool calls are not rebuilt";
    rebuilt(CHUNK("{\"tool_calls\":[{\"index\":0,\"id\":\"t\"}]}", "null") CHUNK("{}", "\"tool_calls\"")
            "data: [DONE]\n\n", &u, NULL);
    current_case = "a second choice";
    rebuilt("data: {\"id\":\"c\",\"choices\":[{\"index\":1,\"delta\":{\"content\":\"a\"},\"finish_reason\":\"stop\"}]}"
            "\n\ndata: [DONE]\n\n", &u, NULL);
    current_case = "not JSON";
    rebuilt("data: {\"id\":\n\n" CHUNK("{}", "\"stop\"") "data: [DONE]\n\n", &u, NULL);
    current_case = "a chunk after [DONE]";
    rebuilt(CHUNK("{}", "\"stop\"") "data: [DONE]\n\n" CHUNK("{}", "\"stop\""), &u, NULL);
    current_case = "empty";
    rebuilt("", &u, NULL);
}

#define RCHUNK(choices, tail) \
    "data: {\"id\":\"x\",\"object\":\"chat.completion.chunk\",\"created\":5,\"model\":\"m\",\"choices\":" choices tail "}\n\n"

static void replayed(const char *entry, int include_usage, const char *expected)
{
    size_t n = 0;
    char *s = acache_replay_sse(entry, strlen(entry), include_usage, &n);
    CHECK_STR(expected, s);
    if (s && expected)
        CHECK_INT((long long)strlen(expected), (long long)n);
    free(s);
}

static void test_replay(void)
{
    const char *entry = "{\"id\":\"x\",\"object\":\"chat.completion\",\"created\":5,\"model\":\"m\",\"choices\":[{"
                        "\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"hi there\"},"
                        "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":2,\"completion_tokens\":2}}";
    current_case = "replay without usage";
    replayed(entry, 0,
             RCHUNK("[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]", "")
             RCHUNK("[{\"index\":0,\"delta\":{\"content\":\"hi there\"},\"finish_reason\":null}]", "")
             RCHUNK("[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]", "")
             "data: [DONE]\n\n");
    current_case = "replay with usage";
    replayed(entry, 1,
             RCHUNK("[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]",
                    ",\"usage\":null")
             RCHUNK("[{\"index\":0,\"delta\":{\"content\":\"hi there\"},\"finish_reason\":null}]", ",\"usage\":null")
             RCHUNK("[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]", ",\"usage\":null")
             RCHUNK("[]", ",\"usage\":{\"prompt_tokens\":2,\"completion_tokens\":2}")
             "data: [DONE]\n\n");
    current_case = "replay of a tool call";
    replayed("{\"id\":\"x\",\"created\":5,\"model\":\"m\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
             "\"content\":null,\"tool_calls\":[{\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"f\","
             "\"arguments\":\"{}\"}}]},\"finish_reason\":\"tool_calls\"}]}",
             0,
             RCHUNK("[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":null},\"finish_reason\":null}]", "")
             RCHUNK("[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"type\":\"function\","
                    "\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]},\"finish_reason\":null}]", "")
             RCHUNK("[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]", "")
             "data: [DONE]\n\n");
    current_case = "replay, usage asked but none stored";
    replayed("{\"id\":\"x\",\"created\":5,\"model\":\"m\",\"choices\":[]}", 1,
             RCHUNK("[]", ",\"usage\":null") "data: [DONE]\n\n");
    current_case = "replay of bad entries";
    replayed("[]", 0, NULL);
    replayed("{\"choices\":{}}", 0, NULL);
    replayed("{\"id\":", 0, NULL);
}

static void test_replay_pieces(void)
{
    current_case = "long content in pieces on character boundaries";
    /* 511 ASCII bytes then a 2-byte character: the first piece stops before it. */
    size_t n = ACACHE_REPLAY_PIECE - 1;
    char *text = malloc(n + 3 + 10);
    memset(text, 'a', n);
    memcpy(text + n, "\xc3\xa9" "bcd", 6);
    json_t *entry = json_pack("{s:s,s:i,s:s,s:[{s:i,s:{s:s,s:s},s:s}]}", "id", "x", "created", 5, "model", "m",
                              "choices", "index", 0, "message", "role", "assistant", "content", text,
                              "finish_reason", "stop");
    char *etext = json_dumps(entry, JSON_COMPACT | JSON_PRESERVE_ORDER);
    size_t len = 0;
    char *s = acache_replay_sse(etext, strlen(etext), 0, &len);
    CHECK_NOT_NULL(s);
    int pieces = 0;
    char rebuilt_text[1024] = "";
    for (const char *p = s; p && (p = strstr(p, "data: {")) != NULL; p++) {
        const char *end = strstr(p, "\n\n");
        json_t *c = json_loadb(p + 6, (size_t)(end - p - 6), 0, NULL);
        const json_t *content = json_object_get(json_object_get(json_array_get(json_object_get(c, "choices"), 0),
                                                                "delta"), "content");
        if (json_is_string(content) && json_string_length(content) > 0) {
            pieces++;
            if (pieces == 1)
                CHECK_INT((long long)n, (long long)json_string_length(content));
            strcat(rebuilt_text, json_string_value(content));
        }
        json_decref(c);
    }
    CHECK_INT(2, pieces);
    CHECK_STR(text, rebuilt_text);
    free(s);
    free(etext);
    json_decref(entry);
    free(text);
}

int main(void)
{
    test_key();
    test_flags();
    test_json_answer_ok();
    test_entry_from_sse();
    test_replay();
    test_replay_pieces();
    return check_summary();
}
