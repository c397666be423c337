#include "redis_probe.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <string.h>

#include "clock.h"

static int expect_ok(redisContext *c, redisReply *reply, const char *what, char *why, size_t len)
{
    if (!reply) {
        snprintf(why, len, "%s: %s", what, c->errstr[0] ? c->errstr : "no reply");
        return -1;
    }
    int rc = 0;
    if (reply->type == REDIS_REPLY_ERROR) {
        snprintf(why, len, "%s: %s", what, reply->str);
        rc = -1;
    }
    freeReplyObject(reply);
    return rc;
}

int sl_redis_probe(const sl_redis_opts_t *o, char *why, size_t len)
{
    struct timeval ctv = sl_tv_ms(o->connect_timeout_ms);
    redisContext *c = redisConnectWithTimeout(o->host, o->port, ctv);
    if (!c || c->err) {
        snprintf(why, len, "cannot connect: %s", c ? c->errstr : "out of memory");
        if (c)
            redisFree(c);
        return -1;
    }
    struct timeval tv = sl_tv_ms(o->command_timeout_ms > 1000 ? o->command_timeout_ms : 1000);
    redisSetTimeout(c, tv);
    int rc = 0;
    if (o->password) {
        redisReply *r = o->username
                            ? redisCommand(c, "AUTH %s %s", o->username, o->password)
                            : redisCommand(c, "AUTH %s", o->password);
        rc = expect_ok(c, r, "AUTH", why, len);
    }
    if (rc == 0 && o->db != 0)
        rc = expect_ok(c, redisCommand(c, "SELECT %d", o->db), "SELECT", why, len);
    if (rc == 0)
        rc = expect_ok(c, redisCommand(c, "PING"), "PING", why, len);
    redisFree(c);
    return rc;
}
