/* Unit tests for core/http1.c: request heads, response heads, chunked bodies.
 * Every parse runs on a heap copy of exactly the offered bytes, so ASan or
 * valgrind turns any read past `len` into a failure. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "http1.h"

static char *exact_copy(const char *s, size_t n)
{
    char *p = malloc(n ? n : 1);
    if (!p) {
        perror("malloc");
        exit(2);
    }
    memcpy(p, s, n);
    return p;
}

#define MAX_URI 8192
#define MAX_HEADER 32768

/* Heads are large (128 headers); keep them off the stack. */
static sl_http_request_head_t req;
static sl_http_response_head_t resp;

static sl_http_result_t parse_req_n(const char *raw, size_t n, size_t max_uri, size_t max_header, size_t *consumed)
{
    char *buf = exact_copy(raw, n);
    sl_http_result_t r = sl_http_parse_request_head(buf, n, max_uri, max_header, &req, consumed);
    free(buf);
    return r;
}

static sl_http_result_t parse_resp_n(const char *raw, size_t n, size_t max_header, size_t *consumed)
{
    char *buf = exact_copy(raw, n);
    sl_http_result_t r = sl_http_parse_response_head(buf, n, max_header, &resp, consumed);
    free(buf);
    return r;
}

/* ---- valid requests ---- */

typedef struct {
    const char *name;
    const char *raw;
    size_t body_len;          /* bytes after the head in raw */
    const char *method, *target, *path, *query;
    int minor;
    int n_headers;
    long long content_length;
    bool chunked, keep_alive, expect_continue;
    const char *host;
} valid_req_t;

static const valid_req_t valid_requests[] = {
    {"simple get", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 0,
     "GET", "/", "/", NULL, 1, 1, -1, false, true, false, "a"},
    {"post with body and query", "POST /api/x?y=1&z HTTP/1.1\r\nHost: api.test\r\nContent-Length: 5\r\n\r\nhello", 5,
     "POST", "/api/x?y=1&z", "/api/x", "y=1&z", 1, 2, 5, false, true, false, "api.test"},
    {"delete", "DELETE /items/7 HTTP/1.1\r\nHost: h\r\n\r\n", 0,
     "DELETE", "/items/7", "/items/7", NULL, 1, 1, -1, false, true, false, "h"},
    {"extension method", "M-SEARCH /x HTTP/1.1\r\nHost: h\r\n\r\n", 0,
     "M-SEARCH", "/x", "/x", NULL, 1, 1, -1, false, true, false, "h"},
    {"patch", "PATCH /p HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n", 0,
     "PATCH", "/p", "/p", NULL, 1, 2, 0, false, true, false, "h"},
    {"absolute form", "GET http://example.com:8080/p/q?x=1 HTTP/1.1\r\nHost: other\r\n\r\n", 0,
     "GET", "http://example.com:8080/p/q?x=1", "/p/q", "x=1", 1, 1, -1, false, true, false, "example.com:8080"},
    {"absolute form https no path", "GET https://h HTTP/1.1\r\nHost: h\r\n\r\n", 0,
     "GET", "https://h", "/", NULL, 1, 1, -1, false, true, false, "h"},
    {"absolute form upper scheme query only", "GET HTTP://h?q HTTP/1.1\r\nHost: h\r\n\r\n", 0,
     "GET", "HTTP://h?q", "/", "q", 1, 1, -1, false, true, false, "h"},
    {"absolute form ipv6", "GET http://[::1]:80/a HTTP/1.1\r\nHost: x\r\n\r\n", 0,
     "GET", "http://[::1]:80/a", "/a", NULL, 1, 1, -1, false, true, false, "[::1]:80"},
    {"options star", "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", 0,
     "OPTIONS", "*", "*", NULL, 1, 1, -1, false, true, false, "h"},
    {"empty query", "GET /p? HTTP/1.1\r\nHost: h\r\n\r\n", 0,
     "GET", "/p?", "/p", "", 1, 1, -1, false, true, false, "h"},
    {"double slash path", "GET //a//b HTTP/1.1\r\nHost: h\r\n\r\n", 0,
     "GET", "//a//b", "//a//b", NULL, 1, 1, -1, false, true, false, "h"},
    {"http/1.0 no host", "GET /old HTTP/1.0\r\n\r\n", 0,
     "GET", "/old", "/old", NULL, 0, 0, -1, false, false, false, NULL},
    {"http/1.0 keep-alive", "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", 0,
     "GET", "/", "/", NULL, 0, 1, -1, false, true, false, NULL},
    {"http/1.0 keep-alive and close", "GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n", 0,
     "GET", "/", "/", NULL, 0, 2, -1, false, false, false, NULL},
    {"connection close", "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", 0,
     "GET", "/", "/", NULL, 1, 2, -1, false, false, false, "h"},
    {"connection list with close", "GET / HTTP/1.1\r\nHost: h\r\nConnection: Keep-Alive, CLOSE\r\n\r\n", 0,
     "GET", "/", "/", NULL, 1, 2, -1, false, false, false, "h"},
    {"connection closed is not close", "GET / HTTP/1.1\r\nHost: h\r\nConnection: closed\r\n\r\n", 0,
     "GET", "/", "/", NULL, 1, 2, -1, false, true, false, "h"},
    {"expect continue", "PUT /u HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n", 0,
     "PUT", "/u", "/u", NULL, 1, 3, 3, false, true, true, "h"},
    {"expect continue ignored on 1.0", "PUT /u HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n", 0,
     "PUT", "/u", "/u", NULL, 0, 2, 3, false, false, false, NULL},
    {"other expectation", "PUT /u HTTP/1.1\r\nHost: h\r\nExpect: something\r\n\r\n", 0,
     "PUT", "/u", "/u", NULL, 1, 2, -1, false, true, false, "h"},
    {"chunked", "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 15,
     "POST", "/c", "/c", NULL, 1, 2, -1, true, true, false, "h"},
    {"bare lf", "GET /lf HTTP/1.1\nHost: h\nX-A: 1\n\n", 0,
     "GET", "/lf", "/lf", NULL, 1, 2, -1, false, true, false, "h"},
    {"mixed line ends", "GET /m HTTP/1.1\r\nHost: h\nX-A: 1\r\n\n", 0,
     "GET", "/m", "/m", NULL, 1, 2, -1, false, true, false, "h"},
    {"leading empty lines", "\r\n\n\r\nGET /after HTTP/1.1\r\nHost: h\r\n\r\n", 0,
     "GET", "/after", "/after", NULL, 1, 1, -1, false, true, false, "h"},
    {"pipelined next request", "GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n", 28,
     "GET", "/1", "/1", NULL, 1, 1, -1, false, true, false, "h"},
    {"content-length list", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 7 , 7,7\r\n\r\n", 0,
     "POST", "/", "/", NULL, 1, 2, 7, false, true, false, "h"},
    {"content-length repeated", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 7\r\ncontent-length: 007\r\n\r\n", 0,
     "POST", "/", "/", NULL, 1, 3, 7, false, true, false, "h"},
    {"content-length 18 digits", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 999999999999999999\r\n\r\n", 0,
     "POST", "/", "/", NULL, 1, 2, 999999999999999999LL, false, true, false, "h"},
    {"host ipv6 with port", "GET / HTTP/1.1\r\nHost: [2001:db8::1]:8443\r\n\r\n", 0,
     "GET", "/", "/", NULL, 1, 1, -1, false, true, false, "[2001:db8::1]:8443"},
    {"host pct-encoded and empty port", "GET / HTTP/1.1\r\nHost: a%2Db.example:\r\n\r\n", 0,
     "GET", "/", "/", NULL, 1, 1, -1, false, true, false, "a%2Db.example:"},
    {"target with visible punctuation", "GET /a;b=c/%20~!$&'()*+,:@[]#f HTTP/1.1\r\nHost: h\r\n\r\n", 0,
     "GET", "/a;b=c/%20~!$&'()*+,:@[]#f", "/a;b=c/%20~!$&'()*+,:@[]#f", NULL, 1, 1, -1, false, true, false, "h"},
};

static void test_valid_requests(void)
{
    for (size_t i = 0; i < sizeof valid_requests / sizeof valid_requests[0]; i++) {
        const valid_req_t *t = &valid_requests[i];
        current_case = t->name;
        size_t len = strlen(t->raw);
        size_t consumed = 12345;
        char *buf = exact_copy(t->raw, len);
        CHECK(SL_HTTP_DONE, sl_http_parse_request_head(buf, len, MAX_URI, MAX_HEADER, &req, &consumed));
        CHECK(len - t->body_len, consumed);
        CHECK(t->minor, req.minor);
        CHECK(t->n_headers, req.n_headers);
        CHECK(t->content_length, req.content_length);
        CHECK(t->chunked, req.chunked);
        CHECK(t->keep_alive, req.keep_alive);
        CHECK(t->expect_continue, req.expect_continue);
        CHECK_MEM(t->method, req.method, req.method_len);
        CHECK_MEM(t->target, req.target, req.target_len);
        CHECK_MEM(t->path, req.path, req.path_len);
        CHECK_MEM(t->query, req.query, req.query_len);
        CHECK_MEM(t->host, req.host, req.host_len);

        /* a caller that copies exactly the head and re-parses it gets the same */
        size_t head_len = consumed, again = 0;
        CHECK(SL_HTTP_DONE, sl_http_parse_request_head(buf, head_len, MAX_URI, MAX_HEADER, &req, &again));
        CHECK(head_len, again);
        free(buf);
    }
}

static void test_header_values(void)
{
    current_case = "header values";
    const char *raw = "GET / HTTP/1.1\r\nHost: h\r\nX-Trim: \t v a l \t \r\nX-Empty:\r\nX-Blank:   \r\n"
                      "X-Obs: caf\xc3\xa9\r\nX-Tab:a\tb\r\nX-Colon: a:b\r\n\r\n";
    size_t len = strlen(raw), consumed = 0;
    char *buf = exact_copy(raw, len);
    CHECK(SL_HTTP_DONE, sl_http_parse_request_head(buf, len, MAX_URI, MAX_HEADER, &req, &consumed));
    CHECK(len, consumed);
    CHECK(7, req.n_headers);
    const char *names[] = {"Host", "X-Trim", "X-Empty", "X-Blank", "X-Obs", "X-Tab", "X-Colon"};
    const char *values[] = {"h", "v a l", "", "", "caf\xc3\xa9", "a\tb", "a:b"};
    for (int i = 0; i < 7 && i < req.n_headers; i++) {
        CHECK_MEM(names[i], req.headers[i].name, req.headers[i].name_len);
        CHECK_MEM(values[i], req.headers[i].value, req.headers[i].value_len);
    }
    const sl_http_header_t *h = sl_http_find_header(req.headers, req.n_headers, "x-TRIM");
    CHECK(1, h == &req.headers[1]);
    CHECK(1, sl_http_find_header(req.headers, req.n_headers, "X-Missing") == NULL);
    CHECK(1, sl_http_find_header(req.headers, 0, "Host") == NULL);
    CHECK(1, sl_http_find_header(req.headers, req.n_headers, "X-Tri") == NULL);
    free(buf);

    current_case = "find first of duplicates";
    raw = "GET / HTTP/1.1\r\nHost: h\r\nX-D: 1\r\nx-d: 2\r\n\r\n";
    len = strlen(raw);
    buf = exact_copy(raw, len);
    CHECK(SL_HTTP_DONE, sl_http_parse_request_head(buf, len, MAX_URI, MAX_HEADER, &req, &consumed));
    h = sl_http_find_header(req.headers, req.n_headers, "X-D");
    CHECK(1, h == &req.headers[1]);
    CHECK_MEM("1", h->value, h->value_len);
    free(buf);
}

/* ---- malformed requests ---- */

typedef struct {
    const char *name;
    const char *raw;
    size_t len;           /* from sizeof: some inputs hold a NUL */
    sl_http_result_t expected;
} bad_req_t;

#define BAD(name, raw, code) {name, raw, sizeof(raw) - 1, code}

#define R400 SL_HTTP_BAD_REQUEST
#define R501 SL_HTTP_NOT_IMPLEMENTED
#define R505 SL_HTTP_VERSION_UNSUPPORTED

static const bad_req_t bad_requests[] = {
    BAD("invalid method char", "G@T / HTTP/1.1\r\nHost: h\r\n\r\n", R400),
    BAD("empty method", " / HTTP/1.1\r\nHost: h\r\n\r\n", R400),
    BAD("two spaces after method", "GET  / HTTP/1.1\r\nHost: h\r\n\r\n", R400),
    BAD("two spaces before version", "GET /  HTTP/1.1\r\nHost: h\r\n\r\n", R400),
    BAD("tab separator", "GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n", R400),
    BAD("space after version", "GET / HTTP/1.1 \r\nHost: h\r\n\r\n", R400),
    BAD("http/0.9 style", "GET /\r\n\r\n", R400),
    BAD("method only", "GET\r\n\r\n", R400),
    BAD("missing version", "GET / \r\nHost: h\r\n\r\n", R400),
    BAD("lowercase version", "GET / http/1.1\r\nHost: h\r\n\r\n", R400),
    BAD("version no dot", "GET / HTTP/11\r\nHost: h\r\n\r\n", R400),
    BAD("version two minor digits", "GET / HTTP/1.10\r\nHost: h\r\n\r\n", R400),
    BAD("version letter", "GET / HTTP/1.x\r\nHost: h\r\n\r\n", R400),
    BAD("http/2.0", "GET / HTTP/2.0\r\nHost: h\r\n\r\n", R505),
    BAD("http/1.2", "GET / HTTP/1.2\r\nHost: h\r\n\r\n", R505),
    BAD("http/0.9 versioned", "GET / HTTP/0.9\r\nHost: h\r\n\r\n", R505),
    BAD("target relative", "GET foo HTTP/1.1\r\nHost: h\r\n\r\n", R400),
    BAD("target star not options", "GET * HTTP/1.1\r\nHost: h\r\n\r\n", R400),
    BAD("target star lowercase options", "options * HTTP/1.1\r\nHost: h\r\n\r\n", R400),
    BAD("authority form", "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", R400),
    BAD("absolute form empty authority", "GET http:///p HTTP/1.1\r\nHost: h\r\n\r\n", R400),
    BAD("absolute form userinfo", "GET http://user@h/p HTTP/1.1\r\nHost: h\r\n\r\n", R400),
    BAD("absolute form bad port", "GET http://h:8o/p HTTP/1.1\r\nHost: h\r\n\r\n", R400),
    BAD("absolute form ftp", "GET ftp://h/p HTTP/1.1\r\nHost: h\r\n\r\n", R400),
    BAD("target obs-text", "GET /caf\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n", R400),
    BAD("target DEL", "GET /a\x7f HTTP/1.1\r\nHost: h\r\n\r\n", R400),
    BAD("target NUL", "GET /a\0b HTTP/1.1\r\nHost: h\r\n\r\n", R400),
    BAD("bare CR in request line", "GET /a\rb HTTP/1.1\r\nHost: h\r\n\r\n", R400),
    BAD("bare CR after request line", "GET / HTTP/1.1\rHost: h\r\n\r\n", R400),
    BAD("bare CR in header value", "GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n", R400),
    BAD("bare CR as blank line", "GET / HTTP/1.1\r\nHost: h\r\n\rX\r\n\r\n", R400),
    BAD("bare CR leading line", "\rGET / HTTP/1.1\r\nHost: h\r\n\r\n", R400),
    BAD("NUL in header value", "GET / HTTP/1.1\r\nHost: h\r\nX: a\0b\r\n\r\n", R400),
    BAD("NUL in header name", "GET / HTTP/1.1\r\nHost: h\r\nX\0Y: a\r\n\r\n", R400),
    BAD("control in header value", "GET / HTTP/1.1\r\nHost: h\r\nX: a\x01" "b\r\n\r\n", R400),
    BAD("DEL in header value", "GET / HTTP/1.1\r\nHost: h\r\nX: a\x7f\r\n\r\n", R400),
    BAD("space before colon", "GET / HTTP/1.1\r\nHost : h\r\n\r\n", R400),
    BAD("tab before colon", "GET / HTTP/1.1\r\nHost\t: h\r\n\r\n", R400),
    BAD("no colon", "GET / HTTP/1.1\r\nHost: h\r\nJunk\r\n\r\n", R400),
    BAD("empty name", "GET / HTTP/1.1\r\nHost: h\r\n: v\r\n\r\n", R400),
    BAD("name with separator", "GET / HTTP/1.1\r\nHost: h\r\nX(y): v\r\n\r\n", R400),
    BAD("obs-fold", "GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n", R400),
    BAD("obs-fold tab", "GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n\tb\r\n\r\n", R400),
    BAD("whitespace before first header", "GET / HTTP/1.1\r\n Host: h\r\n\r\n", R400),
    BAD("missing host on 1.1", "GET / HTTP/1.1\r\nX: y\r\n\r\n", R400),
    BAD("missing host with absolute form", "GET http://h/ HTTP/1.1\r\n\r\n", R400),
    BAD("duplicate host", "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", R400),
    BAD("duplicate host on 1.0", "GET / HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n", R400),
    BAD("empty host", "GET / HTTP/1.1\r\nHost: \r\n\r\n", R400),
    BAD("host with slash", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", R400),
    BAD("host with userinfo", "GET / HTTP/1.1\r\nHost: u@h\r\n\r\n", R400),
    BAD("host with space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", R400),
    BAD("host bad port", "GET / HTTP/1.1\r\nHost: h:8x\r\n\r\n", R400),
    BAD("host two colons", "GET / HTTP/1.1\r\nHost: h:1:2\r\n\r\n", R400),
    BAD("host bad pct", "GET / HTTP/1.1\r\nHost: a%2\r\n\r\n", R400),
    BAD("host unclosed bracket", "GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", R400),
    BAD("host empty brackets", "GET / HTTP/1.1\r\nHost: []\r\n\r\n", R400),
    BAD("host junk after bracket", "GET / HTTP/1.1\r\nHost: [::1]x\r\n\r\n", R400),
    BAD("host port only", "GET / HTTP/1.1\r\nHost: :80\r\n\r\n", R400),
    BAD("content-length letters", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5a\r\n\r\n", R400),
    BAD("content-length negative", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -5\r\n\r\n", R400),
    BAD("content-length plus", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +5\r\n\r\n", R400),
    BAD("content-length empty", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length:\r\n\r\n", R400),
    BAD("content-length hex", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x5\r\n\r\n", R400),
    BAD("content-length 19 digits", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1000000000000000000\r\n\r\n", R400),
    BAD("content-length 40 digits", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5555555555955555555555555555555555555555\r\n\r\n",
        R400),
    BAD("content-length differing list", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 6\r\n\r\n", R400),
    BAD("content-length differing lines", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
     R400),
    BAD("content-length trailing comma", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5,\r\n\r\n", R400),
    BAD("content-length leading comma", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: ,5\r\n\r\n", R400),
    BAD("content-length space separated", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5 5\r\n\r\n", R400),
    BAD("cl then te", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", R400),
    BAD("te then cl", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", R400),
    BAD("cl with unsupported te", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: gzip\r\n\r\n", R400),
    BAD("te on 1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", R400),
    BAD("unsupported te on 1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: gzip\r\n\r\n", R400),
    BAD("te gzip", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n", R501),
    BAD("te gzip chunked", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", R501),
    BAD("te chunked twice in list", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", R501),
    BAD("te chunked on two lines",
     "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", R501),
    BAD("te with parameter", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked;q=1\r\n\r\n", R501),
    BAD("te empty", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\r\n\r\n", R501),
    BAD("te identity", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: identity\r\n\r\n", R501),
    BAD("tls client hello", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", R400),
};

static void test_bad_requests(void)
{
    for (size_t i = 0; i < sizeof bad_requests / sizeof bad_requests[0]; i++) {
        const bad_req_t *t = &bad_requests[i];
        current_case = t->name;
        size_t len = t->len;
        size_t consumed = 99;
        CHECK(t->expected, parse_req_n(t->raw, len, MAX_URI, MAX_HEADER, &consumed));
        CHECK(0, consumed);
        /* every prefix is either still waiting or already the same error */
        int other = 0;
        for (size_t k = 0; k < len; k++) {
            sl_http_result_t r = parse_req_n(t->raw, k, MAX_URI, MAX_HEADER, &consumed);
            if (r != SL_HTTP_INCOMPLETE && r != t->expected)
                other++;
        }
        CHECK(0, other);
    }
}

/* Each byte value in each place of a head, against the RFC's classes
 * written out here independently of the parser's table. */
static bool rfc_tchar(int b)
{
    return (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') || (b >= '0' && b <= '9') ||
           (b != 0 && strchr("!#$%&'*+-.^_`|~", b) != NULL);
}

static bool rfc_reg_name(int b)
{
    return (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') || (b >= '0' && b <= '9') ||
           (b != 0 && strchr("-._~!$&'()*+,;=", b) != NULL);
}

static int byte_verdicts(const char *before, const char *after, int (*expect_done)(int))
{
    char raw[256];
    int wrong = 0;
    for (int b = 0; b < 256; b++) {
        size_t n = (size_t)snprintf(raw, sizeof raw, "%s", before);
        raw[n++] = (char)b;
        n += (size_t)snprintf(raw + n, sizeof raw - n, "%s", after);
        size_t consumed;
        sl_http_result_t want = expect_done(b) ? SL_HTTP_DONE : SL_HTTP_BAD_REQUEST;
        sl_http_result_t got = parse_req_n(raw, n, MAX_URI, MAX_HEADER, &consumed);
        if (got != want) {
            fprintf(stderr, "  byte 0x%02x: expected %d, got %d\n", b, want, got);
            wrong++;
        }
    }
    return wrong;
}

static int method_byte_ok(int b) { return rfc_tchar(b); }
static int target_byte_ok(int b) { return b >= 0x21 && b <= 0x7e; }
static int name_byte_ok(int b) { return rfc_tchar(b) || b == ':'; }
static int value_byte_ok(int b) { return b == '\t' || (b >= 0x20 && b != 0x7f); }
static int host_byte_ok(int b) { return rfc_reg_name(b); }

static void test_every_byte(void)
{
    current_case = "every byte in a method";
    CHECK(0, byte_verdicts("G", "T / HTTP/1.1\r\nHost: h\r\n\r\n", method_byte_ok));
    current_case = "every byte in a target";
    CHECK(0, byte_verdicts("GET /a", "b HTTP/1.1\r\nHost: h\r\n\r\n", target_byte_ok));
    current_case = "every byte in a field name";
    CHECK(0, byte_verdicts("GET / HTTP/1.1\r\nHost: h\r\nX", "Y: v\r\n\r\n", name_byte_ok));
    current_case = "every byte in a field value";
    CHECK(0, byte_verdicts("GET / HTTP/1.1\r\nHost: h\r\nX: a", "b\r\n\r\n", value_byte_ok));
    current_case = "every byte in a host name";
    CHECK(0, byte_verdicts("GET / HTTP/1.1\r\nHost: a", "b\r\n\r\n", host_byte_ok));
}

/* Names and values are checked four bytes a step: a bad byte is found at
 * any position of any length, also in the parsed head. */
static void test_bad_byte_at_every_position(void)
{
    current_case = "a bad byte at every position";
    int wrong = 0;
    static const char bad_in_name[] = {' ', '\x7f', '\0', ':', '\x80'};
    static const char bad_in_value[] = {'\x01', '\x7f', '\0', '\r', '\n'};
    for (size_t len = 1; len <= 13; len++) {
        char name[16], value[16];
        memset(name, 'a', len);
        memset(value, 'v', len);
        wrong += !sl_http_is_token(name, len) || !sl_http_is_field_value(value, len);
        for (size_t pos = 0; pos < len; pos++) {
            for (size_t k = 0; k < sizeof bad_in_name; k++) {
                memset(name, 'a', len);
                name[pos] = bad_in_name[k];
                wrong += sl_http_is_token(name, len);
            }
            for (size_t k = 0; k < sizeof bad_in_value; k++) {
                memset(value, 'v', len);
                value[pos] = bad_in_value[k];
                wrong += sl_http_is_field_value(value, len);
            }
            value[pos] = '\t';
            wrong += !sl_http_is_field_value(value, len);
            /* the same through the parser: a control in a field value */
            char raw[128];
            memset(value, 'v', len);
            value[pos] = '\x01';
            int n = snprintf(raw, sizeof raw, "GET / HTTP/1.1\r\nHost: h\r\nX-A: %.*s\r\n\r\n",
                             (int)len, value);
            size_t consumed;
            wrong += parse_req_n(raw, (size_t)n, MAX_URI, MAX_HEADER, &consumed) != R400;
        }
    }
    CHECK(0, wrong);
    CHECK(0, sl_http_is_token("", 0));
    CHECK(1, sl_http_is_field_value("", 0));
}

/* A bad request line is refused as soon as its bad byte arrives (garbage
 * such as a TLS hello gets its 400 at once); field lines wait for the end of
 * the head. */
static void test_early_errors(void)
{
    size_t consumed;
    current_case = "early 400 on partial request line";
    const char *raw = "G\x16T /still-coming";
    CHECK(R400, parse_req_n(raw, strlen(raw), MAX_URI, MAX_HEADER, &consumed));
    /* field lines are judged once the head has ended (or fills max_header) */
    current_case = "bad field line waits for the end of the head";
    raw = "GET / HTTP/1.1\r\nHost: h\r\nBad Name: v\r\nX: y\r\n";
    CHECK(SL_HTTP_INCOMPLETE, parse_req_n(raw, strlen(raw), MAX_URI, MAX_HEADER, &consumed));
    current_case = "bad field line when the head fills max_header";
    CHECK(R400, parse_req_n(raw, strlen(raw), MAX_URI, strlen(raw), &consumed));
    current_case = "bad field line when the head ends";
    raw = "GET / HTTP/1.1\r\nHost: h\r\nBad Name: v\r\nX: y\r\n\r\n";
    CHECK(R400, parse_req_n(raw, strlen(raw), MAX_URI, MAX_HEADER, &consumed));
    current_case = "bare CR where the blank line goes waits";
    raw = "GET / HTTP/1.1\r\nHost: h\r\n\rX";
    CHECK(SL_HTTP_INCOMPLETE, parse_req_n(raw, strlen(raw), MAX_URI, MAX_HEADER, &consumed));
    current_case = "bare CR where the blank line goes, at the limit";
    CHECK(R400, parse_req_n(raw, strlen(raw), MAX_URI, strlen(raw), &consumed));
    current_case = "early 400 on bad target";
    raw = "GET nope ";
    CHECK(R400, parse_req_n(raw, strlen(raw), MAX_URI, MAX_HEADER, &consumed));
    current_case = "early 400 on bad version prefix";
    raw = "GET / HTTX";
    CHECK(R400, parse_req_n(raw, strlen(raw), MAX_URI, MAX_HEADER, &consumed));
    current_case = "version 2 waits for the whole version";
    raw = "GET / HTTP/2.0";
    CHECK(SL_HTTP_INCOMPLETE, parse_req_n(raw, strlen(raw), MAX_URI, MAX_HEADER, &consumed));
    current_case = "trailing CR waits for LF";
    raw = "GET / HTTP/1.1\r";
    CHECK(SL_HTTP_INCOMPLETE, parse_req_n(raw, strlen(raw), MAX_URI, MAX_HEADER, &consumed));
    current_case = "empty buffer";
    CHECK(SL_HTTP_INCOMPLETE, sl_http_parse_request_head(NULL, 0, MAX_URI, MAX_HEADER, &req, &consumed));
    CHECK(0, consumed);
    current_case = "only empty lines";
    raw = "\r\n\r\n\n";
    CHECK(SL_HTTP_INCOMPLETE, parse_req_n(raw, strlen(raw), MAX_URI, MAX_HEADER, &consumed));
}

static void test_incremental_requests(void)
{
    for (size_t i = 0; i < sizeof valid_requests / sizeof valid_requests[0]; i++) {
        const valid_req_t *t = &valid_requests[i];
        current_case = t->name;
        size_t head_len = strlen(t->raw) - t->body_len;
        int not_incomplete = 0, nonzero_consumed = 0;
        for (size_t k = 0; k < head_len; k++) {
            size_t consumed = 77;
            if (parse_req_n(t->raw, k, MAX_URI, MAX_HEADER, &consumed) != SL_HTTP_INCOMPLETE)
                not_incomplete++;
            if (consumed != 0)
                nonzero_consumed++;
        }
        CHECK(0, not_incomplete);
        CHECK(0, nonzero_consumed);
        size_t consumed = 0;
        CHECK(SL_HTTP_DONE, parse_req_n(t->raw, head_len, MAX_URI, MAX_HEADER, &consumed));
        CHECK(head_len, consumed);
    }
}

/* ---- limits ---- */

static char *make_request(size_t target_len, size_t n_filler_headers, size_t *len)
{
    size_t cap = target_len + n_filler_headers * 16 + 64;
    char *s = malloc(cap);
    size_t n = 0;
    n += (size_t)sprintf(s + n, "GET /");
    memset(s + n, 'a', target_len - 1);
    n += target_len - 1;
    n += (size_t)sprintf(s + n, " HTTP/1.1\r\nHost: h\r\n");
    for (size_t i = 0; i < n_filler_headers; i++)
        n += (size_t)sprintf(s + n, "X-%04zu: v\r\n", i);
    n += (size_t)sprintf(s + n, "\r\n");
    *len = n;
    return s;
}

static void test_uri_limit(void)
{
    size_t len, consumed;
    /* request line = "GET " + target + " HTTP/1.1" = 13 + target bytes */
    char *s = make_request(7, 0, &len);

    current_case = "request line exactly max_uri";
    CHECK(SL_HTTP_DONE, parse_req_n(s, len, 20, MAX_HEADER, &consumed));
    CHECK(len, consumed);
    current_case = "request line one over max_uri";
    CHECK(SL_HTTP_URI_TOO_LONG, parse_req_n(s, len, 19, MAX_HEADER, &consumed));
    CHECK(0, consumed);
    current_case = "partial line at max_uri waits";
    CHECK(SL_HTTP_INCOMPLETE, parse_req_n(s, 20, 20, MAX_HEADER, &consumed));
    current_case = "partial line at max_uri with CR waits";
    CHECK(SL_HTTP_INCOMPLETE, parse_req_n(s, 21, 20, MAX_HEADER, &consumed));
    current_case = "partial line over max_uri";
    CHECK(SL_HTTP_URI_TOO_LONG, parse_req_n(s, 20, 19, MAX_HEADER, &consumed));
    current_case = "partial target over max_uri";
    CHECK(SL_HTTP_URI_TOO_LONG, parse_req_n(s, 11, 10, MAX_HEADER, &consumed));
    current_case = "partial target at max_uri";
    CHECK(SL_HTTP_INCOMPLETE, parse_req_n(s, 10, 10, MAX_HEADER, &consumed));
    free(s);

    /* only the first max_uri bytes are judged, so the answer does not
     * depend on how much of the line has arrived */
    current_case = "bad byte within max_uri of a long line";
    const char *bad = "G@T /aaaaaaaaaaaaaaaa HTTP/1.1\r\nHost: h\r\n\r\n";
    CHECK(SL_HTTP_BAD_REQUEST, parse_req_n(bad, strlen(bad), 10, MAX_HEADER, &consumed));
    CHECK(SL_HTTP_BAD_REQUEST, parse_req_n(bad, 5, 10, MAX_HEADER, &consumed));
    current_case = "bad byte past max_uri of a long line";
    bad = "GET /aaaaaaaaaaaa\x01" "aaa HTTP/1.1\r\nHost: h\r\n\r\n";
    CHECK(SL_HTTP_URI_TOO_LONG, parse_req_n(bad, strlen(bad), 10, MAX_HEADER, &consumed));
    CHECK(SL_HTTP_URI_TOO_LONG, parse_req_n(bad, 11, 10, MAX_HEADER, &consumed));
    current_case = "bare CR past max_uri";
    bad = "GET /aaaaaaaaaaaa\raaa HTTP/1.1\r\nHost: h\r\n\r\n";
    CHECK(SL_HTTP_URI_TOO_LONG, parse_req_n(bad, strlen(bad), 10, MAX_HEADER, &consumed));
    current_case = "bare CR within max_uri";
    bad = "GET /a\raaaaaaaaaaaa HTTP/1.1\r\nHost: h\r\n\r\n";
    CHECK(SL_HTTP_BAD_REQUEST, parse_req_n(bad, strlen(bad), 10, MAX_HEADER, &consumed));
    current_case = "unsupported version over max_uri";
    bad = "GET /aaaaaaaaaaaa HTTP/2.0\r\nHost: h\r\n\r\n";
    CHECK(SL_HTTP_URI_TOO_LONG, parse_req_n(bad, strlen(bad), 10, MAX_HEADER, &consumed));

    current_case = "leading empty lines do not count toward max_uri";
    const char *raw = "\r\n\r\nGET /aaaaaa HTTP/1.1\r\nHost: h\r\n\r\n";
    CHECK(SL_HTTP_DONE, parse_req_n(raw, strlen(raw), 20, MAX_HEADER, &consumed));
    CHECK(strlen(raw), consumed);

    current_case = "long line, bare LF, exactly max_uri";
    raw = "GET /aaaaaa HTTP/1.1\nHost: h\n\n";
    CHECK(SL_HTTP_DONE, parse_req_n(raw, strlen(raw), 20, MAX_HEADER, &consumed));

    /* the real sizes: 8 KiB line against the 32 KiB head */
    s = make_request(8192 - 13, 0, &len);
    current_case = "8k request line at default limits";
    CHECK(SL_HTTP_DONE, parse_req_n(s, len, MAX_URI, MAX_HEADER, &consumed));
    CHECK(len, consumed);
    free(s);
    s = make_request(8192 - 12, 0, &len);
    current_case = "8k+1 request line at default limits";
    CHECK(SL_HTTP_URI_TOO_LONG, parse_req_n(s, len, MAX_URI, MAX_HEADER, &consumed));
    current_case = "8k+1 partial request line at default limits";
    CHECK(SL_HTTP_URI_TOO_LONG, parse_req_n(s, 8193, MAX_URI, MAX_HEADER, &consumed));
    CHECK(SL_HTTP_INCOMPLETE, parse_req_n(s, 8192, MAX_URI, MAX_HEADER, &consumed));
    free(s);
}

static void test_header_limit(void)
{
    size_t len, consumed;
    char *s = make_request(5, 10, &len);

    current_case = "head exactly max_header";
    CHECK(SL_HTTP_DONE, parse_req_n(s, len, MAX_URI, len, &consumed));
    CHECK(len, consumed);
    current_case = "head one over max_header";
    CHECK(SL_HTTP_HEADERS_TOO_LARGE, parse_req_n(s, len, MAX_URI, len - 1, &consumed));
    CHECK(0, consumed);
    current_case = "incomplete head that fills max_header";
    CHECK(SL_HTTP_HEADERS_TOO_LARGE, parse_req_n(s, len - 1, MAX_URI, len - 1, &consumed));
    current_case = "incomplete head below max_header";
    CHECK(SL_HTTP_INCOMPLETE, parse_req_n(s, len - 2, MAX_URI, len - 1, &consumed));
    current_case = "head at max_header with body bytes after";
    char *with_body = malloc(len + 4);
    memcpy(with_body, s, len);
    memcpy(with_body + len, "body", 4);
    CHECK(SL_HTTP_DONE, parse_req_n(with_body, len + 4, MAX_URI, len, &consumed));
    CHECK(len, consumed);
    free(with_body);
    current_case = "final CR arrived, LF not yet";
    CHECK(SL_HTTP_INCOMPLETE, parse_req_n(s, len - 1, MAX_URI, len, &consumed));
    free(s);

    current_case = "leading empty lines count toward max_header";
    const char *raw = "\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n";
    CHECK(SL_HTTP_DONE, parse_req_n(raw, strlen(raw), MAX_URI, strlen(raw), &consumed));
    CHECK(SL_HTTP_HEADERS_TOO_LARGE, parse_req_n(raw, strlen(raw), MAX_URI, strlen(raw) - 1, &consumed));
    current_case = "endless empty lines";
    CHECK(SL_HTTP_HEADERS_TOO_LARGE, parse_req_n("\r\n\r\n\r\n\r\n", 8, MAX_URI, 8, &consumed));

    current_case = "request line over max_uri and past the window: 414";
    s = make_request(100, 0, &len);
    CHECK(SL_HTTP_URI_TOO_LONG, parse_req_n(s, 60, 50, 60, &consumed));
    current_case = "request line past the window but under max_uri: 431";
    CHECK(SL_HTTP_HEADERS_TOO_LARGE, parse_req_n(s, 60, 200, 60, &consumed));
    CHECK(SL_HTTP_HEADERS_TOO_LARGE, parse_req_n(s, len, 200, 60, &consumed));
    free(s);

    current_case = "max_header zero";
    CHECK(SL_HTTP_HEADERS_TOO_LARGE, parse_req_n("GET", 3, MAX_URI, 0, &consumed));
}

static void test_header_count(void)
{
    size_t len, consumed;
    /* Host + 127 fillers = 128 */
    char *s = make_request(1, SL_HTTP_MAX_HEADERS - 1, &len);
    current_case = "128 headers";
    CHECK(SL_HTTP_DONE, parse_req_n(s, len, MAX_URI, MAX_HEADER, &consumed));
    CHECK(SL_HTTP_MAX_HEADERS, req.n_headers);
    CHECK(len, consumed);
    free(s);

    s = make_request(1, SL_HTTP_MAX_HEADERS - 1, &len);
    char *buf = exact_copy(s, len);
    CHECK(SL_HTTP_DONE, sl_http_parse_request_head(buf, len, MAX_URI, MAX_HEADER, &req, &consumed));
    CHECK_MEM("X-0126", req.headers[127].name, req.headers[127].name_len);
    CHECK_MEM("v", req.headers[127].value, req.headers[127].value_len);
    free(buf);
    free(s);

    s = make_request(1, SL_HTTP_MAX_HEADERS, &len);
    current_case = "129 headers";
    CHECK(SL_HTTP_HEADERS_TOO_LARGE, parse_req_n(s, len, MAX_URI, MAX_HEADER, &consumed));
    CHECK(0, consumed);
    current_case = "malformed 129th header";
    memcpy(s + len - 13, "X 0127", 6);
    CHECK(SL_HTTP_BAD_REQUEST, parse_req_n(s, len, MAX_URI, MAX_HEADER, &consumed));
    CHECK(SL_HTTP_INCOMPLETE, parse_req_n(s, len - 6, MAX_URI, MAX_HEADER, &consumed));
    CHECK(SL_HTTP_BAD_REQUEST, parse_req_n(s, len - 6, MAX_URI, len - 6, &consumed));
    memcpy(s + len - 13, "X-0127", 6);
    current_case = "129th header still arriving";
    CHECK(SL_HTTP_INCOMPLETE, parse_req_n(s, len - 4, MAX_URI, MAX_HEADER, &consumed));
    free(s);
}

/* ---- responses ---- */

typedef struct {
    const char *name;
    const char *raw;
    size_t body_len;
    int status, minor;
    const char *reason;
    int n_headers;
    long long content_length;
    bool chunked, keep_alive;
} valid_resp_t;

static const valid_resp_t valid_responses[] = {
    {"200 with length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", 5, 200, 1, "OK", 1, 5, false, true},
    {"204", "HTTP/1.1 204 No Content\r\n\r\n", 0, 204, 1, "No Content", 0, -1, false, true},
    {"304 empty reason", "HTTP/1.1 304 \r\nETag: \"x\"\r\n\r\n", 0, 304, 1, "", 1, -1, false, true},
    {"no reason no space", "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", 0, 200, 1, "", 1, 0, false, true},
    {"close delimited", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nstream", 6, 200, 1, "OK", 1, -1, false,
     false},
    {"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 5, 200, 1, "OK", 1, -1, true, true},
    {"connection close", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", 0, 200, 1, "OK", 2, 0,
     false, false},
    {"1.0 with length", "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", 0, 200, 0, "OK", 1, 0, false, false},
    {"1.0 keep-alive", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok", 2, 200, 0, "OK", 2,
     2, false, true},
    {"1.0 close delimited keep-alive", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n", 0, 200, 0, "OK", 1, -1,
     false, false},
    {"100 continue", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n", 17, 100, 1, "Continue", 0, -1, false, true},
    {"101 switching", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n", 0, 101, 1,
     "Switching Protocols", 1, -1, false, true},
    {"599", "HTTP/1.1 599 Whatever\r\nContent-Length: 0\r\n\r\n", 0, 599, 1, "Whatever", 1, 0, false, true},
    {"reason with tab and obs-text", "HTTP/1.1 404 Not\tFound \xe2\x9c\x97\r\nContent-Length: 0\r\n\r\n", 0, 404, 1,
     "Not\tFound \xe2\x9c\x97", 1, 0, false, true},
    {"bare lf", "HTTP/1.1 200 OK\nContent-Length: 1\n\nx", 1, 200, 1, "OK", 1, 1, false, true},
    {"repeated length", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3, 3\r\n\r\nabc", 3, 200, 1, "OK", 2,
     3, false, true},
};

static void test_valid_responses(void)
{
    for (size_t i = 0; i < sizeof valid_responses / sizeof valid_responses[0]; i++) {
        const valid_resp_t *t = &valid_responses[i];
        current_case = t->name;
        size_t len = strlen(t->raw), head_len = len - t->body_len, consumed = 5;
        char *buf = exact_copy(t->raw, len);
        CHECK(SL_HTTP_DONE, sl_http_parse_response_head(buf, len, MAX_HEADER, &resp, &consumed));
        CHECK(head_len, consumed);
        CHECK(t->status, resp.status);
        CHECK(t->minor, resp.minor);
        CHECK_MEM(t->reason, resp.reason, resp.reason_len);
        CHECK(t->n_headers, resp.n_headers);
        CHECK(t->content_length, resp.content_length);
        CHECK(t->chunked, resp.chunked);
        CHECK(t->keep_alive, resp.keep_alive);
        free(buf);

        int not_incomplete = 0;
        for (size_t k = 0; k < head_len; k++)
            if (parse_resp_n(t->raw, k, MAX_HEADER, &consumed) != SL_HTTP_INCOMPLETE)
                not_incomplete++;
        CHECK(0, not_incomplete);
    }
}

static const bad_req_t bad_responses[] = {
    BAD("two digit status", "HTTP/1.1 99 Low\r\n\r\n", R400),
    BAD("status 600", "HTTP/1.1 600 High\r\n\r\n", R400),
    BAD("status 099", "HTTP/1.1 099 Low\r\n\r\n", R400),
    BAD("four digit status", "HTTP/1.1 2000 OK\r\n\r\n", R400),
    BAD("status letters", "HTTP/1.1 2x0 OK\r\n\r\n", R400),
    BAD("two spaces before status", "HTTP/1.1  200 OK\r\n\r\n", R400),
    BAD("tab before reason", "HTTP/1.1 200\tOK\r\n\r\n", R400),
    BAD("missing status", "HTTP/1.1\r\n\r\n", R400),
    BAD("missing status with space", "HTTP/1.1 \r\n\r\n", R400),
    BAD("http/2", "HTTP/2 200 OK\r\n\r\n", R400),
    BAD("http/2.0", "HTTP/2.0 200 OK\r\n\r\n", R400),
    BAD("http/1.2", "HTTP/1.2 200 OK\r\n\r\n", R400),
    BAD("icy", "ICY 200 OK\r\n\r\n", R400),
    BAD("lowercase", "http/1.1 200 OK\r\n\r\n", R400),
    BAD("control in reason", "HTTP/1.1 200 O\x01K\r\n\r\n", R400),
    BAD("bare CR in reason", "HTTP/1.1 200 O\rK\r\n\r\n", R400),
    BAD("leading empty line", "\r\nHTTP/1.1 200 OK\r\n\r\n", R400),
    BAD("obs-fold", "HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 0\r\n\r\n", R400),
    BAD("space before colon", "HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n", R400),
    BAD("cl and te", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", R400),
    BAD("te gzip", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", R400),
    BAD("te gzip chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", R400),
    BAD("te on 1.0", "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", R400),
    BAD("differing lengths", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", R400),
    BAD("bad length", "HTTP/1.1 200 OK\r\nContent-Length: 3x\r\n\r\n", R400),
};

static void test_bad_responses(void)
{
    for (size_t i = 0; i < sizeof bad_responses / sizeof bad_responses[0]; i++) {
        const bad_req_t *t = &bad_responses[i];
        current_case = t->name;
        size_t len = t->len, consumed = 5;
        CHECK(t->expected, parse_resp_n(t->raw, len, MAX_HEADER, &consumed));
        CHECK(0, consumed);
        int other = 0;
        for (size_t k = 0; k < len; k++) {
            sl_http_result_t r = parse_resp_n(t->raw, k, MAX_HEADER, &consumed);
            if (r != SL_HTTP_INCOMPLETE && r != t->expected)
                other++;
        }
        CHECK(0, other);
    }
}

static void test_response_limits(void)
{
    size_t consumed;
    const char *raw = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    size_t len = strlen(raw);
    current_case = "response head exactly max_header";
    CHECK(SL_HTTP_DONE, parse_resp_n(raw, len, len, &consumed));
    CHECK(len, consumed);
    current_case = "response head over max_header";
    CHECK(SL_HTTP_HEADERS_TOO_LARGE, parse_resp_n(raw, len, len - 1, &consumed));
    CHECK(SL_HTTP_HEADERS_TOO_LARGE, parse_resp_n(raw, 10, 10, &consumed));
    CHECK(SL_HTTP_INCOMPLETE, parse_resp_n(raw, 9, 10, &consumed));
    current_case = "response empty buffer";
    CHECK(SL_HTTP_INCOMPLETE, sl_http_parse_response_head(NULL, 0, MAX_HEADER, &resp, &consumed));

    current_case = "response with 129 headers";
    char *s = malloc(64 + 129 * 16);
    size_t n = (size_t)sprintf(s, "HTTP/1.1 200 OK\r\n");
    for (int i = 0; i < 129; i++)
        n += (size_t)sprintf(s + n, "X-%04d: v\r\n", i);
    n += (size_t)sprintf(s + n, "\r\n");
    CHECK(SL_HTTP_HEADERS_TOO_LARGE, parse_resp_n(s, n, MAX_HEADER, &consumed));
    free(s);
}

static void test_has_body(void)
{
    current_case = "has_body";
    CHECK(0, sl_http_response_has_body("HEAD", 4, 200));
    CHECK(1, sl_http_response_has_body("GET", 3, 200));
    CHECK(1, sl_http_response_has_body("head", 4, 200));
    CHECK(0, sl_http_response_has_body("GET", 3, 100));
    CHECK(0, sl_http_response_has_body("GET", 3, 101));
    CHECK(0, sl_http_response_has_body("GET", 3, 199));
    CHECK(0, sl_http_response_has_body("GET", 3, 204));
    CHECK(1, sl_http_response_has_body("GET", 3, 205));
    CHECK(0, sl_http_response_has_body("POST", 4, 304));
    CHECK(1, sl_http_response_has_body("POST", 4, 404));
    CHECK(1, sl_http_response_has_body("GET", 3, 500));
    CHECK(0, sl_http_response_has_body("CONNECT", 7, 200));
    CHECK(1, sl_http_response_has_body("CONNECT", 7, 407));
    CHECK(1, sl_http_response_has_body(NULL, 0, 200));
    CHECK(0, sl_http_response_has_body(NULL, 0, 204));
    CHECK(1, sl_http_response_has_body("HEADX", 4 + 1, 200));
}

static void test_has_token(void)
{
    current_case = "has_token";
    const char *v = "keep-alive, Upgrade";
    CHECK(1, sl_http_header_has_token(v, strlen(v), "upgrade"));
    CHECK(1, sl_http_header_has_token(v, strlen(v), "Keep-Alive"));
    CHECK(0, sl_http_header_has_token(v, strlen(v), "close"));
    v = " \tclose\t ";
    CHECK(1, sl_http_header_has_token(v, strlen(v), "close"));
    v = "closed";
    CHECK(0, sl_http_header_has_token(v, strlen(v), "close"));
    v = "xclose";
    CHECK(0, sl_http_header_has_token(v, strlen(v), "close"));
    CHECK(0, sl_http_header_has_token("", 0, "close"));
    /* a token that is a header name inside a parsed head: only its length
     * bounds it */
    v = "X-Trace, keep-alive";
    CHECK(1, sl_http_header_has_token_n(v, strlen(v), "x-trace: 1", 7));
    CHECK(0, sl_http_header_has_token_n(v, strlen(v), "x-trace: 1", 8));
    CHECK(0, sl_http_header_has_token_n(v, strlen(v), "x-trac", 6));
    v = "a,,close";
    CHECK(1, sl_http_header_has_token(v, strlen(v), "close"));
    v = "close,";
    CHECK(1, sl_http_header_has_token(v, strlen(v), "close"));
    v = "clo se";
    CHECK(0, sl_http_header_has_token(v, strlen(v), "close"));
    v = "close";
    CHECK(0, sl_http_header_has_token(v, 4, "close"));
}

/* ---- chunked bodies ---- */

typedef struct {
    char data[4096];
    size_t n;
    int calls;
} sink_t;

static void sink_emit(void *arg, const char *data, size_t n)
{
    sink_t *s = arg;
    s->calls++;
    if (s->n + n <= sizeof s->data) {
        memcpy(s->data + s->n, data, n);
        s->n += n;
    } else {
        s->n = sizeof s->data + 1;  /* overflow marker: never equals an expected length */
    }
}

/* Feeds raw in pieces (splits[] are piece sizes, cycled; 0 = all at once),
 * each piece an exact heap copy. Returns the final result and the total
 * consumed. Stops at the first non-MORE result. */
static sl_chunked_result_t feed_pieces(const char *raw, size_t len, const size_t *splits, size_t n_splits,
                                       sink_t *sink, size_t *total_used)
{
    sl_chunked_t c;
    sl_chunked_init(&c);
    memset(sink, 0, sizeof *sink);
    *total_used = 0;
    size_t pos = 0, k = 0;
    sl_chunked_result_t r = SL_CHUNKED_MORE;
    while (pos < len) {
        size_t piece = n_splits ? splits[k++ % n_splits] : len;
        if (piece > len - pos)
            piece = len - pos;
        char *buf = exact_copy(raw + pos, piece);
        size_t used = 0;
        r = sl_chunked_feed(&c, buf, piece, &used, sink_emit, sink);
        free(buf);
        *total_used += used;
        if (r != SL_CHUNKED_MORE)
            return r;
        if (used != piece)
            return (sl_chunked_result_t)99;  /* MORE must consume everything */
        pos += piece;
    }
    return r;
}

typedef struct {
    const char *name;
    const char *raw;
    const char *decoded;
    size_t rest;          /* bytes after the message, not to be consumed */
} chunk_ok_t;

static const chunk_ok_t chunk_ok[] = {
    {"one chunk", "5\r\nhello\r\n0\r\n\r\n", "hello", 0},
    {"several chunks", "3\r\nabc\r\n1\r\nd\r\n0\r\n\r\n", "abcd", 0},
    {"hex sizes both cases", "A\r\n0123456789\r\na\r\nabcdefghij\r\n0\r\n\r\n", "0123456789abcdefghij", 0},
    {"leading zeros", "000003\r\nxyz\r\n000\r\n\r\n", "xyz", 0},
    {"15 digits zero", "000000000000000\r\n\r\n", "", 0},
    {"extension", "5;name=val\r\nhello\r\n0;last\r\n\r\n", "hello", 0},
    {"extension with bws and quotes", "5 \t; a = \"q s\";b\r\nhello\r\n0\r\n\r\n", "hello", 0},
    {"trailers", "2\r\nhi\r\n0\r\nX-Checksum: abc\r\nY:\r\n\r\n", "hi", 0},
    {"data containing CRLF", "4\r\n\r\n\r\n\r\n0\r\n\r\n", "\r\n\r\n", 0},
    {"empty body", "0\r\n\r\n", "", 0},
    {"pipelined request after", "1\r\nx\r\n0\r\n\r\nGET / HTTP/1.1\r\n", "x", 16},
    {"pipelined bytes after trailers", "0\r\nT: 1\r\n\r\nNEXT", "", 4},
};

static void test_chunked_ok(void)
{
    static const size_t one[] = {1};
    static const size_t odd[] = {2, 3, 1, 7, 4};
    for (size_t i = 0; i < sizeof chunk_ok / sizeof chunk_ok[0]; i++) {
        const chunk_ok_t *t = &chunk_ok[i];
        current_case = t->name;
        size_t len = strlen(t->raw), used = 0;
        sink_t sink;

        CHECK(SL_CHUNKED_END, feed_pieces(t->raw, len, NULL, 0, &sink, &used));
        CHECK(len - t->rest, used);
        CHECK_MEM(t->decoded, sink.data, sink.n);

        CHECK(SL_CHUNKED_END, feed_pieces(t->raw, len, one, 1, &sink, &used));
        CHECK(len - t->rest, used);
        CHECK_MEM(t->decoded, sink.data, sink.n);

        CHECK(SL_CHUNKED_END, feed_pieces(t->raw, len, odd, 5, &sink, &used));
        CHECK(len - t->rest, used);
        CHECK_MEM(t->decoded, sink.data, sink.n);
    }
}

static void test_chunked_end_state(void)
{
    current_case = "calls after END";
    sl_chunked_t c;
    sl_chunked_init(&c);
    sink_t sink = {.n = 0};
    const char *raw = "2\r\nab\r\n0\r\n\r\nNEXT";
    size_t used = 0;
    CHECK(SL_CHUNKED_END, sl_chunked_feed(&c, raw, strlen(raw), &used, sink_emit, &sink));
    CHECK(12, used);
    CHECK(SL_CHUNKED_END, sl_chunked_feed(&c, raw + used, 4, &used, sink_emit, &sink));
    CHECK(0, used);
    CHECK_MEM("ab", sink.data, sink.n);
    CHECK(1, sink.calls);

    current_case = "emit NULL discards";
    sl_chunked_init(&c);
    CHECK(SL_CHUNKED_END, sl_chunked_feed(&c, raw, strlen(raw), &used, NULL, NULL));
    CHECK(12, used);

    current_case = "empty feed";
    sl_chunked_init(&c);
    CHECK(SL_CHUNKED_MORE, sl_chunked_feed(&c, NULL, 0, &used, sink_emit, &sink));
    CHECK(0, used);

    current_case = "data runs are emitted without copying";
    sl_chunked_init(&c);
    memset(&sink, 0, sizeof sink);
    raw = "6\r\nabcdef\r\n0\r\n\r\n";
    CHECK(SL_CHUNKED_MORE, sl_chunked_feed(&c, raw, 6, &used, sink_emit, &sink));
    CHECK(6, used);
    CHECK(1, sink.calls);
    CHECK_MEM("abc", sink.data, sink.n);
    CHECK(SL_CHUNKED_END, sl_chunked_feed(&c, raw + 6, strlen(raw) - 6, &used, sink_emit, &sink));
    CHECK(2, sink.calls);
    CHECK_MEM("abcdef", sink.data, sink.n);

    current_case = "large chunk across many feeds";
    sl_chunked_init(&c);
    size_t total = 0;
    const char *head = "100000\r\n";   /* 1 MiB */
    CHECK(SL_CHUNKED_MORE, sl_chunked_feed(&c, head, strlen(head), &used, NULL, NULL));
    char block[1000];
    memset(block, 'z', sizeof block);
    sl_chunked_result_t r = SL_CHUNKED_MORE;
    while (total < 0x100000 && r == SL_CHUNKED_MORE) {
        size_t n = 0x100000 - total < sizeof block ? 0x100000 - total : sizeof block;
        r = sl_chunked_feed(&c, block, n, &used, NULL, NULL);
        total += used;
    }
    CHECK(SL_CHUNKED_MORE, r);
    CHECK(0x100000, total);
    CHECK(SL_CHUNKED_END, sl_chunked_feed(&c, "\r\n0\r\n\r\n", 7, &used, NULL, NULL));
    CHECK(7, used);
}

static uint32_t lcg_state = 12345;
static uint32_t lcg(void)
{
    lcg_state = lcg_state * 1103515245u + 12345u;
    return lcg_state >> 8;
}

static void test_chunked_random_splits(void)
{
    current_case = "random splits";
    /* a body with many chunk sizes, extensions and a trailer */
    char raw[4096];
    char expected[2048];
    size_t n = 0, e = 0;
    for (int i = 0; i < 40; i++) {
        size_t size = (size_t)(i * 7 % 45);
        if (size == 0)
            size = 1;
        n += (size_t)sprintf(raw + n, i % 3 ? "%zx\r\n" : "%zX;i=%d\r\n", size, i);
        for (size_t k = 0; k < size; k++) {
            char ch = (char)('a' + (i + (int)k) % 26);
            raw[n++] = ch;
            expected[e++] = ch;
        }
        raw[n++] = '\r';
        raw[n++] = '\n';
    }
    n += (size_t)sprintf(raw + n, "0\r\nTrailer-A: 1\r\n\r\n");
    expected[e] = '\0';

    int mismatches = 0;
    for (int round = 0; round < 300; round++) {
        size_t splits[16];
        for (int k = 0; k < 16; k++)
            splits[k] = 1 + lcg() % 37;
        sink_t sink;
        size_t used = 0;
        sl_chunked_result_t r = feed_pieces(raw, n, splits, 16, &sink, &used);
        if (r != SL_CHUNKED_END || used != n || sink.n != e || memcmp(sink.data, expected, e) != 0)
            mismatches++;
    }
    CHECK(0, mismatches);
}

typedef struct {
    const char *name;
    const char *raw;
    size_t len;
    size_t error_at;      /* bytes consumed before the offending byte */
} chunk_bad_t;

#define CHUNK_BAD(name, raw, at) {name, raw, sizeof(raw) - 1, at}

static const chunk_bad_t chunk_bad[] = {
    CHUNK_BAD("bad hex", "g\r\n", 0),
    CHUNK_BAD("bad hex after digit", "5g\r\nhello\r\n0\r\n\r\n", 1),
    CHUNK_BAD("empty size", "\r\nhello\r\n", 0),
    CHUNK_BAD("leading space", " 5\r\nhello\r\n", 0),
    CHUNK_BAD("sign", "-5\r\nhello\r\n", 0),
    CHUNK_BAD("0x prefix", "0x5\r\nhello\r\n", 1),
    CHUNK_BAD("trailing junk", "5x\r\nhello\r\n", 1),
    CHUNK_BAD("trailing whitespace without extension", "5 \r\nhello\r\n", 2),
    CHUNK_BAD("16 hex digits", "1000000000000000\r\n", 15),
    CHUNK_BAD("16 digits with leading zeros", "0000000000000005\r\n", 15),
    CHUNK_BAD("bare LF after size", "5\nhello\r\n", 1),
    CHUNK_BAD("bare CR after size", "5\rhello\r\n", 2),
    CHUNK_BAD("missing CRLF after data", "5\r\nhelloX\r\n0\r\n\r\n", 8),
    CHUNK_BAD("LF only after data", "5\r\nhello\n0\r\n\r\n", 8),
    CHUNK_BAD("CR then junk after data", "5\r\nhello\rX0\r\n\r\n", 9),
    CHUNK_BAD("data longer than size", "3\r\nhello\r\n", 6),
    CHUNK_BAD("bare CR in extension", "5;a\rb\r\nhello\r\n", 4),
    CHUNK_BAD("bare LF in extension", "5;a\nb\r\nhello\r\n", 3),
    CHUNK_BAD("NUL in extension", "5;a\0b\r\nhello\r\n", 3),
    CHUNK_BAD("trailer obs-fold", "0\r\nX: a\r\n b\r\n\r\n", 9),
    CHUNK_BAD("trailer no colon", "0\r\nJunk\r\n\r\n", 7),
    CHUNK_BAD("trailer space before colon", "0\r\nX : a\r\n\r\n", 4),
    CHUNK_BAD("trailer control char", "0\r\nX: \x01\r\n\r\n", 6),
    CHUNK_BAD("trailer bare LF", "0\r\nX: a\n\r\n", 7),
    CHUNK_BAD("final bare LF", "0\r\n\n", 3),
    CHUNK_BAD("final CR junk", "0\r\n\rX", 4),
    CHUNK_BAD("last chunk bare LF", "0\n\r\n", 1),
};

static void test_chunked_errors(void)
{
    for (size_t i = 0; i < sizeof chunk_bad / sizeof chunk_bad[0]; i++) {
        const chunk_bad_t *t = &chunk_bad[i];
        current_case = t->name;
        size_t len = t->len;
        size_t used = 0;
        sink_t sink;
        CHECK(SL_CHUNKED_ERROR, feed_pieces(t->raw, len, NULL, 0, &sink, &used));
        CHECK(t->error_at, used);
        static const size_t one[] = {1};
        CHECK(SL_CHUNKED_ERROR, feed_pieces(t->raw, len, one, 1, &sink, &used));
        CHECK(t->error_at, used);
    }

    current_case = "calls after ERROR";
    sl_chunked_t c;
    sl_chunked_init(&c);
    size_t used = 0;
    CHECK(SL_CHUNKED_ERROR, sl_chunked_feed(&c, "z", 1, &used, NULL, NULL));
    CHECK(0, used);
    CHECK(SL_CHUNKED_ERROR, sl_chunked_feed(&c, "0\r\n\r\n", 5, &used, NULL, NULL));
    CHECK(0, used);

    current_case = "15 hex digits is the largest size";
    sl_chunked_init(&c);
    CHECK(SL_CHUNKED_MORE, sl_chunked_feed(&c, "fffffffffffffff\r\nab", 19, &used, NULL, NULL));
    CHECK(19, used);
}

static void test_chunked_limits(void)
{
    static char raw[SL_CHUNKED_MAX_TRAILER + 64];
    size_t used;
    sink_t sink;

    /* the size line's extension: everything after the digits, CR included */
    current_case = "extension at the limit";
    size_t n = 0;
    raw[n++] = '1';
    raw[n++] = ';';
    memset(raw + n, 'e', SL_CHUNKED_MAX_EXT - 2);
    n += SL_CHUNKED_MAX_EXT - 2;
    n += (size_t)sprintf(raw + n, "\r\nx\r\n0\r\n\r\n");
    CHECK(SL_CHUNKED_END, feed_pieces(raw, n, NULL, 0, &sink, &used));
    CHECK(n, used);
    current_case = "extension over the limit";
    n = 0;
    raw[n++] = '1';
    raw[n++] = ';';
    memset(raw + n, 'e', SL_CHUNKED_MAX_EXT - 1);
    n += SL_CHUNKED_MAX_EXT - 1;
    n += (size_t)sprintf(raw + n, "\r\nx\r\n0\r\n\r\n");
    CHECK(SL_CHUNKED_ERROR, feed_pieces(raw, n, NULL, 0, &sink, &used));
    CHECK(1 + SL_CHUNKED_MAX_EXT, used);

    /* the trailer section: "T:" + value + CRLF + final CRLF */
    current_case = "trailer at the limit";
    n = (size_t)sprintf(raw, "0\r\nT:");
    memset(raw + n, 'v', SL_CHUNKED_MAX_TRAILER - 6);
    n += SL_CHUNKED_MAX_TRAILER - 6;
    n += (size_t)sprintf(raw + n, "\r\n\r\n");
    CHECK(SL_CHUNKED_END, feed_pieces(raw, n, NULL, 0, &sink, &used));
    CHECK(n, used);
    current_case = "trailer over the limit";
    n = (size_t)sprintf(raw, "0\r\nT:");
    memset(raw + n, 'v', SL_CHUNKED_MAX_TRAILER - 5);
    n += SL_CHUNKED_MAX_TRAILER - 5;
    n += (size_t)sprintf(raw + n, "\r\n\r\n");
    CHECK(SL_CHUNKED_ERROR, feed_pieces(raw, n, NULL, 0, &sink, &used));
    CHECK(3 + SL_CHUNKED_MAX_TRAILER, used);

    current_case = "the limit is per chunk line";
    n = 0;
    for (int i = 0; i < 3; i++) {
        raw[n++] = '1';
        raw[n++] = ';';
        memset(raw + n, 'e', SL_CHUNKED_MAX_EXT - 2);
        n += SL_CHUNKED_MAX_EXT - 2;
        n += (size_t)sprintf(raw + n, "\r\nx\r\n");
    }
    n += (size_t)sprintf(raw + n, "0\r\n\r\n");
    CHECK(SL_CHUNKED_END, feed_pieces(raw, n, NULL, 0, &sink, &used));
    CHECK(n, used);
    CHECK_MEM("xxx", sink.data, sink.n);
}

int main(void)
{
    test_valid_requests();
    test_header_values();
    test_bad_requests();
    test_every_byte();
    test_bad_byte_at_every_position();
    test_early_errors();
    test_incremental_requests();
    test_uri_limit();
    test_header_limit();
    test_header_count();
    test_valid_responses();
    test_bad_responses();
    test_response_limits();
    test_has_body();
    test_has_token();
    test_chunked_ok();
    test_chunked_end_state();
    test_chunked_random_splits();
    test_chunked_errors();
    test_chunked_limits();
    return check_summary();
}
