#include "arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct sl_arena_block {
    sl_arena_block_t *next;
    size_t cap;
    _Alignas(16) unsigned char data[];
};

#define SL_ARENA_BLOCK 8192

void sl_arena_init(sl_arena_t *a) { memset(a, 0, sizeof *a); }

void *sl_arena_alloc(sl_arena_t *a, size_t n)
{
    void *p = sl_arena_alloc_raw(a, n);
    if (p)
        memset(p, 0, (n + 15) & ~(size_t)15);
    return p;
}

void *sl_arena_alloc_raw(sl_arena_t *a, size_t n)
{
    if (n > SIZE_MAX / 2)   /* rounding up and the block header must not wrap */
        return NULL;
    n = (n + 15) & ~(size_t)15;
    if (!a->head || a->used + n > a->cap) {
        size_t cap = n > SL_ARENA_BLOCK ? n : SL_ARENA_BLOCK;
        sl_arena_block_t *b = malloc(sizeof *b + cap);
        if (!b)
            return NULL;
        b->cap = cap;
        b->next = a->head;
        a->head = b;
        a->used = 0;
        a->cap = cap;
    }
    void *p = a->head->data + a->used;
    a->used += n;
    return p;
}

char *sl_arena_strndup(sl_arena_t *a, const char *s, size_t n)
{
    char *p = sl_arena_alloc_raw(a, n + 1);   /* every byte is written below */
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

void sl_arena_free(sl_arena_t *a)
{
    sl_arena_block_t *b = a->head;
    while (b) {
        sl_arena_block_t *next = b->next;
        free(b);
        b = next;
    }
    memset(a, 0, sizeof *a);
}

void sl_arena_reset(sl_arena_t *a)
{
    sl_arena_block_t *keep = NULL, *b = a->head;
    while (b) {
        sl_arena_block_t *next = b->next;
        if (!keep && b->cap == SL_ARENA_BLOCK)
            keep = b;
        else
            free(b);
        b = next;
    }
    if (keep)
        keep->next = NULL;
    a->head = keep;
    a->used = 0;
    a->cap = keep ? keep->cap : 0;
}
