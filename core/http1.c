/* Strict HTTP/1.x head and chunked-body parsing. See http1.h for the contract.
 *
 * The head parsers re-read the head from the start on every call instead of
 * keeping state: heads are bounded by max_header and usually arrive in one
 * read, and a stateless parser cannot get out of step with a buffer the
 * caller moved or pulled up. The first line is checked as far as it has
 * arrived, so garbage (a TLS hello on a plain port, a binary protocol) is
 * refused with 400 at once instead of after a limit or a timeout; field lines
 * wait for the blank line (see parse_fields). Whatever is decided never
 * depends on where a read ended: a prefix of the bytes gives INCOMPLETE or
 * the same verdict. */
#include "http1.h"

#include <string.h>

typedef unsigned char uchar;

/* ---- character classes (RFC 9110 §5.6.2, §5.5) ---- */

enum { TCHAR = 1, FIELD = 2, REG_NAME = 4 };

/* TCHAR: token characters. FIELD: what a field value may hold, i.e. SP,
 * HTAB, visible ASCII and obs-text; every other control (NUL, DEL, a bare
 * CR...) is refused because peers disagree on what it means. REG_NAME:
 * unreserved and sub-delims, the bytes of a host name (RFC 3986 §3.2.2).
 * A table, as these are asked once per byte of every head. */
static const uchar char_class[256] = {
    /* 0x00 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0,
    /* 0x10 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    /* 0x20 */ 2, 7, 2, 3, 7, 3, 7, 7, 6, 6, 7, 7, 6, 7, 7, 2,
    /* 0x30 */ 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 2, 6, 2, 6, 2, 2,
    /* 0x40 */ 2, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
    /* 0x50 */ 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 2, 2, 2, 3, 7,
    /* 0x60 */ 3, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
    /* 0x70 */ 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 2, 3, 2, 7, 0,
    /* 0x80 */ 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    /* 0x90 */ 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    /* 0xA0 */ 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    /* 0xB0 */ 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    /* 0xC0 */ 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    /* 0xD0 */ 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    /* 0xE0 */ 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    /* 0xF0 */ 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
};

static bool is_tchar(uchar c)
{
    return char_class[c] & TCHAR;
}

bool sl_http_is_token(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!is_tchar((uchar)s[i]))
            return false;
    return len > 0;
}

static bool is_field_char(uchar c)
{
    return char_class[c] & FIELD;
}

bool sl_http_is_field_value(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!is_field_char((uchar)s[i]))
            return false;
    return true;
}

static bool is_reg_name_char(uchar c)
{
    return char_class[c] & REG_NAME;
}

static bool is_ows(uchar c)
{
    return c == ' ' || c == '\t';
}

static bool is_digit(uchar c)
{
    return c >= '0' && c <= '9';
}

static int hex_value(uchar c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static uchar lower(uchar c)
{
    return (c >= 'A' && c <= 'Z') ? (uchar)(c + ('a' - 'A')) : c;
}

static bool eq_nocase_n(const char *a, size_t alen, const char *b, size_t blen)
{
    if (alen != blen)
        return false;
    for (size_t i = 0; i < alen; i++)
        if (lower((uchar)a[i]) != lower((uchar)b[i]))
            return false;
    return true;
}

/* For literals: the length is known when compiling. */
#define EQ_NOCASE_LIT(a, alen, lit) eq_nocase_n((a), (alen), (lit), sizeof(lit) - 1)

static bool prefix_nocase(const char *a, size_t alen, const char *prefix)
{
    size_t plen = strlen(prefix);
    return alen >= plen && eq_nocase_n(a, plen, prefix, plen);
}

/* ---- lines ---- */

typedef struct {
    const uchar *buf;
    size_t pos;
    size_t end;       /* min(len, max_header): bytes past it are never looked at */
    bool at_limit;    /* the window ends at max_header, not at the data's end */
} cursor_t;

typedef enum { LINE_OK, LINE_PARTIAL } line_result_t;

/* Splits off the next line, ended by LF or CRLF. LINE_PARTIAL gives the
 * content that has arrived (a trailing CR, maybe half of a CRLF, left out)
 * so it can be checked early. Any other CR stays in the content, where every
 * line checker refuses it: that is how a bare CR becomes a 400. */
static line_result_t next_line(cursor_t *c, const uchar **content, size_t *n)
{
    const uchar *start = c->buf + c->pos;
    const uchar *lf = memchr(start, '\n', c->end - c->pos);
    size_t stop = lf ? (size_t)(lf - c->buf) : c->end;
    *content = start;
    *n = stop - c->pos;
    if (*n > 0 && c->buf[stop - 1] == '\r')
        (*n)--;
    if (!lf)
        return LINE_PARTIAL;
    c->pos = stop + 1;
    return LINE_OK;
}

/* Out of bytes: either more may come, or the head already overflows. */
static sl_http_result_t starved(const cursor_t *c)
{
    return c->at_limit ? SL_HTTP_HEADERS_TOO_LARGE : SL_HTTP_INCOMPLETE;
}

/* ---- versions ---- */

/* Checks p[0..n) against "HTTP/" DIGIT "." DIGIT; with complete false, n may
 * be a prefix of it. Gives the two digits once all eight bytes are there. */
static sl_http_result_t check_version(const uchar *p, size_t n, bool complete, int *major, int *minor)
{
    static const char shape[] = "HTTP/0.0";
    if (n > 8 || (complete && n != 8))
        return SL_HTTP_BAD_REQUEST;
    for (size_t i = 0; i < n; i++) {
        bool ok = shape[i] == '0' ? is_digit(p[i]) : p[i] == (uchar)shape[i];
        if (!ok)
            return SL_HTTP_BAD_REQUEST;
    }
    if (n < 8)
        return SL_HTTP_INCOMPLETE;
    *major = p[5] - '0';
    *minor = p[7] - '0';
    return SL_HTTP_DONE;
}

/* ---- authority (Host header, absolute-form) ---- */

/* uri-host [ ":" port ] per RFC 3986, non-empty. Userinfo ("user@host") is
 * refused: RFC 9110 §4.2.4 asks recipients to treat it as an error, as it is
 * used to disguise the real host. */
static bool valid_authority(const uchar *p, size_t n)
{
    size_t i = 0;
    if (n == 0)
        return false;
    if (p[0] == '[') {
        for (i = 1; i < n && p[i] != ']'; i++)
            if (!is_reg_name_char(p[i]) && p[i] != ':')
                return false;
        if (i == n || i == 1)
            return false;
        i++;
    } else {
        for (; i < n && p[i] != ':'; i++) {
            if (p[i] == '%') {
                if (i + 2 >= n || hex_value(p[i + 1]) < 0 || hex_value(p[i + 2]) < 0)
                    return false;
                i += 2;
            } else if (!is_reg_name_char(p[i])) {
                return false;
            }
        }
        if (i == 0)
            return false;
    }
    if (i == n)
        return true;
    if (p[i] != ':')
        return false;
    for (i++; i < n; i++)
        if (!is_digit(p[i]))
            return false;
    return true;
}

/* ---- request line ---- */

static const char slash[] = "/";

/* Splits target into path and query, and for absolute-form its authority. */
static sl_http_result_t classify_target(sl_http_request_head_t *out)
{
    const char *t = out->target;
    size_t n = out->target_len;
    size_t path_at = 0;

    out->host = NULL;
    out->host_len = 0;
    if (n == 1 && t[0] == '*') {
        if (!(out->method_len == 7 && memcmp(out->method, "OPTIONS", 7) == 0))
            return SL_HTTP_BAD_REQUEST;
        out->path = t;
        out->path_len = 1;
        out->query = NULL;
        out->query_len = 0;
        return SL_HTTP_DONE;
    }
    if (t[0] != '/') {
        size_t scheme_len;
        if (prefix_nocase(t, n, "http://"))
            scheme_len = 7;
        else if (prefix_nocase(t, n, "https://"))
            scheme_len = 8;
        else
            return SL_HTTP_BAD_REQUEST;
        size_t a = scheme_len;
        while (a < n && t[a] != '/' && t[a] != '?')
            a++;
        if (!valid_authority((const uchar *)t + scheme_len, a - scheme_len))
            return SL_HTTP_BAD_REQUEST;
        out->host = t + scheme_len;
        out->host_len = a - scheme_len;
        path_at = a;
    }
    const char *q = memchr(t + path_at, '?', n - path_at);
    size_t path_end = q ? (size_t)(q - t) : n;
    if (path_end == path_at) {
        out->path = slash;
        out->path_len = 1;
    } else {
        out->path = t + path_at;
        out->path_len = path_end - path_at;
    }
    out->query = q ? q + 1 : NULL;
    out->query_len = q ? n - path_end - 1 : 0;
    return SL_HTTP_DONE;
}

/* method SP request-target SP HTTP-version, exactly one SP each. With
 * complete false, p[0..n) is what has arrived of the line: INCOMPLETE means
 * no error yet. */
static sl_http_result_t check_request_line(const uchar *p, size_t n, bool complete, sl_http_request_head_t *out)
{
    size_t i = 0;
    while (i < n && is_tchar(p[i]))
        i++;
    if (i == n)
        return complete ? SL_HTTP_BAD_REQUEST : SL_HTTP_INCOMPLETE;
    if (i == 0 || p[i] != ' ')
        return SL_HTTP_BAD_REQUEST;
    out->method = (const char *)p;
    out->method_len = i;

    size_t t = ++i;
    while (i < n && p[i] >= 0x21 && p[i] <= 0x7e)
        i++;
    if (i == n)
        return complete ? SL_HTTP_BAD_REQUEST : SL_HTTP_INCOMPLETE;
    if (i == t || p[i] != ' ')
        return SL_HTTP_BAD_REQUEST;
    out->target = (const char *)p + t;
    out->target_len = i - t;
    sl_http_result_t r = classify_target(out);
    if (r != SL_HTTP_DONE)
        return r;

    i++;
    int major = 0, minor = 0;
    r = check_version(p + i, n - i, complete, &major, &minor);
    if (r != SL_HTTP_DONE)
        return r;
    if (!complete)
        return SL_HTTP_INCOMPLETE;
    if (major != 1 || minor > 1)
        return SL_HTTP_VERSION_UNSUPPORTED;
    out->minor = minor;
    return SL_HTTP_DONE;
}

/* ---- status line ---- */

/* HTTP-version SP 3DIGIT [ SP reason ]. The reason and the SP before it may be
 * missing: some servers omit them and the reason carries no meaning. */
static sl_http_result_t check_status_line(const uchar *p, size_t n, bool complete, sl_http_response_head_t *out)
{
    int major = 0, minor = 0;
    sl_http_result_t r = check_version(p, n < 8 ? n : 8, complete || n > 8, &major, &minor);
    if (r == SL_HTTP_INCOMPLETE)
        return r;
    if (r != SL_HTTP_DONE || major != 1 || minor > 1)
        return SL_HTTP_BAD_REQUEST;
    out->minor = minor;
    size_t i = 8;
    if (i == n)
        return complete ? SL_HTTP_BAD_REQUEST : SL_HTTP_INCOMPLETE;
    if (p[i++] != ' ')
        return SL_HTTP_BAD_REQUEST;
    int status = 0;
    for (size_t k = 0; k < 3; k++, i++) {
        if (i == n)
            return complete ? SL_HTTP_BAD_REQUEST : SL_HTTP_INCOMPLETE;
        if (!is_digit(p[i]))
            return SL_HTTP_BAD_REQUEST;
        status = status * 10 + (p[i] - '0');
    }
    if (status < 100 || status > 599)
        return SL_HTTP_BAD_REQUEST;
    out->status = status;
    out->reason = (const char *)p + i;
    out->reason_len = 0;
    if (i < n) {
        if (p[i] != ' ')
            return SL_HTTP_BAD_REQUEST;
        i++;
        out->reason = (const char *)p + i;
        out->reason_len = n - i;
        for (; i < n; i++)
            if (!is_field_char(p[i]))
                return SL_HTTP_BAD_REQUEST;
    }
    return complete ? SL_HTTP_DONE : SL_HTTP_INCOMPLETE;
}

/* ---- field lines ---- */

/* field-name ":" OWS field-value OWS. A line starting with whitespace
 * (obs-fold) or with whitespace before the colon is refused: both have been
 * used to make two parsers see different headers. */
static sl_http_result_t check_field_line(const uchar *p, size_t n, bool complete, sl_http_header_t *h)
{
    size_t i = 0;
    while (i < n && is_tchar(p[i]))
        i++;
    if (i == n)
        return complete ? SL_HTTP_BAD_REQUEST : SL_HTTP_INCOMPLETE;
    if (i == 0 || p[i] != ':')
        return SL_HTTP_BAD_REQUEST;
    h->name = (const char *)p;
    h->name_len = i;
    i++;
    while (i < n && is_ows(p[i]))
        i++;
    size_t start = i;
    while (i < n && is_field_char(p[i]))
        i++;
    if (i < n)
        return SL_HTTP_BAD_REQUEST;
    size_t stop = n;
    while (stop > start && is_ows(p[stop - 1]))
        stop--;
    h->value = (const char *)p + start;
    h->value_len = stop - start;
    return complete ? SL_HTTP_DONE : SL_HTTP_INCOMPLETE;
}

/* Whether the blank line ending the head is within the window, looking
 * from the start of the field lines. Lines are split as next_line() does. */
static bool head_end_arrived(const cursor_t *c)
{
    size_t p = c->pos;
    for (;;) {
        if (p < c->end && c->buf[p] == '\n')
            return true;
        if (p + 1 < c->end && c->buf[p] == '\r' && c->buf[p + 1] == '\n')
            return true;
        const uchar *lf = memchr(c->buf + p, '\n', c->end - p);
        if (!lf)
            return false;
        p = (size_t)(lf - c->buf) + 1;
    }
}

/* Reads field lines up to and including the blank line.
 *
 * The field lines are judged only once the blank line is there (or the
 * window is full). A peer that sends its head a byte at a time makes the
 * caller re-offer it after every byte: judging every line again on every
 * call cost ~0.5 s of CPU for a 26 KB head sent that way, while looking for
 * the blank line (a memchr per line) costs ~0.02 s. The price is that a bad
 * field line is refused when the head ends, not when the line does. */
static sl_http_result_t parse_fields(cursor_t *c, sl_http_header_t *headers, int *n_headers)
{
    sl_http_header_t scratch;
    *n_headers = 0;
    if (!c->at_limit && !head_end_arrived(c))
        return SL_HTTP_INCOMPLETE;
    for (;;) {
        const uchar *p;
        size_t n;
        line_result_t lr = next_line(c, &p, &n);
        if (lr == LINE_PARTIAL) {
            sl_http_result_t r = check_field_line(p, n, false, &scratch);
            return r == SL_HTTP_INCOMPLETE ? starved(c) : r;
        }
        if (n == 0)
            return SL_HTTP_DONE;
        /* One too many is judged after its syntax, as a partial line is. */
        bool full = *n_headers == SL_HTTP_MAX_HEADERS;
        sl_http_result_t r = check_field_line(p, n, true, full ? &scratch : &headers[*n_headers]);
        if (r != SL_HTTP_DONE)
            return r;
        if (full)
            return SL_HTTP_HEADERS_TOO_LARGE;
        (*n_headers)++;
    }
}

/* ---- framing headers ---- */

/* One Content-Length field value: 1#(1*18DIGIT), all elements equal (RFC
 * 9112 §6.3 lets a recipient accept a repeated identical value). *cl is -1
 * on entry when no earlier Content-Length was seen. */
static bool merge_content_length(const char *v, size_t n, int64_t *cl)
{
    size_t i = 0;
    for (;;) {
        while (i < n && is_ows((uchar)v[i]))
            i++;
        size_t start = i;
        int64_t value = 0;
        /* 18 digits always fit in int64_t; stop before a 19th can overflow */
        while (i < n && is_digit((uchar)v[i])) {
            if (i - start == 18)
                return false;
            value = value * 10 + (v[i++] - '0');
        }
        if (i == start)
            return false;
        if (*cl >= 0 && *cl != value)
            return false;
        *cl = value;
        while (i < n && is_ows((uchar)v[i]))
            i++;
        if (i == n)
            return true;
        if (v[i] != ',')
            return false;
        i++;
    }
}

typedef struct {
    int64_t content_length;
    int n_te;
    bool te_chunked_only;  /* every Transfer-Encoding line is exactly "chunked" */
    bool conn_close;
    bool conn_keep_alive;
    int n_host;
    const sl_http_header_t *host;
    bool expect_continue;
} framing_t;

static sl_http_result_t scan_framing(const sl_http_header_t *h, int n, framing_t *f)
{
    memset(f, 0, sizeof *f);
    f->content_length = -1;
    f->te_chunked_only = true;
    for (int i = 0; i < n; i++) {
        const char *name = h[i].name;
        size_t len = h[i].name_len;
        if (EQ_NOCASE_LIT(name, len, "content-length")) {
            if (!merge_content_length(h[i].value, h[i].value_len, &f->content_length))
                return SL_HTTP_BAD_REQUEST;
        } else if (EQ_NOCASE_LIT(name, len, "transfer-encoding")) {
            f->n_te++;
            if (!EQ_NOCASE_LIT(h[i].value, h[i].value_len, "chunked"))
                f->te_chunked_only = false;
        } else if (EQ_NOCASE_LIT(name, len, "connection")) {
            if (sl_http_header_has_token(h[i].value, h[i].value_len, "close"))
                f->conn_close = true;
            if (sl_http_header_has_token(h[i].value, h[i].value_len, "keep-alive"))
                f->conn_keep_alive = true;
        } else if (EQ_NOCASE_LIT(name, len, "host")) {
            if (f->n_host++ == 0)
                f->host = &h[i];
        } else if (EQ_NOCASE_LIT(name, len, "expect")) {
            if (EQ_NOCASE_LIT(h[i].value, h[i].value_len, "100-continue"))
                f->expect_continue = true;
        }
    }
    return SL_HTTP_DONE;
}

/* Transfer-Encoding together with Content-Length, or in an HTTP/1.0 message,
 * is the classic request-smuggling shape (RFC 9112 §6.1, §6.3): refuse
 * rather than pick one. Two Transfer-Encoding lines combine into "chunked,
 * chunked", which is not exactly "chunked". */
static sl_http_result_t check_transfer_encoding(const framing_t *f, int minor, sl_http_result_t unsupported)
{
    if (f->n_te == 0)
        return SL_HTTP_DONE;
    if (minor == 0 || f->content_length >= 0)
        return SL_HTTP_BAD_REQUEST;
    if (f->n_te > 1 || !f->te_chunked_only)
        return unsupported;
    return SL_HTTP_DONE;
}

/* ---- requests ---- */

sl_http_result_t sl_http_parse_request_head(const char *buf, size_t len, size_t max_uri, size_t max_header,
                                            sl_http_request_head_t *out, size_t *consumed)
{
    cursor_t c = {
        .buf = (const uchar *)buf,
        .pos = 0,
        .end = len < max_header ? len : max_header,
        .at_limit = len >= max_header,
    };
    const uchar *p;
    size_t n;
    line_result_t lr;

    *consumed = 0;
    out->n_headers = 0;
    if (len == 0)
        return starved(&c);
    /* RFC 9112 §2.2: a CRLF left after a previous message's body is skipped. */
    do {
        lr = next_line(&c, &p, &n);
    } while (lr == LINE_OK && n == 0);
    /* Only the first max_uri bytes are judged, and before the length, so
     * that the verdict does not depend on how much of the line arrived. */
    bool whole = lr == LINE_OK && n <= max_uri;
    sl_http_result_t r = check_request_line(p, n <= max_uri ? n : max_uri, whole, out);
    if (r == SL_HTTP_INCOMPLETE) {
        if (n > max_uri)
            return SL_HTTP_URI_TOO_LONG;
        return starved(&c);
    }
    if (r != SL_HTTP_DONE)
        return r;

    r = parse_fields(&c, out->headers, &out->n_headers);
    if (r != SL_HTTP_DONE)
        return r;

    framing_t f;
    r = scan_framing(out->headers, out->n_headers, &f);
    if (r != SL_HTTP_DONE)
        return r;
    /* RFC 9112 §3.2: exactly one valid Host on 1.1, at most one on 1.0. */
    if (f.n_host > 1 || (f.n_host == 0 && out->minor == 1))
        return SL_HTTP_BAD_REQUEST;
    if (f.host && !valid_authority((const uchar *)f.host->value, f.host->value_len))
        return SL_HTTP_BAD_REQUEST;
    r = check_transfer_encoding(&f, out->minor, SL_HTTP_NOT_IMPLEMENTED);
    if (r != SL_HTTP_DONE)
        return r;

    /* absolute-form's authority wins over Host (RFC 9112 §3.2.2) */
    if (!out->host && f.host) {
        out->host = f.host->value;
        out->host_len = f.host->value_len;
    }
    out->content_length = f.content_length;
    out->chunked = f.n_te > 0;
    out->keep_alive = out->minor == 1 ? !f.conn_close : (f.conn_keep_alive && !f.conn_close);
    out->expect_continue = f.expect_continue && out->minor == 1;
    *consumed = c.pos;
    return SL_HTTP_DONE;
}

/* ---- responses ---- */

static bool status_allows_body(int status)
{
    return !(status < 200 || status == 204 || status == 304);
}

bool sl_http_response_has_body(const char *method, size_t method_len, int status)
{
    if (method && method_len == 4 && memcmp(method, "HEAD", 4) == 0)
        return false;
    if (method && method_len == 7 && memcmp(method, "CONNECT", 7) == 0 && status >= 200 && status < 300)
        return false;
    return status_allows_body(status);
}

sl_http_result_t sl_http_parse_response_head(const char *buf, size_t len, size_t max_header,
                                             sl_http_response_head_t *out, size_t *consumed)
{
    cursor_t c = {
        .buf = (const uchar *)buf,
        .pos = 0,
        .end = len < max_header ? len : max_header,
        .at_limit = len >= max_header,
    };
    const uchar *p;
    size_t n;

    *consumed = 0;
    out->n_headers = 0;
    if (len == 0)
        return starved(&c);
    line_result_t lr = next_line(&c, &p, &n);
    sl_http_result_t r = check_status_line(p, n, lr == LINE_OK, out);
    if (lr == LINE_PARTIAL)
        return r == SL_HTTP_INCOMPLETE ? starved(&c) : r;
    if (r != SL_HTTP_DONE)
        return r;

    r = parse_fields(&c, out->headers, &out->n_headers);
    if (r != SL_HTTP_DONE)
        return r;

    framing_t f;
    r = scan_framing(out->headers, out->n_headers, &f);
    if (r != SL_HTTP_DONE)
        return r;
    /* A transfer coding we cannot undo leaves no way to find the body's end
     * short of the close, and a gateway must not guess: 502. */
    r = check_transfer_encoding(&f, out->minor, SL_HTTP_BAD_REQUEST);
    if (r != SL_HTTP_DONE)
        return r;

    out->content_length = f.content_length;
    out->chunked = f.n_te > 0;
    bool reusable = out->minor == 1 ? !f.conn_close : (f.conn_keep_alive && !f.conn_close);
    if (out->content_length < 0 && !out->chunked && status_allows_body(out->status))
        reusable = false;
    out->keep_alive = reusable;
    *consumed = c.pos;
    return SL_HTTP_DONE;
}

/* ---- header helpers ---- */

const sl_http_header_t *sl_http_find_header(const sl_http_header_t *h, int n, const char *name)
{
    size_t name_len = strlen(name);
    for (int i = 0; i < n; i++)
        if (eq_nocase_n(h[i].name, h[i].name_len, name, name_len))
            return &h[i];
    return NULL;
}

bool sl_http_header_has_token(const char *value, size_t len, const char *token)
{
    return sl_http_header_has_token_n(value, len, token, strlen(token));
}

bool sl_http_header_has_token_n(const char *value, size_t len, const char *token, size_t token_len)
{
    size_t i = 0;
    while (i < len) {
        size_t start = i;
        while (i < len && value[i] != ',')
            i++;
        size_t stop = i;
        while (start < stop && is_ows((uchar)value[start]))
            start++;
        while (stop > start && is_ows((uchar)value[stop - 1]))
            stop--;
        if (eq_nocase_n(value + start, stop - start, token, token_len))
            return true;
        i++;
    }
    return false;
}

/* ---- chunked bodies (RFC 9112 §7.1) ---- */

enum {
    CH_SIZE = 0,      /* first hex digit of a size */
    CH_SIZE_MORE,     /* more digits, or what follows them */
    CH_SIZE_WS,       /* BWS after the digits: only an extension may follow */
    CH_EXT,           /* extension, ignored up to CR */
    CH_SIZE_LF,
    CH_DATA,
    CH_DATA_CR,
    CH_DATA_LF,
    CH_TRAILER,       /* start of a trailer line, or of the final CRLF */
    CH_TRAILER_NAME,
    CH_TRAILER_VALUE,
    CH_TRAILER_LF,
    CH_END_LF,
    CH_END,
    CH_ERROR,
};

#define CH_MAX_DIGITS 15   /* 60 bits: no overflow, and no real body is larger */

void sl_chunked_init(sl_chunked_t *c)
{
    memset(c, 0, sizeof *c);
    c->state = CH_SIZE;
}

/* One byte of framing; returns false on a syntax error or an exceeded limit. */
static bool chunked_step(sl_chunked_t *c, uchar b)
{
    int hex;
    switch (c->state) {
    case CH_SIZE:
        if ((hex = hex_value(b)) < 0)
            return false;
        c->remaining = (uint64_t)hex;
        c->digits = 1;
        c->overhead = 0;
        c->state = CH_SIZE_MORE;
        return true;
    case CH_SIZE_MORE:
        if ((hex = hex_value(b)) >= 0) {
            if (++c->digits > CH_MAX_DIGITS)
                return false;
            c->remaining = (c->remaining << 4) | (uint64_t)hex;
            return true;
        }
        if (b == '\r')
            c->state = CH_SIZE_LF;
        else if (b == ';')
            c->state = CH_EXT;
        else if (is_ows(b))
            c->state = CH_SIZE_WS;
        else
            return false;
        break;
    case CH_SIZE_WS:
        if (b == ';')
            c->state = CH_EXT;
        else if (!is_ows(b))
            return false;
        break;
    case CH_EXT:
        if (b == '\r')
            c->state = CH_SIZE_LF;
        else if (!is_field_char(b))
            return false;
        break;
    case CH_SIZE_LF:
        if (b != '\n')
            return false;
        c->overhead = 0;
        c->state = c->remaining == 0 ? CH_TRAILER : CH_DATA;
        return true;
    case CH_DATA_CR:
        if (b != '\r')
            return false;
        c->state = CH_DATA_LF;
        return true;
    case CH_DATA_LF:
        if (b != '\n')
            return false;
        c->state = CH_SIZE;
        return true;
    case CH_TRAILER:
        if (b == '\r')
            c->state = CH_END_LF;
        else if (is_tchar(b))
            c->state = CH_TRAILER_NAME;
        else
            return false;
        break;
    case CH_TRAILER_NAME:
        if (b == ':')
            c->state = CH_TRAILER_VALUE;
        else if (!is_tchar(b))
            return false;
        break;
    case CH_TRAILER_VALUE:
        if (b == '\r')
            c->state = CH_TRAILER_LF;
        else if (!is_field_char(b))
            return false;
        break;
    case CH_TRAILER_LF:
        if (b != '\n')
            return false;
        c->state = CH_TRAILER;
        break;
    case CH_END_LF:
        if (b != '\n')
            return false;
        c->state = CH_END;
        break;
    default:
        return false;
    }
    /* Only the bytes after a size's digits and the trailer section get
     * here: framing that carries no data, so it is bounded. */
    size_t limit = c->state >= CH_TRAILER ? SL_CHUNKED_MAX_TRAILER : SL_CHUNKED_MAX_EXT;
    return ++c->overhead <= limit;
}

sl_chunked_result_t sl_chunked_feed(sl_chunked_t *c, const char *in, size_t len, size_t *used,
                                    void (*emit)(void *arg, const char *data, size_t n), void *arg)
{
    size_t i = 0;
    *used = 0;
    if (c->state == CH_END)
        return SL_CHUNKED_END;
    if (c->state == CH_ERROR)
        return SL_CHUNKED_ERROR;
    while (i < len) {
        if (c->state == CH_DATA) {
            size_t run = len - i;
            if ((uint64_t)run > c->remaining)
                run = (size_t)c->remaining;
            if (emit)
                emit(arg, in + i, run);
            i += run;
            c->remaining -= run;
            if (c->remaining == 0)
                c->state = CH_DATA_CR;
            continue;
        }
        if (!chunked_step(c, (uchar)in[i])) {
            c->state = CH_ERROR;
            *used = i;
            return SL_CHUNKED_ERROR;
        }
        i++;
        if (c->state == CH_END) {
            *used = i;
            return SL_CHUNKED_END;
        }
    }
    *used = i;
    return SL_CHUNKED_MORE;
}
