#include "netutil.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

void sl_bev_write_now(struct bufferevent *bev, int is_tls)
{
    if (is_tls)
        return;
    evutil_socket_t fd = bufferevent_getfd(bev);
    struct evbuffer *out = bufferevent_get_output(bev);
    if (fd >= 0 && evbuffer_get_length(out) > 0)
        (void)evbuffer_write(out, fd);   /* errors surface on the next read or write */
}

void sl_bev_send(struct bufferevent *bev, int is_tls)
{
    sl_bev_write_now(bev, is_tls);
    if (is_tls || evbuffer_get_length(bufferevent_get_output(bev)) > 0)
        bufferevent_enable(bev, EV_WRITE);
}
