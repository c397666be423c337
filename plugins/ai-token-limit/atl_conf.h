/* The ai-token-limit config: its schema, and the instance configure() builds
 * from a validated config (defaults filled in by the gateway). */
#ifndef ATL_CONF_H
#define ATL_CONF_H

#include <stddef.h>
#include <stdint.h>

#include "sluice/plugin.h"

#define ATL_MAX_LIMITS 8
#define ATL_MAX_KEY_PARTS 3

typedef struct atl_limit {
    int64_t tokens;
    int64_t window_ms;
} atl_limit_t;

typedef enum { ATL_PART_CONSUMER, ATL_PART_TENANT, ATL_PART_ROUTE } atl_part_t;
typedef enum { ATL_POLICY_LOCAL, ATL_POLICY_REDIS } atl_policy_t;
typedef enum { ATL_ON_ERROR_ALLOW, ATL_ON_ERROR_DENY, ATL_ON_ERROR_LOCAL } atl_on_error_t;

typedef struct atl_conf {
    int n_limits;
    atl_limit_t limits[ATL_MAX_LIMITS];
    int n_parts;
    atl_part_t parts[ATL_MAX_KEY_PARTS];
    atl_policy_t policy;
    atl_on_error_t on_redis_error;
    int64_t estimate_max_tokens_default;
} atl_conf_t;

extern const char atl_conf_schema[];

/* Parses a window: "minute", "hour", a duration text ("90s", "5m", "1h",
 * "500ms", "2d") or an integer of milliseconds. 0 ok, -1 not a window. */
int atl_parse_window(const sl_json_t *v, int64_t *out_ms);

/* NULL with a message in err when the config cannot be used. Free with free(). */
atl_conf_t *atl_conf_new(const sl_json_t *conf, char *err, size_t errlen);

/* "consumer" when the key needs an auth plugin earlier in the chain. */
const char *atl_conf_requires(const atl_conf_t *c);

#endif
