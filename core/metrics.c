#include "metrics.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Striped by name hash so that plugins bumping different metrics on
 * different workers rarely meet on one lock. */
#define STRIPES 16

typedef struct metric {
    char *name;
    char *labels;
    bool gauge;
    double value;
    struct metric *next;
} metric_t;

static struct {
    pthread_mutex_t lock;
    metric_t *head;
} stripes[STRIPES] = {
    [0 ... STRIPES - 1] = { PTHREAD_MUTEX_INITIALIZER, NULL },
};

static unsigned stripe_of(const char *name)
{
    uint32_t h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h % STRIPES;
}

static bool valid_name(const char *n)
{
    if (!n || !((*n >= 'a' && *n <= 'z') || *n == '_'))
        return false;
    for (; *n; n++)
        if (!((*n >= 'a' && *n <= 'z') || (*n >= '0' && *n <= '9') || *n == '_'))
            return false;
    return true;
}

static void update(const char *name, const char *labels, double value, bool gauge)
{
    if (!valid_name(name))
        return;
    if (!labels)
        labels = "";
    unsigned s = stripe_of(name);
    pthread_mutex_lock(&stripes[s].lock);
    metric_t *m = stripes[s].head;
    while (m && (strcmp(m->name, name) != 0 || strcmp(m->labels, labels) != 0))
        m = m->next;
    if (!m && (m = calloc(1, sizeof *m))) {
        m->name = strdup(name);
        m->labels = strdup(labels);
        m->gauge = gauge;
        m->next = stripes[s].head;
        stripes[s].head = m;
    }
    if (m && m->name && m->labels)
        m->value = gauge ? value : m->value + value;
    pthread_mutex_unlock(&stripes[s].lock);
}

void sl_metric_add(const char *name, const char *labels, double value) { update(name, labels, value, false); }
void sl_metric_set(const char *name, const char *labels, double value) { update(name, labels, value, true); }

/* "k=v,k2=v2" -> {k="v",k2="v2"} */
static void render_labels(FILE *f, const char *labels)
{
    if (!*labels)
        return;
    fputc('{', f);
    const char *p = labels;
    bool first = true;
    while (*p) {
        const char *eq = strchr(p, '=');
        const char *end = strchr(p, ',');
        if (!end)
            end = p + strlen(p);
        if (!eq || eq > end)
            break;
        fprintf(f, "%s%.*s=\"", first ? "" : ",", (int)(eq - p), p);
        for (const char *v = eq + 1; v < end; v++) {
            if (*v == '"' || *v == '\\')
                fputc('\\', f);
            fputc(*v, f);
        }
        fputc('"', f);
        first = false;
        p = *end ? end + 1 : end;
    }
    fputc('}', f);
}

char *sl_metrics_render(size_t *len)
{
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    if (!f)
        return NULL;
    for (int s = 0; s < STRIPES; s++) {
        pthread_mutex_lock(&stripes[s].lock);
        for (metric_t *m = stripes[s].head; m; m = m->next) {
            fputs(m->name, f);
            render_labels(f, m->labels);
            fprintf(f, " %.17g\n", m->value);
        }
        pthread_mutex_unlock(&stripes[s].lock);
    }
    fclose(f);
    if (len)
        *len = n;
    return buf;
}

void sl_metrics_reset(void)
{
    for (int s = 0; s < STRIPES; s++) {
        pthread_mutex_lock(&stripes[s].lock);
        metric_t *m = stripes[s].head;
        while (m) {
            metric_t *next = m->next;
            free(m->name);
            free(m->labels);
            free(m);
            m = next;
        }
        stripes[s].head = NULL;
        pthread_mutex_unlock(&stripes[s].lock);
    }
}
