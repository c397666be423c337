/* The JWS signature algorithms the plugin knows (RFC 7518 section 3), with
 * what verifying each one takes. "none" is deliberately not among them. */
#ifndef JWT_ALG_H
#define JWT_ALG_H

#include <stddef.h>

#include <openssl/evp.h>

typedef enum jwt_kind {
    JWT_HMAC,      /* HS*: a shared secret */
    JWT_RSA,       /* RS*: RSASSA-PKCS1-v1_5 */
    JWT_RSA_PSS,   /* PS*: RSASSA-PSS, salt as long as the hash */
    JWT_ECDSA,     /* ES*: raw r||s over one curve */
} jwt_kind_t;

typedef struct jwt_alg {
    const char *name;         /* as in the token header: "RS256" */
    jwt_kind_t kind;
    const EVP_MD *(*md)(void);
    size_t min_secret;        /* HMAC: RFC 7518 3.2 wants a key at least the hash size */
    const char *group;        /* ECDSA: OpenSSL's name of the curve */
    const char *crv;          /* ECDSA: the JWK "crv" of that curve */
    size_t coord_len;         /* ECDSA: bytes of r, of s, of x and of y */
    unsigned bit;             /* this algorithm in a jwt_alg set (unsigned bit mask) */
} jwt_alg_t;

/* NULL when the name is not a supported algorithm (including "none"). */
const jwt_alg_t *jwt_alg_find(const char *name, size_t len);

/* The i-th algorithm, NULL past the end: for listing them in messages. */
const jwt_alg_t *jwt_alg_at(size_t i);

/* "HS256, HS384, ..." for error messages. */
const char *jwt_alg_names(void);

#endif
