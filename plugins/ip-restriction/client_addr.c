#include "client_addr.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef enum { WALK_CLIENT, WALK_ALL_TRUSTED, WALK_BAD } walk_t;

/* Walks one header value right to left. *last holds the leftmost trusted
 * entry seen so far, for when every entry turns out trusted. */
static walk_t walk_value(const char *v, size_t vlen, const ip_cidr_list_t *trusted, ip_addr_t *out,
                         ip_addr_t *last, bool *seen)
{
    size_t end = vlen;
    for (;;) {
        size_t start = end;
        while (start > 0 && v[start - 1] != ',')
            start--;
        const char *elem = v + start;
        size_t elen = end - start;
        size_t blank = 0;
        while (blank < elen && (elem[blank] == ' ' || elem[blank] == '\t'))
            blank++;
        /* "a, , b" or a trailing comma: an empty slot names nobody. */
        if (blank < elen) {
            ip_addr_t a;
            if (ip_addr_parse_forwarded(elem, elen, &a) != 0)
                return WALK_BAD;
            if (!ip_cidr_list_contains(trusted, &a)) {
                *out = a;
                return WALK_CLIENT;
            }
            *last = a;
            *seen = true;
        }
        if (start == 0)
            return WALK_ALL_TRUSTED;
        end = start - 1;
    }
}

int client_addr(const sl_host_t *host, sl_req_t *r, const ip_cidr_list_t *trusted, ip_addr_t *out)
{
    const char *peer = host->req_client_ip(r);
    ip_addr_t p;
    if (!peer || ip_addr_parse(peer, strlen(peer), &p) != 0)
        return -1;
    if (!ip_cidr_list_contains(trusted, &p)) {
        *out = p;
        return 0;
    }
    int n = 0;
    const char *name, *value;
    size_t nlen, vlen;
    while (host->req_header_at(r, n, &name, &nlen, &value, &vlen))
        n++;
    ip_addr_t last = p;
    bool seen = false;
    for (int i = n - 1; i >= 0; i--) {
        host->req_header_at(r, i, &name, &nlen, &value, &vlen);
        if (nlen != 15 || strncasecmp(name, "X-Forwarded-For", 15) != 0)
            continue;
        switch (walk_value(value, vlen, trusted, out, &last, &seen)) {
        case WALK_CLIENT:
            return 0;
        case WALK_BAD:
            return -1;
        case WALK_ALL_TRUSTED:
            break;
        }
    }
    *out = last;
    return 0;
}

int cidr_list_from_json(const sl_host_t *host, const sl_json_t *arr, const char *field,
                        ip_cidr_list_t *out, char *err, size_t errlen)
{
    out->items = NULL;
    out->n = 0;
    size_t n = arr ? host->json_len(arr) : 0;
    if (n == 0)
        return 0;
    out->items = calloc(n, sizeof *out->items);
    if (!out->items) {
        snprintf(err, errlen, "%s: out of memory", field);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        size_t len = 0;
        const char *s = host->json_string(host->json_at(arr, i), &len);
        if (!s || ip_cidr_parse(s, len, &out->items[i]) != 0) {
            snprintf(err, errlen, "%s[%zu]: invalid CIDR \"%s\"", field, i, s ? s : "");
            cidr_list_free(out);
            return -1;
        }
    }
    out->n = n;
    return 0;
}

void cidr_list_free(ip_cidr_list_t *l)
{
    free(l->items);
    l->items = NULL;
    l->n = 0;
}
