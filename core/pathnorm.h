/* Request path normalisation for route matching.
 *
 * Matching must see one canonical spelling of a path, or "/api/../admin"
 * would match the prefix "/api/" and "/%61dmin" would slip past a route for
 * "/admin".
 * The upstream still receives the original request target: only the router
 * looks at the normalised form. */
#ifndef SLUICE_PATHNORM_H
#define SLUICE_PATHNORM_H

#include <stddef.h>
#include <sys/types.h>

/* Normalises a request path for matching (RFC 3986 5.2.4 dot-segment removal, %-decoding of unreserved characters only
   (ALPHA DIGIT - . _ ~), uppercase hex in remaining escapes, merge of repeated slashes). Writes into out (capacity
   out_cap >= in_len + 1), NUL-terminates, returns the length, or -1 if the path is invalid (not starting with '/',
   a bad %-escape, a NUL byte or an encoded NUL "%00", or ".." climbing above the root).
   A trailing slash is kept ("/a/" stays "/a/", "/a/b/.." gives "/a/"). in and out must not overlap.
   Also returns -1 when out_cap < in_len + 1. */
ssize_t sl_path_normalize(const char *in, size_t in_len, char *out, size_t out_cap);

#endif
