/* libFuzzer harness for core/http1.c: feeds each input to the request-head,
 * response-head and chunked parsers and aborts when a property breaks.
 * Build and run: see README.md in this folder.
 *
 * Properties checked besides the sanitizers' memory checks:
 *  - results are one of the documented codes;
 *  - a DONE head lies within the buffer and within max_header, and every
 *    parsed pointer points into it;
 *  - the verdict does not depend on where a read ended: any prefix of the
 *    input gives INCOMPLETE or the same verdict, and once the head is there
 *    the same head;
 *  - the chunked decoder gives the same result, the same consumed count and
 *    the same data whether fed whole, one byte at a time, or in uneven pieces.
 *
 * The first input byte picks the limits, so the fuzzer reaches the 414/431
 * boundaries with short inputs. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http1.h"

static const size_t uri_limits[] = {16, 64, 8192};
static const size_t header_limits[] = {32, 256, 32768};

#define REQUIRE(cond) \
    do { \
        if (!(cond)) \
            abort(); \
    } while (0)

static sl_http_request_head_t req, req2;
static sl_http_response_head_t resp, resp2;

static bool inside(const char *p, size_t n, const char *buf, size_t len)
{
    return p >= buf && n <= len && (size_t)(p - buf) <= len - n;
}

static char *exact_copy(const uint8_t *data, size_t n)
{
    char *p = malloc(n ? n : 1);
    REQUIRE(p != NULL);
    if (n)
        memcpy(p, data, n);
    return p;
}

static bool known_request_result(sl_http_result_t r)
{
    switch (r) {
    case SL_HTTP_INCOMPLETE: case SL_HTTP_DONE: case SL_HTTP_BAD_REQUEST: case SL_HTTP_URI_TOO_LONG:
    case SL_HTTP_HEADERS_TOO_LARGE: case SL_HTTP_NOT_IMPLEMENTED: case SL_HTTP_VERSION_UNSUPPORTED:
        return true;
    }
    return false;
}

static void check_headers(const sl_http_header_t *h, int n, const char *buf, size_t consumed)
{
    REQUIRE(n >= 0 && n <= SL_HTTP_MAX_HEADERS);
    for (int i = 0; i < n; i++) {
        REQUIRE(h[i].name_len > 0 && inside(h[i].name, h[i].name_len, buf, consumed));
        REQUIRE(inside(h[i].value, h[i].value_len, buf, consumed));
    }
}

/* Prefix lengths to try: all of them for short inputs, a spread otherwise. */
static size_t prefix_at(size_t i, size_t len, size_t *count)
{
    *count = len <= 256 ? len : 64;
    return len <= 256 ? i : i * len / 64;
}

static void fuzz_request(const uint8_t *data, size_t len, size_t max_uri, size_t max_header)
{
    char *buf = exact_copy(data, len);
    size_t consumed = 1;
    sl_http_result_t r = sl_http_parse_request_head(buf, len, max_uri, max_header, &req, &consumed);
    REQUIRE(known_request_result(r));
    if (r == SL_HTTP_DONE) {
        REQUIRE(consumed > 0 && consumed <= len && consumed <= max_header);
        REQUIRE(req.minor == 0 || req.minor == 1);
        REQUIRE(req.method_len > 0 && inside(req.method, req.method_len, buf, consumed));
        REQUIRE(req.target_len > 0 && inside(req.target, req.target_len, buf, consumed));
        REQUIRE(req.path_len > 0);
        REQUIRE(inside(req.path, req.path_len, buf, consumed) || (req.path_len == 1 && req.path[0] == '/'));
        REQUIRE(!req.query || inside(req.query, req.query_len, buf, consumed));
        REQUIRE(!req.host || (req.host_len > 0 && inside(req.host, req.host_len, buf, consumed)));
        REQUIRE(req.minor == 0 || req.host != NULL);
        REQUIRE(!(req.chunked && req.content_length >= 0));
        REQUIRE(req.content_length >= -1);
        check_headers(req.headers, req.n_headers, buf, consumed);
        const sl_http_header_t *host = sl_http_find_header(req.headers, req.n_headers, "HOST");
        REQUIRE(req.minor == 0 || host != NULL);
        if (host && req.target[0] == '/')
            REQUIRE(req.host == host->value && req.host_len == host->value_len);
    } else {
        REQUIRE(consumed == 0);
    }

    size_t count;
    prefix_at(0, len, &count);
    for (size_t i = 0; i < count; i++) {
        size_t k = prefix_at(i, len, &count);
        char *part = exact_copy(data, k);
        size_t c2 = 1;
        sl_http_result_t r2 = sl_http_parse_request_head(part, k, max_uri, max_header, &req2, &c2);
        if (r == SL_HTTP_DONE && k >= consumed)
            REQUIRE(r2 == SL_HTTP_DONE && c2 == consumed && req2.n_headers == req.n_headers);
        else
            REQUIRE(r2 == SL_HTTP_INCOMPLETE || r2 == r);
        free(part);
    }
    free(buf);
}

static void fuzz_response(const uint8_t *data, size_t len, size_t max_header)
{
    char *buf = exact_copy(data, len);
    size_t consumed = 1;
    sl_http_result_t r = sl_http_parse_response_head(buf, len, max_header, &resp, &consumed);
    REQUIRE(r == SL_HTTP_INCOMPLETE || r == SL_HTTP_DONE || r == SL_HTTP_BAD_REQUEST ||
            r == SL_HTTP_HEADERS_TOO_LARGE);
    if (r == SL_HTTP_DONE) {
        REQUIRE(consumed > 0 && consumed <= len && consumed <= max_header);
        REQUIRE(resp.status >= 100 && resp.status <= 599);
        REQUIRE(resp.minor == 0 || resp.minor == 1);
        REQUIRE(inside(resp.reason, resp.reason_len, buf, consumed));
        REQUIRE(!(resp.chunked && resp.content_length >= 0));
        check_headers(resp.headers, resp.n_headers, buf, consumed);
        bool body = sl_http_response_has_body(buf, len < 7 ? len : 7, resp.status);
        REQUIRE(!body || resp.status >= 200);
        REQUIRE(!(resp.keep_alive && body && resp.content_length < 0 && !resp.chunked));
    } else {
        REQUIRE(consumed == 0);
    }

    size_t count;
    prefix_at(0, len, &count);
    for (size_t i = 0; i < count; i++) {
        size_t k = prefix_at(i, len, &count);
        char *part = exact_copy(data, k);
        size_t c2 = 1;
        sl_http_result_t r2 = sl_http_parse_response_head(part, k, max_header, &resp2, &c2);
        if (r == SL_HTTP_DONE && k >= consumed)
            REQUIRE(r2 == SL_HTTP_DONE && c2 == consumed && resp2.status == resp.status);
        else
            REQUIRE(r2 == SL_HTTP_INCOMPLETE || r2 == r);
        free(part);
    }
    free(buf);
}

/* A running digest of the decoded bytes, so runs can be compared without
 * storing them. */
typedef struct {
    uint64_t hash;
    uint64_t n;
} digest_t;

static void digest_emit(void *arg, const char *d, size_t n)
{
    digest_t *g = arg;
    REQUIRE(n > 0);
    for (size_t i = 0; i < n; i++)
        g->hash = (g->hash ^ (uint8_t)d[i]) * 1099511628211ULL;
    g->n += n;
}

/* piece == 0: whole input at once; otherwise piece sizes 1..piece cycling. */
static sl_chunked_result_t decode(const uint8_t *data, size_t len, size_t piece, digest_t *g, size_t *total)
{
    sl_chunked_t c;
    sl_chunked_init(&c);
    g->hash = 14695981039346656037ULL;
    g->n = 0;
    *total = 0;
    sl_chunked_result_t r = SL_CHUNKED_MORE;
    size_t pos = 0, step = 0;
    do {
        size_t n = piece ? 1 + step++ % piece : len;
        if (n > len - pos)
            n = len - pos;
        char *buf = exact_copy(data + pos, n);
        size_t used = n + 1;
        r = sl_chunked_feed(&c, buf, n, &used, digest_emit, g);
        free(buf);
        REQUIRE(used <= n);
        REQUIRE(r == SL_CHUNKED_MORE || r == SL_CHUNKED_END || r == SL_CHUNKED_ERROR);
        REQUIRE(r != SL_CHUNKED_MORE || used == n);
        *total += used;
        pos += n;
    } while (r == SL_CHUNKED_MORE && pos < len);
    if (r != SL_CHUNKED_MORE) {
        size_t used = 1;
        REQUIRE(sl_chunked_feed(&c, (const char *)data, len, &used, digest_emit, g) == r && used == 0);
    }
    return r;
}

static void fuzz_chunked(const uint8_t *data, size_t len)
{
    digest_t whole, bytes, pieces;
    size_t t_whole, t_bytes, t_pieces;
    sl_chunked_result_t r = decode(data, len, 0, &whole, &t_whole);
    REQUIRE(decode(data, len, 1, &bytes, &t_bytes) == r);
    REQUIRE(decode(data, len, 7, &pieces, &t_pieces) == r);
    REQUIRE(t_whole == t_bytes && t_whole == t_pieces);
    REQUIRE(whole.n == bytes.n && whole.n == pieces.n);
    REQUIRE(whole.hash == bytes.hash && whole.hash == pieces.hash);
    REQUIRE(whole.n <= t_whole);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t max_uri = uri_limits[data[0] % 3];
    size_t max_header = header_limits[(data[0] / 3) % 3];
    data++;
    size--;
    fuzz_request(data, size, max_uri, max_header);
    fuzz_response(data, size, max_header);
    fuzz_chunked(data, size);
    return 0;
}
