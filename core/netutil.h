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

/* Writes what a plain-TCP bufferevent has queued right away instead of one
 * event-loop turn later (libevent writes only from its write callback):
 * on a request/response ping-pong that turn is a visible share of the
 * latency. Whatever the socket does not take stays queued for libevent. TLS
 * bufferevents are left alone: their bytes must go through OpenSSL. */
struct bufferevent;
void sl_bev_write_now(struct bufferevent *bev, int is_tls);

/* Better still for a request written whole: call with EV_WRITE disabled on
 * the bufferevent after queuing the bytes. Plain TCP writes them now and
 * enables libevent's write event only for what the socket refused, so a
 * request that fits costs no epoll_ctl at all; TLS just enables EV_WRITE. */
void sl_bev_send(struct bufferevent *bev, int is_tls);

#endif
