/* Finding and removing one parameter in a URL query string
 * ("a=1&api_key=k&b=2"), the way HTML forms encode them: '&' separates
 * parameters, %XX escapes a byte and '+' stands for a space. */
#ifndef SLUICE_QUERY_PARAMS_H
#define SLUICE_QUERY_PARAMS_H

#include <stddef.h>

typedef enum { PARAM_ABSENT = 0, PARAM_FOUND, PARAM_MALFORMED } param_result_t;

/* The decoded value of the first parameter named `name` (compared after
 * decoding). out needs qlen + 1 bytes; the value is NUL-terminated there.
 * PARAM_MALFORMED when that value has a broken %-escape. */
param_result_t query_param_get(const char *query, size_t qlen, const char *name, char *out,
                               size_t *out_len);

/* The query without any parameter named `name`, other parameters byte for
 * byte as they came. out needs qlen + 1 bytes. Returns the new length and
 * sets *removed to the number of parameters dropped. */
size_t query_param_remove(const char *query, size_t qlen, const char *name, char *out, int *removed);

#endif
