/* listen: one address, or a list of addresses and {addr, tls} mappings. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_internal.h"

static int parse_port(const char *s, int *port, char *err, size_t errlen)
{
    if (!*s || strspn(s, "0123456789") != strlen(s)) {
        snprintf(err, errlen, "invalid port \"%s\"", s);
        return -1;
    }
    long v = strlen(s) > 6 ? 0 : strtol(s, NULL, 10);
    if (v < 1 || v > 65535) {
        snprintf(err, errlen, "port %s out of range (1..65535)", s);
        return -1;
    }
    *port = (int)v;
    return 0;
}

/* "host:port", "[v6]:port", ":port" or a bare port. The host must be numeric:
 * a listener binds an address, and a name could resolve to several. */
static int parse_addr(const char *s, char **host, int *port, char *err, size_t errlen)
{
    unsigned char bin[16];
    const char *colon;
    char *h;
    if (*s && strspn(s, "0123456789") == strlen(s)) {
        h = slc_strdup("0.0.0.0");
        colon = s - 1;
    } else if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':') {
            snprintf(err, errlen, "expected \"[address]:port\", got \"%s\"", s);
            return -1;
        }
        h = slc_strndup(s + 1, (size_t)(close - s - 1));
        colon = close + 1;
        if (inet_pton(AF_INET6, h, bin) != 1) {
            snprintf(err, errlen, "\"%s\" is not an IPv6 address", h);
            free(h);
            return -1;
        }
    } else {
        colon = strrchr(s, ':');
        if (!colon) {
            snprintf(err, errlen, "expected \"host:port\", got \"%s\"", s);
            return -1;
        }
        h = colon == s ? slc_strdup("0.0.0.0") : slc_strndup(s, (size_t)(colon - s));
        if (strchr(h, ':')) {
            snprintf(err, errlen, "IPv6 addresses must be in brackets, e.g. \"[::1]:8080\"");
            free(h);
            return -1;
        }
        if (inet_pton(AF_INET, h, bin) != 1) {
            snprintf(err, errlen, "host \"%s\" must be a numeric IPv4 address or a bracketed IPv6 address", h);
            free(h);
            return -1;
        }
    }
    if (parse_port(colon + 1, port, err, errlen) != 0) {
        free(h);
        return -1;
    }
    *host = h;
    return 0;
}

static void load_tls(slc_t *c, const ydoc_node_t *n, const char *path, sl_listen_t *l)
{
    if (!slc_map(c, n, path))
        return;
    const ydoc_node_t *cert = NULL, *key = NULL;
    for (int i = 0; i < n->n_pairs; i++) {
        const ydoc_node_t *k = n->pairs[i].key, *v = n->pairs[i].value;
        char p[SLC_PATH];
        ydoc_path_key(p, sizeof p, path, k->str);
        if (!strcmp(k->str, "cert")) {
            cert = v;
            slc_readable_file(c, v, p, &l->tls_cert);
        } else if (!strcmp(k->str, "key")) {
            key = v;
            slc_readable_file(c, v, p, &l->tls_key);
        } else {
            slc_unknown_key(c, k, p);
        }
    }
    if (!cert)
        slc_missing_key(c, n, path, "cert");
    if (!key)
        slc_missing_key(c, n, path, "key");
}

static void load_addr(slc_t *c, const ydoc_node_t *n, const char *path, sl_listen_t *l)
{
    if (!slc_scalar(c, n, path, "an address like \"127.0.0.1:8080\""))
        return;
    char err[256];
    if (parse_addr(n->str, &l->host, &l->port, err, sizeof err) != 0)
        slc_err(c, n->line, path, "%s", err);
}

static void load_one(slc_t *c, const ydoc_node_t *n, const char *path, sl_listen_t *l)
{
    if (n->kind != YDOC_MAP) {
        load_addr(c, n, path, l);
        return;
    }
    const ydoc_node_t *addr = NULL;
    for (int i = 0; i < n->n_pairs; i++) {
        const ydoc_node_t *k = n->pairs[i].key, *v = n->pairs[i].value;
        char p[SLC_PATH];
        ydoc_path_key(p, sizeof p, path, k->str);
        if (!strcmp(k->str, "addr")) {
            addr = v;
            load_addr(c, v, p, l);
        } else if (!strcmp(k->str, "tls")) {
            load_tls(c, v, p, l);
        } else {
            slc_unknown_key(c, k, p);
        }
    }
    if (!addr)
        slc_missing_key(c, n, path, "addr");
}

static void check_duplicates(slc_t *c, sl_config_t *cfg, const ydoc_node_t *const *nodes)
{
    for (int i = 0; i < cfg->n_listens; i++) {
        if (!cfg->listens[i].host)
            continue;
        for (int j = 0; j < i; j++) {
            if (cfg->listens[j].host && cfg->listens[j].port == cfg->listens[i].port &&
                strcmp(cfg->listens[j].host, cfg->listens[i].host) == 0) {
                char p[SLC_PATH];
                ydoc_path_index(p, sizeof p, "listen", i);
                slc_err(c, nodes[i]->line, p, "duplicate listen address (first at line %d)",
                        nodes[j]->line);
                break;
            }
        }
    }
}

void slc_load_listen(slc_t *c, const ydoc_node_t *n, sl_config_t *cfg)
{
    if (n->invalid)
        return;
    if (n->kind != YDOC_SEQ) {
        cfg->listens = slc_calloc(1, sizeof *cfg->listens);
        cfg->n_listens = 1;
        load_one(c, n, "listen", &cfg->listens[0]);
        return;
    }
    if (n->n_items == 0) {
        slc_err(c, n->line, "listen", "must not be empty");
        return;
    }
    cfg->listens = slc_calloc((size_t)n->n_items, sizeof *cfg->listens);
    cfg->n_listens = n->n_items;
    for (int i = 0; i < n->n_items; i++) {
        char p[SLC_PATH];
        ydoc_path_index(p, sizeof p, "listen", i);
        load_one(c, n->items[i], p, &cfg->listens[i]);
    }
    check_duplicates(c, cfg, (const ydoc_node_t *const *)n->items);
}
