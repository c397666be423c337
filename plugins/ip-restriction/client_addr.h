/* The client address a request is judged by, and the CIDR lists that
 * configure it, shared by ip-restriction and geoip.
 *
 * The TCP peer is the client unless it is a trusted proxy. Then
 * X-Forwarded-For (every such header, in arrival order, as one list) is
 * walked from the right, skipping trusted addresses: the first untrusted
 * one is the client. Only trusted proxies append to that list, so nothing a
 * client wrote to its left can be picked. When every entry is trusted, the
 * leftmost is the client. */
#ifndef SLUICE_PLUGIN_CLIENT_ADDR_H
#define SLUICE_PLUGIN_CLIENT_ADDR_H

#include <stddef.h>

#include "ip_addr.h"
#include "sluice/host.h"

/* 0 with the client in *out. -1 when the address that would be the client
 * is not an IP address (a malformed X-Forwarded-For entry reached through
 * trusted proxies, or a peer that is not on IP): callers refuse the request
 * rather than guess. */
int client_addr(const sl_host_t *host, sl_req_t *r, const ip_cidr_list_t *trusted, ip_addr_t *out);

/* Parses the array `arr` of CIDR strings (NULL or absent means empty) into
 * out->items (malloc'd; free with cidr_list_free). On a bad entry returns -1
 * with "FIELD[i]: invalid CIDR \"...\"" in err. */
int cidr_list_from_json(const sl_host_t *host, const sl_json_t *arr, const char *field,
                        ip_cidr_list_t *out, char *err, size_t errlen);
void cidr_list_free(ip_cidr_list_t *l);

#endif
