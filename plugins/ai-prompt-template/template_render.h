/* Filling a prompt template: "{{name}}" placeholders replaced with the
 * values of variables. Pure jansson, unit-tested on its own. */
#ifndef SLUICE_TEMPLATE_RENDER_H
#define SLUICE_TEMPLATE_RENDER_H

#include <stddef.h>

#include <jansson.h>

/* Longest variable name a placeholder may hold. */
#define TEMPLATE_NAME_MAX 64

typedef enum var_type {
    VAR_ANY = 0,   /* undeclared: any value a placeholder can show */
    VAR_STRING,
    VAR_NUMBER,    /* integer or not */
    VAR_INTEGER,
    VAR_BOOLEAN,
    VAR_ARRAY,     /* of strings, numbers and booleans */
} var_type_t;

/* "string" -> VAR_STRING ...; VAR_ANY for anything else. */
var_type_t var_type_from_name(const char *name);

/* Does v have type t? Every type also requires a value a placeholder can
 * show: a string, number or boolean, or an array of those. */
int var_value_fits(const json_t *v, var_type_t t);

/* What a client is told a value must be ("an array", "a string, number,
 * boolean or array of those"). */
const char *var_type_expectation(var_type_t t);

typedef enum render_status {
    RENDER_OK = 0,
    RENDER_MISSING,   /* a placeholder's variable has no value and no default */
    RENDER_INVALID,   /* its value is one a placeholder cannot show */
    RENDER_NO_MEMORY,
} render_status_t;

/* `tpl` with each placeholder replaced by the text of its variable: the
 * value in `given` unless absent or null, else the one in `defaults`.
 * Strings as they are, numbers as JSON writes them (reals in the fewest
 * digits that read back exactly), booleans as true/false, arrays as their
 * items' texts joined with ", ". Values are inserted literally: a "{{x}}"
 * inside a value stays as it is. A placeholder is "{{", optional spaces, a
 * name ([A-Za-z_][A-Za-z0-9_]*, at most TEMPLATE_NAME_MAX characters),
 * optional spaces, "}}"; any other "{{" is ordinary text.
 *
 * RENDER_OK with *out (NUL-terminated, free() it) and *out_len; otherwise
 * *out is NULL and, for MISSING and INVALID, `name` holds the variable. */
render_status_t template_render(const char *tpl, const json_t *given, const json_t *defaults, char **out,
                                size_t *out_len, char name[TEMPLATE_NAME_MAX + 1]);

#endif
