#include "json_scan.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* jansson's JSON_PARSER_MAX_DEPTH: every value counts one level. */
#define MAX_DEPTH 2048

/* want: the top-level object's members to pick out while validating (see
 * js_validate_members); NULL when only validating. */
typedef struct scan {
    const unsigned char *p, *end;
    const char *const *want;
    const size_t *want_len;
    int n_want;
    js_span_t *found;
    int *counts;
    bool escaped;   /* whether the last string scanned had a backslash */
} scan_t;

/* Bytes that stand for themselves inside a string: everything from 0x20 to
 * 0x7f but the quote and the backslash. One table load per byte keeps the
 * common case of plain ASCII text a short loop. */
static const unsigned char plain_byte[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
};

static bool key_equals(const char *p, const char *q, const char *key, size_t klen);

static void skip_ws(scan_t *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

static int hex4(const unsigned char *p)
{
    int v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned char c = p[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

/* One UTF-8 sequence starting with a byte >= 0x80: its length, 0 when
 * invalid (overlong, a surrogate, above U+10FFFF, cut short). */
static size_t utf8_len(const unsigned char *p, const unsigned char *end)
{
    unsigned char c = p[0];
    size_t n;
    uint32_t cp;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if ((size_t)(end - p) < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

/* s->p at the opening quote. */
static bool scan_string(scan_t *s)
{
    const unsigned char *p = s->p + 1, *end = s->end;
    s->escaped = false;
    while (p < end) {
        while (p < end && plain_byte[*p])
            p++;
        if (p >= end)
            break;
        unsigned char c = *p;
        if (c == '"') {
            s->p = p + 1;
            return true;
        }
        if (c < 0x20)
            return false;
        if (c < 0x80) {
            if (c != '\\') {
                p++;
                continue;
            }
            if (end - p < 2)
                return false;
            s->escaped = true;
            c = p[1];
            if (c != 'u') {
                if (!strchr("\"\\/bfnrt", c) || c == '\0')
                    return false;
                p += 2;
                continue;
            }
            if (end - p < 6)
                return false;
            int u = hex4(p + 2);
            if (u <= 0 || (u >= 0xdc00 && u <= 0xdfff))   /* \u0000, or a lone low surrogate */
                return false;
            p += 6;
            if (u >= 0xd800 && u <= 0xdbff) {
                int lo = end - p >= 6 && p[0] == '\\' && p[1] == 'u' ? hex4(p + 2) : -1;
                if (lo < 0xdc00 || lo > 0xdfff)
                    return false;
                p += 6;
            }
            continue;
        }
        size_t n = utf8_len(p, end);
        if (n == 0)
            return false;
        p += n;
    }
    return false;
}

static bool digits(scan_t *s)
{
    const unsigned char *start = s->p;
    while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
        s->p++;
    return s->p > start;
}

static bool scan_number(scan_t *s)
{
    if (*s->p == '-')
        s->p++;
    if (s->p < s->end && *s->p == '0')
        s->p++;
    else if (!digits(s))
        return false;
    if (s->p < s->end && *s->p == '.') {
        s->p++;
        if (!digits(s))
            return false;
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        s->p++;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
            s->p++;
        if (!digits(s))
            return false;
    }
    return true;
}

static bool scan_word(scan_t *s, const char *w, size_t n)
{
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, w, n) != 0)
        return false;
    s->p += n;
    return true;
}

static bool scan_value(scan_t *s, int depth);

static bool scan_container(scan_t *s, int depth, bool object)
{
    unsigned char close = object ? '}' : ']';
    s->p++;
    skip_ws(s);
    if (s->p < s->end && *s->p == close) {
        s->p++;
        return true;
    }
    for (;;) {
        int match = -1;
        if (object) {
            const unsigned char *key = s->p;
            if (s->p >= s->end || *s->p != '"' || !scan_string(s))
                return false;
            if (depth == 1 && s->want) {
                size_t raw_len = (size_t)(s->p - key) - 2;
                for (int k = 0; k < s->n_want && match < 0; k++) {
                    /* Without escapes the bytes are the key. */
                    bool eq = s->escaped ? key_equals((const char *)key, (const char *)s->p, s->want[k],
                                                      s->want_len[k])
                                         : raw_len == s->want_len[k] && memcmp(key + 1, s->want[k], raw_len) == 0;
                    if (eq)
                        match = k;
                }
            }
            skip_ws(s);
            if (s->p >= s->end || *s->p != ':')
                return false;
            s->p++;
            skip_ws(s);
        }
        const unsigned char *value = s->p;
        if (!scan_value(s, depth + 1))
            return false;
        if (match >= 0) {
            /* The last one wins, as in jansson. */
            s->found[match].p = (const char *)value;
            s->found[match].len = (size_t)(s->p - value);
            if (s->counts)
                s->counts[match]++;
        }
        skip_ws(s);
        if (s->p >= s->end)
            return false;
        if (*s->p == close) {
            s->p++;
            return true;
        }
        if (*s->p != ',')
            return false;
        s->p++;
        skip_ws(s);
    }
}

static bool scan_value(scan_t *s, int depth)
{
    if (depth > MAX_DEPTH || s->p >= s->end)
        return false;
    switch (*s->p) {
    case '{':
        return scan_container(s, depth, true);
    case '[':
        return scan_container(s, depth, false);
    case '"':
        return scan_string(s);
    case 't':
        return scan_word(s, "true", 4);
    case 'f':
        return scan_word(s, "false", 5);
    case 'n':
        return scan_word(s, "null", 4);
    default:
        return (*s->p == '-' || (*s->p >= '0' && *s->p <= '9')) && scan_number(s);
    }
}

static bool validate(scan_t *sp, const char *text, size_t len, js_span_t *value)
{
    scan_t s = *sp;
    s.p = (const unsigned char *)text;
    s.end = (const unsigned char *)text + len;
    value->p = NULL;
    value->len = 0;
    if (!text)
        return false;
    skip_ws(&s);
    const unsigned char *start = s.p;
    if (!scan_value(&s, 1))
        return false;
    const unsigned char *stop = s.p;
    skip_ws(&s);
    if (s.p != s.end)
        return false;
    value->p = (const char *)start;
    value->len = (size_t)(stop - start);
    return true;
}

bool js_validate(const char *text, size_t len, js_span_t *value)
{
    scan_t s = {0};
    return validate(&s, text, len, value);
}

bool js_validate_members(const char *text, size_t len, js_span_t *value, const char *const *keys, int n,
                         js_span_t *out, int *counts)
{
    size_t klen[JS_MAX_KEYS];
    for (int k = 0; k < n && k < JS_MAX_KEYS; k++) {
        out[k].p = NULL;
        out[k].len = 0;
        if (counts)
            counts[k] = 0;
        klen[k] = strlen(keys[k]);
    }
    scan_t s = {.want = n <= JS_MAX_KEYS ? keys : NULL, .want_len = klen, .n_want = n, .found = out,
                .counts = counts};
    if (validate(&s, text, len, value))
        return true;
    for (int k = 0; k < n && k < JS_MAX_KEYS; k++) {
        out[k].p = NULL;
        out[k].len = 0;
        if (counts)
            counts[k] = 0;
    }
    return false;
}

char js_kind(js_span_t v)
{
    if (!v.p || v.len == 0)
        return 0;
    switch (v.p[0]) {
    case '{':
    case '[':
    case '"':
    case 't':
    case 'f':
        return v.p[0];
    case 'n':
        return 'z';
    default:
        return 'n';
    }
}

/* ---- reading validated text: no checks beyond finding the ends ---------------- */

static const char *skip_ws_at(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

/* The end of the string whose opening quote is at p. */
static const char *string_end(const char *p, const char *end)
{
    for (p++; p < end; p++) {
        if (*p == '\\')
            p++;
        else if (*p == '"')
            return p + 1;
    }
    return end;
}

/* The end of the value starting at p. */
static const char *value_end(const char *p, const char *end)
{
    if (*p == '"')
        return string_end(p, end);
    if (*p != '{' && *p != '[') {
        while (p < end && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\t' && *p != '\n' &&
               *p != '\r')
            p++;
        return p;
    }
    int depth = 0;
    for (; p < end; p++) {
        if (*p == '"') {
            p = string_end(p, end) - 1;
        } else if (*p == '{' || *p == '[') {
            depth++;
        } else if (*p == '}' || *p == ']') {
            if (--depth == 0)
                return p + 1;
        }
    }
    return end;
}

/* Encodes cp as UTF-8 at out; returns the byte count. */
static size_t put_utf8(char *out, uint32_t cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Whether the string literal [p, q) (quotes included, validated) equals
 * key once unescaped. */
static bool key_equals(const char *p, const char *q, const char *key, size_t klen)
{
    p++;
    q--;
    if (!memchr(p, '\\', (size_t)(q - p)))
        return (size_t)(q - p) == klen && memcmp(p, key, klen) == 0;
    size_t at = 0;
    while (p < q) {
        char buf[4];
        size_t n = 1;
        if (*p != '\\') {
            buf[0] = *p++;
        } else if (p[1] != 'u') {
            static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
            buf[0] = to[strchr(from, p[1]) - from];
            p += 2;
        } else {
            uint32_t cp = (uint32_t)hex4((const unsigned char *)p + 2);
            p += 6;
            if (cp >= 0xd800 && cp <= 0xdbff) {
                cp = 0x10000 + ((cp - 0xd800) << 10) + ((uint32_t)hex4((const unsigned char *)p + 2) - 0xdc00);
                p += 6;
            }
            n = put_utf8(buf, cp);
        }
        if (n > klen - at || memcmp(key + at, buf, n) != 0)
            return false;
        at += n;
    }
    return at == klen;
}

void js_members(js_span_t obj, const char *const *keys, int n, js_span_t *out)
{
    size_t klen[JS_MAX_KEYS];
    for (int k = 0; k < n; k++) {
        out[k].p = NULL;
        out[k].len = 0;
        klen[k] = strlen(keys[k]);
    }
    if (js_kind(obj) != '{' || n > JS_MAX_KEYS)
        return;
    const char *p = obj.p + 1, *end = obj.p + obj.len;
    for (;;) {
        p = skip_ws_at(p, end);
        if (p >= end || *p != '"')
            return;
        const char *kend = string_end(p, end);
        int match = -1;
        for (int k = 0; k < n && match < 0; k++)
            if (key_equals(p, kend, keys[k], klen[k]))
                match = k;
        p = skip_ws_at(kend, end) + 1;   /* past ':' */
        p = skip_ws_at(p, end);
        const char *vend = value_end(p, end);
        if (match >= 0) {
            out[match].p = p;
            out[match].len = (size_t)(vend - p);
        }
        p = skip_ws_at(vend, end);
        if (p >= end || *p != ',')
            return;
        p++;
    }
}

js_span_t js_member(js_span_t obj, const char *key, int *count)
{
    js_span_t found = {NULL, 0};
    int n = 0;
    if (js_kind(obj) == '{') {
        size_t klen = strlen(key);
        const char *p = obj.p + 1, *end = obj.p + obj.len;
        for (;;) {
            p = skip_ws_at(p, end);
            if (p >= end || *p != '"')
                break;
            const char *kend = string_end(p, end);
            bool match = key_equals(p, kend, key, klen);
            p = skip_ws_at(kend, end) + 1;   /* past ':' */
            p = skip_ws_at(p, end);
            const char *vend = value_end(p, end);
            if (match) {
                found.p = p;
                found.len = (size_t)(vend - p);
                n++;
            }
            p = skip_ws_at(vend, end);
            if (p >= end || *p != ',')
                break;
            p++;
        }
    }
    if (count)
        *count = n;
    return found;
}

bool js_next(js_span_t arr, size_t *pos, js_span_t *elem)
{
    if (js_kind(arr) != '[')
        return false;
    const char *end = arr.p + arr.len;
    const char *p = arr.p + (*pos == 0 ? 1 : *pos);
    p = skip_ws_at(p, end);
    if (*pos != 0) {
        if (p >= end || *p != ',')
            return false;
        p = skip_ws_at(p + 1, end);
    }
    if (p >= end || *p == ']')
        return false;
    const char *vend = value_end(p, end);
    elem->p = p;
    elem->len = (size_t)(vend - p);
    *pos = (size_t)(vend - arr.p);
    return true;
}

long long js_integer(js_span_t v, long long dflt)
{
    if (js_kind(v) != 'n' || v.len >= 32)
        return dflt;
    char buf[32];
    memcpy(buf, v.p, v.len);
    buf[v.len] = '\0';
    if (strpbrk(buf, ".eE"))
        return dflt;
    errno = 0;
    char *end;
    long long n = strtoll(buf, &end, 10);
    return errno == 0 && *end == '\0' ? n : dflt;
}

bool js_nonempty_string(js_span_t v) { return js_kind(v) == '"' && v.len > 2; }
