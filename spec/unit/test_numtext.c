/* Integer text without printf: the edges snprintf("%lld"/"%llu") agrees on. */
#include <stdio.h>

#include "check.h"
#include "numtext.h"

static void same_as_printf_signed(int64_t v)
{
    char want[32], got[SL_INT_TEXT_MAX + 1];
    snprintf(want, sizeof want, "%lld", (long long)v);
    got[sl_format_int64(v, got)] = '\0';
    CHECK_STR(want, got);
}

static void same_as_printf_unsigned(uint64_t v)
{
    char want[32], got[SL_INT_TEXT_MAX + 1];
    snprintf(want, sizeof want, "%llu", (unsigned long long)v);
    got[sl_format_uint64(v, got)] = '\0';
    CHECK_STR(want, got);
}

int main(void)
{
    const int64_t s[] = { 0, 1, -1, 9, 10, -10, 99, 100, 1234567890123, -1234567890123,
                          INT64_MAX, INT64_MIN, INT64_MIN + 1 };
    for (size_t i = 0; i < sizeof s / sizeof s[0]; i++)
        same_as_printf_signed(s[i]);
    const uint64_t u[] = { 0, 7, 10, 65535, UINT64_MAX, UINT64_MAX - 1, 10000000000000000000u };
    for (size_t i = 0; i < sizeof u / sizeof u[0]; i++)
        same_as_printf_unsigned(u[i]);
    char out[SL_INT_TEXT_MAX];
    CHECK_INT(20, sl_format_int64(INT64_MIN, out));   /* the longest fits exactly */
    CHECK_INT(20, sl_format_uint64(UINT64_MAX, out));
    return check_summary();
}
