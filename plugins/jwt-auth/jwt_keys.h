/* Public keys: reading a PEM file, and which algorithms a key may verify.
 * The answer depends on the key alone (RSA: RS* and PS*; EC: the ES* of its
 * curve), so a key can never be used as something it is not. */
#ifndef JWT_KEYS_H
#define JWT_KEYS_H

#include <stddef.h>

#include <openssl/evp.h>

/* Smaller RSA moduli are refused (NIST SP 800-131A). */
#define JWT_MIN_RSA_BITS 2048

/* The public key in a PEM file ("PUBLIC KEY" or a certificate), or NULL
 * with the reason in err. */
EVP_PKEY *jwt_pem_public_key(const char *path, char *err, size_t errlen);

/* The set (jwt_alg_t.bit) of algorithms pkey may verify; 0 with the reason
 * in err when it fits none. */
unsigned jwt_key_algs(EVP_PKEY *pkey, char *err, size_t errlen);

#endif
