/* The rate-limit config: its schema, and the instance configure() builds
 * from a validated config (defaults filled in by the gateway). */
#ifndef RL_CONF_H
#define RL_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rl_algo.h"
#include "sluice/plugin.h"

#define RL_MAX_LIMITS 16
#define RL_MAX_KEY_PARTS 8
#define RL_HEADER_NAME_MAX 128
#define RL_DICT_NAME_MAX 64

typedef enum { RL_PART_CONSUMER, RL_PART_CREDENTIAL, RL_PART_IP, RL_PART_ROUTE, RL_PART_GLOBAL,
               RL_PART_HEADER } rl_part_kind_t;

typedef struct rl_key_part {
    rl_part_kind_t kind;
    char header[RL_HEADER_NAME_MAX + 1];   /* RL_PART_HEADER only */
} rl_key_part_t;

typedef enum { RL_POLICY_LOCAL, RL_POLICY_REDIS } rl_policy_t;
typedef enum { RL_MODE_REJECT, RL_MODE_DELAY } rl_mode_t;
typedef enum { RL_ON_ERROR_ALLOW, RL_ON_ERROR_DENY, RL_ON_ERROR_LOCAL } rl_on_error_t;

/* A number's decimal text, formatted once in configure() so requests only
 * copy it. */
typedef struct rl_num_text {
    char s[24];
    size_t len;
} rl_num_text_t;

/* The Redis script's numeric arguments: the number of limits, then count,
 * window_ms, interval_us and burst of each. */
#define RL_SCRIPT_NUMBERS (1 + 4 * RL_MAX_LIMITS)

typedef struct rl_conf {
    rl_algorithm_t algorithm;
    int n_limits;
    rl_limit_t limits[RL_MAX_LIMITS];
    int n_parts;
    rl_key_part_t parts[RL_MAX_KEY_PARTS];
    rl_policy_t policy;
    rl_mode_t mode;
    int64_t max_delay_ms;
    rl_on_error_t on_redis_error;
    bool headers;
    char dict[RL_DICT_NAME_MAX + 1];
    rl_num_text_t count_text[RL_MAX_LIMITS];            /* RateLimit-Limit of each limit */
    rl_num_text_t script_numbers[RL_SCRIPT_NUMBERS];    /* 1 + 4 * n_limits used */
} rl_conf_t;

/* The schema as JSON text, for the plugin descriptor. */
extern const char rl_conf_schema[];

/* NULL with a message in err when the config is valid by the schema but not
 * usable (e.g. burst without token_bucket, policy redis without a top-level
 * redis: section). Free with rl_conf_free. */
rl_conf_t *rl_conf_new(const sl_json_t *conf, char *err, size_t errlen);
void rl_conf_free(rl_conf_t *c);

/* "consumer" when a key part comes from an auth plugin, else NULL. */
const char *rl_conf_requires(const rl_conf_t *c);

#endif
