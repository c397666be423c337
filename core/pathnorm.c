/* Path normalisation for route matching: see pathnorm.h for the contract. */
#include "pathnorm.h"

#include <stdbool.h>
#include <string.h>

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* RFC 3986 2.3: only these may be decoded without changing what the path
 * means. Spelled out rather than isalnum() so the locale cannot widen it. */
static bool is_unreserved(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '.' || c == '_' || c == '~';
}

/* Decoding must come before dot-segment removal: "%2e%2e" is how clients
 * smuggle ".." past a naive check. Escapes that stay (e.g. "%2F") are
 * uppercased so "%2f" and "%2F" compare equal. Never grows the text. */
static ssize_t decode_unreserved(const char *in, size_t in_len, char *out)
{
    static const char hex_digits[] = "0123456789ABCDEF";
    size_t n = 0;

    for (size_t i = 0; i < in_len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == '\0')
            return -1;
        if (c != '%') {
            out[n++] = (char)c;
            continue;
        }
        if (in_len - i < 3)
            return -1;
        int hi = hex_value((unsigned char)in[i + 1]);
        int lo = hex_value((unsigned char)in[i + 2]);
        if (hi < 0 || lo < 0)
            return -1;
        unsigned char decoded = (unsigned char)(hi * 16 + lo);
        if (decoded == 0)
            return -1;
        if (is_unreserved(decoded)) {
            out[n++] = (char)decoded;
        } else {
            out[n++] = '%';
            out[n++] = hex_digits[hi];
            out[n++] = hex_digits[lo];
        }
        i += 2;
    }
    return (ssize_t)n;
}

/* Works in place on buf[0..n), which starts with '/'. Each segment is read
 * from behind the write position (a kept segment costs no more than it
 * occupied), so no second buffer is needed. Empty segments vanish, which is
 * the slash merge; a path whose last segment was empty, "." or ".." keeps a
 * trailing slash, as RFC 3986 5.2.4 does. */
static ssize_t remove_dot_segments(char *buf, size_t n)
{
    size_t w = 0;
    size_t r = 1;
    bool trailing_slash = false;

    while (r <= n) {
        size_t start = r;
        while (r < n && buf[r] != '/')
            r++;
        size_t len = r - start;
        r++;

        if (len == 0 || (len == 1 && buf[start] == '.')) {
            trailing_slash = true;
        } else if (len == 2 && buf[start] == '.' && buf[start + 1] == '.') {
            /* Clamping at the root, as browsers do, would hide an attack
             * probe behind a legitimate-looking path: refuse instead. */
            if (w == 0)
                return -1;
            do {
                w--;
            } while (buf[w] != '/');
            trailing_slash = true;
        } else {
            buf[w++] = '/';
            memmove(buf + w, buf + start, len);
            w += len;
            trailing_slash = false;
        }
    }
    if (w == 0 || trailing_slash)
        buf[w++] = '/';
    buf[w] = '\0';
    return (ssize_t)w;
}

ssize_t sl_path_normalize(const char *in, size_t in_len, char *out, size_t out_cap)
{
    if (in == NULL || out == NULL || in_len == 0 || out_cap < in_len + 1 || in[0] != '/')
        return -1;
    ssize_t n = decode_unreserved(in, in_len, out);
    if (n < 0)
        return -1;
    return remove_dot_segments(out, (size_t)n);
}
