#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "jwt_alg.h"
#include "jwt_keys.h"

EVP_PKEY *jwt_pem_public_key(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "cannot read \"%s\": %s", path, strerror(errno));
        return NULL;
    }
    EVP_PKEY *pkey = PEM_read_PUBKEY(f, NULL, NULL, NULL);
    if (!pkey) {
        rewind(f);
        X509 *cert = PEM_read_X509(f, NULL, NULL, NULL);
        if (cert) {
            pkey = X509_get_pubkey(cert);
            X509_free(cert);
        }
    }
    fclose(f);
    /* The failed attempts leave errors queued on this thread; they must not
     * surface later in unrelated TLS code. */
    ERR_clear_error();
    if (!pkey)
        snprintf(err, errlen, "\"%s\" holds no PEM public key or certificate", path);
    return pkey;
}

static unsigned kind_algs(jwt_kind_t kind, const char *group)
{
    unsigned set = 0;
    for (size_t i = 0; jwt_alg_at(i); i++) {
        const jwt_alg_t *a = jwt_alg_at(i);
        if (a->kind == kind && (!group || strcmp(a->group, group) == 0))
            set |= a->bit;
    }
    return set;
}

unsigned jwt_key_algs(EVP_PKEY *pkey, char *err, size_t errlen)
{
    switch (EVP_PKEY_get_base_id(pkey)) {
    case EVP_PKEY_RSA: {
        int bits = EVP_PKEY_get_bits(pkey);
        if (bits < JWT_MIN_RSA_BITS) {
            snprintf(err, errlen, "RSA key of %d bits is too small (at least %d)", bits, JWT_MIN_RSA_BITS);
            return 0;
        }
        return kind_algs(JWT_RSA, NULL) | kind_algs(JWT_RSA_PSS, NULL);
    }
    case EVP_PKEY_EC: {
        char group[64] = "";
        size_t n = 0;
        if (EVP_PKEY_get_group_name(pkey, group, sizeof group, &n) != 1)
            group[0] = '\0';
        ERR_clear_error();
        unsigned set = group[0] ? kind_algs(JWT_ECDSA, group) : 0;
        if (!set)
            snprintf(err, errlen, "EC key on curve \"%s\" fits no JWS algorithm (P-256, P-384, P-521)",
                     group[0] ? group : "unknown");
        return set;
    }
    default:
        snprintf(err, errlen, "unsupported key type (only RSA and EC keys verify JWS signatures)");
        return 0;
    }
}
