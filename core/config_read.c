/* Typed readers for core config values: each reports its own error. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config_internal.h"

bool slc_map(slc_t *c, const ydoc_node_t *n, const char *path)
{
    if (n->invalid)
        return false;
    if (n->kind == YDOC_MAP || ydoc_is_null(n))
        return true;
    slc_err(c, n->line, path, "expected a mapping, got %s", ydoc_describe(n));
    return false;
}

bool slc_list(slc_t *c, const ydoc_node_t *n, const char *path)
{
    if (n->invalid)
        return false;
    if (n->kind == YDOC_SEQ || ydoc_is_null(n))
        return true;
    slc_err(c, n->line, path, "expected a list, got %s", ydoc_describe(n));
    return false;
}

bool slc_scalar(slc_t *c, const ydoc_node_t *n, const char *path, const char *what)
{
    if (n->invalid)
        return false;
    if (n->kind == YDOC_SCALAR && !ydoc_is_null(n))
        return true;
    slc_err(c, n->line, path, "expected %s, got %s", what, ydoc_describe(n));
    return false;
}

bool slc_string(slc_t *c, const ydoc_node_t *n, const char *path, char **out)
{
    if (!slc_scalar(c, n, path, "a string"))
        return false;
    if (n->len == 0) {
        slc_err(c, n->line, path, "must not be empty");
        return false;
    }
    if (strlen(n->str) != n->len) {
        slc_err(c, n->line, path, "must not contain NUL characters");
        return false;
    }
    free(*out);
    *out = slc_strdup(n->str);
    return true;
}

bool slc_bool(slc_t *c, const ydoc_node_t *n, const char *path, bool *out)
{
    if (!slc_scalar(c, n, path, "true or false"))
        return false;
    const char *s = n->str;
    if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE")) {
        *out = true;
        return true;
    }
    if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE")) {
        *out = false;
        return true;
    }
    slc_err(c, n->line, path, "expected true or false, got \"%s\"", s);
    return false;
}

bool slc_int(slc_t *c, const ydoc_node_t *n, const char *path, int min, int max, int *out)
{
    if (!slc_scalar(c, n, path, "an integer"))
        return false;
    const char *s = n->str;
    const char *digits = (*s == '-' || *s == '+') ? s + 1 : s;
    bool ok = *digits != '\0' && strspn(digits, "0123456789") == strlen(digits);
    errno = 0;
    char *end;
    long long v = ok ? strtoll(s, &end, 10) : 0;
    if (!ok) {
        slc_err(c, n->line, path, "expected an integer, got \"%s\"", s);
        return false;
    }
    if (errno == ERANGE || v < min || v > max) {
        slc_err(c, n->line, path, "must be between %d and %d, got %s", min, max, s);
        return false;
    }
    *out = (int)v;
    return true;
}

bool slc_duration(slc_t *c, const ydoc_node_t *n, const char *path, int64_t min_ms, int64_t *out)
{
    if (!slc_scalar(c, n, path, "a duration"))
        return false;
    int64_t v;
    if (sl_parse_duration_ms(n->str, &v) != 0) {
        slc_err(c, n->line, path, "invalid duration \"%s\" (expected e.g. 250ms, 5s, 1.5s, 2m, 1h)", n->str);
        return false;
    }
    if (v < min_ms) {
        slc_err(c, n->line, path, "must be at least %lldms", (long long)min_ms);
        return false;
    }
    *out = v;
    return true;
}

bool slc_size(slc_t *c, const ydoc_node_t *n, const char *path, int64_t *out)
{
    if (!slc_scalar(c, n, path, "a size"))
        return false;
    int64_t v;
    if (sl_parse_size(n->str, &v) != 0) {
        slc_err(c, n->line, path, "invalid size \"%s\" (expected e.g. 512, 16kb, 8mb, 1gb)", n->str);
        return false;
    }
    if (v == 0) {
        slc_err(c, n->line, path, "must be greater than 0");
        return false;
    }
    *out = v;
    return true;
}

bool slc_status_list(slc_t *c, const ydoc_node_t *n, const char *path, int *out, int *n_out)
{
    if (!slc_list(c, n, path))
        return false;
    if (n->n_items > SL_MAX_RETRY_STATUSES) {
        slc_err(c, n->line, path, "at most %d statuses are allowed, got %d", SL_MAX_RETRY_STATUSES,
                n->n_items);
        return false;
    }
    bool ok = true;
    for (int i = 0; i < n->n_items; i++) {
        char p[SLC_PATH];
        ydoc_path_index(p, sizeof p, path, i);
        ok &= slc_int(c, n->items[i], p, 100, 599, &out[i]);
    }
    if (ok)
        *n_out = n->n_items;
    return ok;
}

bool slc_readable_file(slc_t *c, const ydoc_node_t *n, const char *path, char **out)
{
    char *file = NULL;
    if (!slc_string(c, n, path, &file))
        return false;
    struct stat st;
    const char *why = NULL;
    if (stat(file, &st) != 0 || access(file, R_OK) != 0)
        why = strerror(errno);
    else if (S_ISDIR(st.st_mode))
        why = strerror(EISDIR);
    if (why) {
        slc_err(c, n->line, path, "cannot read \"%s\": %s", file, why);
        free(file);
        return false;
    }
    free(*out);
    *out = file;
    return true;
}
