/* Unit tests of ai-prompt-guard's parts: redaction, message text, and the
 * chat body parsing and writing the ai-prompt-* plugins share. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "chat_json.h"
#include "prompt_text.h"
#include "redact.h"

static int passed, failed;

static void check_str(const char *file, int line, const char *expected, const char *actual)
{
    if (actual && strcmp(expected, actual) == 0) {
        passed++;
        return;
    }
    failed++;
    printf("%s:%d: expected \"%s\"\n    got \"%s\"\n", file, line, expected, actual ? actual : "(null)");
}

static void check_int(const char *file, int line, long long expected, long long actual)
{
    if (expected == actual) {
        passed++;
        return;
    }
    failed++;
    printf("%s:%d: expected %lld, got %lld\n", file, line, expected, actual);
}

#define CHECK_STR(e, a) check_str(__FILE__, __LINE__, (e), (a))
#define CHECK_INT(e, a) check_int(__FILE__, __LINE__, (e), (a))

/* The text after redaction; the input itself when nothing matched. */
static char result[4096];
static const char *redacted(const char *text, unsigned kinds)
{
    size_t n = 0;
    int oom = 0;
    char *out = redact_text(text, strlen(text), kinds, &n, &oom);
    snprintf(result, sizeof result, "%s", out ? out : text);
    if (out && strlen(out) != n)
        snprintf(result, sizeof result, "length mismatch");
    free(out);
    return result;
}

#define ALL (REDACT_EMAIL | REDACT_PHONE | REDACT_CARD)

static void test_email(void)
{
    CHECK_STR("mail [REDACTED_EMAIL] now", redacted("mail jane.doe+tag@example.co.uk now", REDACT_EMAIL));
    CHECK_STR("[REDACTED_EMAIL].", redacted("a_b%c-d@mail-1.example.org.", REDACT_EMAIL));
    CHECK_STR("<[REDACTED_EMAIL]>,[REDACTED_EMAIL]", redacted("<x@y.io>,z@w.de", REDACT_EMAIL));
    /* not addresses: no dot in the domain, a one-letter or numeric TLD, empty parts */
    CHECK_STR("root@localhost", redacted("root@localhost", REDACT_EMAIL));
    CHECK_STR("a@b.c", redacted("a@b.c", REDACT_EMAIL));
    CHECK_STR("a@1.2.3.4", redacted("a@1.2.3.4", REDACT_EMAIL));
    CHECK_STR("@example.com", redacted("@example.com", REDACT_EMAIL));
    CHECK_STR("a@.example.com", redacted("a@.example.com", REDACT_EMAIL));
    CHECK_STR("a@b..com", redacted("a@b..com", REDACT_EMAIL));
    CHECK_STR("@ @@ x@", redacted("@ @@ x@", REDACT_EMAIL));
    /* two addresses glued by an @ */
    CHECK_STR("[REDACTED_EMAIL]@c.org", redacted("a@b.com@c.org", REDACT_EMAIL));
    /* non-ASCII around the address stays intact */
    CHECK_STR("é[REDACTED_EMAIL]é", redacted("éa@b.fré", REDACT_EMAIL));
    /* the kind not asked for is left alone */
    CHECK_STR("a@b.com", redacted("a@b.com", REDACT_PHONE | REDACT_CARD));
}

static void test_card(void)
{
    CHECK_INT(1, redact_luhn_ok("4111111111111111", 16));
    CHECK_INT(0, redact_luhn_ok("4111111111111112", 16));
    CHECK_INT(1, redact_luhn_ok("79927398713", 11));
    CHECK_STR("pay [REDACTED_CARD] ok", redacted("pay 4111111111111111 ok", REDACT_CARD));
    CHECK_STR("[REDACTED_CARD]", redacted("4111 1111 1111 1111", REDACT_CARD));
    CHECK_STR("[REDACTED_CARD]", redacted("5500-0000-0000-0004", REDACT_CARD));
    CHECK_STR("[REDACTED_CARD]", redacted("3782 822463 10005", REDACT_CARD));        /* 15 digits */
    CHECK_STR("[REDACTED_CARD]", redacted("4222222222222", REDACT_CARD));            /* 13 */
    CHECK_STR("[REDACTED_CARD]", redacted("4000000000000000006", REDACT_CARD));      /* 19 */
    CHECK_STR("[REDACTED_CARD]", redacted("4111 1111-1111 1111", REDACT_CARD));      /* mixed separators */
    CHECK_STR("x[REDACTED_CARD]y", redacted("x4111111111111111y", REDACT_CARD));
    /* Luhn fails, too short, too long */
    CHECK_STR("4111 1111 1111 1112", redacted("4111 1111 1111 1112", REDACT_CARD));
    CHECK_STR("422222222222", redacted("422222222222", REDACT_CARD));
    CHECK_STR("40000000000000000006", redacted("40000000000000000006", REDACT_CARD));
    /* separators other than one space or dash end a group */
    CHECK_STR("4111.1111.1111.1111", redacted("4111.1111.1111.1111", REDACT_CARD));
    CHECK_STR("4111  1111  1111  1111", redacted("4111  1111  1111  1111", REDACT_CARD));
    /* a card after other numbers of the same run: the longest stretch that passes, from the left */
    CHECK_STR("555 [REDACTED_CARD]", redacted("555 4111 1111 1111 1111", REDACT_CARD));
    CHECK_STR("[REDACTED_CARD] 12", redacted("4111 1111 1111 1111 12", REDACT_CARD));
    CHECK_STR("[REDACTED_CARD], [REDACTED_CARD]",
              redacted("4111111111111111, 5500 0000 0000 0004", REDACT_CARD));
    /* after a "+" it is a phone number, not a card */
    CHECK_STR("+4111111111111111", redacted("+4111111111111111", REDACT_CARD));
}

static void test_phone(void)
{
    CHECK_STR("call [REDACTED_PHONE] now", redacted("call +1 (555) 123-4567 now", REDACT_PHONE));
    CHECK_STR("[REDACTED_PHONE]", redacted("+44 20 7946 0958", REDACT_PHONE));
    CHECK_STR("[REDACTED_PHONE]", redacted("+4915112345678", REDACT_PHONE));
    CHECK_STR("[REDACTED_PHONE]", redacted("+33.1.23.45.67.89", REDACT_PHONE));
    CHECK_STR("[REDACTED_PHONE]", redacted("+1(555)123-4567", REDACT_PHONE));
    CHECK_STR("[REDACTED_PHONE]", redacted("(555) 123-4567", REDACT_PHONE));
    CHECK_STR("[REDACTED_PHONE]", redacted("(555)123-4567", REDACT_PHONE));
    CHECK_STR("[REDACTED_PHONE]", redacted("555-123-4567", REDACT_PHONE));
    CHECK_STR("[REDACTED_PHONE]", redacted("555.123.4567", REDACT_PHONE));
    CHECK_STR("[REDACTED_PHONE]", redacted("555 123 4567", REDACT_PHONE));
    CHECK_STR("[REDACTED_PHONE]", redacted("1-555-123-4567", REDACT_PHONE));
    CHECK_STR("tel:[REDACTED_PHONE].", redacted("tel:5551234567.", REDACT_PHONE));
    /* too few or too many digits, glued to letters or digits, dates and versions */
    CHECK_STR("+1234567", redacted("+1234567", REDACT_PHONE));
    CHECK_STR("+1234567890123456", redacted("+1234567890123456", REDACT_PHONE));
    CHECK_STR("555-1234", redacted("555-1234", REDACT_PHONE));
    CHECK_STR("55512345678", redacted("55512345678", REDACT_PHONE));
    CHECK_STR("555123456", redacted("555123456", REDACT_PHONE));
    CHECK_STR("id5551234567", redacted("id5551234567", REDACT_PHONE));
    CHECK_STR("555-123-45678", redacted("555-123-45678", REDACT_PHONE));
    CHECK_STR("2024-01-15 10:30", redacted("2024-01-15 10:30", REDACT_PHONE));
    CHECK_STR("v1.2.3", redacted("v1.2.3", REDACT_PHONE));
    /* an unclosed parenthesis is not part of the number */
    CHECK_STR("([REDACTED_PHONE]", redacted("(555 123-4567", REDACT_PHONE));
}

static void test_all_kinds(void)
{
    CHECK_STR("[REDACTED_EMAIL], [REDACTED_CARD], [REDACTED_PHONE]",
              redacted("bob5551234567@mail.com, 4111 1111 1111 1111, +1 555 123 4567", ALL));
    CHECK_STR("nothing here: 42, 3.14, 2024-01-15", redacted("nothing here: 42, 3.14, 2024-01-15", ALL));
    CHECK_STR("", redacted("", ALL));
    size_t n = 7;
    int oom = 1;
    char *out = redact_text("plain", 5, ALL, &n, &oom);
    CHECK_INT(0, out != NULL);
    CHECK_INT(0, oom);
    CHECK_INT(7, (long long)n);
}

static json_t *parse(const char *text)
{
    json_t *v = json_loads(text, 0, NULL);
    if (!v) {
        printf("bad test JSON: %s\n", text);
        exit(2);
    }
    return v;
}

static void check_shapes(int line, const char *messages, const char *expected)
{
    json_t *m = parse(messages);
    char why[256] = "";
    int rc = prompt_check_shapes(m, why, sizeof why);
    check_str(__FILE__, line, expected, rc == 0 ? "ok" : why);
    json_decref(m);
}

static void test_message_text(void)
{
    check_shapes(__LINE__, "[{\"role\":\"user\",\"content\":\"x\"},{\"role\":\"assistant\",\"content\":null},"
                           "{\"role\":\"assistant\"},{\"role\":\"user\",\"content\":[{\"type\":\"text\","
                           "\"text\":\"a\"},{\"type\":\"image_url\",\"image_url\":{}}]}]", "ok");
    check_shapes(__LINE__, "[{\"role\":\"user\",\"content\":\"x\"},{\"role\":\"user\",\"content\":5}]",
                 "messages[1].content must be a string, a list of parts or null");
    check_shapes(__LINE__, "[{\"role\":\"user\",\"content\":{\"text\":\"x\"}}]",
                 "messages[0].content must be a string, a list of parts or null");
    check_shapes(__LINE__, "[{\"role\":\"user\",\"content\":[\"x\"]}]",
                 "messages[0].content[0] must be an object with a string \"type\"");
    check_shapes(__LINE__, "[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},{\"text\":\"b\"}]}]",
                 "messages[0].content[1] must be an object with a string \"type\"");
    check_shapes(__LINE__, "[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":null}]}]",
                 "messages[0].content[0].text must be a string");

    json_t *m = parse("[{\"role\":\"system\",\"content\":\"héllo\"},"
                      "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"ab\"},"
                      "{\"type\":\"image_url\",\"image_url\":{\"url\":\"x\"}},{\"type\":\"text\",\"text\":\"✓d\"}]},"
                      "{\"role\":\"assistant\",\"content\":null},"
                      "{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{\"url\":\"x\"}}]}]");
    CHECK_INT(9, (long long)prompt_chars(m));   /* héllo 5 + ab 2 + ✓d 2 */
    size_t len = 0;
    int oom = 0;
    char *text = prompt_message_text(json_array_get(m, 1), &len, &oom);
    CHECK_STR("ab\n✓d", text);
    CHECK_INT(7, (long long)len);
    free(text);
    text = prompt_message_text(json_array_get(m, 0), &len, &oom);
    CHECK_STR("héllo", text);
    free(text);
    CHECK_INT(1, prompt_message_text(json_array_get(m, 2), &len, &oom) == NULL);
    CHECK_INT(1, prompt_message_text(json_array_get(m, 3), &len, &oom) == NULL);
    CHECK_INT(0, oom);
    json_decref(m);

    m = parse("{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a@b.com\"},"
              "{\"type\":\"image_url\",\"image_url\":{\"url\":\"mailto:a@b.com\"}},{\"type\":\"text\",\"text\":\"ok\"}]}");
    CHECK_INT(1, prompt_redact_message(m, ALL));
    char *dump = chat_json_dump(m, NULL);
    CHECK_STR("{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"[REDACTED_EMAIL]\"},"
              "{\"type\":\"image_url\",\"image_url\":{\"url\":\"mailto:a@b.com\"}},{\"type\":\"text\",\"text\":\"ok\"}]}",
              dump);
    free(dump);
    CHECK_INT(0, prompt_redact_message(m, ALL));
    json_decref(m);
}

static void check_parse(int line, const char *body, const char *expected)
{
    char why[256] = "";
    json_t *root = chat_request_parse(body, strlen(body), why, sizeof why);
    check_str(__FILE__, line, expected, root ? "ok" : why);
    json_decref(root);
}

static void test_chat_json(void)
{
    check_parse(__LINE__, "{\"messages\":[]}", "ok");
    check_parse(__LINE__, "{\"messages\":[{\"role\":\"user\"}],\"model\":\"m\"}", "ok");
    check_parse(__LINE__, "", "the request body is not valid JSON: unexpected token near end of file");
    check_parse(__LINE__, "{\"a\":1,\"a\":2}", "the request body is not valid JSON: duplicate object key near '\"a\"'");
    check_parse(__LINE__, "42", "the request body must be a JSON object");
    check_parse(__LINE__, "null", "the request body must be a JSON object");
    check_parse(__LINE__, "{}", "\"messages\" must be an array");
    check_parse(__LINE__, "{\"messages\":\"hi\"}", "\"messages\" must be an array");
    check_parse(__LINE__, "{\"messages\":[{\"role\":\"user\"},[]]}",
                "messages[1] must be an object with a string \"role\"");
    check_parse(__LINE__, "{\"messages\":[{\"role\":null}]}",
                "messages[0] must be an object with a string \"role\"");

    json_t *v = parse("{\"t\":0.7,\"p\":0.1,\"big\":1e300,\"i\":12345678901234,\"r\":1.0,\"s\":\"é\"}");
    char *text = chat_json_dump(v, NULL);
    CHECK_STR("{\"t\":0.7,\"p\":0.1,\"big\":1e300,\"i\":12345678901234,\"r\":1.0,\"s\":\"é\"}", text);
    free(text);
    json_decref(v);
    /* one real that needs 17 digits decides for the whole dump, and still reads back exactly */
    v = parse("[0.30000000000000004,0.5]");
    size_t n = 0;
    text = chat_json_dump(v, &n);
    CHECK_STR("[0.30000000000000004,0.5]", text);
    CHECK_INT(25, (long long)n);
    free(text);
    json_decref(v);

    char real[40];
    chat_json_real_text(0.7, real, sizeof real);
    CHECK_STR("0.7", real);
    chat_json_real_text(2.0, real, sizeof real);
    CHECK_STR("2", real);
    chat_json_real_text(0.1 + 0.2, real, sizeof real);
    CHECK_STR("0.30000000000000004", real);
    chat_json_real_text(-1.5e-7, real, sizeof real);
    CHECK_STR("-1.5e-07", real);
}

int main(void)
{
    test_email();
    test_card();
    test_phone();
    test_all_kinds();
    test_message_text();
    test_chat_json();
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
