/* Asynchronous Redis client: one connection per worker event loop.
 *
 * Built on hiredis' async API, which has no timeouts of its own, so this
 * module runs the timers: a connect deadline (covering name lookup, TCP and
 * the AUTH/SELECT/PING handshake), a per-command deadline, and reconnection
 * with exponential backoff. Nothing here blocks the loop; host names are
 * resolved with evdns.
 *
 * Threading: an sl_redis_t belongs to the thread running its event_base.
 * Scripts are immutable and reference-counted, so one sl_redis_script_t may
 * be shared by every worker.
 *
 * The process must ignore SIGPIPE (main.c does): hiredis writes with write(2).
 */
#ifndef SLUICE_REDIS_H
#define SLUICE_REDIS_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

struct event_base;

typedef struct sl_redis sl_redis_t;            /* one per worker event loop */
typedef struct sl_redis_req sl_redis_req_t;    /* a pending command */

typedef enum {
    SL_REDIS_STRING = 1,
    SL_REDIS_ARRAY,
    SL_REDIS_INTEGER,
    SL_REDIS_NIL,
    SL_REDIS_STATUS,
    SL_REDIS_ERROR
} sl_redis_type_t;

/* Our own copy of the reply tree, valid only during the callback. str points
 * at len bytes (not necessarily NUL-terminated in spirit: values may hold NUL
 * bytes) for STRING, STATUS and ERROR; it is NULL for the other types. */
typedef struct sl_redis_reply {
    sl_redis_type_t type;
    long long integer;
    const char *str;
    size_t len;
    size_t elements;
    struct sl_redis_reply **element;
} sl_redis_reply_t;

/* Exactly one of reply and err is non-NULL. err is one of the SL_REDIS_E_*
 * strings below (compare with strcmp). A Redis error reply is a reply of
 * type SL_REDIS_ERROR, not an err. */
typedef void (*sl_redis_cb)(void *arg, const sl_redis_reply_t *reply, const char *err);

#define SL_REDIS_E_TIMEOUT       "timeout"
#define SL_REDIS_E_NOT_CONNECTED "not connected"
#define SL_REDIS_E_LOST          "connection lost"
#define SL_REDIS_E_REFUSED       "command not allowed on a shared connection"
#define SL_REDIS_E_NOMEM         "out of memory"

/* Copies what it needs from opts (host, port, username, password, db,
 * connect_timeout_ms, command_timeout_ms; timeouts <= 0 take the defaults
 * 500 ms and 200 ms) and starts connecting. NULL when base or opts is NULL,
 * host is missing or empty, port is outside 1..65535, db is negative, or
 * memory runs out. */
sl_redis_t *sl_redis_new(struct event_base *base, const sl_redis_opts_t *opts);

/* Pending callbacks are NOT called. Safe from inside any callback of this
 * module, including a command's own callback. NULL is a no-op. */
void sl_redis_free(sl_redis_t *r);

/* Connected, and AUTH, SELECT and a PING have succeeded. */
bool sl_redis_ready(const sl_redis_t *r);

/* Queues a command (argv[0] is its name). lens may be NULL for NUL-terminated
 * arguments. The callback is never called before this returns: failures that
 * are known at once ("not connected" while the connection is down, "command
 * not allowed on a shared connection") are delivered from a zero-delay
 * timer. cb may be NULL for fire-and-forget commands.
 *
 * Commands that would change the state every caller shares are refused:
 * (P|S)SUBSCRIBE and their UNSUBSCRIBEs, MONITOR (and PMONITOR, which hiredis
 * mistakes for it), HELLO, RESET, QUIT, AUTH,
 * SELECT, MULTI/EXEC/DISCARD/WATCH/UNWATCH, CLIENT REPLY, and the blocking
 * commands (BLPOP and kin, WAIT, WAITAOF, XREAD/XREADGROUP with BLOCK).
 *
 * Returns a handle for sl_redis_cancel, or NULL when it could not even queue
 * (r or argv NULL, argc < 1, an argv[i] NULL, out of memory). */
sl_redis_req_t *sl_redis_command(sl_redis_t *r, int argc, const char **argv, const size_t *lens,
                                 sl_redis_cb cb, void *arg);

/* The callback will never run. Safe until the callback has run (and from
 * inside it, where it does nothing); not after. NULL is a no-op. */
void sl_redis_cancel(sl_redis_req_t *req);

/* Lua scripts: the SHA1 is computed once; sl_redis_eval sends EVALSHA and,
 * when the server answers NOSCRIPT (after a restart or SCRIPT FLUSH),
 * transparently sends EVAL with the same arguments. The command deadline
 * covers both. */
typedef struct sl_redis_script sl_redis_script_t;

/* NULL when source is NULL or memory runs out. */
sl_redis_script_t *sl_redis_script_new(const char *source);
/* Pending evals keep their own reference, so this is safe at any time. */
void sl_redis_script_free(sl_redis_script_t *s);
/* 40 lowercase hex digits. */
const char *sl_redis_script_sha(const sl_redis_script_t *s);

/* argv holds nkeys keys followed by the other arguments (argc in all).
 * NULL for the same reasons as sl_redis_command, or when s is NULL or
 * nkeys is outside 0..argc. argc may be 0 (then argv may be NULL). */
sl_redis_req_t *sl_redis_eval(sl_redis_t *r, sl_redis_script_t *s, int nkeys, int argc,
                              const char **argv, const size_t *lens, sl_redis_cb cb, void *arg);

/* commands: accepted by sl_redis_command/sl_redis_eval.
 * errors:   ended with an err other than "timeout", or with an error reply.
 * timeouts: ended with "timeout".
 * reconnects: times the connection became ready again after the first time. */
typedef struct sl_redis_stats {
    unsigned long commands, errors, timeouts, reconnects;
} sl_redis_stats_t;

void sl_redis_stats(const sl_redis_t *r, sl_redis_stats_t *out);

#endif
