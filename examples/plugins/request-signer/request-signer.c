/* request-signer: signs every request it forwards, so the upstream can tell
 * that it came through the gateway and was not altered on the way.
 *
 *   X-Signature-Timestamp: <unix seconds>
 *   X-Signature: hex(HMAC-SHA256(secret, METHOD "\n" TARGET "\n" TIMESTAMP "\n" sha256hex(BODY)))
 *
 * where TARGET is the path and query as sent upstream. A C plugin built
 * only against the SDK headers (and OpenSSL for the HMAC). */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sluice/host.h"
#include "sluice/plugin.h"

static const sl_host_t *host;

typedef struct signer {
    char *secret;
    size_t secret_len;
    char *header;
    char *timestamp_header;
} signer_t;

static int init(const sl_host_t *h)
{
    host = h;
    return 0;
}

static char *dup_field(const sl_json_t *conf, const char *key, size_t *len)
{
    size_t n = 0;
    const char *v = host->json_string(host->json_get(conf, key), &n);
    char *copy = v ? malloc(n + 1) : NULL;
    if (copy) {
        memcpy(copy, v, n);
        copy[n] = '\0';
        if (len)
            *len = n;
    }
    return copy;
}

static void *configure(const sl_json_t *conf, char *err, size_t errlen)
{
    signer_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->secret = dup_field(conf, "secret", &s->secret_len);
    s->header = dup_field(conf, "header", NULL);
    s->timestamp_header = dup_field(conf, "timestamp_header", NULL);
    if (!s->secret || !s->header || !s->timestamp_header) {
        snprintf(err, errlen, "secret, header and timestamp_header must be strings");
        free(s->secret);
        free(s->header);
        free(s->timestamp_header);
        free(s);
        return NULL;
    }
    return s;
}

static void unconfigure(void *instance)
{
    signer_t *s = instance;
    free(s->secret);
    free(s->header);
    free(s->timestamp_header);
    free(s);
}

static void to_hex(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0xf];
    }
    out[2 * n] = '\0';
}

static sl_status_t access_phase(void *instance, sl_req_t *r)
{
    signer_t *s = instance;
    size_t mlen, plen, qlen = 0, blen;
    const char *method = host->req_method(r, &mlen);
    const char *path = host->req_path(r, &plen);
    const char *query = host->req_query(r, &qlen);
    const char *body = host->req_body(r, &blen);

    unsigned char body_hash[SHA256_DIGEST_LENGTH];
    char body_hex[2 * SHA256_DIGEST_LENGTH + 1];
    SHA256((const unsigned char *)body, blen, body_hash);
    to_hex(body_hash, sizeof body_hash, body_hex);

    char ts[24];
    snprintf(ts, sizeof ts, "%lld", (long long)time(NULL));

    size_t cap = mlen + plen + qlen + strlen(ts) + sizeof body_hex + 8;
    char *msg = host->req_alloc(r, cap);
    if (!msg)
        return SL_ERROR;
    int n = snprintf(msg, cap, "%s\n%s%s%s\n%s\n%s", method, path, query ? "?" : "",
                     query ? query : "", ts, body_hex);

    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    HMAC(EVP_sha256(), s->secret, (int)s->secret_len, (const unsigned char *)msg, (size_t)n, mac,
         &mac_len);
    char mac_hex[2 * EVP_MAX_MD_SIZE + 1];
    to_hex(mac, mac_len, mac_hex);

    host->upstream_set_header(r, s->timestamp_header, ts, strlen(ts));
    host->upstream_set_header(r, s->header, mac_hex, strlen(mac_hex));
    return SL_OK;
}

static const sl_plugin_desc_t desc = {
    .abi_major = SLUICE_ABI_MAJOR,
    .abi_minor = SLUICE_ABI_MINOR,
    .name = "request-signer",
    .version = "1.0.0",
    .phases = SL_PHASE_ACCESS,
    .schema = "{\"fields\": {"
              "\"secret\": {\"type\": \"string\", \"required\": true, \"min\": 16},"
              "\"header\": {\"type\": \"string\", \"default\": \"X-Signature\"},"
              "\"timestamp_header\": {\"type\": \"string\", \"default\": \"X-Signature-Timestamp\"}}}",
    .init = init,
    .configure = configure,
    .unconfigure = unconfigure,
    .access = access_phase,
};

__attribute__((visibility("default"))) const sl_plugin_desc_t *SLUICE_PLUGIN_ENTRY(void)
{
    return &desc;
}
