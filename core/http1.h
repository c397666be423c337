/* Strict HTTP/1.x message parsing: request heads, response heads, chunked
 * bodies (RFC 9110/9112).
 *
 * sluice parses HTTP itself rather than through libevhtp's parser, which reads
 * past the buffer when a read ends inside the request line and cannot answer
 * 413/414/431. These parsers never allocate and never read past `len`. The
 * head parsers are stateless: the caller keeps the bytes contiguous and offers
 * the whole head again as more arrive (pulling up min(available, max_header)
 * bytes is enough for every limit to be decided). Parsed pointers point into
 * the caller's buffer; re-parsing an exact copy of the head (*consumed bytes)
 * gives the same result, so a caller that copies the head can re-parse the
 * copy instead of rebasing pointers. */
#ifndef SLUICE_HTTP1_H
#define SLUICE_HTTP1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct sl_http_header {
    const char *name;
    size_t name_len;
    const char *value;      /* surrounding SP/HTAB trimmed */
    size_t value_len;
} sl_http_header_t;

#define SL_HTTP_MAX_HEADERS 128

typedef enum {
    SL_HTTP_INCOMPLETE = 0,             /* need more bytes */
    SL_HTTP_DONE = 1,                   /* head parsed; *consumed = bytes of the head including the blank line */
    SL_HTTP_BAD_REQUEST = -400,         /* malformed line or header, bad or conflicting Content-Length,
                                           Content-Length with Transfer-Encoding, Transfer-Encoding in
                                           HTTP/1.0, obs-fold, bare CR, NUL, space before ':', missing (1.1),
                                           repeated or invalid Host */
    SL_HTTP_URI_TOO_LONG = -414,        /* request line longer than max_uri (even if not yet complete) */
    SL_HTTP_HEADERS_TOO_LARGE = -431,   /* head longer than max_header (even if incomplete), or more than
                                           SL_HTTP_MAX_HEADERS field lines */
    SL_HTTP_NOT_IMPLEMENTED = -501,     /* Transfer-Encoding other than exactly "chunked" (case-insensitive) */
    SL_HTTP_VERSION_UNSUPPORTED = -505, /* well-formed version that is not HTTP/1.0 or HTTP/1.1 */
} sl_http_result_t;

typedef struct sl_http_request_head {
    const char *method;
    size_t method_len;
    const char *target;     /* as sent: origin-form "/p?q", absolute-form "http://h/p?q", or "*" (OPTIONS) */
    size_t target_len;
    const char *path;       /* absolute-form: the path after the authority, "/" if empty */
    size_t path_len;
    const char *query;      /* after '?', without it; NULL if none */
    size_t query_len;
    int minor;              /* 0 or 1 */
    sl_http_header_t headers[SL_HTTP_MAX_HEADERS];
    int n_headers;
    int64_t content_length; /* -1 when absent */
    bool chunked;
    bool keep_alive;        /* HTTP/1.1 unless "Connection: close"; HTTP/1.0 only with keep-alive */
    bool expect_continue;   /* "Expect: 100-continue" on HTTP/1.1 (ignored on 1.0, RFC 9110 §10.1.1) */
    const char *host;       /* authority of absolute-form, else the Host header; NULL if none */
    size_t host_len;
} sl_http_request_head_t;

/* Limits: the request line (without its CRLF) may be max_uri bytes; the head,
 * counted from buf[0] (skipped leading empty lines included) through the
 * blank line, may be max_header bytes. A bad request line is refused as soon
 * as its bad byte is in; field lines are judged once the blank line is in or
 * the head fills max_header. `out` is meaningful only on DONE; *consumed is
 * 0 unless DONE. */
sl_http_result_t sl_http_parse_request_head(const char *buf, size_t len, size_t max_uri, size_t max_header,
                                            sl_http_request_head_t *out, size_t *consumed);

typedef struct sl_http_response_head {
    int status;             /* 100..599 */
    int minor;
    const char *reason;     /* may be empty */
    size_t reason_len;
    sl_http_header_t headers[SL_HTTP_MAX_HEADERS];
    int n_headers;
    int64_t content_length; /* -1 absent */
    bool chunked;
    bool keep_alive;        /* the upstream connection may be reused after this response */
} sl_http_response_head_t;

/* Errors are SL_HTTP_BAD_REQUEST (malformed: the caller answers 502) and
 * SL_HTTP_HEADERS_TOO_LARGE. keep_alive is judged from the status alone: a
 * response with neither Content-Length nor chunked is close-delimited unless
 * its status forbids a body. The parser cannot know the request was HEAD, so
 * the caller treats the connection as reusable after a bodiless HEAD
 * response that has no "Connection: close" itself. */
sl_http_result_t sl_http_parse_response_head(const char *buf, size_t len, size_t max_header,
                                             sl_http_response_head_t *out, size_t *consumed);

/* Whether a response to `method` with `status` has a body at all (HEAD, 1xx,
 * 204, 304 and 2xx to CONNECT don't). `method` may be NULL. */
bool sl_http_response_has_body(const char *method, size_t method_len, int status);

/* Bounds on the bytes a chunked body may spend on framing that carries no
 * data, so a peer cannot keep the decoder busy forever. */
#define SL_CHUNKED_MAX_EXT 4096         /* bytes after the size digits on one chunk line */
#define SL_CHUNKED_MAX_TRAILER 32768    /* whole trailer section, including its final CRLF */

/* Incremental chunked-body decoder. Chunk extensions are accepted and
 * ignored; trailers are checked for syntax and dropped. Sizes are 1 to 15 hex
 * digits. Chunk framing lines must end in CRLF (a bare LF is an error here:
 * peers disagreeing on it is how chunked bodies get smuggled). */
typedef struct sl_chunked {
    int state;
    uint64_t remaining;     /* data bytes left in the current chunk, or the size being read */
    unsigned digits;        /* hex digits of the size line so far */
    size_t overhead;        /* extension or trailer bytes so far, against the limits above */
} sl_chunked_t;

void sl_chunked_init(sl_chunked_t *c);

typedef enum { SL_CHUNKED_MORE = 0, SL_CHUNKED_END = 1, SL_CHUNKED_ERROR = -1 } sl_chunked_result_t;

/* Consumes bytes from in[0..len); *used = bytes consumed. At END the bytes
 * after the message are not consumed (they belong to the next pipelined
 * message); further calls return END with *used = 0, and after ERROR every
 * call returns ERROR. emit(arg, data, n) is called for each decoded data run,
 * with pointers into `in`; emit may be NULL to discard the data. */
sl_chunked_result_t sl_chunked_feed(sl_chunked_t *c, const char *in, size_t len, size_t *used,
                                    void (*emit)(void *arg, const char *data, size_t n), void *arg);

/* Finds a header (case-insensitive name); returns the first, or NULL. */
const sl_http_header_t *sl_http_find_header(const sl_http_header_t *h, int n, const char *name);

/* Does a comma-separated header value (e.g. Connection) contain token
 * (case-insensitive, surrounding SP/HTAB ignored)? */
/* An RFC 9110 token (a header name, a method): non-empty, tchars only. */
bool sl_http_is_token(const char *s, size_t len);
/* What a field value may hold: SP, HTAB, visible ASCII, obs-text. A CR, LF
 * or NUL from a plugin would start a header (or a message) of its own. */
bool sl_http_is_field_value(const char *s, size_t len);
bool sl_http_header_has_token(const char *value, size_t len, const char *token);
/* The same for a token of token_len bytes (not NUL-terminated). */
bool sl_http_header_has_token_n(const char *value, size_t len, const char *token, size_t token_len);

#endif
