/* Environment substitution in config scalars, so secrets and per-host values
 * need not live in the file: ${VAR}, ${VAR:-default} (used when VAR is unset
 * or empty, as in the shell) and $$ for a literal "$". Any other "$" is kept
 * as written, which leaves regex anchors such as "^/x$" alone. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_internal.h"

typedef struct buf {
    char *s;
    size_t len;
    size_t cap;
} buf_t;

static void buf_add(buf_t *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->s, cap);
        if (!p)
            abort();
        b->s = p;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static bool valid_name(const char *s, size_t n)
{
    if (n == 0 || (s[0] >= '0' && s[0] <= '9'))
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!(ch == '_' || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')))
            return false;
    }
    return true;
}

/* Expands the ${...} whose body is s[0..n); appends the value to out. */
static int expand_one(const char *s, size_t n, buf_t *out, char *err, size_t errlen)
{
    const char *dash = NULL;
    for (size_t i = 0; i + 1 < n; i++) {
        if (s[i] == ':' && s[i + 1] == '-') {
            dash = s + i;
            break;
        }
    }
    size_t name_len = dash ? (size_t)(dash - s) : n;
    if (!valid_name(s, name_len)) {
        snprintf(err, errlen, "invalid environment variable name \"%.*s\" in ${%.*s}", (int)name_len, s,
                 (int)n, s);
        return -1;
    }
    char name[256];
    if (name_len >= sizeof name) {
        snprintf(err, errlen, "environment variable name too long");
        return -1;
    }
    memcpy(name, s, name_len);
    name[name_len] = '\0';
    const char *value = getenv(name);
    if (dash && (!value || !value[0])) {
        buf_add(out, dash + 2, n - name_len - 2);
        return 0;
    }
    if (!value) {
        snprintf(err, errlen, "environment variable %s is not set", name);
        return -1;
    }
    buf_add(out, value, strlen(value));
    return 0;
}

int slc_env_expand(void *ctx, char **str, size_t *len, char *err, size_t errlen)
{
    const char *s = *str;
    size_t n = *len;
    if (!memchr(s, '$', n))
        return 0;
    buf_t out = {0};
    buf_add(&out, "", 0);
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '$' || i + 1 == n) {
            buf_add(&out, s + i, 1);
        } else if (s[i + 1] == '$') {
            buf_add(&out, "$", 1);
            i++;
        } else if (s[i + 1] == '{') {
            const char *close = memchr(s + i + 2, '}', n - i - 2);
            if (!close) {
                snprintf(err, errlen, "unterminated ${ (missing \"}\")");
                free(out.s);
                return -1;
            }
            if (expand_one(s + i + 2, (size_t)(close - (s + i + 2)), &out, err, errlen) != 0) {
                free(out.s);
                return -1;
            }
            i = (size_t)(close - s);
        } else {
            buf_add(&out, "$", 1);
        }
    }
    free(*str);
    *str = out.s;
    *len = out.len;
    return 0;
}
