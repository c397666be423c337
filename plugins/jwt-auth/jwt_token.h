/* A compact JWS (header.payload.signature) taken apart: both JSON parts
 * parsed through the host, the signature decoded. Nothing is trusted yet. */
#ifndef JWT_TOKEN_H
#define JWT_TOKEN_H

#include <stddef.h>

#include "sluice/host.h"

typedef struct jwt_token {
    sl_json_t *header;              /* owned: a JSON object */
    sl_json_t *payload;             /* owned: a JSON object (the claims) */
    const char *signing_input;      /* "header.payload" inside the text given to parse */
    size_t signing_input_len;
    unsigned char *sig;             /* owned, decoded */
    size_t sig_len;
    const char *alg;                /* in header; never NULL after a successful parse */
    size_t alg_len;
    const char *kid;                /* in header; NULL when absent */
    size_t kid_len;
} jwt_token_t;

/* Returned instead of a description when memory ran out. */
#define JWT_NO_MEMORY "out of memory"

/* NULL on success (then jwt_token_free the result), or what is malformed:
 * a fixed string fit for an error_description. `text` must outlive *tok. */
const char *jwt_token_parse(const char *text, size_t len, jwt_token_t *tok);

void jwt_token_free(jwt_token_t *tok);

#endif
