#include "sse.h"

#include <stdlib.h>
#include <string.h>

/* A long stream may carry one unusually large event; keeping its buffer for
 * the rest of the stream would pin that memory for every such stream. */
#define SSE_KEEP_CAPACITY ((size_t)64 << 10)

struct sse_buf {
    char *p;
    size_t len, cap;
};

struct sse_parser {
    size_t max;
    sse_event_fn fn;
    void *arg;
    struct sse_buf raw;  /* bytes of the block being assembled */
    struct sse_buf data;
    struct sse_buf type;
    size_t line_start;   /* offset in raw where the unfinished line begins */
    bool pending_cr;     /* the last byte was a CR, so a LF that follows belongs to it */
    bool deferred_blank; /* that CR ended a blank line: dispatch once the LF question is settled */
    bool has_data;
    bool first_line_done; /* a BOM is only skipped at the start of the stream */
    bool failed;
};

static int buf_reserve(struct sse_buf *b, size_t need, size_t limit) {
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap * 2 : 256;
    if (cap < need)
        cap = need;
    if (limit && cap > limit)
        cap = limit;
    char *p = realloc(b->p, cap);
    if (!p)
        return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

/* Appends and keeps a NUL after the content (not counted in len). */
static int buf_append(struct sse_buf *b, const char *s, size_t n, size_t limit) {
    if (buf_reserve(b, b->len + n + 1, limit) != 0)
        return -1;
    if (n)
        memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

static void buf_reset(struct sse_buf *b) {
    if (b->cap > SSE_KEEP_CAPACITY) {
        free(b->p);
        b->p = NULL;
        b->cap = 0;
    }
    b->len = 0;
    if (b->p)
        b->p[0] = '\0';
}

sse_parser_t *sse_parser_new(size_t max_event, sse_event_fn fn, void *arg) {
    sse_parser_t *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->max = max_event ? max_event : SSE_DEFAULT_MAX_EVENT;
    p->fn = fn;
    p->arg = arg;
    return p;
}

void sse_parser_free(sse_parser_t *p) {
    if (!p)
        return;
    free(p->raw.p);
    free(p->data.p);
    free(p->type.p);
    free(p);
}

size_t sse_parser_pending(const sse_parser_t *p) {
    return p->raw.len;
}

static int append_raw(sse_parser_t *p, const char *s, size_t n) {
    if (p->raw.len + n > p->max)
        return -1;
    /* +1 for the NUL buf_append keeps. */
    return buf_append(&p->raw, s, n, p->max + 1);
}

static int dispatch(sse_parser_t *p) {
    /* Every data line was stored with a trailing LF; the spec drops the last. */
    size_t data_len = p->data.len;
    if (data_len && p->data.p[data_len - 1] == '\n')
        data_len--;
    sse_event_t ev = {
        .type = p->type.len ? p->type.p : "",
        .type_len = p->type.len,
        .data = p->data.p ? p->data.p : "",
        .data_len = data_len,
        .has_data = p->has_data,
        .raw = p->raw.p,
        .raw_len = p->raw.len,
    };
    if (p->data.p)
        p->data.p[data_len] = '\0';
    int rc = p->fn ? p->fn(p->arg, &ev) : 0;
    buf_reset(&p->raw);
    buf_reset(&p->data);
    buf_reset(&p->type);
    p->has_data = false;
    p->line_start = 0;
    return rc == 0 ? 0 : -1;
}

int sse_parser_end(sse_parser_t *p) {
    if (p->failed)
        return -1;
    p->pending_cr = false;
    if (p->deferred_blank) {
        p->deferred_blank = false;
        if (dispatch(p) != 0) {
            p->failed = true;
            return -1;
        }
    }
    return 0;
}

static int process_line(sse_parser_t *p, const char *line, size_t len) {
    if (!p->first_line_done) {
        p->first_line_done = true;
        if (len >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0) {
            line += 3;
            len -= 3;
        }
    }
    if (len == 0)
        return dispatch(p);
    if (line[0] == ':')
        return 0;
    const char *colon = memchr(line, ':', len);
    size_t name_len = colon ? (size_t)(colon - line) : len;
    const char *value = colon ? colon + 1 : line + len;
    size_t value_len = (size_t)(line + len - value);
    if (value_len && value[0] == ' ') {
        value++;
        value_len--;
    }
    if (name_len == 5 && memcmp(line, "event", 5) == 0) {
        p->type.len = 0;
        return buf_append(&p->type, value, value_len, 0);
    }
    if (name_len == 4 && memcmp(line, "data", 4) == 0) {
        p->has_data = true;
        if (buf_append(&p->data, value, value_len, 0) != 0)
            return -1;
        return buf_append(&p->data, "\n", 1, 0);
    }
    return 0; /* id, retry and unknown fields carry nothing we use */
}

/* Two library scans (vectorised) instead of a loop over every byte: the
 * lines of a relayed stream are most of its bytes. */
static const char *find_eol(const char *s, const char *end) {
    const char *lf = memchr(s, '\n', (size_t)(end - s));
    const char *cr = memchr(s, '\r', (size_t)((lf ? lf : end) - s));
    return cr ? cr : lf;
}

int sse_parser_feed(sse_parser_t *p, const char *data, size_t len) {
    if (p->failed)
        return -1;
    const char *s = data, *end = data + len;
    if (p->pending_cr && s < end) {
        p->pending_cr = false;
        if (*s == '\n') {
            if (append_raw(p, s, 1) != 0)
                goto fail;
            p->line_start = p->raw.len;
            s++;
        }
        if (p->deferred_blank) {
            p->deferred_blank = false;
            if (dispatch(p) != 0)
                goto fail;
        }
    }
    while (s < end) {
        const char *eol = find_eol(s, end);
        if (!eol) {
            if (append_raw(p, s, (size_t)(end - s)) != 0)
                goto fail;
            return 0;
        }
        size_t line_len = p->raw.len - p->line_start + (size_t)(eol - s);
        const char *next = eol + 1;
        if (*eol == '\r') {
            if (next < end && *next == '\n')
                next++;
            else if (next == end)
                p->pending_cr = true;
        }
        if (append_raw(p, s, (size_t)(next - s)) != 0)
            goto fail;
        size_t start = p->line_start;
        p->line_start = p->raw.len;
        /* A blank line's CR at the end of the input may yet be followed by
         * its LF; waiting for it keeps each event's raw bytes the same
         * however the stream was split (a relay must not lose that LF). */
        if (p->pending_cr && line_len == 0 && p->first_line_done) {
            p->deferred_blank = true;
            return 0;
        }
        if (process_line(p, p->raw.p + start, line_len) != 0)
            goto fail;
        s = next;
    }
    return 0;
fail:
    p->failed = true;
    return -1;
}
