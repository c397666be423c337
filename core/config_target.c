/* An upstream target URL: "http://host[:port]" or "https://...", nothing more.
 * The path a request goes to is the client's own, so a path here would be
 * silently ignored; it is refused instead. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config_internal.h"

static bool valid_hostname(const char *h)
{
    return *h && strspn(h, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") == strlen(h);
}

static int parse_port(const char *s, size_t n, int *port)
{
    if (n == 0 || n > 5)
        return -1;
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v < 1 || v > 65535)
        return -1;
    *port = v;
    return 0;
}

static int split_host_port(const char *s, size_t n, sl_target_t *t, char *err, size_t errlen)
{
    const char *port = NULL;
    char *host;
    if (n > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (!close || (close + 1 < s + n && close[1] != ':')) {
            snprintf(err, errlen, "invalid IPv6 address in brackets");
            return -1;
        }
        host = slc_strndup(s + 1, (size_t)(close - s - 1));
        unsigned char bin[16];
        if (inet_pton(AF_INET6, host, bin) != 1) {
            snprintf(err, errlen, "\"%s\" is not an IPv6 address", host);
            free(host);
            return -1;
        }
        if (close + 1 < s + n)
            port = close + 2;
    } else {
        const char *colon = memchr(s, ':', n);
        host = slc_strndup(s, colon ? (size_t)(colon - s) : n);
        if (colon)
            port = colon + 1;
        if (!host[0]) {
            snprintf(err, errlen, "missing host");
            free(host);
            return -1;
        }
        if (!valid_hostname(host)) {
            snprintf(err, errlen, "invalid host \"%s\"", host);
            free(host);
            return -1;
        }
    }
    if (port && parse_port(port, (size_t)(s + n - port), &t->port) != 0) {
        snprintf(err, errlen, "invalid port \"%.*s\" (expected 1..65535)", (int)(s + n - port), port);
        free(host);
        return -1;
    }
    t->host = host;
    return 0;
}

int slc_parse_target_url(const char *url, sl_target_t *t, char *err, size_t errlen)
{
    const char *rest;
    if (strncasecmp(url, "http://", 7) == 0) {
        rest = url + 7;
        t->tls = false;
        t->port = 80;
    } else if (strncasecmp(url, "https://", 8) == 0) {
        rest = url + 8;
        t->tls = true;
        t->port = 443;
    } else {
        snprintf(err, errlen, "\"%s\" is not an http:// or https:// URL", url);
        return -1;
    }
    size_t auth_len = strcspn(rest, "/?#");
    const char *tail = rest + auth_len;
    if (*tail && strcmp(tail, "/") != 0) {
        snprintf(err, errlen, "\"%s\" must not have a path, query or fragment", url);
        return -1;
    }
    if (memchr(rest, '@', auth_len)) {
        snprintf(err, errlen, "\"%s\" must not contain user info", url);
        return -1;
    }
    if (split_host_port(rest, auth_len, t, err, errlen) != 0)
        return -1;
    const char *fmt = strchr(t->host, ':') ? "[%s]:%d" : "%s:%d";
    if (asprintf(&t->name, fmt, t->host, t->port) < 0)
        abort();
    return 0;
}
