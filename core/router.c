/* Route matching compiled at config load: see router.h for the precedence.
 *
 * Everything that can be decided once is decided at build time (lowercased
 * host and header names, normalised paths, compiled regexes, sorted
 * prefixes) so that a match only compares bytes. */
#include "router.h"

#include <limits.h>
#include <regex.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pathnorm.h"

typedef struct host_rule {
    char *name;            /* lowercase; for "*.example.com" the suffix ".example.com" */
    size_t len;
    bool wildcard;
} host_rule_t;

typedef struct header_rule {
    char *name;            /* lowercase copy: the lookup callback wants it so */
    const char *value;     /* into cfg */
    size_t value_len;
    bool is_regex;
    bool compiled;         /* re holds a regcomp() result to regfree() */
    regex_t re;
} header_rule_t;

/* The per-route predicates tried once a route's path has matched. */
typedef struct route_rules {
    const sl_route_t *route;
    host_rule_t *hosts;
    int n_hosts;
    header_rule_t *headers;
    int n_headers;
} route_rules_t;

/* One distinct exact path and the routes that declared it, in declaration
 * order, as a run of sl_router.exact_routes. */
typedef struct exact_slot {
    char *path;            /* NULL marks an empty slot */
    size_t len;
    uint64_t hash;
    size_t first;
    size_t count;
} exact_slot_t;

typedef struct prefix_rule {
    char *prefix;
    size_t len;
    int route_idx;
    int path_idx;
} prefix_rule_t;

typedef struct regex_rule {
    regex_t re;
    int route_idx;
} regex_rule_t;

struct sl_router {
    route_rules_t *routes;
    int n_routes;

    exact_slot_t *slots;
    size_t n_slots;        /* a power of two, or 0 when no route has an exact path */
    const route_rules_t **exact_routes;

    prefix_rule_t *prefixes;       /* longest first, then declaration order */
    size_t n_prefixes;

    regex_rule_t *regexes;         /* declaration order */
    size_t n_regexes;

    const route_rules_t **anypath; /* routes without paths, declaration order */
    size_t n_anypath;
};

/* A normalised path collected while building, before it finds its home. */
typedef struct path_entry {
    char *path;            /* owned until moved into a slot or prefix rule */
    size_t len;
    int route_idx;
    int path_idx;
} path_entry_t;

/* ---------------------------------------------------------------- helpers */

static char ascii_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static char *dup_lower(const char *s, size_t len)
{
    char *out = malloc(len + 1);
    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < len; i++)
        out[i] = ascii_lower(s[i]);
    out[len] = '\0';
    return out;
}

/* Compares bytes of a client-supplied host with an already lowercased rule. */
static bool equal_ci(const char *s, const char *lower, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (ascii_lower(s[i]) != lower[i])
            return false;
    return true;
}

static const char *route_label(const sl_route_t *route)
{
    return route->name ? route->name : "(unnamed)";
}

/* FNV-1a: short keys, no adversary choosing the table contents (only the
 * lookups), so a seedless fast hash is enough. */
static uint64_t hash_bytes(const char *s, size_t len)
{
    uint64_t h = 14695981039346656037ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

/* Length of the host part of a Host value: "[::1]:8080" -> "[::1]",
 * "a.test:80" -> "a.test". A bare IPv6 address (several colons, no brackets)
 * has no port to strip. */
static size_t host_without_port(const char *h, size_t len)
{
    if (len > 0 && h[0] == '[') {
        const char *close = memchr(h, ']', len);
        return close ? (size_t)(close - h) + 1 : len;
    }
    const char *colon = memchr(h, ':', len);
    if (colon == NULL)
        return len;
    size_t at = (size_t)(colon - h);
    if (memchr(colon + 1, ':', len - at - 1) != NULL)
        return len;
    return at;
}

/* "a.test." names the same host as "a.test" (fully qualified form). */
static size_t without_trailing_dot(const char *h, size_t len)
{
    return (len > 1 && h[len - 1] == '.') ? len - 1 : len;
}

static bool regex_matches(const regex_t *re, const char *s, size_t len)
{
    if (len > (size_t)INT_MAX)
        return false;
    /* REG_STARTEND bounds the subject by length: neither paths nor header
     * values handed to us are NUL-terminated. */
    regmatch_t bounds = { .rm_so = 0, .rm_eo = (regoff_t)len };
    return regexec(re, s, 1, &bounds, REG_STARTEND) == 0;
}

static void add_regex_error(sl_errors_t *errs, const sl_route_t *route, const char *what,
                            const char *source, int code, const regex_t *re)
{
    char msg[256];
    regerror(code, re, msg, sizeof msg);
    if (errs)
        sl_errors_add(errs, "route %s: %s regex \"%s\": %s", route_label(route), what, source, msg);
}

static void add_oom(sl_errors_t *errs)
{
    if (errs)
        sl_errors_add(errs, "router: out of memory");
}

/* ----------------------------------------------------- per-route predicates */

static bool compile_host(const sl_route_t *route, const char *entry, host_rule_t *out,
                         sl_errors_t *errs)
{
    const char *label = route_label(route);
    if (entry == NULL || entry[0] == '\0') {
        if (errs)
            sl_errors_add(errs, "route %s: empty host", label);
        return false;
    }
    size_t len = strlen(entry);
    bool wildcard = entry[0] == '*';
    const char *name = entry;
    if (wildcard) {
        if (entry[1] != '.' || entry[2] == '\0') {
            if (errs)
                sl_errors_add(errs, "route %s: host \"%s\": a wildcard must look like \"*.example.com\"",
                              label, entry);
            return false;
        }
        /* Keep the dot: ".example.com" as a suffix cannot match
         * "badexample.com", and the length check at match time then demands
         * at least one more label. */
        name = entry + 1;
        len--;
    }
    if (memchr(name, '*', len) != NULL) {
        if (errs)
            sl_errors_add(errs, "route %s: host \"%s\": \"*\" is only allowed as a leading \"*.\"",
                          label, entry);
        return false;
    }
    if (name[0] != '[' && memchr(name, ':', len) != NULL && host_without_port(name, len) == len) {
        if (errs)
            sl_errors_add(errs, "route %s: host \"%s\": write an IPv6 address in brackets", label, entry);
        return false;
    }
    if (host_without_port(name, len) != len) {
        /* The port of the Host header is ignored when matching, so a rule
         * with one would silently never match. */
        if (errs)
            sl_errors_add(errs, "route %s: host \"%s\": must not carry a port", label, entry);
        return false;
    }
    len = without_trailing_dot(name, len);
    out->name = dup_lower(name, len);
    if (out->name == NULL) {
        add_oom(errs);
        return false;
    }
    out->len = len;
    out->wildcard = wildcard;
    return true;
}

static bool compile_header(const sl_route_t *route, const sl_header_match_t *hm, header_rule_t *out,
                           sl_errors_t *errs)
{
    const char *label = route_label(route);
    if (hm->name == NULL || hm->name[0] == '\0') {
        if (errs)
            sl_errors_add(errs, "route %s: header match with an empty name", label);
        return false;
    }
    if (hm->value == NULL) {
        if (errs)
            sl_errors_add(errs, "route %s: header \"%s\": no value", label, hm->name);
        return false;
    }
    out->name = dup_lower(hm->name, strlen(hm->name));
    if (out->name == NULL) {
        add_oom(errs);
        return false;
    }
    out->value = hm->value;
    out->value_len = strlen(hm->value);
    out->is_regex = hm->is_regex;
    if (hm->is_regex) {
        int rc = regcomp(&out->re, hm->value, REG_EXTENDED | REG_NOSUB);
        if (rc != 0) {
            char what[300];
            snprintf(what, sizeof what, "header \"%s\"", hm->name);
            add_regex_error(errs, route, what, hm->value, rc, &out->re);
            return false;
        }
        out->compiled = true;
    }
    return true;
}

static bool compile_rules(const sl_route_t *route, route_rules_t *rr, sl_errors_t *errs)
{
    bool ok = true;
    rr->route = route;
    if (route->n_hosts > 0) {
        rr->hosts = calloc((size_t)route->n_hosts, sizeof *rr->hosts);
        if (rr->hosts == NULL) {
            add_oom(errs);
            return false;
        }
        for (int i = 0; i < route->n_hosts; i++) {
            if (compile_host(route, route->hosts[i], &rr->hosts[rr->n_hosts], errs))
                rr->n_hosts++;
            else
                ok = false;
        }
    }
    if (route->n_headers > 0) {
        rr->headers = calloc((size_t)route->n_headers, sizeof *rr->headers);
        if (rr->headers == NULL) {
            add_oom(errs);
            return false;
        }
        for (int i = 0; i < route->n_headers; i++) {
            header_rule_t *h = &rr->headers[rr->n_headers];
            bool good = compile_header(route, &route->headers[i], h, errs);
            /* Count it even when it failed, so free() sees its name. */
            if (h->name != NULL)
                rr->n_headers++;
            ok = ok && good;
        }
    }
    return ok;
}

static void free_rules(route_rules_t *rr)
{
    for (int i = 0; i < rr->n_hosts; i++)
        free(rr->hosts[i].name);
    free(rr->hosts);
    for (int i = 0; i < rr->n_headers; i++) {
        free(rr->headers[i].name);
        if (rr->headers[i].compiled)
            regfree(&rr->headers[i].re);
    }
    free(rr->headers);
}

/* ------------------------------------------------------------------- paths */

/* Config paths go through the same normalisation as request paths, or
 * "/a//b" or "/%7Euser" in the config could never match anything. */
static char *normalise_config_path(const sl_route_t *route, const char *value, const char *suffix,
                                   size_t *len_out, sl_errors_t *errs)
{
    size_t len = value ? strlen(value) : 0;
    char *buf = malloc(len + 1);
    if (buf == NULL) {
        add_oom(errs);
        return NULL;
    }
    ssize_t n = value ? sl_path_normalize(value, len, buf, len + 1) : -1;
    if (n < 0) {
        free(buf);
        if (errs)
            sl_errors_add(errs, "route %s: path \"%s%s\" is not a valid path", route_label(route),
                          value ? value : "", suffix);
        return NULL;
    }
    *len_out = (size_t)n;
    return buf;
}

static int compare_exact(const void *a, const void *b)
{
    const path_entry_t *x = a, *y = b;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    int c = memcmp(x->path, y->path, x->len);
    if (c != 0)
        return c;
    if (x->route_idx != y->route_idx)
        return x->route_idx < y->route_idx ? -1 : 1;
    return (x->path_idx > y->path_idx) - (x->path_idx < y->path_idx);
}

static int compare_prefix(const void *a, const void *b)
{
    const prefix_rule_t *x = a, *y = b;
    if (x->len != y->len)
        return x->len > y->len ? -1 : 1;
    if (x->route_idx != y->route_idx)
        return x->route_idx < y->route_idx ? -1 : 1;
    return (x->path_idx > y->path_idx) - (x->path_idx < y->path_idx);
}

static bool same_path(const path_entry_t *a, const path_entry_t *b)
{
    return a->len == b->len && memcmp(a->path, b->path, a->len) == 0;
}

/* Turns the collected exact paths into the hash table. Takes ownership of
 * the strings it keeps and sets those entries' path to NULL. */
static bool build_exact_table(sl_router_t *r, path_entry_t *entries, size_t n, sl_errors_t *errs)
{
    if (n == 0)
        return true;
    qsort(entries, n, sizeof *entries, compare_exact);

    size_t distinct = 0;
    for (size_t i = 0; i < n; i++)
        if (i == 0 || !same_path(&entries[i - 1], &entries[i]))
            distinct++;
    /* At most half full keeps probe runs short and guarantees an empty
     * slot to stop every lookup. */
    size_t cap = 8;
    while (cap < distinct * 2)
        cap *= 2;

    r->slots = calloc(cap, sizeof *r->slots);
    r->exact_routes = calloc(n, sizeof *r->exact_routes);
    if (r->slots == NULL || r->exact_routes == NULL) {
        add_oom(errs);
        return false;
    }
    r->n_slots = cap;

    size_t used = 0;
    for (size_t i = 0; i < n;) {
        size_t end = i + 1;
        while (end < n && same_path(&entries[i], &entries[end]))
            end++;

        uint64_t h = hash_bytes(entries[i].path, entries[i].len);
        size_t at = (size_t)h & (cap - 1);
        while (r->slots[at].path != NULL)
            at = (at + 1) & (cap - 1);
        exact_slot_t *slot = &r->slots[at];
        slot->path = entries[i].path;
        slot->len = entries[i].len;
        slot->hash = h;
        slot->first = used;
        entries[i].path = NULL;

        int last_route = -1;
        for (size_t k = i; k < end; k++) {
            /* The same path twice in one route would only try it twice. */
            if (entries[k].route_idx != last_route) {
                r->exact_routes[used++] = &r->routes[entries[k].route_idx];
                last_route = entries[k].route_idx;
            }
        }
        slot->count = used - slot->first;
        i = end;
    }
    return true;
}

static const exact_slot_t *find_exact(const sl_router_t *r, const char *path, size_t len)
{
    if (r->n_slots == 0)
        return NULL;
    uint64_t h = hash_bytes(path, len);
    size_t mask = r->n_slots - 1;
    for (size_t at = (size_t)h & mask; r->slots[at].path != NULL; at = (at + 1) & mask) {
        const exact_slot_t *s = &r->slots[at];
        if (s->hash == h && s->len == len && memcmp(s->path, path, len) == 0)
            return s;
    }
    return NULL;
}

static bool prefix_matches(const prefix_rule_t *p, const char *path, size_t len)
{
    if (len >= p->len && memcmp(path, p->prefix, p->len) == 0)
        return true;
    /* A prefix written "/api/" plus a star also answers "/api": whoever
     * writes it means the collection itself too, and would otherwise be
     * surprised by a 404. */
    return p->len > 1 && p->prefix[p->len - 1] == '/' && len == p->len - 1 &&
           memcmp(path, p->prefix, len) == 0;
}

/* Collects every exact and prefix path, compiles every regex. Reports all
 * problems before failing. */
static bool compile_paths(sl_router_t *r, const sl_config_t *cfg, sl_errors_t *errs)
{
    size_t n_exact = 0, n_prefix = 0, n_regex = 0, n_any = 0;
    for (int i = 0; i < cfg->n_routes; i++) {
        const sl_route_t *route = &cfg->routes[i];
        if (route->n_paths == 0)
            n_any++;
        for (int k = 0; k < route->n_paths; k++) {
            switch (route->paths[k].kind) {
            case SL_PATH_EXACT: n_exact++; break;
            case SL_PATH_PREFIX: n_prefix++; break;
            case SL_PATH_REGEX: n_regex++; break;
            }
        }
    }

    path_entry_t *exact = n_exact ? calloc(n_exact, sizeof *exact) : NULL;
    r->prefixes = n_prefix ? calloc(n_prefix, sizeof *r->prefixes) : NULL;
    r->regexes = n_regex ? calloc(n_regex, sizeof *r->regexes) : NULL;
    r->anypath = n_any ? calloc(n_any, sizeof *r->anypath) : NULL;
    if ((n_exact && exact == NULL) || (n_prefix && r->prefixes == NULL) ||
        (n_regex && r->regexes == NULL) || (n_any && r->anypath == NULL)) {
        free(exact);
        add_oom(errs);
        return false;
    }

    bool ok = true;
    size_t e = 0;
    for (int i = 0; i < cfg->n_routes; i++) {
        const sl_route_t *route = &cfg->routes[i];
        if (route->n_paths == 0)
            r->anypath[r->n_anypath++] = &r->routes[i];
        for (int k = 0; k < route->n_paths; k++) {
            const sl_path_match_t *pm = &route->paths[k];
            size_t len = 0;
            char *norm;
            int rc;
            switch (pm->kind) {
            case SL_PATH_EXACT:
                norm = normalise_config_path(route, pm->value, "", &len, errs);
                if (norm == NULL) {
                    ok = false;
                    break;
                }
                exact[e++] = (path_entry_t){ .path = norm, .len = len, .route_idx = i, .path_idx = k };
                break;
            case SL_PATH_PREFIX:
                norm = normalise_config_path(route, pm->value, "*", &len, errs);
                if (norm == NULL) {
                    ok = false;
                    break;
                }
                r->prefixes[r->n_prefixes++] =
                    (prefix_rule_t){ .prefix = norm, .len = len, .route_idx = i, .path_idx = k };
                break;
            case SL_PATH_REGEX: {
                regex_rule_t *rx = &r->regexes[r->n_regexes];
                rc = pm->value ? regcomp(&rx->re, pm->value, REG_EXTENDED | REG_NOSUB) : REG_BADPAT;
                if (rc != 0) {
                    if (pm->value)
                        add_regex_error(errs, route, "path", pm->value, rc, &rx->re);
                    else if (errs)
                        sl_errors_add(errs, "route %s: path regex missing", route_label(route));
                    ok = false;
                    break;
                }
                rx->route_idx = i;
                r->n_regexes++;
                break;
            }
            }
        }
    }

    if (ok)
        ok = build_exact_table(r, exact, e, errs);
    for (size_t k = 0; k < e; k++)
        free(exact[k].path);
    free(exact);
    if (r->n_prefixes > 1)
        qsort(r->prefixes, r->n_prefixes, sizeof *r->prefixes, compare_prefix);
    return ok;
}

/* ------------------------------------------------------------- public API */

void sl_router_free(sl_router_t *r)
{
    if (r == NULL)
        return;
    for (int i = 0; i < r->n_routes; i++)
        free_rules(&r->routes[i]);
    free(r->routes);
    for (size_t i = 0; i < r->n_slots; i++)
        free(r->slots[i].path);
    free(r->slots);
    free(r->exact_routes);
    for (size_t i = 0; i < r->n_prefixes; i++)
        free(r->prefixes[i].prefix);
    free(r->prefixes);
    for (size_t i = 0; i < r->n_regexes; i++)
        regfree(&r->regexes[i].re);
    free(r->regexes);
    free(r->anypath);
    free(r);
}

sl_router_t *sl_router_build(const sl_config_t *cfg, sl_errors_t *errs)
{
    if (cfg == NULL)
        return NULL;
    sl_router_t *r = calloc(1, sizeof *r);
    if (r == NULL) {
        add_oom(errs);
        return NULL;
    }
    bool ok = true;
    if (cfg->n_routes > 0) {
        r->routes = calloc((size_t)cfg->n_routes, sizeof *r->routes);
        if (r->routes == NULL) {
            add_oom(errs);
            free(r);
            return NULL;
        }
        r->n_routes = cfg->n_routes;
        for (int i = 0; i < cfg->n_routes; i++)
            if (!compile_rules(&cfg->routes[i], &r->routes[i], errs))
                ok = false;
    }
    if (!compile_paths(r, cfg, errs))
        ok = false;
    if (!ok) {
        sl_router_free(r);
        return NULL;
    }
    return r;
}

/* The Host value reduced to what rules compare against, once per query. */
typedef struct host_view {
    const char *name;      /* NULL when the request carried none */
    size_t len;
} host_view_t;

static host_view_t query_host(const sl_route_query_t *q)
{
    host_view_t v = { NULL, 0 };
    if (q->host == NULL)
        return v;
    size_t len = without_trailing_dot(q->host, host_without_port(q->host, q->host_len));
    if (len == 0)
        return v;
    v.name = q->host;
    v.len = len;
    return v;
}

static bool hosts_pass(const route_rules_t *rr, host_view_t host)
{
    if (rr->n_hosts == 0)
        return true;
    if (host.name == NULL)
        return false;
    for (int i = 0; i < rr->n_hosts; i++) {
        const host_rule_t *h = &rr->hosts[i];
        if (!h->wildcard) {
            if (host.len == h->len && equal_ci(host.name, h->name, h->len))
                return true;
        } else if (host.len > h->len && equal_ci(host.name + host.len - h->len, h->name, h->len)) {
            return true;
        }
    }
    return false;
}

static bool headers_pass(const route_rules_t *rr, const sl_route_query_t *q)
{
    for (int i = 0; i < rr->n_headers; i++) {
        const header_rule_t *h = &rr->headers[i];
        size_t len = 0;
        const char *v = q->header ? q->header(q->header_arg, h->name, &len) : NULL;
        if (v == NULL)
            return false;
        if (h->is_regex) {
            if (!regex_matches(&h->re, v, len))
                return false;
        } else if (len != h->value_len || memcmp(v, h->value, len) != 0) {
            return false;
        }
    }
    return true;
}

static bool rules_pass(const route_rules_t *rr, host_view_t host, const sl_route_query_t *q)
{
    unsigned methods = rr->route->methods;
    if (methods != 0 && (q->method & methods) == 0)
        return false;
    return hosts_pass(rr, host) && headers_pass(rr, q);
}

const sl_route_t *sl_router_match(const sl_router_t *r, const sl_route_query_t *q)
{
    if (r == NULL || q == NULL)
        return NULL;
    const char *path = q->path ? q->path : "";
    size_t len = q->path ? q->path_len : 0;
    host_view_t host = query_host(q);

    const exact_slot_t *slot = find_exact(r, path, len);
    if (slot != NULL) {
        for (size_t i = 0; i < slot->count; i++) {
            const route_rules_t *rr = r->exact_routes[slot->first + i];
            if (rules_pass(rr, host, q))
                return rr->route;
        }
    }
    for (size_t i = 0; i < r->n_prefixes; i++) {
        const prefix_rule_t *p = &r->prefixes[i];
        if (prefix_matches(p, path, len) && rules_pass(&r->routes[p->route_idx], host, q))
            return r->routes[p->route_idx].route;
    }
    for (size_t i = 0; i < r->n_regexes; i++) {
        const regex_rule_t *rx = &r->regexes[i];
        if (regex_matches(&rx->re, path, len) && rules_pass(&r->routes[rx->route_idx], host, q))
            return r->routes[rx->route_idx].route;
    }
    for (size_t i = 0; i < r->n_anypath; i++)
        if (rules_pass(r->anypath[i], host, q))
            return r->anypath[i]->route;
    return NULL;
}
