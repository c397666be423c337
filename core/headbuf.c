#include "headbuf.h"

#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>

#include "numtext.h"

void sl_headbuf_init(sl_headbuf_t *hb)
{
    hb->p = hb->stack;
    hb->len = 0;
    hb->cap = sizeof hb->stack;
    hb->failed = false;
}

static bool grow(sl_headbuf_t *hb, size_t need)
{
    size_t cap = hb->cap;
    while (cap - hb->len < need)
        cap *= 2;
    char *p = hb->p == hb->stack ? malloc(cap) : realloc(hb->p, cap);
    if (!p) {
        hb->failed = true;
        return false;
    }
    if (hb->p == hb->stack)
        memcpy(p, hb->stack, hb->len);
    hb->p = p;
    hb->cap = cap;
    return true;
}

void sl_headbuf_add(sl_headbuf_t *hb, const char *s, size_t n)
{
    if (hb->failed || (hb->cap - hb->len < n && !grow(hb, n)))
        return;
    memcpy(hb->p + hb->len, s, n);
    hb->len += n;
}

void sl_headbuf_str(sl_headbuf_t *hb, const char *s) { sl_headbuf_add(hb, s, strlen(s)); }

void sl_headbuf_field(sl_headbuf_t *hb, const char *name, size_t nlen, const char *value, size_t vlen)
{
    size_t n = nlen + vlen + 4;
    if (hb->failed || (hb->cap - hb->len < n && !grow(hb, n)))
        return;
    char *o = hb->p + hb->len;
    memcpy(o, name, nlen);
    o += nlen;
    *o++ = ':';
    *o++ = ' ';
    memcpy(o, value, vlen);
    o += vlen;
    *o++ = '\r';
    *o++ = '\n';
    hb->len += n;
}

void sl_headbuf_uint(sl_headbuf_t *hb, unsigned long long v)
{
    char digits[SL_INT_TEXT_MAX];
    sl_headbuf_add(hb, digits, sl_format_uint64(v, digits));
}

int sl_headbuf_flush(sl_headbuf_t *hb, struct evbuffer *out)
{
    int rc = hb->failed ? -1 : evbuffer_add(out, hb->p, hb->len);
    if (hb->p != hb->stack)
        free(hb->p);
    sl_headbuf_init(hb);
    return rc;
}
