/* Token estimate; see atl_estimate.h. */
#include "atl_estimate.h"

#include <string.h>

#include "atl_host.h"

/* UTF-8 continuation bytes do not start a character. */
static int64_t chars_of(const sl_json_t *v)
{
    size_t len = 0;
    const char *s = v ? atl_host->json_string(v, &len) : NULL;
    int64_t n = 0;
    for (size_t i = 0; s && i < len; i++)
        n += ((unsigned char)s[i] & 0xC0) != 0x80;
    return n;
}

static int64_t content_chars(const sl_json_t *content)
{
    if (!content)
        return 0;
    if (atl_host->json_type(content) == SL_JSON_STRING)
        return chars_of(content);
    int64_t n = 0;
    if (atl_host->json_type(content) == SL_JSON_ARRAY)
        for (size_t i = 0; i < atl_host->json_len(content); i++) {
            const sl_json_t *part = atl_host->json_at(content, i);
            n += atl_host->json_type(part) == SL_JSON_STRING ? chars_of(part)
                                                             : chars_of(atl_host->json_get(part, "text"));
        }
    return n;
}

static int64_t count_of(const sl_json_t *v)
{
    if (!v || atl_host->json_type(v) != SL_JSON_INTEGER)
        return -1;
    int64_t n = atl_host->json_integer(v);
    return n < 0 ? -1 : n;
}

int64_t atl_estimate(const char *body, size_t len, int64_t max_default)
{
    char err[8];
    sl_json_t *req = len ? atl_host->json_parse(body, len, err, sizeof err) : NULL;
    if (!req || atl_host->json_type(req) != SL_JSON_OBJECT) {
        if (req)
            atl_host->json_free(req);
        return max_default;
    }
    int64_t chars = 0, answer = max_default;
    const sl_json_t *messages = atl_host->json_get(req, "messages");
    const sl_json_t *input = atl_host->json_get(req, "input");
    if (messages && atl_host->json_type(messages) == SL_JSON_ARRAY) {
        for (size_t i = 0; i < atl_host->json_len(messages); i++)
            chars += content_chars(atl_host->json_get(atl_host->json_at(messages, i), "content"));
        int64_t m = count_of(atl_host->json_get(req, "max_completion_tokens"));
        if (m < 0)
            m = count_of(atl_host->json_get(req, "max_tokens"));
        if (m >= 0)
            answer = m;
    } else if (input) {
        chars = content_chars(input);
        answer = 0;
    }
    atl_host->json_free(req);
    /* A request near INT64_MAX max_tokens is refused anyway; keep the sum finite. */
    if (answer > INT64_MAX / 2)
        answer = INT64_MAX / 2;
    return (chars + 3) / 4 + answer;
}
