/* ip-restriction: lets a request through or answers 403 by the client's IP
 * address, against `allow` and `deny` CIDR lists. A deny match always wins;
 * with an allow list, only addresses on it get through. The client address
 * is the TCP peer, or, behind `trusted_proxies`, the first untrusted entry
 * of X-Forwarded-For from the right (client_addr.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_addr.h"
#include "sluice/host.h"
#include "sluice/plugin.h"

static const sl_host_t *host;

typedef struct restriction {
    ip_cidr_list_t allow;
    ip_cidr_list_t deny;
    ip_cidr_list_t trusted;
    int has_allow;            /* an allow list was configured */
    char *message;
} restriction_t;

static int init(const sl_host_t *h)
{
    host = h;
    return 0;
}

static void unconfigure(void *instance)
{
    restriction_t *x = instance;
    cidr_list_free(&x->allow);
    cidr_list_free(&x->deny);
    cidr_list_free(&x->trusted);
    free(x->message);
    free(x);
}

static void *configure(const sl_json_t *conf, char *err, size_t errlen)
{
    restriction_t *x = calloc(1, sizeof *x);
    if (!x)
        return NULL;
    const sl_json_t *allow = host->json_get(conf, "allow");
    x->has_allow = allow != NULL;
    const char *message = host->json_string(host->json_get(conf, "message"), NULL);
    x->message = strdup(message ? message : "");
    if (!x->message || cidr_list_from_json(host, allow, "allow", &x->allow, err, errlen) != 0 ||
        cidr_list_from_json(host, host->json_get(conf, "deny"), "deny", &x->deny, err, errlen) != 0 ||
        cidr_list_from_json(host, host->json_get(conf, "trusted_proxies"), "trusted_proxies",
                            &x->trusted, err, errlen) != 0) {
        unconfigure(x);
        return NULL;
    }
    return x;
}

static int allowed(const restriction_t *x, const ip_addr_t *a)
{
    if (ip_cidr_list_contains(&x->deny, a))
        return 0;
    return !x->has_allow || ip_cidr_list_contains(&x->allow, a);
}

static sl_status_t access_phase(void *instance, sl_req_t *r)
{
    restriction_t *x = instance;
    ip_addr_t a;
    /* An address that cannot be read cannot be shown to be allowed. */
    if (client_addr(host, r, &x->trusted, &a) == 0 && allowed(x, &a))
        return SL_OK;
    host->respond_error(r, 403, "ip_forbidden", x->message);
    return SL_DONE;
}

#define CIDR_LIST "{\"type\": \"array\", \"min\": 1, \"items\": {\"type\": \"string\"}}"

static const sl_plugin_desc_t desc = {
    .abi_major = SLUICE_ABI_MAJOR,
    .abi_minor = SLUICE_ABI_MINOR,
    .name = "ip-restriction",
    .version = "1.0.0",
    .phases = SL_PHASE_ACCESS,
    .schema = "{\"fields\": {"
              "\"allow\": " CIDR_LIST ","
              "\"deny\": " CIDR_LIST ","
              "\"trusted_proxies\": {\"type\": \"array\", \"items\": {\"type\": \"string\"},"
              " \"default\": []},"
              "\"message\": {\"type\": \"string\", \"min\": 1,"
              " \"default\": \"your IP address is not allowed\"}},"
              "\"one_of_required\": [\"allow\", \"deny\"]}",
    .init = init,
    .configure = configure,
    .unconfigure = unconfigure,
    .access = access_phase,
};

__attribute__((visibility("default"))) const sl_plugin_desc_t *SLUICE_PLUGIN_ENTRY(void)
{
    return &desc;
}
