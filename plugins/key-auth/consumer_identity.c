#include "consumer_identity.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

char *json_strdup(const sl_host_t *host, const sl_json_t *obj, const char *key, size_t *len)
{
    size_t n = 0;
    const char *v = host->json_string(host->json_get(obj, key), &n);
    if (!v)
        return NULL;
    char *copy = malloc(n + 1);
    if (!copy)
        return NULL;
    memcpy(copy, v, n);
    copy[n] = '\0';
    if (len)
        *len = n;
    return copy;
}

int has_other_fields(const sl_host_t *host, const sl_json_t *obj, const char *const *names)
{
    size_t known = 0;
    for (const char *const *n = names; *n; n++)
        known += host->json_get(obj, *n) != NULL;
    return host->json_len(obj) > known;
}

static int is_object(const sl_host_t *host, const sl_json_t *v)
{
    return v && host->json_type(v) == SL_JSON_OBJECT;
}

static int is_array(const sl_host_t *host, const sl_json_t *v)
{
    return v && host->json_type(v) == SL_JSON_ARRAY;
}

/* Groups travel comma separated in the request context, so a name with a
 * comma would read as two groups there. */
static char *load_groups(const sl_host_t *host, const sl_json_t *groups, size_t ci, char *err,
                         size_t errlen, int *failed)
{
    *failed = 0;
    if (!groups)
        return NULL;
    if (!is_array(host, groups)) {
        snprintf(err, errlen, "consumers[%zu].groups: expected a list of group names", ci);
        *failed = 1;
        return NULL;
    }
    size_t n = host->json_len(groups), total = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len = 0;
        const char *g = host->json_string(host->json_at(groups, i), &len);
        if (!g || len == 0 || memchr(g, ',', len) || strlen(g) != len) {
            snprintf(err, errlen,
                     "consumers[%zu].groups[%zu]: expected a non-empty group name without commas",
                     ci, i);
            *failed = 1;
            return NULL;
        }
        total += len + 1;
    }
    if (n == 0)
        return NULL;
    char *joined = malloc(total);
    if (!joined) {
        snprintf(err, errlen, "out of memory");
        *failed = 1;
        return NULL;
    }
    char *p = joined;
    for (size_t i = 0; i < n; i++) {
        size_t len = 0;
        const char *g = host->json_string(host->json_at(groups, i), &len);
        if (i)
            *p++ = ',';
        memcpy(p, g, len);
        p += len;
    }
    *p = '\0';
    return joined;
}

static int load_one(consumer_t *c, const sl_host_t *host, const sl_json_t *item, size_t ci, char *err,
                    size_t errlen)
{
    if (!is_object(host, item)) {
        snprintf(err, errlen, "consumers[%zu]: expected a mapping", ci);
        return -1;
    }
    c->name = json_strdup(host, item, "name", NULL);
    if (!c->name) {   /* the core refuses such a consumer before plugins see it */
        snprintf(err, errlen, "consumers[%zu].name: expected a string", ci);
        return -1;
    }
    const sl_json_t *tenant = host->json_get(item, "tenant");
    size_t tenant_len = 0;
    if (tenant && (!(c->tenant = json_strdup(host, item, "tenant", &tenant_len)) || tenant_len == 0 ||
                   strlen(c->tenant) != tenant_len)) {
        snprintf(err, errlen, "consumers[%zu].tenant: expected a non-empty string", ci);
        return -1;
    }
    int failed;
    c->groups = load_groups(host, host->json_get(item, "groups"), ci, err, errlen, &failed);
    if (failed)
        return -1;
    const sl_json_t *creds = host->json_get(item, "credentials");
    if (creds && !is_object(host, creds)) {
        snprintf(err, errlen,
                 "consumers[%zu].credentials: expected a mapping from auth plugin name to a list of credentials",
                 ci);
        return -1;
    }
    return 0;
}

int consumer_table_load(consumer_table_t *t, const sl_host_t *host, char *err, size_t errlen)
{
    memset(t, 0, sizeof *t);
    const sl_json_t *list = host->config_consumers();
    if (!list)
        return 0;
    size_t n = host->json_len(list);
    t->src = list;
    if (n == 0)
        return 0;
    if (!(t->items = calloc(n, sizeof *t->items))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    t->n = n;
    for (size_t i = 0; i < n; i++) {
        if (load_one(&t->items[i], host, host->json_at(list, i), i, err, errlen) != 0) {
            consumer_table_free(t);
            return -1;
        }
    }
    return 0;
}

void consumer_table_free(consumer_table_t *t)
{
    for (size_t i = 0; i < t->n; i++) {
        free(t->items[i].name);
        free(t->items[i].tenant);
        free(t->items[i].groups);
    }
    free(t->items);
    memset(t, 0, sizeof *t);
}

const consumer_t *consumer_find(const consumer_table_t *t, const char *name)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->items[i].name, name) == 0)
            return &t->items[i];
    return NULL;
}

int consumer_each_credential(const consumer_table_t *t, const sl_host_t *host, const char *kind,
                             credential_fn fn, void *ctx, char *err, size_t errlen)
{
    for (size_t ci = 0; ci < t->n; ci++) {
        const sl_json_t *creds = host->json_get(host->json_at(t->src, ci), "credentials");
        const sl_json_t *list = creds ? host->json_get(creds, kind) : NULL;
        if (!list)
            continue;
        if (!is_array(host, list)) {
            snprintf(err, errlen, "consumers[%zu].credentials.%s: expected a list", ci, kind);
            return -1;
        }
        for (size_t i = 0; i < host->json_len(list); i++) {
            char where[160];
            snprintf(where, sizeof where, "consumers[%zu].credentials.%s[%zu]", ci, kind, i);
            const sl_json_t *cred = host->json_at(list, i);
            if (!is_object(host, cred)) {
                snprintf(err, errlen, "%s: expected a mapping", where);
                return -1;
            }
            if (fn(ctx, ci, cred, where, err, errlen) != 0)
                return -1;
        }
    }
    return 0;
}

static int is_spoofable(const char *name, size_t len)
{
    static const char prefix[] = "x-consumer-";
    static const char anon[] = "x-anonymous-consumer";
    return (len >= sizeof prefix - 1 && strncasecmp(name, prefix, sizeof prefix - 1) == 0) ||
           (len == sizeof anon - 1 && strncasecmp(name, anon, len) == 0);
}

void consumer_strip_spoofed(const sl_host_t *host, sl_req_t *r)
{
    const char *name, *value;
    size_t nlen, vlen;
    for (int i = 0; host->req_header_at(r, i, &name, &nlen, &value, &vlen); i++)
        if (is_spoofable(name, nlen))
            host->upstream_remove_header(r, name);
}

void consumer_attach(const sl_host_t *host, sl_req_t *r, const consumer_t *c, const char *credential,
                     size_t credential_len)
{
    size_t name_len = strlen(c->name);
    host->ctx_set(r, "consumer", c->name, name_len);
    host->upstream_set_header(r, "X-Consumer-Name", c->name, name_len);
    if (c->tenant) {
        host->ctx_set(r, "consumer.tenant", c->tenant, strlen(c->tenant));
        host->upstream_set_header(r, "X-Consumer-Tenant", c->tenant, strlen(c->tenant));
    }
    if (c->groups)
        host->ctx_set(r, "consumer.groups", c->groups, strlen(c->groups));
    if (credential)
        host->ctx_set(r, "credential", credential, credential_len);
    else
        host->upstream_set_header(r, "X-Anonymous-Consumer", "true", 4);
}
