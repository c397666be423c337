/* A per-request bump allocator: everything a request needs (copied head,
 * normalised path, header lists, proxy state) is freed at once when the
 * request ends, so the hot path makes few malloc calls and cannot leak
 * piecemeal. */
#ifndef SLUICE_ARENA_H
#define SLUICE_ARENA_H

#include <stddef.h>

typedef struct sl_arena_block sl_arena_block_t;
typedef struct sl_arena {
    sl_arena_block_t *head;
    size_t used;          /* bytes used in head */
    size_t cap;           /* capacity of head */
} sl_arena_t;

void sl_arena_init(sl_arena_t *a);
void *sl_arena_alloc(sl_arena_t *a, size_t n);      /* zeroed, 16-byte aligned; NULL on OOM */
/* Not zeroed: for large structs the caller fills before reading. */
void *sl_arena_alloc_raw(sl_arena_t *a, size_t n);
char *sl_arena_strndup(sl_arena_t *a, const char *s, size_t n);
void sl_arena_free(sl_arena_t *a);
/* Empties a, keeping one standard-size block (if it has one) for its next
 * use: a recycled request then starts without a malloc. */
void sl_arena_reset(sl_arena_t *a);

#endif
