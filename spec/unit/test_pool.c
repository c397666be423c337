/* The keep-alive pool: the idle bound per key, most recently used first,
 * a bound of 0 keeping nothing, and timeouts set only when they change (an
 * idle timeout that fires closes the parked connection). Connections are
 * socketpair ends, which is all a parked connection needs. */
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "pool.h"

static sl_upconn_t *new_conn(struct event_base *base, sl_pool_t *p, const char *key, int *peer)
{
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0)
        return NULL;
    *peer = fds[1];
    struct bufferevent *bev = bufferevent_socket_new(base, fds[0], BEV_OPT_CLOSE_ON_FREE);
    return bev ? sl_upconn_new(p, key, bev) : NULL;
}

int main(void)
{
    struct event_base *base = event_base_new();
    sl_pool_t *p = sl_pool_new(base);
    int peers[8];
    sl_upconn_t *c[8];

    current_case = "the bound per key keeps the first max_idle parked";
    for (int i = 0; i < 5; i++)
        CHECK_NOT_NULL(c[i] = new_conn(base, p, "http|a:80|", &peers[i]));
    for (int i = 0; i < 5; i++)
        sl_pool_put(c[i], 60000, 3);
    CHECK_INT(3, sl_pool_idle_count(p));

    current_case = "another key has its own bound";
    CHECK_NOT_NULL(c[5] = new_conn(base, p, "http|b:80|", &peers[5]));
    sl_pool_put(c[5], 60000, 3);
    CHECK_INT(4, sl_pool_idle_count(p));

    current_case = "the most recently parked comes out first";
    sl_upconn_t *got = sl_pool_get(p, "http|a:80|");
    CHECK_NOT_NULL(got);
    CHECK_INT(3, sl_pool_idle_count(p));
    sl_upconn_close(got);
    CHECK_NULL(sl_pool_get(p, "http|c:80|"));

    current_case = "max_idle 0 parks nothing";
    CHECK_NOT_NULL(c[6] = new_conn(base, p, "http|d:80|", &peers[6]));
    sl_pool_put(c[6], 60000, 0);
    CHECK_INT(3, sl_pool_idle_count(p));
    CHECK_NULL(sl_pool_get(p, "http|d:80|"));

    current_case = "timeouts are what was asked for last";
    sl_upconn_t *t = sl_pool_get(p, "http|a:80|");
    CHECK_NOT_NULL(t);
    CHECK_INT(60000, t->read_timeout_ms);   /* the idle timeout, left by the pool */
    CHECK_INT(0, t->write_timeout_ms);
    sl_upconn_timeouts(t, 5000, 7000);
    CHECK_INT(5000, t->read_timeout_ms);
    CHECK_INT(7000, t->write_timeout_ms);
    sl_upconn_timeouts(t, 0, 0);
    CHECK_INT(0, t->read_timeout_ms);
    CHECK_INT(0, t->write_timeout_ms);

    current_case = "the idle timeout closes a parked connection";
    int before = sl_pool_idle_count(p);
    sl_upconn_timeouts(t, 0, 3000);
    sl_pool_put(t, 30, 8);   /* 30 ms idle; the write timeout stays */
    CHECK_INT(before + 1, sl_pool_idle_count(p));
    CHECK_INT(30, t->read_timeout_ms);
    CHECK_INT(3000, t->write_timeout_ms);
    struct timeval wait = {0, 300000};
    event_base_loopexit(base, &wait);
    event_base_dispatch(base);
    CHECK_INT(before, sl_pool_idle_count(p));

    sl_pool_free(p);
    event_base_free(base);
    for (int i = 0; i < 7; i++)
        close(peers[i]);
    return check_summary();
}
