/* Counter keys: rl:{<route>|<part>|<part>...}:<limit index>:<window start>.
 *
 * The braces are a Redis Cluster hash tag around what identifies the client,
 * so all counters of one request live in one slot and one Lua script may
 * touch them all. Each value is %-encoded (everything but letters, digits
 * and -._~:@+/=,;!*'()$& becomes %XX), so "|", "{", "}" and "%" inside a value
 * can neither end the tag nor make two different clients look alike. A value
 * longer than RL_PART_MAX once encoded is replaced by "#" and the hex SHA-256
 * of the raw value, which bounds key sizes whatever a client sends. A part
 * the request does not have (no consumer, header absent) is "-"; the global
 * part is "*". */
#ifndef RL_KEY_H
#define RL_KEY_H

#include <stddef.h>
#include <stdint.h>

#include "rl_conf.h"

#define RL_PART_MAX 128
/* "rl:{" + route and 8 parts of at most RL_PART_MAX, "|" before each part, "}" */
#define RL_PREFIX_MAX (4 + (RL_MAX_KEY_PARTS + 1) * RL_PART_MAX + RL_MAX_KEY_PARTS + 1)
/* prefix + ":" + index + ":" + a window start or "tat" */
#define RL_KEY_MAX (RL_PREFIX_MAX + 32)

/* Appends the encoding of value (see above) at out + *len; out has room for
 * RL_PART_MAX more bytes and a NUL. value NULL means the part is missing. */
void rl_key_append_part(char *out, size_t *len, const char *value, size_t vlen);

/* Builds the prefix "rl:{...}" from the route name and part values (NULL for
 * missing ones). out must hold RL_PREFIX_MAX + 1 bytes. Returns the length. */
size_t rl_key_prefix_from(const char *route, const char *const *values, const size_t *lens,
                          int n, char *out);

/* The prefix of request r under config c (route = the request's route). */
size_t rl_key_prefix(const rl_conf_t *c, sl_req_t *r, char *out);

/* prefix + ":<index>:<window start ms>", or ":<index>:tat" when
 * window_start_ms < 0. out must hold RL_KEY_MAX + 1 bytes. */
size_t rl_key_counter(const char *prefix, int index, int64_t window_start_ms, char *out);

/* Just the tail rl_key_counter puts after the prefix, ":<index>:<window
 * start ms>" or ":<index>:tat", NUL-terminated (at most 32 bytes with it).
 * Returns its length. */
size_t rl_key_counter_suffix(int index, int64_t window_start_ms, char *out);

/* The counter keys of one check: they differ from the prefix only in
 * their tail, so the prefix is copied once and the tail rewritten per
 * counter. */
typedef struct rl_counter_key {
    char text[RL_KEY_MAX + 1];
    size_t plen, len;   /* the prefix's length; the whole key's */
} rl_counter_key_t;

void rl_counter_key_init(rl_counter_key_t *k, const char *prefix, size_t prefix_len);

/* Makes k the key of counter index at window_start_ms (< 0: ":tat", the
 * token bucket's); returns k->text. */
const char *rl_counter_key_at(rl_counter_key_t *k, int index, int64_t window_start_ms);

/* v in decimal, NUL-terminated (out holds 21 bytes). Returns the length.
 * What snprintf("%lld") writes, without its cost on the request path. */
size_t rl_format_int(int64_t v, char *out);

#endif
