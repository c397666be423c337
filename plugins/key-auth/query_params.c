#include "query_params.h"

#include <string.h>

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes in[0..len) into out (len + 1 bytes); -1 on a broken escape. */
static long decode(const char *in, size_t len, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (in[i] != '%') {
            out[o++] = in[i] == '+' ? ' ' : in[i];
            continue;
        }
        if (len - i < 3)
            return -1;
        int hi = hex_digit(in[i + 1]), lo = hex_digit(in[i + 2]);
        if (hi < 0 || lo < 0)
            return -1;
        out[o++] = (char)(hi << 4 | lo);
        i += 2;
    }
    out[o] = '\0';
    return (long)o;
}

/* Does the encoded name raw[0..len) decode to `name`? Decodes as it
 * compares, so a name of any length needs no buffer. */
static int name_is(const char *raw, size_t len, const char *name)
{
    size_t k = 0;
    for (size_t i = 0; i < len; i++, k++) {
        char c = raw[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            if (len - i < 3)
                return 0;
            int hi = hex_digit(raw[i + 1]), lo = hex_digit(raw[i + 2]);
            if (hi < 0 || lo < 0)
                return 0;
            c = (char)(hi << 4 | lo);
            i += 2;
        }
        if (name[k] == '\0' || name[k] != c)
            return 0;
    }
    return name[k] == '\0';
}

/* Is the parameter p[0..len) named `name`? Sets *value to its raw value. */
static int named(const char *p, size_t len, const char *name, const char **value, size_t *vlen)
{
    const char *eq = memchr(p, '=', len);
    size_t nlen = eq ? (size_t)(eq - p) : len;
    if (!name_is(p, nlen, name))
        return 0;
    *value = eq ? eq + 1 : p + len;
    *vlen = eq ? len - nlen - 1 : 0;
    return 1;
}

param_result_t query_param_get(const char *query, size_t qlen, const char *name, char *out,
                               size_t *out_len)
{
    const char *p = query, *end = query + qlen;
    while (qlen > 0) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        size_t len = amp ? (size_t)(amp - p) : (size_t)(end - p);
        const char *value;
        size_t vlen;
        if (named(p, len, name, &value, &vlen)) {
            long n = decode(value, vlen, out);
            if (n < 0)
                return PARAM_MALFORMED;
            *out_len = (size_t)n;
            return PARAM_FOUND;
        }
        if (!amp)
            break;
        p = amp + 1;
    }
    return PARAM_ABSENT;
}

size_t query_param_remove(const char *query, size_t qlen, const char *name, char *out, int *removed)
{
    size_t o = 0;
    *removed = 0;
    const char *p = query, *end = query + qlen;
    int first = 1;
    while (qlen > 0) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        size_t len = amp ? (size_t)(amp - p) : (size_t)(end - p);
        const char *value;
        size_t vlen;
        if (named(p, len, name, &value, &vlen)) {
            (*removed)++;
        } else {
            if (!first)
                out[o++] = '&';
            memcpy(out + o, p, len);
            o += len;
            first = 0;
        }
        if (!amp)
            break;
        p = amp + 1;
    }
    out[o] = '\0';
    return o;
}
