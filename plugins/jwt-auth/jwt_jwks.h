/* A JSON Web Key Set (RFC 7517) read from a file: RSA (n, e) and EC (P-256,
 * P-384, P-521: x, y) signing keys, looked up by kid. Keys the plugin cannot
 * use (another kty or curve, "use" other than "sig", no kid, an unknown
 * "alg") are skipped with a warning; a usable key with bad material is an
 * error, so a broken key never silently disappears. */
#ifndef JWT_JWKS_H
#define JWT_JWKS_H

#include <stddef.h>

#include <openssl/evp.h>

/* Refuse larger files: a key set is a few kilobytes. */
#define JWT_JWKS_MAX_BYTES (1024 * 1024)

typedef struct jwt_jwk {
    char *kid;
    size_t kid_len;
    unsigned algs;     /* jwt_alg_t.bit set this key may verify (narrowed by its "alg") */
    EVP_PKEY *pkey;
} jwt_jwk_t;

typedef struct jwt_jwks {
    jwt_jwk_t *keys;
    size_t n;
} jwt_jwks_t;

/* 0, or -1 with the reason in err. *set is empty after a failure. */
int jwt_jwks_load_file(const char *path, jwt_jwks_t *set, char *err, size_t errlen);
int jwt_jwks_parse(const char *text, size_t len, const char *what, jwt_jwks_t *set, char *err,
                   size_t errlen);

const jwt_jwk_t *jwt_jwks_find(const jwt_jwks_t *set, const char *kid, size_t kid_len);

void jwt_jwks_free(jwt_jwks_t *set);

#endif
