/* acl: lets a request through by the groups of its consumer, which an auth
 * plugin earlier in the chain identified (ctx "consumer.groups", comma
 * separated). Either an allow list (the consumer must be in one of those
 * groups) or a deny list (it must be in none of them). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/host.h"
#include "sluice/plugin.h"

static const sl_host_t *host;

typedef struct acl {
    char **groups;       /* the allow or deny list */
    size_t n_groups;
    int allow;           /* 1: groups is the allow list; 0: the deny list */
    int hide_groups_header;
} acl_t;

static int init(const sl_host_t *h)
{
    host = h;
    return 0;
}

static void unconfigure(void *instance)
{
    acl_t *a = instance;
    for (size_t i = 0; i < a->n_groups; i++)
        free(a->groups[i]);
    free(a->groups);
    free(a);
}

static void *configure(const sl_json_t *conf, char *err, size_t errlen)
{
    const sl_json_t *allow = host->json_get(conf, "allow");
    const sl_json_t *deny = host->json_get(conf, "deny");
    if (!allow == !deny) {   /* the schema already refuses neither */
        snprintf(err, errlen, allow ? "set either allow or deny, not both" : "set allow or deny");
        return NULL;
    }
    const sl_json_t *list = allow ? allow : deny;
    acl_t *a = calloc(1, sizeof *a);
    size_t n = host->json_len(list);
    if (!a || !(a->groups = calloc(n, sizeof *a->groups))) {
        free(a);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    a->allow = allow != NULL;
    a->hide_groups_header = host->json_bool(host->json_get(conf, "hide_groups_header"));
    for (size_t i = 0; i < n; i++) {
        const char *g = host->json_string(host->json_at(list, i), NULL);
        if (!(a->groups[i] = strdup(g ? g : ""))) {
            unconfigure(a);
            snprintf(err, errlen, "out of memory");
            return NULL;
        }
        a->n_groups = i + 1;
    }
    return a;
}

static const char *requires_consumer(void *instance)
{
    (void)instance;
    return "consumer";
}

/* Is one of the comma-separated groups in the list? */
static int member_of_any(const acl_t *a, const char *groups, size_t len)
{
    const char *p = groups, *end = groups + len;
    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        size_t n = comma ? (size_t)(comma - p) : (size_t)(end - p);
        for (size_t i = 0; i < a->n_groups; i++)
            if (strlen(a->groups[i]) == n && memcmp(a->groups[i], p, n) == 0)
                return 1;
        if (!comma)
            break;
        p = comma + 1;
    }
    return 0;
}

static sl_status_t access_phase(void *instance, sl_req_t *r)
{
    acl_t *a = instance;
    /* requires() guarantees an auth plugin ran; one that let the request
     * through without naming a consumer is treated as no access. */
    if (!host->ctx_get(r, "consumer", NULL)) {
        host->respond_error(r, 403, "forbidden", "no consumer was identified for this request");
        return SL_DONE;
    }
    size_t len = 0;
    const char *groups = host->ctx_get(r, "consumer.groups", &len);
    if (!groups) {
        groups = "";
        len = 0;
    }
    if (member_of_any(a, groups, len) != a->allow) {
        host->respond_error(r, 403, "forbidden", "this consumer may not use this route");
        return SL_DONE;
    }
    /* Removing it also when the consumer has no groups: only the gateway
     * may tell the upstream about groups. */
    if (a->hide_groups_header || len == 0)
        host->upstream_remove_header(r, "X-Consumer-Groups");
    else
        host->upstream_set_header(r, "X-Consumer-Groups", groups, len);
    return SL_OK;
}

static const sl_plugin_desc_t desc = {
    .abi_major = SLUICE_ABI_MAJOR,
    .abi_minor = SLUICE_ABI_MINOR,
    .name = "acl",
    .version = "1.0.0",
    .phases = SL_PHASE_ACCESS,
    /* Group names travel comma separated, so none may contain a comma. */
    .schema = "{\"one_of_required\": [\"allow\", \"deny\"], \"fields\": {"
              "\"allow\": {\"type\": \"array\", \"min\": 1,"
              " \"items\": {\"type\": \"string\", \"min\": 1, \"pattern\": \"^[^,]*$\"}},"
              "\"deny\": {\"type\": \"array\", \"min\": 1,"
              " \"items\": {\"type\": \"string\", \"min\": 1, \"pattern\": \"^[^,]*$\"}},"
              "\"hide_groups_header\": {\"type\": \"boolean\", \"default\": false}}}",
    .init = init,
    .configure = configure,
    .requires = requires_consumer,
    .unconfigure = unconfigure,
    .access = access_phase,
};

__attribute__((visibility("default"))) const sl_plugin_desc_t *SLUICE_PLUGIN_ENTRY(void)
{
    return &desc;
}
