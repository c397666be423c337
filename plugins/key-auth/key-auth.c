/* key-auth: authenticates a request by an API key sent in a header or a
 * query parameter, against the `key-auth` credentials of the configured
 * consumers. Keys are held only as SHA-256 digests; the presented key is
 * hashed and looked up, so no plain key stays in memory after configure()
 * and a lookup compares digests in constant time. */
#include <openssl/crypto.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consumer_identity.h"
#include "digest_index.h"
#include "query_params.h"
#include "sluice/host.h"
#include "sluice/plugin.h"

#define CREDENTIAL_PREFIX "key-auth:"
#define CREDENTIAL_ID_BYTES 6   /* 12 hex digits: stable, short, not the key */

static const sl_host_t *host;

typedef struct key_auth {
    char *header;          /* "" when keys are not read from a header */
    char *query_param;     /* "" when keys are not read from the query */
    int hide_credentials;
    consumer_table_t consumers;
    digest_index_t keys;   /* SHA-256 of each key -> consumer index */
    const consumer_t *anonymous;
} key_auth_t;

static int init(const sl_host_t *h)
{
    host = h;
    return 0;
}

static void unconfigure(void *instance)
{
    key_auth_t *ka = instance;
    free(ka->header);
    free(ka->query_param);
    consumer_table_free(&ka->consumers);
    digest_index_free(&ka->keys);
    free(ka);
}

static int add_key(void *ctx, size_t consumer, const sl_json_t *cred, const char *where, char *err,
                   size_t errlen)
{
    key_auth_t *ka = ctx;
    static const char *const fields[] = {"key", "key_sha256", NULL};
    const sl_json_t *plain = host->json_get(cred, "key");
    const sl_json_t *hashed = host->json_get(cred, "key_sha256");
    if (has_other_fields(host, cred, fields) || !plain == !hashed) {
        snprintf(err, errlen, "%s: expected exactly one of \"key\" or \"key_sha256\"", where);
        return -1;
    }
    unsigned char digest[DIGEST_LEN];
    size_t len = 0;
    if (plain) {
        const char *key = host->json_string(plain, &len);
        if (!key || len == 0) {
            snprintf(err, errlen, "%s.key: expected a non-empty string", where);
            return -1;
        }
        if (digest_of(key, len, digest) != 0) {
            snprintf(err, errlen, "%s.key: cannot compute its SHA-256", where);
            return -1;
        }
    } else {
        const char *hex = host->json_string(hashed, &len);
        if (!hex || digest_from_hex(hex, len, digest) != 0) {
            snprintf(err, errlen, "%s.key_sha256: expected 64 hex digits (the SHA-256 of the key)",
                     where);
            return -1;
        }
    }
    size_t owner = 0;
    int rc = digest_index_add(&ka->keys, digest, consumer, &owner);
    OPENSSL_cleanse(digest, sizeof digest);
    if (rc < 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (rc > 0) {
        /* One key naming two consumers would make the identity depend on
         * table order. The key itself is never echoed. */
        snprintf(err, errlen, "%s: the same key is already a credential of consumer \"%s\"", where,
                 ka->consumers.items[owner].name);
        return -1;
    }
    return 0;
}

static void *configure(const sl_json_t *conf, char *err, size_t errlen)
{
    key_auth_t *ka = calloc(1, sizeof *ka);
    if (!ka) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    ka->header = json_strdup(host, conf, "header", NULL);
    ka->query_param = json_strdup(host, conf, "query_param", NULL);
    ka->hide_credentials = host->json_bool(host->json_get(conf, "hide_credentials"));
    if (!ka->header || !ka->query_param) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (!ka->header[0] && !ka->query_param[0]) {
        snprintf(err, errlen, "header and query_param are both empty: a client could send no key");
        goto fail;
    }
    if (consumer_table_load(&ka->consumers, host, err, errlen) != 0)
        goto fail;
    const char *anonymous = host->json_string(host->json_get(conf, "anonymous"), NULL);
    if (anonymous && !(ka->anonymous = consumer_find(&ka->consumers, anonymous))) {
        snprintf(err, errlen, "anonymous: no consumer is named \"%s\"", anonymous);
        goto fail;
    }
    if (consumer_each_credential(&ka->consumers, host, "key-auth", add_key, ka, err, errlen) != 0)
        goto fail;
    if (ka->keys.n == 0 && !ka->anonymous)
        host->log(SL_LOG_LEVEL_WARN,
                  "key-auth: no consumer has a key-auth credential and no anonymous consumer is set: "
                  "every request will be refused");
    return ka;
fail:
    unconfigure(ka);
    return NULL;
}

/* Keys that passed, per worker: a client sends the same key on every
 * request, and SHA-256 of it cost a tenth of a proxied request. An entry
 * holds the key's host->hash64 tag (keyed: a client cannot forge a match
 * without knowing the process's secret), never the key. Misses and wrong
 * keys take the full digest path; a reload starts a new instance and so an
 * empty cache, so a removed key stops working at once. */
#define KEY_CACHE_SIZE 512   /* a power of two */

typedef struct key_cache_entry {
    uint64_t tag;            /* 0: empty */
    size_t owner;
    unsigned char id[CREDENTIAL_ID_BYTES];
} key_cache_entry_t;

typedef struct key_auth_worker {
    digest_hasher_t *hasher;   /* NULL: this worker hashes the slower way */
    key_cache_entry_t cache[KEY_CACHE_SIZE];
} key_auth_worker_t;

static void *worker_init(void *instance, int worker_id)
{
    key_auth_worker_t *w = calloc(1, sizeof *w);
    if (w)
        w->hasher = digest_hasher_new();
    return w;
}

static void worker_fini(void *instance, void *worker_data)
{
    key_auth_worker_t *w = worker_data;
    if (w) {
        digest_hasher_free(w->hasher);
        OPENSSL_cleanse(w->cache, sizeof w->cache);
        free(w);
    }
}

/* The consumer index of a key and the first bytes of its digest (the
 * credential id): 1 found, 0 not a key, -1 hashing failed. */
static int find_key(const key_auth_t *ka, key_auth_worker_t *w, const char *key, size_t len,
                    size_t *owner, unsigned char id[CREDENTIAL_ID_BYTES])
{
    uint64_t tag = host->hash64(key, len) | 1;   /* never 0, the empty mark */
    key_cache_entry_t *e = w ? &w->cache[tag & (KEY_CACHE_SIZE - 1)] : NULL;
    if (e && e->tag == tag) {
        *owner = e->owner;
        memcpy(id, e->id, CREDENTIAL_ID_BYTES);
        return 1;
    }
    unsigned char digest[DIGEST_LEN];
    if (digest_with(w ? w->hasher : NULL, key, len, digest) != 0)
        return -1;
    int found = digest_index_find(&ka->keys, digest, owner);
    memcpy(id, digest, CREDENTIAL_ID_BYTES);
    OPENSSL_cleanse(digest, sizeof digest);
    if (found && e) {
        e->tag = tag;
        e->owner = *owner;
        memcpy(e->id, id, CREDENTIAL_ID_BYTES);
    }
    return found;
}

static sl_status_t refuse(sl_req_t *r, const char *code, const char *message)
{
    static const char challenge[] = "Key realm=\"sluice\"";
    host->respond_error(r, 401, code, message);
    host->resp_set_header(r, "WWW-Authenticate", challenge, sizeof challenge - 1);
    return SL_DONE;
}

/* The upstream must not see the key: drop the header and rewrite the
 * target without the parameter (only when it is there, so a target an
 * earlier plugin set is kept otherwise). */
static int hide_key(const key_auth_t *ka, sl_req_t *r, const char *query, size_t qlen)
{
    if (ka->header[0])
        host->upstream_remove_header(r, ka->header);
    if (!query || !ka->query_param[0])
        return 0;
    size_t plen = 0;
    const char *path = host->req_path(r, &plen);
    char *target = host->req_alloc(r, plen + 1 + qlen + 1);
    if (!path || !target)
        return -1;
    memcpy(target, path, plen);
    int removed = 0;
    size_t rest = query_param_remove(query, qlen, ka->query_param, target + plen + 1, &removed);
    if (!removed)
        return 0;
    target[plen] = '?';
    return host->upstream_set_target(r, target, rest ? plen + 1 + rest : plen);
}

static sl_status_t access_phase(void *instance, sl_req_t *r)
{
    key_auth_t *ka = instance;
    size_t key_len = 0, qlen = 0;
    const char *key = ka->header[0] ? host->req_header(r, ka->header, &key_len) : NULL;
    const char *query = ka->query_param[0] ? host->req_query(r, &qlen) : NULL;
    if (key && key_len == 0)
        key = NULL;
    if (!key && query) {
        char *buf = host->req_alloc(r, qlen + 1);
        if (!buf)
            return SL_ERROR;
        param_result_t found = query_param_get(query, qlen, ka->query_param, buf, &key_len);
        if (found == PARAM_MALFORMED)
            return refuse(r, "invalid_credentials", "invalid API key");
        if (found == PARAM_FOUND && key_len > 0)
            key = buf;
    }

    const consumer_t *consumer;
    char credential[sizeof CREDENTIAL_PREFIX + 2 * CREDENTIAL_ID_BYTES];
    if (!key) {
        if (!ka->anonymous)
            return refuse(r, "missing_credentials", "no API key in the request");
        consumer = ka->anonymous;
    } else {
        unsigned char id[CREDENTIAL_ID_BYTES];
        size_t owner;
        int found = find_key(ka, host->worker_data(r, ka), key, key_len, &owner, id);
        if (found < 0)
            return SL_ERROR;
        if (!found)
            return refuse(r, "invalid_credentials", "invalid API key");
        consumer = &ka->consumers.items[owner];
        memcpy(credential, CREDENTIAL_PREFIX, sizeof CREDENTIAL_PREFIX - 1);
        digest_to_hex(id, CREDENTIAL_ID_BYTES, credential + sizeof CREDENTIAL_PREFIX - 1);
    }
    consumer_strip_spoofed(host, r);
    consumer_attach(host, r, consumer, key ? credential : NULL, key ? sizeof credential - 1 : 0);
    if (ka->hide_credentials && hide_key(ka, r, query, qlen) != 0)
        return SL_ERROR;   /* never forward a key we were told to hide */
    return SL_OK;
}

static const sl_plugin_desc_t desc = {
    .abi_major = SLUICE_ABI_MAJOR,
    .abi_minor = SLUICE_ABI_MINOR,
    .name = "key-auth",
    .version = "1.0.0",
    .phases = SL_PHASE_ACCESS,
    .schema = "{\"fields\": {"
              "\"header\": {\"type\": \"string\", \"default\": \"X-Api-Key\","
              " \"pattern\": \"^[A-Za-z0-9!#$%&'*+.^_`|~-]*$\"},"
              "\"query_param\": {\"type\": \"string\", \"default\": \"api_key\","
              " \"pattern\": \"^[^&=]*$\"},"
              "\"hide_credentials\": {\"type\": \"boolean\", \"default\": true},"
              "\"anonymous\": {\"type\": \"string\", \"min\": 1}}}",
    .provides = "consumer",
    .init = init,
    .configure = configure,
    .unconfigure = unconfigure,
    .worker_init = worker_init,
    .worker_fini = worker_fini,
    .access = access_phase,
};

__attribute__((visibility("default"))) const sl_plugin_desc_t *SLUICE_PLUGIN_ENTRY(void)
{
    return &desc;
}
