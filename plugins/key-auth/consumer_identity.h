/* The consumers an auth plugin can authenticate, read once from the
 * top-level `consumers:` list in configure(), and what an authenticated
 * request carries for later plugins and the upstream. Shared by key-auth
 * and basic-auth so both put the same identity on a request. */
#ifndef SLUICE_CONSUMER_IDENTITY_H
#define SLUICE_CONSUMER_IDENTITY_H

#include <stddef.h>

#include "sluice/host.h"

typedef struct consumer {
    char *name;
    char *tenant;    /* NULL when the consumer has none */
    char *groups;    /* "admin,beta"; NULL when it has none */
} consumer_t;

typedef struct consumer_table {
    consumer_t *items;
    size_t n;
    const sl_json_t *src;   /* the config's consumers: valid only during configure() */
} consumer_table_t;

/* Reads name, tenant and groups of every consumer. 0, or -1 with a message
 * in err (then the table is empty and needs no free). Call in configure(). */
int consumer_table_load(consumer_table_t *t, const sl_host_t *host, char *err, size_t errlen);
void consumer_table_free(consumer_table_t *t);

/* The consumer with this name, or NULL. */
const consumer_t *consumer_find(const consumer_table_t *t, const char *name);

/* Calls fn for every credential object consumers list under `kind` (e.g.
 * "key-auth"), with `where` naming it ("consumers[1].credentials.key-auth[0]").
 * Stops at the first fn that fails. 0, or -1 with a message in err. Only
 * during configure(). */
typedef int (*credential_fn)(void *ctx, size_t consumer, const sl_json_t *cred, const char *where,
                             char *err, size_t errlen);
int consumer_each_credential(const consumer_table_t *t, const sl_host_t *host, const char *kind,
                             credential_fn fn, void *ctx, char *err, size_t errlen);

/* Does obj hold members other than those named (NULL-terminated)? The SDK
 * cannot list an object's keys, so this counts the known ones. */
int has_other_fields(const sl_host_t *host, const sl_json_t *obj, const char *const *names);

/* A copy of the string member `key`, or NULL when absent or not a string. */
char *json_strdup(const sl_host_t *host, const sl_json_t *obj, const char *key, size_t *len);

/* Removes the client's X-Consumer-* and X-Anonymous-Consumer headers from
 * what goes upstream: only the gateway may say who the consumer is. */
void consumer_strip_spoofed(const sl_host_t *host, sl_req_t *r);

/* Puts the identity on the request: ctx "consumer", "consumer.tenant",
 * "consumer.groups", "credential" (unless credential is NULL, for the
 * anonymous consumer), and X-Consumer-Name / X-Consumer-Tenant (plus
 * X-Anonymous-Consumer: true when anonymous) for the upstream. */
void consumer_attach(const sl_host_t *host, sl_req_t *r, const consumer_t *c, const char *credential,
                     size_t credential_len);

#endif
