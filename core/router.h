/* Route matching, compiled once per config snapshot.
 *
 * Precedence among routes whose path matches: exact paths, then prefixes
 * (longest first), then regexes (declaration order), then routes without
 * paths. Ties keep declaration order. The first candidate whose hosts,
 * methods and headers all pass wins; no winner means 404.
 *
 * A prefix ending in "/" (written "/api/" and a star) also matches the same
 * path without that slash ("/api"): that is what people writing it expect.
 * Hosts compare case-insensitively, without the port and without one
 * trailing dot; "*.example.com" needs at least one label before
 * ".example.com". Header values compare exactly (case-sensitive), or by an
 * unanchored POSIX ERE when written "~ regex". A method not in SL_M_* (0)
 * passes only routes that allow any method.
 *
 * A router is immutable once built and shared by every worker. */
#ifndef SLUICE_ROUTER_H
#define SLUICE_ROUTER_H

#include <stddef.h>

#include "config.h"

typedef struct sl_router sl_router_t;

/* Compiles every route of cfg (regexes with regcomp REG_EXTENDED|REG_NOSUB; exact paths into a hash table; prefixes
   sorted longest first). Returns NULL and adds "route NAME: ..." messages to errs on failure (all problems, not just
   the first; errs may be NULL). Keeps pointers into cfg: the router lives exactly as long as the config snapshot.
   Exact and prefix paths are normalised with sl_path_normalize() so they compare with normalised request paths. */
sl_router_t *sl_router_build(const sl_config_t *cfg, sl_errors_t *errs);
void sl_router_free(sl_router_t *r);

typedef struct sl_route_query {
    const char *host; size_t host_len;     /* Host header value as received (may carry :port, any case); may be NULL */
    unsigned method;                       /* one SL_M_* bit; 0 for an unknown method (matches only routes with methods==0) */
    const char *path; size_t path_len;     /* normalised path, no query */
    /* header lookup: returns the value of the first header named `name` (lowercase), or NULL; *len set */
    const char *(*header)(void *arg, const char *name, size_t *len);
    void *header_arg;
} sl_route_query_t;

/* Neither path nor header values need to be NUL-terminated. Allocation-free
 * except inside glibc's regexec() when a regex (path or header) is tried. */
const sl_route_t *sl_router_match(const sl_router_t *r, const sl_route_query_t *q);

#endif
