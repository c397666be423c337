#include "request_slots.h"

#include <stdint.h>

static size_t bucket_of(const void *key)
{
    /* Fibonacci hashing: allocator addresses share their low bits */
    uint64_t h = (uint64_t)(uintptr_t)key * UINT64_C(0x9E3779B97F4A7C15);
    return (size_t)(h >> 54) % REQUEST_SLOTS_BUCKETS;
}

void request_slots_add(request_slots_t *s, request_slot_t *node, const void *key)
{
    size_t b = bucket_of(key);
    node->key = key;
    node->prev = NULL;
    node->next = s->bucket[b];
    if (node->next)
        node->next->prev = node;
    s->bucket[b] = node;
    s->count++;
}

request_slot_t *request_slots_find(const request_slots_t *s, const void *key)
{
    for (request_slot_t *n = s->bucket[bucket_of(key)]; n; n = n->next)
        if (n->key == key)
            return n;
    return NULL;
}

void request_slots_remove(request_slots_t *s, request_slot_t *node)
{
    if (node->prev)
        node->prev->next = node->next;
    else
        s->bucket[bucket_of(node->key)] = node->next;
    if (node->next)
        node->next->prev = node->prev;
    node->prev = node->next = NULL;
    s->count--;
}
