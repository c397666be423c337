/* Checking a JWS signature over "header.payload" with OpenSSL EVP. The
 * caller has already made sure the key fits the algorithm: HMAC algorithms
 * get a secret, the others an EVP_PKEY of the right type and curve. */
#ifndef JWT_VERIFY_H
#define JWT_VERIFY_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/evp.h>

#include "jwt_alg.h"

typedef struct jwt_key_ref {
    const unsigned char *secret;   /* JWT_HMAC */
    size_t secret_len;
    EVP_PKEY *pkey;                /* every other kind */
} jwt_key_ref_t;

/* true when sig is a valid signature of input under alg and key. Safe to
 * call from several threads at once with the same key. */
bool jwt_verify(const jwt_alg_t *alg, const jwt_key_ref_t *key, const char *input, size_t input_len,
                const unsigned char *sig, size_t sig_len);

#endif
