/* The small value parsers the config and plugin schemas share. */
#include <ctype.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "config.h"

/* Nine digits keep fraction * unit (at most 1e9 * 3.6e6) inside int64. */
#define MAX_FRACTION_DIGITS 9

static int read_whole(const char **p, int64_t *out)
{
    const char *s = *p;
    int64_t v = 0;
    if (!isdigit((unsigned char)*s))
        return -1;
    for (; isdigit((unsigned char)*s); s++) {
        int d = *s - '0';
        if (v > (INT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *p = s;
    *out = v;
    return 0;
}

int sl_parse_duration_ms(const char *s, int64_t *out)
{
    if (!s)
        return -1;
    const char *p = s;
    int64_t whole, frac = 0, scale = 1;
    if (read_whole(&p, &whole) != 0)
        return -1;
    bool has_fraction = *p == '.';
    if (has_fraction) {
        p++;
        if (!isdigit((unsigned char)*p))
            return -1;
        for (int digits = 0; isdigit((unsigned char)*p); p++, digits++) {
            if (digits >= MAX_FRACTION_DIGITS) {
                if (*p != '0')
                    return -1;
                continue;
            }
            frac = frac * 10 + (*p - '0');
            scale *= 10;
        }
    }
    int64_t unit;
    if (*p == '\0' && !has_fraction)
        unit = 1;  /* a bare integer is milliseconds */
    else if (strcmp(p, "ms") == 0)
        unit = 1;
    else if (strcmp(p, "s") == 0)
        unit = 1000;
    else if (strcmp(p, "m") == 0)
        unit = 60 * 1000;
    else if (strcmp(p, "h") == 0)
        unit = 3600 * 1000;
    else
        return -1;
    if (whole > INT64_MAX / unit)
        return -1;
    /* Timers here tick in milliseconds; a finer value would be silently
     * rounded, so it is refused instead. */
    if ((frac * unit) % scale != 0)
        return -1;
    int64_t ms = whole * unit, extra = frac * unit / scale;
    if (ms > INT64_MAX - extra)
        return -1;
    *out = ms + extra;
    return 0;
}

int sl_parse_size(const char *s, int64_t *out)
{
    if (!s)
        return -1;
    const char *p = s;
    int64_t n;
    if (read_whole(&p, &n) != 0)
        return -1;
    int64_t unit;
    if (*p == '\0' || strcasecmp(p, "b") == 0)
        unit = 1;
    else if (strcasecmp(p, "k") == 0 || strcasecmp(p, "kb") == 0)
        unit = INT64_C(1) << 10;
    else if (strcasecmp(p, "m") == 0 || strcasecmp(p, "mb") == 0)
        unit = INT64_C(1) << 20;
    else if (strcasecmp(p, "g") == 0 || strcasecmp(p, "gb") == 0)
        unit = INT64_C(1) << 30;
    else
        return -1;
    if (n > INT64_MAX / unit)
        return -1;
    *out = n * unit;
    return 0;
}

static const struct {
    const char *name;
    unsigned bit;
} methods[] = {
    {"GET", SL_M_GET},         {"HEAD", SL_M_HEAD},       {"POST", SL_M_POST},
    {"PUT", SL_M_PUT},         {"DELETE", SL_M_DELETE},   {"PATCH", SL_M_PATCH},
    {"OPTIONS", SL_M_OPTIONS}, {"CONNECT", SL_M_CONNECT}, {"TRACE", SL_M_TRACE},
};

unsigned sl_method_bit(const char *m, size_t len)
{
    if (!m)
        return 0;
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        if (strlen(methods[i].name) == len && memcmp(methods[i].name, m, len) == 0)
            return methods[i].bit;
    return 0;
}
