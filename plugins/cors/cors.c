/* cors: Cross-Origin Resource Sharing for browser clients.
 *
 * A preflight (OPTIONS with Origin and Access-Control-Request-Method) is
 * answered here with 204 in the rewrite phase, before any plugin's access
 * phase runs: browsers send preflights without credentials, so an auth
 * plugin must not see them. With preflight_continue it goes upstream like
 * any request. Every CORS response header, of preflights and of actual
 * requests alike (also of answers other plugins give, such as a 401), is
 * written in header_filter. A disallowed origin gets no CORS headers: the
 * browser then refuses the response, which is the whole enforcement. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cors_config.h"
#include "sluice/host.h"
#include "sluice/plugin.h"

static const sl_host_t *host;

static int init(const sl_host_t *h)
{
    host = h;
    return 0;
}

static void *configure(const sl_json_t *conf, char *err, size_t errlen)
{
    return cors_config_new(host, conf, err, errlen);
}

static void unconfigure(void *instance) { cors_config_free(instance); }

static bool is_preflight(sl_req_t *r)
{
    size_t mlen = 0;
    const char *method = host->req_method(r, &mlen);
    return mlen == 7 && memcmp(method, "OPTIONS", 7) == 0 && host->req_header(r, "Origin", NULL) &&
           host->req_header(r, "Access-Control-Request-Method", NULL);
}

static bool origin_allowed(const cors_t *c, const char *origin, size_t len)
{
    if (c->any_origin)
        return true;
    if (strlen(origin) != len)   /* a NUL inside would cut the comparison short */
        return false;
    for (size_t i = 0; i < c->n_origins; i++)
        if (strcasecmp(c->origins[i], origin) == 0)
            return true;
    for (size_t i = 0; i < c->n_patterns; i++)
        if (regexec(&c->patterns[i], origin, 0, NULL, 0) == 0)
            return true;
    return false;
}

static bool has_token(const char *list, size_t len, const char *token)
{
    size_t tlen = strlen(token);
    size_t i = 0;
    while (i < len) {
        while (i < len && (list[i] == ' ' || list[i] == '\t' || list[i] == ','))
            i++;
        size_t start = i;
        while (i < len && list[i] != ',')
            i++;
        size_t end = i;
        while (end > start && (list[end - 1] == ' ' || list[end - 1] == '\t'))
            end--;
        if (end - start == tlen && strncasecmp(list + start, token, tlen) == 0)
            return true;
    }
    return false;
}

/* Adds `token` to Vary unless it (or "*") is already there. */
static void vary_on(sl_req_t *r, const char *token)
{
    size_t len = 0;
    const char *vary = host->resp_header(r, "Vary", &len);
    if (vary && (has_token(vary, len, token) || has_token(vary, len, "*")))
        return;
    if (!vary || len == 0) {
        host->resp_set_header(r, "Vary", token, strlen(token));
        return;
    }
    size_t tlen = strlen(token);
    char *joined = host->req_alloc(r, len + tlen + 3);
    if (!joined)
        return;
    memcpy(joined, vary, len);
    memcpy(joined + len, ", ", 2);
    memcpy(joined + len + 2, token, tlen);
    host->resp_set_header(r, "Vary", joined, len + 2 + tlen);
}

static void set(sl_req_t *r, const char *name, const char *value)
{
    host->resp_set_header(r, name, value, strlen(value));
}

static sl_status_t rewrite(void *instance, sl_req_t *r)
{
    const cors_t *c = instance;
    if (c->preflight_continue || !is_preflight(r))
        return SL_OK;
    if (host->respond(r, 204, NULL, "", 0) != 0)
        return SL_ERROR;
    /* A 204 has no body and must not announce a length. */
    host->resp_remove_header(r, "Content-Length");
    return SL_DONE;
}

static void preflight_headers(const cors_t *c, sl_req_t *r)
{
    if (c->methods)
        set(r, "Access-Control-Allow-Methods", c->methods);
    if (c->echo_headers) {
        const char *asked = host->req_header(r, "Access-Control-Request-Headers", NULL);
        if (asked && asked[0])
            set(r, "Access-Control-Allow-Headers", asked);
        vary_on(r, "Access-Control-Request-Headers");
    } else if (c->headers) {
        set(r, "Access-Control-Allow-Headers", c->headers);
    }
    set(r, "Access-Control-Max-Age", c->max_age);
}

static sl_status_t header_filter(void *instance, sl_req_t *r)
{
    const cors_t *c = instance;
    bool answered_preflight = !c->preflight_continue && is_preflight(r);
    /* The plugin owns these: an upstream's own values would contradict it
     * (two Allow-Origin values make browsers refuse the response). */
    host->resp_remove_header(r, "Access-Control-Allow-Origin");
    host->resp_remove_header(r, "Access-Control-Allow-Credentials");
    host->resp_remove_header(r, "Access-Control-Expose-Headers");

    /* Only "*" without credentials answers every origin alike. */
    bool wildcard = c->any_origin && !c->credentials;
    if (!wildcard)
        vary_on(r, "Origin");
    size_t olen = 0;
    const char *origin = host->req_header(r, "Origin", &olen);
    if (wildcard) {
        set(r, "Access-Control-Allow-Origin", "*");
    } else if (origin && origin_allowed(c, origin, olen)) {
        host->resp_set_header(r, "Access-Control-Allow-Origin", origin, olen);
        if (c->credentials)
            set(r, "Access-Control-Allow-Credentials", "true");
    } else {
        return SL_OK;
    }
    if (answered_preflight)
        preflight_headers(c, r);
    else if (c->expose)
        set(r, "Access-Control-Expose-Headers", c->expose);
    return SL_OK;
}

#define TOKEN "{\"type\": \"string\", \"pattern\": \"^[-!#$%&'*+.^_`|~0-9A-Za-z]+$\"}"
#define TOKEN_LIST "{\"type\": \"array\", \"items\": " TOKEN

static const sl_plugin_desc_t desc = {
    .abi_major = SLUICE_ABI_MAJOR,
    .abi_minor = SLUICE_ABI_MINOR,
    .name = "cors",
    .version = "1.0.0",
    .phases = SL_PHASE_REWRITE | SL_PHASE_HEADER_FILTER,
    .schema = "{\"fields\": {"
              "\"origins\": {\"type\": \"array\", \"items\": {\"type\": \"string\","
              " \"pattern\": \"^(\\\\*|null|[A-Za-z][-+.A-Za-z0-9]*://[^/?#, ]+)$\"}},"
              "\"origin_patterns\": {\"type\": \"array\", \"items\": {\"type\": \"string\", \"min\": 1}},"
              "\"methods\": " TOKEN_LIST ", \"min\": 1,"
              " \"default\": [\"GET\", \"HEAD\", \"PUT\", \"PATCH\", \"POST\", \"DELETE\"]},"
              "\"headers\": " TOKEN_LIST "},"
              "\"expose_headers\": " TOKEN_LIST ", \"default\": []},"
              "\"credentials\": {\"type\": \"boolean\", \"default\": false},"
              "\"max_age\": {\"type\": \"duration\", \"default\": \"1h\"},"
              "\"preflight_continue\": {\"type\": \"boolean\", \"default\": false}},"
              "\"one_of_required\": [\"origins\", \"origin_patterns\"]}",
    .init = init,
    .configure = configure,
    .unconfigure = unconfigure,
    .rewrite = rewrite,
    .header_filter = header_filter,
};

__attribute__((visibility("default"))) const sl_plugin_desc_t *SLUICE_PLUGIN_ENTRY(void)
{
    return &desc;
}
