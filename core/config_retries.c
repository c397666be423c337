/* retries: and timeouts:, which an upstream sets and a route may override. */
#include <stdlib.h>
#include <string.h>

#include "config_internal.h"

void slc_retries_defaults(sl_retries_t *r)
{
    memset(r, 0, sizeof *r);
    r->attempts = 1;
    r->backoff_ms = 25;
    r->max_backoff_ms = 1000;
    r->budget_percent = 20;
}

static bool load_budget(slc_t *c, const ydoc_node_t *n, const char *path, int *out)
{
    if (!slc_scalar(c, n, path, "a percentage"))
        return false;
    size_t len = n->len;
    if (len > 0 && n->str[len - 1] == '%')
        len--;
    int v = 0;
    bool ok = len > 0 && len <= 3;
    for (size_t i = 0; ok && i < len; i++) {
        ok = n->str[i] >= '0' && n->str[i] <= '9';
        v = v * 10 + (n->str[i] - '0');
    }
    if (!ok || v > 100) {
        slc_err(c, n->line, path, "invalid budget \"%s\" (expected 0%% to 100%%)", n->str);
        return false;
    }
    *out = v;
    return true;
}

void slc_parse_retries(slc_t *c, const ydoc_node_t *n, const char *path, sl_retries_t *r, unsigned *given)
{
    *given = 0;
    if (!slc_map(c, n, path))
        return;
    for (int i = 0; i < n->n_pairs; i++) {
        const ydoc_node_t *k = n->pairs[i].key, *v = n->pairs[i].value;
        char p[SLC_PATH];
        ydoc_path_key(p, sizeof p, path, k->str);
        const char *key = k->str;
        if (!strcmp(key, "attempts")) {
            if (slc_int(c, v, p, 0, 10, &r->attempts))
                *given |= SLC_R_ATTEMPTS;
        } else if (!strcmp(key, "backoff")) {
            if (slc_duration(c, v, p, 0, &r->backoff_ms))
                *given |= SLC_R_BACKOFF;
        } else if (!strcmp(key, "max_backoff")) {
            if (slc_duration(c, v, p, 0, &r->max_backoff_ms))
                *given |= SLC_R_MAX_BACKOFF;
        } else if (!strcmp(key, "on_status")) {
            if (slc_status_list(c, v, p, r->on_status, &r->n_on_status))
                *given |= SLC_R_ON_STATUS;
        } else if (!strcmp(key, "non_idempotent")) {
            if (slc_bool(c, v, p, &r->non_idempotent))
                *given |= SLC_R_NON_IDEMPOTENT;
        } else if (!strcmp(key, "budget")) {
            if (load_budget(c, v, p, &r->budget_percent))
                *given |= SLC_R_BUDGET;
        } else {
            slc_unknown_key(c, k, p);
        }
    }
}

void slc_check_retries(slc_t *c, const ydoc_node_t *n, const char *path, const sl_retries_t *r)
{
    if (r->max_backoff_ms < r->backoff_ms)
        slc_err(c, n->line, path, "max_backoff (%lldms) is less than backoff (%lldms)",
                (long long)r->max_backoff_ms, (long long)r->backoff_ms);
}

void slc_merge_retries(sl_retries_t *dst, const sl_retries_t *src, unsigned given)
{
    if (given & SLC_R_ATTEMPTS)
        dst->attempts = src->attempts;
    if (given & SLC_R_BACKOFF)
        dst->backoff_ms = src->backoff_ms;
    if (given & SLC_R_MAX_BACKOFF)
        dst->max_backoff_ms = src->max_backoff_ms;
    if (given & SLC_R_ON_STATUS) {
        memcpy(dst->on_status, src->on_status, sizeof dst->on_status);
        dst->n_on_status = src->n_on_status;
    }
    if (given & SLC_R_NON_IDEMPOTENT)
        dst->non_idempotent = src->non_idempotent;
    if (given & SLC_R_BUDGET)
        dst->budget_percent = src->budget_percent;
}

void slc_parse_timeouts(slc_t *c, const ydoc_node_t *n, const char *path, sl_timeouts_t *t)
{
    if (!slc_map(c, n, path))
        return;
    for (int i = 0; i < n->n_pairs; i++) {
        const ydoc_node_t *k = n->pairs[i].key, *v = n->pairs[i].value;
        char p[SLC_PATH];
        ydoc_path_key(p, sizeof p, path, k->str);
        if (!strcmp(k->str, "connect"))
            slc_duration(c, v, p, 1, &t->connect_ms);
        else if (!strcmp(k->str, "send"))
            slc_duration(c, v, p, 1, &t->send_ms);
        else if (!strcmp(k->str, "read"))
            slc_duration(c, v, p, 1, &t->read_ms);
        else
            slc_unknown_key(c, k, p);
    }
}
