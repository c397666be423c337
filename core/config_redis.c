/* redis: where policies keep shared counters when nodes must agree. */
#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_internal.h"

#define DEFAULT_REDIS_PORT 6379

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    ch = (char)tolower((unsigned char)ch);
    return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

/* Passwords often hold reserved characters, which URLs carry %-encoded. */
static char *percent_decode(const char *s, size_t n)
{
    char *out = slc_calloc(n + 1, 1), *o = out;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') {
            *o++ = s[i];
            continue;
        }
        int hi = i + 2 < n ? hexval(s[i + 1]) : -1;
        int lo = i + 2 < n ? hexval(s[i + 2]) : -1;
        /* %00 would end the C string early and silently shorten a password. */
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
            free(out);
            return NULL;
        }
        *o++ = (char)(hi * 16 + lo);
        i += 2;
    }
    return out;
}

static int parse_number(const char *s, size_t n, long min, long max, long *out)
{
    if (n == 0 || n > 10)
        return -1;
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static int parse_userinfo(const char *s, size_t n, sl_redis_opts_t *r, char *err, size_t errlen)
{
    const char *colon = memchr(s, ':', n);
    size_t user_len = colon ? (size_t)(colon - s) : n;
    if (user_len > 0 && !(r->username = percent_decode(s, user_len))) {
        snprintf(err, errlen, "invalid %%-escape in the user name");
        return -1;
    }
    if (colon && !(r->password = percent_decode(colon + 1, n - user_len - 1))) {
        snprintf(err, errlen, "invalid %%-escape in the password");
        return -1;
    }
    return 0;
}

static int parse_hostport(const char *s, size_t n, sl_redis_opts_t *r, char *err, size_t errlen)
{
    const char *port = NULL;
    if (n > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (!close || (close + 1 < s + n && close[1] != ':')) {
            snprintf(err, errlen, "invalid IPv6 host");
            return -1;
        }
        r->host = slc_strndup(s + 1, (size_t)(close - s - 1));
        port = close + 1 < s + n ? close + 2 : NULL;
    } else {
        const char *colon = memchr(s, ':', n);
        r->host = slc_strndup(s, colon ? (size_t)(colon - s) : n);
        port = colon ? colon + 1 : NULL;
    }
    if (!r->host[0]) {
        snprintf(err, errlen, "missing host");
        return -1;
    }
    r->port = DEFAULT_REDIS_PORT;
    long v;
    if (port && parse_number(port, (size_t)(s + n - port), 1, 65535, &v) != 0) {
        snprintf(err, errlen, "invalid port \"%.*s\" (expected 1..65535)", (int)(s + n - port), port);
        return -1;
    }
    if (port)
        r->port = (int)v;
    return 0;
}

static int parse_url(const char *url, sl_redis_opts_t *r, char *err, size_t errlen)
{
    static const char scheme[] = "redis://";
    if (strncmp(url, scheme, sizeof scheme - 1) != 0) {
        snprintf(err, errlen, "URL must start with redis://");
        return -1;
    }
    const char *auth = url + sizeof scheme - 1;
    if (strpbrk(auth, "?#")) {
        snprintf(err, errlen, "URL must not have a query or fragment");
        return -1;
    }
    const char *slash = strchr(auth, '/');
    const char *end = slash ? slash : auth + strlen(auth);
    const char *at = NULL;
    for (const char *p = auth; p < end; p++)
        if (*p == '@')
            at = p;
    if (at && parse_userinfo(auth, (size_t)(at - auth), r, err, errlen) != 0)
        return -1;
    const char *host = at ? at + 1 : auth;
    if (parse_hostport(host, (size_t)(end - host), r, err, errlen) != 0)
        return -1;
    long db = 0;
    if (slash && slash[1] && parse_number(slash + 1, strlen(slash + 1), 0, INT_MAX, &db) != 0) {
        snprintf(err, errlen, "database \"%s\" is not a number", slash + 1);
        return -1;
    }
    r->db = (int)db;
    return 0;
}

void slc_load_redis(slc_t *c, const ydoc_node_t *n, sl_redis_opts_t *r)
{
    if (!slc_map(c, n, "redis"))
        return;
    r->enabled = true;
    const ydoc_node_t *url = NULL;
    for (int i = 0; i < n->n_pairs; i++) {
        const ydoc_node_t *k = n->pairs[i].key, *v = n->pairs[i].value;
        char p[SLC_PATH];
        ydoc_path_key(p, sizeof p, "redis", k->str);
        if (!strcmp(k->str, "url")) {
            url = v;
            char err[256];
            if (slc_string(c, v, p, &r->url) && parse_url(r->url, r, err, sizeof err) != 0)
                slc_err(c, v->line, p, "%s", err);
        } else if (!strcmp(k->str, "connect_timeout")) {
            slc_duration(c, v, p, 1, &r->connect_timeout_ms);
        } else if (!strcmp(k->str, "command_timeout")) {
            slc_duration(c, v, p, 1, &r->command_timeout_ms);
        } else {
            slc_unknown_key(c, k, p);
        }
    }
    if (!url)
        slc_missing_key(c, n, "redis", "url");
}
