#include "aip_buf.h"

#include <stdlib.h>
#include <string.h>

int aip_buf_add(aip_buf_t *b, const char *data, size_t len)
{
    if (b->over)
        return -1;
    if (b->limit && len > b->limit - b->len) {
        b->over = true;
        return -1;
    }
    if (b->len + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + len + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->over = true;
            return -1;
        }
        b->p = p;
        b->cap = cap;
    }
    if (len)
        memcpy(b->p + b->len, data, len);
    b->len += len;
    b->p[b->len] = '\0';
    return 0;
}

int aip_buf_str(aip_buf_t *b, const char *s)
{
    return aip_buf_add(b, s, strlen(s));
}

void aip_buf_reset(aip_buf_t *b)
{
    b->len = 0;
    b->over = false;
    if (b->p)
        b->p[0] = '\0';
}

void aip_buf_free(aip_buf_t *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
    b->over = false;
}
