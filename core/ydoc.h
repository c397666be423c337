/* A YAML document as a plain tree of mappings, sequences and scalars.
 *
 * libyaml's own document keeps nodes in a flat table shared by aliases; the
 * config validator wants a tree it can walk with a key path, where every node
 * remembers its line (errors name it) and every scalar whether it was quoted
 * (quoted scalars are never typed as numbers or booleans). Aliases are expanded
 * into copies, so the tree has no sharing and frees simply. */
#ifndef SLUICE_YDOC_H
#define SLUICE_YDOC_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

typedef enum ydoc_kind {
    YDOC_SCALAR = 0,
    YDOC_SEQ,
    YDOC_MAP,
} ydoc_kind_t;

typedef struct ydoc_node ydoc_node_t;

typedef struct ydoc_pair {
    ydoc_node_t *key;      /* always a scalar */
    ydoc_node_t *value;
} ydoc_pair_t;

struct ydoc_node {
    ydoc_kind_t kind;
    int line;              /* 1-based */
    bool quoted;           /* scalar written quoted or as a block (| or >) */
    bool invalid;          /* an error about it was already reported: skip it */
    char *str;             /* scalar text, NUL-terminated (may also hold NULs) */
    size_t len;
    ydoc_node_t **items;   /* sequence */
    int n_items;
    ydoc_pair_t *pairs;    /* mapping, in file order, keys unique */
    int n_pairs;
};

/* Rewrites a scalar's text in place before it is used, e.g. to substitute
 * environment variables. On failure returns non-zero with a message in err. */
typedef int (*ydoc_scalar_hook_t)(void *ctx, char **str, size_t *len, char *err, size_t errlen);

/* Parses one YAML document. Errors are added to errs as
 * "name:LINE: path: message". Returns 0 and sets *root (NULL for an empty
 * document) when a tree could be built, even if some of its nodes had errors
 * (they are marked invalid, and a duplicate key's later value is dropped);
 * returns -1 with *root NULL on a syntax error. hook may be NULL. */
int ydoc_parse(const char *name, const char *text, size_t len, ydoc_scalar_hook_t hook,
               void *hook_ctx, sl_errors_t *errs, ydoc_node_t **root);

void ydoc_free(ydoc_node_t *n);

/* The value of key in a mapping, NULL when absent or when n is not a mapping. */
ydoc_node_t *ydoc_get(const ydoc_node_t *map, const char *key);

/* A plain "", "~", "null", "Null" or "NULL": what YAML reads as null. */
bool ydoc_is_null(const ydoc_node_t *n);

/* "a mapping", "a list", "null", or "a string" / "a quoted string". */
const char *ydoc_describe(const ydoc_node_t *n);

/* Key paths as they appear in messages: "routes[1].match.paths[0]".
 * The result is truncated (never overflowed) to size bytes. */
#define YDOC_PATH_MAX 512
void ydoc_path_key(char *out, size_t size, const char *parent, const char *key);
void ydoc_path_index(char *out, size_t size, const char *parent, int index);

#endif
