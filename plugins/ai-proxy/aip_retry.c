#include "aip_retry.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static bool field_is(const json_t *obj, const char *key, const char *want)
{
    const char *v = json_string_value(json_object_get(obj, key));
    return v && strcmp(v, want) == 0;
}

bool aip_is_quota_error(const json_t *body)
{
    const json_t *e = json_object_get(body, "error");
    return json_is_object(e) && (field_is(e, "code", "insufficient_quota") || field_is(e, "type", "insufficient_quota"));
}

bool aip_status_retryable(int status, const json_t *body)
{
    switch (status) {
    case 429:
        return !aip_is_quota_error(body);
    case 408:
    case 500:
    case 502:
    case 503:
    case 504:
    case 529:
        return true;
    default:
        return false;
    }
}

static const char *header(int n, const char *const *h, const char *name)
{
    for (int i = 0; i < n; i++)
        if (h[2 * i] && h[2 * i + 1] && strcasecmp(h[2 * i], name) == 0)
            return h[2 * i + 1];
    return NULL;
}

/* A non-negative decimal number (fractions allowed) times scale, rounded up
 * so that "0.5" seconds still means a wait; -1 when not a number. */
static int64_t number_ms(const char *s, double scale)
{
    while (*s == ' ' || *s == '\t')
        s++;
    if (!isdigit((unsigned char)*s))
        return -1;
    char *end;
    double v = strtod(s, &end);
    while (*end == ' ' || *end == '\t')
        end++;
    if (*end != '\0' || v < 0 || v > 86400.0 * 1000 * 365)
        return -1;
    double ms = v * scale;
    int64_t whole = (int64_t)ms;
    return (double)whole < ms ? whole + 1 : whole;
}

static int64_t http_date_ms(const char *s, time_t now)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *end = strptime(s, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (!end || *end != '\0')
        return -1;
    time_t at = timegm(&tm);
    if (at == (time_t)-1)
        return -1;
    return at <= now ? 0 : (int64_t)(at - now) * 1000;
}

int64_t aip_retry_hint_ms(int n_headers, const char *const *headers, time_t now)
{
    const char *v = header(n_headers, headers, "retry-after-ms");
    int64_t ms;
    if (v && (ms = number_ms(v, 1.0)) >= 0)
        return ms;
    v = header(n_headers, headers, "x-ms-retry-after-ms");
    if (v && (ms = number_ms(v, 1.0)) >= 0)
        return ms;
    v = header(n_headers, headers, "retry-after");
    if (!v)
        return -1;
    if ((ms = number_ms(v, 1000.0)) >= 0)
        return ms;
    return http_date_ms(v, now);
}

int aip_client_status(int provider_status)
{
    return provider_status == 529 ? 503 : provider_status;
}
