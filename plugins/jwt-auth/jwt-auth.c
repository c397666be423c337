/* jwt-auth: authenticates requests carrying a JSON Web Token (RFC 7519)
 * signed with a consumer's key, and tells later plugins and the upstream
 * who the consumer is.
 *
 * The token comes from a header ("Authorization: Bearer ..."), a query
 * parameter or a cookie. Its kid, or the claim named by key_claim, picks a
 * consumer credential; that credential fixes the one algorithm it accepts
 * and holds the key (an HMAC secret, a PEM public key, or "take it from
 * jwks_file by kid"). Then the signature, then exp/nbf/iss/aud/lifetime.
 * Parsing lives in jwt_token.c, keys in jwt_keys.c and jwt_jwks.c,
 * signatures in jwt_verify.c, claims in jwt_claims.c, consumers in
 * jwt_creds.c and token sources in jwt_source.c. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "jwt_alg.h"
#include "jwt_claims.h"
#include "jwt_creds.h"
#include "jwt_host.h"
#include "jwt_jwks.h"
#include "jwt_source.h"
#include "jwt_token.h"
#include "jwt_verify.h"
#include "sluice/plugin.h"

const sl_host_t *jwt_host;

typedef struct jwt_inst {
    /* Strings borrowed from the validated config, which outlives us. */
    const char *header;            /* "" = not read */
    bool header_is_authorization;  /* then only "Bearer <token>" counts */
    const char *query_param;       /* "" = not read */
    const char *cookie;            /* "" = not read */
    const char *key_claim;
    unsigned allowed;              /* jwt_alg_t.bit set */
    jwt_claim_rules_t rules;
    bool hide_credentials;
    jwt_creds_t creds;
    jwt_jwks_t jwks;
    bool have_jwks;
    const jwt_consumer_t *anonymous;
} jwt_inst_t;

static int init(const sl_host_t *h)
{
    jwt_host = h;
    return 0;
}

/* ---- configure ------------------------------------------------------------------- */

static const char *conf_string(const sl_json_t *conf, const char *key, size_t *len)
{
    const sl_json_t *v = jwt_host->json_get(conf, key);
    return v ? jwt_host->json_string(v, len) : NULL;
}

static void read_lists(jwt_inst_t *in, const sl_json_t *conf)
{
    const sl_json_t *algs = jwt_host->json_get(conf, "algorithms");
    for (size_t i = 0; algs && i < jwt_host->json_len(algs); i++) {
        size_t n = 0;
        const char *name = jwt_host->json_string(jwt_host->json_at(algs, i), &n);
        const jwt_alg_t *a = jwt_alg_find(name, n);
        if (a)
            in->allowed |= a->bit;
    }
    const sl_json_t *claims = jwt_host->json_get(conf, "claims_to_verify");
    for (size_t i = 0; claims && i < jwt_host->json_len(claims); i++) {
        const char *name = jwt_host->json_string(jwt_host->json_at(claims, i), NULL);
        if (name && strcmp(name, "exp") == 0)
            in->rules.verify_exp = true;
        else if (name && strcmp(name, "nbf") == 0)
            in->rules.verify_nbf = true;
    }
}

static void read_rules(jwt_inst_t *in, const sl_json_t *conf)
{
    /* Durations arrive as integer milliseconds; token times are seconds. */
    in->rules.skew_s = (double)jwt_host->json_integer(jwt_host->json_get(conf, "clock_skew")) / 1000.0;
    const sl_json_t *lifetime = jwt_host->json_get(conf, "max_lifetime");
    if (lifetime)
        in->rules.max_lifetime_s = (double)jwt_host->json_integer(lifetime) / 1000.0;
    in->rules.issuer = conf_string(conf, "issuer", &in->rules.issuer_len);
    in->rules.audience = conf_string(conf, "audience", &in->rules.audience_len);
}

static void unconfigure(void *instance)
{
    jwt_inst_t *in = instance;
    jwt_creds_free(&in->creds);
    jwt_jwks_free(&in->jwks);
    free(in);
}

static void *refuse_config(jwt_inst_t *in, char *err, size_t errlen, const char *fmt, const char *arg)
{
    snprintf(err, errlen, fmt, arg);
    unconfigure(in);
    return NULL;
}

static void *configure(const sl_json_t *conf, char *err, size_t errlen)
{
    jwt_inst_t *in = calloc(1, sizeof *in);
    if (!in) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    in->header = conf_string(conf, "header", NULL);
    in->query_param = conf_string(conf, "query_param", NULL);
    in->cookie = conf_string(conf, "cookie", NULL);
    in->key_claim = conf_string(conf, "key_claim", NULL);
    if (!in->header || !in->query_param || !in->cookie || !in->key_claim)
        return refuse_config(in, err, errlen, "%s", "header, query_param, cookie and key_claim must be strings");
    if (!in->header[0] && !in->query_param[0] && !in->cookie[0])
        return refuse_config(in, err, errlen, "%s",
                             "header, query_param and cookie are all empty: the token could come from nowhere");
    in->header_is_authorization = strcasecmp(in->header, "Authorization") == 0;
    in->hide_credentials = jwt_host->json_bool(jwt_host->json_get(conf, "hide_credentials"));
    read_lists(in, conf);
    read_rules(in, conf);

    char why[900];
    if (jwt_creds_load(jwt_host->config_consumers(), &in->creds, why, sizeof why) != 0)
        return refuse_config(in, err, errlen, "%s", why);
    const char *jwks_file = conf_string(conf, "jwks_file", NULL);
    if (jwks_file) {
        if (jwt_jwks_load_file(jwks_file, &in->jwks, why, sizeof why) != 0)
            return refuse_config(in, err, errlen, "jwks_file: %s", why);
        in->have_jwks = true;
    }
    const char *anonymous = conf_string(conf, "anonymous", NULL);
    if (anonymous && !(in->anonymous = jwt_creds_consumer(&in->creds, anonymous)))
        return refuse_config(in, err, errlen, "anonymous: no consumer named \"%s\"", anonymous);
    return in;
}

/* ---- the token ------------------------------------------------------------------- */

typedef enum { SRC_HEADER = 1, SRC_QUERY, SRC_COOKIE } source_t;

typedef struct found {
    source_t source;
    const char *token;
    size_t len;
} found_t;

static bool is_cookie_header(const char *name)
{
    return strcasecmp(name, "cookie") == 0;
}

static bool find_in_cookies(const jwt_inst_t *in, sl_req_t *r, found_t *f)
{
    const char *name, *value;
    size_t nlen, vlen;
    for (int i = 0; jwt_host->req_header_at(r, i, &name, &nlen, &value, &vlen); i++) {
        if (!is_cookie_header(name))
            continue;
        f->token = jwt_cookie_find(value, vlen, in->cookie, &f->len);
        if (f->token && f->len) {
            f->source = SRC_COOKIE;
            return true;
        }
    }
    return false;
}

/* Header first, then query parameter, then cookie: the first one present. */
static bool find_token(const jwt_inst_t *in, sl_req_t *r, found_t *f)
{
    size_t n = 0;
    if (in->header[0]) {
        const char *v = jwt_host->req_header(r, in->header, &n);
        f->token = v ? jwt_bearer(v, n, in->header_is_authorization, &f->len) : NULL;
        if (f->token) {
            f->source = SRC_HEADER;
            return true;
        }
    }
    if (in->query_param[0]) {
        const char *q = jwt_host->req_query(r, &n);
        f->token = q ? jwt_query_find(q, n, in->query_param, &f->len) : NULL;
        if (f->token && f->len) {
            f->source = SRC_QUERY;
            return true;
        }
    }
    return in->cookie[0] && find_in_cookies(in, r, f);
}

/* A credential is only usable by this instance when it holds a key or the
 * instance has a jwks_file to take the key from. */
static const jwt_cred_t *usable(const jwt_inst_t *in, const jwt_cred_t *cred)
{
    return cred && (cred->secret || cred->pkey || in->have_jwks) ? cred : NULL;
}

/* The header's kid first (when a credential has that key), then key_claim. */
static const jwt_cred_t *find_credential(const jwt_inst_t *in, const jwt_token_t *tok)
{
    const jwt_cred_t *cred = tok->kid ? usable(in, jwt_creds_find(&in->creds, tok->kid, tok->kid_len)) : NULL;
    if (cred)
        return cred;
    size_t n = 0;
    const sl_json_t *claim = jwt_host->json_get(tok->payload, in->key_claim);
    const char *key = claim ? jwt_host->json_string(claim, &n) : NULL;
    return key ? usable(in, jwt_creds_find(&in->creds, key, n)) : NULL;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *check_token(const jwt_inst_t *in, const jwt_token_t *tok, const jwt_cred_t **out)
{
    const jwt_alg_t *alg = jwt_alg_find(tok->alg, tok->alg_len);
    if (!alg || !(in->allowed & alg->bit))
        return "algorithm not allowed";
    const jwt_cred_t *cred = find_credential(in, tok);
    if (!cred)
        return "unknown key";
    /* The credential's algorithm is authoritative: this is what keeps an
     * RS256 public key from ever being tried as an HS256 secret. */
    if (cred->alg != alg)
        return "algorithm does not match the key";
    jwt_key_ref_t key = {cred->secret, cred->secret_len, cred->pkey};
    if (!cred->secret && !cred->pkey) {
        const jwt_jwk_t *jwk = tok->kid ? jwt_jwks_find(&in->jwks, tok->kid, tok->kid_len) : NULL;
        if (!jwk)
            return "unknown key";
        if (!(jwk->algs & alg->bit))
            return "algorithm does not match the key";
        key.pkey = jwk->pkey;
    }
    if (!jwt_verify(alg, &key, tok->signing_input, tok->signing_input_len, tok->sig, tok->sig_len))
        return "bad signature";
    const char *why = jwt_claims_check(&in->rules, tok->payload, now_seconds());
    if (!why)
        *out = cred;
    return why;
}

static const char *authenticate(const jwt_inst_t *in, const found_t *f, const jwt_cred_t **cred)
{
    jwt_token_t tok;
    const char *why = jwt_token_parse(f->token, f->len, &tok);
    if (why)
        return why;
    why = check_token(in, &tok, cred);
    jwt_token_free(&tok);
    return why;
}

/* ---- what the upstream and later plugins see ------------------------------------ */

/* Whatever X-Consumer-* or X-Anonymous-Consumer the client sent must not
 * pass for our verdict. */
static void drop_spoofed_identity(sl_req_t *r)
{
    const char *name, *value;
    size_t nlen, vlen;
    for (int i = 0; jwt_host->req_header_at(r, i, &name, &nlen, &value, &vlen); i++)
        if ((nlen > 11 && strncasecmp(name, "x-consumer-", 11) == 0) ||
            strcasecmp(name, "x-anonymous-consumer") == 0)
            jwt_host->upstream_remove_header(r, name);
}

static void hide_query_param(const jwt_inst_t *in, sl_req_t *r)
{
    size_t plen = 0, qlen = 0;
    const char *path = jwt_host->req_path(r, &plen);
    const char *query = jwt_host->req_query(r, &qlen);
    char *target = jwt_host->req_alloc(r, plen + qlen + 2);
    if (!path || !query || !target)
        return;
    memcpy(target, path, plen);
    size_t rest = jwt_query_without(query, qlen, in->query_param, target + plen + 1);
    if (rest)
        target[plen] = '?';
    jwt_host->upstream_set_target(r, target, rest ? plen + 1 + rest : plen);
}

/* Rewrites every Cookie header into one without the token's cookie. */
static void hide_cookie(const jwt_inst_t *in, sl_req_t *r)
{
    const char *name, *value;
    size_t nlen, vlen, cap = 1;
    for (int i = 0; jwt_host->req_header_at(r, i, &name, &nlen, &value, &vlen); i++)
        if (is_cookie_header(name))
            cap += 2 * vlen + 3;
    char *out = jwt_host->req_alloc(r, cap);
    if (!out)
        return;
    size_t len = 0;
    for (int i = 0; jwt_host->req_header_at(r, i, &name, &nlen, &value, &vlen); i++) {
        if (!is_cookie_header(name))
            continue;
        char *at = out + len + (len ? 2 : 0);
        size_t w = jwt_cookie_without(value, vlen, in->cookie, at);
        if (w && len) {
            out[len] = ';';
            out[len + 1] = ' ';
        }
        if (w)
            len += (len ? 2 : 0) + w;
    }
    if (len)
        jwt_host->upstream_set_header(r, "Cookie", out, len);
    else
        jwt_host->upstream_remove_header(r, "Cookie");
}

static void hide_token(const jwt_inst_t *in, sl_req_t *r, const found_t *f)
{
    if (f->source == SRC_HEADER)
        jwt_host->upstream_remove_header(r, in->header);
    else if (f->source == SRC_QUERY)
        hide_query_param(in, r);
    else
        hide_cookie(in, r);
}

static void identify(sl_req_t *r, const jwt_consumer_t *c, const jwt_cred_t *cred)
{
    jwt_host->ctx_set(r, "consumer", c->name, strlen(c->name));
    jwt_host->upstream_set_header(r, "X-Consumer-Name", c->name, strlen(c->name));
    if (c->tenant) {
        jwt_host->ctx_set(r, "consumer.tenant", c->tenant, strlen(c->tenant));
        jwt_host->upstream_set_header(r, "X-Consumer-Tenant", c->tenant, strlen(c->tenant));
    }
    if (c->groups)
        jwt_host->ctx_set(r, "consumer.groups", c->groups, strlen(c->groups));
    /* The same marker the other auth plugins set for the anonymous consumer. */
    if (cred)
        jwt_host->ctx_set(r, "credential", cred->id, strlen(cred->id));
    else
        jwt_host->upstream_set_header(r, "X-Anonymous-Consumer", "true", 4);
}

static sl_status_t refuse(sl_req_t *r, const char *code, const char *message, const char *challenge)
{
    jwt_host->respond_error(r, 401, code, message);
    jwt_host->resp_set_header(r, "WWW-Authenticate", challenge, strlen(challenge));
    return SL_DONE;
}

static sl_status_t access_phase(void *instance, sl_req_t *r)
{
    const jwt_inst_t *in = instance;
    drop_spoofed_identity(r);
    found_t f = {0};
    if (!find_token(in, r, &f)) {
        if (in->anonymous) {
            identify(r, in->anonymous, NULL);
            return SL_OK;
        }
        return refuse(r, "missing_credentials", "no token in the request", "Bearer");
    }
    const jwt_cred_t *cred = NULL;
    const char *why = authenticate(in, &f, &cred);
    if (why && strcmp(why, JWT_NO_MEMORY) == 0)
        return SL_ERROR;
    if (why) {
        /* `why` is one of this plugin's fixed strings, never token text, so
         * it cannot break out of the quoted parameter. */
        char challenge[256];
        snprintf(challenge, sizeof challenge, "Bearer error=\"invalid_token\", error_description=\"%s\"", why);
        return refuse(r, "invalid_token", why, challenge);
    }
    if (in->hide_credentials)
        hide_token(in, r, &f);
    identify(r, cred->consumer, cred);
    return SL_OK;
}

/* ---- descriptor ------------------------------------------------------------------ */

#define TOKEN_CHARS "^[-!#$%&'*+.^_`|~0-9A-Za-z]*$"
#define ALG_NAMES                                                                                          \
    "\"HS256\", \"HS384\", \"HS512\", \"RS256\", \"RS384\", \"RS512\", \"PS256\", \"PS384\", \"PS512\", " \
    "\"ES256\", \"ES384\", \"ES512\""

static const sl_plugin_desc_t desc = {
    .abi_major = SLUICE_ABI_MAJOR,
    .abi_minor = SLUICE_ABI_MINOR,
    .name = "jwt-auth",
    .version = "1.0.0",
    .phases = SL_PHASE_ACCESS,
    .schema = "{\"fields\": {"
              "\"header\": {\"type\": \"string\", \"default\": \"Authorization\", \"pattern\": \"" TOKEN_CHARS "\"},"
              "\"query_param\": {\"type\": \"string\", \"default\": \"\", \"pattern\": \"^[^&=#?; ]*$\"},"
              "\"cookie\": {\"type\": \"string\", \"default\": \"\", \"pattern\": \"" TOKEN_CHARS "\"},"
              "\"key_claim\": {\"type\": \"string\", \"default\": \"iss\", \"min\": 1},"
              "\"algorithms\": {\"type\": \"array\", \"min\": 1, \"default\": [\"HS256\", \"RS256\", \"ES256\"],"
              " \"items\": {\"type\": \"string\", \"enum\": [" ALG_NAMES "]}},"
              "\"claims_to_verify\": {\"type\": \"array\", \"default\": [\"exp\", \"nbf\"],"
              " \"items\": {\"type\": \"string\", \"enum\": [\"exp\", \"nbf\"]}},"
              "\"clock_skew\": {\"type\": \"duration\", \"default\": \"30s\", \"max\": \"1h\"},"
              "\"issuer\": {\"type\": \"string\", \"min\": 1},"
              "\"audience\": {\"type\": \"string\", \"min\": 1},"
              "\"max_lifetime\": {\"type\": \"duration\", \"min\": \"1s\"},"
              "\"jwks_file\": {\"type\": \"string\", \"min\": 1},"
              "\"anonymous\": {\"type\": \"string\", \"min\": 1},"
              "\"hide_credentials\": {\"type\": \"boolean\", \"default\": true}}}",
    .provides = "consumer",
    .init = init,
    .configure = configure,
    .unconfigure = unconfigure,
    .access = access_phase,
};

__attribute__((visibility("default"))) const sl_plugin_desc_t *SLUICE_PLUGIN_ENTRY(void)
{
    return &desc;
}
