/* Unit tests of where ai-prompt-decorator puts the operator's messages. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "chat_json.h"
#include "decorate.h"

static int passed, failed;

#define CHECK_STR(expected, actual)                                                                \
    do {                                                                                           \
        const char *e_ = (expected), *a_ = (actual);                                               \
        if (a_ && strcmp(e_, a_) == 0) {                                                           \
            passed++;                                                                              \
        } else {                                                                                   \
            failed++;                                                                              \
            printf("%s:%d: expected %s\n%*sgot      %s\n", __FILE__, __LINE__, e_,                 \
                   (int)strlen(__FILE__) + 6, "", a_ ? a_ : "(null)");                             \
        }                                                                                          \
    } while (0)

static json_t *parse(const char *text)
{
    json_t *v = json_loads(text, 0, NULL);
    if (!v) {
        printf("bad test JSON: %s\n", text);
        exit(2);
    }
    return v;
}

/* The roles and contents of the decorated messages, "role:content,...". */
static char *decorated(const char *prepend, const char *append, const char *client)
{
    json_t *p = parse(prepend ? prepend : "[]"), *a = append ? parse(append) : NULL;
    json_t *c = parse(client);
    decoration_t d;
    if (decoration_init(&d, p, a) != 0)
        return strdup("init failed");
    json_t *out = decoration_apply(&d, c);
    char *text = chat_json_dump(out, NULL);
    json_decref(out);
    decoration_free(&d);
    json_decref(p);
    json_decref(a);
    json_decref(c);
    return text;
}

static void check_decorated(int line, const char *expected, const char *prepend, const char *append,
                            const char *client)
{
    char *got = decorated(prepend, append, client);
    if (strcmp(expected, got) == 0) {
        passed++;
    } else {
        failed++;
        printf("%s:%d: expected %s\n    got %s\n", __FILE__, line, expected, got);
    }
    free(got);
}

#define DECORATED(expected, prepend, append, client)                                               \
    check_decorated(__LINE__, expected, prepend, append, client)

int main(void)
{
    /* operator system first, client's system next, then few-shot, then the rest */
    DECORATED("[{\"role\":\"system\",\"content\":\"P\"},{\"role\":\"system\",\"content\":\"C\"},"
              "{\"role\":\"user\",\"content\":\"q\"},{\"role\":\"assistant\",\"content\":\"a\"},"
              "{\"role\":\"user\",\"content\":\"hi\"},{\"role\":\"user\",\"content\":\"end\"}]",
              "[{\"role\":\"user\",\"content\":\"q\"},{\"role\":\"system\",\"content\":\"P\"},"
              "{\"role\":\"assistant\",\"content\":\"a\"}]",
              "[{\"role\":\"user\",\"content\":\"end\"}]",
              "[{\"role\":\"system\",\"content\":\"C\"},{\"role\":\"user\",\"content\":\"hi\"}]");
    /* developer counts as an instruction on both sides */
    DECORATED("[{\"role\":\"developer\",\"content\":\"P\"},{\"role\":\"developer\",\"content\":\"C\"},"
              "{\"role\":\"system\",\"content\":\"C2\"},{\"role\":\"user\",\"content\":\"q\"},"
              "{\"role\":\"user\",\"content\":\"hi\"}]",
              "[{\"role\":\"developer\",\"content\":\"P\"},{\"role\":\"user\",\"content\":\"q\"}]", NULL,
              "[{\"role\":\"developer\",\"content\":\"C\"},{\"role\":\"system\",\"content\":\"C2\"},"
              "{\"role\":\"user\",\"content\":\"hi\"}]");
    /* a client system message after the first user message stays where it was */
    DECORATED("[{\"role\":\"user\",\"content\":\"q\"},{\"role\":\"user\",\"content\":\"hi\"},"
              "{\"role\":\"system\",\"content\":\"late\"}]",
              "[{\"role\":\"user\",\"content\":\"q\"}]", NULL,
              "[{\"role\":\"user\",\"content\":\"hi\"},{\"role\":\"system\",\"content\":\"late\"}]");
    /* only appends */
    DECORATED("[{\"role\":\"user\",\"content\":\"hi\"},{\"role\":\"system\",\"content\":\"S\"}]", NULL,
              "[{\"role\":\"system\",\"content\":\"S\"}]", "[{\"role\":\"user\",\"content\":\"hi\"}]");
    /* an empty conversation gets the operator's messages in their order */
    DECORATED("[{\"role\":\"system\",\"content\":\"P\"},{\"role\":\"user\",\"content\":\"q\"},"
              "{\"role\":\"assistant\",\"content\":\"A\"}]",
              "[{\"role\":\"user\",\"content\":\"q\"},{\"role\":\"system\",\"content\":\"P\"}]",
              "[{\"role\":\"assistant\",\"content\":\"A\"}]", "[]");
    /* client messages keep every field (names, tool calls, parts) */
    DECORATED("[{\"role\":\"system\",\"content\":\"P\"},{\"role\":\"user\",\"name\":\"bob\","
              "\"content\":[{\"type\":\"text\",\"text\":\"x\"}]},{\"role\":\"tool\","
              "\"tool_call_id\":\"c1\",\"content\":\"42\"}]",
              "[{\"role\":\"system\",\"content\":\"P\"}]", NULL,
              "[{\"role\":\"user\",\"name\":\"bob\",\"content\":[{\"type\":\"text\",\"text\":\"x\"}]},"
              "{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":\"42\"}]");

    /* the operator's messages are copies: changing the output leaves the decoration alone */
    json_t *p = parse("[{\"role\":\"system\",\"content\":\"P\"}]");
    decoration_t d;
    decoration_init(&d, p, NULL);
    json_t *client = parse("[]");
    json_t *out = decoration_apply(&d, client);
    json_object_set_new(json_array_get(out, 0), "content", json_string("changed"));
    char *lead = chat_json_dump(d.lead, NULL);
    CHECK_STR("[{\"role\":\"system\",\"content\":\"P\"}]", lead);
    free(lead);
    json_decref(out);
    json_decref(client);
    decoration_free(&d);
    json_decref(p);

    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
