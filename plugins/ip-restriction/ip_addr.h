/* IP addresses and CIDR blocks, for the plugins that decide by client
 * address (ip-restriction, geoip).
 *
 * An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is taken as the IPv4 address
 * it carries, so a dual-stack peer matches the IPv4 blocks an operator
 * wrote. IPv4 and IPv6 never match each other's blocks otherwise: "::/0"
 * means every IPv6 address, not every address. */
#ifndef SLUICE_PLUGIN_IP_ADDR_H
#define SLUICE_PLUGIN_IP_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Room for any address ip_addr_format writes, NUL included. */
#define IP_ADDR_TEXT_MAX 46

typedef struct ip_addr {
    int family;           /* AF_INET or AF_INET6 */
    uint8_t bytes[16];    /* network order; IPv4 uses the first 4 */
} ip_addr_t;

typedef struct ip_cidr {
    ip_addr_t net;        /* host bits cleared */
    int bits;             /* prefix length: 0..32 or 0..128 */
} ip_cidr_t;

typedef struct ip_cidr_list {
    ip_cidr_t *items;
    size_t n;
} ip_cidr_list_t;

/* A bare address ("10.0.0.1", "2001:db8::1"). 0, or -1 if s is not one. */
int ip_addr_parse(const char *s, size_t len, ip_addr_t *out);

/* One element of X-Forwarded-For: a bare address, optionally surrounded by
 * spaces or tabs, "[v6]", "[v6]:port" or "v4:port". 0, or -1. */
int ip_addr_parse_forwarded(const char *s, size_t len, ip_addr_t *out);

/* "10.0.0.0/8", "2001:db8::/32", or a bare address (a block of one). Host
 * bits set below the prefix are cleared, as most proxies do. 0, or -1. */
int ip_cidr_parse(const char *s, size_t len, ip_cidr_t *out);

bool ip_cidr_contains(const ip_cidr_t *c, const ip_addr_t *a);
bool ip_cidr_list_contains(const ip_cidr_list_t *l, const ip_addr_t *a);

/* The canonical text form (inet_ntop) into out[IP_ADDR_TEXT_MAX]. */
void ip_addr_format(const ip_addr_t *a, char *out);

#endif
