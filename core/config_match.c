/* A route's match: hosts, methods, paths and headers. Regexes are compiled
 * here only to reject bad ones at load time; the router compiles its own. */
#include <ctype.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config_internal.h"

#define METHOD_NAMES "GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS, CONNECT, TRACE"

static bool regex_compiles(slc_t *c, const ydoc_node_t *n, const char *path, const char *src)
{
    if (!*src) {
        slc_err(c, n->line, path, "empty regex after \"~\"");
        return false;
    }
    regex_t re;
    int rc = regcomp(&re, src, REG_EXTENDED | REG_NOSUB);
    if (rc != 0) {
        char msg[256];
        regerror(rc, &re, msg, sizeof msg);
        slc_err(c, n->line, path, "regex does not compile: %s", msg);
        return false;
    }
    regfree(&re);
    return true;
}

/* "~ regex" (spaces after "~" optional): the regex source, or NULL. */
static const char *regex_source(const char *s)
{
    if (s[0] != '~')
        return NULL;
    s++;
    while (*s == ' ')
        s++;
    return s;
}

/* A list of scalars, where a single scalar stands for a list of one. */
static int string_items(slc_t *c, const ydoc_node_t *n, const char *path, const ydoc_node_t **one,
                        const ydoc_node_t *const **items)
{
    if (n->kind == YDOC_SCALAR && !ydoc_is_null(n) && !n->invalid) {
        *one = n;
        *items = one;
        return 1;
    }
    if (!slc_list(c, n, path))
        return 0;
    *items = (const ydoc_node_t *const *)n->items;
    return n->n_items;
}

static void item_path(char *out, size_t size, const ydoc_node_t *list, const char *path, int i)
{
    if (list->kind == YDOC_SEQ)
        ydoc_path_index(out, size, path, i);
    else
        snprintf(out, size, "%s", path);
}

static bool valid_host(const char *h)
{
    if (h[0] == '*') {
        if (h[1] != '.' || !h[2])
            return false;
        h += 2;
    }
    return strspn(h, "abcdefghijklmnopqrstuvwxyz0123456789.-_") == strlen(h);
}

static void load_hosts(slc_t *c, const ydoc_node_t *n, const char *path, sl_route_t *r)
{
    const ydoc_node_t *one, *const *items;
    int count = string_items(c, n, path, &one, &items);
    r->hosts = slc_calloc((size_t)count, sizeof *r->hosts);
    for (int i = 0; i < count; i++) {
        char p[SLC_PATH];
        item_path(p, sizeof p, n, path, i);
        char *raw = NULL;
        if (!slc_string(c, items[i], p, &raw))
            continue;
        char *host = slc_lower(raw);
        free(raw);
        if (!valid_host(host)) {
            slc_err(c, items[i]->line, p, "invalid host \"%s\" (expected a name, or \"*.\" and a name)", host);
            free(host);
            continue;
        }
        r->hosts[r->n_hosts++] = host;
    }
}

static void load_methods(slc_t *c, const ydoc_node_t *n, const char *path, sl_route_t *r)
{
    const ydoc_node_t *one, *const *items;
    int count = string_items(c, n, path, &one, &items);
    for (int i = 0; i < count; i++) {
        char p[SLC_PATH];
        item_path(p, sizeof p, n, path, i);
        if (!slc_scalar(c, items[i], p, "a method"))
            continue;
        char upper[16];
        size_t len = items[i]->len;
        unsigned bit = 0;
        if (len < sizeof upper) {
            for (size_t j = 0; j < len; j++)
                upper[j] = (char)toupper((unsigned char)items[i]->str[j]);
            bit = sl_method_bit(upper, len);
        }
        if (!bit)
            slc_err(c, items[i]->line, p, "unknown method \"%s\" (expected " METHOD_NAMES ")", items[i]->str);
        r->methods |= bit;
    }
}

static bool load_path(slc_t *c, const ydoc_node_t *n, const char *p, sl_path_match_t *out)
{
    char *s = NULL;
    if (!slc_string(c, n, p, &s))
        return false;
    const char *re = regex_source(s);
    if (re) {
        bool ok = regex_compiles(c, n, p, re);
        if (ok) {
            out->kind = SL_PATH_REGEX;
            out->value = slc_strdup(re);
        }
        free(s);
        return ok;
    }
    size_t len = strlen(s);
    char *star = strchr(s, '*');
    const char *why = NULL;
    if (s[0] != '/')
        why = "must start with \"/\" (or \"~ \" for a regex)";
    else if (star && (star != s + len - 1 || s[len - 2] != '/'))
        why = "\"*\" is only allowed at the end, as \"/*\"";
    if (why) {
        slc_err(c, n->line, p, "%s", why);
        free(s);
        return false;
    }
    if (star) {
        *star = '\0';
        out->kind = SL_PATH_PREFIX;
    } else {
        out->kind = SL_PATH_EXACT;
    }
    out->value = s;
    return true;
}

static void load_paths(slc_t *c, const ydoc_node_t *n, const char *path, sl_route_t *r)
{
    const ydoc_node_t *one, *const *items;
    int count = string_items(c, n, path, &one, &items);
    r->paths = slc_calloc((size_t)count, sizeof *r->paths);
    for (int i = 0; i < count; i++) {
        char p[SLC_PATH];
        item_path(p, sizeof p, n, path, i);
        if (load_path(c, items[i], p, &r->paths[r->n_paths]))
            r->n_paths++;
    }
}

static bool valid_header_name(const char *s)
{
    return *s && strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-.^_`|~") ==
                     strlen(s);
}

static void load_headers(slc_t *c, const ydoc_node_t *n, const char *path, sl_route_t *r)
{
    if (!slc_map(c, n, path))
        return;
    r->headers = slc_calloc((size_t)n->n_pairs, sizeof *r->headers);
    for (int i = 0; i < n->n_pairs; i++) {
        const ydoc_node_t *k = n->pairs[i].key, *v = n->pairs[i].value;
        char p[SLC_PATH];
        ydoc_path_key(p, sizeof p, path, k->str);
        if (k->invalid)
            continue;
        if (!valid_header_name(k->str)) {
            slc_err(c, k->line, p, "invalid header name");
            continue;
        }
        bool dup = false;
        for (int j = 0; j < r->n_headers && !dup; j++)
            dup = strcasecmp(r->headers[j].name, k->str) == 0;
        if (dup) {
            slc_err(c, k->line, p, "duplicate header (names are case-insensitive)");
            continue;
        }
        char *value = NULL;
        if (!slc_string(c, v, p, &value))
            continue;
        sl_header_match_t *h = &r->headers[r->n_headers];
        const char *re = regex_source(value);
        if (re && !regex_compiles(c, v, p, re)) {
            free(value);
            continue;
        }
        h->name = slc_lower(k->str);
        h->is_regex = re != NULL;
        h->value = re ? slc_strdup(re) : slc_strdup(value);
        free(value);
        r->n_headers++;
    }
}

void slc_load_match(slc_t *c, const ydoc_node_t *n, const char *path, sl_route_t *r)
{
    if (!slc_map(c, n, path))
        return;
    for (int i = 0; i < n->n_pairs; i++) {
        const ydoc_node_t *k = n->pairs[i].key, *v = n->pairs[i].value;
        char p[SLC_PATH];
        ydoc_path_key(p, sizeof p, path, k->str);
        if (!strcmp(k->str, "hosts"))
            load_hosts(c, v, p, r);
        else if (!strcmp(k->str, "methods"))
            load_methods(c, v, p, r);
        else if (!strcmp(k->str, "paths"))
            load_paths(c, v, p, r);
        else if (!strcmp(k->str, "headers"))
            load_headers(c, v, p, r);
        else
            slc_unknown_key(c, k, p);
    }
}
