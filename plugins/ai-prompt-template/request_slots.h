/* Per-request state a plugin finds again in later phases. The SDK has no
 * per-request slot for a plugin, and the ctx holds only strings (which any
 * plugin, Lua ones too, may overwrite), so each worker keeps a small table
 * from request handle to state: a worker runs all phases of its requests,
 * so the table needs no lock. The node lives inside the caller's state
 * (memory from host->req_alloc); the caller removes it in its
 * host->req_cleanup callback, before the request's memory goes. */
#ifndef SLUICE_REQUEST_SLOTS_H
#define SLUICE_REQUEST_SLOTS_H

#include <stddef.h>

#define REQUEST_SLOTS_BUCKETS 1024

typedef struct request_slot {
    const void *key;
    struct request_slot *prev, *next;
} request_slot_t;

typedef struct request_slots {
    request_slot_t *bucket[REQUEST_SLOTS_BUCKETS];
    size_t count;
} request_slots_t;

void request_slots_add(request_slots_t *s, request_slot_t *node, const void *key);
/* The node added with this key, or NULL. */
request_slot_t *request_slots_find(const request_slots_t *s, const void *key);
void request_slots_remove(request_slots_t *s, request_slot_t *node);

#endif
