/* Unit tests of jwt-auth's parts: base64url, token parsing, claims,
 * signatures, keys, JWKS, consumer credentials and token sources. They run
 * against a stand-in host table whose JSON functions are jansson's, the
 * same library the gateway uses. Keys are generated here with OpenSSL. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "jwt_alg.h"
#include "jwt_b64url.h"
#include "jwt_claims.h"
#include "jwt_creds.h"
#include "jwt_host.h"
#include "jwt_jwks.h"
#include "jwt_keys.h"
#include "jwt_source.h"
#include "jwt_token.h"
#include "jwt_verify.h"

static int passed, failed;

#define CHECK(cond)                                                                   \
    do {                                                                              \
        if (cond) {                                                                   \
            passed++;                                                                 \
        } else {                                                                      \
            failed++;                                                                 \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                             \
    } while (0)

#define CHECK_INT(expected, actual)                                                                   \
    do {                                                                                              \
        long long e_ = (long long)(expected), a_ = (long long)(actual);                               \
        if (e_ == a_) {                                                                               \
            passed++;                                                                                 \
        } else {                                                                                      \
            failed++;                                                                                 \
            fprintf(stderr, "%s:%d: expected %lld, got %lld (%s)\n", __FILE__, __LINE__, e_, a_, #actual); \
        }                                                                                             \
    } while (0)

/* NULL is a value too: CHECK_STR(NULL, why) means "no error". */
#define CHECK_STR(expected, actual)                                                                   \
    do {                                                                                              \
        const char *e_ = (expected), *a_ = (actual);                                                  \
        if ((!e_ && !a_) || (e_ && a_ && strcmp(e_, a_) == 0)) {                                      \
            passed++;                                                                                 \
        } else {                                                                                      \
            failed++;                                                                                 \
            fprintf(stderr, "%s:%d: expected \"%s\", got \"%s\" (%s)\n", __FILE__, __LINE__,          \
                    e_ ? e_ : "(null)", a_ ? a_ : "(null)", #actual);                                 \
        }                                                                                             \
    } while (0)

#define CHECK_MEM(expected, expected_len, actual, actual_len) \
    check_mem(__FILE__, __LINE__, #actual, (expected), (expected_len), (const void *)(actual), (actual_len))

static void check_mem(const char *file, int line, const char *what, const void *expected, size_t expected_len,
                      const void *actual, size_t actual_len)
{
    if (actual && expected_len == actual_len && memcmp(expected, actual, expected_len) == 0) {
        passed++;
        return;
    }
    failed++;
    fprintf(stderr, "%s:%d: expected \"%.*s\", got \"%.*s\" (%s)\n", file, line, (int)expected_len,
            (const char *)expected, actual ? (int)actual_len : 6, actual ? (const char *)actual : "(null)", what);
}

/* ---- a stand-in host ----------------------------------------------------------- */

#define J(v) ((json_t *)(v))
#define CJ(v) ((const json_t *)(v))

static char last_log[1024];
static const sl_json_t *fake_consumers;

static sl_json_t *f_json_parse(const char *text, size_t len, char *err, size_t errlen)
{
    json_error_t e;
    json_t *v = json_loadb(text, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
    if (!v && err)
        snprintf(err, errlen, "line %d column %d: %s", e.line, e.column, e.text);
    return (sl_json_t *)v;
}
static void f_json_free(sl_json_t *v) { json_decref(J(v)); }
static sl_json_type_t f_json_type(const sl_json_t *v)
{
    switch (json_typeof(CJ(v))) {
    case JSON_OBJECT: return SL_JSON_OBJECT;
    case JSON_ARRAY: return SL_JSON_ARRAY;
    case JSON_STRING: return SL_JSON_STRING;
    case JSON_INTEGER: return SL_JSON_INTEGER;
    case JSON_REAL: return SL_JSON_REAL;
    case JSON_TRUE:
    case JSON_FALSE: return SL_JSON_BOOL;
    default: return SL_JSON_NULL;
    }
}
static const sl_json_t *f_json_get(const sl_json_t *o, const char *k) { return (const sl_json_t *)json_object_get(CJ(o), k); }
static size_t f_json_len(const sl_json_t *v) { return json_is_array(CJ(v)) ? json_array_size(CJ(v)) : json_object_size(CJ(v)); }
static const sl_json_t *f_json_at(const sl_json_t *a, size_t i) { return (const sl_json_t *)json_array_get(CJ(a), i); }
static const char *f_json_string(const sl_json_t *v, size_t *len)
{
    if (!json_is_string(CJ(v)))
        return NULL;
    if (len)
        *len = json_string_length(CJ(v));
    return json_string_value(CJ(v));
}
static int64_t f_json_integer(const sl_json_t *v) { return json_integer_value(CJ(v)); }
static double f_json_number(const sl_json_t *v) { return json_number_value(CJ(v)); }
static int f_json_bool(const sl_json_t *v) { return json_is_true(CJ(v)); }
static const sl_json_t *f_consumers(void) { return fake_consumers; }
static void f_log(sl_log_level_sdk_t level, const char *fmt, ...)
{
    (void)level;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_log, sizeof last_log, fmt, ap);
    va_end(ap);
}

static const sl_host_t fake_host = {
    .abi_major = SLUICE_ABI_MAJOR,
    .abi_minor = SLUICE_ABI_MINOR,
    .size = sizeof(sl_host_t),
    .config_consumers = f_consumers,
    .log = f_log,
    .json_parse = f_json_parse,
    .json_free = f_json_free,
    .json_type = f_json_type,
    .json_get = f_json_get,
    .json_len = f_json_len,
    .json_at = f_json_at,
    .json_string = f_json_string,
    .json_integer = f_json_integer,
    .json_number = f_json_number,
    .json_bool = f_json_bool,
};

const sl_host_t *jwt_host = &fake_host;

/* ---- helpers ------------------------------------------------------------------- */

static char tmpdir[64];

static char *b64url(const unsigned char *in, size_t n)
{
    static const char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char *out = malloc(n / 3 * 4 + 5);
    size_t o = 0, i = 0;
    for (; i + 2 < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
        out[o++] = digits[v >> 18 & 63];
        out[o++] = digits[v >> 12 & 63];
        out[o++] = digits[v >> 6 & 63];
        out[o++] = digits[v & 63];
    }
    if (n - i == 1) {
        unsigned v = (unsigned)in[i] << 16;
        out[o++] = digits[v >> 18 & 63];
        out[o++] = digits[v >> 12 & 63];
    } else if (n - i == 2) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8;
        out[o++] = digits[v >> 18 & 63];
        out[o++] = digits[v >> 12 & 63];
        out[o++] = digits[v >> 6 & 63];
    }
    out[o] = '\0';
    return out;
}

static char *b64url_str(const char *s)
{
    return b64url((const unsigned char *)s, strlen(s));
}

/* "<b64 header>.<b64 payload>.<b64 sig>" from JSON texts and raw sig bytes. */
static char *compact(const char *header, const char *payload, const unsigned char *sig, size_t sig_len)
{
    char *h = b64url_str(header), *p = b64url_str(payload), *s = b64url(sig, sig_len);
    size_t n = strlen(h) + strlen(p) + strlen(s) + 3;
    char *t = malloc(n);
    snprintf(t, n, "%s.%s.%s", h, p, s);
    free(h);
    free(p);
    free(s);
    return t;
}

static EVP_PKEY *gen_rsa(unsigned bits)
{
    return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);
}

static EVP_PKEY *gen_ec(const char *group)
{
    return EVP_PKEY_Q_keygen(NULL, NULL, "EC", group);
}

/* A JWS signature (raw r||s for ECDSA) of input with a private key. */
static unsigned char *sign(const jwt_alg_t *alg, EVP_PKEY *key, const char *input, size_t *sig_len)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    EVP_DigestSignInit(ctx, &pctx, alg->md(), NULL, key);
    if (alg->kind == JWT_RSA_PSS) {
        EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
        EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST);
    }
    size_t n = 0;
    EVP_DigestSign(ctx, NULL, &n, (const unsigned char *)input, strlen(input));
    unsigned char *sig = malloc(n);
    EVP_DigestSign(ctx, sig, &n, (const unsigned char *)input, strlen(input));
    EVP_MD_CTX_free(ctx);
    if (alg->kind == JWT_ECDSA) {
        const unsigned char *p = sig;
        ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)n);
        unsigned char *raw = calloc(1, 2 * alg->coord_len);
        BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, (int)alg->coord_len);
        BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + alg->coord_len, (int)alg->coord_len);
        ECDSA_SIG_free(es);
        free(sig);
        sig = raw;
        n = 2 * alg->coord_len;
    }
    *sig_len = n;
    return sig;
}

static char *write_file(const char *name, const char *text)
{
    char *path = malloc(256);
    snprintf(path, 256, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    return path;
}

static char *write_pubkey(const char *name, EVP_PKEY *key)
{
    char *path = malloc(256);
    snprintf(path, 256, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    PEM_write_PUBKEY(f, key);
    fclose(f);
    return path;
}

static char *bn_b64(EVP_PKEY *key, const char *param)
{
    BIGNUM *bn = NULL;
    EVP_PKEY_get_bn_param(key, param, &bn);
    unsigned char buf[1024];
    int n = BN_bn2bin(bn, buf);
    BN_free(bn);
    return b64url(buf, (size_t)n);
}

/* {"kty":"RSA","kid":kid,"n":...,"e":...} */
static json_t *rsa_jwk(EVP_PKEY *key, const char *kid)
{
    char *n = bn_b64(key, OSSL_PKEY_PARAM_RSA_N), *e = bn_b64(key, OSSL_PKEY_PARAM_RSA_E);
    json_t *jwk = json_pack("{s:s, s:s, s:s, s:s}", "kty", "RSA", "kid", kid, "n", n, "e", e);
    free(n);
    free(e);
    return jwk;
}

static json_t *ec_jwk(EVP_PKEY *key, const char *kid, const char *crv, size_t coord)
{
    unsigned char point[1 + 2 * 66];
    size_t len = 0;
    EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof point, &len);
    char *x = b64url(point + 1, coord), *y = b64url(point + 1 + coord, coord);
    json_t *jwk = json_pack("{s:s, s:s, s:s, s:s, s:s}", "kty", "EC", "kid", kid, "crv", crv, "x", x, "y", y);
    free(x);
    free(y);
    return jwk;
}

/* Parses a JWKS made of the given keys (a new reference each, stolen). */
static int jwks_of(jwt_jwks_t *set, char *err, size_t errlen, json_t *keys)
{
    json_t *doc = json_pack("{s:o}", "keys", keys);
    char *text = json_dumps(doc, 0);
    int rc = jwt_jwks_parse(text, strlen(text), "test.jwks", set, err, errlen);
    free(text);
    json_decref(doc);
    return rc;
}

/* ---- tests --------------------------------------------------------------------- */

static void test_b64url(void)
{
    unsigned char out[16];
    size_t n = 99;
    CHECK_INT(0, jwt_b64url_decode("", 0, out, &n));
    CHECK_INT(0, n);
    CHECK_INT(0, jwt_b64url_decode("TWFu", 4, out, &n));
    CHECK_MEM("Man", 3, out, n);
    CHECK_INT(0, jwt_b64url_decode("TWE", 3, out, &n));
    CHECK_MEM("Ma", 2, out, n);
    CHECK_INT(0, jwt_b64url_decode("TQ", 2, out, &n));
    CHECK_MEM("M", 1, out, n);
    CHECK_INT(0, jwt_b64url_decode("-_8", 3, out, &n));
    CHECK_MEM("\xfb\xff", 2, out, n);
    CHECK_INT(-1, jwt_b64url_decode("T", 1, out, &n));        /* 6 bits: not a byte */
    CHECK_INT(-1, jwt_b64url_decode("TR", 2, out, &n));       /* stray bits after "M" */
    CHECK_INT(-1, jwt_b64url_decode("TQ==", 4, out, &n));     /* padding */
    CHECK_INT(-1, jwt_b64url_decode("a+b/", 4, out, &n));     /* standard alphabet */
    CHECK_INT(-1, jwt_b64url_decode("TW u", 4, out, &n));
    CHECK_INT(-1, jwt_b64url_decode("TW\0u", 4, out, &n));
}

static void test_alg(void)
{
    const jwt_alg_t *hs = jwt_alg_find("HS256", 5);
    CHECK(hs != NULL);
    CHECK_STR("HS256", hs ? hs->name : NULL);
    CHECK_INT(32, hs ? hs->min_secret : 0);
    const jwt_alg_t *es = jwt_alg_find("ES512", 5);
    CHECK_INT(66, es ? es->coord_len : 0);
    CHECK_STR("secp521r1", es ? es->group : NULL);
    CHECK(jwt_alg_find("none", 4) == NULL);
    CHECK(jwt_alg_find("hs256", 5) == NULL);
    CHECK(jwt_alg_find("HS2560", 6) == NULL);
    CHECK(jwt_alg_find("HS25", 4) == NULL);
    CHECK(jwt_alg_find(NULL, 0) == NULL);
    unsigned all = 0;
    size_t count = 0;
    for (size_t i = 0; jwt_alg_at(i); i++, count++) {
        CHECK_INT(0, all & jwt_alg_at(i)->bit);
        all |= jwt_alg_at(i)->bit;
    }
    CHECK_INT(12, count);
}

static const char *parse_text(const char *text, jwt_token_t *tok)
{
    return jwt_token_parse(text, strlen(text), tok);
}

static void test_token_parse(void)
{
    static const char good[] = "eyJhbGciOiJIUzI1NiIsImtpZCI6ImsxIn0.eyJpc3MiOiJhbGljZS1pc3MiLCJleHAiOjIwMDAwMDAwMDB9."
                               "m2-uO7zFxMlAKegjXbqpDu8gAxhW4zO77bjLMGD0THc";
    jwt_token_t tok;
    CHECK_STR(NULL, parse_text(good, &tok));
    CHECK_MEM("HS256", 5, tok.alg, tok.alg_len);
    CHECK_MEM("k1", 2, tok.kid, tok.kid_len);
    CHECK_INT(32, tok.sig_len);
    CHECK_INT(strchr(strchr(good, '.') + 1, '.') - good, tok.signing_input_len);
    CHECK(tok.signing_input == good);
    CHECK_STR("alice-iss", f_json_string(f_json_get(tok.payload, "iss"), NULL));
    jwt_token_free(&tok);

    const char *parts = "malformed token: not three dot-separated parts";
    CHECK_STR(parts, parse_text("eyJhbGciOiJIUzI1NiJ9.e30", &tok));
    CHECK_STR(parts, parse_text("eyJhbGciOiJIUzI1NiJ9.e30.sig.more", &tok));
    CHECK_STR(parts, parse_text("", &tok));
    CHECK_STR("malformed token: bad base64url", parse_text("eyJhbGciOiJIUzI1NiJ9=.e30.c2ln", &tok));
    CHECK_STR("malformed token: bad base64url", parse_text("eyJhbGciOiJIUzI1NiJ9.e30.c2l+", &tok));
    CHECK_STR("malformed token: bad base64url", parse_text("eyJhbGciOiJIUzI1NiJ9.e3!.c2ln", &tok));

    char *t = compact("{\"alg\":", "{}", (const unsigned char *)"x", 1);
    CHECK_STR("malformed token: bad JSON", parse_text(t, &tok));
    free(t);
    t = compact("[\"alg\"]", "{}", (const unsigned char *)"x", 1);
    CHECK_STR("malformed token: header is not a JSON object", parse_text(t, &tok));
    free(t);
    t = compact("{\"alg\":\"HS256\"}", "\"claims\"", (const unsigned char *)"x", 1);
    CHECK_STR("malformed token: payload is not a JSON object", parse_text(t, &tok));
    free(t);
    t = compact("{\"typ\":\"JWT\"}", "{}", (const unsigned char *)"x", 1);
    CHECK_STR("malformed token: no alg in header", parse_text(t, &tok));
    free(t);
    t = compact("{\"alg\":256}", "{}", (const unsigned char *)"x", 1);
    CHECK_STR("malformed token: no alg in header", parse_text(t, &tok));
    free(t);
    t = compact("{\"alg\":\"HS256\",\"kid\":7}", "{}", (const unsigned char *)"x", 1);
    CHECK_STR("malformed token: kid is not a string", parse_text(t, &tok));
    free(t);
    t = compact("{\"alg\":\"HS256\",\"crit\":[\"exp\"],\"exp\":1}", "{}", (const unsigned char *)"x", 1);
    CHECK_STR("malformed token: unsupported crit header", parse_text(t, &tok));
    free(t);

    /* an empty signature parses; it just never verifies */
    t = compact("{\"alg\":\"none\"}", "{}", (const unsigned char *)"", 0);
    CHECK_STR(NULL, parse_text(t, &tok));
    CHECK_MEM("none", 4, tok.alg, tok.alg_len);
    CHECK(tok.kid == NULL);
    CHECK_INT(0, tok.sig_len);
    jwt_token_free(&tok);
    free(t);
}

static const char *claims_at(const jwt_claim_rules_t *rules, const char *json, double now)
{
    json_t *claims = json_loads(json, 0, NULL);
    const char *why = jwt_claims_check(rules, (const sl_json_t *)claims, now);
    json_decref(claims);
    return why;
}

static void test_claims(void)
{
    jwt_claim_rules_t r = {.verify_exp = true, .verify_nbf = true, .skew_s = 30};
    double now = 1700000000;
    CHECK_STR(NULL, claims_at(&r, "{\"exp\": 1700000100}", now));
    CHECK_STR(NULL, claims_at(&r, "{\"exp\": 1699999990}", now));         /* within the skew */
    CHECK_STR("token expired", claims_at(&r, "{\"exp\": 1699999970}", now)); /* exactly at the edge */
    CHECK_STR("token expired", claims_at(&r, "{\"exp\": 1699990000}", now));
    CHECK_STR(NULL, claims_at(&r, "{\"exp\": 1700000100.5}", now));
    CHECK_STR("missing exp claim", claims_at(&r, "{}", now));
    CHECK_STR("missing exp claim", claims_at(&r, "{\"exp\": null}", now));
    CHECK_STR("invalid exp claim", claims_at(&r, "{\"exp\": \"1700000100\"}", now));
    CHECK_STR("invalid exp claim", claims_at(&r, "{\"exp\": true}", now));
    CHECK_STR(NULL, claims_at(&r, "{\"exp\": 1700000100, \"nbf\": 1700000020}", now));
    CHECK_STR("token not yet valid", claims_at(&r, "{\"exp\": 1700000100, \"nbf\": 1700000031}", now));
    CHECK_STR("invalid nbf claim", claims_at(&r, "{\"exp\": 1700000100, \"nbf\": [1]}", now));

    jwt_claim_rules_t none = {.skew_s = 30};
    CHECK_STR(NULL, claims_at(&none, "{\"exp\": 1, \"nbf\": 1800000000}", now));
    CHECK_STR(NULL, claims_at(&none, "{\"exp\": \"soon\"}", now));

    jwt_claim_rules_t iss = {.issuer = "https://idp", .issuer_len = 11};
    CHECK_STR(NULL, claims_at(&iss, "{\"iss\": \"https://idp\"}", now));
    CHECK_STR("wrong issuer", claims_at(&iss, "{\"iss\": \"https://idp/\"}", now));
    CHECK_STR("wrong issuer", claims_at(&iss, "{\"iss\": \"https://id\"}", now));
    CHECK_STR("wrong issuer", claims_at(&iss, "{}", now));
    CHECK_STR("wrong issuer", claims_at(&iss, "{\"iss\": [\"https://idp\"]}", now));

    jwt_claim_rules_t aud = {.audience = "api", .audience_len = 3};
    CHECK_STR(NULL, claims_at(&aud, "{\"aud\": \"api\"}", now));
    CHECK_STR(NULL, claims_at(&aud, "{\"aud\": [\"web\", \"api\"]}", now));
    CHECK_STR("wrong audience", claims_at(&aud, "{\"aud\": [\"web\", \"apis\"]}", now));
    CHECK_STR("wrong audience", claims_at(&aud, "{\"aud\": []}", now));
    CHECK_STR("wrong audience", claims_at(&aud, "{\"aud\": \"API\"}", now));
    CHECK_STR("wrong audience", claims_at(&aud, "{\"aud\": [3]}", now));
    CHECK_STR("wrong audience", claims_at(&aud, "{}", now));

    jwt_claim_rules_t life = {.max_lifetime_s = 3600};
    CHECK_STR(NULL, claims_at(&life, "{\"iat\": 1700000000, \"exp\": 1700003600}", now));
    CHECK_STR("token lifetime exceeds max_lifetime", claims_at(&life, "{\"iat\": 1700000000, \"exp\": 1700003601}", now));
    CHECK_STR("missing iat claim", claims_at(&life, "{\"exp\": 1700003600}", now));
    CHECK_STR("invalid iat claim", claims_at(&life, "{\"iat\": \"x\", \"exp\": 1700003600}", now));
    CHECK_STR("missing exp claim", claims_at(&life, "{\"iat\": 1700000000}", now));
}

static void check_roundtrip(const char *name, EVP_PKEY *priv)
{
    const jwt_alg_t *alg = jwt_alg_find(name, strlen(name));
    static const char input[] = "eyJhbGciOiJ4In0.eyJzdWIiOiJ5In0";
    size_t n = 0;
    unsigned char *sig = sign(alg, priv, input, &n);
    jwt_key_ref_t key = {.pkey = priv};
    CHECK(jwt_verify(alg, &key, input, strlen(input), sig, n));
    CHECK(!jwt_verify(alg, &key, input, strlen(input) - 1, sig, n));
    sig[n / 2] ^= 1;
    CHECK(!jwt_verify(alg, &key, input, strlen(input), sig, n));
    sig[n / 2] ^= 1;
    CHECK(!jwt_verify(alg, &key, input, strlen(input), sig, n - 1));
    CHECK_INT(0, ERR_peek_error());   /* failures leave nothing queued */
    free(sig);
}

static void test_verify(EVP_PKEY *rsa, EVP_PKEY *p256, EVP_PKEY *p384, EVP_PKEY *p521)
{
    /* A token computed independently (Python's hmac) with this secret. */
    static const char input[] = "eyJhbGciOiJIUzI1NiIsImtpZCI6ImsxIn0.eyJpc3MiOiJhbGljZS1pc3MiLCJleHAiOjIwMDAwMDAwMDB9";
    static const char sig_b64[] = "m2-uO7zFxMlAKegjXbqpDu8gAxhW4zO77bjLMGD0THc";
    unsigned char sig[64];
    size_t n = 0;
    jwt_b64url_decode(sig_b64, strlen(sig_b64), sig, &n);
    const jwt_alg_t *hs256 = jwt_alg_find("HS256", 5);
    jwt_key_ref_t secret = {(const unsigned char *)"0123456789abcdef0123456789abcdef", 32, NULL};
    CHECK(jwt_verify(hs256, &secret, input, strlen(input), sig, n));
    jwt_key_ref_t other = {(const unsigned char *)"0123456789abcdef0123456789abcdeF", 32, NULL};
    CHECK(!jwt_verify(hs256, &other, input, strlen(input), sig, n));
    CHECK(!jwt_verify(hs256, &secret, input, strlen(input), sig, n - 1));
    CHECK(!jwt_verify(jwt_alg_find("HS512", 5), &secret, input, strlen(input), sig, n));
    jwt_key_ref_t no_secret = {NULL, 0, rsa};
    CHECK(!jwt_verify(hs256, &no_secret, input, strlen(input), sig, n));

    check_roundtrip("RS256", rsa);
    check_roundtrip("RS384", rsa);
    check_roundtrip("RS512", rsa);
    check_roundtrip("PS256", rsa);
    check_roundtrip("PS512", rsa);
    check_roundtrip("ES256", p256);
    check_roundtrip("ES384", p384);
    check_roundtrip("ES512", p521);

    /* PKCS#1 v1.5 and PSS signatures are not interchangeable */
    size_t len = 0;
    unsigned char *rs = sign(jwt_alg_find("RS256", 5), rsa, input, &len);
    jwt_key_ref_t key = {.pkey = rsa};
    CHECK(!jwt_verify(jwt_alg_find("PS256", 5), &key, input, strlen(input), rs, len));
    free(rs);
    /* a DER ECDSA signature is not the JWS form */
    unsigned char der[80] = {0x30, 0x44};
    jwt_key_ref_t ec = {.pkey = p256};
    CHECK(!jwt_verify(jwt_alg_find("ES256", 5), &ec, input, strlen(input), der, 70));
    CHECK_INT(0, ERR_peek_error());
}

static void test_keys(EVP_PKEY *rsa, EVP_PKEY *p256)
{
    char err[256] = "";
    unsigned rsa_algs = 0, all_rsa = 0;
    for (size_t i = 0; jwt_alg_at(i); i++)
        if (jwt_alg_at(i)->kind == JWT_RSA || jwt_alg_at(i)->kind == JWT_RSA_PSS)
            all_rsa |= jwt_alg_at(i)->bit;
    rsa_algs = jwt_key_algs(rsa, err, sizeof err);
    CHECK_INT(all_rsa, rsa_algs);
    CHECK_INT(jwt_alg_find("ES256", 5)->bit, jwt_key_algs(p256, err, sizeof err));

    EVP_PKEY *small = gen_rsa(1024);
    CHECK_INT(0, jwt_key_algs(small, err, sizeof err));
    CHECK_STR("RSA key of 1024 bits is too small (at least 2048)", err);
    EVP_PKEY *k1 = gen_ec("secp256k1");
    CHECK_INT(0, jwt_key_algs(k1, err, sizeof err));
    CHECK_STR("EC key on curve \"secp256k1\" fits no JWS algorithm (P-256, P-384, P-521)", err);
    EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    CHECK_INT(0, jwt_key_algs(ed, err, sizeof err));
    CHECK_STR("unsupported key type (only RSA and EC keys verify JWS signatures)", err);

    char *path = write_pubkey("rsa.pem", rsa);
    EVP_PKEY *loaded = jwt_pem_public_key(path, err, sizeof err);
    CHECK(loaded != NULL);
    CHECK(loaded && EVP_PKEY_eq(loaded, rsa) == 1);
    EVP_PKEY_free(loaded);
    free(path);

    char missing[128];
    snprintf(missing, sizeof missing, "%s/no-such.pem", tmpdir);
    CHECK(jwt_pem_public_key(missing, err, sizeof err) == NULL);
    char want[256];
    snprintf(want, sizeof want, "cannot read \"%s\": No such file or directory", missing);
    CHECK_STR(want, err);
    path = write_file("garbage.pem", "-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----\n");
    CHECK(jwt_pem_public_key(path, err, sizeof err) == NULL);
    snprintf(want, sizeof want, "\"%s\" holds no PEM public key or certificate", path);
    CHECK_STR(want, err);
    CHECK_INT(0, ERR_peek_error());
    free(path);
    EVP_PKEY_free(small);
    EVP_PKEY_free(k1);
    EVP_PKEY_free(ed);
}

static void test_jwks(EVP_PKEY *rsa, EVP_PKEY *p256)
{
    char err[512] = "";
    jwt_jwks_t set;
    json_t *keys = json_pack("[o, o]", rsa_jwk(rsa, "r1"), ec_jwk(p256, "e1", "P-256", 32));
    CHECK_INT(0, jwks_of(&set, err, sizeof err, keys));
    CHECK_INT(2, set.n);
    const jwt_jwk_t *r1 = jwt_jwks_find(&set, "r1", 2), *e1 = jwt_jwks_find(&set, "e1", 2);
    CHECK(r1 && EVP_PKEY_eq(r1->pkey, rsa) == 1);
    CHECK(e1 && EVP_PKEY_eq(e1->pkey, p256) == 1);
    CHECK_INT(jwt_alg_find("ES256", 5)->bit, e1 ? e1->algs : 0);
    CHECK(jwt_jwks_find(&set, "r", 1) == NULL);
    CHECK(jwt_jwks_find(&set, "r1x", 3) == NULL);
    /* a signature made with the private key verifies with the JWKS key */
    const jwt_alg_t *rs256 = jwt_alg_find("RS256", 5);
    size_t n = 0;
    unsigned char *sig = sign(rs256, rsa, "a.b", &n);
    jwt_key_ref_t ref = {.pkey = r1 ? r1->pkey : NULL};
    CHECK(jwt_verify(rs256, &ref, "a.b", 3, sig, n));
    free(sig);
    jwt_jwks_free(&set);
    CHECK_INT(0, set.n);

    /* "alg" narrows a key to that one algorithm */
    json_t *narrow = rsa_jwk(rsa, "p1");
    json_object_set_new(narrow, "alg", json_string("PS256"));
    json_object_set_new(narrow, "use", json_string("sig"));
    CHECK_INT(0, jwks_of(&set, err, sizeof err, json_pack("[o]", narrow)));
    CHECK_INT(jwt_alg_find("PS256", 5)->bit, set.n ? set.keys[0].algs : 0);
    jwt_jwks_free(&set);

    /* skipped keys, each with a warning, leave the usable ones */
    json_t *enc = rsa_jwk(rsa, "enc1");
    json_object_set_new(enc, "use", json_string("enc"));
    json_t *nokid = rsa_jwk(rsa, "x");
    json_object_del(nokid, "kid");
    json_t *oct = json_pack("{s:s, s:s, s:s}", "kty", "oct", "kid", "o1", "k", "c2VjcmV0");
    json_t *k1 = ec_jwk(p256, "k1", "P-256", 32);
    json_object_set_new(k1, "crv", json_string("secp256k1"));
    json_t *oaep = rsa_jwk(rsa, "oaep");
    json_object_set_new(oaep, "alg", json_string("RSA-OAEP"));
    last_log[0] = '\0';
    CHECK_INT(0, jwks_of(&set, err, sizeof err, json_pack("[o, o, o, o, o, o]", enc, nokid, oct, k1, oaep,
                                                          rsa_jwk(rsa, "kept"))));
    CHECK_INT(1, set.n);
    CHECK(jwt_jwks_find(&set, "kept", 4) != NULL);
    CHECK(jwt_jwks_find(&set, "enc1", 4) == NULL);
    CHECK_STR("jwt-auth: test.jwks: keys[4] skipped: alg is not a supported JWS signature algorithm", last_log);
    jwt_jwks_free(&set);
    CHECK_INT(-1, jwks_of(&set, err, sizeof err, json_pack("[o]", json_pack("{s:s, s:s, s:s}", "kty", "oct", "kid", "o1", "k", "c2VjcmV0"))));
    CHECK_STR("jwt-auth: test.jwks: keys[0] skipped: kty is neither RSA nor EC", last_log);
    CHECK_STR("no usable signing key (RSA or EC P-256/P-384/P-521 with a kid)", err);
    CHECK_INT(0, set.n);
    CHECK_INT(-1, jwks_of(&set, err, sizeof err, json_array()));
    CHECK_STR("no usable signing key (RSA or EC P-256/P-384/P-521 with a kid)", err);

    /* errors */
    CHECK_INT(-1, jwt_jwks_parse("{\"keys\": ", 9, "t", &set, err, sizeof err));
    CHECK_STR("not JSON (line 1 column 9: unexpected token near end of file)", err);
    CHECK_INT(-1, jwt_jwks_parse("[]", 2, "t", &set, err, sizeof err));
    CHECK_STR("expected an object with a \"keys\" array", err);
    CHECK_INT(-1, jwt_jwks_parse("{\"keys\": {}}", 12, "t", &set, err, sizeof err));
    CHECK_STR("expected an object with a \"keys\" array", err);
    CHECK_INT(-1, jwks_of(&set, err, sizeof err, json_pack("[o, i]", rsa_jwk(rsa, "a"), 3)));
    CHECK_STR("keys[1]: expected an object", err);
    CHECK_INT(0, set.n);
    CHECK_INT(-1, jwks_of(&set, err, sizeof err, json_pack("[{s:s}]", "kid", "a")));
    CHECK_STR("keys[0].kty: missing (a string)", err);
    json_t *bad_n = rsa_jwk(rsa, "a");
    json_object_set_new(bad_n, "n", json_string("AQAB+"));
    CHECK_INT(-1, jwks_of(&set, err, sizeof err, json_pack("[o]", bad_n)));
    CHECK_STR("keys[0].n: bad base64url", err);
    json_t *no_e = rsa_jwk(rsa, "a");
    json_object_del(no_e, "e");
    CHECK_INT(-1, jwks_of(&set, err, sizeof err, json_pack("[o]", no_e)));
    CHECK_STR("keys[0].e: missing (a base64url string)", err);
    json_t *even_n = rsa_jwk(rsa, "a");
    json_object_set_new(even_n, "n", json_string("AAAA"));
    CHECK_INT(-1, jwks_of(&set, err, sizeof err, json_pack("[o]", even_n)));
    CHECK_STR("keys[0]: not a valid RSA public key", err);
    json_t *short_x = ec_jwk(p256, "a", "P-256", 32);
    json_object_set_new(short_x, "x", json_string("AQAB"));
    CHECK_INT(-1, jwks_of(&set, err, sizeof err, json_pack("[o]", short_x)));
    CHECK_STR("keys[0]: x and y must be 32 bytes each for P-256", err);
    json_t *off_curve = ec_jwk(p256, "a", "P-256", 32);
    json_object_set_new(off_curve, "y", json_string("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE"));
    CHECK_INT(-1, jwks_of(&set, err, sizeof err, json_pack("[o]", off_curve)));
    CHECK_STR("keys[0]: not a point on the curve", err);
    json_t *misfit = ec_jwk(p256, "a", "P-256", 32);
    json_object_set_new(misfit, "alg", json_string("RS256"));
    CHECK_INT(-1, jwks_of(&set, err, sizeof err, json_pack("[o]", misfit)));
    CHECK_STR("keys[0].alg: does not fit the key's type", err);
    json_t *alg_num = rsa_jwk(rsa, "a");
    json_object_set_new(alg_num, "alg", json_integer(256));
    CHECK_INT(-1, jwks_of(&set, err, sizeof err, json_pack("[o]", alg_num)));
    CHECK_STR("keys[0].alg: expected a string", err);
    CHECK_INT(-1, jwks_of(&set, err, sizeof err, json_pack("[o, o]", rsa_jwk(rsa, "d"), ec_jwk(p256, "d", "P-256", 32))));
    CHECK_STR("keys[1].kid: duplicate kid", err);
    EVP_PKEY *small = gen_rsa(1024);
    CHECK_INT(-1, jwks_of(&set, err, sizeof err, json_pack("[o]", rsa_jwk(small, "s"))));
    CHECK_STR("keys[0]: RSA key of 1024 bits is too small (at least 2048)", err);
    EVP_PKEY_free(small);
    CHECK_INT(0, ERR_peek_error());

    /* from a file */
    json_t *doc = json_pack("{s:[o]}", "keys", rsa_jwk(rsa, "f1"));
    char *text = json_dumps(doc, 0);
    json_decref(doc);
    char *path = write_file("keys.jwks", text);
    free(text);
    CHECK_INT(0, jwt_jwks_load_file(path, &set, err, sizeof err));
    CHECK(jwt_jwks_find(&set, "f1", 2) != NULL);
    jwt_jwks_free(&set);
    free(path);
    path = write_file("broken.jwks", "{\"keys\": [{\"kty\": \"EC\"}]}");
    CHECK_INT(-1, jwt_jwks_load_file(path, &set, err, sizeof err));
    char want[512];
    snprintf(want, sizeof want, "jwt-auth: %s: keys[0] skipped: no kid (keys are looked up by the token's kid)", path);
    CHECK_STR(want, last_log);
    snprintf(want, sizeof want, "\"%s\": no usable signing key (RSA or EC P-256/P-384/P-521 with a kid)", path);
    CHECK_STR(want, err);
    free(path);
    char missing[128];
    snprintf(missing, sizeof missing, "%s/none.jwks", tmpdir);
    CHECK_INT(-1, jwt_jwks_load_file(missing, &set, err, sizeof err));
    snprintf(want, sizeof want, "cannot read \"%s\": No such file or directory", missing);
    CHECK_STR(want, err);
}

/* Loads consumers from JSON text; returns the error or NULL. */
static const char *load_consumers(const char *json, jwt_creds_t *set)
{
    static char err[1024];
    json_error_t e;
    json_t *consumers = json_loads(json, 0, &e);
    if (!consumers) {
        snprintf(err, sizeof err, "test bug: %s", e.text);
        return err;
    }
    fake_consumers = (const sl_json_t *)consumers;
    int rc = jwt_creds_load(fake_consumers, set, err, sizeof err);
    fake_consumers = NULL;
    json_decref(consumers);
    return rc == 0 ? NULL : err;
}

static void test_creds(const char *rsa_pem, const char *ec_pem)
{
    char json[4096];
    jwt_creds_t set;
    snprintf(json, sizeof json,
             "[{\"name\": \"alice\", \"tenant\": \"acme\", \"groups\": [\"admin\", \"beta\"],"
             "  \"credentials\": {\"jwt-auth\": [{\"key\": \"alice-iss\", \"algorithm\": \"HS256\","
             "                                   \"secret\": \"0123456789abcdef0123456789abcdef\"},"
             "                                  {\"key\": \"alice-rsa\", \"algorithm\": \"RS256\", \"public_key\": \"%s\"}],"
             "                    \"key-auth\": [{\"key\": \"other plugin's\"}]}},"
             " {\"name\": \"bob\", \"credentials\": {\"jwt-auth\": [{\"key\": \"bob-ec\", \"algorithm\": \"ES256\","
             "                                                     \"public_key\": \"%s\"},"
             "                                                    {\"key\": \"https://idp\", \"algorithm\": \"RS256\"}]}},"
             " {\"name\": \"carol\"}]",
             rsa_pem, ec_pem);
    CHECK_STR(NULL, load_consumers(json, &set));
    CHECK_INT(3, set.n_consumers);
    CHECK_INT(4, set.n_creds);
    const jwt_cred_t *c = jwt_creds_find(&set, "alice-iss", 9);
    CHECK(c != NULL);
    if (c) {
        CHECK_STR("HS256", c->alg->name);
        CHECK_MEM("0123456789abcdef0123456789abcdef", 32, c->secret, c->secret_len);
        CHECK(c->pkey == NULL);
        CHECK_STR("jwt-auth:401f52d8091e", c->id);   /* sha256("alice-iss"), by Python */
        CHECK_STR("alice", c->consumer->name);
        CHECK_STR("acme", c->consumer->tenant);
        CHECK_STR("admin,beta", c->consumer->groups);
    }
    c = jwt_creds_find(&set, "alice-rsa", 9);
    CHECK(c && c->pkey && !c->secret);
    c = jwt_creds_find(&set, "bob-ec", 6);
    CHECK(c && c->pkey && strcmp(c->consumer->name, "bob") == 0);
    CHECK(c && c->consumer->tenant == NULL && c->consumer->groups == NULL);
    c = jwt_creds_find(&set, "https://idp", 11);
    CHECK(c && !c->pkey && !c->secret && strcmp(c->alg->name, "RS256") == 0);
    CHECK(jwt_creds_find(&set, "alice", 5) == NULL);
    CHECK(jwt_creds_find(&set, "alice-is", 8) == NULL);
    CHECK(jwt_creds_find(&set, "other plugin's", 14) == NULL);
    CHECK(jwt_creds_consumer(&set, "carol") != NULL);
    CHECK(jwt_creds_consumer(&set, "dave") == NULL);
    jwt_creds_free(&set);

    CHECK_STR(NULL, load_consumers("[]", &set));
    CHECK_INT(0, set.n_creds);
    jwt_creds_free(&set);

#define CRED(body) "[{\"name\": \"alice\"}, {\"name\": \"bob\", \"credentials\": {\"jwt-auth\": [" body "]}}]"
    CHECK_STR("consumers[1] (bob).credentials.jwt-auth[0].algorithm: unknown algorithm \"HS999\" (one of HS256, "
              "HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512)",
              load_consumers(CRED("{\"key\": \"k\", \"algorithm\": \"HS999\", \"secret\": \"x\"}"), &set));
    CHECK_STR("consumers[1] (bob).credentials.jwt-auth[0].algorithm: unknown algorithm \"none\" (one of HS256, "
              "HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512)",
              load_consumers(CRED("{\"key\": \"k\", \"algorithm\": \"none\"}"), &set));
    CHECK_STR("consumers[1] (bob).credentials.jwt-auth[0].algorithm: missing (one of HS256, "
              "HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512)",
              load_consumers(CRED("{\"key\": \"k\", \"secret\": \"x\"}"), &set));
    CHECK_STR("consumers[1] (bob).credentials.jwt-auth[0].key: expected a non-empty string",
              load_consumers(CRED("{\"key\": \"\", \"algorithm\": \"HS256\"}"), &set));
    CHECK_STR("consumers[1] (bob).credentials.jwt-auth[0].key: expected a non-empty string",
              load_consumers(CRED("{\"algorithm\": \"HS256\"}"), &set));
    CHECK_STR("consumers[1] (bob).credentials.jwt-auth[0].secret: must be at least 32 bytes for HS256",
              load_consumers(CRED("{\"key\": \"k\", \"algorithm\": \"HS256\", \"secret\": \"short\"}"), &set));
    CHECK_STR("consumers[1] (bob).credentials.jwt-auth[0].secret: must be at least 64 bytes for HS512",
              load_consumers(CRED("{\"key\": \"k\", \"algorithm\": \"HS512\", \"secret\": \"0123456789abcdef0123456789abcdef\"}"), &set));
    CHECK_STR("consumers[1] (bob).credentials.jwt-auth[0].secret: missing (HS256 needs a shared secret)",
              load_consumers(CRED("{\"key\": \"k\", \"algorithm\": \"HS256\"}"), &set));
    CHECK_STR("consumers[1] (bob).credentials.jwt-auth[0].secret: expected a string",
              load_consumers(CRED("{\"key\": \"k\", \"algorithm\": \"HS256\", \"secret\": 12}"), &set));
    CHECK_STR("consumers[1] (bob).credentials.jwt-auth[0].public_key: not allowed with HS256 (an HMAC algorithm takes a secret)",
              load_consumers(CRED("{\"key\": \"k\", \"algorithm\": \"HS256\", \"public_key\": \"/x.pem\"}"), &set));
    CHECK_STR("consumers[1] (bob).credentials.jwt-auth[0].secret: not allowed with RS256 (it takes a public_key)",
              load_consumers(CRED("{\"key\": \"k\", \"algorithm\": \"RS256\", \"secret\": \"0123456789abcdef0123456789abcdef\"}"), &set));
    CHECK_STR("consumers[1] (bob).credentials.jwt-auth[0]: unknown field (allowed: key, algorithm, secret, public_key)",
              load_consumers(CRED("{\"key\": \"k\", \"algorithm\": \"RS256\", \"publickey\": \"/x.pem\"}"), &set));
    CHECK_STR("consumers[1] (bob).credentials.jwt-auth[0]: expected a mapping", load_consumers(CRED("\"k\""), &set));
    CHECK_STR("consumers[0] (bob).credentials.jwt-auth: expected a list",
              load_consumers("[{\"name\": \"bob\", \"credentials\": {\"jwt-auth\": {\"key\": \"k\"}}}]", &set));
    CHECK_STR("consumers[0] (bob).credentials: expected a mapping",
              load_consumers("[{\"name\": \"bob\", \"credentials\": []}]", &set));
    CHECK_STR("consumers[0] (bob).tenant: expected a string", load_consumers("[{\"name\": \"bob\", \"tenant\": 1}]", &set));
    CHECK_STR("consumers[0] (bob).groups: expected a list of strings",
              load_consumers("[{\"name\": \"bob\", \"groups\": \"admin\"}]", &set));
    CHECK_STR("consumers[0] (bob).groups: item 1: expected a non-empty string without commas",
              load_consumers("[{\"name\": \"bob\", \"groups\": [\"a\", \"b,c\"]}]", &set));
    CHECK_STR("consumers[0] (?).name: expected a non-empty string without control characters",
              load_consumers("[{\"name\": \"bo\\nb\"}]", &set));

    char missing[300], want[600];
    snprintf(missing, sizeof missing, CRED("{\"key\": \"k\", \"algorithm\": \"RS256\", \"public_key\": \"%s/nope.pem\"}"), tmpdir);
    snprintf(want, sizeof want,
             "consumers[1] (bob).credentials.jwt-auth[0].public_key: cannot read \"%s/nope.pem\": No such file or directory", tmpdir);
    CHECK_STR(want, load_consumers(missing, &set));
    snprintf(json, sizeof json, CRED("{\"key\": \"k\", \"algorithm\": \"ES256\", \"public_key\": \"%s\"}"), rsa_pem);
    snprintf(want, sizeof want, "consumers[1] (bob).credentials.jwt-auth[0].public_key: \"%s\" is not a key for ES256", rsa_pem);
    CHECK_STR(want, load_consumers(json, &set));
    snprintf(json, sizeof json, CRED("{\"key\": \"k\", \"algorithm\": \"ES384\", \"public_key\": \"%s\"}"), ec_pem);
    snprintf(want, sizeof want, "consumers[1] (bob).credentials.jwt-auth[0].public_key: \"%s\" is not a key for ES384", ec_pem);
    CHECK_STR(want, load_consumers(json, &set));

    CHECK_STR("jwt-auth credential key \"same\" is used twice (consumers alice and bob)",
              load_consumers("[{\"name\": \"alice\", \"credentials\": {\"jwt-auth\": [{\"key\": \"same\", \"algorithm\": \"RS256\"}]}},"
                             " {\"name\": \"bob\", \"credentials\": {\"jwt-auth\": [{\"key\": \"same\", \"algorithm\": \"ES256\"}]}}]",
                             &set));
#undef CRED
}

static void test_sources(void)
{
    size_t n = 0;
    const char *t;
    t = jwt_bearer("Bearer abc.def.ghi", 18, true, &n);
    CHECK_MEM("abc.def.ghi", 11, t, n);
    t = jwt_bearer("bearer   abc  ", 14, true, &n);
    CHECK_MEM("abc", 3, t, n);
    CHECK(jwt_bearer("Basic YWxpY2U6cw==", 18, true, &n) == NULL);
    CHECK(jwt_bearer("abc.def.ghi", 11, true, &n) == NULL);
    CHECK(jwt_bearer("Bearer", 6, true, &n) == NULL);
    CHECK(jwt_bearer("Bearer ", 7, true, &n) == NULL);
    CHECK(jwt_bearer("Bearerabc", 9, true, &n) == NULL);
    t = jwt_bearer("abc.def.ghi", 11, false, &n);
    CHECK_MEM("abc.def.ghi", 11, t, n);
    t = jwt_bearer("BEARER x.y.z", 12, false, &n);
    CHECK_MEM("x.y.z", 5, t, n);
    CHECK(jwt_bearer("  ", 2, false, &n) == NULL);

    static const char q[] = "a=1&jwt=x.y.z&b&jwt=second&jwtx=3";
    t = jwt_query_find(q, strlen(q), "jwt", &n);
    CHECK_MEM("x.y.z", 5, t, n);
    t = jwt_query_find(q, strlen(q), "b", &n);
    CHECK_MEM("", 0, t, n);
    t = jwt_query_find(q, strlen(q), "jwtx", &n);
    CHECK_MEM("3", 1, t, n);
    CHECK(jwt_query_find(q, strlen(q), "j", &n) == NULL);
    CHECK(jwt_query_find("", 0, "jwt", &n) == NULL);
    char out[128];
    CHECK_INT(12, jwt_query_without(q, strlen(q), "jwt", out));
    CHECK_STR("a=1&b&jwtx=3", out);
    CHECK_INT(0, jwt_query_without("jwt=a&jwt=b", 11, "jwt", out));
    CHECK_STR("", out);
    CHECK_INT(3, jwt_query_without("jwt=a&c=1", 9, "jwt", out));
    CHECK_STR("c=1", out);

    static const char c[] = "theme=dark;  session = \"x.y.z\" ;sessionid=9; session=second;;flag";
    t = jwt_cookie_find(c, strlen(c), "session", &n);
    CHECK_MEM("x.y.z", 5, t, n);
    t = jwt_cookie_find(c, strlen(c), "sessionid", &n);
    CHECK_MEM("9", 1, t, n);
    CHECK(jwt_cookie_find(c, strlen(c), "flag", &n) == NULL);
    CHECK(jwt_cookie_find(c, strlen(c), "sess", &n) == NULL);
    t = jwt_cookie_find("a=\"\"", 4, "a", &n);
    CHECK_MEM("", 0, t, n);
    char big[2 * sizeof c + 1];
    CHECK_INT(29, jwt_cookie_without(c, strlen(c), "session", big));
    CHECK_STR("theme=dark; sessionid=9; flag", big);
    CHECK_INT(0, jwt_cookie_without("session=a", 9, "session", big));
    CHECK_STR("", big);
    char grow[2 * 7 + 1];
    CHECK_INT(8, jwt_cookie_without("a=1;b=2", 7, "x", grow));
    CHECK_STR("a=1; b=2", grow);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/jwt-auth-unit-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 2;
    }
    EVP_PKEY *rsa = gen_rsa(2048), *p256 = gen_ec("P-256"), *p384 = gen_ec("P-384"), *p521 = gen_ec("P-521");
    char *rsa_pem = write_pubkey("rsa-pub.pem", rsa), *ec_pem = write_pubkey("ec-pub.pem", p256);

    test_b64url();
    test_alg();
    test_token_parse();
    test_claims();
    test_verify(rsa, p256, p384, p521);
    test_keys(rsa, p256);
    test_jwks(rsa, p256);
    test_creds(rsa_pem, ec_pem);
    test_sources();

    EVP_PKEY_free(rsa);
    EVP_PKEY_free(p256);
    EVP_PKEY_free(p384);
    EVP_PKEY_free(p521);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    free(rsa_pem);
    free(ec_pem);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
