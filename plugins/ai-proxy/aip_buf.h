/* A growable byte buffer with a ceiling, for upstream bodies and the stream
 * output held back before the first content: a provider that sends more than
 * the ceiling is treated as failing instead of growing the worker's memory. */
#ifndef AIP_BUF_H
#define AIP_BUF_H

#include <stdbool.h>
#include <stddef.h>

typedef struct aip_buf {
    char *p;      /* NUL-terminated after len bytes once anything was added */
    size_t len, cap;
    size_t limit; /* 0 = no ceiling */
    bool over;    /* an append was refused by the ceiling (or by malloc) */
} aip_buf_t;

/* 0, or -1 (and over set) when the bytes do not fit under the ceiling. */
int aip_buf_add(aip_buf_t *b, const char *data, size_t len);
int aip_buf_str(aip_buf_t *b, const char *s);
/* Forgets the content, keeps the memory and the ceiling. */
void aip_buf_reset(aip_buf_t *b);
void aip_buf_free(aip_buf_t *b);

#endif
