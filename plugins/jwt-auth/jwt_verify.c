#include <openssl/crypto.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/hmac.h>
#include <openssl/rsa.h>

#include "jwt_verify.h"

static bool verify_hmac(const jwt_alg_t *alg, const jwt_key_ref_t *key, const char *input, size_t input_len,
                        const unsigned char *sig, size_t sig_len)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    if (!key->secret || !HMAC(alg->md(), key->secret, (int)key->secret_len, (const unsigned char *)input,
                              input_len, mac, &mac_len))
        return false;
    return sig_len == mac_len && CRYPTO_memcmp(mac, sig, mac_len) == 0;
}

/* JWS carries ECDSA signatures as fixed-width r||s (RFC 7518 3.4); EVP
 * wants DER. Returns the DER length, 0 when sig has the wrong size. */
static int ecdsa_der(const jwt_alg_t *alg, const unsigned char *sig, size_t sig_len, unsigned char **der)
{
    if (sig_len != 2 * alg->coord_len)
        return 0;
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, (int)alg->coord_len, NULL);
    BIGNUM *s = BN_bin2bn(sig + alg->coord_len, (int)alg->coord_len, NULL);
    int len = 0;
    if (es && r && s && ECDSA_SIG_set0(es, r, s) == 1) {
        r = s = NULL;   /* owned by es now */
        len = i2d_ECDSA_SIG(es, der);
    }
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(es);
    return len > 0 ? len : 0;
}

static bool verify_pkey(const jwt_alg_t *alg, EVP_PKEY *pkey, const char *input, size_t input_len,
                        const unsigned char *sig, size_t sig_len)
{
    unsigned char *der = NULL;
    if (alg->kind == JWT_ECDSA) {
        int n = ecdsa_der(alg, sig, sig_len, &der);
        if (n == 0)
            return false;
        sig = der;
        sig_len = (size_t)n;
    }
    bool ok = false;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    if (ctx && EVP_DigestVerifyInit(ctx, &pctx, alg->md(), NULL, pkey) == 1) {
        bool ready = true;
        if (alg->kind == JWT_RSA_PSS)
            ready = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
                    EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) == 1;
        ok = ready && EVP_DigestVerify(ctx, sig, sig_len, (const unsigned char *)input, input_len) == 1;
    }
    EVP_MD_CTX_free(ctx);
    OPENSSL_free(der);
    return ok;
}

bool jwt_verify(const jwt_alg_t *alg, const jwt_key_ref_t *key, const char *input, size_t input_len,
                const unsigned char *sig, size_t sig_len)
{
    bool ok = alg->kind == JWT_HMAC ? verify_hmac(alg, key, input, input_len, sig, sig_len)
                                    : key->pkey && verify_pkey(alg, key->pkey, input, input_len, sig, sig_len);
    /* A refused signature queues OpenSSL errors on this worker thread;
     * left there they would be blamed on the next TLS call. */
    if (!ok)
        ERR_clear_error();
    return ok;
}
