/* Shared dictionary: a process-wide key/value store with TTLs and LRU
 * eviction, used by plugins (C and Lua) for counters and caches that every
 * worker thread must see: local rate limits, token budgets, response caches.
 *
 * Workers hit it on the request path from their own threads, so a dict is
 * split into lock stripes (up to 64), each with its own mutex, hash table,
 * LRU list and share of the byte budget. A key always lives in the same
 * stripe, so every call takes exactly one short lock and never allocates or
 * frees while holding it (entries are built before locking and the ones a
 * call displaces are freed after unlocking).
 *
 * Sizes. max_bytes bounds everything the dict allocates for its data: each
 * entry costs sl_shdict_entry_size(klen, vlen) and each stripe's hash table
 * costs one pointer per slot (tables start at 8 slots and double, making room
 * by eviction, when a stripe holds more entries than slots). The budget is
 * divided evenly between stripes and a stripe evicts its own least recently
 * used entries when full, so the largest storable entry is a bit under
 * max_bytes / stripes. A dict gets 64 stripes from 2 MiB up, fewer below so
 * that a stripe keeps at least 32 KiB, and a single stripe (so one exact LRU)
 * under 64 KiB.
 *
 * Time is monotonic milliseconds passed in by the caller, so tests are exact.
 * Expired entries are invisible; they are removed when a call touches them
 * and by sl_shdict_sweep, meant for a timer.
 *
 * Keys are arbitrary bytes (1..SL_SHDICT_MAX_KEY) and are hashed with a keyed
 * SipHash so clients cannot choose keys that share a chain. Values are
 * arbitrary bytes (0..SL_SHDICT_MAX_VALUE). Every call is safe from any
 * thread; bad arguments (NULL dict, NULL key, empty key, NULL value with a
 * length, negative TTL) return -1 and change nothing. */
#ifndef SLUICE_SHDICT_H
#define SLUICE_SHDICT_H

#include <stddef.h>
#include <stdint.h>

#define SL_SHDICT_MIN_BYTES 1024
#define SL_SHDICT_MAX_KEY   65535
#define SL_SHDICT_MAX_VALUE ((size_t)UINT32_MAX)

typedef struct sl_shdict sl_shdict_t;

/* NULL if name is NULL or empty, max_bytes < SL_SHDICT_MIN_BYTES, or no
 * memory. The name is copied. */
sl_shdict_t *sl_shdict_new(const char *name, size_t max_bytes);
/* Not for dicts obtained from sl_shdict_named: those belong to the registry
 * and this call ignores them. NULL is fine. */
void sl_shdict_free(sl_shdict_t *d);

/* Registry of named dicts, process-wide and thread-safe, so that a dict
 * outlives config reloads: the first call for a name creates it with
 * max_bytes_if_new, later calls return the same dict whatever size they ask
 * for (compare sl_shdict_max_bytes to warn that a resize needs a restart).
 * NULL on the same inputs as sl_shdict_new. */
sl_shdict_t *sl_shdict_named(const char *name, size_t max_bytes_if_new);
/* Frees every registered dict; only once no thread uses them any more (at
 * exit). The registry can be used again afterwards. */
void sl_shdict_registry_free(void);

/* 1 found: *len = the value's length and the value is copied to buf, unless
 * cap < *len, which returns -1 and copies nothing (call again with a bigger
 * buf). 0 missing or expired. -1 bad arguments. buf may be NULL when cap is 0;
 * len and ttl_left_ms may be NULL. *ttl_left_ms is the time to expiry (> 0),
 * or -1 when the entry never expires. A hit makes the entry most recently
 * used. */
int sl_shdict_get(sl_shdict_t *d, const char *key, size_t klen, char *buf, size_t cap, size_t *len,
                  int64_t *ttl_left_ms, int64_t now_ms);

/* Stores key = val, replacing any value and its TTL. ttl_ms 0 = no expiry.
 * Evicts least recently used entries of the key's stripe to make room.
 * 0 ok; -1 bad arguments, no memory, or an entry too big for a stripe (the
 * old value, if any, is then left as it was). */
int sl_shdict_set(sl_shdict_t *d, const char *key, size_t klen, const char *val, size_t vlen,
                  int64_t ttl_ms, int64_t now_ms);

/* Like set, but only when the key is absent or expired: 1 added, 0 exists
 * (left untouched), -1 as set. */
int sl_shdict_add(sl_shdict_t *d, const char *key, size_t klen, const char *val, size_t vlen,
                  int64_t ttl_ms, int64_t now_ms);

/* Atomically adds delta to an integer value stored as decimal text (as set
 * would store "42"). A missing or expired key starts from init (the result is
 * init + delta) and gets ttl_ms (0 = none); an existing key keeps its expiry,
 * so a counter created with a TTL is a fixed window. 0 ok with the new value
 * in *out (out may be NULL); -1 when the stored value is not a decimal int64
 * ("-" optional, digits only, no spaces), the sum overflows int64, bad
 * arguments or no memory; the stored value is unchanged on -1. */
int sl_shdict_incr(sl_shdict_t *d, const char *key, size_t klen, int64_t delta, int64_t init,
                   int64_t ttl_ms, int64_t now_ms, int64_t *out);

/* 1 deleted, 0 missing, -1 bad arguments. This call takes no time, so an
 * entry that has expired but was not yet removed counts as deleted. */
int sl_shdict_delete(sl_shdict_t *d, const char *key, size_t klen);

/* Removes up to max expired entries and returns how many it removed (0 when
 * max <= 0 or d is NULL). Each stripe is scanned in short locked slices, and
 * a sweep that stops at max resumes where it stopped next time. */
int sl_shdict_sweep(sl_shdict_t *d, int max, int64_t now_ms);

/* Bytes currently accounted against max_bytes (entries and hash tables). */
size_t sl_shdict_bytes_used(sl_shdict_t *d);

/* What the dict was created with (0 / NULL for a NULL dict). */
size_t sl_shdict_max_bytes(const sl_shdict_t *d);
const char *sl_shdict_name(const sl_shdict_t *d);

/* The bytes one entry is charged. Counters created by incr reserve room for
 * any int64 (vlen 20) so later increments rewrite them in place. */
size_t sl_shdict_entry_size(size_t klen, size_t vlen);

#endif
