/* Where a token travels: an Authorization-style header, a query parameter
 * or a cookie. Plain string work on what the request carried, so it can be
 * tested on its own; values are taken as sent (a JWT needs no escaping). */
#ifndef JWT_SOURCE_H
#define JWT_SOURCE_H

#include <stdbool.h>
#include <stddef.h>

/* The token in a header value: after "Bearer " (scheme case-insensitive).
 * Without require_scheme a value without the scheme is the token itself.
 * NULL when there is none (another scheme, or nothing after it). */
const char *jwt_bearer(const char *value, size_t n, bool require_scheme, size_t *len);

/* The value of the first `name` parameter of a query string (without '?'),
 * NULL when absent. "name" without '=' has the empty value. */
const char *jwt_query_find(const char *query, size_t n, const char *name, size_t *len);

/* The query without any `name` parameter, written to out (n + 1 bytes
 * suffice); returns its length. */
size_t jwt_query_without(const char *query, size_t n, const char *name, char *out);

/* The value of the first cookie `name` in a Cookie header value (quotes
 * around it removed), NULL when absent. */
const char *jwt_cookie_find(const char *header, size_t n, const char *name, size_t *len);

/* The Cookie value without any `name` cookie, pairs joined by "; ", written
 * to out (2 * n + 1 bytes suffice: a bare ";" becomes "; "); returns its
 * length. */
size_t jwt_cookie_without(const char *header, size_t n, const char *name, char *out);

#endif
