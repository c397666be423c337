#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/param_build.h>

#include "jwt_alg.h"
#include "jwt_b64url.h"
#include "jwt_host.h"
#include "jwt_jwks.h"
#include "jwt_keys.h"

/* Where the problem is, for messages: "keys[2].n". */
typedef struct where {
    const char *what;   /* the file, for warnings */
    size_t index;
    char *err;
    size_t errlen;
} where_t;

static int fail(where_t *w, const char *member, const char *msg)
{
    snprintf(w->err, w->errlen, "keys[%zu]%s%s: %s", w->index, member ? "." : "", member ? member : "", msg);
    return -1;
}

static void skip(const where_t *w, const char *why)
{
    jwt_host->log(SL_LOG_LEVEL_WARN, "jwt-auth: %s: keys[%zu] skipped: %s", w->what, w->index, why);
}

static const char *string_member(const sl_json_t *key, const char *name, size_t *len)
{
    const sl_json_t *v = jwt_host->json_get(key, name);
    return v ? jwt_host->json_string(v, len) : NULL;
}

/* A base64url member decoded into malloc'd bytes; NULL after fail(). */
static unsigned char *bytes_member(const sl_json_t *key, const char *name, size_t *len, where_t *w)
{
    size_t n = 0;
    const char *s = string_member(key, name, &n);
    if (!s || n == 0) {
        fail(w, name, "missing (a base64url string)");
        return NULL;
    }
    unsigned char *out = malloc(JWT_B64URL_DECODED_MAX(n));
    if (!out || jwt_b64url_decode(s, n, out, len) != 0) {
        free(out);
        fail(w, name, "bad base64url");
        return NULL;
    }
    return out;
}

/* A public key from OSSL_PARAMs, checked (RSA sanity, EC point on the curve). */
static EVP_PKEY *key_from_params(const char *type, OSSL_PARAM_BLD *bld)
{
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = params ? EVP_PKEY_CTX_new_from_name(NULL, type, NULL) : NULL;
    EVP_PKEY *pkey = NULL;
    if (ctx && EVP_PKEY_fromdata_init(ctx) == 1)
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    if (pkey) {
        EVP_PKEY_CTX *check = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
        if (!check || EVP_PKEY_public_check(check) != 1) {
            EVP_PKEY_free(pkey);
            pkey = NULL;
        }
        EVP_PKEY_CTX_free(check);
    }
    ERR_clear_error();
    return pkey;
}

static EVP_PKEY *rsa_key(const sl_json_t *key, where_t *w)
{
    size_t n_len = 0, e_len = 0;
    unsigned char *n = bytes_member(key, "n", &n_len, w);
    unsigned char *e = n ? bytes_member(key, "e", &e_len, w) : NULL;
    EVP_PKEY *pkey = NULL;
    if (e) {
        BIGNUM *bn_n = BN_bin2bn(n, (int)n_len, NULL);
        BIGNUM *bn_e = BN_bin2bn(e, (int)e_len, NULL);
        OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
        if (bn_n && bn_e && bld && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) == 1 &&
            OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e) == 1)
            pkey = key_from_params("RSA", bld);
        OSSL_PARAM_BLD_free(bld);
        BN_free(bn_n);
        BN_free(bn_e);
        if (!pkey)
            fail(w, NULL, "not a valid RSA public key");
    }
    free(n);
    free(e);
    return pkey;
}

static EVP_PKEY *ec_key(const sl_json_t *key, const jwt_alg_t *alg, where_t *w)
{
    size_t x_len = 0, y_len = 0;
    unsigned char *x = bytes_member(key, "x", &x_len, w);
    unsigned char *y = x ? bytes_member(key, "y", &y_len, w) : NULL;
    EVP_PKEY *pkey = NULL;
    if (y && (x_len != alg->coord_len || y_len != alg->coord_len)) {
        char msg[96];
        snprintf(msg, sizeof msg, "x and y must be %zu bytes each for %s", alg->coord_len, alg->crv);
        fail(w, NULL, msg);
    } else if (y) {
        /* An uncompressed SEC1 point: 0x04 || x || y. */
        unsigned char point[1 + 2 * 66];
        point[0] = 0x04;
        memcpy(point + 1, x, x_len);
        memcpy(point + 1 + x_len, y, y_len);
        OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
        if (bld && OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, alg->group, 0) == 1 &&
            OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, 1 + x_len + y_len) == 1)
            pkey = key_from_params("EC", bld);
        OSSL_PARAM_BLD_free(bld);
        if (!pkey)
            fail(w, NULL, "not a point on the curve");
    }
    free(x);
    free(y);
    return pkey;
}

/* The ES algorithm of a JWK curve name, NULL for curves JWS does not use. */
static const jwt_alg_t *curve_alg(const char *crv, size_t len)
{
    for (size_t i = 0; jwt_alg_at(i); i++) {
        const jwt_alg_t *a = jwt_alg_at(i);
        if (a->kind == JWT_ECDSA && strlen(a->crv) == len && memcmp(a->crv, crv, len) == 0)
            return a;
    }
    return NULL;
}

/* 1 added, 0 skipped, -1 error. */
static int add_key(jwt_jwks_t *set, const sl_json_t *key, where_t *w)
{
    if (jwt_host->json_type(key) != SL_JSON_OBJECT)
        return fail(w, NULL, "expected an object");
    size_t kty_len = 0, use_len = 0, kid_len = 0, alg_len = 0, crv_len = 0;
    const char *kty = string_member(key, "kty", &kty_len);
    if (!kty)
        return fail(w, "kty", "missing (a string)");
    const char *use = string_member(key, "use", &use_len);
    if (use && !(use_len == 3 && memcmp(use, "sig", 3) == 0))
        return 0;   /* an encryption key: not ours to use, nothing to warn about */
    const char *kid = string_member(key, "kid", &kid_len);
    if (!kid || kid_len == 0) {
        skip(w, "no kid (keys are looked up by the token's kid)");
        return 0;
    }
    const sl_json_t *alg_v = jwt_host->json_get(key, "alg");
    const char *alg_name = string_member(key, "alg", &alg_len);
    if (alg_v && !alg_name)
        return fail(w, "alg", "expected a string");
    const jwt_alg_t *named_alg = alg_name ? jwt_alg_find(alg_name, alg_len) : NULL;
    if (alg_name && !named_alg) {
        skip(w, "alg is not a supported JWS signature algorithm");
        return 0;
    }

    EVP_PKEY *pkey = NULL;
    if (kty_len == 3 && memcmp(kty, "RSA", 3) == 0) {
        pkey = rsa_key(key, w);
    } else if (kty_len == 2 && memcmp(kty, "EC", 2) == 0) {
        const char *crv = string_member(key, "crv", &crv_len);
        const jwt_alg_t *ec = crv ? curve_alg(crv, crv_len) : NULL;
        if (!ec) {
            skip(w, "crv is not P-256, P-384 or P-521");
            return 0;
        }
        pkey = ec_key(key, ec, w);
    } else {
        skip(w, "kty is neither RSA nor EC");
        return 0;
    }
    if (!pkey)
        return -1;

    char why[160];
    unsigned algs = jwt_key_algs(pkey, why, sizeof why);
    if (!algs) {
        EVP_PKEY_free(pkey);
        return fail(w, NULL, why);
    }
    if (named_alg) {
        if (!(algs & named_alg->bit)) {
            EVP_PKEY_free(pkey);
            return fail(w, "alg", "does not fit the key's type");
        }
        algs = named_alg->bit;
    }
    if (jwt_jwks_find(set, kid, kid_len)) {
        EVP_PKEY_free(pkey);
        return fail(w, "kid", "duplicate kid");
    }
    jwt_jwk_t *k = &set->keys[set->n];
    k->kid = malloc(kid_len + 1);
    if (!k->kid) {
        EVP_PKEY_free(pkey);
        return fail(w, NULL, "out of memory");
    }
    memcpy(k->kid, kid, kid_len);
    k->kid[kid_len] = '\0';
    k->kid_len = kid_len;
    k->algs = algs;
    k->pkey = pkey;
    set->n++;
    return 1;
}

int jwt_jwks_parse(const char *text, size_t len, const char *what, jwt_jwks_t *set, char *err,
                   size_t errlen)
{
    memset(set, 0, sizeof *set);
    char jerr[160] = "";
    sl_json_t *doc = jwt_host->json_parse(text, len, jerr, sizeof jerr);
    if (!doc) {
        snprintf(err, errlen, "not JSON (%s)", jerr);
        return -1;
    }
    const sl_json_t *keys = jwt_host->json_type(doc) == SL_JSON_OBJECT ? jwt_host->json_get(doc, "keys") : NULL;
    int rc = 0;
    if (!keys || jwt_host->json_type(keys) != SL_JSON_ARRAY) {
        snprintf(err, errlen, "expected an object with a \"keys\" array");
        rc = -1;
    } else if (jwt_host->json_len(keys) > 0 &&
               !(set->keys = calloc(jwt_host->json_len(keys), sizeof *set->keys))) {
        snprintf(err, errlen, "out of memory");
        rc = -1;
    }
    where_t w = {what, 0, err, errlen};
    for (size_t i = 0; rc == 0 && i < jwt_host->json_len(keys); i++) {
        w.index = i;
        if (add_key(set, jwt_host->json_at(keys, i), &w) < 0)
            rc = -1;
    }
    if (rc == 0 && set->n == 0) {
        snprintf(err, errlen, "no usable signing key (RSA or EC P-256/P-384/P-521 with a kid)");
        rc = -1;
    }
    jwt_host->json_free(doc);
    if (rc != 0)
        jwt_jwks_free(set);
    return rc;
}

int jwt_jwks_load_file(const char *path, jwt_jwks_t *set, char *err, size_t errlen)
{
    memset(set, 0, sizeof *set);
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot read \"%s\": %s", path, strerror(errno));
        return -1;
    }
    char *text = malloc(JWT_JWKS_MAX_BYTES + 1);
    size_t n = text ? fread(text, 1, JWT_JWKS_MAX_BYTES + 1, f) : 0;
    int read_error = ferror(f);
    fclose(f);
    if (!text || read_error || n > JWT_JWKS_MAX_BYTES) {
        snprintf(err, errlen, "\"%s\": %s", path,
                 !text ? "out of memory" : read_error ? "read error" : "larger than 1 MiB");
        free(text);
        return -1;
    }
    char inner[768];
    int rc = jwt_jwks_parse(text, n, path, set, inner, sizeof inner);
    free(text);
    if (rc != 0)
        snprintf(err, errlen, "\"%s\": %s", path, inner);
    return rc;
}

const jwt_jwk_t *jwt_jwks_find(const jwt_jwks_t *set, const char *kid, size_t kid_len)
{
    for (size_t i = 0; i < set->n; i++)
        if (set->keys[i].kid_len == kid_len && memcmp(set->keys[i].kid, kid, kid_len) == 0)
            return &set->keys[i];
    return NULL;
}

void jwt_jwks_free(jwt_jwks_t *set)
{
    for (size_t i = 0; i < set->n; i++) {
        free(set->keys[i].kid);
        EVP_PKEY_free(set->keys[i].pkey);
    }
    free(set->keys);
    memset(set, 0, sizeof *set);
}
