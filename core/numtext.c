#include "numtext.h"

#include <string.h>

size_t sl_format_uint64(uint64_t v, char *out)
{
    char digits[SL_INT_TEXT_MAX];
    char *p = digits + sizeof digits;
    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    size_t n = (size_t)(digits + sizeof digits - p);
    memcpy(out, p, n);
    return n;
}

size_t sl_format_int64(int64_t v, char *out)
{
    if (v >= 0)
        return sl_format_uint64((uint64_t)v, out);
    out[0] = '-';
    /* The magnitude as unsigned, so INT64_MIN needs no special case. */
    return 1 + sl_format_uint64(0 - (uint64_t)v, out + 1);
}
