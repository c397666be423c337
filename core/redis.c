/* Async Redis client over hiredis 0.14 (see redis.h).
 *
 * hiredis calls every command callback exactly once: with the reply, or with
 * NULL when the context goes away (a disconnect, or our redisAsyncFree). So a
 * request has two owners that each let go once: hiredis (on_wire) and the
 * caller's callback (pending). It is freed when both have let go, which lets
 * a timeout or cancel finish the caller's side while the reply is still owed.
 *
 * ac->data points at the sl_redis_t only while the context is the current
 * connection; a context we have given up on gets NULL, and its callbacks then
 * only release memory. Caller callbacks for failures are never run from
 * inside hiredis: they wait in `failing` for a zero-delay timer, so a caller
 * that re-enters (new command, free) never meets a half-torn-down context.
 */
#include "redis.h"

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "arena.h"
#include "clock.h"
#include "log.h"

#define DEFAULT_CONNECT_TIMEOUT_MS 500
#define DEFAULT_COMMAND_TIMEOUT_MS 200
#define BACKOFF_MIN_MS 50
#define BACKOFF_MAX_MS 2000
/* A peer that vanished without a reset never shows up as a socket error: the
 * replies just stop. Past this much silence with replies owed, reconnect. */
#define DEAD_AFTER_MIN_MS 1000
#define DEAD_AFTER_TIMEOUTS 10
/* libevent may wake a timer a hair before our own clock reaches the deadline;
 * treating that as due avoids re-arming a zero-length timer. */
#define DEADLINE_SLACK_US 1000

/* ---- intrusive lists ----------------------------------------------------- */

typedef struct link {
    struct link *prev, *next;
} link_t;

static void link_init(link_t *l) { l->prev = l->next = l; }
static bool link_empty(const link_t *l) { return l->next == l; }

static void link_remove(link_t *l)
{
    l->prev->next = l->next;
    l->next->prev = l->prev;
    link_init(l);
}

static void link_append(link_t *head, link_t *l)
{
    l->prev = head->prev;
    l->next = head;
    head->prev->next = l;
    head->prev = l;
}

#define REQ_OF(ptr, field) ((sl_redis_req_t *)((char *)(ptr) - offsetof(sl_redis_req_t, field)))

/* ---- types ----------------------------------------------------------------- */

struct sl_redis_script {
    atomic_int refs;
    char sha[41];
    size_t len;
    char source[];
};

struct sl_redis_req {
    sl_redis_cb cb;
    void *arg;
    link_t wire;              /* in r->wire while the current connection owes a reply */
    link_t queue;             /* in r->waiting (deadline order) or r->failing */
    int64_t deadline_us;
    const char *fail_err;
    uint64_t fail_seq;
    bool on_wire;             /* hiredis holds it: only hiredis' callback lets go */
    bool pending;             /* the caller's callback is still owed */
    bool in_callback;         /* the callback may free r, and with it let hiredis go */
    /* sl_redis_eval keeps its arguments, already in wire format, since
     * NOSCRIPT means sending them again after the script text instead of its
     * SHA1: the array header counts them all, and `tail` holds nkeys and the
     * arguments. */
    sl_redis_script_t *script;
    bool sent_eval;
    size_t eval_argc;
    const char *tail;
    size_t tail_len;
};

typedef enum { ST_BACKOFF, ST_CONNECTING, ST_READY } conn_state_t;
/* What the log last said, so it speaks once per change and never per attempt. */
typedef enum { SAID_NOTHING, SAID_UP, SAID_DOWN, SAID_AUTH } said_t;

/* An evdns base cannot be freed while a cancelled lookup still has its
 * callback queued, so lookups keep it alive after the client is gone. */
typedef struct dns_holder {
    struct evdns_base *base;
    int lookups;
    bool orphaned;
} dns_holder_t;

typedef struct lookup {
    sl_redis_t *r;            /* NULL once cancelled */
    dns_holder_t *dns;
    struct evdns_getaddrinfo_request *req;
} lookup_t;

/* Lets a loop that runs caller callbacks notice that one of them freed us. */
typedef struct guard {
    bool alive;
    struct guard *outer;
} guard_t;

struct sl_redis {
    struct event_base *base;
    char *host, *username, *password, *label;
    int port, db;
    int64_t connect_timeout_ms, command_timeout_ms, dead_after_us;
    conn_state_t state;
    said_t said;
    bool ever_ready;
    int attempt;
    uint64_t rng;
    redisAsyncContext *ac;
    lookup_t *lookup;
    dns_holder_t *dns;
    struct event *conn_timer;     /* connect deadline, or the backoff wait */
    struct event *cmd_timer;      /* deadline of the oldest waiting command */
    struct event *dispatch;       /* zero-delay: delivers `failing` */
    link_t wire, waiting, failing;
    uint64_t fail_seq;
    int64_t last_progress_us;
    guard_t *guards;
    sl_redis_stats_t stats;
};

/* Handshake steps, told apart by the address passed as privdata. */
static char step_auth, step_select, step_ping;

static void connect_ip(sl_redis_t *r, const char *ip);
static void on_reply(redisAsyncContext *ac, void *reply, void *privdata);

/* ---- reply arena -------------------------------------------------------- */

/* hiredis' reader builds replies through these functions instead of its own
 * malloc per node, straight into the tree callers get: no conversion pass.
 * A reply lives until hiredis frees it, right after its callback returns,
 * and hiredis reads one reply at a time, so one arena per connection, reset
 * at that point, serves every reply. */
typedef struct reply_arena {
    /* What hiredis sees of a reply: it reads type and str itself when an
     * error reply arrives with no command owed (e.g. "max clients"), and the
     * handshake callbacks read it too, so it keeps hiredis' own layout. */
    redisReply head;
    sl_redis_reply_t *root;
    sl_arena_t mem;   /* a reset keeps one block: steady replies allocate nothing */
} reply_arena_t;

/* The root goes to hiredis as the arena's head; every other node as itself,
 * which is how a child finds its parent (task->parent->obj). */
static void *new_node(const redisReadTask *t, sl_redis_type_t type, size_t extra_bytes,
                      sl_redis_reply_t **out)
{
    reply_arena_t *a = t->privdata;
    sl_redis_reply_t *n = sl_arena_alloc_raw(&a->mem, sizeof *n + extra_bytes);
    if (!n)
        return NULL;
    n->type = type;
    n->integer = 0;
    n->str = NULL;
    n->len = 0;
    n->elements = 0;
    n->element = NULL;
    *out = n;
    if (t->parent) {
        sl_redis_reply_t *parent = t->parent->parent ? t->parent->obj : a->root;
        parent->element[t->idx] = n;
        return n;
    }
    a->root = n;
    memset(&a->head, 0, sizeof a->head);
    a->head.type = (int)type;
    return &a->head;
}

/* The head's type is ours, as hiredis' own error path reads it. */
_Static_assert(REDIS_REPLY_STRING == SL_REDIS_STRING && REDIS_REPLY_ARRAY == SL_REDIS_ARRAY &&
                   REDIS_REPLY_INTEGER == SL_REDIS_INTEGER && REDIS_REPLY_NIL == SL_REDIS_NIL &&
                   REDIS_REPLY_STATUS == SL_REDIS_STATUS && REDIS_REPLY_ERROR == SL_REDIS_ERROR,
               "hiredis numbers reply types differently");

static void *make_string(const redisReadTask *t, char *str, size_t len)
{
    sl_redis_type_t type = t->type == REDIS_REPLY_ERROR    ? SL_REDIS_ERROR
                           : t->type == REDIS_REPLY_STATUS ? SL_REDIS_STATUS
                                                           : SL_REDIS_STRING;
    if (len > SIZE_MAX - sizeof(sl_redis_reply_t) - 1)
        return NULL;
    sl_redis_reply_t *n;
    void *obj = new_node(t, type, len + 1, &n);
    if (!obj)
        return NULL;
    /* Copied: the reader's buffer moves as more input arrives. The NUL is
     * for callers that print it (and for hiredis, which does). */
    char *copy = (char *)(n + 1);
    memcpy(copy, str, len);
    copy[len] = '\0';
    n->str = copy;
    n->len = len;
    if (!t->parent) {
        ((reply_arena_t *)t->privdata)->head.str = copy;
        ((reply_arena_t *)t->privdata)->head.len = len;
    }
    return obj;
}

static void *make_array(const redisReadTask *t, int elements)
{
    sl_redis_reply_t *n;
    /* The reader never passes a negative count here (that is a nil). */
    size_t count = elements > 0 ? (size_t)elements : 0;
    if (count > (SIZE_MAX - sizeof(sl_redis_reply_t)) / sizeof(sl_redis_reply_t *))
        return NULL;
    void *obj = new_node(t, SL_REDIS_ARRAY, count * sizeof(sl_redis_reply_t *), &n);
    if (!obj)
        return NULL;
    if (count) {
        n->elements = count;
        n->element = (sl_redis_reply_t **)(void *)(n + 1);
    }
    if (!t->parent)
        ((reply_arena_t *)t->privdata)->head.elements = count;
    return obj;
}

static void *make_integer(const redisReadTask *t, long long value)
{
    sl_redis_reply_t *n;
    void *obj = new_node(t, SL_REDIS_INTEGER, 0, &n);
    if (!obj)
        return NULL;
    n->integer = value;
    if (!t->parent)
        ((reply_arena_t *)t->privdata)->head.integer = value;
    return obj;
}

static void *make_nil(const redisReadTask *t)
{
    sl_redis_reply_t *n;
    return new_node(t, SL_REDIS_NIL, 0, &n);
}

/* hiredis calls this for roots only (a delivered reply, or a partial one it
 * drops), and the head is the arena's first member. */
static void free_reply(void *obj)
{
    reply_arena_t *a = obj;
    sl_arena_reset(&a->mem);
    a->root = NULL;
}

static redisReplyObjectFunctions reply_functions = {
    make_string, make_array, make_integer, make_nil, free_reply,
};

static const sl_redis_reply_t *tree_of(const redisReply *head)
{
    return ((const reply_arena_t *)(const void *)head)->root;
}

/* ---- event loop glue --------------------------------------------------------- */

/* Instead of hiredis' libevent adapter, which makes every command cost
 * system calls: its events are one-shot, so each reply re-registers the read
 * event and each command registers the write event and waits a loop round
 * for writability (two epoll_ctl and an extra epoll_wait per command).
 *
 * Here the read event stays registered, and a command queued on a connected
 * socket schedules `flush`, an event with no fd made active at once: it runs
 * later in the same loop turn, after the callbacks already due, so the
 * commands of every request handled in that turn still leave in one write.
 * The socket's write event is used only while connecting and when a write
 * came up short. */
typedef struct loop_glue {
    redisAsyncContext *ac;
    struct event *rev, *wev, *flush;
    bool reading;
    bool flushing;        /* inside flush_cb: more to write means wait for the socket */
    bool *alive;          /* cleared when hiredis frees the context during a flush */
    reply_arena_t arena;  /* lives as long as the context's reader */
} loop_glue_t;

static void glue_read_cb(evutil_socket_t fd, short what, void *arg)
{
    loop_glue_t *g = arg;
    redisAsyncHandleRead(g->ac);
}

static void glue_write_cb(evutil_socket_t fd, short what, void *arg)
{
    loop_glue_t *g = arg;
    redisAsyncHandleWrite(g->ac);
}

/* A bigger output buffer (after a burst) goes back to hiredis, which frees
 * it once written, rather than being kept for the next batch. */
#define KEEP_OBUF_BYTES 65536

static void glue_flush_cb(evutil_socket_t fd, short what, void *arg)
{
    loop_glue_t *g = arg;
    redisContext *c = &g->ac->c;
    /* The usual case, everything queued leaving in one write, done here:
     * hiredis would free its output buffer and start an empty one, which the
     * next command then grows again. A short write or an error is left to
     * hiredis, which retries the rest (and meets the error again). */
    size_t len = sdslen(c->obuf);
    if (!c->err && len > 0 && sdsalloc(c->obuf) <= KEEP_OBUF_BYTES) {
        ssize_t n = write(c->fd, c->obuf, len);
        if (n == (ssize_t)len) {
            sdsclear(c->obuf);
            return;
        }
        if (n > 0)
            sdsrange(c->obuf, (int)n, -1);
    }
    bool alive = true;
    g->alive = &alive;
    g->flushing = true;
    redisAsyncHandleWrite(g->ac);
    if (!alive)
        return;
    g->flushing = false;
    g->alive = NULL;
}

static void glue_add_read(void *privdata)
{
    loop_glue_t *g = privdata;
    if (!g->reading && event_add(g->rev, NULL) == 0)
        g->reading = true;
}

static void glue_del_read(void *privdata)
{
    loop_glue_t *g = privdata;
    if (g->reading) {
        event_del(g->rev);
        g->reading = false;
    }
}

static void glue_add_write(void *privdata)
{
    loop_glue_t *g = privdata;
    if ((g->ac->c.flags & REDIS_CONNECTED) && !g->flushing)
        event_active(g->flush, EV_WRITE, 0);
    else
        event_add(g->wev, NULL);
}

static void glue_del_write(void *privdata)
{
    loop_glue_t *g = privdata;
    event_del(g->wev);
}

static void glue_cleanup(void *privdata)
{
    loop_glue_t *g = privdata;
    if (g->alive)
        *g->alive = false;
    /* hiredis frees its reader after this, and a reply half read would be
     * handed to free_reply: it lives in the arena about to go. */
    g->ac->c.reader->fn = NULL;
    sl_arena_free(&g->arena.mem);
    event_free(g->rev);
    event_free(g->wev);
    event_free(g->flush);
    free(g);
}

static int glue_attach(redisAsyncContext *ac, struct event_base *base)
{
    if (ac->ev.data)
        return REDIS_ERR;
    loop_glue_t *g = calloc(1, sizeof *g);
    if (!g)
        return REDIS_ERR;
    sl_arena_init(&g->arena.mem);
    g->ac = ac;
    g->rev = event_new(base, ac->c.fd, EV_READ | EV_PERSIST, glue_read_cb, g);
    g->wev = event_new(base, ac->c.fd, EV_WRITE, glue_write_cb, g);
    g->flush = event_new(base, -1, 0, glue_flush_cb, g);
    if (!g->rev || !g->wev || !g->flush) {
        if (g->rev)
            event_free(g->rev);
        if (g->wev)
            event_free(g->wev);
        if (g->flush)
            event_free(g->flush);
        free(g);
        return REDIS_ERR;
    }
    ac->ev.addRead = glue_add_read;
    ac->ev.delRead = glue_del_read;
    ac->ev.addWrite = glue_add_write;
    ac->ev.delWrite = glue_del_write;
    ac->ev.cleanup = glue_cleanup;
    ac->ev.data = g;
    ac->c.reader->fn = &reply_functions;
    ac->c.reader->privdata = &g->arena;
    /* As hiredis' adapter does: the write event reports the connect. */
    glue_add_read(g);
    event_add(g->wev, NULL);
    return REDIS_OK;
}

/* ---- small helpers --------------------------------------------------------- */

static void arm(struct event *ev, int64_t ms)
{
    struct timeval tv = sl_tv_ms(ms < 0 ? 0 : ms);
    evtimer_add(ev, &tv);
}

static uint64_t next_random(sl_redis_t *r)
{
    r->rng ^= r->rng >> 12;
    r->rng ^= r->rng << 25;
    r->rng ^= r->rng >> 27;
    return r->rng * 0x2545F4914F6CDD1DULL;
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void guard_push(sl_redis_t *r, guard_t *g)
{
    g->alive = true;
    g->outer = r->guards;
    r->guards = g;
}

static void guard_pop(sl_redis_t *r, guard_t *g)
{
    if (g->alive)
        r->guards = g->outer;
}

static void script_unref(sl_redis_script_t *s)
{
    if (s && atomic_fetch_sub(&s->refs, 1) == 1)
        free(s);
}

static void req_release(sl_redis_req_t *req)
{
    if (req->on_wire || req->pending || req->in_callback)
        return;
    script_unref(req->script);
    free(req);
}

/* hiredis copies the error into ac->errstr only on its way to freeing the
 * context; in the connect callback it is still in the inner context. */
static const char *ctx_error(const redisAsyncContext *ac)
{
    if (ac->errstr && ac->errstr[0])
        return ac->errstr;
    return ac->c.errstr[0] ? ac->c.errstr : "connection closed";
}

/* ---- delivering failures and timeouts ------------------------------------- */

static void fail_soon(sl_redis_t *r, sl_redis_req_t *req, const char *err)
{
    req->fail_err = err;
    req->fail_seq = r->fail_seq++;
    link_append(&r->failing, &req->queue);
    if (!evtimer_pending(r->dispatch, NULL))
        arm(r->dispatch, 0);
}

/* The caller's side ends here; hiredis may still hold the request. */
static void deliver_err(sl_redis_t *r, sl_redis_req_t *req, const char *err)
{
    link_remove(&req->queue);
    req->pending = false;
    if (strcmp(err, SL_REDIS_E_TIMEOUT) == 0)
        r->stats.timeouts++;
    else
        r->stats.errors++;
    if (req->cb) {
        req->in_callback = true;
        req->cb(req->arg, NULL, err);
        req->in_callback = false;
    }
    req_release(req);
}

static void dispatch_cb(evutil_socket_t fd, short what, void *arg)
{
    sl_redis_t *r = arg;
    guard_t g;
    guard_push(r, &g);
    /* Only what was queued before we started: a caller that retries from its
     * callback while we are down must wait for the next round, not spin here. */
    uint64_t limit = r->fail_seq;
    while (!link_empty(&r->failing)) {
        sl_redis_req_t *req = REQ_OF(r->failing.next, queue);
        if (req->fail_seq >= limit)
            break;
        deliver_err(r, req, req->fail_err);
        if (!g.alive)
            return;
    }
    guard_pop(r, &g);
}

static void rearm_cmd_timer(sl_redis_t *r)
{
    if (link_empty(&r->waiting) || evtimer_pending(r->cmd_timer, NULL))
        return;
    sl_redis_req_t *head = REQ_OF(r->waiting.next, queue);
    int64_t left_us = head->deadline_us - sl_now_us();
    arm(r->cmd_timer, (left_us + 999) / 1000);
}

/* ---- connection state ------------------------------------------------------ */

/* The current context stops being ours: whatever it still owes callers is
 * failed as "connection lost" (later, from the dispatch timer). */
static void detach(sl_redis_t *r)
{
    r->ac->data = NULL;
    r->ac = NULL;
    while (!link_empty(&r->wire)) {
        sl_redis_req_t *req = REQ_OF(r->wire.next, wire);
        link_remove(&req->wire);
        if (req->pending) {
            link_remove(&req->queue);
            fail_soon(r, req, SL_REDIS_E_LOST);
        }
    }
    evtimer_del(r->cmd_timer);
}

static void cancel_lookup(sl_redis_t *r)
{
    lookup_t *l = r->lookup;
    if (!l)
        return;
    r->lookup = NULL;
    l->r = NULL;
    /* The cancelled callback still comes (from the loop) and frees l. */
    if (l->req)
        evdns_getaddrinfo_cancel(l->req);
}

static void retry_later(sl_redis_t *r, const char *reason, bool auth_failed)
{
    r->state = ST_BACKOFF;
    if (auth_failed && r->said != SAID_AUTH) {
        sl_error("redis %s: AUTH failed: %s; retrying", r->label, reason);
        r->said = SAID_AUTH;
    } else if (!auth_failed && r->said != SAID_DOWN) {
        sl_warn("redis %s: unreachable: %s; retrying", r->label, reason);
        r->said = SAID_DOWN;
    }
    int64_t delay = (int64_t)BACKOFF_MIN_MS << r->attempt;
    if (delay >= BACKOFF_MAX_MS)
        delay = BACKOFF_MAX_MS;
    else
        r->attempt++;
    /* Jitter keeps many workers (and gateways) from reconnecting in lockstep. */
    delay += (int64_t)(next_random(r) % (uint64_t)(delay / 4 + 1));
    sl_debug("redis %s: attempt failed (%s); next in %lld ms", r->label, reason, (long long)delay);
    arm(r->conn_timer, delay);
}

/* For a connection hiredis is already tearing down, or one we free here. */
static void connection_lost(sl_redis_t *r, const char *reason, bool free_it)
{
    bool was_ready = r->state == ST_READY;
    redisAsyncContext *ac = r->ac;
    detach(r);
    if (was_ready && r->said == SAID_UP) {
        sl_warn("redis %s: connection lost: %s; reconnecting", r->label, reason);
        r->said = SAID_DOWN;
    }
    retry_later(r, reason, false);
    if (free_it)
        redisAsyncFree(ac);
}

/* Gives up on the attempt in progress (lookup or context) without touching
 * callers: during an attempt nothing of theirs is on the wire. */
static void abandon_attempt(sl_redis_t *r)
{
    cancel_lookup(r);
    if (r->ac) {
        redisAsyncContext *ac = r->ac;
        detach(r);
        redisAsyncFree(ac);
    }
}

static void became_ready(sl_redis_t *r)
{
    evtimer_del(r->conn_timer);
    r->state = ST_READY;
    r->attempt = 0;
    r->last_progress_us = sl_now_us();
    if (r->ever_ready)
        r->stats.reconnects++;
    r->ever_ready = true;
    if (r->said != SAID_UP) {
        sl_info("redis %s: connected", r->label);
        r->said = SAID_UP;
    }
}

static void on_handshake(redisAsyncContext *ac, void *reply_, void *step)
{
    sl_redis_t *r = ac->data;
    redisReply *reply = reply_;
    if (!r)
        return;
    if (!reply) {
        connection_lost(r, ctx_error(ac), false);
        return;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        /* retry_later says "AUTH failed" itself; the others name their step. */
        const char *what = "";
        if (step == &step_select)
            what = "SELECT failed: ";
        else if (step == &step_ping)
            what = "PING failed: ";
        char why[256];
        snprintf(why, sizeof why, "%s%.*s", what, (int)(reply->len < 200 ? reply->len : 200),
                 reply->str ? reply->str : "");
        /* Inside a hiredis callback, so the free is deferred until it returns. */
        abandon_attempt(r);
        retry_later(r, why, step == &step_auth);
        return;
    }
    if (step == &step_ping)
        became_ready(r);
}

static void on_connect(const redisAsyncContext *cac, int status)
{
    sl_redis_t *r = cac->data;
    if (!r)
        return;
    redisAsyncContext *ac = r->ac;
    if (status != REDIS_OK) {
        char why[sizeof ac->c.errstr];
        snprintf(why, sizeof why, "%s", ctx_error(ac));
        /* hiredis frees the context when we return. */
        ac->data = NULL;
        r->ac = NULL;
        retry_later(r, why, false);
        return;
    }
    /* A send can only fail on a context being torn down, which this is not;
     * if it did, the connect deadline would still end the attempt. */
    if (r->password) {
        const char *argv[3] = { "AUTH" };
        int argc = 1;
        if (r->username)
            argv[argc++] = r->username;
        argv[argc++] = r->password;
        redisAsyncCommandArgv(ac, on_handshake, &step_auth, argc, argv, NULL);
    }
    if (r->db != 0) {
        char db[16];
        snprintf(db, sizeof db, "%d", r->db);
        const char *argv[2] = { "SELECT", db };
        redisAsyncCommandArgv(ac, on_handshake, &step_select, 2, argv, NULL);
    }
    /* The PING makes "ready" mean the server answers commands: a TCP accept
     * alone says nothing about a server that is loading or stuck. */
    const char *ping[1] = { "PING" };
    redisAsyncCommandArgv(ac, on_handshake, &step_ping, 1, ping, NULL);
}

static void on_disconnect(const redisAsyncContext *cac, int status)
{
    sl_redis_t *r = cac->data;
    if (!r)
        return;
    connection_lost(r, status == REDIS_OK ? "connection closed" : ctx_error(cac), false);
}

static void connect_ip(sl_redis_t *r, const char *ip)
{
    redisAsyncContext *ac = redisAsyncConnect(ip, r->port);
    if (!ac) {
        retry_later(r, "out of memory", false);
        return;
    }
    if (ac->err) {
        char why[sizeof ac->c.errstr];
        snprintf(why, sizeof why, "%s", ctx_error(ac));
        redisAsyncFree(ac);
        retry_later(r, why, false);
        return;
    }
    if (glue_attach(ac, r->base) != REDIS_OK) {
        redisAsyncFree(ac);
        retry_later(r, "cannot watch the socket", false);
        return;
    }
    redisEnableKeepAlive(&ac->c);
    ac->data = r;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    r->ac = ac;
}

/* ---- name lookup ----------------------------------------------------------- */

static dns_holder_t *dns_new(struct event_base *base)
{
    dns_holder_t *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->base = evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS | EVDNS_BASE_DISABLE_WHEN_INACTIVE);
    if (!d->base) {
        /* No usable resolv.conf: names in /etc/hosts should still work. */
        d->base = evdns_base_new(base, EVDNS_BASE_DISABLE_WHEN_INACTIVE);
        if (d->base)
            evdns_base_load_hosts(d->base, "/etc/hosts");
    }
    if (!d->base) {
        free(d);
        return NULL;
    }
    return d;
}

static void dns_release(dns_holder_t *d)
{
    if (d->orphaned && d->lookups == 0) {
        evdns_base_free(d->base, 0);
        free(d);
    }
}

static void on_resolved(int err, struct evutil_addrinfo *res, void *arg)
{
    lookup_t *l = arg;
    sl_redis_t *r = l->r;
    dns_holder_t *dns = l->dns;
    dns->lookups--;
    free(l);
    if (r) {
        r->lookup = NULL;
        /* Redis is usually bound to IPv4; prefer it when a name has both. */
        const struct evutil_addrinfo *pick = NULL;
        for (const struct evutil_addrinfo *a = err ? NULL : res; a; a = a->ai_next)
            if (!pick || (a->ai_family == AF_INET && pick->ai_family != AF_INET))
                pick = a;
        char ip[64];
        const void *addr = NULL;
        if (pick && pick->ai_family == AF_INET)
            addr = &((const struct sockaddr_in *)(const void *)pick->ai_addr)->sin_addr;
        else if (pick && pick->ai_family == AF_INET6)
            addr = &((const struct sockaddr_in6 *)(const void *)pick->ai_addr)->sin6_addr;
        if (addr && evutil_inet_ntop(pick->ai_family, addr, ip, sizeof ip)) {
            connect_ip(r, ip);
        } else {
            char why[300];
            snprintf(why, sizeof why, "cannot resolve %s: %s", r->host,
                     err ? evutil_gai_strerror(err) : "no address");
            retry_later(r, why, false);
        }
    }
    if (res)
        evutil_freeaddrinfo(res);
    dns_release(dns);
}

static void start_lookup(sl_redis_t *r)
{
    if (!r->dns && !(r->dns = dns_new(r->base))) {
        retry_later(r, "cannot set up DNS", false);
        return;
    }
    lookup_t *l = calloc(1, sizeof *l);
    if (!l) {
        retry_later(r, "out of memory", false);
        return;
    }
    l->r = r;
    l->dns = r->dns;
    r->dns->lookups++;
    r->lookup = l;
    struct evutil_addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    struct evdns_getaddrinfo_request *q =
        evdns_getaddrinfo(r->dns->base, r->host, NULL, &hints, on_resolved, l);
    /* Names from /etc/hosts answer before evdns_getaddrinfo returns (and l
     * is gone by then); only a lookup still running has a handle. */
    if (r->lookup == l)
        l->req = q;
}

static bool is_ip_literal(const char *host)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return evutil_inet_pton(AF_INET, host, buf) == 1 || evutil_inet_pton(AF_INET6, host, buf) == 1;
}

static void start_connect(sl_redis_t *r)
{
    r->state = ST_CONNECTING;
    arm(r->conn_timer, r->connect_timeout_ms);
    if (is_ip_literal(r->host))
        connect_ip(r, r->host);
    else
        start_lookup(r);
}

static void conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    sl_redis_t *r = arg;
    if (r->state == ST_BACKOFF) {
        start_connect(r);
    } else if (r->state == ST_CONNECTING) {
        char why[64];
        snprintf(why, sizeof why, "connect timeout after %lld ms", (long long)r->connect_timeout_ms);
        abandon_attempt(r);
        retry_later(r, why, false);
    }
}

static void cmd_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    sl_redis_t *r = arg;
    guard_t g;
    guard_push(r, &g);
    int64_t now = sl_now_us();
    while (!link_empty(&r->waiting)) {
        sl_redis_req_t *head = REQ_OF(r->waiting.next, queue);
        if (head->deadline_us > now + DEADLINE_SLACK_US)
            break;
        deliver_err(r, head, SL_REDIS_E_TIMEOUT);
        if (!g.alive)
            return;
    }
    guard_pop(r, &g);
    if (r->state == ST_READY && !link_empty(&r->wire) &&
        sl_now_us() - r->last_progress_us >= r->dead_after_us) {
        char why[64];
        snprintf(why, sizeof why, "no reply for %lld ms", (long long)(r->dead_after_us / 1000));
        connection_lost(r, why, true);
        return;
    }
    rearm_cmd_timer(r);
}

/* ---- replies ---------------------------------------------------------------- */

static void deliver_reply(sl_redis_t *r, sl_redis_req_t *req, const sl_redis_reply_t *reply)
{
    link_remove(&req->queue);
    req->pending = false;
    if (reply->type == SL_REDIS_ERROR)
        r->stats.errors++;
    /* Nothing of r may be touched after the callback: it may free r. */
    if (req->cb)
        req->cb(req->arg, reply, NULL);
    req_release(req);
}

static bool is_noscript(const redisReply *reply)
{
    return reply->type == REDIS_REPLY_ERROR && reply->str && reply->len >= 8 &&
           memcmp(reply->str, "NOSCRIPT", 8) == 0;
}

/* ---- wire format (RESP) ------------------------------------------------------ */

/* Evals are formatted here rather than by hiredis, whose formatter goes
 * through a printf-like builder for every argument of every request. */

static size_t decimal_digits(size_t n)
{
    size_t d = 1;
    while (n >= 10) {
        n /= 10;
        d++;
    }
    return d;
}

static char *put_digits(char *p, size_t n)
{
    /* Most lengths in a command are one or two digits. */
    if (n < 10) {
        *p = (char)('0' + n);
        return p + 1;
    }
    if (n < 100) {
        p[0] = (char)('0' + n / 10);
        p[1] = (char)('0' + n % 10);
        return p + 2;
    }
    size_t d = decimal_digits(n);
    for (size_t i = d; i > 0; i--) {
        p[i - 1] = (char)('0' + n % 10);
        n /= 10;
    }
    return p + d;
}

/* "<type><n>\r\n" */
static char *put_count(char *p, char type, size_t n)
{
    *p++ = type;
    p = put_digits(p, n);
    *p++ = '\r';
    *p++ = '\n';
    return p;
}

static size_t bulk_size(size_t n) { return 1 + decimal_digits(n) + 2 + n + 2; }

static char *put_bulk(char *p, const char *data, size_t n)
{
    p = put_count(p, '$', n);
    memcpy(p, data, n);
    p += n;
    *p++ = '\r';
    *p++ = '\n';
    return p;
}

/* The array header and the first two bulk strings of an eval: "EVALSHA" and
 * the SHA1, or "EVAL" and the script text. */
static size_t eval_head_size(size_t argc, size_t name_len, size_t what_len)
{
    return 1 + decimal_digits(argc) + 2 + bulk_size(name_len) + bulk_size(what_len);
}

static char *put_eval_head(char *p, size_t argc, const char *name, size_t name_len,
                           const char *what, size_t what_len)
{
    p = put_count(p, '*', argc);
    p = put_bulk(p, name, name_len);
    return put_bulk(p, what, what_len);
}

static void on_wire(sl_redis_t *r, sl_redis_req_t *req)
{
    if (link_empty(&r->wire))
        r->last_progress_us = sl_now_us();
    req->on_wire = true;
    link_append(&r->wire, &req->wire);
}

/* hiredis copies cmd into its output buffer, which goes out on the next
 * writable event: every command queued in one loop turn leaves in one write. */
static bool send_formatted(sl_redis_t *r, sl_redis_req_t *req, const char *cmd, size_t len)
{
    if (redisAsyncFormattedCommand(r->ac, on_reply, req, cmd, len) != REDIS_OK)
        return false;
    on_wire(r, req);
    return true;
}

static size_t arg_len(const char **argv, const size_t *lens, int i)
{
    return lens ? lens[i] : strlen(argv[i]);
}

/* Adds the RESP size of argv's arguments to *total; false past SIZE_MAX / 2. */
static bool add_bulks_size(int argc, const char **argv, const size_t *lens, size_t *total)
{
    for (int i = 0; i < argc; i++) {
        size_t n = bulk_size(arg_len(argv, lens, i));
        if (n > SIZE_MAX / 2 - *total)
            return false;
        *total += n;
    }
    return true;
}

static char *put_bulks(char *p, int argc, const char **argv, const size_t *lens)
{
    for (int i = 0; i < argc; i++)
        p = put_bulk(p, argv[i], arg_len(argv, lens, i));
    return p;
}

/* Formats the command in RESP here (hiredis' own formatter allocates and
 * prints every length with its printf), in a stack buffer when it fits. */
static bool send_to_wire(sl_redis_t *r, sl_redis_req_t *req, int argc, const char **argv,
                         const size_t *lens)
{
    size_t total = 1 + decimal_digits((size_t)argc) + 2;
    if (!add_bulks_size(argc, argv, lens, &total))
        return false;
    /* One byte more for a NUL after the command: hiredis 0.14 looks at the
     * byte after the first argument to see whether more follow, which for a
     * one-word command (PING) is past the end. */
    char stack[512];
    char *cmd = total < sizeof stack ? stack : malloc(total + 1);
    if (!cmd)
        return false;
    char *p = put_bulks(put_count(cmd, '*', (size_t)argc), argc, argv, lens);
    *p = '\0';
    bool sent = send_formatted(r, req, cmd, (size_t)(p - cmd));
    if (cmd != stack)
        free(cmd);
    return sent;
}

/* After NOSCRIPT: the same arguments behind the script's text. */
static bool send_eval_source(sl_redis_t *r, sl_redis_req_t *req)
{
    const sl_redis_script_t *s = req->script;
    size_t head = eval_head_size(req->eval_argc, 4, s->len);
    char *cmd = malloc(head + req->tail_len);
    if (!cmd)
        return false;
    put_eval_head(cmd, req->eval_argc, "EVAL", 4, s->source, s->len);
    memcpy(cmd + head, req->tail, req->tail_len);
    bool sent = send_formatted(r, req, cmd, head + req->tail_len);
    free(cmd);
    return sent;
}

static void on_reply(redisAsyncContext *ac, void *reply_, void *privdata)
{
    sl_redis_req_t *req = privdata;
    redisReply *reply = reply_;
    sl_redis_t *r = ac->data;
    if (!r) {
        /* A context we gave up on: the caller's side was settled then. */
        req->on_wire = false;
        req_release(req);
        return;
    }
    if (!reply) {
        connection_lost(r, ctx_error(ac), false);
        req->on_wire = false;
        req_release(req);
        return;
    }
    link_remove(&req->wire);
    req->on_wire = false;
    r->last_progress_us = sl_now_us();
    if (!req->pending) {
        req_release(req);       /* timed out or cancelled: the late reply is dropped */
        return;
    }
    if (req->script && !req->sent_eval && is_noscript(reply)) {
        req->sent_eval = true;
        /* It keeps its place (and deadline) among the waiting. */
        if (send_eval_source(r, req))
            return;
    }
    deliver_reply(r, req, tree_of(reply));
}

/* ---- commands ---------------------------------------------------------------- */

/* A word of a command against a keyword, length first: the check runs on
 * every command, and most keywords differ in length from most names. */
typedef struct keyword {
    const char *text;
    size_t len;
} keyword_t;

#define KEYWORD(s) { s, sizeof s - 1 }

static bool word_is(const char *w, size_t n, const keyword_t *k)
{
    return n == k->len && strncasecmp(w, k->text, n) == 0;
}

static bool arg_is(const char **argv, const size_t *lens, int i, const keyword_t *k)
{
    return word_is(argv[i], arg_len(argv, lens, i), k);
}

static bool word_in(const char *w, size_t n, const keyword_t *list, size_t count)
{
    for (size_t i = 0; i < count; i++)
        if (word_is(w, n, &list[i]))
            return true;
    return false;
}

/* Commands that would change what the connection means for everyone else
 * sharing it, or stall it for all of them. */
static bool refused(int argc, const char **argv, const size_t *lens)
{
    static const keyword_t names[] = {
        KEYWORD("ssubscribe"), KEYWORD("sunsubscribe"), KEYWORD("hello"), KEYWORD("reset"),
        KEYWORD("quit"), KEYWORD("auth"), KEYWORD("select"), KEYWORD("sync"), KEYWORD("psync"),
        KEYWORD("replconf"), KEYWORD("multi"), KEYWORD("exec"), KEYWORD("discard"),
        KEYWORD("watch"), KEYWORD("unwatch"), KEYWORD("blpop"), KEYWORD("brpop"),
        KEYWORD("brpoplpush"), KEYWORD("blmove"), KEYWORD("blmpop"), KEYWORD("bzpopmin"),
        KEYWORD("bzpopmax"), KEYWORD("bzmpop"), KEYWORD("wait"), KEYWORD("waitaof"),
    };
    static const keyword_t modes[] = {
        KEYWORD("subscribe"), KEYWORD("unsubscribe"), KEYWORD("monitor"),
    };
    static const keyword_t client = KEYWORD("client"), reply = KEYWORD("reply"),
                           xread = KEYWORD("xread"), xreadgroup = KEYWORD("xreadgroup"),
                           streams = KEYWORD("streams"), block = KEYWORD("block");
    size_t n = arg_len(argv, lens, 0);
    const char *name = argv[0];
    if (word_in(name, n, names, sizeof names / sizeof names[0]))
        return true;
    /* hiredis switches modes on these names with any one leading 'p' removed
     * (so "pmonitor" too), and then misroutes every later reply. */
    if (n > 0 && (name[0] == 'p' || name[0] == 'P')) {
        name++;
        n--;
    }
    if (word_in(name, n, modes, sizeof modes / sizeof modes[0]))
        return true;
    if (argc >= 2 && arg_is(argv, lens, 0, &client) && arg_is(argv, lens, 1, &reply))
        return true;
    if (arg_is(argv, lens, 0, &xread) || arg_is(argv, lens, 0, &xreadgroup)) {
        for (int i = 1; i < argc && !arg_is(argv, lens, i, &streams); i++)
            if (arg_is(argv, lens, i, &block))
                return true;
    }
    return false;
}

static bool args_valid(int argc, const char **argv)
{
    if (argc < 0 || (argc > 0 && !argv))
        return false;
    for (int i = 0; i < argc; i++)
        if (!argv[i])
            return false;
    return true;
}

/* sent: whether the command went to hiredis (false when not ready). */
static sl_redis_req_t *submitted(sl_redis_t *r, sl_redis_req_t *req, bool sent)
{
    if (!sent) {
        fail_soon(r, req, SL_REDIS_E_NOT_CONNECTED);
        return req;
    }
    req->deadline_us = sl_now_us() + r->command_timeout_ms * 1000;
    link_append(&r->waiting, &req->queue);
    rearm_cmd_timer(r);
    return req;
}

static void req_init(sl_redis_req_t *req, sl_redis_cb cb, void *arg)
{
    req->cb = cb;
    req->arg = arg;
    req->pending = true;
    link_init(&req->wire);
    link_init(&req->queue);
}

sl_redis_req_t *sl_redis_command(sl_redis_t *r, int argc, const char **argv, const size_t *lens,
                                 sl_redis_cb cb, void *arg)
{
    if (!r || argc < 1 || !args_valid(argc, argv))
        return NULL;
    sl_redis_req_t *req = calloc(1, sizeof *req);
    if (!req)
        return NULL;
    req_init(req, cb, arg);
    r->stats.commands++;
    if (refused(argc, argv, lens)) {
        fail_soon(r, req, SL_REDIS_E_REFUSED);
        return req;
    }
    return submitted(r, req, r->state == ST_READY && send_to_wire(r, req, argc, argv, lens));
}

sl_redis_req_t *sl_redis_eval(sl_redis_t *r, sl_redis_script_t *s, int nkeys, int argc,
                              const char **argv, const size_t *lens, sl_redis_cb cb, void *arg)
{
    if (!r || !s || !args_valid(argc, argv) || nkeys < 0 || nkeys > argc)
        return NULL;
    size_t tail_len = bulk_size(decimal_digits((size_t)nkeys));
    if (!add_bulks_size(argc, argv, lens, &tail_len))
        return NULL;
    /* One block: the request, the EVALSHA head, then the tail, so the
     * command is one run of bytes and the tail stays for a NOSCRIPT retry. */
    size_t total_args = (size_t)argc + 3;
    size_t head_room = eval_head_size(total_args, 7, 40);
    sl_redis_req_t *req = malloc(sizeof *req + head_room + tail_len);
    if (!req)
        return NULL;
    memset(req, 0, sizeof *req);
    req_init(req, cb, arg);
    char *head = (char *)(req + 1), *tail = head + head_room;
    char nkeys_text[24];
    size_t nkeys_len = (size_t)(put_digits(nkeys_text, (size_t)nkeys) - nkeys_text);
    put_bulks(put_bulk(tail, nkeys_text, nkeys_len), argc, argv, lens);
    put_eval_head(head, total_args, "EVALSHA", 7, s->sha, 40);
    req->eval_argc = total_args;
    req->tail = tail;
    req->tail_len = tail_len;
    atomic_fetch_add(&s->refs, 1);
    req->script = s;
    r->stats.commands++;
    return submitted(r, req,
                     r->state == ST_READY && send_formatted(r, req, head, head_room + tail_len));
}

void sl_redis_cancel(sl_redis_req_t *req)
{
    if (!req || !req->pending)
        return;
    link_remove(&req->queue);
    req->pending = false;
    req_release(req);
}

/* ---- scripts ------------------------------------------------------------------ */

sl_redis_script_t *sl_redis_script_new(const char *source)
{
    if (!source)
        return NULL;
    size_t len = strlen(source);
    sl_redis_script_t *s = malloc(sizeof *s + len + 1);
    if (!s)
        return NULL;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    if (!EVP_Digest(source, len, md, &md_len, EVP_sha1(), NULL) || md_len != 20) {
        free(s);
        return NULL;
    }
    static const char hex[] = "0123456789abcdef";
    for (unsigned i = 0; i < md_len; i++) {
        s->sha[2 * i] = hex[md[i] >> 4];
        s->sha[2 * i + 1] = hex[md[i] & 15];
    }
    s->sha[40] = '\0';
    atomic_init(&s->refs, 1);
    s->len = len;
    memcpy(s->source, source, len + 1);
    return s;
}

void sl_redis_script_free(sl_redis_script_t *s)
{
    script_unref(s);
}

const char *sl_redis_script_sha(const sl_redis_script_t *s)
{
    return s ? s->sha : NULL;
}

/* ---- lifecycle ----------------------------------------------------------------- */

sl_redis_t *sl_redis_new(struct event_base *base, const sl_redis_opts_t *opts)
{
    if (!base || !opts || !opts->host || !opts->host[0] || opts->port < 1 || opts->port > 65535 ||
        opts->db < 0)
        return NULL;
    sl_redis_t *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->base = base;
    r->port = opts->port;
    r->db = opts->db;
    r->connect_timeout_ms =
        opts->connect_timeout_ms > 0 ? opts->connect_timeout_ms : DEFAULT_CONNECT_TIMEOUT_MS;
    r->command_timeout_ms =
        opts->command_timeout_ms > 0 ? opts->command_timeout_ms : DEFAULT_COMMAND_TIMEOUT_MS;
    int64_t dead_ms = r->command_timeout_ms * DEAD_AFTER_TIMEOUTS;
    r->dead_after_us = (dead_ms > DEAD_AFTER_MIN_MS ? dead_ms : DEAD_AFTER_MIN_MS) * 1000;
    link_init(&r->wire);
    link_init(&r->waiting);
    link_init(&r->failing);
    r->rng = (uint64_t)sl_now_us() ^ ((uint64_t)(uintptr_t)r << 16) ^ 0x9E3779B97F4A7C15ULL;
    r->host = strdup(opts->host);
    r->username = dup_or_null(opts->username);
    r->password = dup_or_null(opts->password);
    bool v6 = strchr(opts->host, ':') != NULL;
    int n = snprintf(NULL, 0, v6 ? "[%s]:%d" : "%s:%d", opts->host, opts->port);
    r->label = malloc((size_t)n + 1);
    if (r->label)
        snprintf(r->label, (size_t)n + 1, v6 ? "[%s]:%d" : "%s:%d", opts->host, opts->port);
    r->conn_timer = evtimer_new(base, conn_timer_cb, r);
    r->cmd_timer = evtimer_new(base, cmd_timer_cb, r);
    r->dispatch = evtimer_new(base, dispatch_cb, r);
    if (!r->host || (opts->username && !r->username) || (opts->password && !r->password) ||
        !r->label || !r->conn_timer || !r->cmd_timer || !r->dispatch) {
        sl_redis_free(r);
        return NULL;
    }
    start_connect(r);
    return r;
}

void sl_redis_free(sl_redis_t *r)
{
    if (!r)
        return;
    for (guard_t *g = r->guards; g; g = g->outer)
        g->alive = false;
    while (!link_empty(&r->failing)) {
        sl_redis_req_t *req = REQ_OF(r->failing.next, queue);
        link_remove(&req->queue);
        req->pending = false;
        req_release(req);
    }
    while (!link_empty(&r->waiting)) {
        sl_redis_req_t *req = REQ_OF(r->waiting.next, queue);
        link_remove(&req->queue);
        req->pending = false;     /* still on the wire: hiredis lets go below */
    }
    cancel_lookup(r);
    if (r->ac) {
        redisAsyncContext *ac = r->ac;
        ac->data = NULL;
        r->ac = NULL;
        while (!link_empty(&r->wire))
            link_remove(r->wire.next);
        /* From inside a reply callback hiredis defers this until it returns. */
        redisAsyncFree(ac);
    }
    if (r->conn_timer)
        event_free(r->conn_timer);
    if (r->cmd_timer)
        event_free(r->cmd_timer);
    if (r->dispatch)
        event_free(r->dispatch);
    if (r->dns) {
        r->dns->orphaned = true;
        dns_release(r->dns);
    }
    if (r->password)
        explicit_bzero(r->password, strlen(r->password));
    free(r->host);
    free(r->username);
    free(r->password);
    free(r->label);
    free(r);
}

bool sl_redis_ready(const sl_redis_t *r)
{
    return r && r->state == ST_READY;
}

void sl_redis_stats(const sl_redis_t *r, sl_redis_stats_t *out)
{
    if (!out)
        return;
    if (!r) {
        memset(out, 0, sizeof *out);
        return;
    }
    *out = r->stats;
}
