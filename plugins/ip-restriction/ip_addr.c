#include "ip_addr.h"

#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>

static const uint8_t v4_mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

int ip_addr_parse(const char *s, size_t len, ip_addr_t *out)
{
    char buf[64];
    /* inet_pton wants a C string and rejects nothing after a NUL, so a NUL
     * inside the input must not cut it short into something valid. */
    if (len == 0 || len >= sizeof buf || memchr(s, '\0', len))
        return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    memset(out, 0, sizeof *out);
    if (inet_pton(AF_INET, buf, out->bytes) == 1) {
        out->family = AF_INET;
        return 0;
    }
    if (inet_pton(AF_INET6, buf, out->bytes) != 1)
        return -1;
    out->family = AF_INET6;
    if (memcmp(out->bytes, v4_mapped_prefix, sizeof v4_mapped_prefix) == 0) {
        memmove(out->bytes, out->bytes + 12, 4);
        memset(out->bytes + 4, 0, 12);
        out->family = AF_INET;
    }
    return 0;
}

static bool all_digits(const char *s, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

int ip_addr_parse_forwarded(const char *s, size_t len, ip_addr_t *out)
{
    while (len > 0 && (*s == ' ' || *s == '\t')) {
        s++;
        len--;
    }
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    if (len > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', len);
        if (!close)
            return -1;
        size_t inner = (size_t)(close - s) - 1;
        size_t rest = len - inner - 2;
        const char *after = close + 1;
        if (rest > 0 && (after[0] != ':' || !all_digits(after + 1, rest - 1)))
            return -1;
        if (ip_addr_parse(s + 1, inner, out) != 0 || out->family != AF_INET6)
            return -1;
        return 0;
    }
    if (ip_addr_parse(s, len, out) == 0)
        return 0;
    /* "a.b.c.d:port": exactly one colon, so it cannot be an IPv6 address. */
    const char *colon = memchr(s, ':', len);
    if (!colon || memchr(colon + 1, ':', len - (size_t)(colon - s) - 1))
        return -1;
    size_t host_len = (size_t)(colon - s);
    if (!all_digits(colon + 1, len - host_len - 1))
        return -1;
    if (ip_addr_parse(s, host_len, out) != 0 || out->family != AF_INET)
        return -1;
    return 0;
}

static void clear_host_bits(ip_addr_t *a, int bits)
{
    for (int i = 0; i < 16; i++) {
        int keep = bits - 8 * i;
        if (keep >= 8)
            continue;
        a->bytes[i] &= keep <= 0 ? 0 : (uint8_t)(0xff << (8 - keep));
    }
}

int ip_cidr_parse(const char *s, size_t len, ip_cidr_t *out)
{
    const char *slash = memchr(s, '/', len);
    size_t addr_len = slash ? (size_t)(slash - s) : len;
    if (ip_addr_parse(s, addr_len, &out->net) != 0)
        return -1;
    int max = out->net.family == AF_INET ? 32 : 128;
    /* A mapped IPv6 block names IPv4 addresses: its prefix counts the 96
     * bits of the mapping prefix too. */
    int mapped = out->net.family == AF_INET && memchr(s, ':', addr_len) != NULL;
    if (!slash) {
        out->bits = max;
        return 0;
    }
    const char *p = slash + 1;
    size_t plen = len - addr_len - 1;
    if (!all_digits(p, plen) || plen > 3 || (plen > 1 && p[0] == '0'))
        return -1;
    int bits = 0;
    for (size_t i = 0; i < plen; i++)
        bits = bits * 10 + (p[i] - '0');
    if (mapped) {
        if (bits < 96 || bits > 128)
            return -1;
        bits -= 96;
    }
    if (bits > max)
        return -1;
    out->bits = bits;
    clear_host_bits(&out->net, bits);
    return 0;
}

bool ip_cidr_contains(const ip_cidr_t *c, const ip_addr_t *a)
{
    if (c->net.family != a->family)
        return false;
    int full = c->bits / 8;
    if (memcmp(c->net.bytes, a->bytes, (size_t)full) != 0)
        return false;
    int rest = c->bits % 8;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (a->bytes[full] & mask) == c->net.bytes[full];
}

bool ip_cidr_list_contains(const ip_cidr_list_t *l, const ip_addr_t *a)
{
    for (size_t i = 0; i < l->n; i++)
        if (ip_cidr_contains(&l->items[i], a))
            return true;
    return false;
}

void ip_addr_format(const ip_addr_t *a, char *out)
{
    if (!inet_ntop(a->family, a->bytes, out, IP_ADDR_TEXT_MAX))
        out[0] = '\0';
}
