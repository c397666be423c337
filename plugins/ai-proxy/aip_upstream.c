#include "aip_upstream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "translate.h"

#define ANTHROPIC_VERSION "2023-06-01"

static void add_header(aip_upreq_t *u, int *n, const char *name, const char *value)
{
    if (*n >= 2 * AIP_MAX_HEADERS)
        return;
    u->headers[(*n)++] = name;
    u->headers[(*n)++] = value;
    u->headers[*n] = NULL;
}

static json_t *chat_body(aip_upreq_t *u, const aip_conf_t *c, const aip_target_t *t, const json_t *req, char *err,
                         size_t errlen)
{
    /* Translated streams always carry usage; only the client's wish decides
     * whether it gets the usage chunk. */
    u->client_wants_usage = json_is_true(json_object_get(json_object_get(req, "stream_options"), "include_usage"));
    switch (t->provider) {
    case AIP_ANTHROPIC:
        return ai_to_anthropic_request(req, t->model, c->default_max_tokens, err, errlen);
    case AIP_GEMINI:
        return ai_to_gemini_request(req, err, errlen);
    default:
        return ai_to_openai_request(req, t->model, &u->client_wants_usage, err, errlen);
    }
}

static json_t *embed_body(const aip_target_t *t, const json_t *req, char *err, size_t errlen)
{
    if (t->provider != AIP_MOCK && !t->embed_url) {
        snprintf(err, errlen, "provider %s has no embeddings endpoint", t->provider_name);
        return NULL;
    }
    json_t *out = json_deep_copy(req);
    if (!out) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    json_object_set_new(out, "model", json_string(t->model));
    return out;
}

static char *secret_value(const char *prefix, const char *key)
{
    size_t n = strlen(prefix) + strlen(key) + 1;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "%s%s", prefix, key);
    return s;
}

int aip_upreq_build(aip_upreq_t *u, const aip_conf_t *c, const aip_target_t *t, int key, aip_op_t op,
                    const json_t *req, const ai_chat_scan_t *scan, const char *raw, size_t raw_len, bool stream,
                    char *err, size_t errlen)
{
    memset(u, 0, sizeof *u);
    bool openai_wire = t->provider != AIP_ANTHROPIC && t->provider != AIP_GEMINI && t->provider != AIP_MOCK;
    if (op == AIP_OP_CHAT && openai_wire && scan)
        u->body = ai_openai_request_scanned(scan, t->model, &u->client_wants_usage, &u->body_len);
    else if (op == AIP_OP_CHAT && openai_wire && raw)
        u->body = ai_openai_request_text(raw, raw_len, t->model, &u->client_wants_usage, &u->body_len);
    if (!u->body) {
        if (!req)
            return AIP_UPREQ_NEEDS_JSON;
        u->json = op == AIP_OP_CHAT ? chat_body(u, c, t, req, err, errlen) : embed_body(t, req, err, errlen);
        if (!u->json)
            return -1;
        if (t->provider == AIP_MOCK)
            return 0;
        u->body = json_dumps(u->json, JSON_COMPACT);
        if (!u->body) {
            snprintf(err, errlen, "out of memory");
            aip_upreq_free(u);
            return -1;
        }
        u->body_len = strlen(u->body);
    }
    u->url = op == AIP_OP_EMBED ? t->embed_url : stream ? t->stream_url : t->chat_url;
    const char *k = t->n_keys > 0 ? t->keys[key % t->n_keys] : NULL;
    int n = 0;
    add_header(u, &n, "Content-Type", "application/json");
    add_header(u, &n, "Accept", stream ? "text/event-stream" : "application/json");
    if (k) {
        switch (t->provider) {
        case AIP_AZURE_OPENAI:
            u->secret = strdup(k);
            add_header(u, &n, "api-key", u->secret);
            break;
        case AIP_ANTHROPIC:
            u->secret = strdup(k);
            add_header(u, &n, "x-api-key", u->secret);
            break;
        case AIP_GEMINI:
            u->secret = strdup(k);
            add_header(u, &n, "x-goog-api-key", u->secret);
            break;
        default:
            u->secret = secret_value("Bearer ", k);
            add_header(u, &n, "Authorization", u->secret);
            break;
        }
        if (!u->secret) {
            snprintf(err, errlen, "out of memory");
            aip_upreq_free(u);
            return -1;
        }
    }
    if (t->provider == AIP_ANTHROPIC)
        add_header(u, &n, "anthropic-version", ANTHROPIC_VERSION);
    return 0;
}

void aip_upreq_free(aip_upreq_t *u)
{
    json_decref(u->json);
    free(u->body);
    if (u->secret) {
        OPENSSL_cleanse(u->secret, strlen(u->secret));
        free(u->secret);
    }
    memset(u, 0, sizeof *u);
}
