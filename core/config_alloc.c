#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "config_internal.h"

/* A config that cannot be allocated cannot be served either; aborting keeps
 * every parser free of out-of-memory paths that would never be tested. */
void *slc_calloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        abort();
    return p;
}

char *slc_strndup(const char *s, size_t n)
{
    char *p = slc_calloc(n + 1, 1);
    memcpy(p, s, n);
    return p;
}

char *slc_strdup(const char *s)
{
    return slc_strndup(s, strlen(s));
}

char *slc_lower(const char *s)
{
    char *p = slc_strdup(s);
    for (char *q = p; *q; q++)
        *q = (char)tolower((unsigned char)*q);
    return p;
}
