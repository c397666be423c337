/* Reading the validated config. The schema has already filled defaults and
 * refused wrong types, unknown keys and out-of-range numbers; what is left
 * here are the rules that tie fields together (which providers need a key or
 * a base_url) and the URLs each target will be called at. */
#include "aip_conf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aip_host.h"

const char aip_schema[] =
    "{\"fields\": {"
    "\"models\": {\"type\": \"object\", \"required\": true, \"values\": {\"type\": \"object\", \"fields\": {"
    "  \"strategy\": {\"type\": \"string\", \"enum\": [\"failover\", \"weighted\", \"lowest_latency\"],"
    "                 \"default\": \"failover\"},"
    "  \"targets\": {\"type\": \"array\", \"required\": true, \"min\": 1, \"max\": 16, \"items\": {"
    "    \"type\": \"object\", \"fields\": {"
    "      \"provider\": {\"type\": \"string\", \"required\": true, \"enum\": [\"openai\", \"openai-compatible\","
    "                     \"azure-openai\", \"anthropic\", \"gemini\", \"mock\"]},"
    "      \"model\": {\"type\": \"string\", \"required\": true, \"min\": 1, \"max\": 200},"
    "      \"api_key\": {\"type\": \"string\", \"min\": 1},"
    "      \"api_keys\": {\"type\": \"array\", \"min\": 1, \"max\": 16, \"items\": {\"type\": \"string\", \"min\": 1}},"
    "      \"base_url\": {\"type\": \"string\", \"max\": 1000, \"pattern\": \"^https?://[^/?#]+(/[^?#]*)?$\"},"
    "      \"api_version\": {\"type\": \"string\", \"min\": 1, \"max\": 64, \"pattern\": \"^[A-Za-z0-9._-]+$\"},"
    "      \"weight\": {\"type\": \"integer\", \"min\": 0, \"max\": 1000, \"default\": 1}}}}}}},"
    "\"timeouts\": {\"type\": \"object\", \"default\": {}, \"fields\": {"
    "  \"connect\": {\"type\": \"duration\", \"min\": \"1ms\", \"max\": \"10m\", \"default\": \"2s\"},"
    "  \"first_token\": {\"type\": \"duration\", \"min\": \"1ms\", \"max\": \"1h\", \"default\": \"30s\"},"
    "  \"idle\": {\"type\": \"duration\", \"min\": \"1ms\", \"max\": \"1h\", \"default\": \"60s\"}}},"
    "\"retry_after_cap\": {\"type\": \"duration\", \"min\": 0, \"max\": \"1m\", \"default\": \"2s\"},"
    "\"breaker\": {\"type\": \"object\", \"default\": {}, \"fields\": {"
    "  \"max_fails\": {\"type\": \"integer\", \"min\": 0, \"max\": 1000, \"default\": 3},"
    "  \"open_time\": {\"type\": \"duration\", \"min\": \"1ms\", \"max\": \"1h\", \"default\": \"30s\"}}},"
    "\"default_max_tokens\": {\"type\": \"integer\", \"min\": 1, \"max\": 1000000, \"default\": 1024},"
    "\"mock\": {\"type\": \"object\", \"default\": {}, \"fields\": {"
    "  \"latency\": {\"type\": \"duration\", \"min\": 0, \"max\": \"1m\", \"default\": \"0ms\"},"
    "  \"reply\": {\"type\": \"string\", \"max\": 10000, \"default\": \"\"},"
    "  \"chunk_words\": {\"type\": \"integer\", \"min\": 1, \"max\": 1000, \"default\": 1}}}"
    "}}";

#define AZURE_DEFAULT_API_VERSION "2024-06-01"

static const struct {
    const char *name, *wire, *default_base;
    aip_provider_t kind;
    bool needs_key, needs_base;
} providers[] = {
    {"openai", "openai", "https://api.openai.com", AIP_OPENAI, true, false},
    {"openai-compatible", "openai", NULL, AIP_OPENAI_COMPATIBLE, false, true},
    {"azure-openai", "openai", NULL, AIP_AZURE_OPENAI, true, true},
    {"anthropic", "anthropic", "https://api.anthropic.com", AIP_ANTHROPIC, true, false},
    {"gemini", "gemini", "https://generativelanguage.googleapis.com", AIP_GEMINI, true, false},
    {"mock", "openai", NULL, AIP_MOCK, false, false},
};

static const sl_json_t *get(const sl_json_t *o, const char *k) { return aip_host->json_get(o, k); }

static const char *str(const sl_json_t *o, const char *k) { return aip_host->json_string(get(o, k), NULL); }

static int64_t num(const sl_json_t *o, const char *k) { return aip_host->json_integer(get(o, k)); }

static char *joined(const char *first, ...)
{
    va_list ap;
    size_t n = 0;
    va_start(ap, first);
    for (const char *s = first; s; s = va_arg(ap, const char *))
        n += strlen(s);
    va_end(ap);
    char *out = malloc(n + 1);
    if (!out)
        return NULL;
    out[0] = '\0';
    va_start(ap, first);
    for (const char *s = first; s; s = va_arg(ap, const char *))
        strcat(out, s);
    va_end(ap);
    return out;
}

/* Azure deployments and Gemini models are path segments of the URL. */
static bool plain_segment(const char *s)
{
    for (; *s; s++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:-", *s))
            return false;
    return true;
}

static void target_id(aip_target_t *t)
{
    /* FNV-1a over what makes two targets the same upstream account. */
    uint64_t h = 14695981039346656037ULL;
    const char *parts[3 + AIP_MAX_KEYS] = {t->provider_name, t->chat_url ? t->chat_url : "", t->model};
    int n = 3;
    for (int i = 0; i < t->n_keys; i++)
        parts[n++] = t->keys[i];
    for (int i = 0; i < n; i++) {
        for (const char *p = parts[i];; p++) {
            h ^= (unsigned char)*p;
            h *= 1099511628211ULL;
            if (!*p)
                break;
        }
    }
    snprintf(t->id, sizeof t->id, "t%016llx", (unsigned long long)h);
    unsigned long long id = (unsigned long long)h;
    snprintf(t->key_open, sizeof t->key_open, "open:t%016llx", id);
    snprintf(t->key_fails, sizeof t->key_fails, "fails:t%016llx", id);
    snprintf(t->key_tripped, sizeof t->key_tripped, "tripped:t%016llx", id);
    snprintf(t->key_key, sizeof t->key_key, "key:t%016llx", id);
    snprintf(t->key_ttfb, sizeof t->key_ttfb, "ttfb:t%016llx", id);
    atomic_init(&t->may_have_fails, true);
}

static int build_urls(aip_target_t *t, const char *base_in, const char *api_version)
{
    char base[1024];
    snprintf(base, sizeof base, "%s", base_in ? base_in : "");
    size_t n = strlen(base);
    while (n > 0 && base[n - 1] == '/')
        base[--n] = '\0';
    switch (t->provider) {
    case AIP_OPENAI:
        t->chat_url = joined(base, "/v1/chat/completions", NULL);
        t->embed_url = joined(base, "/v1/embeddings", NULL);
        break;
    case AIP_OPENAI_COMPATIBLE: {
        /* Servers document their base either with or without the /v1. */
        const char *v1 = n >= 3 && strcmp(base + n - 3, "/v1") == 0 ? "" : "/v1";
        t->chat_url = joined(base, v1, "/chat/completions", NULL);
        t->embed_url = joined(base, v1, "/embeddings", NULL);
        break;
    }
    case AIP_AZURE_OPENAI:
        t->chat_url = joined(base, "/openai/deployments/", t->model, "/chat/completions?api-version=", api_version,
                             NULL);
        t->embed_url = joined(base, "/openai/deployments/", t->model, "/embeddings?api-version=", api_version,
                              NULL);
        break;
    case AIP_ANTHROPIC:
        t->chat_url = joined(base, "/v1/messages", NULL);
        break;
    case AIP_GEMINI:
        t->chat_url = joined(base, "/v1beta/models/", t->model, ":generateContent", NULL);
        t->stream_url = joined(base, "/v1beta/models/", t->model, ":streamGenerateContent?alt=sse", NULL);
        break;
    case AIP_MOCK:
        return 0;
    }
    if (!t->stream_url && t->chat_url)
        t->stream_url = strdup(t->chat_url);
    return t->chat_url && t->stream_url ? 0 : -1;
}

static int load_target(aip_target_t *t, const sl_json_t *tc, char *err, size_t errlen, const char *where)
{
    const char *pname = str(tc, "provider");
    size_t p = 0;
    while (p < sizeof providers / sizeof providers[0] && strcmp(providers[p].name, pname) != 0)
        p++;
    if (p == sizeof providers / sizeof providers[0]) {
        snprintf(err, errlen, "%s.provider: unknown provider \"%s\"", where, pname);
        return -1;
    }
    t->provider = providers[p].kind;
    t->provider_name = providers[p].name;
    t->wire = providers[p].wire;
    t->model = str(tc, "model");
    t->weight = (int)num(tc, "weight");
    const char *key = str(tc, "api_key");
    const sl_json_t *keys = get(tc, "api_keys");
    if (key && keys) {
        snprintf(err, errlen, "%s: set api_key or api_keys, not both", where);
        return -1;
    }
    if (key)
        t->keys[t->n_keys++] = key;
    for (size_t i = 0; keys && i < aip_host->json_len(keys); i++)
        t->keys[t->n_keys++] = aip_host->json_string(aip_host->json_at(keys, i), NULL);
    if (providers[p].needs_key && t->n_keys == 0) {
        snprintf(err, errlen, "%s: provider %s needs api_key or api_keys", where, pname);
        return -1;
    }
    const char *base = str(tc, "base_url");
    if (providers[p].needs_base && !base) {
        snprintf(err, errlen, "%s: provider %s needs base_url", where, pname);
        return -1;
    }
    if ((t->provider == AIP_AZURE_OPENAI || t->provider == AIP_GEMINI) && !plain_segment(t->model)) {
        snprintf(err, errlen, "%s.model: \"%s\" may only contain letters, digits and . _ : -", where, t->model);
        return -1;
    }
    const char *version = str(tc, "api_version");
    if (version && t->provider != AIP_AZURE_OPENAI) {
        snprintf(err, errlen, "%s.api_version: only azure-openai takes an api_version", where);
        return -1;
    }
    if (build_urls(t, base ? base : providers[p].default_base, version ? version : AZURE_DEFAULT_API_VERSION) != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    target_id(t);
    return 0;
}

/* Targets share a latency average through their id, so a target of a
 * failover model still records when a lowest_latency model has the same
 * upstream account. */
static void mark_latency_readers(aip_conf_t *c)
{
    for (int i = 0; i < c->n_models; i++) {
        if (c->models[i].strategy != AIP_LOWEST_LATENCY)
            continue;
        for (int j = 0; j < c->models[i].n_targets; j++) {
            const char *id = c->models[i].targets[j].id;
            for (int k = 0; k < c->n_models; k++)
                for (int l = 0; l < c->models[k].n_targets; l++)
                    if (strcmp(c->models[k].targets[l].id, id) == 0)
                        c->models[k].targets[l].records_latency = true;
        }
    }
}

aip_conf_t *aip_conf_new(const sl_json_t *conf, char *err, size_t errlen)
{
    aip_conf_t *c = calloc(1, sizeof *c);
    const sl_json_t *models = get(conf, "models");
    size_t n = aip_host->json_len(models);
    if (!c || n == 0) {
        snprintf(err, errlen, c ? "models: name at least one model" : "out of memory");
        free(c);
        return NULL;
    }
    c->models = calloc(n, sizeof *c->models);
    if (!c->models) {
        snprintf(err, errlen, "out of memory");
        free(c);
        return NULL;
    }
    const sl_json_t *timeouts = get(conf, "timeouts"), *breaker = get(conf, "breaker"), *mock = get(conf, "mock");
    c->connect_ms = num(timeouts, "connect");
    c->first_token_ms = num(timeouts, "first_token");
    c->idle_ms = num(timeouts, "idle");
    c->retry_after_cap_ms = num(conf, "retry_after_cap");
    c->breaker_max_fails = num(breaker, "max_fails");
    c->breaker_open_ms = num(breaker, "open_time");
    c->default_max_tokens = (int)num(conf, "default_max_tokens");
    c->mock_latency_ms = num(mock, "latency");
    c->mock_reply = str(mock, "reply");
    c->mock_chunk_words = (int)num(mock, "chunk_words");
    if (!c->mock_reply)
        c->mock_reply = "";
    for (size_t i = 0; i < n; i++) {
        const sl_json_t *mc;
        aip_model_t *m = &c->models[c->n_models++];
        m->alias = aip_host->json_member_at(models, i, &mc);
        const char *strategy = str(mc, "strategy");
        m->strategy = !strategy || strcmp(strategy, "failover") == 0 ? AIP_FAILOVER
                      : strcmp(strategy, "weighted") == 0            ? AIP_WEIGHTED
                                                                     : AIP_LOWEST_LATENCY;
        const sl_json_t *targets = get(mc, "targets");
        for (size_t j = 0; j < aip_host->json_len(targets) && j < AIP_MAX_TARGETS; j++) {
            char where[300];
            snprintf(where, sizeof where, "models.%s.targets[%zu]", m->alias, j);
            if (load_target(&m->targets[m->n_targets++], aip_host->json_at(targets, j), err, errlen, where) != 0) {
                aip_conf_free(c);
                return NULL;
            }
        }
    }
    mark_latency_readers(c);
    return c;
}

void aip_conf_free(aip_conf_t *c)
{
    if (!c)
        return;
    for (int i = 0; i < c->n_models; i++) {
        for (int j = 0; j < c->models[i].n_targets; j++) {
            aip_target_t *t = &c->models[i].targets[j];
            free(t->chat_url);
            free(t->stream_url);
            free(t->embed_url);
        }
    }
    free(c->models);
    free(c);
}

const aip_model_t *aip_conf_model(const aip_conf_t *c, const char *alias)
{
    for (int i = 0; i < c->n_models; i++)
        if (strcmp(c->models[i].alias, alias) == 0)
            return &c->models[i];
    return NULL;
}
