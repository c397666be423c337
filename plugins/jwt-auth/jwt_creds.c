#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "jwt_creds.h"
#include "jwt_host.h"
#include "jwt_keys.h"

/* The consumer and credential being read, for messages. */
typedef struct ctx {
    jwt_creds_t *set;
    size_t consumer_index;
    const char *consumer_name;
    size_t cred_index;
    bool in_cred;
    char *err;
    size_t errlen;
} ctx_t;

__attribute__((format(printf, 3, 4))) static int fail(ctx_t *c, const char *field, const char *fmt, ...)
{
    int n = snprintf(c->err, c->errlen, "consumers[%zu] (%s)", c->consumer_index, c->consumer_name);
    if (n >= 0 && (size_t)n < c->errlen && c->in_cred)
        n += snprintf(c->err + n, c->errlen - (size_t)n, ".credentials.jwt-auth[%zu]", c->cred_index);
    if (n >= 0 && (size_t)n < c->errlen && field)
        n += snprintf(c->err + n, c->errlen - (size_t)n, ".%s", field);
    if (n >= 0 && (size_t)n + 2 < c->errlen) {
        memcpy(c->err + n, ": ", 3);
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err + n + 2, c->errlen - (size_t)n - 2, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static char *dup_n(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

/* Names and tenants become upstream header values. */
static bool printable(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    return true;
}

/* An optional string member: 0 absent, 1 present, -1 error (reported). */
static int opt_string(ctx_t *c, const sl_json_t *obj, const char *name, const char **s, size_t *len)
{
    const sl_json_t *v = jwt_host->json_get(obj, name);
    *s = NULL;
    *len = 0;
    if (!v || jwt_host->json_type(v) == SL_JSON_NULL)
        return 0;
    *s = jwt_host->json_string(v, len);
    if (!*s)
        return fail(c, name, "expected a string");
    return 1;
}

static int read_groups(ctx_t *c, const sl_json_t *consumer, jwt_consumer_t *out)
{
    const sl_json_t *groups = jwt_host->json_get(consumer, "groups");
    if (!groups || jwt_host->json_type(groups) == SL_JSON_NULL)
        return 0;
    if (jwt_host->json_type(groups) != SL_JSON_ARRAY)
        return fail(c, "groups", "expected a list of strings");
    size_t total = 0, n = jwt_host->json_len(groups);
    for (size_t i = 0; i < n; i++) {
        size_t len = 0;
        const char *g = jwt_host->json_string(jwt_host->json_at(groups, i), &len);
        if (!g || len == 0 || memchr(g, ',', len) || !printable(g, len))
            return fail(c, "groups", "item %zu: expected a non-empty string without commas", i);
        total += len + 1;
    }
    if (n == 0)
        return 0;
    out->groups = malloc(total);
    if (!out->groups)
        return fail(c, "groups", "out of memory");
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len = 0;
        const char *g = jwt_host->json_string(jwt_host->json_at(groups, i), &len);
        if (i)
            out->groups[at++] = ',';
        memcpy(out->groups + at, g, len);
        at += len;
    }
    out->groups[at] = '\0';
    return 0;
}

static int read_consumer(ctx_t *c, const sl_json_t *consumer, jwt_consumer_t *out)
{
    if (jwt_host->json_type(consumer) != SL_JSON_OBJECT)
        return fail(c, NULL, "expected a mapping");
    const char *s;
    size_t len;
    if (opt_string(c, consumer, "name", &s, &len) != 1 || len == 0 || !printable(s, len))
        return fail(c, "name", "expected a non-empty string without control characters");
    out->name = dup_n(s, len);
    if (!out->name)
        return fail(c, NULL, "out of memory");
    c->consumer_name = out->name;
    int has_tenant = opt_string(c, consumer, "tenant", &s, &len);
    if (has_tenant < 0)
        return -1;
    if (has_tenant && (len == 0 || !printable(s, len)))
        return fail(c, "tenant", "expected a non-empty string without control characters");
    if (has_tenant)
        out->tenant = dup_n(s, len);
    if (has_tenant && !out->tenant)
        return fail(c, NULL, "out of memory");
    return read_groups(c, consumer, out);
}

static void credential_id(jwt_cred_t *cred)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)cred->key, cred->key_len, digest);
    char *p = cred->id + snprintf(cred->id, sizeof cred->id, "jwt-auth:");
    for (int i = 0; i < 6; i++) {
        *p++ = hex[digest[i] >> 4];
        *p++ = hex[digest[i] & 0xf];
    }
    *p = '\0';
}

static int read_key_material(ctx_t *c, const sl_json_t *entry, jwt_cred_t *cred)
{
    const char *secret, *pub;
    size_t secret_len, pub_len;
    int has_secret = opt_string(c, entry, "secret", &secret, &secret_len);
    int has_pub = opt_string(c, entry, "public_key", &pub, &pub_len);
    if (has_secret < 0 || has_pub < 0)
        return -1;
    if (cred->alg->kind == JWT_HMAC) {
        if (has_pub)
            return fail(c, "public_key", "not allowed with %s (an HMAC algorithm takes a secret)",
                        cred->alg->name);
        if (!has_secret)
            return fail(c, "secret", "missing (%s needs a shared secret)", cred->alg->name);
        if (secret_len < cred->alg->min_secret)
            return fail(c, "secret", "must be at least %zu bytes for %s", cred->alg->min_secret,
                        cred->alg->name);
        cred->secret = (unsigned char *)dup_n(secret, secret_len);
        cred->secret_len = secret_len;
        return cred->secret ? 0 : fail(c, "secret", "out of memory");
    }
    /* The heart of the HS/RS confusion defence: an asymmetric credential
     * never holds anything usable as an HMAC key. */
    if (has_secret)
        return fail(c, "secret", "not allowed with %s (it takes a public_key)", cred->alg->name);
    if (!has_pub)
        return 0;   /* the key comes from the instance's jwks_file */
    if (pub_len == 0 || memchr(pub, '\0', pub_len))
        return fail(c, "public_key", "expected a file path");
    char why[512];
    cred->pkey = jwt_pem_public_key(pub, why, sizeof why);
    if (!cred->pkey)
        return fail(c, "public_key", "%s", why);
    unsigned algs = jwt_key_algs(cred->pkey, why, sizeof why);
    if (!algs)
        return fail(c, "public_key", "\"%s\": %s", pub, why);
    if (!(algs & cred->alg->bit))
        return fail(c, "public_key", "\"%s\" is not a key for %s", pub, cred->alg->name);
    return 0;
}

static const char *const cred_fields[] = {"key", "algorithm", "secret", "public_key"};

static int read_credential(ctx_t *c, const sl_json_t *entry, const jwt_consumer_t *consumer, jwt_cred_t *cred)
{
    if (jwt_host->json_type(entry) != SL_JSON_OBJECT)
        return fail(c, NULL, "expected a mapping");
    size_t known = 0;
    for (size_t i = 0; i < sizeof cred_fields / sizeof cred_fields[0]; i++)
        known += jwt_host->json_get(entry, cred_fields[i]) != NULL;
    /* The SDK cannot list an object's keys, so the stray one goes unnamed;
     * a misspelt public_key must not quietly turn into "use the JWKS". */
    if (jwt_host->json_len(entry) > known)
        return fail(c, NULL, "unknown field (allowed: key, algorithm, secret, public_key)");
    const char *s;
    size_t len;
    if (opt_string(c, entry, "key", &s, &len) != 1 || len == 0)
        return fail(c, "key", "expected a non-empty string");
    cred->key = dup_n(s, len);
    cred->key_len = len;
    if (!cred->key)
        return fail(c, "key", "out of memory");
    if (opt_string(c, entry, "algorithm", &s, &len) != 1)
        return fail(c, "algorithm", "missing (one of %s)", jwt_alg_names());
    cred->alg = jwt_alg_find(s, len);
    if (!cred->alg)
        return fail(c, "algorithm", "unknown algorithm \"%.*s\" (one of %s)", (int)(len > 40 ? 40 : len), s,
                    jwt_alg_names());
    cred->consumer = consumer;
    credential_id(cred);
    return read_key_material(c, entry, cred);
}

static void cred_clear(jwt_cred_t *cred)
{
    free(cred->key);
    if (cred->secret)
        OPENSSL_cleanse(cred->secret, cred->secret_len);
    free(cred->secret);
    EVP_PKEY_free(cred->pkey);
    memset(cred, 0, sizeof *cred);
}

/* The jwt-auth list of one consumer, appended to set->creds. */
static int read_credentials(ctx_t *c, const sl_json_t *consumer, const jwt_consumer_t *owner)
{
    const sl_json_t *all = jwt_host->json_get(consumer, "credentials");
    if (!all || jwt_host->json_type(all) == SL_JSON_NULL)
        return 0;
    if (jwt_host->json_type(all) != SL_JSON_OBJECT)
        return fail(c, "credentials", "expected a mapping");
    const sl_json_t *list = jwt_host->json_get(all, "jwt-auth");
    if (!list || jwt_host->json_type(list) == SL_JSON_NULL)
        return 0;
    if (jwt_host->json_type(list) != SL_JSON_ARRAY)
        return fail(c, "credentials.jwt-auth", "expected a list");
    size_t n = jwt_host->json_len(list);
    jwt_creds_t *set = c->set;
    jwt_cred_t *grown = realloc(set->creds, (set->n_creds + n + 1) * sizeof *grown);
    if (!grown)
        return fail(c, NULL, "out of memory");
    set->creds = grown;
    for (size_t i = 0; i < n; i++) {
        c->in_cred = true;
        c->cred_index = i;
        jwt_cred_t *cred = &set->creds[set->n_creds];
        memset(cred, 0, sizeof *cred);
        if (read_credential(c, jwt_host->json_at(list, i), owner, cred) != 0) {
            cred_clear(cred);
            return -1;
        }
        set->n_creds++;
    }
    c->in_cred = false;
    return 0;
}

static int by_key(const void *a, const void *b)
{
    const jwt_cred_t *x = a, *y = b;
    size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
    int d = memcmp(x->key, y->key, n);
    if (d)
        return d;
    return x->key_len < y->key_len ? -1 : x->key_len > y->key_len;
}

static int check_unique(const jwt_creds_t *set, char *err, size_t errlen)
{
    for (size_t i = 1; i < set->n_creds; i++) {
        const jwt_cred_t *a = &set->creds[i - 1], *b = &set->creds[i];
        if (by_key(a, b) == 0) {
            snprintf(err, errlen, "jwt-auth credential key \"%.*s\" is used twice (consumers %s and %s)",
                     (int)(a->key_len > 80 ? 80 : a->key_len), a->key, a->consumer->name, b->consumer->name);
            return -1;
        }
    }
    return 0;
}

int jwt_creds_load(const sl_json_t *consumers, jwt_creds_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    size_t n = consumers && jwt_host->json_type(consumers) == SL_JSON_ARRAY ? jwt_host->json_len(consumers) : 0;
    if (n && !(out->consumers = calloc(n, sizeof *out->consumers))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    ctx_t c = {.set = out, .err = err, .errlen = errlen, .consumer_name = "?"};
    for (size_t i = 0; i < n; i++) {
        const sl_json_t *consumer = jwt_host->json_at(consumers, i);
        c.consumer_index = i;
        c.consumer_name = "?";
        jwt_consumer_t *owner = &out->consumers[out->n_consumers++];
        if (read_consumer(&c, consumer, owner) != 0 || read_credentials(&c, consumer, owner) != 0) {
            jwt_creds_free(out);
            return -1;
        }
    }
    if (out->n_creds > 1)
        qsort(out->creds, out->n_creds, sizeof *out->creds, by_key);
    if (check_unique(out, err, errlen) != 0) {
        jwt_creds_free(out);
        return -1;
    }
    return 0;
}

const jwt_cred_t *jwt_creds_find(const jwt_creds_t *set, const char *key, size_t key_len)
{
    jwt_cred_t probe = {.key = (char *)key, .key_len = key_len};
    if (!key || set->n_creds == 0)
        return NULL;
    return bsearch(&probe, set->creds, set->n_creds, sizeof *set->creds, by_key);
}

const jwt_consumer_t *jwt_creds_consumer(const jwt_creds_t *set, const char *name)
{
    for (size_t i = 0; i < set->n_consumers; i++)
        if (strcmp(set->consumers[i].name, name) == 0)
            return &set->consumers[i];
    return NULL;
}

void jwt_creds_free(jwt_creds_t *set)
{
    for (size_t i = 0; i < set->n_creds; i++)
        cred_clear(&set->creds[i]);
    free(set->creds);
    for (size_t i = 0; i < set->n_consumers; i++) {
        free(set->consumers[i].name);
        free(set->consumers[i].tenant);
        free(set->consumers[i].groups);
    }
    free(set->consumers);
    memset(set, 0, sizeof *set);
}
