#include "basic_header.h"

#include <string.h>
#include <strings.h>

static int sextet(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

long base64_decode_strict(const char *in, size_t len, char *out)
{
    if (len == 0 || len % 4 != 0)
        return -1;
    size_t pad = in[len - 1] == '=' ? (in[len - 2] == '=' ? 2 : 1) : 0;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 4) {
        int last = i + 4 == len;
        unsigned v = 0;
        for (size_t k = 0; k < 4; k++) {
            int s = (last && k >= 4 - pad) ? 0 : sextet(in[i + k]);
            if (s < 0)
                return -1;
            v = v << 6 | (unsigned)s;
        }
        out[o++] = (char)(v >> 16);
        if (!last || pad < 2)
            out[o++] = (char)(v >> 8 & 0xff);
        if (!last || pad < 1)
            out[o++] = (char)(v & 0xff);
    }
    out[o] = '\0';
    return (long)o;
}

static int is_space(char c) { return c == ' ' || c == '\t'; }

basic_result_t basic_header_parse(const char *value, size_t len, char *buf, basic_credentials_t *out)
{
    size_t i = 0;
    while (i < len && is_space(value[i]))
        i++;
    size_t scheme = i;
    while (i < len && !is_space(value[i]))
        i++;
    if (i - scheme != 5 || strncasecmp(value + scheme, "basic", 5) != 0)
        return BASIC_ABSENT;
    while (i < len && is_space(value[i]))
        i++;
    size_t end = len;
    while (end > i && is_space(value[end - 1]))
        end--;
    long n = base64_decode_strict(value + i, end - i, buf);
    if (n < 0)
        return BASIC_MALFORMED;
    const char *colon = memchr(buf, ':', (size_t)n);
    if (!colon)
        return BASIC_MALFORMED;
    out->user = buf;
    out->user_len = (size_t)(colon - buf);
    out->password = colon + 1;
    out->password_len = (size_t)n - out->user_len - 1;
    return BASIC_FOUND;
}
