/* Decimal text of integers without printf, for the hot paths (heads,
 * counters, pool keys) where snprintf's format parsing cost more than the
 * digits. */
#ifndef SLUICE_NUMTEXT_H
#define SLUICE_NUMTEXT_H

#include <stddef.h>
#include <stdint.h>

#define SL_INT_TEXT_MAX 20   /* the longest: "-9223372036854775808" */

/* Writes v's digits (with '-' when negative) to out; no NUL. Returns the
 * length. out must hold SL_INT_TEXT_MAX bytes. */
size_t sl_format_int64(int64_t v, char *out);
size_t sl_format_uint64(uint64_t v, char *out);

#endif
