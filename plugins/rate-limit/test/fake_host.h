/* A stand-in host table for the rate-limit unit tests: JSON through jansson,
 * an in-memory shared dict without expiry, a fake Redis behind redis_call,
 * and one fake request whose headers, context, answer and response headers
 * the tests set and read. */
#ifndef RL_FAKE_HOST_H
#define RL_FAKE_HOST_H

#include <stddef.h>
#include <stdint.h>

#include "sluice/host.h"

#define FAKE_MAX 64

struct sl_req {
    const char *route;
    const char *client_ip;
    int n_headers;
    const char *header_names[FAKE_MAX], *header_values[FAKE_MAX];
    int n_ctx;
    const char *ctx_keys[FAKE_MAX], *ctx_values[FAKE_MAX];
    int n_resp;
    char resp_names[FAKE_MAX][64], resp_values[FAKE_MAX][64];
    int status;
    char code[64], message[128];
};

extern int fake_redis_configured;

const sl_host_t *fake_host(void);
void fake_dict_clear(void);
/* Value of a response header set on r, or NULL. */
const char *fake_resp_header(const struct sl_req *r, const char *name);

/* ---- the fake Redis behind redis_call ----
 * A string store without expiry (PEXPIRE only records the ttl, as the dict
 * ignores its ttl: the two stay comparable) that knows INCR, DECR, GET and
 * PEXPIRE. A command runs when it is sent, as Redis runs a pipeline in
 * order; its reply is queued and only fake_redis_deliver() hands it over,
 * because the real host never calls back before redis_call returns. */

typedef enum {
    FAKE_SEND_FAILS,     /* redis_call returns -1 and nothing is sent */
    FAKE_REPLY_ERROR,    /* the command does not run; the reply is SL_REPLY_ERROR "ERR boom" */
    FAKE_REPLY_TIMEOUT,  /* the command does not run; the callback gets err "timeout" */
} fake_redis_fault_t;

/* The nth redis_call from now (1: the next one) goes wrong as told. Up to 8
 * faults may wait at once. */
void fake_redis_fault(int nth, fake_redis_fault_t how);
/* Hands over the queued replies in order, also those queued by the
 * callbacks meanwhile, until none is left. Returns how many. */
int fake_redis_deliver(void);
/* Replies sent but not delivered yet. */
int fake_redis_pending(void);
/* Empties the store, drops undelivered replies and pending faults, and
 * forgets the commands sent. */
void fake_redis_clear(void);
void fake_redis_set(const char *key, const char *value);
/* NULL when the key does not exist. */
const char *fake_redis_value(const char *key);
/* The last PEXPIRE's ttl; -1 for a key without one, -2 for no key. */
int64_t fake_redis_ttl(const char *key);
/* The commands sent since the last fake_redis_clear or fake_redis_forget_sent,
 * each as its arguments joined by spaces; NULL past the end (only the first
 * FAKE_MAX are kept, fake_redis_n_sent counts all). */
int fake_redis_n_sent(void);
const char *fake_redis_sent(int i);
void fake_redis_forget_sent(void);

#endif
