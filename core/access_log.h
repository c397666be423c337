/* One JSON line per finished request, written with a single write(2) on an
 * O_APPEND descriptor so lines from several workers never interleave. */
#ifndef SLUICE_ACCESS_LOG_H
#define SLUICE_ACCESS_LOG_H

#include "request.h"

typedef struct sl_access_log sl_access_log_t;

/* where: "stdout", "off", or a file path. NULL and *err set on failure. */
sl_access_log_t *sl_access_log_open(const char *where, char *err, size_t errlen);
void sl_access_log_close(sl_access_log_t *l);
/* status_override != 0 replaces r->status (e.g. 499 when the client left). */
void sl_access_log_write(sl_access_log_t *l, const sl_request_t *r, int status_override);

#endif
