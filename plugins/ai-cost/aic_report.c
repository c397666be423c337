/* The usage report; see aic_report.h. */
#include "aic_report.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aic_cost.h"

typedef struct entry {
    int tenant;              /* 0 consumer, 1 tenant: consumers come first */
    char *name, *day, *model;
    int64_t v[AIC_N_STATS];
} entry_t;

struct aic_report {
    entry_t *e;
    size_t n, cap;
};

aic_report_t *aic_report_new(void) { return calloc(1, sizeof(aic_report_t)); }

void aic_report_free(aic_report_t *rep)
{
    if (!rep)
        return;
    for (size_t i = 0; i < rep->n; i++) {
        free(rep->e[i].name);
        free(rep->e[i].day);
        free(rep->e[i].model);
    }
    free(rep->e);
    free(rep);
}

static int digits(const char *s, int n)
{
    for (int i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i]))
            return 0;
    return 1;
}

/* "YYYY-MM-DD" or "YYYY-MM": its length, else 0 */
static size_t period_len(const char *s)
{
    if (!digits(s, 4) || s[4] != '-' || !digits(s + 5, 2))
        return 0;
    if (s[7] == '-' && digits(s + 8, 2))
        return 10;
    return 7;
}

char *aic_record_end(char *s)
{
    if (strncmp(s, "aic:{", 5) != 0)
        return NULL;
    for (char *p = strstr(s + 5, "}:"); p; p = strstr(p + 1, "}:")) {
        size_t n = period_len(p + 2);
        if (n && (p[2 + n] == '\0' || p[2 + n] == '|'))
            return p + 2 + n;
    }
    return NULL;
}

int aic_report_add(aic_report_t *rep, const char *record, const char *model,
                   const int64_t values[AIC_N_STATS])
{
    char *copy = strdup(record);
    if (!copy)
        return -1;
    char *end = aic_record_end(copy);
    int tenant = strncmp(copy + 5, "tenant:", 7) == 0;
    int consumer = strncmp(copy + 5, "consumer:", 9) == 0;
    if (!end || *end != '\0' || (!tenant && !consumer) || end - copy < 12 ||
        period_len(end - 10) != 10) {
        free(copy);
        return 0;
    }
    char *close = end - 12;      /* the "}:" before the day */
    *close = '\0';
    if (rep->n == rep->cap) {
        size_t cap = rep->cap ? rep->cap * 2 : 16;
        entry_t *e = realloc(rep->e, cap * sizeof *e);
        if (!e) {
            free(copy);
            return -1;
        }
        rep->e = e;
        rep->cap = cap;
    }
    entry_t *e = &rep->e[rep->n];
    e->tenant = tenant;
    e->name = strdup(copy + 5 + (tenant ? 7 : 9));
    e->day = strdup(end - 10);
    e->model = strdup(model);
    free(copy);
    if (!e->name || !e->day || !e->model) {
        free(e->name);
        free(e->day);
        free(e->model);
        return -1;
    }
    memcpy(e->v, values, sizeof e->v);
    rep->n++;
    return 0;
}

static int by_place(const void *a, const void *b)
{
    const entry_t *x = a, *y = b;
    int d = x->tenant - y->tenant;
    if (!d)
        d = strcmp(x->name, y->name);
    if (!d)
        d = strcmp(x->day, y->day);
    if (!d)
        d = strcmp(x->model, y->model);
    return d;
}

typedef struct out {
    char *s;
    size_t len, cap;
    int failed;
} out_t;

static void put(out_t *o, const char *s, size_t n)
{
    if (o->failed)
        return;
    if (o->len + n + 1 > o->cap) {
        size_t cap = o->cap ? o->cap : 256;
        while (o->len + n + 1 > cap)
            cap *= 2;
        char *p = realloc(o->s, cap);
        if (!p) {
            o->failed = 1;
            return;
        }
        o->s = p;
        o->cap = cap;
    }
    memcpy(o->s + o->len, s, n);
    o->len += n;
    o->s[o->len] = '\0';
}

static void putf(out_t *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(out_t *o, const char *fmt, ...)
{
    char buf[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n > 0)
        put(o, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

static void put_string(out_t *o, const char *s)
{
    put(o, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            char esc[2] = {'\\', (char)*p};
            put(o, esc, 2);
        } else if (*p < 0x20) {
            putf(o, "\\u%04x", *p);
        } else {
            put(o, (const char *)p, 1);
        }
    }
    put(o, "\"", 1);
}

static void put_stats(out_t *o, const int64_t v[AIC_N_STATS])
{
    char usd[40];
    aic_format_usd(v[AIC_COST], usd, sizeof usd);
    putf(o, "\"requests\":%lld,\"prompt_tokens\":%lld,\"completion_tokens\":%lld,", (long long)v[0],
         (long long)v[1], (long long)v[2]);
    putf(o, "\"cached_tokens\":%lld,\"cost_usd\":%s,\"cost_micro_usd\":%lld", (long long)v[3], usd,
         (long long)v[4]);
}

/* One day of one name: the sum, then each model. Returns the next entry. */
static size_t put_day(out_t *o, const entry_t *e, size_t i, size_t n)
{
    size_t end = i;
    int64_t sum[AIC_N_STATS] = {0};
    while (end < n && e[end].tenant == e[i].tenant && strcmp(e[end].name, e[i].name) == 0 &&
           strcmp(e[end].day, e[i].day) == 0) {
        for (int k = 0; k < AIC_N_STATS; k++)
            sum[k] += e[end].v[k];
        end++;
    }
    put_string(o, e[i].day);
    put(o, ":{", 2);
    put_stats(o, sum);
    put(o, ",\"models\":{", 11);
    for (size_t j = i; j < end; j++) {
        if (j > i)
            put(o, ",", 1);
        put_string(o, e[j].model);
        put(o, ":{", 2);
        put_stats(o, e[j].v);
        put(o, "}", 1);
    }
    put(o, "}}", 2);
    return end;
}

static size_t put_scope(out_t *o, const entry_t *e, size_t i, size_t n, int tenant)
{
    put(o, tenant ? "\"tenants\":{" : "\"consumers\":{", tenant ? 11 : 13);
    int first_name = 1;
    while (i < n && e[i].tenant == tenant) {
        if (!first_name)
            put(o, ",", 1);
        first_name = 0;
        size_t start = i;
        put_string(o, e[i].name);
        put(o, ":{", 2);
        while (i < n && e[i].tenant == tenant && strcmp(e[i].name, e[start].name) == 0) {
            if (i > start)
                put(o, ",", 1);
            i = put_day(o, e, i, n);
        }
        put(o, "}", 1);
    }
    put(o, "}", 1);
    return i;
}

char *aic_report_json(aic_report_t *rep, size_t *len)
{
    if (rep->n > 1)
        qsort(rep->e, rep->n, sizeof *rep->e, by_place);
    out_t o = {0};
    put(&o, "{", 1);
    size_t i = put_scope(&o, rep->e, 0, rep->n, 0);
    put(&o, ",", 1);
    put_scope(&o, rep->e, i, rep->n, 1);
    put(&o, "}", 1);
    if (o.failed) {
        free(o.s);
        return NULL;
    }
    *len = o.len;
    return o.s;
}
