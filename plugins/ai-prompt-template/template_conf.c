#include "template_conf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *dup_or_null(const json_t *v)
{
    const char *s = json_string_value(v);
    return s ? strdup(s) : NULL;
}

void tpl_conf_free(tpl_conf_t *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n_served; i++) {
        tpl_version_t *v = &c->served[i];
        free(v->name);
        free(v->system);
        free(v->user);
        free(v->model);
        json_decref(v->defaults);
    }
    free(c->served);
    for (size_t i = 0; i < c->n_vars; i++)
        free(c->vars[i].name);
    free(c->vars);
    free(c->template_name);
    free(c->upstream_path);
    free(c);
}

static int oom(char *err, size_t errlen)
{
    snprintf(err, errlen, "out of memory");
    return -1;
}

static int read_vars(tpl_conf_t *c, const json_t *vars, char *err, size_t errlen)
{
    size_t n = json_object_size(vars);
    if (n == 0)
        return 0;
    c->vars = calloc(n, sizeof *c->vars);
    if (!c->vars)
        return oom(err, errlen);
    const char *name;
    json_t *decl;
    json_object_foreach((json_t *)vars, name, decl) {
        tpl_var_t *v = &c->vars[c->n_vars];
        if (!(v->name = strdup(name)))
            return oom(err, errlen);
        c->n_vars++;
        v->type = var_type_from_name(json_string_value(json_object_get(decl, "type")));
        v->required = json_is_true(json_object_get(decl, "required"));
    }
    return 0;
}

static const tpl_var_t *find_var(const tpl_conf_t *c, const char *name)
{
    for (size_t i = 0; i < c->n_vars; i++)
        if (strcmp(c->vars[i].name, name) == 0)
            return &c->vars[i];
    return NULL;
}

/* A default must be a value a placeholder can show, of the declared type. */
static int check_defaults(const tpl_conf_t *c, const char *vname, const json_t *defaults, char *err,
                          size_t errlen)
{
    const char *name;
    json_t *value;
    json_object_foreach((json_t *)defaults, name, value) {
        if (json_is_null(value))
            continue;
        const tpl_var_t *decl = find_var(c, name);
        var_type_t t = decl ? decl->type : VAR_ANY;
        if (!var_value_fits(value, t)) {
            snprintf(err, errlen, "templates.%s.versions.%s.defaults.%s: must be %s%s", c->template_name,
                     vname, name, var_type_expectation(t), t != VAR_ANY ? " (declared in variables)" : "");
            return -1;
        }
    }
    return 0;
}

static int add_served(tpl_conf_t *c, const char *vname, const json_t *version, const json_t *model,
                      uint32_t weight, char *err, size_t errlen)
{
    tpl_version_t *v = &c->served[c->n_served];
    const json_t *defaults = json_object_get(version, "defaults");
    if (check_defaults(c, vname, defaults, err, errlen) != 0)
        return -1;
    if (!model)
        model = json_object_get(version, "model");
    if (!json_is_string(model)) {
        snprintf(err, errlen,
                 "templates.%s.versions.%s: no model: set model in the version or in the plugin's config",
                 c->template_name, vname);
        return -1;
    }
    v->name = strdup(vname);
    v->system = dup_or_null(json_object_get(version, "system"));
    v->user = dup_or_null(json_object_get(version, "user"));
    v->model = dup_or_null(model);
    v->defaults = defaults ? json_deep_copy(defaults) : json_object();
    c->n_served++;
    if (!v->name || !v->user || !v->model || !v->defaults ||
        (json_object_get(version, "system") && !v->system))
        return oom(err, errlen);
    const json_t *t = json_object_get(version, "temperature");
    v->has_temperature = t != NULL;
    v->temperature = json_number_value(t);
    v->max_tokens = json_integer_value(json_object_get(version, "max_tokens"));
    v->weight = weight;
    c->total_weight += weight;
    return 0;
}

static int read_split(tpl_conf_t *c, const json_t *versions, const json_t *split, const json_t *model,
                      char *err, size_t errlen)
{
    size_t i;
    const json_t *item;
    json_array_foreach(split, i, item) {
        const char *vname = json_string_value(json_object_get(item, "version"));
        const json_t *version = json_object_get(versions, vname);
        if (!version) {
            snprintf(err, errlen, "split[%zu].version: template \"%s\" has no version \"%s\"", i,
                     c->template_name, vname);
            return -1;
        }
        for (size_t k = 0; k < c->n_served; k++) {
            if (strcmp(c->served[k].name, vname) == 0) {
                snprintf(err, errlen, "split[%zu].version: version \"%s\" is listed twice", i, vname);
                return -1;
            }
        }
        uint32_t weight = (uint32_t)json_integer_value(json_object_get(item, "weight"));
        if (add_served(c, vname, version, model, weight, err, errlen) != 0)
            return -1;
    }
    if (c->total_weight == 0) {
        snprintf(err, errlen, "split: the weights add up to 0");
        return -1;
    }
    return 0;
}

static int read_served(tpl_conf_t *c, const json_t *conf, char *err, size_t errlen)
{
    const json_t *versions = json_object_get(
        json_object_get(json_object_get(conf, "templates"), c->template_name), "versions");
    const json_t *split = json_object_get(conf, "split"), *model = json_object_get(conf, "model");
    const char *fixed = json_string_value(json_object_get(conf, "version"));
    if (fixed && split) {
        snprintf(err, errlen, "set either version or split, not both");
        return -1;
    }
    size_t n = split ? json_array_size(split) : 1;
    c->served = calloc(n, sizeof *c->served);
    if (!c->served)
        return oom(err, errlen);
    if (split)
        return read_split(c, versions, split, model, err, errlen);
    if (!fixed) {
        if (json_object_size(versions) != 1) {
            snprintf(err, errlen, "version: template \"%s\" has %zu versions: set version or split",
                     c->template_name, json_object_size(versions));
            return -1;
        }
        fixed = json_object_iter_key(json_object_iter((json_t *)versions));
    }
    const json_t *version = json_object_get(versions, fixed);
    if (!version) {
        snprintf(err, errlen, "version: template \"%s\" has no version \"%s\"", c->template_name, fixed);
        return -1;
    }
    return add_served(c, fixed, version, model, 1, err, errlen);
}

tpl_conf_t *tpl_conf_new(const json_t *conf, char *err, size_t errlen)
{
    tpl_conf_t *c = calloc(1, sizeof *c);
    if (!c) {
        oom(err, errlen);
        return NULL;
    }
    const char *name = json_string_value(json_object_get(conf, "template"));
    c->template_name = strdup(name ? name : "");
    c->upstream_path = dup_or_null(json_object_get(conf, "upstream_path"));
    const char *output = json_string_value(json_object_get(conf, "output"));
    c->simple = !output || strcmp(output, "simple") == 0;
    if (!c->template_name || !c->upstream_path) {
        oom(err, errlen);
        tpl_conf_free(c);
        return NULL;
    }
    if (!json_object_get(json_object_get(conf, "templates"), c->template_name)) {
        snprintf(err, errlen, "template: no template \"%s\" in templates", c->template_name);
        tpl_conf_free(c);
        return NULL;
    }
    if (read_vars(c, json_object_get(conf, "variables"), err, errlen) != 0 ||
        read_served(c, conf, err, errlen) != 0) {
        tpl_conf_free(c);
        return NULL;
    }
    return c;
}

const tpl_version_t *tpl_conf_pick(const tpl_conf_t *c, uint32_t roll)
{
    for (size_t i = 0; i < c->n_served; i++) {
        if (roll < c->served[i].weight)
            return &c->served[i];
        roll -= c->served[i].weight;
    }
    return &c->served[c->n_served - 1];
}
