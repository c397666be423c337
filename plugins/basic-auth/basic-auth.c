/* basic-auth: authenticates a request by `Authorization: Basic ...` against
 * the `basic-auth` credentials (username and password) of the configured
 * consumers. Usernames are looked up by their SHA-256 digest and passwords
 * are held and compared only as SHA-256 digests, in constant time. */
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basic_header.h"
#include "consumer_identity.h"
#include "digest_index.h"
#include "sluice/host.h"
#include "sluice/plugin.h"

#define CREDENTIAL_PREFIX "basic-auth:"

static const sl_host_t *host;

typedef struct basic_cred {
    size_t consumer;
    char *username;
    unsigned char password[DIGEST_LEN];   /* SHA-256 of the password */
} basic_cred_t;

typedef struct basic_auth {
    char *challenge;         /* the WWW-Authenticate value */
    int hide_credentials;
    consumer_table_t consumers;
    digest_index_t users;    /* SHA-256 of a username -> index in creds */
    basic_cred_t *creds;
    size_t n_creds, cap_creds;
    const consumer_t *anonymous;
} basic_auth_t;

static int init(const sl_host_t *h)
{
    host = h;
    return 0;
}

static void unconfigure(void *instance)
{
    basic_auth_t *ba = instance;
    for (size_t i = 0; i < ba->n_creds; i++)
        free(ba->creds[i].username);
    if (ba->creds)
        OPENSSL_cleanse(ba->creds, ba->cap_creds * sizeof *ba->creds);
    free(ba->creds);
    free(ba->challenge);
    consumer_table_free(&ba->consumers);
    digest_index_free(&ba->users);
    free(ba);
}

static int password_digest(const sl_json_t *cred, const char *where, unsigned char out[DIGEST_LEN],
                           char *err, size_t errlen)
{
    const sl_json_t *plain = host->json_get(cred, "password");
    const sl_json_t *hashed = host->json_get(cred, "password_sha256");
    if (!plain == !hashed) {
        snprintf(err, errlen, "%s: expected exactly one of \"password\" or \"password_sha256\"", where);
        return -1;
    }
    size_t len = 0;
    if (plain) {
        const char *password = host->json_string(plain, &len);
        if (!password || len == 0) {
            snprintf(err, errlen, "%s.password: expected a non-empty string", where);
            return -1;
        }
        if (digest_of(password, len, out) != 0) {
            snprintf(err, errlen, "%s.password: cannot compute its SHA-256", where);
            return -1;
        }
        return 0;
    }
    const char *hex = host->json_string(hashed, &len);
    if (!hex || digest_from_hex(hex, len, out) != 0) {
        snprintf(err, errlen, "%s.password_sha256: expected 64 hex digits (the SHA-256 of the password)",
                 where);
        return -1;
    }
    return 0;
}

static int add_user(void *ctx, size_t consumer, const sl_json_t *cred, const char *where, char *err,
                    size_t errlen)
{
    basic_auth_t *ba = ctx;
    static const char *const fields[] = {"username", "password", "password_sha256", NULL};
    if (has_other_fields(host, cred, fields)) {
        snprintf(err, errlen, "%s: only \"username\" and \"password\" or \"password_sha256\" may be set",
                 where);
        return -1;
    }
    size_t ulen = 0;
    const char *user = host->json_string(host->json_get(cred, "username"), &ulen);
    /* RFC 7617: the first colon ends the user-id, so one with a colon could
     * never log in. */
    if (!user || ulen == 0 || memchr(user, ':', ulen) || strlen(user) != ulen) {
        snprintf(err, errlen, "%s.username: expected a non-empty string without \":\"", where);
        return -1;
    }
    basic_cred_t cur = {.consumer = consumer};
    if (password_digest(cred, where, cur.password, err, errlen) != 0)
        return -1;
    if (ba->n_creds == ba->cap_creds) {
        size_t cap = ba->cap_creds ? ba->cap_creds * 2 : 8;
        basic_cred_t *grown = calloc(cap, sizeof *grown);
        if (!grown)
            goto oom;
        if (ba->creds) {
            memcpy(grown, ba->creds, ba->n_creds * sizeof *grown);
            OPENSSL_cleanse(ba->creds, ba->cap_creds * sizeof *ba->creds);
        }
        free(ba->creds);
        ba->creds = grown;
        ba->cap_creds = cap;
    }
    unsigned char user_digest[DIGEST_LEN];
    if (digest_of(user, ulen, user_digest) != 0) {
        snprintf(err, errlen, "%s.username: cannot compute its SHA-256", where);
        return -1;
    }
    size_t other = 0;
    int rc = digest_index_add(&ba->users, user_digest, ba->n_creds, &other);
    if (rc < 0)
        goto oom;
    if (rc > 0) {
        snprintf(err, errlen, "%s.username: \"%s\" is already a credential of consumer \"%s\"", where,
                 user, ba->consumers.items[ba->creds[other].consumer].name);
        OPENSSL_cleanse(&cur, sizeof cur);
        return -1;
    }
    if (!(cur.username = strdup(user)))
        goto oom;
    ba->creds[ba->n_creds++] = cur;
    return 0;
oom:
    OPENSSL_cleanse(&cur, sizeof cur);
    snprintf(err, errlen, "out of memory");
    return -1;
}

static void *configure(const sl_json_t *conf, char *err, size_t errlen)
{
    basic_auth_t *ba = calloc(1, sizeof *ba);
    if (!ba) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    ba->hide_credentials = host->json_bool(host->json_get(conf, "hide_credentials"));
    const char *realm = host->json_string(host->json_get(conf, "realm"), NULL);
    int n = snprintf(NULL, 0, "Basic realm=\"%s\", charset=\"UTF-8\"", realm ? realm : "");
    if (!realm || !(ba->challenge = malloc((size_t)n + 1))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    snprintf(ba->challenge, (size_t)n + 1, "Basic realm=\"%s\", charset=\"UTF-8\"", realm);
    if (consumer_table_load(&ba->consumers, host, err, errlen) != 0)
        goto fail;
    const char *anonymous = host->json_string(host->json_get(conf, "anonymous"), NULL);
    if (anonymous && !(ba->anonymous = consumer_find(&ba->consumers, anonymous))) {
        snprintf(err, errlen, "anonymous: no consumer is named \"%s\"", anonymous);
        goto fail;
    }
    if (consumer_each_credential(&ba->consumers, host, "basic-auth", add_user, ba, err, errlen) != 0)
        goto fail;
    if (ba->n_creds == 0 && !ba->anonymous)
        host->log(SL_LOG_LEVEL_WARN,
                  "basic-auth: no consumer has a basic-auth credential and no anonymous consumer is "
                  "set: every request will be refused");
    return ba;
fail:
    unconfigure(ba);
    return NULL;
}

static sl_status_t refuse(const basic_auth_t *ba, sl_req_t *r, const char *code, const char *message)
{
    host->respond_error(r, 401, code, message);
    host->resp_set_header(r, "WWW-Authenticate", ba->challenge, strlen(ba->challenge));
    return SL_DONE;
}

/* The credential for user/password in *found, or NULL there. An unknown
 * user costs the same digest comparison as a wrong password. -1 when the
 * digests could not be computed. */
static int find_credential(const basic_auth_t *ba, digest_hasher_t *h, const basic_credentials_t *c,
                           const basic_cred_t **found)
{
    static const unsigned char nobody[DIGEST_LEN];
    unsigned char user[DIGEST_LEN], password[DIGEST_LEN];
    *found = NULL;
    if (digest_with(h, c->user, c->user_len, user) != 0 ||
        digest_with(h, c->password, c->password_len, password) != 0) {
        OPENSSL_cleanse(password, sizeof password);
        return -1;
    }
    size_t i;
    int known = digest_index_find(&ba->users, user, &i);
    const unsigned char *expected = known ? ba->creds[i].password : nobody;
    int same = CRYPTO_memcmp(expected, password, DIGEST_LEN) == 0;
    OPENSSL_cleanse(password, sizeof password);
    *found = known && same ? &ba->creds[i] : NULL;
    return 0;
}

static void *worker_init(void *instance, int worker_id)
{
    return digest_hasher_new();   /* NULL: that worker hashes the slower way */
}

static void worker_fini(void *instance, void *worker_data)
{
    digest_hasher_free(worker_data);
}

static sl_status_t access_phase(void *instance, sl_req_t *r)
{
    basic_auth_t *ba = instance;
    size_t len = 0;
    const char *value = host->req_header(r, "Authorization", &len);
    basic_credentials_t creds;
    basic_result_t found = BASIC_ABSENT;
    if (value) {
        char *buf = host->req_alloc(r, len + 1);
        if (!buf)
            return SL_ERROR;
        found = basic_header_parse(value, len, buf, &creds);
    }
    if (found == BASIC_MALFORMED)
        return refuse(ba, r, "invalid_credentials", "malformed Basic credentials");

    const consumer_t *consumer;
    const char *credential = NULL;
    size_t credential_len = 0;
    if (found == BASIC_ABSENT) {
        if (!ba->anonymous)
            return refuse(ba, r, "missing_credentials", "no Basic credentials in the request");
        consumer = ba->anonymous;
    } else {
        const basic_cred_t *cred;
        if (find_credential(ba, host->worker_data(r, ba), &creds, &cred) != 0)
            return SL_ERROR;
        if (!cred)
            return refuse(ba, r, "invalid_credentials", "invalid username or password");
        consumer = &ba->consumers.items[cred->consumer];
        size_t ulen = strlen(cred->username);
        char *id = host->req_alloc(r, sizeof CREDENTIAL_PREFIX + ulen);
        if (!id)
            return SL_ERROR;
        memcpy(id, CREDENTIAL_PREFIX, sizeof CREDENTIAL_PREFIX - 1);
        memcpy(id + sizeof CREDENTIAL_PREFIX - 1, cred->username, ulen + 1);
        credential = id;
        credential_len = sizeof CREDENTIAL_PREFIX - 1 + ulen;
    }
    consumer_strip_spoofed(host, r);
    consumer_attach(host, r, consumer, credential, credential_len);
    /* Another scheme's Authorization (a Bearer token for the upstream) is
     * not ours to hide. */
    if (ba->hide_credentials && found == BASIC_FOUND)
        host->upstream_remove_header(r, "Authorization");
    return SL_OK;
}

static const sl_plugin_desc_t desc = {
    .abi_major = SLUICE_ABI_MAJOR,
    .abi_minor = SLUICE_ABI_MINOR,
    .name = "basic-auth",
    .version = "1.0.0",
    .phases = SL_PHASE_ACCESS,
    /* The realm goes inside a quoted-string: no quote, backslash or control
     * character. */
    .schema = "{\"fields\": {"
              "\"realm\": {\"type\": \"string\", \"default\": \"sluice\", \"min\": 1,"
              " \"pattern\": \"^[^\\\"\\\\[:cntrl:]]*$\"},"
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
