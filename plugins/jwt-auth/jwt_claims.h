/* The registered claims a token must satisfy once its signature holds
 * (RFC 7519 section 4.1): exp, nbf, iss, aud, and a lifetime bound. */
#ifndef JWT_CLAIMS_H
#define JWT_CLAIMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/host.h"

typedef struct jwt_claim_rules {
    bool verify_exp;           /* exp required, and now must be before exp + skew */
    bool verify_nbf;           /* nbf, when present, must be at most now + skew */
    double skew_s;             /* clock_skew in seconds */
    const char *issuer;        /* NULL: any iss */
    size_t issuer_len;
    const char *audience;      /* NULL: any aud */
    size_t audience_len;
    double max_lifetime_s;     /* 0: no bound; else exp - iat must not exceed it */
} jwt_claim_rules_t;

/* NULL when the claims pass at time `now` (seconds since the epoch), or a
 * fixed description of the first failure. */
const char *jwt_claims_check(const jwt_claim_rules_t *rules, const sl_json_t *claims, double now);

#endif
