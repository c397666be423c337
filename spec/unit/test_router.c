/* Unit tests for the router (core/router.c) and path normalisation
 * (core/pathnorm.c). Configs are filled in by hand so these tests do not
 * depend on the YAML loader. */
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "check.h"
#include "config.h"
#include "pathnorm.h"
#include "router.h"

/* ------------------------------------------------------------- fixtures */

/* Paths as written in YAML: "~ re" is a regex, a trailing "*" a prefix. */
typedef struct route_spec {
    const char *name;
    const char *paths[4];
    const char *hosts[4];
    unsigned methods;
    const char *headers[4];   /* "Name: value" or "Name: ~ regex" */
} route_spec_t;

static char *xstrdup(const char *s)
{
    char *d = strdup(s);
    if (d == NULL) {
        perror("strdup");
        exit(2);
    }
    return d;
}

static char *xstrndup(const char *s, size_t n)
{
    char *d = strndup(s, n);
    if (d == NULL) {
        perror("strndup");
        exit(2);
    }
    return d;
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (p == NULL) {
        perror("calloc");
        exit(2);
    }
    return p;
}

static int count_strings(const char *const *list, int max)
{
    int n = 0;
    while (n < max && list[n] != NULL)
        n++;
    return n;
}

static void fill_path(sl_path_match_t *pm, const char *written)
{
    size_t len = strlen(written);
    if (strncmp(written, "~ ", 2) == 0) {
        pm->kind = SL_PATH_REGEX;
        pm->value = xstrdup(written + 2);
    } else if (len > 0 && written[len - 1] == '*') {
        pm->kind = SL_PATH_PREFIX;
        pm->value = xstrndup(written, len - 1);
    } else {
        pm->kind = SL_PATH_EXACT;
        pm->value = xstrdup(written);
    }
}

static void fill_header(sl_header_match_t *hm, const char *written)
{
    const char *colon = strchr(written, ':');
    hm->name = xstrndup(written, (size_t)(colon - written));
    const char *value = colon + 2;
    hm->is_regex = strncmp(value, "~ ", 2) == 0;
    hm->value = xstrdup(hm->is_regex ? value + 2 : value);
}

static void fill_route(sl_route_t *route, int index, const route_spec_t *spec)
{
    memset(route, 0, sizeof *route);
    route->name = xstrdup(spec->name);
    route->index = index;
    route->methods = spec->methods;
    route->n_paths = count_strings(spec->paths, 4);
    route->paths = xcalloc((size_t)route->n_paths, sizeof *route->paths);
    for (int k = 0; k < route->n_paths; k++)
        fill_path(&route->paths[k], spec->paths[k]);
    route->n_hosts = count_strings(spec->hosts, 4);
    route->hosts = xcalloc((size_t)route->n_hosts, sizeof *route->hosts);
    for (int k = 0; k < route->n_hosts; k++)
        route->hosts[k] = xstrdup(spec->hosts[k]);
    route->n_headers = count_strings(spec->headers, 4);
    route->headers = xcalloc((size_t)route->n_headers, sizeof *route->headers);
    for (int k = 0; k < route->n_headers; k++)
        fill_header(&route->headers[k], spec->headers[k]);
}

static sl_config_t *make_config(const route_spec_t *specs, int n)
{
    sl_config_t *cfg = xcalloc(1, sizeof *cfg);
    cfg->routes = xcalloc((size_t)n, sizeof *cfg->routes);
    cfg->n_routes = n;
    for (int i = 0; i < n; i++)
        fill_route(&cfg->routes[i], i, &specs[i]);
    return cfg;
}

static void free_config(sl_config_t *cfg)
{
    for (int i = 0; i < cfg->n_routes; i++) {
        sl_route_t *route = &cfg->routes[i];
        free(route->name);
        for (int k = 0; k < route->n_paths; k++)
            free(route->paths[k].value);
        free(route->paths);
        for (int k = 0; k < route->n_hosts; k++)
            free(route->hosts[k]);
        free(route->hosts);
        for (int k = 0; k < route->n_headers; k++) {
            free(route->headers[k].name);
            free(route->headers[k].value);
        }
        free(route->headers);
    }
    free(cfg->routes);
    free(cfg);
}

static sl_router_t *build_or_die(const sl_config_t *cfg)
{
    sl_errors_t errs = { 0 };
    sl_router_t *r = sl_router_build(cfg, &errs);
    if (r == NULL) {
        for (int i = 0; i < errs.n; i++)
            fprintf(stderr, "build error: %s\n", errs.items[i]);
        fprintf(stderr, "router build failed\n");
        exit(2);
    }
    CHECK_INT(0, errs.n);
    sl_errors_free(&errs);
    return r;
}

/* Request headers as "Name: value" lines; lookups are case-insensitive as
 * the real request's are, and the router always asks in lowercase. */
static const char *lookup_header(void *arg, const char *name, size_t *len)
{
    const char *const *lines = arg;
    for (int i = 0; lines && lines[i]; i++) {
        const char *colon = strchr(lines[i], ':');
        size_t name_len = (size_t)(colon - lines[i]);
        if (strlen(name) == name_len && strncasecmp(lines[i], name, name_len) == 0) {
            *len = strlen(colon + 2);
            return colon + 2;
        }
    }
    return NULL;
}

static const char *route_name(const sl_route_t *route)
{
    return route ? route->name : "(none)";
}

static const char *match_full(const sl_router_t *r, const char *host, unsigned method, const char *path,
                              const char *const *headers)
{
    sl_route_query_t q = {
        .host = host, .host_len = host ? strlen(host) : 0,
        .method = method,
        .path = path, .path_len = strlen(path),
        .header = lookup_header, .header_arg = (void *)headers,
    };
    return route_name(sl_router_match(r, &q));
}

static const char *match(const sl_router_t *r, const char *path)
{
    return match_full(r, "any.test", SL_M_GET, path, NULL);
}

/* ------------------------------------------------------- normalisation */

typedef struct norm_case {
    const char *in;
    const char *out;       /* NULL: invalid */
} norm_case_t;

static void test_pathnorm_table(void)
{
    static const norm_case_t cases[] = {
        { "/", "/" },
        { "/a/b", "/a/b" },
        { "/a//b", "/a/b" },
        { "//a///b//", "/a/b/" },
        { "/a/", "/a/" },
        { "/a/./b", "/a/b" },
        { "/a/../b", "/b" },
        { "/a/b/..", "/a/" },
        { "/a/b/.", "/a/b/" },
        { "/a/b/../../c", "/c" },
        { "/.", "/" },
        { "/./", "/" },
        { "/a/..", "/" },
        { "/api/../admin", "/admin" },
        { "/...", "/..." },
        { "/a/..b/.c", "/a/..b/.c" },
        { "/.hidden", "/.hidden" },
        { "/%61dmin", "/admin" },
        { "/%7Euser", "/~user" },
        { "/%7euser", "/~user" },
        { "/%41%5a%30%39", "/AZ09" },
        { "/%2D%2E%5F%7E", "/-._~" },
        { "/a%2fb", "/a%2Fb" },
        { "/a%2Fb", "/a%2Fb" },
        { "/%2f..%2f", "/%2F..%2F" },
        { "/%20x", "/%20x" },
        { "/caf%c3%a9", "/caf%C3%A9" },
        { "/a/%2e%2e/b", "/b" },
        { "/a/%2E/b", "/a/b" },
        { "/a/.%2e/b", "/b" },
        { "/a/%2e%2e", "/" },
        { "/a?b", "/a?b" },
        /* invalid */
        { "", NULL },
        { "a/b", NULL },
        { "*", NULL },
        { "%2Fa", NULL },
        { "/..", NULL },
        { "/../x", NULL },
        { "/a/../..", NULL },
        { "/./../a", NULL },
        { "/%2e%2e/x", NULL },
        { "/x/%2e%2E/%2E%2e", NULL },
        { "/%", NULL },
        { "/%4", NULL },
        { "/a%zz", NULL },
        { "/a%4g", NULL },
        { "/a%g4", NULL },
        { "/%00", NULL },
        { "/a%00b", NULL },
    };
    char out[64];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const norm_case_t *c = &cases[i];
        size_t in_len = strlen(c->in);
        memset(out, 'X', sizeof out);
        ssize_t n = sl_path_normalize(c->in, in_len, out, in_len + 1);
        if (c->out == NULL) {
            if (n != -1)
                fprintf(stderr, "case \"%s\"\n", c->in);
            CHECK_INT(-1, n);
        } else {
            if (n != (ssize_t)strlen(c->out))
                fprintf(stderr, "case \"%s\"\n", c->in);
            CHECK_INT(strlen(c->out), n);
            CHECK_STR(c->out, n >= 0 ? out : "(invalid)");
        }
    }
}

static void test_pathnorm_edges(void)
{
    char out[32];

    /* A raw NUL inside the given length. */
    CHECK_INT(-1, sl_path_normalize("/a\0b", 4, out, sizeof out));
    /* in_len bounds the input: the rest of the string is not read. */
    CHECK_INT(2, sl_path_normalize("/a/../etc", 2, out, sizeof out));
    CHECK_STR("/a", out);
    /* An escape cut by in_len is a bad escape. */
    CHECK_INT(-1, sl_path_normalize("/a%41", 4, out, sizeof out));
    /* out_cap must hold in_len + 1 even when the result is shorter. */
    CHECK_INT(-1, sl_path_normalize("/a//b", 5, out, 5));
    CHECK_INT(4, sl_path_normalize("/a//b", 5, out, 6));
    CHECK_STR("/a/b", out);
    CHECK_INT(-1, sl_path_normalize(NULL, 0, out, sizeof out));
    CHECK_INT(-1, sl_path_normalize("/", 1, NULL, 2));
    /* A byte with the high bit set passes through untouched. */
    CHECK_INT(3, sl_path_normalize("/\xc3\xa9", 3, out, sizeof out));
    CHECK_STR("/\xc3\xa9", out);
}

/* ----------------------------------------------------------- precedence */

static void test_precedence(void)
{
    static const route_spec_t specs[] = {
        { .name = "catchall" },
        { .name = "regex_u", .paths = { "~ ^/users/[0-9]+$" } },
        { .name = "regex_any_users", .paths = { "~ ^/users/" } },
        { .name = "prefix_users", .paths = { "/users/*" } },
        { .name = "prefix_users_admin", .paths = { "/users/admin/*" } },
        { .name = "exact_users_1", .paths = { "/users/1" } },
        { .name = "exact_users_1_again", .paths = { "/users/1" } },
        { .name = "prefix_root", .paths = { "/*" } },
        { .name = "catchall_2" },
        { .name = "regex_zzz", .paths = { "~ ^/zzz" } },
    };
    sl_config_t *cfg = make_config(specs, (int)(sizeof specs / sizeof specs[0]));
    sl_router_t *r = build_or_die(cfg);

    /* exact beats every prefix and regex; first declared wins a tie */
    CHECK_STR("exact_users_1", match(r, "/users/1"));
    /* longest prefix beats a shorter one declared earlier */
    CHECK_STR("prefix_users_admin", match(r, "/users/admin/x"));
    /* prefix beats regex, even though the regex was declared first */
    CHECK_STR("prefix_users", match(r, "/users/2"));
    /* the root prefix (a lone slash and star) still beats the regex */
    CHECK_STR("prefix_root", match(r, "/zzz"));
    /* a route without paths never beats one whose path matched */
    CHECK_STR("prefix_root", match(r, "/anything"));

    sl_router_free(r);
    free_config(cfg);
}

static void test_regex_then_catchall(void)
{
    static const route_spec_t specs[] = {
        { .name = "any_1" },
        { .name = "regex_a", .paths = { "~ ^/a/[0-9]+$" } },
        { .name = "regex_b", .paths = { "~ ^/a/" } },
        { .name = "two_regexes", .paths = { "~ ^/nomatch$", "~ ^/b/" } },
        { .name = "regex_b_later", .paths = { "~ ^/b/x" } },
        { .name = "any_2" },
    };
    sl_config_t *cfg = make_config(specs, (int)(sizeof specs / sizeof specs[0]));
    sl_router_t *r = build_or_die(cfg);

    CHECK_STR("regex_a", match(r, "/a/12"));
    CHECK_STR("regex_b", match(r, "/a/12x"));
    /* regex ties follow declaration order of the routes, whichever of a
     * route's regexes matched */
    CHECK_STR("two_regexes", match(r, "/b/x"));
    /* regex beats a route without paths declared before it */
    CHECK_STR("any_1", match(r, "/c"));
    /* regexes are unanchored unless written with ^ and $ */
    CHECK_STR("regex_b", match(r, "/a/"));

    sl_router_free(r);
    free_config(cfg);
}

static void test_fall_through_on_predicates(void)
{
    static const route_spec_t specs[] = {
        { .name = "any_post", .methods = SL_M_POST },
        { .name = "any_get", .methods = SL_M_GET },
        { .name = "regex_delete", .paths = { "~ ^/x" }, .methods = SL_M_DELETE },
        { .name = "prefix_put", .paths = { "/x/*" }, .methods = SL_M_PUT },
        { .name = "exact_get_b", .paths = { "/x/y" }, .methods = SL_M_GET, .hosts = { "b.test" } },
        { .name = "exact_get_a", .paths = { "/x/y" }, .methods = SL_M_GET, .hosts = { "a.test" } },
    };
    sl_config_t *cfg = make_config(specs, (int)(sizeof specs / sizeof specs[0]));
    sl_router_t *r = build_or_die(cfg);

    /* a failed predicate moves on to the next candidate of the same rank */
    CHECK_STR("exact_get_a", match_full(r, "a.test", SL_M_GET, "/x/y", NULL));
    CHECK_STR("exact_get_b", match_full(r, "b.test", SL_M_GET, "/x/y", NULL));
    /* ...then to the next rank down */
    CHECK_STR("prefix_put", match_full(r, "a.test", SL_M_PUT, "/x/y", NULL));
    CHECK_STR("regex_delete", match_full(r, "a.test", SL_M_DELETE, "/x/y", NULL));
    CHECK_STR("any_get", match_full(r, "c.test", SL_M_GET, "/x/y", NULL));
    CHECK_STR("any_post", match_full(r, "c.test", SL_M_POST, "/x/y", NULL));
    CHECK_STR("(none)", match_full(r, "c.test", SL_M_PATCH, "/x/y", NULL));

    sl_router_free(r);
    free_config(cfg);
}

/* ---------------------------------------------------------------- prefix */

static void test_prefix_semantics(void)
{
    static const route_spec_t specs[] = {
        { .name = "api", .paths = { "/api/*" } },
        { .name = "static", .paths = { "/static*" } },
        { .name = "api_v1_exact", .paths = { "/api/v1" } },
    };
    sl_config_t *cfg = make_config(specs, (int)(sizeof specs / sizeof specs[0]));
    sl_router_t *r = build_or_die(cfg);

    CHECK_STR("api", match(r, "/api"));
    CHECK_STR("api", match(r, "/api/"));
    CHECK_STR("api", match(r, "/api/x/y"));
    CHECK_STR("api_v1_exact", match(r, "/api/v1"));
    CHECK_STR("api", match(r, "/api/v1/"));
    CHECK_STR("(none)", match(r, "/apix"));
    CHECK_STR("(none)", match(r, "/ap"));
    CHECK_STR("(none)", match(r, "/"));
    /* a prefix written without a slash before "*" is a plain string prefix */
    CHECK_STR("static", match(r, "/static"));
    CHECK_STR("static", match(r, "/staticfiles/a.css"));
    CHECK_STR("static", match(r, "/static/a.css"));
    CHECK_STR("(none)", match(r, "/stati"));

    sl_router_free(r);
    free_config(cfg);
}

static void test_prefix_ties_and_lengths(void)
{
    static const route_spec_t specs[] = {
        { .name = "short", .paths = { "/a/*" } },
        { .name = "long_get", .paths = { "/a/b/c/*" }, .methods = SL_M_GET },
        { .name = "mid", .paths = { "/a/b/*" } },
        { .name = "long_any", .paths = { "/a/b/c/*" } },
        { .name = "mid_again", .paths = { "/a/b/*" } },
    };
    sl_config_t *cfg = make_config(specs, (int)(sizeof specs / sizeof specs[0]));
    sl_router_t *r = build_or_die(cfg);

    CHECK_STR("long_get", match_full(r, "h", SL_M_GET, "/a/b/c/d", NULL));
    CHECK_STR("long_any", match_full(r, "h", SL_M_POST, "/a/b/c/d", NULL));
    CHECK_STR("long_get", match_full(r, "h", SL_M_GET, "/a/b/c", NULL));
    CHECK_STR("mid", match_full(r, "h", SL_M_GET, "/a/b/x", NULL));
    CHECK_STR("mid", match_full(r, "h", SL_M_GET, "/a/b", NULL));
    CHECK_STR("short", match_full(r, "h", SL_M_GET, "/a/bb", NULL));

    sl_router_free(r);
    free_config(cfg);
}

/* ----------------------------------------------------------------- hosts */

static void test_hosts(void)
{
    static const route_spec_t specs[] = {
        { .name = "exact_host", .paths = { "/" }, .hosts = { "API.test", "other.test" } },
        { .name = "wildcard", .paths = { "/" }, .hosts = { "*.Example.com" } },
        { .name = "v6", .paths = { "/" }, .hosts = { "[::1]" } },
        { .name = "ip", .paths = { "/" }, .hosts = { "127.0.0.1" } },
        { .name = "fqdn", .paths = { "/" }, .hosts = { "dot.test." } },
        { .name = "hostless", .paths = { "/" } },
    };
    sl_config_t *cfg = make_config(specs, (int)(sizeof specs / sizeof specs[0]));
    sl_router_t *r = build_or_die(cfg);

    CHECK_STR("exact_host", match_full(r, "api.test", SL_M_GET, "/", NULL));
    CHECK_STR("exact_host", match_full(r, "API.TEST", SL_M_GET, "/", NULL));
    CHECK_STR("exact_host", match_full(r, "Api.Test:8080", SL_M_GET, "/", NULL));
    CHECK_STR("exact_host", match_full(r, "other.test", SL_M_GET, "/", NULL));
    CHECK_STR("exact_host", match_full(r, "api.test.", SL_M_GET, "/", NULL));
    CHECK_STR("exact_host", match_full(r, "api.test.:80", SL_M_GET, "/", NULL));
    CHECK_STR("hostless", match_full(r, "api.tes", SL_M_GET, "/", NULL));
    CHECK_STR("hostless", match_full(r, "xapi.test", SL_M_GET, "/", NULL));
    CHECK_STR("hostless", match_full(r, "api.test.x", SL_M_GET, "/", NULL));

    CHECK_STR("wildcard", match_full(r, "a.example.com", SL_M_GET, "/", NULL));
    CHECK_STR("wildcard", match_full(r, "a.b.EXAMPLE.com", SL_M_GET, "/", NULL));
    CHECK_STR("wildcard", match_full(r, "a.example.com:443", SL_M_GET, "/", NULL));
    CHECK_STR("hostless", match_full(r, "example.com", SL_M_GET, "/", NULL));
    CHECK_STR("hostless", match_full(r, ".example.com", SL_M_GET, "/", NULL));
    CHECK_STR("hostless", match_full(r, "badexample.com", SL_M_GET, "/", NULL));
    CHECK_STR("hostless", match_full(r, "a.example.com.evil", SL_M_GET, "/", NULL));

    CHECK_STR("v6", match_full(r, "[::1]", SL_M_GET, "/", NULL));
    CHECK_STR("v6", match_full(r, "[::1]:8080", SL_M_GET, "/", NULL));
    CHECK_STR("hostless", match_full(r, "[::2]:8080", SL_M_GET, "/", NULL));
    CHECK_STR("ip", match_full(r, "127.0.0.1:9000", SL_M_GET, "/", NULL));
    CHECK_STR("fqdn", match_full(r, "dot.test", SL_M_GET, "/", NULL));
    CHECK_STR("fqdn", match_full(r, "dot.test.", SL_M_GET, "/", NULL));

    /* No Host at all, or an empty one, passes only routes without hosts. */
    CHECK_STR("hostless", match_full(r, NULL, SL_M_GET, "/", NULL));
    CHECK_STR("hostless", match_full(r, "", SL_M_GET, "/", NULL));
    CHECK_STR("hostless", match_full(r, ":8080", SL_M_GET, "/", NULL));

    /* host_len bounds the Host value. */
    sl_route_query_t q = { .host = "api.testXYZ", .host_len = 8, .method = SL_M_GET, .path = "/", .path_len = 1 };
    CHECK_STR("exact_host", route_name(sl_router_match(r, &q)));

    sl_router_free(r);
    free_config(cfg);
}

/* --------------------------------------------------------------- methods */

static void test_methods(void)
{
    static const route_spec_t specs[] = {
        { .name = "read", .paths = { "/m" }, .methods = SL_M_GET | SL_M_HEAD },
        { .name = "write", .paths = { "/m" }, .methods = SL_M_POST | SL_M_PUT | SL_M_PATCH },
        { .name = "options_only", .paths = { "/o" }, .methods = SL_M_OPTIONS },
        { .name = "any_method", .paths = { "/any" } },
    };
    sl_config_t *cfg = make_config(specs, (int)(sizeof specs / sizeof specs[0]));
    sl_router_t *r = build_or_die(cfg);

    CHECK_STR("read", match_full(r, "h", SL_M_GET, "/m", NULL));
    CHECK_STR("read", match_full(r, "h", SL_M_HEAD, "/m", NULL));
    CHECK_STR("write", match_full(r, "h", SL_M_POST, "/m", NULL));
    CHECK_STR("write", match_full(r, "h", SL_M_PATCH, "/m", NULL));
    CHECK_STR("(none)", match_full(r, "h", SL_M_DELETE, "/m", NULL));
    CHECK_STR("(none)", match_full(r, "h", 0, "/m", NULL));
    CHECK_STR("options_only", match_full(r, "h", SL_M_OPTIONS, "/o", NULL));
    CHECK_STR("(none)", match_full(r, "h", SL_M_GET, "/o", NULL));
    /* an unknown method (0) still reaches a route that allows any method */
    CHECK_STR("any_method", match_full(r, "h", 0, "/any", NULL));
    CHECK_STR("any_method", match_full(r, "h", SL_M_TRACE, "/any", NULL));

    sl_router_free(r);
    free_config(cfg);
}

/* --------------------------------------------------------------- headers */

static void test_headers(void)
{
    static const route_spec_t specs[] = {
        { .name = "prod_v2", .paths = { "/h" }, .headers = { "X-Env: prod", "X-Version: ~ ^2\\.[0-9]+$" } },
        { .name = "prod", .paths = { "/h" }, .headers = { "X-Env: prod" } },
        { .name = "empty_value", .paths = { "/h" }, .headers = { "X-Flag: " } },
        { .name = "canary", .paths = { "/h" }, .headers = { "Cookie: ~ (^|; )canary=1(;|$)" } },
        { .name = "fallback", .paths = { "/h" } },
    };
    sl_config_t *cfg = make_config(specs, (int)(sizeof specs / sizeof specs[0]));
    sl_router_t *r = build_or_die(cfg);

    const char *prod_v2[] = { "x-env: prod", "X-VERSION: 2.10", NULL };
    const char *prod_v3[] = { "X-Env: prod", "X-Version: 3.1", NULL };
    const char *prod_v2x[] = { "X-Env: prod", "X-Version: 2.1x", NULL };
    const char *prod_case[] = { "X-Env: Prod", NULL };
    const char *prod_space[] = { "X-Env: prod ", NULL };
    const char *flag[] = { "X-Flag: ", NULL };
    const char *canary[] = { "Cookie: a=b; canary=1", NULL };
    const char *not_canary[] = { "Cookie: a=b; canary=10", NULL };
    const char *none[] = { NULL };

    CHECK_STR("prod_v2", match_full(r, "h", SL_M_GET, "/h", prod_v2));
    CHECK_STR("prod", match_full(r, "h", SL_M_GET, "/h", prod_v3));
    CHECK_STR("prod", match_full(r, "h", SL_M_GET, "/h", prod_v2x));
    /* header values compare case-sensitively and byte for byte */
    CHECK_STR("fallback", match_full(r, "h", SL_M_GET, "/h", prod_case));
    CHECK_STR("fallback", match_full(r, "h", SL_M_GET, "/h", prod_space));
    CHECK_STR("empty_value", match_full(r, "h", SL_M_GET, "/h", flag));
    CHECK_STR("canary", match_full(r, "h", SL_M_GET, "/h", canary));
    CHECK_STR("fallback", match_full(r, "h", SL_M_GET, "/h", not_canary));
    CHECK_STR("fallback", match_full(r, "h", SL_M_GET, "/h", none));

    /* Without a lookup callback, no header rule can pass. */
    sl_route_query_t q = { .host = "h", .host_len = 1, .method = SL_M_GET, .path = "/h", .path_len = 2 };
    CHECK_STR("fallback", route_name(sl_router_match(r, &q)));

    sl_router_free(r);
    free_config(cfg);
}

/* Header values and paths arrive with lengths, not NUL terminators. */
typedef struct raw_header {
    const char *name;
    const char *value;
    size_t len;
    int calls;
    char last_name[32];
} raw_header_t;

static const char *lookup_raw(void *arg, const char *name, size_t *len)
{
    raw_header_t *h = arg;
    h->calls++;
    snprintf(h->last_name, sizeof h->last_name, "%s", name);
    if (strcmp(name, h->name) != 0)
        return NULL;
    *len = h->len;
    return h->value;
}

static void test_lengths_not_terminators(void)
{
    static const route_spec_t specs[] = {
        { .name = "re_path", .paths = { "~ ^/users/[0-9]+$" } },
        { .name = "exact_header", .paths = { "/e" }, .headers = { "X-Tenant: acme" } },
        { .name = "regex_header", .paths = { "/r" }, .headers = { "X-Tenant: ~ ^acme$" } },
        { .name = "same_path_thrice", .paths = { "/t", "//t", "/./t" }, .headers = { "X-Tenant: other" } },
    };
    sl_config_t *cfg = make_config(specs, (int)(sizeof specs / sizeof specs[0]));
    sl_router_t *r = build_or_die(cfg);

    sl_route_query_t q = { .method = SL_M_GET, .path = "/users/12abc", .path_len = 9 };
    CHECK_STR("re_path", route_name(sl_router_match(r, &q)));
    q.path_len = 12;
    CHECK_STR("(none)", route_name(sl_router_match(r, &q)));

    raw_header_t h = { .name = "x-tenant", .value = "acmeXYZ", .len = 4 };
    q.header = lookup_raw;
    q.header_arg = &h;
    q.path = "/e";
    q.path_len = 2;
    CHECK_STR("exact_header", route_name(sl_router_match(r, &q)));
    /* the callback is asked with the lowercased configured name */
    CHECK_STR("x-tenant", h.last_name);
    CHECK_INT(1, h.calls);
    q.path = "/r";
    CHECK_STR("regex_header", route_name(sl_router_match(r, &q)));
    h.len = 5;
    CHECK_STR("(none)", route_name(sl_router_match(r, &q)));

    /* one route declaring a path three ways is tried once, not three times */
    h.calls = 0;
    q.path = "/t";
    CHECK_STR("(none)", route_name(sl_router_match(r, &q)));
    CHECK_INT(1, h.calls);

    sl_router_free(r);
    free_config(cfg);
}

/* ----------------------------------------------------------- many routes */

static void test_many_exact_routes(void)
{
    enum { N = 1000 };
    sl_config_t *cfg = xcalloc(1, sizeof *cfg);
    cfg->routes = xcalloc(N + 1, sizeof *cfg->routes);
    cfg->n_routes = N + 1;
    char buf[64];
    for (int i = 0; i < N; i++) {
        sl_route_t *route = &cfg->routes[i];
        snprintf(buf, sizeof buf, "r%d", i);
        route->name = xstrdup(buf);
        route->index = i;
        route->n_paths = 1;
        route->paths = xcalloc(1, sizeof *route->paths);
        snprintf(buf, sizeof buf, "/items/%d", i);
        route->paths[0] = (sl_path_match_t){ .kind = SL_PATH_EXACT, .value = xstrdup(buf) };
    }
    /* one route holding a thousand exact paths of its own */
    sl_route_t *big = &cfg->routes[N];
    big->name = xstrdup("big");
    big->index = N;
    big->n_paths = N;
    big->paths = xcalloc(N, sizeof *big->paths);
    for (int i = 0; i < N; i++) {
        snprintf(buf, sizeof buf, "/big/%d/", i);
        big->paths[i] = (sl_path_match_t){ .kind = SL_PATH_EXACT, .value = xstrdup(buf) };
    }
    sl_router_t *r = build_or_die(cfg);

    int wrong = 0;
    for (int i = 0; i < N; i++) {
        char want[16];
        snprintf(want, sizeof want, "r%d", i);
        snprintf(buf, sizeof buf, "/items/%d", i);
        if (strcmp(match(r, buf), want) != 0)
            wrong++;
        snprintf(buf, sizeof buf, "/big/%d/", i);
        if (strcmp(match(r, buf), "big") != 0)
            wrong++;
    }
    CHECK_INT(0, wrong);
    CHECK_STR("r0", match(r, "/items/0"));
    CHECK_STR("r999", match(r, "/items/999"));
    CHECK_STR("big", match(r, "/big/500/"));
    CHECK_STR("(none)", match(r, "/items/1000"));
    CHECK_STR("(none)", match(r, "/items/"));
    CHECK_STR("(none)", match(r, "/items/1/"));
    CHECK_STR("(none)", match(r, "/big/5"));
    CHECK_STR("(none)", match(r, ""));

    sl_router_free(r);
    free_config(cfg);
}

/* ---------------------------------------------------------- odd configs */

static void test_no_match_and_empty(void)
{
    sl_config_t empty = { 0 };
    sl_router_t *r = build_or_die(&empty);
    CHECK_STR("(none)", match(r, "/"));
    sl_router_free(r);

    static const route_spec_t specs[] = {
        { .name = "only", .paths = { "/only" }, .hosts = { "only.test" } },
    };
    sl_config_t *cfg = make_config(specs, 1);
    r = build_or_die(cfg);
    CHECK_STR("(none)", match(r, "/only"));
    CHECK_STR("(none)", match_full(r, "only.test", SL_M_GET, "/other", NULL));
    CHECK_STR("only", match_full(r, "only.test", SL_M_GET, "/only", NULL));
    CHECK_INT(0, sl_router_match(r, NULL) != NULL);
    CHECK_INT(0, sl_router_match(NULL, &(sl_route_query_t){ .path = "/", .path_len = 1 }) != NULL);
    sl_router_free(r);
    sl_router_free(NULL);
    free_config(cfg);
}

static void test_config_paths_are_normalised(void)
{
    static const route_spec_t specs[] = {
        { .name = "tilde", .paths = { "/%7Euser" } },
        { .name = "slashes", .paths = { "/a//b" } },
        { .name = "dots_prefix", .paths = { "/x/./y/*" } },
        { .name = "dup", .paths = { "/d", "/d", "//d" }, .hosts = { "dup.test" } },
        { .name = "dup_next", .paths = { "/d" } },
    };
    sl_config_t *cfg = make_config(specs, (int)(sizeof specs / sizeof specs[0]));
    sl_router_t *r = build_or_die(cfg);

    CHECK_STR("tilde", match(r, "/~user"));
    CHECK_STR("slashes", match(r, "/a/b"));
    CHECK_STR("dots_prefix", match(r, "/x/y/z"));
    CHECK_STR("dots_prefix", match(r, "/x/y"));
    /* three spellings of one path in one route: still one candidate */
    CHECK_STR("dup", match_full(r, "dup.test", SL_M_GET, "/d", NULL));
    CHECK_STR("dup_next", match(r, "/d"));

    /* the router compares against normalised request paths */
    char norm[32];
    const char *raw = "/x/y/../y/%7a";
    ssize_t n = sl_path_normalize(raw, strlen(raw), norm, sizeof norm);
    CHECK_INT(6, n);
    CHECK_STR("dots_prefix", match(r, norm));

    sl_router_free(r);
    free_config(cfg);
}

static void test_build_errors(void)
{
    static const route_spec_t specs[] = {
        { .name = "fine", .paths = { "/ok" }, .hosts = { "*.ok.test" } },
        { .name = "bad_regex", .paths = { "~ (" } },
        { .name = "bad_hosts", .paths = { "/h" }, .hosts = { "*", "a.*.test", "*example.com", "a.test:8080" } },
        { .name = "more_hosts", .hosts = { "", "*.", "::1", "[::1]:80" } },
        { .name = "bad_paths", .paths = { "nope", "/../x*", "/a%zz", "/%00" } },
        { .name = "bad_header", .headers = { "X-A: ~ a{2", ": x" } },
    };
    sl_config_t *cfg = make_config(specs, (int)(sizeof specs / sizeof specs[0]));
    sl_errors_t errs = { 0 };
    sl_router_t *r = sl_router_build(cfg, &errs);
    CHECK_INT(1, r == NULL);

    char regex_msg[128], header_msg[128];
    regex_t probe;
    /* The message text is the C library's: take it from the same source. */
    int rc = regcomp(&probe, "(", REG_EXTENDED | REG_NOSUB);
    CHECK_INT(REG_EPAREN, rc);
    regerror(rc, &probe, regex_msg, sizeof regex_msg);
    rc = regcomp(&probe, "a{2", REG_EXTENDED | REG_NOSUB);
    CHECK_INT(REG_EBRACE, rc);
    regerror(rc, &probe, header_msg, sizeof header_msg);
    char want_regex[256], want_header[256];
    snprintf(want_regex, sizeof want_regex, "route bad_regex: path regex \"(\": %s", regex_msg);
    snprintf(want_header, sizeof want_header, "route bad_header: header \"X-A\" regex \"a{2\": %s", header_msg);

    /* Host and header problems are found per route first, then paths. */
    const char *want[] = {
        "route bad_hosts: host \"*\": a wildcard must look like \"*.example.com\"",
        "route bad_hosts: host \"a.*.test\": \"*\" is only allowed as a leading \"*.\"",
        "route bad_hosts: host \"*example.com\": a wildcard must look like \"*.example.com\"",
        "route bad_hosts: host \"a.test:8080\": must not carry a port",
        "route more_hosts: empty host",
        "route more_hosts: host \"*.\": a wildcard must look like \"*.example.com\"",
        "route more_hosts: host \"::1\": write an IPv6 address in brackets",
        "route more_hosts: host \"[::1]:80\": must not carry a port",
        want_header,
        "route bad_header: header match with an empty name",
        want_regex,
        "route bad_paths: path \"nope\" is not a valid path",
        "route bad_paths: path \"/../x*\" is not a valid path",
        "route bad_paths: path \"/a%zz\" is not a valid path",
        "route bad_paths: path \"/%00\" is not a valid path",
    };
    int n_want = (int)(sizeof want / sizeof want[0]);
    CHECK_INT(n_want, errs.n);
    for (int i = 0; i < n_want && i < errs.n; i++)
        CHECK_STR(want[i], errs.items[i]);

    sl_errors_free(&errs);
    free_config(cfg);

    /* A NULL errs still fails cleanly. */
    static const route_spec_t one_bad[] = { { .name = "x", .paths = { "~ (" } } };
    cfg = make_config(one_bad, 1);
    CHECK_INT(1, sl_router_build(cfg, NULL) == NULL);
    free_config(cfg);
}

int main(void)
{
    test_pathnorm_table();
    test_pathnorm_edges();
    test_precedence();
    test_regex_then_catchall();
    test_fall_through_on_predicates();
    test_prefix_semantics();
    test_prefix_ties_and_lengths();
    test_hosts();
    test_methods();
    test_headers();
    test_lengths_not_terminators();
    test_many_exact_routes();
    test_no_match_and_empty();
    test_config_paths_are_normalised();
    test_build_errors();
    return check_summary();
}
