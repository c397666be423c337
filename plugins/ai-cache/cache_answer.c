/* See cache_answer.h. */
#include "cache_answer.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

typedef struct text_buf {
    char *data;
    size_t len, cap;
    int failed;
} text_buf_t;

static void buf_add(text_buf_t *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->data, cap);
        if (!p) {
            b->failed = 1;
            return;
        }
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static char *buf_finish(text_buf_t *b, size_t *outlen)
{
    if (b->failed || !b->data) {
        free(b->data);
        return NULL;
    }
    *outlen = b->len;
    return b->data;
}

/* json_dumps takes ownership of nothing: `v` is released here. */
static char *dump_and_free(json_t *v, size_t *outlen)
{
    if (!v)
        return NULL;
    char *text = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(v);
    if (text)
        *outlen = strlen(text);
    return text;
}

int acache_json_answer_ok(const char *body, size_t len)
{
    json_t *v = json_loadb(body, len, 0, NULL);
    if (!v)
        return 0;
    const json_t *choices = json_object_get(v, "choices");
    const char *object = json_string_value(json_object_get(v, "object"));
    int ok = object && strcmp(object, "chat.completion") == 0 && json_is_array(choices) &&
             json_array_size(choices) > 0;
    json_decref(v);
    return ok;
}

/* ---- rebuilding a streamed answer ------------------------------------------------ */

typedef struct rebuild {
    json_t *first;        /* the first chunk: id, created, model */
    json_t *usage;        /* a usage chunk's usage */
    text_buf_t content;
    json_t *finish;
    int done, bad;
} rebuild_t;

static void take_chunk(rebuild_t *rb, const char *data, size_t len)
{
    if (len == 6 && memcmp(data, "[DONE]", 6) == 0) {
        rb->done = 1;
        return;
    }
    json_t *c = json_loadb(data, len, 0, NULL);
    if (!json_is_object(c) || json_object_get(c, "error") || rb->done) {
        rb->bad = 1;
        json_decref(c);
        return;
    }
    const json_t *usage = json_object_get(c, "usage");
    if (json_is_object(usage)) {
        json_decref(rb->usage);
        rb->usage = json_incref((json_t *)usage);
    }
    size_t i;
    const json_t *choice;
    json_array_foreach(json_object_get(c, "choices"), i, choice) {
        const json_t *index = json_object_get(choice, "index");
        const json_t *delta = json_object_get(choice, "delta");
        const json_t *tools = json_object_get(delta, "tool_calls");
        if ((index && json_integer_value(index) != 0) || (tools && !json_is_null(tools))) {
            rb->bad = 1;
            break;
        }
        const json_t *content = json_object_get(delta, "content");
        if (json_is_string(content))
            buf_add(&rb->content, json_string_value(content), json_string_length(content));
        const json_t *fr = json_object_get(choice, "finish_reason");
        if (json_is_string(fr)) {
            json_decref(rb->finish);
            rb->finish = json_incref((json_t *)fr);
        }
    }
    if (!rb->first)
        rb->first = c;
    else
        json_decref(c);
}

/* Calls take_chunk for the data of every event (data lines joined by "\n"). */
static void read_events(rebuild_t *rb, const char *p, size_t len)
{
    text_buf_t data = {0};
    int have_data = 0;
    const char *end = p + len;
    while (p < end && !rb->bad) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *line_end = nl ? nl : end;
        size_t n = (size_t)(line_end - p);
        if (n > 0 && p[n - 1] == '\r')
            n--;
        if (n == 0) {
            if (have_data)
                take_chunk(rb, data.data ? data.data : "", data.len);
            data.len = 0;
            have_data = 0;
        } else if (n >= 5 && memcmp(p, "data:", 5) == 0) {
            size_t skip = (n > 5 && p[5] == ' ') ? 6 : 5;
            if (have_data)
                buf_add(&data, "\n", 1);
            buf_add(&data, p + skip, n - skip);
            have_data = 1;
        }
        p = nl ? nl + 1 : end;
    }
    /* An event without its blank line never finished: not taken. */
    if (data.failed)
        rb->bad = 1;
    free(data.data);
}

static json_t *usage_from_counts(const acache_usage_t *u)
{
    json_t *usage = json_pack("{s:I,s:I,s:I}", "prompt_tokens", (json_int_t)u->prompt, "completion_tokens",
                              (json_int_t)u->completion, "total_tokens", (json_int_t)(u->prompt + u->completion));
    if (usage && u->cached > 0)
        json_object_set_new(usage, "prompt_tokens_details", json_pack("{s:I}", "cached_tokens", (json_int_t)u->cached));
    return usage;
}

static json_t *copy_or(const json_t *obj, const char *key, json_t *fallback)
{
    const json_t *v = json_object_get(obj, key);
    if (v) {
        json_decref(fallback);
        return json_incref((json_t *)v);
    }
    return fallback;
}

char *acache_entry_from_sse(const char *sse, size_t len, const acache_usage_t *usage, size_t *outlen)
{
    rebuild_t rb = {0};
    read_events(&rb, sse, len);
    char *out = NULL;
    if (!rb.bad && rb.done && rb.finish && rb.first && !rb.content.failed) {
        json_t *message = json_pack("{s:s,s:s#}", "role", "assistant", "content",
                                    rb.content.data ? rb.content.data : "", rb.content.len);
        json_t *choice = json_pack("{s:i,s:o,s:O}", "index", 0, "message", message, "finish_reason", rb.finish);
        json_t *entry = json_object();
        json_object_set_new(entry, "id", copy_or(rb.first, "id", json_string("")));
        json_object_set_new(entry, "object", json_string("chat.completion"));
        json_object_set_new(entry, "created", copy_or(rb.first, "created", json_integer(0)));
        json_object_set_new(entry, "model", copy_or(rb.first, "model", json_string("")));
        json_object_set_new(entry, "choices", json_pack("[o]", choice));
        if (rb.usage)
            json_object_set(entry, "usage", rb.usage);
        else if (usage && usage->known)
            json_object_set_new(entry, "usage", usage_from_counts(usage));
        out = dump_and_free(entry, outlen);
    }
    json_decref(rb.first);
    json_decref(rb.usage);
    json_decref(rb.finish);
    free(rb.content.data);
    return out;
}

/* ---- replaying an entry as a stream ------------------------------------------------ */

typedef struct replay {
    const json_t *entry;
    int include_usage;
    text_buf_t out;
} replay_t;

/* One `data: <chunk>\n\n` event; `choices` is stolen. */
static void emit(replay_t *rp, json_t *choices, const json_t *usage)
{
    json_t *c = json_object();
    json_object_set_new(c, "id", copy_or(rp->entry, "id", json_string("")));
    json_object_set_new(c, "object", json_string("chat.completion.chunk"));
    json_object_set_new(c, "created", copy_or(rp->entry, "created", json_integer(0)));
    json_object_set_new(c, "model", copy_or(rp->entry, "model", json_string("")));
    json_object_set_new(c, "choices", choices);
    if (rp->include_usage)
        json_object_set_new(c, "usage", usage ? json_incref((json_t *)usage) : json_null());
    size_t n = 0;
    char *text = dump_and_free(c, &n);
    if (!text) {
        rp->out.failed = 1;
        return;
    }
    buf_add(&rp->out, "data: ", 6);
    buf_add(&rp->out, text, n);
    buf_add(&rp->out, "\n\n", 2);
    free(text);
}

static void emit_delta(replay_t *rp, json_int_t index, json_t *delta, const json_t *finish)
{
    json_t *choice = json_pack("{s:I,s:o,s:O}", "index", index, "delta", delta,
                               "finish_reason", finish ? finish : json_null());
    emit(rp, json_pack("[o]", choice), NULL);
}

/* How many bytes of s (at most max) end on a character boundary. */
static size_t utf8_cut(const char *s, size_t len, size_t max)
{
    if (len <= max)
        return len;
    size_t n = max;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    return n > 0 ? n : max;
}

static void replay_choice(replay_t *rp, const json_t *choice, size_t position)
{
    const json_t *idx = json_object_get(choice, "index");
    json_int_t index = json_is_integer(idx) ? json_integer_value(idx) : (json_int_t)position;
    const json_t *message = json_object_get(choice, "message");
    const json_t *content = json_object_get(message, "content");
    emit_delta(rp, index,
               json_pack("{s:s,s:o}", "role", "assistant", "content",
                         json_is_string(content) ? json_string("") : json_null()),
               NULL);
    if (json_is_string(content)) {
        const char *s = json_string_value(content);
        size_t left = json_string_length(content);
        while (left > 0) {
            size_t n = utf8_cut(s, left, ACACHE_REPLAY_PIECE);
            emit_delta(rp, index, json_pack("{s:s#}", "content", s, n), NULL);
            s += n;
            left -= n;
        }
    }
    size_t i;
    const json_t *call;
    json_array_foreach(json_object_get(message, "tool_calls"), i, call) {
        /* "index" first, as OpenAI writes it. */
        json_t *c = json_pack("{s:I}", "index", (json_int_t)i);
        json_object_update(c, (json_t *)call);
        emit_delta(rp, index, json_pack("{s:[o]}", "tool_calls", c), NULL);
    }
    emit_delta(rp, index, json_object(), json_object_get(choice, "finish_reason"));
}

char *acache_replay_sse(const char *entry, size_t len, int include_usage, size_t *outlen)
{
    json_t *v = json_loadb(entry, len, 0, NULL);
    const json_t *choices = json_object_get(v, "choices");
    if (!json_is_object(v) || !json_is_array(choices)) {
        json_decref(v);
        return NULL;
    }
    replay_t rp = {.entry = v, .include_usage = include_usage};
    size_t i;
    const json_t *choice;
    json_array_foreach(choices, i, choice)
        replay_choice(&rp, choice, i);
    if (include_usage) {
        const json_t *usage = json_object_get(v, "usage");
        emit(&rp, json_array(), usage ? usage : json_null());
    }
    buf_add(&rp.out, "data: [DONE]\n\n", 14);
    json_decref(v);
    return buf_finish(&rp.out, outlen);
}
