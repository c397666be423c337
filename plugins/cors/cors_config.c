#include "cors_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cors_config_free(cors_t *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n_origins; i++)
        free(c->origins[i]);
    free(c->origins);
    for (size_t i = 0; i < c->n_patterns; i++)
        regfree(&c->patterns[i]);
    free(c->patterns);
    free(c->methods);
    free(c->headers);
    free(c->expose);
    free(c);
}

/* The array's strings joined with ","; NULL for an absent or empty array
 * (and *oom set when allocation failed). */
static char *join(const sl_host_t *host, const sl_json_t *arr, bool *oom)
{
    size_t n = arr ? host->json_len(arr) : 0;
    if (n == 0)
        return NULL;
    size_t total = 1;
    for (size_t i = 0; i < n; i++) {
        size_t len = 0;
        host->json_string(host->json_at(arr, i), &len);
        total += len + 1;
    }
    char *out = malloc(total);
    if (!out) {
        *oom = true;
        return NULL;
    }
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len = 0;
        const char *s = host->json_string(host->json_at(arr, i), &len);
        if (i)
            out[at++] = ',';
        memcpy(out + at, s, len);
        at += len;
    }
    out[at] = '\0';
    return out;
}

static int read_origins(const sl_host_t *host, cors_t *c, const sl_json_t *arr)
{
    size_t n = arr ? host->json_len(arr) : 0;
    if (n == 0)
        return 0;
    if (!(c->origins = calloc(n, sizeof *c->origins)))
        return -1;
    for (size_t i = 0; i < n; i++) {
        const char *s = host->json_string(host->json_at(arr, i), NULL);
        if (strcmp(s, "*") == 0) {
            c->any_origin = true;
            continue;
        }
        if (!(c->origins[c->n_origins] = strdup(s)))
            return -1;
        c->n_origins++;
    }
    return 0;
}

/* Patterns must match the whole Origin: a search would let
 * "https://app.example.com.evil.net" through "https://app\.example\.com". */
static int compile_patterns(const sl_host_t *host, cors_t *c, const sl_json_t *arr, char *err,
                            size_t errlen)
{
    size_t n = arr ? host->json_len(arr) : 0;
    if (n == 0)
        return 0;
    if (!(c->patterns = calloc(n, sizeof *c->patterns))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        size_t len = 0;
        const char *p = host->json_string(host->json_at(arr, i), &len);
        char *anchored = malloc(len + 5);
        if (!anchored) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        snprintf(anchored, len + 5, "^(%s)$", p);
        int rc = regcomp(&c->patterns[i], anchored, REG_EXTENDED | REG_NOSUB | REG_ICASE);
        free(anchored);
        if (rc != 0) {
            char why[128];
            regerror(rc, &c->patterns[i], why, sizeof why);
            snprintf(err, errlen, "origin_patterns[%zu]: invalid pattern \"%s\": %s", i, p, why);
            return -1;
        }
        c->n_patterns++;
    }
    return 0;
}

cors_t *cors_config_new(const sl_host_t *host, const sl_json_t *conf, char *err, size_t errlen)
{
    cors_t *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    bool oom = false;
    c->credentials = host->json_bool(host->json_get(conf, "credentials"));
    c->preflight_continue = host->json_bool(host->json_get(conf, "preflight_continue"));
    snprintf(c->max_age, sizeof c->max_age, "%lld",
             (long long)(host->json_integer(host->json_get(conf, "max_age")) / 1000));
    c->methods = join(host, host->json_get(conf, "methods"), &oom);
    /* Absent means echo; "headers: []" allows no request header at all. */
    const sl_json_t *headers = host->json_get(conf, "headers");
    c->echo_headers = headers == NULL;
    c->headers = join(host, headers, &oom);
    c->expose = join(host, host->json_get(conf, "expose_headers"), &oom);
    if (oom || read_origins(host, c, host->json_get(conf, "origins")) != 0) {
        snprintf(err, errlen, "out of memory");
        cors_config_free(c);
        return NULL;
    }
    if (compile_patterns(host, c, host->json_get(conf, "origin_patterns"), err, errlen) != 0) {
        cors_config_free(c);
        return NULL;
    }
    return c;
}
