#include <stdlib.h>
#include <string.h>

#include "jwt_b64url.h"
#include "jwt_host.h"
#include "jwt_token.h"

/* Decodes one base64url segment and parses it as a JSON object. */
static const char *json_segment(const char *seg, size_t n, sl_json_t **out, const char *not_object)
{
    unsigned char *raw = malloc(JWT_B64URL_DECODED_MAX(n));
    size_t raw_len = 0;
    if (!raw)
        return JWT_NO_MEMORY;
    if (jwt_b64url_decode(seg, n, raw, &raw_len) != 0) {
        free(raw);
        return "malformed token: bad base64url";
    }
    sl_json_t *v = jwt_host->json_parse((const char *)raw, raw_len, NULL, 0);
    free(raw);
    if (!v)
        return "malformed token: bad JSON";
    if (jwt_host->json_type(v) != SL_JSON_OBJECT) {
        jwt_host->json_free(v);
        return not_object;
    }
    *out = v;
    return NULL;
}

/* A string member, NULL when absent; -1 when present but not a string. */
static int string_member(const sl_json_t *obj, const char *name, const char **s, size_t *len)
{
    const sl_json_t *v = jwt_host->json_get(obj, name);
    *s = NULL;
    *len = 0;
    if (!v)
        return 0;
    *s = jwt_host->json_string(v, len);
    return *s ? 0 : -1;
}

static const char *parse_parts(const char *text, size_t len, jwt_token_t *tok)
{
    const char *dot1 = memchr(text, '.', len);
    const char *dot2 = dot1 ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - text)) : NULL;
    if (!dot2 || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - text)))
        return "malformed token: not three dot-separated parts";
    const char *why = json_segment(text, (size_t)(dot1 - text), &tok->header,
                                   "malformed token: header is not a JSON object");
    if (why)
        return why;
    why = json_segment(dot1 + 1, (size_t)(dot2 - dot1 - 1), &tok->payload,
                       "malformed token: payload is not a JSON object");
    if (why)
        return why;
    size_t sig_chars = len - (size_t)(dot2 + 1 - text);
    tok->sig = malloc(JWT_B64URL_DECODED_MAX(sig_chars));
    if (!tok->sig)
        return JWT_NO_MEMORY;
    if (jwt_b64url_decode(dot2 + 1, sig_chars, tok->sig, &tok->sig_len) != 0)
        return "malformed token: bad base64url";
    tok->signing_input = text;
    tok->signing_input_len = (size_t)(dot2 - text);

    if (string_member(tok->header, "alg", &tok->alg, &tok->alg_len) != 0 || !tok->alg)
        return "malformed token: no alg in header";
    if (string_member(tok->header, "kid", &tok->kid, &tok->kid_len) != 0)
        return "malformed token: kid is not a string";
    /* RFC 7515 4.1.11: extensions named in crit must be understood; this
     * plugin understands none, so such a token cannot be verified safely. */
    if (jwt_host->json_get(tok->header, "crit"))
        return "malformed token: unsupported crit header";
    return NULL;
}

const char *jwt_token_parse(const char *text, size_t len, jwt_token_t *tok)
{
    memset(tok, 0, sizeof *tok);
    const char *why = parse_parts(text, len, tok);
    if (why)
        jwt_token_free(tok);
    return why;
}

void jwt_token_free(jwt_token_t *tok)
{
    if (tok->header)
        jwt_host->json_free(tok->header);
    if (tok->payload)
        jwt_host->json_free(tok->payload);
    free(tok->sig);
    memset(tok, 0, sizeof *tok);
}
