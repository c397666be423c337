/* The consumers' jwt-auth credentials, indexed by their key (the token's
 * kid or key_claim names it):
 *
 *   consumers:
 *     - name: alice
 *       credentials:
 *         jwt-auth: [{key: "iss-or-kid", algorithm: HS256, secret: "..."},
 *                    {key: "kid-2", algorithm: RS256, public_key: /path/pub.pem},
 *                    {key: "https://issuer", algorithm: ES256}]   # key from jwks_file
 *
 * A credential's algorithm is the only one it accepts, and its key material
 * has to fit that algorithm (a secret for HS*, an RSA or EC public key of the
 * right curve otherwise), so a public key can never serve as an HMAC secret. */
#ifndef JWT_CREDS_H
#define JWT_CREDS_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/evp.h>

#include "jwt_alg.h"
#include "sluice/host.h"

typedef struct jwt_consumer {
    char *name;
    char *tenant;          /* NULL when not set */
    char *groups;          /* comma separated; NULL when none */
} jwt_consumer_t;

typedef struct jwt_cred {
    char *key;
    size_t key_len;
    const jwt_alg_t *alg;
    unsigned char *secret;        /* HMAC algorithms */
    size_t secret_len;
    EVP_PKEY *pkey;               /* from public_key; NULL with no secret: from jwks_file */
    char id[32];                  /* "jwt-auth:" + 12 hex of sha256(key): never the secret */
    const jwt_consumer_t *consumer;
} jwt_cred_t;

typedef struct jwt_creds {
    jwt_consumer_t *consumers;
    size_t n_consumers;
    jwt_cred_t *creds;            /* sorted by key */
    size_t n_creds;
} jwt_creds_t;

/* Reads every consumer (the top-level `consumers:` array; NULL is none).
 * 0, or -1 with "consumers[1] (bob).credentials.jwt-auth[0].algorithm: ..."
 * in err. */
int jwt_creds_load(const sl_json_t *consumers, jwt_creds_t *out, char *err, size_t errlen);

const jwt_cred_t *jwt_creds_find(const jwt_creds_t *set, const char *key, size_t key_len);
const jwt_consumer_t *jwt_creds_consumer(const jwt_creds_t *set, const char *name);

void jwt_creds_free(jwt_creds_t *set);

#endif
