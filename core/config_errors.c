#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_internal.h"

void sl_errors_add(sl_errors_t *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = NULL;
    int rc = vasprintf(&msg, fmt, ap);
    va_end(ap);
    if (rc < 0)
        abort();
    if (e->n == e->cap) {
        int cap = e->cap ? e->cap * 2 : 8;
        char **items = realloc(e->items, (size_t)cap * sizeof *items);
        if (!items)
            abort();
        e->items = items;
        e->cap = cap;
    }
    e->items[e->n++] = msg;
}

void sl_errors_free(sl_errors_t *e)
{
    if (!e)
        return;
    for (int i = 0; i < e->n; i++)
        free(e->items[i]);
    free(e->items);
    e->items = NULL;
    e->n = e->cap = 0;
}

void slc_err(slc_t *c, int line, const char *path, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = NULL;
    int rc = vasprintf(&msg, fmt, ap);
    va_end(ap);
    if (rc < 0)
        abort();
    if (path && path[0])
        sl_errors_add(c->errs, "%s:%d: %s: %s", c->file, line, path, msg);
    else
        sl_errors_add(c->errs, "%s:%d: %s", c->file, line, msg);
    free(msg);
}

void slc_unknown_key(slc_t *c, const ydoc_node_t *key, const char *path)
{
    if (!key->invalid)
        slc_err(c, key->line, path, "unknown key");
}

void slc_missing_key(slc_t *c, const ydoc_node_t *map, const char *map_path, const char *key)
{
    char path[SLC_PATH];
    ydoc_path_key(path, sizeof path, map_path, key);
    slc_err(c, map ? map->line : 1, path, "missing required key");
}

void slc_bad_enum(slc_t *c, const ydoc_node_t *n, const char *path, const char *expected)
{
    slc_err(c, n->line, path, "unknown value \"%s\" (expected %s)", n->str, expected);
}
