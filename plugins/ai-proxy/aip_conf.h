/* The ai-proxy instance: its validated config turned into structs once, at
 * configure time. Read-only afterwards, so every worker shares it. */
#ifndef AIP_CONF_H
#define AIP_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdint.h>

#include "sluice/plugin.h"

#define AIP_MAX_TARGETS 16
#define AIP_MAX_KEYS 16

typedef enum {
    AIP_OPENAI, AIP_OPENAI_COMPATIBLE, AIP_AZURE_OPENAI, AIP_ANTHROPIC, AIP_GEMINI, AIP_MOCK,
} aip_provider_t;

typedef enum { AIP_FAILOVER, AIP_WEIGHTED, AIP_LOWEST_LATENCY } aip_strategy_t;

typedef struct aip_target {
    aip_provider_t provider;
    const char *provider_name;   /* as configured: what X-Sluice-Provider says */
    const char *wire;            /* the translation library's name: openai, anthropic, gemini */
    const char *model;           /* the provider's model (Azure: the deployment) */
    const char *keys[AIP_MAX_KEYS];
    int n_keys;                  /* 0: no key is sent */
    int weight;
    char *chat_url;              /* NULL for mock */
    char *stream_url;            /* Gemini streams elsewhere; the same as chat_url for the others */
    char *embed_url;             /* NULL: the provider has no embeddings endpoint here */
    char id[20];                 /* "t" + 16 hex: its name in the shared dictionary */
    /* Its keys in the shared dictionary ("<kind>:<id>", aip_health.h),
     * written once here rather than on every request. */
    char key_open[32], key_fails[32], key_tripped[32], key_key[32], key_ttfb[32];
    /* Whether a lowest_latency model of this config reads this target's
     * latency average (its own or another's with the same id): only then is
     * it worth a dictionary read and write per success. */
    bool records_latency;
    /* Whether the dictionary may hold a failure count to clear on success:
     * set by every failure (any worker), so most successes skip two
     * dictionary deletes. Starts true: an earlier config's counts may be
     * there. Only aip_health.c touches it. */
    atomic_bool may_have_fails;
} aip_target_t;

typedef struct aip_model {
    const char *alias;
    aip_strategy_t strategy;
    aip_target_t targets[AIP_MAX_TARGETS];
    int n_targets;
} aip_model_t;

typedef struct aip_conf {
    aip_model_t *models;
    int n_models;
    int64_t connect_ms, first_token_ms, idle_ms;
    int64_t retry_after_cap_ms;
    int64_t breaker_max_fails, breaker_open_ms;
    int default_max_tokens;
    int64_t mock_latency_ms;
    const char *mock_reply;      /* "" = the default reply */
    int mock_chunk_words;
} aip_conf_t;

extern const char aip_schema[];

/* NULL and a message in err when the config cannot work (a provider without
 * its key or base_url, say); conf must outlive the result. */
aip_conf_t *aip_conf_new(const sl_json_t *conf, char *err, size_t errlen);
void aip_conf_free(aip_conf_t *c);
const aip_model_t *aip_conf_model(const aip_conf_t *c, const char *alias);

#endif
