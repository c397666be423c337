#include <math.h>
#include <string.h>

#include "jwt_claims.h"
#include "jwt_host.h"

enum { ABSENT, PRESENT, INVALID };

/* A NumericDate claim: a JSON number, possibly with a fraction. */
static int numeric_claim(const sl_json_t *claims, const char *name, double *out)
{
    const sl_json_t *v = jwt_host->json_get(claims, name);
    if (!v || jwt_host->json_type(v) == SL_JSON_NULL)
        return ABSENT;
    sl_json_type_t t = jwt_host->json_type(v);
    if (t != SL_JSON_INTEGER && t != SL_JSON_REAL)
        return INVALID;
    *out = jwt_host->json_number(v);
    return isfinite(*out) ? PRESENT : INVALID;
}

static bool string_equals(const sl_json_t *v, const char *want, size_t want_len)
{
    size_t n = 0;
    const char *s = v ? jwt_host->json_string(v, &n) : NULL;
    return s && n == want_len && memcmp(s, want, n) == 0;
}

/* aud may be one string or an array of strings (RFC 7519 4.1.3). */
static bool audience_ok(const sl_json_t *aud, const char *want, size_t want_len)
{
    if (!aud)
        return false;
    if (jwt_host->json_type(aud) != SL_JSON_ARRAY)
        return string_equals(aud, want, want_len);
    for (size_t i = 0; i < jwt_host->json_len(aud); i++)
        if (string_equals(jwt_host->json_at(aud, i), want, want_len))
            return true;
    return false;
}

const char *jwt_claims_check(const jwt_claim_rules_t *rules, const sl_json_t *claims, double now)
{
    double exp = 0, nbf = 0, iat = 0;
    int has_exp = numeric_claim(claims, "exp", &exp);
    if (rules->verify_exp || rules->max_lifetime_s > 0) {
        if (has_exp == ABSENT)
            return "missing exp claim";
        if (has_exp == INVALID)
            return "invalid exp claim";
    }
    if (rules->verify_exp && now >= exp + rules->skew_s)
        return "token expired";
    if (rules->verify_nbf) {
        int has_nbf = numeric_claim(claims, "nbf", &nbf);
        if (has_nbf == INVALID)
            return "invalid nbf claim";
        if (has_nbf == PRESENT && nbf > now + rules->skew_s)
            return "token not yet valid";
    }
    if (rules->issuer && !string_equals(jwt_host->json_get(claims, "iss"), rules->issuer, rules->issuer_len))
        return "wrong issuer";
    if (rules->audience && !audience_ok(jwt_host->json_get(claims, "aud"), rules->audience, rules->audience_len))
        return "wrong audience";
    if (rules->max_lifetime_s > 0) {
        int has_iat = numeric_claim(claims, "iat", &iat);
        if (has_iat == ABSENT)
            return "missing iat claim";
        if (has_iat == INVALID)
            return "invalid iat claim";
        if (exp - iat > rules->max_lifetime_s)
            return "token lifetime exceeds max_lifetime";
    }
    return NULL;
}
