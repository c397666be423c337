/* A stand-in host table for the rate-limit unit tests: JSON through jansson,
 * an in-memory shared dict without expiry, and one fake request whose
 * headers, context, answer and response headers the tests set and read. */
#ifndef RL_FAKE_HOST_H
#define RL_FAKE_HOST_H

#include <stddef.h>

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

#endif
