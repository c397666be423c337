#include <string.h>

#include "jwt_alg.h"

static const jwt_alg_t algs[] = {
    {"HS256", JWT_HMAC, EVP_sha256, 32, NULL, NULL, 0, 1u << 0},
    {"HS384", JWT_HMAC, EVP_sha384, 48, NULL, NULL, 0, 1u << 1},
    {"HS512", JWT_HMAC, EVP_sha512, 64, NULL, NULL, 0, 1u << 2},
    {"RS256", JWT_RSA, EVP_sha256, 0, NULL, NULL, 0, 1u << 3},
    {"RS384", JWT_RSA, EVP_sha384, 0, NULL, NULL, 0, 1u << 4},
    {"RS512", JWT_RSA, EVP_sha512, 0, NULL, NULL, 0, 1u << 5},
    {"PS256", JWT_RSA_PSS, EVP_sha256, 0, NULL, NULL, 0, 1u << 6},
    {"PS384", JWT_RSA_PSS, EVP_sha384, 0, NULL, NULL, 0, 1u << 7},
    {"PS512", JWT_RSA_PSS, EVP_sha512, 0, NULL, NULL, 0, 1u << 8},
    {"ES256", JWT_ECDSA, EVP_sha256, 0, "prime256v1", "P-256", 32, 1u << 9},
    {"ES384", JWT_ECDSA, EVP_sha384, 0, "secp384r1", "P-384", 48, 1u << 10},
    {"ES512", JWT_ECDSA, EVP_sha512, 0, "secp521r1", "P-521", 66, 1u << 11},
};

#define N_ALGS (sizeof algs / sizeof algs[0])

const jwt_alg_t *jwt_alg_find(const char *name, size_t len)
{
    if (!name)
        return NULL;
    for (size_t i = 0; i < N_ALGS; i++)
        if (strlen(algs[i].name) == len && memcmp(algs[i].name, name, len) == 0)
            return &algs[i];
    return NULL;
}

const jwt_alg_t *jwt_alg_at(size_t i)
{
    return i < N_ALGS ? &algs[i] : NULL;
}

const char *jwt_alg_names(void)
{
    return "HS256, HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512";
}
