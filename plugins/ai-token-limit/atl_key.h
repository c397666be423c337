/* Counter names: atl:{<part>|<part>...}:<window ms>:<window start ms>.
 *
 * The braces are a Redis Cluster hash tag, so every counter of one client
 * is in one slot and one script may touch them all. Part values come from
 * the config (consumer and tenant names, route names) but are %-encoded
 * anyway (all but letters, digits and -._~) so a "|" or "}" in a name can
 * neither end the tag nor make two clients share a budget. A part the
 * request does not have is "-". Counters are named by the window rather
 * than the limit's position, so every route whose key resolves alike shares
 * a consumer's budget per window. */
#ifndef ATL_KEY_H
#define ATL_KEY_H

#include <stddef.h>
#include <stdint.h>

#include "atl_conf.h"

/* The prefix for request r, in request memory; NULL when out of memory. */
char *atl_key_prefix(const atl_conf_t *c, sl_req_t *r);

/* Builds the prefix from part values (NULL = missing) into out (cap bytes);
 * the length, or 0 when it does not fit. */
size_t atl_key_prefix_from(const char *const *values, int n, char *out, size_t cap);

/* Window start for a time (windows start on multiples of their length
 * since the Unix epoch). */
int64_t atl_window_start(int64_t now_ms, int64_t window_ms);

/* prefix:<window_ms>:<start>; out must hold strlen(prefix) + 48 bytes. */
void atl_key_counter(const char *prefix, int64_t window_ms, int64_t start_ms, char *out, size_t cap);

#endif
