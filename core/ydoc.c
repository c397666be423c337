#include "ydoc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

/* Deeper nesting than this is no config anyone writes; the bound keeps the
 * recursive copy (and later recursive walks) off the end of the stack. */
#define YDOC_MAX_DEPTH 128
/* Aliases to aliases grow exponentially ("billion laughs"); this caps the
 * nodes that alias expansion may add on top of those in the file. */
#define YDOC_MAX_ALIAS_NODES 100000

enum { NODE_UNSEEN = 0, NODE_OPEN, NODE_DONE };

typedef struct build {
    const char *name;
    yaml_document_t *doc;
    ydoc_scalar_hook_t hook;
    void *hook_ctx;
    sl_errors_t *errs;
    unsigned char *state;  /* per libyaml node: has it been (or is it being) copied */
    size_t built;
    size_t max_built;
    bool fatal;
} build_t;

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (!p)
        abort();
    return p;
}

void ydoc_path_key(char *out, size_t size, const char *parent, const char *key)
{
    if (parent && parent[0])
        snprintf(out, size, "%s.%s", parent, key);
    else
        snprintf(out, size, "%s", key);
}

void ydoc_path_index(char *out, size_t size, const char *parent, int index)
{
    snprintf(out, size, "%s[%d]", parent ? parent : "", index);
}

static void node_error(build_t *b, int line, const char *path, const char *msg)
{
    if (path && path[0])
        sl_errors_add(b->errs, "%s:%d: %s: %s", b->name, line, path, msg);
    else
        sl_errors_add(b->errs, "%s:%d: %s", b->name, line, msg);
}

static ydoc_node_t *copy_node(build_t *b, int id, const char *path, int depth);

static ydoc_node_t *copy_scalar(build_t *b, yaml_node_t *yn, ydoc_node_t *n, const char *path)
{
    n->kind = YDOC_SCALAR;
    n->quoted = yn->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
    n->len = yn->data.scalar.length;
    n->str = xcalloc(n->len + 1, 1);
    memcpy(n->str, yn->data.scalar.value, n->len);
    if (b->hook) {
        char err[256] = "";
        if (b->hook(b->hook_ctx, &n->str, &n->len, err, sizeof err) != 0) {
            node_error(b, n->line, path, err);
            n->invalid = true;
        }
    }
    return n;
}

static ydoc_node_t *copy_seq(build_t *b, yaml_node_t *yn, ydoc_node_t *n, const char *path, int depth)
{
    n->kind = YDOC_SEQ;
    size_t count = (size_t)(yn->data.sequence.items.top - yn->data.sequence.items.start);
    n->items = xcalloc(count, sizeof *n->items);
    for (size_t i = 0; i < count && !b->fatal; i++) {
        char child[YDOC_PATH_MAX];
        ydoc_path_index(child, sizeof child, path, (int)i);
        ydoc_node_t *item = copy_node(b, yn->data.sequence.items.start[i], child, depth + 1);
        if (item)
            n->items[n->n_items++] = item;
    }
    return n;
}

static bool same_key(const ydoc_node_t *a, const ydoc_node_t *b)
{
    return a->len == b->len && memcmp(a->str, b->str, a->len) == 0;
}

/* Adds one key/value pair to n, or reports why it cannot be added. */
static void copy_pair(build_t *b, ydoc_node_t *n, yaml_node_pair_t *yp, const char *path, int depth)
{
    yaml_node_t *ykey = yaml_document_get_node(b->doc, yp->key);
    if (ykey->type != YAML_SCALAR_NODE) {
        node_error(b, (int)ykey->start_mark.line + 1, path, "mapping keys must be plain strings");
        return;
    }
    ydoc_node_t *key = copy_node(b, yp->key, path, depth + 1);
    if (!key)
        return;
    char child[YDOC_PATH_MAX];
    ydoc_path_key(child, sizeof child, path, key->str);
    if (!key->quoted && strcmp(key->str, "<<") == 0) {
        node_error(b, key->line, path, "merge keys (<<) are not supported; repeat the keys instead");
        ydoc_free(key);
        return;
    }
    for (int i = 0; i < n->n_pairs; i++) {
        if (same_key(n->pairs[i].key, key)) {
            char msg[64];
            snprintf(msg, sizeof msg, "duplicate key (first at line %d)", n->pairs[i].key->line);
            node_error(b, key->line, child, msg);
            ydoc_free(key);
            return;
        }
    }
    ydoc_node_t *value = copy_node(b, yp->value, child, depth + 1);
    if (!value) {
        ydoc_free(key);
        return;
    }
    if (key->invalid)
        value->invalid = true;
    n->pairs[n->n_pairs].key = key;
    n->pairs[n->n_pairs].value = value;
    n->n_pairs++;
}

static ydoc_node_t *copy_map(build_t *b, yaml_node_t *yn, ydoc_node_t *n, const char *path, int depth)
{
    n->kind = YDOC_MAP;
    size_t count = (size_t)(yn->data.mapping.pairs.top - yn->data.mapping.pairs.start);
    n->pairs = xcalloc(count, sizeof *n->pairs);
    for (size_t i = 0; i < count && !b->fatal; i++)
        copy_pair(b, n, &yn->data.mapping.pairs.start[i], path, depth);
    return n;
}

static ydoc_node_t *copy_node(build_t *b, int id, const char *path, int depth)
{
    yaml_node_t *yn = yaml_document_get_node(b->doc, id);
    int line = (int)yn->start_mark.line + 1;
    if (b->fatal)
        return NULL;
    if (depth > YDOC_MAX_DEPTH) {
        node_error(b, line, path, "nested too deeply (more than 128 levels)");
        b->fatal = true;
        return NULL;
    }
    if (b->state[id] == NODE_OPEN) {
        node_error(b, line, path, "alias refers to a node that contains it");
        b->fatal = true;
        return NULL;
    }
    if (++b->built > b->max_built) {
        node_error(b, line, path, "aliases expand to too many nodes");
        b->fatal = true;
        return NULL;
    }
    unsigned char prev = b->state[id];
    b->state[id] = NODE_OPEN;
    ydoc_node_t *n = xcalloc(1, sizeof *n);
    n->line = line;
    switch (yn->type) {
    case YAML_SEQUENCE_NODE:
        copy_seq(b, yn, n, path, depth);
        break;
    case YAML_MAPPING_NODE:
        copy_map(b, yn, n, path, depth);
        break;
    default:
        copy_scalar(b, yn, n, path);
        break;
    }
    b->state[id] = prev == NODE_UNSEEN ? NODE_DONE : prev;
    return n;
}

/* A reader error (bad UTF-8, control characters) has only a byte offset. */
static int line_of_offset(const char *text, size_t len, size_t offset)
{
    int line = 1;
    for (size_t i = 0; i < offset && i < len; i++)
        if (text[i] == '\n')
            line++;
    return line;
}

static void syntax_error(const char *name, const char *text, size_t len, yaml_parser_t *p, sl_errors_t *errs)
{
    if (p->error == YAML_MEMORY_ERROR)
        abort();
    int line = p->error == YAML_READER_ERROR ? line_of_offset(text, len, p->problem_offset)
                                             : (int)p->problem_mark.line + 1;
    const char *problem = p->problem ? p->problem : "unknown problem";
    if (p->context)
        sl_errors_add(errs, "%s:%d: YAML syntax error: %s (%s)", name, line, problem, p->context);
    else
        sl_errors_add(errs, "%s:%d: YAML syntax error: %s", name, line, problem);
}

/* libyaml reads a stream; a config file is exactly one document, and a
 * second one would otherwise be silently ignored. */
static int check_single_document(const char *name, const char *text, size_t len, yaml_parser_t *p,
                                 sl_errors_t *errs)
{
    yaml_document_t extra;
    if (!yaml_parser_load(p, &extra)) {
        syntax_error(name, text, len, p, errs);
        return -1;
    }
    yaml_node_t *root = yaml_document_get_root_node(&extra);
    int rc = 0;
    if (root) {
        sl_errors_add(errs, "%s:%d: only one YAML document is allowed", name,
                      (int)extra.start_mark.line + 1);
        rc = -1;
    }
    yaml_document_delete(&extra);
    return rc;
}

int ydoc_parse(const char *name, const char *text, size_t len, ydoc_scalar_hook_t hook,
               void *hook_ctx, sl_errors_t *errs, ydoc_node_t **root)
{
    *root = NULL;
    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser))
        abort();
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        syntax_error(name, text, len, &parser, errs);
        yaml_parser_delete(&parser);
        return -1;
    }
    int rc = check_single_document(name, text, len, &parser, errs);
    yaml_node_t *top = yaml_document_get_root_node(&doc);
    if (rc == 0 && top) {
        size_t n_nodes = (size_t)(doc.nodes.top - doc.nodes.start);
        build_t b = {
            .name = name, .doc = &doc, .hook = hook, .hook_ctx = hook_ctx, .errs = errs,
            .state = xcalloc(n_nodes + 1, 1), .max_built = n_nodes + YDOC_MAX_ALIAS_NODES,
        };
        *root = copy_node(&b, 1, "", 0);
        if (b.fatal) {
            ydoc_free(*root);
            *root = NULL;
            rc = -1;
        }
        free(b.state);
    }
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    return rc;
}

void ydoc_free(ydoc_node_t *n)
{
    if (!n)
        return;
    for (int i = 0; i < n->n_items; i++)
        ydoc_free(n->items[i]);
    for (int i = 0; i < n->n_pairs; i++) {
        ydoc_free(n->pairs[i].key);
        ydoc_free(n->pairs[i].value);
    }
    free(n->items);
    free(n->pairs);
    free(n->str);
    free(n);
}

ydoc_node_t *ydoc_get(const ydoc_node_t *map, const char *key)
{
    if (!map || map->kind != YDOC_MAP)
        return NULL;
    for (int i = 0; i < map->n_pairs; i++)
        if (strcmp(map->pairs[i].key->str, key) == 0)
            return map->pairs[i].value;
    return NULL;
}

bool ydoc_is_null(const ydoc_node_t *n)
{
    if (!n || n->kind != YDOC_SCALAR || n->quoted)
        return false;
    return n->len == 0 || strcmp(n->str, "~") == 0 || strcmp(n->str, "null") == 0 ||
           strcmp(n->str, "Null") == 0 || strcmp(n->str, "NULL") == 0;
}

const char *ydoc_describe(const ydoc_node_t *n)
{
    if (!n)
        return "nothing";
    switch (n->kind) {
    case YDOC_MAP:
        return "a mapping";
    case YDOC_SEQ:
        return "a list";
    default:
        if (ydoc_is_null(n))
            return "null";
        return n->quoted ? "a quoted string" : "a string";
    }
}
