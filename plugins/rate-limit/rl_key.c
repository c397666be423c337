/* Counter keys; see rl_key.h. */
#include "rl_key.h"

#include <openssl/sha.h>
#include <string.h>

#include "rl_host.h"

/* Runs for every byte of every key part on every request, hence a table
 * rather than a search of the punctuation list. */
static int passes_as_is(unsigned char ch)
{
    static const unsigned char punct[256] = {
        ['-'] = 1, ['.'] = 1, ['_'] = 1, ['~'] = 1, [':'] = 1, ['@'] = 1, ['+'] = 1, ['/'] = 1,
        ['='] = 1, [','] = 1, [';'] = 1, ['!'] = 1, ['*'] = 1, ['\''] = 1, ['('] = 1, [')'] = 1,
        ['$'] = 1, ['&'] = 1,
    };
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           punct[ch];
}

static size_t encoded_len(const char *value, size_t vlen)
{
    size_t n = 0;
    for (size_t i = 0; i < vlen; i++)
        n += passes_as_is((unsigned char)value[i]) ? 1 : 3;
    return n;
}

void rl_key_append_part(char *out, size_t *len, const char *value, size_t vlen)
{
    static const char hex[] = "0123456789abcdef";
    static const char HEX[] = "0123456789ABCDEF";
    char *o = out + *len;
    if (!value) {
        *o++ = '-';
    } else if (encoded_len(value, vlen) > RL_PART_MAX) {
        unsigned char digest[SHA256_DIGEST_LENGTH];
        SHA256((const unsigned char *)value, vlen, digest);
        *o++ = '#';
        for (size_t i = 0; i < sizeof digest; i++) {
            *o++ = hex[digest[i] >> 4];
            *o++ = hex[digest[i] & 0xf];
        }
    } else {
        for (size_t i = 0; i < vlen; i++) {
            unsigned char ch = (unsigned char)value[i];
            if (passes_as_is(ch)) {
                *o++ = (char)ch;
            } else {
                *o++ = '%';
                *o++ = HEX[ch >> 4];
                *o++ = HEX[ch & 0xf];
            }
        }
    }
    *o = '\0';
    *len = (size_t)(o - out);
}

size_t rl_key_prefix_from(const char *route, const char *const *values, const size_t *lens,
                          int n, char *out)
{
    size_t len = 4;
    memcpy(out, "rl:{", 4);
    rl_key_append_part(out, &len, route, route ? strlen(route) : 0);
    for (int i = 0; i < n && i < RL_MAX_KEY_PARTS; i++) {
        out[len++] = '|';
        rl_key_append_part(out, &len, values[i], lens[i]);
    }
    out[len++] = '}';
    out[len] = '\0';
    return len;
}

size_t rl_key_prefix(const rl_conf_t *c, sl_req_t *r, char *out)
{
    const char *values[RL_MAX_KEY_PARTS];
    size_t lens[RL_MAX_KEY_PARTS];
    const char *route = rl_host->req_route(r);
    for (int i = 0; i < c->n_parts; i++) {
        size_t n = 0;
        const char *v = NULL;
        switch (c->parts[i].kind) {
        case RL_PART_CONSUMER: v = rl_host->ctx_get(r, "consumer", &n); break;
        case RL_PART_CREDENTIAL: v = rl_host->ctx_get(r, "credential", &n); break;
        case RL_PART_IP:
            v = rl_host->req_client_ip(r);
            n = v ? strlen(v) : 0;
            break;
        case RL_PART_ROUTE:
            v = route;
            n = v ? strlen(v) : 0;
            break;
        case RL_PART_GLOBAL:
            v = "*";
            n = 1;
            break;
        case RL_PART_HEADER: v = rl_host->req_header(r, c->parts[i].header, &n); break;
        }
        values[i] = v;
        lens[i] = v ? n : 0;
    }
    return rl_key_prefix_from(route, values, lens, c->n_parts, out);
}

size_t rl_format_int(int64_t v, char *out)
{
    /* Two digits per division: window starts have 13. */
    static const char pairs[] =
        "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
        "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
        "8081828384858687888990919293949596979899";
    char digits[20];
    char *p = digits + sizeof digits;
    /* The magnitude as unsigned, so INT64_MIN needs no special case. */
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    while (u >= 100) {
        const char *d = pairs + 2 * (u % 100);
        u /= 100;
        *--p = d[1];
        *--p = d[0];
    }
    if (u >= 10) {
        *--p = pairs[2 * u + 1];
        *--p = pairs[2 * u];
    } else {
        *--p = (char)('0' + u);
    }
    size_t len = 0, n = (size_t)(digits + sizeof digits - p);
    if (v < 0)
        out[len++] = '-';
    memcpy(out + len, p, n);
    len += n;
    out[len] = '\0';
    return len;
}

/* A window's start is the same for every request of the window, and each
 * request builds a key from it (two for a sliding window): each thread
 * keeps the text of the last few starts it formatted. */
#define WINDOW_TEXT_CACHE 4

static size_t window_start_text(int64_t start, char *out)
{
    static _Thread_local struct {
        int64_t start;
        size_t len;
        char text[24];
    } cache[WINDOW_TEXT_CACHE];
    static _Thread_local unsigned next;
    for (int i = 0; i < WINDOW_TEXT_CACHE; i++) {
        if (cache[i].len > 0 && cache[i].start == start) {
            memcpy(out, cache[i].text, cache[i].len + 1);
            return cache[i].len;
        }
    }
    size_t len = rl_format_int(start, out);
    unsigned slot = next++ % WINDOW_TEXT_CACHE;
    cache[slot].start = start;
    cache[slot].len = len;
    memcpy(cache[slot].text, out, len + 1);
    return len;
}

size_t rl_key_counter_suffix(int index, int64_t window_start_ms, char *out)
{
    size_t len = 0;
    out[len++] = ':';
    len += rl_format_int(index, out + len);
    out[len++] = ':';
    if (window_start_ms < 0) {
        memcpy(out + len, "tat", 4);
        return len + 3;
    }
    return len + window_start_text(window_start_ms, out + len);
}

void rl_counter_key_init(rl_counter_key_t *k, const char *prefix, size_t prefix_len)
{
    memcpy(k->text, prefix, prefix_len);
    k->text[prefix_len] = '\0';
    k->plen = k->len = prefix_len;
}

const char *rl_counter_key_at(rl_counter_key_t *k, int index, int64_t window_start_ms)
{
    k->len = k->plen + rl_key_counter_suffix(index, window_start_ms, k->text + k->plen);
    return k->text;
}

size_t rl_key_counter(const char *prefix, int index, int64_t window_start_ms, char *out)
{
    size_t plen = strlen(prefix);
    memcpy(out, prefix, plen);
    return plen + rl_key_counter_suffix(index, window_start_ms, out + plen);
}
