/* The cors plugin's instance: its options, checked and prepared once in
 * configure() so the request path only compares and copies. */
#ifndef SLUICE_PLUGIN_CORS_CONFIG_H
#define SLUICE_PLUGIN_CORS_CONFIG_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>

#include "sluice/host.h"

typedef struct cors {
    char **origins;           /* exact origins ("*" is kept out: any_origin) */
    size_t n_origins;
    bool any_origin;
    regex_t *patterns;        /* whole-origin matches */
    size_t n_patterns;
    char *methods;            /* Access-Control-Allow-Methods */
    bool echo_headers;        /* allow whatever Access-Control-Request-Headers asks */
    char *headers;            /* Access-Control-Allow-Headers; NULL: none */
    char *expose;             /* Access-Control-Expose-Headers; NULL: none */
    bool credentials;
    char max_age[24];         /* seconds, as text */
    bool preflight_continue;
} cors_t;

/* NULL with a message in err on a bad option (an origin pattern that does not
 * compile names itself and regerror's reason). */
cors_t *cors_config_new(const sl_host_t *host, const sl_json_t *conf, char *err, size_t errlen);
void cors_config_free(cors_t *c);

#endif
