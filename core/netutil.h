/* Socket options shared by every outgoing connection. */
#ifndef SLUICE_NETUTIL_H
#define SLUICE_NETUTIL_H

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

/* Requests and responses are written whole; Nagle would only hold the last
 * small segment of one back waiting for an ACK. Failure is harmless (e.g. a
 * unix socket), so it is ignored. */
static inline void sl_socket_nodelay(int fd)
{
    int one = 1;
    if (fd >= 0)
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* Sends a request queued on a bufferevent whose EV_WRITE is disabled:
 * plain TCP writes it in this loop turn instead of one turn later
 * (libevent writes only from its write callback, which also costs
 * arming and disarming EPOLLOUT), and enables the write event only for
 * what the socket did not take. At most one libevent write's worth goes
 * out at once, as libevent's own callback would send, so a peer that
 * answers before reading a large body is still seen doing so. A failed
 * write leaves the bytes queued for libevent, which reports the error. TLS
 * just enables EV_WRITE: its bytes must go through OpenSSL. */
struct bufferevent;
void sl_bev_send(struct bufferevent *bev, int is_tls);

#endif
