/* See cache_key.h. */
#include "cache_key.h"

#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

int acache_key_of(const char *scope, const json_t *body, const char *const *fields, size_t nfields,
               char out[ACACHE_KEY_HEX + 1])
{
    if (!json_is_object(body))
        return -1;
    json_t *picked = json_object();
    if (!picked)
        return -1;
    for (size_t i = 0; i < nfields; i++) {
        json_t *v = json_object_get(body, fields[i]);
        if (v && json_object_set(picked, fields[i], v) != 0) {
            json_decref(picked);
            return -1;
        }
    }
    /* Sorted keys make the key independent of the order the client wrote
     * the fields in; the values themselves keep their order (arrays). */
    char *text = json_dumps(picked, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    json_decref(picked);
    if (!text)
        return -1;
    size_t slen = scope ? strlen(scope) : 0, tlen = strlen(text);
    char *input = malloc(slen + 1 + tlen);
    if (!input) {
        free(text);
        return -1;
    }
    if (slen)
        memcpy(input, scope, slen);
    input[slen] = '\n';
    memcpy(input + slen + 1, text, tlen);
    free(text);
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)input, slen + 1 + tlen, digest);
    free(input);
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < SHA256_DIGEST_LENGTH; i++) {
        out[2 * i] = hex[digest[i] >> 4];
        out[2 * i + 1] = hex[digest[i] & 15];
    }
    out[ACACHE_KEY_HEX] = '\0';
    return 0;
}

void acache_request_flags(const json_t *body, acache_request_t *out)
{
    out->stream = json_is_true(json_object_get(body, "stream"));
    const json_t *opts = json_object_get(body, "stream_options");
    out->include_usage = out->stream && json_is_true(json_object_get(opts, "include_usage"));
}
