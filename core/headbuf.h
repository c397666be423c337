/* Builds an HTTP message head in one contiguous piece before it goes into an
 * evbuffer with a single add: an evbuffer_add per name, ": ", value and CRLF
 * (and the buffer callbacks each one runs) cost more than the head itself.
 * Small heads stay on the stack; bigger ones move to the heap. */
#ifndef SLUICE_HEADBUF_H
#define SLUICE_HEADBUF_H

#include <stdbool.h>
#include <stddef.h>

struct evbuffer;

typedef struct sl_headbuf {
    char *p;
    size_t len, cap;
    bool failed;             /* out of memory: flush refuses */
    char stack[2048];
} sl_headbuf_t;

void sl_headbuf_init(sl_headbuf_t *hb);
void sl_headbuf_add(sl_headbuf_t *hb, const char *s, size_t n);
void sl_headbuf_str(sl_headbuf_t *hb, const char *s);
/* "name: value\r\n" */
void sl_headbuf_field(sl_headbuf_t *hb, const char *name, size_t nlen, const char *value, size_t vlen);
void sl_headbuf_uint(sl_headbuf_t *hb, unsigned long long v);
/* Appends the head to out and releases hb. 0, or -1 (nothing added) after
 * an allocation failure. */
int sl_headbuf_flush(sl_headbuf_t *hb, struct evbuffer *out);

#endif
