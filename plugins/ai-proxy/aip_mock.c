#include "aip_mock.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "aip_buf.h"

long aip_words(const char *s)
{
    long n = 0;
    bool in = false;
    for (; s && *s; s++) {
        bool space = isspace((unsigned char)*s);
        if (!space && !in)
            n++;
        in = !space;
    }
    return n;
}

/* The text of a message's content: a string, or its text parts joined with a
 * space (so words of adjacent parts stay apart). NULL when it has none. */
static char *content_text(const json_t *content)
{
    if (json_is_string(content))
        return strdup(json_string_value(content));
    if (!json_is_array(content))
        return NULL;
    aip_buf_t b = {0};
    size_t i;
    const json_t *part;
    bool any = false;
    json_array_foreach(content, i, part) {
        const char *type = json_string_value(json_object_get(part, "type"));
        const char *text = json_string_value(json_object_get(part, "text"));
        if (!type || strcmp(type, "text") != 0 || !text)
            continue;
        if (any)
            aip_buf_add(&b, " ", 1);
        aip_buf_str(&b, text);
        any = true;
    }
    if (!any || b.over) {
        aip_buf_free(&b);
        return NULL;
    }
    return b.p;
}

long aip_mock_prompt_words(const json_t *req)
{
    long n = 0;
    size_t i;
    const json_t *m;
    json_array_foreach(json_object_get(req, "messages"), i, m) {
        char *text = content_text(json_object_get(m, "content"));
        n += aip_words(text);
        free(text);
    }
    return n;
}

char *aip_mock_reply(const json_t *req, const char *configured)
{
    if (configured && *configured)
        return strdup(configured);
    const json_t *msgs = json_object_get(req, "messages");
    char *last = NULL;
    for (size_t i = json_array_size(msgs); i-- > 0 && !last;) {
        const json_t *m = json_array_get(msgs, i);
        const char *role = json_string_value(json_object_get(m, "role"));
        if (role && strcmp(role, "user") == 0)
            last = content_text(json_object_get(m, "content"));
    }
    size_t n = strlen(AIP_MOCK_PREFIX) + (last ? strlen(last) : 0) + 1;
    char *out = malloc(n);
    if (out)
        snprintf(out, n, "%s%s", AIP_MOCK_PREFIX, last ? last : "");
    free(last);
    return out;
}

static json_t *usage_json(long prompt, long completion)
{
    return json_pack("{s:I,s:I,s:I}", "prompt_tokens", (json_int_t)prompt, "completion_tokens",
                     (json_int_t)completion, "total_tokens", (json_int_t)(prompt + completion));
}

json_t *aip_mock_completion(const json_t *req, const char *model, const char *id, long created,
                            const char *reply)
{
    return json_pack("{s:s,s:s,s:I,s:s,s:[{s:i,s:{s:s,s:s},s:s}],s:o}", "id", id, "object", "chat.completion",
                     "created", (json_int_t)created, "model", model, "choices", "index", 0, "message", "role",
                     "assistant", "content", reply, "finish_reason", "stop", "usage",
                     usage_json(aip_mock_prompt_words(req), aip_words(reply)));
}

static void add_chunk(aip_buf_t *out, json_t *chunk)
{
    char *text = chunk ? json_dumps(chunk, JSON_COMPACT) : NULL;
    json_decref(chunk);
    if (!text) {
        out->over = true;
        return;
    }
    aip_buf_str(out, "data: ");
    aip_buf_str(out, text);
    aip_buf_str(out, "\n\n");
    free(text);
}

/* One chat.completion.chunk; delta is stolen, NULL means "choices": []. */
static json_t *chunk(const char *model, const char *id, long created, json_t *delta, const char *finish,
                     bool usage_null)
{
    json_t *c = json_pack("{s:s,s:s,s:I,s:s}", "id", id, "object", "chat.completion.chunk", "created",
                          (json_int_t)created, "model", model);
    if (!c) {
        json_decref(delta);
        return NULL;
    }
    json_t *choices = json_array();
    if (delta)
        json_array_append_new(choices, json_pack("{s:i,s:o,s:o}", "index", 0, "delta", delta, "finish_reason",
                                                 finish ? json_string(finish) : json_null()));
    json_object_set_new(c, "choices", choices);
    if (usage_null)
        json_object_set_new(c, "usage", json_null());
    return c;
}

char *aip_mock_stream(const json_t *req, const char *model, const char *id, long created, const char *reply,
                      int chunk_words, size_t *len)
{
    const json_t *opts = json_object_get(req, "stream_options");
    bool usage = json_is_true(json_object_get(opts, "include_usage"));
    if (chunk_words < 1)
        chunk_words = 1;
    aip_buf_t out = {0};
    add_chunk(&out, chunk(model, id, created, json_pack("{s:s,s:s}", "role", "assistant", "content", ""), NULL,
                          usage));
    /* Each piece is chunk_words words with the whitespace before each, so
     * the pieces joined give the reply back exactly. */
    const char *p = reply;
    while (*p) {
        const char *start = p;
        for (int w = 0; w < chunk_words && *p; w++) {
            while (*p && isspace((unsigned char)*p))
                p++;
            while (*p && !isspace((unsigned char)*p))
                p++;
        }
        /* Trailing whitespace rides on the last piece. */
        const char *q = p;
        while (*q && isspace((unsigned char)*q))
            q++;
        if (!*q)
            p = q;
        add_chunk(&out, chunk(model, id, created, json_pack("{s:s%}", "content", start, (size_t)(p - start)),
                              NULL, usage));
    }
    add_chunk(&out, chunk(model, id, created, json_object(), "stop", usage));
    if (usage) {
        json_t *c = chunk(model, id, created, NULL, NULL, false);
        if (c)
            json_object_set_new(c, "usage", usage_json(aip_mock_prompt_words(req), aip_words(reply)));
        add_chunk(&out, c);
    }
    aip_buf_str(&out, "data: [DONE]\n\n");
    if (out.over) {
        aip_buf_free(&out);
        return NULL;
    }
    *len = out.len;
    return out.p;
}

static json_t *vector(const char *text, int dims)
{
    unsigned char d[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)text, strlen(text), d);
    json_t *v = json_array();
    for (int i = 0; i < dims; i++)
        json_array_append_new(v, json_real(((double)d[i] - 128.0) / 128.0));
    return v;
}

/* encoding_format "base64" (what the openai SDKs ask for by default): the
 * vector as little-endian float32 values, base64-encoded. */
static json_t *vector_base64(const char *text, int dims)
{
    unsigned char d[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)text, strlen(text), d);
    unsigned char raw[4 * AIP_MOCK_MAX_DIMS];
    for (int i = 0; i < dims; i++) {
        float f = (float)(((double)d[i] - 128.0) / 128.0);
        uint32_t bits;
        memcpy(&bits, &f, sizeof bits);
        for (int b = 0; b < 4; b++)
            raw[4 * i + b] = (unsigned char)(bits >> (8 * b));
    }
    char out[4 * ((4 * AIP_MOCK_MAX_DIMS + 2) / 3) + 1];
    EVP_EncodeBlock((unsigned char *)out, raw, 4 * dims);
    return json_string(out);
}

json_t *aip_mock_embeddings(const json_t *req, const char *model, char *err, size_t errlen)
{
    const json_t *input = json_object_get(req, "input");
    json_t *texts = json_array();
    if (json_is_string(input)) {
        json_array_append(texts, (json_t *)input);
    } else if (json_is_array(input) && json_array_size(input) > 0) {
        size_t i;
        const json_t *v;
        json_array_foreach(input, i, v) {
            if (!json_is_string(v)) {
                snprintf(err, errlen, "input[%zu] must be a string", i);
                json_decref(texts);
                return NULL;
            }
            json_array_append(texts, (json_t *)v);
        }
    } else {
        snprintf(err, errlen, "input must be a string or a non-empty array of strings");
        json_decref(texts);
        return NULL;
    }
    int dims = AIP_MOCK_DIMS;
    const json_t *d = json_object_get(req, "dimensions");
    if (d && !json_is_null(d)) {
        if (!json_is_integer(d) || json_integer_value(d) < 1 || json_integer_value(d) > AIP_MOCK_MAX_DIMS) {
            snprintf(err, errlen, "dimensions must be an integer from 1 to %d", AIP_MOCK_MAX_DIMS);
            json_decref(texts);
            return NULL;
        }
        dims = (int)json_integer_value(d);
    }
    const json_t *fmt = json_object_get(req, "encoding_format");
    bool b64 = json_is_string(fmt) && strcmp(json_string_value(fmt), "base64") == 0;
    if (fmt && !json_is_null(fmt) && !b64 &&
        !(json_is_string(fmt) && strcmp(json_string_value(fmt), "float") == 0)) {
        snprintf(err, errlen, "encoding_format must be \"float\" or \"base64\"");
        json_decref(texts);
        return NULL;
    }
    json_t *data = json_array();
    long words = 0;
    size_t i;
    const json_t *t;
    json_array_foreach(texts, i, t) {
        words += aip_words(json_string_value(t));
        json_array_append_new(data, json_pack("{s:s,s:I,s:o}", "object", "embedding", "index", (json_int_t)i,
                                              "embedding", b64 ? vector_base64(json_string_value(t), dims)
                                                                : vector(json_string_value(t), dims)));
    }
    json_decref(texts);
    return json_pack("{s:s,s:o,s:s,s:{s:I,s:I}}", "object", "list", "data", data, "model", model, "usage",
                     "prompt_tokens", (json_int_t)words, "total_tokens", (json_int_t)words);
}
