/* Unit tests for the YAML config loader and validator (core/config*.c, ydoc). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "config.h"

/* Compact, key-sorted JSON so that a whole plugin config is one exact string. */
static void check_json(const char *want, const json_t *got, const char *what, const char *file, int line)
{
    char *text = got ? json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY) : NULL;
    check_str(file, line, what, want, text);
    free(text);
}
#define CHECK_JSON(want, got) check_json((want), (got), #got, __FILE__, __LINE__)

static void print_errors(const sl_errors_t *e)
{
    for (int i = 0; i < e->n; i++)
        fprintf(stderr, "    error: %s\n", e->items[i]);
}

static sl_config_t *load_ok_at(const char *yaml, const char *file, int line)
{
    sl_errors_t errs = {0};
    sl_config_t *cfg = sl_config_load_string("t.yaml", yaml, &errs);
    check_true(file, line, "config loads", cfg != NULL);
    check_int(file, line, "number of errors", 0, errs.n);
    if (!cfg || errs.n)
        print_errors(&errs);
    sl_errors_free(&errs);
    return cfg;
}
#define LOAD_OK(yaml) load_ok_at((yaml), __FILE__, __LINE__)

/* The config must fail with exactly these messages, in this order. */
static void expect_errors(const char *file, int line, const char *yaml, const char *const *want)
{
    sl_errors_t errs = {0};
    sl_config_t *cfg = sl_config_load_string("t.yaml", yaml, &errs);
    check_true(file, line, "config is rejected", cfg == NULL);
    sl_config_unref(cfg);
    int n_want = 0;
    while (want[n_want])
        n_want++;
    check_int(file, line, "number of errors", n_want, errs.n);
    for (int i = 0; i < n_want && i < errs.n; i++)
        check_str(file, line, "error message", want[i], errs.items[i]);
    if (n_want != errs.n)
        print_errors(&errs);
    sl_errors_free(&errs);
}
#define EXPECT_ERRORS(yaml, ...) expect_errors(__FILE__, __LINE__, (yaml), (const char *const[]){__VA_ARGS__, NULL})

/* Most error tests need a valid listen and route around the broken part. */
#define LISTEN "listen: 127.0.0.1:8080\n"
#define ROUTE "routes:\n  - name: r\n    upstream: http://127.0.0.1:9001\n"

static char *temp_file(const char *content)
{
    char *path = strdup("/tmp/sluice_test_config_XXXXXX");
    int fd = mkstemp(path);
    CHECK_TRUE(fd >= 0);
    CHECK_INT((long long)strlen(content), write(fd, content, strlen(content)));
    close(fd);
    return path;
}

/* examples/full.yaml, found from SLUICE_SOURCE_DIR or from this file's place
 * in the tree (spec/unit/test_config.c). */
static char *example_path(void)
{
    const char *dir = getenv("SLUICE_SOURCE_DIR");
    char *root;
    if (dir) {
        root = strdup(dir);
    } else {
        root = strdup(__FILE__);
        char *cut = strstr(root, "spec/unit/test_config.c");
        if (cut)
            *cut = '\0';
        if (!root[0]) {
            free(root);
            root = strdup(".");
        }
    }
    char *path;
    if (asprintf(&path, "%s/examples/full.yaml", root) < 0)
        abort();
    free(root);
    return path;
}

/* The line of the first occurrence of needle in the file, so that editing the
 * example's comments does not break the line checks. */
static int line_in_file(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char buf[512];
    for (int line = 1; fgets(buf, sizeof buf, f); line++) {
        if (strstr(buf, needle)) {
            fclose(f);
            return line;
        }
    }
    fclose(f);
    return -1;
}

static void test_full_example(void)
{
    char *cert = temp_file("cert"), *key = temp_file("key");
    setenv("SLUICE_TLS_CERT", cert, 1);
    setenv("SLUICE_TLS_KEY", key, 1);
    unsetenv("REDIS_PASSWORD");
    char *path = example_path();
    sl_errors_t errs = {0};
    sl_config_t *c = sl_config_load(path, &errs);
    CHECK_TRUE(c != NULL);
    CHECK_INT(0, errs.n);
    print_errors(&errs);
    sl_errors_free(&errs);
    if (!c)
        goto out;

    CHECK_STR(path, c->path);
    CHECK_INT(1, atomic_load(&c->refs));
    CHECK_INT(3, c->n_listens);
    CHECK_STR("127.0.0.1", c->listens[0].host);
    CHECK_INT(8080, c->listens[0].port);
    CHECK_STR(NULL, c->listens[0].tls_cert);
    CHECK_STR(NULL, c->listens[0].tls_key);
    CHECK_STR("::1", c->listens[1].host);
    CHECK_INT(8080, c->listens[1].port);
    CHECK_STR("0.0.0.0", c->listens[2].host);
    CHECK_INT(8443, c->listens[2].port);
    CHECK_STR(cert, c->listens[2].tls_cert);
    CHECK_STR(key, c->listens[2].tls_key);
    CHECK_INT(4, c->workers);

    CHECK_INT(5000, c->server.client_header_timeout_ms);
    CHECK_INT(20000, c->server.client_body_timeout_ms);
    CHECK_INT(30000, c->server.keepalive_timeout_ms);
    CHECK_INT(15000, c->server.send_timeout_ms);
    CHECK_INT(4096, c->server.max_uri_size);
    CHECK_INT(16384, c->server.max_header_size);
    CHECK_INT(2097152, c->server.max_body_size);
    CHECK_INT(20000, c->server.drain_timeout_ms);
    CHECK_INT(524288, c->server.max_response_buffer);
    CHECK_INT(true, c->server.server_timing);
    CHECK_STR("/var/log/sluice/access.log", c->log.access);
    CHECK_STR("warn", c->log.level);
    CHECK_INT(2, c->n_plugin_dirs);
    CHECK_STR("/usr/lib/sluice/plugins", c->plugin_dirs[0]);
    CHECK_STR("/etc/sluice/plugins", c->plugin_dirs[1]);

    CHECK_INT(true, c->redis.enabled);
    CHECK_STR("redis://sluice:s3cret@10.0.0.5:6380/2", c->redis.url);
    CHECK_STR("10.0.0.5", c->redis.host);
    CHECK_INT(6380, c->redis.port);
    CHECK_STR("sluice", c->redis.username);
    CHECK_STR("s3cret", c->redis.password);
    CHECK_INT(2, c->redis.db);
    CHECK_INT(250, c->redis.connect_timeout_ms);
    CHECK_INT(100, c->redis.command_timeout_ms);

    CHECK_INT(3, c->n_upstreams);
    sl_upstream_t *u = &c->upstreams[0];
    CHECK_STR("backend", u->name);
    CHECK_INT(0, u->index);
    CHECK_INT(2, u->n_targets);
    CHECK_STR("127.0.0.1", u->targets[0].host);
    CHECK_INT(9001, u->targets[0].port);
    CHECK_INT(false, u->targets[0].tls);
    CHECK_INT(1, u->targets[0].weight);
    CHECK_STR("127.0.0.1:9001", u->targets[0].name);
    CHECK_STR("10.0.0.2", u->targets[1].host);
    CHECK_INT(9443, u->targets[1].port);
    CHECK_INT(true, u->targets[1].tls);
    CHECK_INT(3, u->targets[1].weight);
    CHECK_STR("10.0.0.2:9443", u->targets[1].name);
    CHECK_INT(SL_BALANCE_HASH, u->balance);
    CHECK_INT(SL_HASH_HEADER, u->hash_on);
    CHECK_STR("x-user", u->hash_key);
    CHECK_INT(SL_HOST_FIXED, u->host_header);
    CHECK_STR("api.internal", u->host_value);
    CHECK_INT(false, u->tls_verify);
    CHECK_STR("/etc/ssl/certs/ca-certificates.crt", u->tls_ca_file);
    CHECK_STR("api.example.com", u->tls_sni);
    CHECK_INT(500, u->timeouts.connect_ms);
    CHECK_INT(5000, u->timeouts.send_ms);
    CHECK_INT(30000, u->timeouts.read_ms);
    CHECK_INT(30000, u->keepalive_idle_ms);
    CHECK_INT(16, u->keepalive_max_idle);
    CHECK_INT(true, u->retries.set);
    CHECK_INT(2, u->retries.attempts);
    CHECK_INT(50, u->retries.backoff_ms);
    CHECK_INT(2000, u->retries.max_backoff_ms);
    CHECK_INT(3, u->retries.n_on_status);
    CHECK_INT(502, u->retries.on_status[0]);
    CHECK_INT(503, u->retries.on_status[1]);
    CHECK_INT(504, u->retries.on_status[2]);
    CHECK_INT(true, u->retries.non_idempotent);
    CHECK_INT(50, u->retries.budget_percent);
    CHECK_INT(3, u->max_fails);
    CHECK_INT(5000, u->open_ms);
    CHECK_INT(true, u->active.enabled);
    CHECK_STR("/healthz", u->active.path);
    CHECK_INT(2000, u->active.interval_ms);
    CHECK_INT(500, u->active.timeout_ms);
    CHECK_INT(1, u->active.healthy);
    CHECK_INT(2, u->active.unhealthy);
    CHECK_INT(2, u->active.n_statuses);
    CHECK_INT(200, u->active.statuses[0]);
    CHECK_INT(204, u->active.statuses[1]);
    CHECK_INT(false, u->inline_url);

    u = &c->upstreams[1];
    CHECK_STR("spare", u->name);
    CHECK_INT(1, u->index);
    CHECK_INT(1, u->n_targets);
    CHECK_STR("backup.internal:80", u->targets[0].name);
    CHECK_INT(SL_BALANCE_LEAST_CONN, u->balance);
    CHECK_INT(false, u->inline_url);

    u = &c->upstreams[2];
    CHECK_STR("route:legacy", u->name);
    CHECK_INT(2, u->index);
    CHECK_INT(true, u->inline_url);
    CHECK_INT(1, u->n_targets);
    CHECK_STR("127.0.0.1:9002", u->targets[0].name);

    CHECK_JSON("[{\"credentials\":{\"key-auth\":[{\"key\":\"abc\"}]},\"groups\":[\"admin\"],\"name\":\"alice\","
               "\"tenant\":\"acme\"},{\"groups\":[],\"name\":\"bob\",\"tenant\":\"acme\"}]",
               c->consumers);

    CHECK_INT(2, c->n_plugins);
    CHECK_STR("ip-restriction", c->plugins[0].name);
    CHECK_JSON("{\"deny\":[\"192.0.2.0/24\"]}", c->plugins[0].conf);
    CHECK_INT(line_in_file(path, "- ip-restriction:"), c->plugins[0].line);
    CHECK_STR("cors", c->plugins[1].name);
    CHECK_JSON("{\"max_age\":600,\"origins\":[\"https://app.example.com\"]}", c->plugins[1].conf);
    CHECK_INT(line_in_file(path, "- cors:"), c->plugins[1].line);

    CHECK_INT(3, c->n_routes);
    sl_route_t *r = &c->routes[0];
    CHECK_STR("api", r->name);
    CHECK_INT(0, r->index);
    CHECK_INT(line_in_file(path, "- name: api"), r->line);
    CHECK_INT(2, r->n_hosts);
    CHECK_STR("api.example.com", r->hosts[0]);
    CHECK_STR("*.example.com", r->hosts[1]);
    CHECK_INT(SL_M_GET | SL_M_POST, r->methods);
    CHECK_INT(3, r->n_paths);
    CHECK_INT(SL_PATH_EXACT, r->paths[0].kind);
    CHECK_STR("/v1/models", r->paths[0].value);
    CHECK_INT(SL_PATH_PREFIX, r->paths[1].kind);
    CHECK_STR("/api/", r->paths[1].value);
    CHECK_INT(SL_PATH_REGEX, r->paths[2].kind);
    CHECK_STR("^/users/[0-9]+$", r->paths[2].value);
    CHECK_INT(2, r->n_headers);
    CHECK_STR("x-env", r->headers[0].name);
    CHECK_STR("prod", r->headers[0].value);
    CHECK_INT(false, r->headers[0].is_regex);
    CHECK_STR("x-version", r->headers[1].name);
    CHECK_STR("^v[0-9]+$", r->headers[1].value);
    CHECK_INT(true, r->headers[1].is_regex);
    CHECK_TRUE(r->upstream == &c->upstreams[0]);
    CHECK_INT(2, r->n_plugins);
    CHECK_STR("key-auth", r->plugins[0].name);
    CHECK_JSON("{\"header\":\"X-Api-Key\"}", r->plugins[0].conf);
    CHECK_INT(line_in_file(path, "- key-auth:"), r->plugins[0].line);
    CHECK_STR("rate-limit", r->plugins[1].name);
    CHECK_JSON("{\"limits\":[{\"count\":100,\"window\":\"1m\"}],\"policy\":\"local\"}", r->plugins[1].conf);
    CHECK_INT(line_in_file(path, "- rate-limit:"), r->plugins[1].line);
    CHECK_INT(8 * 1024 * 1024, r->max_body_size);
    CHECK_INT(250, r->timeouts.connect_ms);
    CHECK_INT(0, r->timeouts.send_ms);
    CHECK_INT(5000, r->timeouts.read_ms);
    /* attempts from the route, the rest from its upstream */
    CHECK_INT(true, r->retries.set);
    CHECK_INT(0, r->retries.attempts);
    CHECK_INT(50, r->retries.backoff_ms);
    CHECK_INT(2000, r->retries.max_backoff_ms);
    CHECK_INT(3, r->retries.n_on_status);
    CHECK_INT(504, r->retries.on_status[2]);
    CHECK_INT(true, r->retries.non_idempotent);
    CHECK_INT(50, r->retries.budget_percent);

    r = &c->routes[1];
    CHECK_STR("legacy", r->name);
    CHECK_INT(1, r->index);
    CHECK_INT(line_in_file(path, "- name: legacy"), r->line);
    CHECK_TRUE(r->upstream == &c->upstreams[2]);
    CHECK_INT(1, r->n_paths);
    CHECK_INT(SL_PATH_PREFIX, r->paths[0].kind);
    CHECK_STR("/legacy/", r->paths[0].value);
    CHECK_INT(0, r->methods);
    CHECK_INT(0, r->n_plugins);
    CHECK_INT(false, r->retries.set);

    r = &c->routes[2];
    CHECK_STR("status", r->name);
    CHECK_INT(line_in_file(path, "- name: status"), r->line);
    CHECK_TRUE(r->upstream == NULL);
    CHECK_INT(SL_M_GET | SL_M_HEAD, r->methods);
    CHECK_INT(SL_PATH_EXACT, r->paths[0].kind);
    CHECK_STR("/status", r->paths[0].value);
    CHECK_INT(1, r->n_plugins);
    CHECK_JSON("{\"models\":{\"demo\":{\"targets\":[{\"model\":\"mock-1\",\"provider\":\"mock\"}]}}}",
               r->plugins[0].conf);
    sl_config_unref(c);
out:
    unsetenv("SLUICE_TLS_CERT");
    unsetenv("SLUICE_TLS_KEY");
    unlink(cert);
    unlink(key);
    free(cert);
    free(key);
    free(path);
}

static void test_defaults(void)
{
    sl_config_t *c = LOAD_OK(LISTEN ROUTE);
    if (!c)
        return;
    CHECK_INT(sysconf(_SC_NPROCESSORS_ONLN), c->workers);
    CHECK_STR("t.yaml", c->path);
    CHECK_INT(10000, c->server.client_header_timeout_ms);
    CHECK_INT(30000, c->server.client_body_timeout_ms);
    CHECK_INT(60000, c->server.keepalive_timeout_ms);
    CHECK_INT(30000, c->server.send_timeout_ms);
    CHECK_INT(8192, c->server.max_uri_size);
    CHECK_INT(32768, c->server.max_header_size);
    CHECK_INT(1048576, c->server.max_body_size);
    CHECK_INT(10000, c->server.drain_timeout_ms);
    CHECK_INT(262144, c->server.max_response_buffer);
    CHECK_INT(false, c->server.server_timing);
    CHECK_STR("stdout", c->log.access);
    CHECK_STR("info", c->log.level);
    CHECK_INT(0, c->n_plugin_dirs);
    CHECK_INT(false, c->redis.enabled);
    CHECK_STR(NULL, c->redis.url);
    CHECK_JSON("[]", c->consumers);
    CHECK_INT(0, c->n_plugins);
    CHECK_INT(1, c->n_routes);

    sl_route_t *r = &c->routes[0];
    CHECK_INT(0, r->n_hosts);
    CHECK_INT(0, r->methods);
    CHECK_INT(0, r->n_paths);
    CHECK_INT(0, r->n_headers);
    CHECK_INT(0, r->max_body_size);
    CHECK_INT(0, r->timeouts.connect_ms);
    CHECK_INT(0, r->timeouts.send_ms);
    CHECK_INT(0, r->timeouts.read_ms);
    CHECK_INT(false, r->retries.set);
    CHECK_INT(3, r->line);

    CHECK_INT(1, c->n_upstreams);
    sl_upstream_t *u = r->upstream;
    CHECK_TRUE(u == &c->upstreams[0]);
    CHECK_STR("route:r", u->name);
    CHECK_INT(true, u->inline_url);
    CHECK_INT(SL_BALANCE_ROUND_ROBIN, u->balance);
    CHECK_INT(SL_HASH_IP, u->hash_on);
    CHECK_STR(NULL, u->hash_key);
    CHECK_INT(SL_HOST_PRESERVE, u->host_header);
    CHECK_STR(NULL, u->host_value);
    CHECK_INT(true, u->tls_verify);
    CHECK_STR(NULL, u->tls_ca_file);
    CHECK_STR(NULL, u->tls_sni);
    CHECK_INT(1000, u->timeouts.connect_ms);
    CHECK_INT(10000, u->timeouts.send_ms);
    CHECK_INT(60000, u->timeouts.read_ms);
    CHECK_INT(60000, u->keepalive_idle_ms);
    CHECK_INT(256, u->keepalive_max_idle);
    CHECK_INT(true, u->retries.set);
    CHECK_INT(1, u->retries.attempts);
    CHECK_INT(25, u->retries.backoff_ms);
    CHECK_INT(1000, u->retries.max_backoff_ms);
    CHECK_INT(0, u->retries.n_on_status);
    CHECK_INT(false, u->retries.non_idempotent);
    CHECK_INT(20, u->retries.budget_percent);
    CHECK_INT(5, u->max_fails);
    CHECK_INT(10000, u->open_ms);
    CHECK_INT(false, u->active.enabled);
    CHECK_STR("/health", u->active.path);
    CHECK_INT(5000, u->active.interval_ms);
    CHECK_INT(1000, u->active.timeout_ms);
    CHECK_INT(2, u->active.healthy);
    CHECK_INT(3, u->active.unhealthy);
    CHECK_INT(0, u->active.n_statuses);
    sl_config_unref(c);

    /* "active: {}" turns active checks on with every default */
    c = LOAD_OK(LISTEN "upstreams:\n  b:\n    targets: [http://h]\n    health: {active: {}}\n"
                       "routes:\n  - {name: r, upstream: b}\n");
    if (c) {
        CHECK_INT(true, c->upstreams[0].active.enabled);
        CHECK_STR("/health", c->upstreams[0].active.path);
        CHECK_INT(5000, c->upstreams[0].active.interval_ms);
        CHECK_INT(1000, c->upstreams[0].active.timeout_ms);
        CHECK_INT(2, c->upstreams[0].active.healthy);
        CHECK_INT(3, c->upstreams[0].active.unhealthy);
        CHECK_INT(5, c->upstreams[0].max_fails);
    }
    sl_config_unref(c);
}

static void test_ref_unref(void)
{
    sl_config_t *c = LOAD_OK(LISTEN ROUTE);
    if (!c)
        return;
    CHECK_TRUE(sl_config_ref(c) == c);
    CHECK_INT(2, atomic_load(&c->refs));
    sl_config_unref(c);
    CHECK_INT(1, atomic_load(&c->refs));
    sl_config_unref(c);  /* frees: valgrind and ASan check nothing is left */
    CHECK_TRUE(sl_config_ref(NULL) == NULL);
    sl_config_unref(NULL);
}

static void test_durations(void)
{
    static const struct {
        const char *in;
        long long ms;
    } good[] = {
        {"250ms", 250}, {"5s", 5000}, {"2m", 120000}, {"1h", 3600000}, {"1.5s", 1500}, {"0", 0},
        {"0s", 0}, {"750", 750}, {"0.25s", 250}, {"1.5m", 90000}, {"0.001s", 1}, {"2.0000000000s", 2000},
        {"9223372036854775807", 9223372036854775807LL},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        int64_t ms = -1;
        CHECK_INT(0, sl_parse_duration_ms(good[i].in, &ms));
        CHECK_INT(good[i].ms, ms);
    }
    static const char *const bad[] = {
        "", "-5s", "+5s", "s", "5x", "5 s", " 5s", "5S", "1.5", "1.", ".5s", "0.5ms", "0.0001s",
        "1.5.5s", "5sec", "10d", "9223372036854775808", "9223372036854775807s", "abc",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t ms = -7;
        CHECK_INT(-1, sl_parse_duration_ms(bad[i], &ms));
        CHECK_INT(-7, ms);
    }
    int64_t ms = 0;
    CHECK_INT(-1, sl_parse_duration_ms(NULL, &ms));
}

static void test_sizes(void)
{
    static const struct {
        const char *in;
        long long bytes;
    } good[] = {
        {"512", 512}, {"16kb", 16384}, {"8mb", 8388608}, {"1gb", 1073741824}, {"16KB", 16384},
        {"2k", 2048}, {"3M", 3145728}, {"1g", 1073741824}, {"0", 0}, {"7b", 7}, {"1Gb", 1073741824},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        int64_t v = -1;
        CHECK_INT(0, sl_parse_size(good[i].in, &v));
        CHECK_INT(good[i].bytes, v);
    }
    static const char *const bad[] = {
        "", "-1", "+1", "1.5mb", "kb", "1 kb", "1tb", "1kbb", "abc", "9223372036854775807kb",
        "99999999999999999999",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t v = -7;
        CHECK_INT(-1, sl_parse_size(bad[i], &v));
        CHECK_INT(-7, v);
    }
}

static void test_method_bits(void)
{
    CHECK_INT(SL_M_GET, sl_method_bit("GET", 3));
    CHECK_INT(SL_M_HEAD, sl_method_bit("HEAD", 4));
    CHECK_INT(SL_M_POST, sl_method_bit("POST", 4));
    CHECK_INT(SL_M_PUT, sl_method_bit("PUT", 3));
    CHECK_INT(SL_M_DELETE, sl_method_bit("DELETE", 6));
    CHECK_INT(SL_M_PATCH, sl_method_bit("PATCH", 5));
    CHECK_INT(SL_M_OPTIONS, sl_method_bit("OPTIONS", 7));
    CHECK_INT(SL_M_CONNECT, sl_method_bit("CONNECT", 7));
    CHECK_INT(SL_M_TRACE, sl_method_bit("TRACE", 5));
    CHECK_INT(SL_M_GET, sl_method_bit("GET /x", 3));  /* length-bounded, as in a request line */
    CHECK_INT(0, sl_method_bit("get", 3));
    CHECK_INT(0, sl_method_bit("GE", 2));
    CHECK_INT(0, sl_method_bit("GETS", 4));
    CHECK_INT(0, sl_method_bit("PROPFIND", 8));
    CHECK_INT(0, sl_method_bit("", 0));
    CHECK_INT(0, sl_method_bit(NULL, 0));
}

static void test_duration_and_size_errors(void)
{
    EXPECT_ERRORS(LISTEN "server:\n  client_header_timeout: 5x\n  max_body_size: -1mb\n"
                         "  keepalive_timeout: 0\n  max_uri_size: 0\n  drain_timeout: 0\n"
                         "  server_timing: yes\n  send_timeout: {a: 1}\n  max_header_size:\n" ROUTE,
                  "t.yaml:3: server.client_header_timeout: invalid duration \"5x\" (expected e.g. 250ms, 5s, "
                  "1.5s, 2m, 1h)",
                  "t.yaml:4: server.max_body_size: invalid size \"-1mb\" (expected e.g. 512, 16kb, 8mb, 1gb)",
                  "t.yaml:5: server.keepalive_timeout: must be at least 1ms",
                  "t.yaml:6: server.max_uri_size: must be greater than 0",
                  "t.yaml:8: server.server_timing: expected true or false, got \"yes\"",
                  "t.yaml:9: server.send_timeout: expected a duration, got a mapping",
                  "t.yaml:10: server.max_header_size: expected a size, got null");
}

static void test_unknown_keys(void)
{
    EXPECT_ERRORS(LISTEN "lsten: 1\nroutes:\n  - name: r\n    upstrem: x\n    upstream: http://h\n"
                         "    match: {path: [/x]}\n",
                  "t.yaml:2: lsten: unknown key", "t.yaml:5: routes[0].upstrem: unknown key",
                  "t.yaml:7: routes[0].match.path: unknown key");
    EXPECT_ERRORS(LISTEN "server: {max_body: 1mb}\nlog: {format: json}\nredis: {url: redis://h, db: 1}\n"
                         "upstreams:\n  b:\n    targets: [http://h]\n    timeouts: {idle: 1s}\n"
                         "    retries: {tries: 1}\n    health: {active: {port: 1}, fails: 1}\n"
                         "    tls: {cert: x}\n    keepalive: {max: 1}\n" ROUTE,
                  "t.yaml:2: server.max_body: unknown key", "t.yaml:3: log.format: unknown key",
                  "t.yaml:4: redis.db: unknown key", "t.yaml:8: upstreams.b.timeouts.idle: unknown key",
                  "t.yaml:9: upstreams.b.retries.tries: unknown key",
                  "t.yaml:10: upstreams.b.health.active.port: unknown key",
                  "t.yaml:10: upstreams.b.health.fails: unknown key", "t.yaml:11: upstreams.b.tls.cert: unknown key",
                  "t.yaml:12: upstreams.b.keepalive.max: unknown key");
}

static void test_required_keys(void)
{
    EXPECT_ERRORS("workers: 1\n", "t.yaml:1: listen: missing required key", "t.yaml:1: routes: missing required key");
    EXPECT_ERRORS("", "t.yaml:1: listen: missing required key", "t.yaml:1: routes: missing required key");
    EXPECT_ERRORS("# only a comment\n", "t.yaml:1: listen: missing required key",
                  "t.yaml:1: routes: missing required key");
    EXPECT_ERRORS(LISTEN "routes: []\n", "t.yaml:2: routes: must not be empty");
    EXPECT_ERRORS(LISTEN "routes:\n", "t.yaml:2: routes: must not be empty");
    EXPECT_ERRORS(LISTEN "routes:\n  - upstream: http://h\n", "t.yaml:3: routes[0].name: missing required key");
    EXPECT_ERRORS(LISTEN "routes:\n  - name: r\n    match: {paths: [/x]}\n",
                  "t.yaml:3: routes[0]: needs an upstream, or plugins that answer the request");
    EXPECT_ERRORS(LISTEN "routes:\n  - name: r\n    plugins: []\n",
                  "t.yaml:3: routes[0]: needs an upstream, or plugins that answer the request");
    EXPECT_ERRORS(LISTEN "upstreams:\n  b: {balance: hash}\n" ROUTE, "t.yaml:3: upstreams.b.targets: missing required key");
    EXPECT_ERRORS("- a\n- b\n", "t.yaml:1: expected a mapping of settings at the top level, got a list");
    EXPECT_ERRORS("hello\n", "t.yaml:1: expected a mapping of settings at the top level, got a string");
}

static void test_yaml_syntax_errors(void)
{
    EXPECT_ERRORS(LISTEN "routes:\n  - name: r\n   bad: [\n",
                  "t.yaml:4: YAML syntax error: did not find expected '-' indicator (while parsing a block collection)");
    EXPECT_ERRORS(LISTEN "server: {a: 1\n",
                  "t.yaml:3: YAML syntax error: did not find expected ',' or '}' (while parsing a flow mapping)");
    EXPECT_ERRORS("listen: \"unterminated\n",
                  "t.yaml:2: YAML syntax error: found unexpected end of stream (while scanning a quoted scalar)");
    EXPECT_ERRORS(LISTEN "a: b: c\n", "t.yaml:2: YAML syntax error: mapping values are not allowed in this context");
    EXPECT_ERRORS(LISTEN "x: *nope\n", "t.yaml:2: YAML syntax error: found undefined alias");
    EXPECT_ERRORS(LISTEN "bad: \"\xff\"\n",
                  "t.yaml:2: YAML syntax error: invalid leading UTF-8 octet");
    EXPECT_ERRORS(LISTEN ROUTE "---\nlisten: 1\n", "t.yaml:5: only one YAML document is allowed");
}

static void test_duplicate_keys(void)
{
    EXPECT_ERRORS(LISTEN "workers: 1\nworkers: 2\n" ROUTE, "t.yaml:3: workers: duplicate key (first at line 2)");
    EXPECT_ERRORS(LISTEN "routes:\n  - name: r\n    upstream: http://h\n    name: s\n",
                  "t.yaml:5: routes[0].name: duplicate key (first at line 3)");
    EXPECT_ERRORS(LISTEN "upstreams:\n  b: {targets: [http://h]}\n  b: {targets: [http://i]}\n" ROUTE,
                  "t.yaml:4: upstreams.b: duplicate key (first at line 3)");
    EXPECT_ERRORS(LISTEN "? [a, b]\n: c\n" ROUTE, "t.yaml:2: mapping keys must be plain strings");
    /* a quoted "<<" is an ordinary key, not a merge */
    EXPECT_ERRORS(LISTEN "\"<<\": 1\n" ROUTE, "t.yaml:2: <<: unknown key");
    /* duplicates inside a plugin config are caught as well */
    EXPECT_ERRORS(LISTEN ROUTE "    plugins:\n      - p: {a: 1, a: 2}\n",
                  "t.yaml:6: routes[0].plugins[0].p.a: duplicate key (first at line 6)");
}

static void test_duplicate_route_names(void)
{
    EXPECT_ERRORS(LISTEN "routes:\n  - {name: a, upstream: http://h}\n  - {name: b, upstream: http://h}\n"
                         "  - {name: a, upstream: http://h}\n",
                  "t.yaml:5: routes[2].name: duplicate route name \"a\" (first at line 3)");
}

static void test_env_substitution(void)
{
    setenv("SLUICE_T_PORT", "9100", 1);
    setenv("SLUICE_T_EMPTY", "", 1);
    setenv("SLUICE_T_TRUE", "true", 1);
    setenv("SLUICE_T_HOST", "127.0.0.1", 1);
    unsetenv("SLUICE_T_UNSET");
    sl_config_t *c = LOAD_OK("listen: ${SLUICE_T_HOST}:${SLUICE_T_PORT}\n"
                             "log: {access: \"${SLUICE_T_UNSET:-/tmp/a.log}\", level: \"${SLUICE_T_EMPTY:-debug}\"}\n"
                             "plugin_dirs: [\"$$HOME/${SLUICE_T_EMPTY}x\", a$b, \"cost$\"]\n"
                             "routes:\n  - name: r\n    upstream: http://h\n"
                             /* "{" and "}" end plain scalars in flow style, so block style here */
                             "    plugins:\n      - p:\n          n: ${SLUICE_T_PORT}\n          q: \"${SLUICE_T_PORT}\"\n"
                             "          b: ${SLUICE_T_TRUE}\n          s: ${SLUICE_T_EMPTY:-a:-b}\n"
                             "          e: x${SLUICE_T_EMPTY}y\n          z: ${SLUICE_T_UNSET:-}\n");
    if (c) {
        CHECK_STR("127.0.0.1", c->listens[0].host);
        CHECK_INT(9100, c->listens[0].port);
        CHECK_STR("/tmp/a.log", c->log.access);
        CHECK_STR("debug", c->log.level);
        CHECK_INT(3, c->n_plugin_dirs);
        CHECK_STR("$HOME/x", c->plugin_dirs[0]);
        CHECK_STR("a$b", c->plugin_dirs[1]);
        CHECK_STR("cost$", c->plugin_dirs[2]);
        /* plain scalars are typed after substitution, quoted ones stay strings */
        CHECK_JSON("{\"b\":true,\"e\":\"xy\",\"n\":9100,\"q\":\"9100\",\"s\":\"a:-b\",\"z\":null}",
                   c->routes[0].plugins[0].conf);
    }
    sl_config_unref(c);

    EXPECT_ERRORS(LISTEN "log:\n  access: ${SLUICE_T_UNSET}\n  level: \"${1BAD}\"\n"
                         "plugin_dirs: [\"${SLUICE_T_PORT\", \"${}\", \"${A-b}\"]\n"
                         "${SLUICE_T_UNSET}: 1\n" ROUTE,
                  "t.yaml:3: log.access: environment variable SLUICE_T_UNSET is not set",
                  "t.yaml:4: log.level: invalid environment variable name \"1BAD\" in ${1BAD}",
                  "t.yaml:5: plugin_dirs[0]: unterminated ${ (missing \"}\")",
                  "t.yaml:5: plugin_dirs[1]: invalid environment variable name \"\" in ${}",
                  "t.yaml:5: plugin_dirs[2]: invalid environment variable name \"A-b\" in ${A-b}",
                  "t.yaml:6: environment variable SLUICE_T_UNSET is not set");
    unsetenv("SLUICE_T_PORT");
    unsetenv("SLUICE_T_EMPTY");
    unsetenv("SLUICE_T_TRUE");
    unsetenv("SLUICE_T_HOST");
}

static void test_listen(void)
{
    sl_config_t *c = LOAD_OK("listen:\n  - \"[::1]:8080\"\n  - :9090\n  - 7070\n  - addr: 10.1.2.3:443\n" ROUTE);
    if (c) {
        CHECK_INT(4, c->n_listens);
        CHECK_STR("::1", c->listens[0].host);
        CHECK_INT(8080, c->listens[0].port);
        CHECK_STR("0.0.0.0", c->listens[1].host);
        CHECK_INT(9090, c->listens[1].port);
        CHECK_STR("0.0.0.0", c->listens[2].host);
        CHECK_INT(7070, c->listens[2].port);
        CHECK_STR("10.1.2.3", c->listens[3].host);
        CHECK_INT(443, c->listens[3].port);
        CHECK_STR(NULL, c->listens[3].tls_cert);
    }
    sl_config_unref(c);
    c = LOAD_OK("listen: {addr: \"[::]:8443\"}\n" ROUTE);
    if (c) {
        CHECK_INT(1, c->n_listens);
        CHECK_STR("::", c->listens[0].host);
        CHECK_INT(8443, c->listens[0].port);
    }
    sl_config_unref(c);

    EXPECT_ERRORS("listen:\n  - 127.0.0.1:0\n  - 127.0.0.1:65536\n  - localhost:80\n  - 127.0.0.1\n"
                  "  - ::1:80\n  - \"[::1]80\"\n  - 1.2.3.4:http\n  - \"[fe80::zz]:80\"\n  - 127.0.0.1:99999999\n" ROUTE,
                  "t.yaml:2: listen[0]: port 0 out of range (1..65535)",
                  "t.yaml:3: listen[1]: port 65536 out of range (1..65535)",
                  "t.yaml:4: listen[2]: host \"localhost\" must be a numeric IPv4 address or a bracketed IPv6 address",
                  "t.yaml:5: listen[3]: expected \"host:port\", got \"127.0.0.1\"",
                  "t.yaml:6: listen[4]: IPv6 addresses must be in brackets, e.g. \"[::1]:8080\"",
                  "t.yaml:7: listen[5]: expected \"[address]:port\", got \"[::1]80\"",
                  "t.yaml:8: listen[6]: invalid port \"http\"",
                  "t.yaml:9: listen[7]: \"fe80::zz\" is not an IPv6 address",
                  "t.yaml:10: listen[8]: port 99999999 out of range (1..65535)");
    EXPECT_ERRORS("listen: []\n" ROUTE, "t.yaml:1: listen: must not be empty");
    EXPECT_ERRORS("listen: [127.0.0.1:80, 127.0.0.1:80]\n" ROUTE,
                  "t.yaml:1: listen[1]: duplicate listen address (first at line 1)");
    EXPECT_ERRORS("listen:\n  - addr: :443\n    tls: {cert: /nonexistent/c.pem}\n  - tls: {key: /tmp}\n"
                  "  - {addr: \":80\", port: 1}\n" ROUTE,
                  "t.yaml:3: listen[0].tls.cert: cannot read \"/nonexistent/c.pem\": No such file or directory",
                  "t.yaml:3: listen[0].tls.key: missing required key",
                  "t.yaml:4: listen[1].tls.key: cannot read \"/tmp\": Is a directory",
                  "t.yaml:4: listen[1].tls.cert: missing required key",
                  "t.yaml:4: listen[1].addr: missing required key", "t.yaml:5: listen[2].port: unknown key");
}

static void test_workers_log_dirs(void)
{
    sl_config_t *c = LOAD_OK(LISTEN "workers: auto\nplugin_dirs: /opt/p\nlog: {access: \"off\"}\n" ROUTE);
    if (c) {
        CHECK_INT(sysconf(_SC_NPROCESSORS_ONLN), c->workers);
        CHECK_INT(1, c->n_plugin_dirs);
        CHECK_STR("/opt/p", c->plugin_dirs[0]);
        CHECK_STR("off", c->log.access);
    }
    sl_config_unref(c);
    EXPECT_ERRORS(LISTEN "workers: 0\n" ROUTE, "t.yaml:2: workers: must be between 1 and 1024, got 0");
    EXPECT_ERRORS(LISTEN "workers: many\n" ROUTE, "t.yaml:2: workers: expected a positive integer or \"auto\", got \"many\"");
    EXPECT_ERRORS(LISTEN "workers: 1.5\n" ROUTE, "t.yaml:2: workers: expected a positive integer or \"auto\", got \"1.5\"");
    EXPECT_ERRORS(LISTEN "workers: -2\n" ROUTE, "t.yaml:2: workers: must be between 1 and 1024, got -2");
    EXPECT_ERRORS(LISTEN "log: {level: verbose, access: \"\"}\nplugin_dirs: {a: b}\n" ROUTE,
                  "t.yaml:2: log.level: unknown value \"verbose\" (expected debug, info, warn, error)",
                  "t.yaml:2: log.access: must not be empty", "t.yaml:3: plugin_dirs: expected a list, got a mapping");
    EXPECT_ERRORS(LISTEN "log: stdout\nserver: [1]\n" ROUTE, "t.yaml:2: log: expected a mapping, got a string",
                  "t.yaml:3: server: expected a mapping, got a list");
}

static void test_redis(void)
{
    sl_config_t *c = LOAD_OK(LISTEN "redis: {url: \"redis://:p%40ss%3a@[::1]\"}\n" ROUTE);
    if (c) {
        CHECK_INT(true, c->redis.enabled);
        CHECK_STR(NULL, c->redis.username);
        CHECK_STR("p@ss:", c->redis.password);
        CHECK_STR("::1", c->redis.host);
        CHECK_INT(6379, c->redis.port);
        CHECK_INT(0, c->redis.db);
        CHECK_INT(500, c->redis.connect_timeout_ms);
        CHECK_INT(200, c->redis.command_timeout_ms);
    }
    sl_config_unref(c);
    c = LOAD_OK(LISTEN "redis: {url: \"redis://cache.local/\"}\n" ROUTE);
    if (c) {
        CHECK_STR("cache.local", c->redis.host);
        CHECK_STR(NULL, c->redis.password);
        CHECK_INT(6379, c->redis.port);
        CHECK_INT(0, c->redis.db);
    }
    sl_config_unref(c);
    c = LOAD_OK(LISTEN "redis: {url: \"redis://admin@cache.local:7000/15\"}\n" ROUTE);
    if (c) {
        CHECK_STR("admin", c->redis.username);
        CHECK_STR(NULL, c->redis.password);
        CHECK_INT(7000, c->redis.port);
        CHECK_INT(15, c->redis.db);
    }
    sl_config_unref(c);
    EXPECT_ERRORS(LISTEN "redis:\n  url: rediss://h\n" ROUTE, "t.yaml:3: redis.url: URL must start with redis://");
    EXPECT_ERRORS(LISTEN "redis:\n  url: redis://h:0\n" ROUTE, "t.yaml:3: redis.url: invalid port \"0\" (expected 1..65535)");
    EXPECT_ERRORS(LISTEN "redis:\n  url: redis://h/x\n" ROUTE, "t.yaml:3: redis.url: database \"x\" is not a number");
    EXPECT_ERRORS(LISTEN "redis:\n  url: redis://h?db=1\n" ROUTE,
                  "t.yaml:3: redis.url: URL must not have a query or fragment");
    EXPECT_ERRORS(LISTEN "redis:\n  url: redis://u:%zz@h\n" ROUTE, "t.yaml:3: redis.url: invalid %-escape in the password");
    EXPECT_ERRORS(LISTEN "redis:\n  url: redis://:6379\n" ROUTE, "t.yaml:3: redis.url: missing host");
    EXPECT_ERRORS(LISTEN "redis:\n  connect_timeout: 0ms\n" ROUTE,
                  "t.yaml:3: redis.connect_timeout: must be at least 1ms", "t.yaml:3: redis.url: missing required key");
}

static void test_upstream_errors(void)
{
    EXPECT_ERRORS(LISTEN "upstreams:\n  b:\n    balance: fastest\n    targets:\n"
                         "      - http://h/api\n      - {url: http://h2, weight: 0}\n      - {url: http://h3, weight: 1001}\n"
                         "      - ftp://h\n      - http://h:70000\n      - {weight: 2}\n      - http://u@h\n"
                         "      - https://[::1]:8443\n      - HTTP://H\n      - http://h?x=1\n      - http://\n"
                         "      - [http://h]\n" ROUTE,
                  "t.yaml:4: upstreams.b.balance: unknown value \"fastest\" (expected round_robin, least_conn, hash, ewma)",
                  "t.yaml:6: upstreams.b.targets[0]: \"http://h/api\" must not have a path, query or fragment",
                  "t.yaml:7: upstreams.b.targets[1].weight: must be between 1 and 1000, got 0",
                  "t.yaml:8: upstreams.b.targets[2].weight: must be between 1 and 1000, got 1001",
                  "t.yaml:9: upstreams.b.targets[3]: \"ftp://h\" is not an http:// or https:// URL",
                  "t.yaml:10: upstreams.b.targets[4]: invalid port \"70000\" (expected 1..65535)",
                  "t.yaml:11: upstreams.b.targets[5].url: missing required key",
                  "t.yaml:12: upstreams.b.targets[6]: \"http://u@h\" must not contain user info",
                  "t.yaml:15: upstreams.b.targets[9]: \"http://h?x=1\" must not have a path, query or fragment",
                  "t.yaml:16: upstreams.b.targets[10]: missing host",
                  "t.yaml:17: upstreams.b.targets[11]: expected a URL like \"http://127.0.0.1:9001\", got a list");
    EXPECT_ERRORS(LISTEN "upstreams:\n  b:\n    targets: []\n  c:\n    targets: [http://h, \"http://h:80/\"]\n"
                         "  d: http://h\n  route:x: {targets: [http://h]}\n" ROUTE,
                  "t.yaml:4: upstreams.b.targets: must not be empty",
                  "t.yaml:6: upstreams.c.targets[1]: duplicate target h:80 (use weight instead)",
                  "t.yaml:7: upstreams.d: expected a mapping, got a string",
                  "t.yaml:8: upstreams.route:x: upstream names must not start with \"route:\"");
    EXPECT_ERRORS(LISTEN "upstreams:\n  b:\n    targets: [http://h]\n    hash_on: ip\n  c:\n    targets: [http://h]\n"
                         "    balance: hash\n    hash_on: {header: X, cookie: y}\n  d:\n    targets: [http://h]\n"
                         "    balance: hash\n    hash_on: uri\n  e:\n    targets: [http://h]\n    balance: hash\n"
                         "    hash_on: {query: q}\n" ROUTE,
                  "t.yaml:5: upstreams.b.hash_on: only allowed with balance: hash",
                  "t.yaml:9: upstreams.c.hash_on: expected ip, {header: NAME} or {cookie: NAME}",
                  "t.yaml:13: upstreams.d.hash_on: unknown value \"uri\" (expected ip, {header: NAME}, {cookie: NAME})",
                  "t.yaml:17: upstreams.e.hash_on.query: unknown key");
    EXPECT_ERRORS(LISTEN "upstreams:\n  b:\n    targets: [http://h]\n    host_header: \"\"\n"
                         "    tls: {verify: maybe, ca_file: /nonexistent/ca.pem, sni: \"\"}\n"
                         "    keepalive: {idle_timeout: 0s, max_idle: -1}\n"
                         "    health: {max_fails: -1, open_time: soon, active: {path: health, healthy: 0, "
                         "statuses: [99, 600]}}\n" ROUTE,
                  "t.yaml:5: upstreams.b.host_header: must not be empty",
                  "t.yaml:6: upstreams.b.tls.verify: expected true or false, got \"maybe\"",
                  "t.yaml:6: upstreams.b.tls.ca_file: cannot read \"/nonexistent/ca.pem\": No such file or directory",
                  "t.yaml:6: upstreams.b.tls.sni: must not be empty",
                  "t.yaml:7: upstreams.b.keepalive.idle_timeout: must be at least 1ms",
                  "t.yaml:7: upstreams.b.keepalive.max_idle: must be between 0 and 10000, got -1",
                  "t.yaml:8: upstreams.b.health.max_fails: must be between 0 and 1000, got -1",
                  "t.yaml:8: upstreams.b.health.open_time: invalid duration \"soon\" (expected e.g. 250ms, 5s, 1.5s, 2m, 1h)",
                  "t.yaml:8: upstreams.b.health.active.path: must start with \"/\"",
                  "t.yaml:8: upstreams.b.health.active.healthy: must be between 1 and 1000, got 0",
                  "t.yaml:8: upstreams.b.health.active.statuses[0]: must be between 100 and 599, got 99",
                  "t.yaml:8: upstreams.b.health.active.statuses[1]: must be between 100 and 599, got 600");
}

static void test_upstream_variants(void)
{
    sl_config_t *c = LOAD_OK(LISTEN "upstreams:\n  a:\n    targets: [\"https://[::1]\", HTTP://Example.COM:8080/]\n"
                                    "    balance: hash\n    hash_on: {cookie: SID}\n    host_header: target\n"
                                    "  b:\n    targets: [http://h]\n    balance: ewma\n    host_header: preserve\n"
                                    "    keepalive: {max_idle: 0}\n    health: {max_fails: 0}\n"
                                    "  c:\n    targets: [http://h]\n    balance: hash\n    hash_on: ip\n"
                                    "routes:\n  - {name: r, upstream: a}\n");
    if (c) {
        sl_upstream_t *a = &c->upstreams[0], *b = &c->upstreams[1];
        CHECK_STR("::1", a->targets[0].host);
        CHECK_INT(443, a->targets[0].port);
        CHECK_INT(true, a->targets[0].tls);
        CHECK_STR("[::1]:443", a->targets[0].name);
        CHECK_STR("Example.COM", a->targets[1].host);
        CHECK_INT(8080, a->targets[1].port);
        CHECK_INT(false, a->targets[1].tls);
        CHECK_INT(SL_HASH_COOKIE, a->hash_on);
        CHECK_STR("SID", a->hash_key);
        CHECK_INT(SL_HOST_TARGET, a->host_header);
        CHECK_INT(SL_BALANCE_EWMA, b->balance);
        CHECK_INT(SL_HOST_PRESERVE, b->host_header);
        CHECK_INT(0, b->keepalive_max_idle);
        CHECK_INT(0, b->max_fails);
        CHECK_INT(SL_HASH_IP, c->upstreams[2].hash_on);
        CHECK_TRUE(c->routes[0].upstream == a);
    }
    sl_config_unref(c);
}

static void test_retries(void)
{
    EXPECT_ERRORS(LISTEN "upstreams:\n  b:\n    targets: [http://h]\n    retries:\n      attempts: 11\n"
                         "      on_status: [502, 600, x]\n      budget: 120%\n      backoff: -1ms\n"
                         "      non_idempotent: 1\n" ROUTE,
                  "t.yaml:6: upstreams.b.retries.attempts: must be between 0 and 10, got 11",
                  "t.yaml:7: upstreams.b.retries.on_status[1]: must be between 100 and 599, got 600",
                  "t.yaml:7: upstreams.b.retries.on_status[2]: expected an integer, got \"x\"",
                  "t.yaml:8: upstreams.b.retries.budget: invalid budget \"120%\" (expected 0% to 100%)",
                  "t.yaml:9: upstreams.b.retries.backoff: invalid duration \"-1ms\" (expected e.g. 250ms, 5s, 1.5s, 2m, 1h)",
                  "t.yaml:10: upstreams.b.retries.non_idempotent: expected true or false, got \"1\"");
    EXPECT_ERRORS(LISTEN "upstreams:\n  b:\n    targets: [http://h]\n    retries:\n"
                         "      on_status: [500, 501, 502, 503, 504, 505, 506, 507, 508, 509, 510, 511, 512, 513, 514, "
                         "515, 516]\n" ROUTE,
                  "t.yaml:6: upstreams.b.retries.on_status: at most 16 statuses are allowed, got 17");
    EXPECT_ERRORS(LISTEN "upstreams:\n  b:\n    targets: [http://h]\n    retries: {backoff: 2s}\n"
                         "routes:\n  - name: r\n    upstream: b\n    retries: {max_backoff: 1s}\n",
                  "t.yaml:5: upstreams.b.retries: max_backoff (1000ms) is less than backoff (2000ms)",
                  "t.yaml:9: routes[0].retries: max_backoff (1000ms) is less than backoff (2000ms)");

    /* a route's retries take what they leave out from the upstream */
    sl_config_t *c = LOAD_OK(LISTEN "upstreams:\n  b:\n    targets: [http://h]\n"
                                    "    retries: {attempts: 3, on_status: [503], budget: 7}\n"
                                    "routes:\n  - name: r\n    upstream: b\n    retries: {budget: 100%, backoff: 0}\n"
                                    "  - name: s\n    plugins: [p]\n    retries: {attempts: 4}\n");
    if (c) {
        sl_retries_t *r = &c->routes[0].retries;
        CHECK_INT(true, r->set);
        CHECK_INT(3, r->attempts);
        CHECK_INT(0, r->backoff_ms);
        CHECK_INT(1000, r->max_backoff_ms);
        CHECK_INT(1, r->n_on_status);
        CHECK_INT(503, r->on_status[0]);
        CHECK_INT(100, r->budget_percent);
        CHECK_INT(7, c->upstreams[0].retries.budget_percent);
        /* without an upstream the rest are the defaults */
        r = &c->routes[1].retries;
        CHECK_INT(true, r->set);
        CHECK_INT(4, r->attempts);
        CHECK_INT(25, r->backoff_ms);
        CHECK_INT(20, r->budget_percent);
        CHECK_INT(0, r->n_on_status);
    }
    sl_config_unref(c);
}

static void test_inline_upstreams(void)
{
    sl_config_t *c = LOAD_OK(LISTEN "upstreams:\n  named: {targets: [http://n]}\n"
                                    "routes:\n  - {name: a, upstream: \"https://api.example.com\"}\n"
                                    "  - {name: b, upstream: named}\n  - {name: c, upstream: \"http://[::1]:9001/\"}\n");
    if (c) {
        CHECK_INT(3, c->n_upstreams);
        CHECK_STR("named", c->upstreams[0].name);
        CHECK_INT(false, c->upstreams[0].inline_url);
        sl_upstream_t *a = &c->upstreams[1], *cc = &c->upstreams[2];
        CHECK_STR("route:a", a->name);
        CHECK_INT(1, a->index);
        CHECK_INT(true, a->inline_url);
        CHECK_INT(1, a->n_targets);
        CHECK_STR("api.example.com", a->targets[0].host);
        CHECK_INT(443, a->targets[0].port);
        CHECK_INT(true, a->targets[0].tls);
        CHECK_INT(1, a->targets[0].weight);
        CHECK_STR("api.example.com:443", a->targets[0].name);
        CHECK_INT(1000, a->timeouts.connect_ms);
        CHECK_STR("route:c", cc->name);
        CHECK_INT(2, cc->index);
        CHECK_STR("[::1]:9001", cc->targets[0].name);
        CHECK_TRUE(c->routes[0].upstream == a);
        CHECK_TRUE(c->routes[1].upstream == &c->upstreams[0]);
        CHECK_TRUE(c->routes[2].upstream == cc);
    }
    sl_config_unref(c);
    EXPECT_ERRORS(LISTEN "routes:\n  - {name: a, upstream: \"http://h/v1\"}\n  - {name: b, upstream: nope}\n"
                         "  - {name: c, upstream: [x]}\n  - {name: d, upstream: \"gopher://h\"}\n",
                  "t.yaml:3: routes[0].upstream: \"http://h/v1\" must not have a path, query or fragment",
                  "t.yaml:4: routes[1].upstream: unknown upstream \"nope\"",
                  "t.yaml:5: routes[2].upstream: expected an upstream name or URL, got a list",
                  "t.yaml:6: routes[3].upstream: \"gopher://h\" is not an http:// or https:// URL");
}

static void test_route_match(void)
{
    sl_config_t *c = LOAD_OK(LISTEN "routes:\n  - name: r\n    upstream: http://h\n    match:\n"
                                    "      hosts: API.Example.COM\n      methods: delete\n      paths: /*\n"
                                    "      headers: {X-A: \"~^a\", X-B: \"~\\\\~\"}\n");
    if (c) {
        sl_route_t *r = &c->routes[0];
        CHECK_INT(1, r->n_hosts);
        CHECK_STR("api.example.com", r->hosts[0]);
        CHECK_INT(SL_M_DELETE, r->methods);
        CHECK_INT(1, r->n_paths);
        CHECK_INT(SL_PATH_PREFIX, r->paths[0].kind);
        CHECK_STR("/", r->paths[0].value);
        CHECK_STR("^a", r->headers[0].value);
        CHECK_INT(true, r->headers[0].is_regex);
        CHECK_STR("\\~", r->headers[1].value);
    }
    sl_config_unref(c);
    EXPECT_ERRORS(LISTEN "routes:\n  - name: r\n    upstream: http://h\n    match:\n"
                         "      hosts: [\"foo.*.com\", \"*\", \"a b\", \"\"]\n"
                         "      methods: [GET, FETCH, get]\n"
                         "      paths: [api, /a*, /a/*/b, \"~ ^/users/[0-9+$\", \"~\", \"~ (\", /ok/*]\n"
                         "      headers: {X-Env: prod, x-env: test, \"Bad Name\": 1, X-R: \"~ a{1\", X-E: \"\"}\n",
                  "t.yaml:6: routes[0].match.hosts[0]: invalid host \"foo.*.com\" (expected a name, or \"*.\" and a name)",
                  "t.yaml:6: routes[0].match.hosts[1]: invalid host \"*\" (expected a name, or \"*.\" and a name)",
                  "t.yaml:6: routes[0].match.hosts[2]: invalid host \"a b\" (expected a name, or \"*.\" and a name)",
                  "t.yaml:6: routes[0].match.hosts[3]: must not be empty",
                  "t.yaml:7: routes[0].match.methods[1]: unknown method \"FETCH\" (expected GET, HEAD, POST, PUT, "
                  "DELETE, PATCH, OPTIONS, CONNECT, TRACE)",
                  "t.yaml:8: routes[0].match.paths[0]: must start with \"/\" (or \"~ \" for a regex)",
                  "t.yaml:8: routes[0].match.paths[1]: \"*\" is only allowed at the end, as \"/*\"",
                  "t.yaml:8: routes[0].match.paths[2]: \"*\" is only allowed at the end, as \"/*\"",
                  "t.yaml:8: routes[0].match.paths[3]: regex does not compile: Unmatched [, [^, [:, [., or [=",
                  "t.yaml:8: routes[0].match.paths[4]: empty regex after \"~\"",
                  "t.yaml:8: routes[0].match.paths[5]: regex does not compile: Unmatched ( or \\(",
                  "t.yaml:9: routes[0].match.headers.x-env: duplicate header (names are case-insensitive)",
                  "t.yaml:9: routes[0].match.headers.Bad Name: invalid header name",
                  "t.yaml:9: routes[0].match.headers.X-R: regex does not compile: Unmatched \\{",
                  "t.yaml:9: routes[0].match.headers.X-E: must not be empty");
    EXPECT_ERRORS(LISTEN "routes:\n  - name: r\n    upstream: http://h\n    match: [x]\n    max_body_size: big\n"
                         "    timeouts: {read: 0}\n  - just-a-string\n",
                  "t.yaml:5: routes[0].match: expected a mapping, got a list",
                  "t.yaml:6: routes[0].max_body_size: invalid size \"big\" (expected e.g. 512, 16kb, 8mb, 1gb)",
                  "t.yaml:7: routes[0].timeouts.read: must be at least 1ms",
                  "t.yaml:8: routes[1]: expected a mapping, got a string");
}

static void test_plugins(void)
{
    sl_config_t *c = LOAD_OK(LISTEN "plugins:\n  - a:\n  - b\n  - c: ~\n  - d: {x: [1, -2, 3.5, null, ~, '', yes, True,"
                                    " \"true\", '7', 9223372036854775807, -9223372036854775808, 0x1F, 0o17, 1e3,"
                                    " .5, 007]}\n  - e:\n      s: |\n        block\n" ROUTE);
    if (c) {
        CHECK_INT(5, c->n_plugins);
        CHECK_STR("a", c->plugins[0].name);
        CHECK_JSON("{}", c->plugins[0].conf);
        CHECK_INT(3, c->plugins[0].line);
        CHECK_STR("b", c->plugins[1].name);
        CHECK_JSON("{}", c->plugins[1].conf);
        CHECK_INT(4, c->plugins[1].line);
        CHECK_JSON("{}", c->plugins[2].conf);
        CHECK_JSON("{\"x\":[1,-2,3.5,null,null,\"\",\"yes\",true,\"true\",\"7\",9223372036854775807,"
                   "-9223372036854775808,31,15,1000.0,0.5,7]}",
                   c->plugins[3].conf);
        CHECK_JSON("{\"s\":\"block\\n\"}", c->plugins[4].conf);
    }
    sl_config_unref(c);
    EXPECT_ERRORS(LISTEN "plugins:\n  - a: 1\n  - {b: {}, c: {}}\n  - [x]\n  - \"\": {}\n  - d: {n: 9223372036854775808}\n"
                         "  - e: {f: 1e999}\n  - ~\nroutes:\n  - name: r\n    upstream: http://h\n    plugins: {a: {}}\n",
                  "t.yaml:3: plugins[0].a: expected a mapping (the plugin's config), got a string",
                  "t.yaml:4: plugins[1]: expected a plugin name mapped to its config, e.g. \"request-id: {}\"",
                  "t.yaml:5: plugins[2]: expected a plugin name mapped to its config, e.g. \"request-id: {}\"",
                  "t.yaml:6: plugins[3]: plugin name must not be empty",
                  "t.yaml:7: plugins[4].d.n: integer 9223372036854775808 does not fit in 64 bits",
                  "t.yaml:8: plugins[5].e.f: number 1e999 is out of range",
                  "t.yaml:9: plugins[6]: expected a plugin name mapped to its config, e.g. \"request-id: {}\"",
                  "t.yaml:13: routes[0].plugins: expected a list, got a mapping");
}

static void test_consumers(void)
{
    sl_config_t *c = LOAD_OK(LISTEN "consumers:\n  - {name: alice, limit: 10, vip: true, note: ~}\n"
                                    "  - {name: \"007\", ratio: 0.5}\n" ROUTE);
    if (c)
        CHECK_JSON("[{\"limit\":10,\"name\":\"alice\",\"note\":null,\"vip\":true},{\"name\":\"007\",\"ratio\":0.5}]",
                   c->consumers);
    sl_config_unref(c);
    EXPECT_ERRORS(LISTEN "consumers:\n  - {name: alice}\n  - {tenant: x}\n  - {name: 7}\n  - {name: alice}\n"
                         "  - bob\n  - {name: \"\"}\n  - {name: [a]}\n" ROUTE,
                  "t.yaml:4: consumers[1].name: missing required key",
                  "t.yaml:5: consumers[2].name: expected a non-empty string, got a string",
                  "t.yaml:6: consumers[3].name: duplicate consumer name \"alice\" (first at line 3)",
                  "t.yaml:7: consumers[4]: expected a mapping, got a string",
                  "t.yaml:8: consumers[5].name: expected a non-empty string, got an empty string",
                  "t.yaml:9: consumers[6].name: expected a non-empty string, got a list");
    EXPECT_ERRORS(LISTEN "consumers: {alice: {}}\n" ROUTE, "t.yaml:2: consumers: expected a list, got a mapping");
}

static void test_aliases(void)
{
    sl_config_t *c = LOAD_OK(LISTEN "upstreams:\n  a: &up\n    targets: [http://h]\n    balance: least_conn\n"
                                    "  b: *up\n"
                                    "routes:\n  - name: r\n    upstream: b\n    plugins:\n      - p: &conf {k: v}\n"
                                    "      - q: *conf\n");
    if (c) {
        CHECK_INT(2, c->n_upstreams);
        CHECK_STR("b", c->upstreams[1].name);
        CHECK_INT(SL_BALANCE_LEAST_CONN, c->upstreams[1].balance);
        CHECK_STR("h:80", c->upstreams[1].targets[0].name);
        CHECK_JSON("{\"k\":\"v\"}", c->routes[0].plugins[1].conf);
    }
    sl_config_unref(c);
    EXPECT_ERRORS(LISTEN "base: &b {workers: 1}\n<<: *b\n" ROUTE,
                  "t.yaml:3: merge keys (<<) are not supported; repeat the keys instead", "t.yaml:2: base: unknown key");
    EXPECT_ERRORS(LISTEN "x: &a [1, *a]\n" ROUTE, "t.yaml:2: x[1]: alias refers to a node that contains it");
    /* each level doubles: 2^20 nodes would be built without the cap */
    char *laughs = strdup(LISTEN "l0: &l0 [a, a]\n");
    for (int i = 1; i <= 20; i++) {
        char *next;
        if (asprintf(&next, "%sl%d: &l%d [*l%d, *l%d]\n", laughs, i, i, i - 1, i - 1) < 0)
            abort();
        free(laughs);
        laughs = next;
    }
    sl_errors_t errs = {0};
    sl_config_t *bomb = sl_config_load_string("t.yaml", laughs, &errs);
    CHECK_TRUE(bomb == NULL);
    CHECK_INT(1, errs.n);
    CHECK_TRUE(errs.n == 1 && strstr(errs.items[0], ": aliases expand to too many nodes") != NULL);
    sl_errors_free(&errs);
    free(laughs);
}

static void test_deep_nesting(void)
{
    char *yaml = malloc(2000);
    strcpy(yaml, LISTEN "x: ");
    for (int i = 0; i < 200; i++)
        strcat(yaml, "[");
    for (int i = 0; i < 200; i++)
        strcat(yaml, "]");
    strcat(yaml, "\n");
    char want[1024] = "t.yaml:2: x";
    for (int i = 0; i < 128; i++)
        strcat(want, "[0]");
    strcat(want, ": nested too deeply (more than 128 levels)");
    EXPECT_ERRORS(yaml, want);
    free(yaml);
}

static void test_many_errors_at_once(void)
{
    EXPECT_ERRORS("listen: 127.0.0.1:0\n"
                  "workers: none\n"
                  "upstreams:\n"
                  "  backend:\n"
                  "    targets: [http://127.0.0.1:9001]\n"
                  "    balance: fastest\n"
                  "routes:\n"
                  "  - name: api\n"
                  "    upstrem: backend\n"
                  "    match: {paths: [\"~ ^/users/[0-9+$\"]}\n"
                  "  - name: api\n"
                  "    upstream: missing\n",
                  "t.yaml:1: listen: port 0 out of range (1..65535)",
                  "t.yaml:2: workers: expected a positive integer or \"auto\", got \"none\"",
                  "t.yaml:6: upstreams.backend.balance: unknown value \"fastest\" (expected round_robin, least_conn, "
                  "hash, ewma)",
                  "t.yaml:9: routes[0].upstrem: unknown key",
                  "t.yaml:10: routes[0].match.paths[0]: regex does not compile: Unmatched [, [^, [:, [., or [=",
                  "t.yaml:8: routes[0]: needs an upstream, or plugins that answer the request",
                  "t.yaml:12: routes[1].upstream: unknown upstream \"missing\"",
                  "t.yaml:11: routes[1].name: duplicate route name \"api\" (first at line 8)");
}

static void test_load_file_errors(void)
{
    sl_errors_t errs = {0};
    CHECK_TRUE(sl_config_load("/nonexistent/sluice.yaml", &errs) == NULL);
    CHECK_INT(1, errs.n);
    if (errs.n == 1)
        CHECK_STR("/nonexistent/sluice.yaml: cannot read: No such file or directory", errs.items[0]);
    sl_errors_free(&errs);
    CHECK_TRUE(sl_config_load("/tmp", &errs) == NULL);
    CHECK_INT(1, errs.n);
    if (errs.n == 1)
        CHECK_STR("/tmp: cannot read: Is a directory", errs.items[0]);
    sl_errors_free(&errs);

    char *path = temp_file(LISTEN "routes: 5\n");
    CHECK_TRUE(sl_config_load(path, &errs) == NULL);
    CHECK_INT(1, errs.n);
    char *want;
    if (asprintf(&want, "%s:2: routes: expected a list, got a string", path) < 0)
        abort();
    if (errs.n == 1)
        CHECK_STR(want, errs.items[0]);
    free(want);
    sl_errors_free(&errs);
    unlink(path);
    free(path);

    /* errors accumulate: a caller may collect from several loads */
    sl_errors_add(&errs, "first %d", 1);
    CHECK_TRUE(sl_config_load_string("t.yaml", "listen: 1\n", &errs) == NULL);
    CHECK_INT(2, errs.n);
    CHECK_STR("first 1", errs.items[0]);
    CHECK_STR("t.yaml:1: routes: missing required key", errs.items[1]);
    sl_errors_free(&errs);
    CHECK_INT(0, errs.n);
    CHECK_TRUE(errs.items == NULL);
    sl_errors_free(&errs);
}

int main(void)
{
    test_full_example();
    test_defaults();
    test_ref_unref();
    test_durations();
    test_sizes();
    test_method_bits();
    test_duration_and_size_errors();
    test_unknown_keys();
    test_required_keys();
    test_yaml_syntax_errors();
    test_duplicate_keys();
    test_duplicate_route_names();
    test_env_substitution();
    test_listen();
    test_workers_log_dirs();
    test_redis();
    test_upstream_errors();
    test_upstream_variants();
    test_retries();
    test_inline_upstreams();
    test_route_match();
    test_plugins();
    test_consumers();
    test_aliases();
    test_deep_nesting();
    test_many_errors_at_once();
    test_load_file_errors();
    return check_summary();
}
