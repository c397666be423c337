#include "netutil.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

void sl_bev_send(struct bufferevent *bev, int is_tls)
{
    struct evbuffer *out = bufferevent_get_output(bev);
    evutil_socket_t fd = bufferevent_getfd(bev);
    if (!is_tls && fd >= 0 && evbuffer_get_length(out) > 0)
        (void)evbuffer_write_atmost(out, fd, bufferevent_get_max_single_write(bev));
    if (is_tls || evbuffer_get_length(out) > 0)
        bufferevent_enable(bev, EV_WRITE);
}
