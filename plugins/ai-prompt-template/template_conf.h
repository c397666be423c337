/* ai-prompt-template's config, checked and turned into what a request
 * needs: the versions this route serves with their weights, and the
 * declared variables. Pure jansson, unit-tested on its own. */
#ifndef SLUICE_TEMPLATE_CONF_H
#define SLUICE_TEMPLATE_CONF_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "template_render.h"

typedef struct tpl_version {
    char *name;
    char *system;          /* NULL: no system message */
    char *user;
    json_t *defaults;      /* object, maybe empty */
    char *model;           /* the plugin's model, else the version's */
    int has_temperature;
    double temperature;
    long long max_tokens;  /* 0: not sent */
    uint32_t weight;       /* share of requests (1 when the version is fixed) */
} tpl_version_t;

typedef struct tpl_var {
    char *name;
    var_type_t type;
    int required;
} tpl_var_t;

typedef struct tpl_conf {
    char *template_name;
    tpl_version_t *served;
    size_t n_served;
    uint32_t total_weight;
    int simple;            /* output: simple */
    char *upstream_path;
    tpl_var_t *vars;
    size_t n_vars;
} tpl_conf_t;

/* From the validated config (defaults filled in by the schema). NULL with
 * "<field path>: <problem>" (or a whole-config problem) in err. */
tpl_conf_t *tpl_conf_new(const json_t *conf, char *err, size_t errlen);
void tpl_conf_free(tpl_conf_t *c);

/* The version for a roll in [0, total_weight). */
const tpl_version_t *tpl_conf_pick(const tpl_conf_t *c, uint32_t roll);

#endif
