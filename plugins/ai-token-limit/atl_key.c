/* Counter names; see atl_key.h. */
#include "atl_key.h"

#include <stdio.h>
#include <string.h>

#include "atl_host.h"

static int plain(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-' ||
           ch == '.' || ch == '_' || ch == '~';
}

size_t atl_key_prefix_from(const char *const *values, int n, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t len = 0;
#define PUT(ch)                \
    do {                       \
        if (len + 1 >= cap)    \
            return 0;          \
        out[len++] = (ch);     \
    } while (0)
    PUT('a'); PUT('t'); PUT('l'); PUT(':'); PUT('{');
    for (int i = 0; i < n; i++) {
        if (i > 0)
            PUT('|');
        if (!values[i]) {
            PUT('-');
            continue;
        }
        for (const unsigned char *p = (const unsigned char *)values[i]; *p; p++) {
            if (plain(*p)) {
                PUT((char)*p);
            } else {
                PUT('%');
                PUT(hex[*p >> 4]);
                PUT(hex[*p & 0xf]);
            }
        }
    }
    PUT('}');
#undef PUT
    out[len] = '\0';
    return len;
}

char *atl_key_prefix(const atl_conf_t *c, sl_req_t *r)
{
    const char *values[ATL_MAX_KEY_PARTS];
    size_t need = 8;
    for (int i = 0; i < c->n_parts; i++) {
        switch (c->parts[i]) {
        case ATL_PART_CONSUMER: values[i] = atl_host->ctx_get(r, "consumer", NULL); break;
        case ATL_PART_TENANT: values[i] = atl_host->ctx_get(r, "consumer.tenant", NULL); break;
        case ATL_PART_ROUTE: values[i] = atl_host->req_route(r); break;
        }
        need += 1 + (values[i] ? 3 * strlen(values[i]) : 1);
    }
    char *out = atl_host->req_alloc(r, need);
    if (!out || atl_key_prefix_from(values, c->n_parts, out, need) == 0)
        return NULL;
    return out;
}

int64_t atl_window_start(int64_t now_ms, int64_t window_ms)
{
    return now_ms - now_ms % window_ms;
}

void atl_key_counter(const char *prefix, int64_t window_ms, int64_t start_ms, char *out, size_t cap)
{
    snprintf(out, cap, "%s:%lld:%lld", prefix, (long long)window_ms, (long long)start_ms);
}
