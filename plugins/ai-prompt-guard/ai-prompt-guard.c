/* ai-prompt-guard: judges the prompt of an OpenAI chat-completions request
 * before it leaves the gateway. It refuses prompts over a size limit or
 * matching deny patterns (or matching none of the allow patterns), and
 * takes e-mail addresses, card numbers and phone numbers out of the text.
 *
 * Runs in access, so auth plugins listed earlier judge the request first,
 * and before ai-proxy, which reads the body this plugin may rewrite. A body
 * that is forwarded unchanged goes out byte for byte as the client sent it;
 * duplicate keys are refused so the upstream cannot read a prompt other
 * than the one judged here. */
#include <regex.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "chat_json.h"
#include "prompt_text.h"
#include "redact.h"
#include "sluice/host.h"
#include "sluice/plugin.h"

static const sl_host_t *host;

typedef struct patterns {
    regex_t *re;
    size_t n;
} patterns_t;

typedef struct guard {
    patterns_t allow, deny;
    char **roles;
    size_t n_roles;
    bool all_roles;
    long long max_chars;   /* 0: no limit */
    unsigned redact;       /* REDACT_* bits */
} guard_t;

static int init(const sl_host_t *h)
{
    host = h;
    return 0;
}

static void patterns_free(patterns_t *p)
{
    for (size_t i = 0; i < p->n; i++)
        regfree(&p->re[i]);
    free(p->re);
}

static void guard_free(guard_t *g)
{
    patterns_free(&g->allow);
    patterns_free(&g->deny);
    for (size_t i = 0; i < g->n_roles; i++)
        free(g->roles[i]);
    free(g->roles);
    free(g);
}

static int compile_patterns(const sl_json_t *conf, const char *key, int flags, patterns_t *out,
                            char *err, size_t errlen)
{
    const sl_json_t *list = host->json_get(conf, key);
    size_t n = list ? host->json_len(list) : 0;
    if (n == 0)
        return 0;
    out->re = calloc(n, sizeof *out->re);
    if (!out->re) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        const char *text = host->json_string(host->json_at(list, i), NULL);
        int rc = regcomp(&out->re[i], text, flags);
        if (rc != 0) {
            char why[128];
            regerror(rc, &out->re[i], why, sizeof why);
            snprintf(err, errlen, "%s[%zu]: invalid pattern \"%s\": %s", key, i, text, why);
            return -1;
        }
        out->n++;
    }
    return 0;
}

static int read_roles(const sl_json_t *conf, guard_t *g, char *err, size_t errlen)
{
    const sl_json_t *list = host->json_get(conf, "roles");
    size_t n = host->json_len(list);
    g->roles = calloc(n ? n : 1, sizeof *g->roles);
    if (!g->roles) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        g->roles[i] = strdup(host->json_string(host->json_at(list, i), NULL));
        if (!g->roles[i]) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        g->n_roles++;
    }
    return 0;
}

static unsigned read_redact(const sl_json_t *conf)
{
    const sl_json_t *list = host->json_get(conf, "redact");
    unsigned kinds = 0;
    for (size_t i = 0; i < host->json_len(list); i++) {
        const char *kind = host->json_string(host->json_at(list, i), NULL);
        kinds |= strcmp(kind, "email") == 0 ? REDACT_EMAIL : strcmp(kind, "phone") == 0 ? REDACT_PHONE
                                                                                          : REDACT_CARD;
    }
    return kinds;
}

static void *configure(const sl_json_t *conf, char *err, size_t errlen)
{
    guard_t *g = calloc(1, sizeof *g);
    if (!g) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    int flags = REG_EXTENDED | REG_NOSUB;
    if (host->json_bool(host->json_get(conf, "ignore_case")))
        flags |= REG_ICASE;
    const sl_json_t *max = host->json_get(conf, "max_prompt_chars");
    g->max_chars = max ? host->json_integer(max) : 0;
    g->all_roles = host->json_bool(host->json_get(conf, "match_all_roles"));
    g->redact = read_redact(conf);
    if (compile_patterns(conf, "allow_patterns", flags, &g->allow, err, errlen) != 0 ||
        compile_patterns(conf, "deny_patterns", flags, &g->deny, err, errlen) != 0 ||
        read_roles(conf, g, err, errlen) != 0) {
        guard_free(g);
        return NULL;
    }
    return g;
}

static void unconfigure(void *instance) { guard_free(instance); }

static bool role_selected(const guard_t *g, const json_t *message)
{
    if (g->all_roles)
        return true;
    const char *role = json_string_value(json_object_get(message, "role"));
    for (size_t i = 0; i < g->n_roles; i++)
        if (strcmp(g->roles[i], role) == 0)
            return true;
    return false;
}

static bool any_match(const patterns_t *p, const char *text)
{
    for (size_t i = 0; i < p->n; i++)
        if (regexec(&p->re[i], text, 0, NULL, 0) == 0)
            return true;
    return false;
}

typedef enum verdict { PASS, DENIED, NOT_ALLOWED, OUT_OF_MEMORY } verdict_t;

/* Deny patterns over every selected message first, so a denied prompt is
 * reported as denied even when it also fails the allow list. Messages
 * without text (only an image, only tool calls) are not judged. */
static verdict_t judge(const guard_t *g, const json_t *messages)
{
    if (g->deny.n == 0 && g->allow.n == 0)
        return PASS;
    verdict_t v = PASS;
    for (int round = 0; round < 2 && v == PASS; round++) {
        const patterns_t *p = round == 0 ? &g->deny : &g->allow;
        if (p->n == 0)
            continue;
        size_t i;
        const json_t *m;
        json_array_foreach(messages, i, m) {
            if (!role_selected(g, m))
                continue;
            size_t len = 0;
            int oom = 0;
            char *text = prompt_message_text(m, &len, &oom);
            if (oom)
                return OUT_OF_MEMORY;
            if (!text)
                continue;
            bool hit = any_match(p, text);
            free(text);
            if (round == 0 && hit)
                v = DENIED;
            else if (round == 1 && !hit)
                v = NOT_ALLOWED;
            if (v != PASS)
                break;
        }
    }
    return v;
}

/* 1 when a text changed, 0 when none did, -1 when out of memory. */
static int redact_messages(const guard_t *g, json_t *messages)
{
    int changed = 0;
    size_t i;
    json_t *m;
    json_array_foreach(messages, i, m) {
        if (!role_selected(g, m))
            continue;
        int rc = prompt_redact_message(m, g->redact);
        if (rc < 0)
            return -1;
        changed |= rc > 0;
    }
    return changed;
}

static sl_status_t refuse(sl_req_t *r, json_t *root, const char *code, const char *message)
{
    json_decref(root);
    host->respond_error(r, 400, code, message);
    return SL_DONE;
}

static sl_status_t forward_rewritten(sl_req_t *r, json_t *root)
{
    size_t n = 0;
    char *text = chat_json_dump(root, &n);
    json_decref(root);
    if (!text)
        return SL_ERROR;
    int rc = host->upstream_set_body(r, text, n);
    free(text);
    return rc == 0 ? SL_OK : SL_ERROR;
}

static sl_status_t access_phase(void *instance, sl_req_t *r)
{
    const guard_t *g = instance;
    size_t len = 0;
    const char *body = host->req_body(r, &len);
    if (!body)
        return SL_ERROR;
    if (len == 0)   /* no prompt to judge (GET /v1/models and the like) */
        return SL_OK;
    char why[256];
    json_t *root = chat_request_parse(body, len, why, sizeof why);
    if (!root) {
        host->respond_error(r, 400, "invalid_body", why);
        return SL_DONE;
    }
    json_t *messages = json_object_get(root, "messages");
    if (prompt_check_shapes(messages, why, sizeof why) != 0)
        return refuse(r, root, "invalid_body", why);
    if (g->max_chars > 0) {
        size_t chars = prompt_chars(messages);
        if (chars > (unsigned long long)g->max_chars) {
            snprintf(why, sizeof why, "the prompt is %zu characters long; the limit is %lld", chars,
                     g->max_chars);
            return refuse(r, root, "prompt_too_large", why);
        }
    }
    switch (judge(g, messages)) {
    case DENIED:
        return refuse(r, root, "prompt_blocked", "the prompt matches a deny pattern");
    case NOT_ALLOWED:
        return refuse(r, root, "prompt_blocked", "the prompt matches no allow pattern");
    case OUT_OF_MEMORY:
        json_decref(root);
        return SL_ERROR;
    case PASS:
        break;
    }
    int changed = g->redact ? redact_messages(g, messages) : 0;
    if (changed < 0) {
        json_decref(root);
        return SL_ERROR;
    }
    if (changed)
        return forward_rewritten(r, root);
    json_decref(root);
    return SL_OK;
}

#define ROLES "[\"system\", \"developer\", \"user\", \"assistant\", \"tool\", \"function\"]"

static const sl_plugin_desc_t desc = {
    .abi_major = SLUICE_ABI_MAJOR,
    .abi_minor = SLUICE_ABI_MINOR,
    .name = "ai-prompt-guard",
    .version = "1.0.0",
    .phases = SL_PHASE_ACCESS,
    .schema = "{\"fields\": {"
              "\"allow_patterns\": {\"type\": \"array\", \"items\": {\"type\": \"string\", \"min\": 1}},"
              "\"deny_patterns\": {\"type\": \"array\", \"items\": {\"type\": \"string\", \"min\": 1}},"
              "\"ignore_case\": {\"type\": \"boolean\", \"default\": true},"
              "\"roles\": {\"type\": \"array\", \"min\": 1, \"default\": [\"user\"],"
              " \"items\": {\"type\": \"string\", \"enum\": " ROLES "}},"
              "\"match_all_roles\": {\"type\": \"boolean\", \"default\": false},"
              "\"max_prompt_chars\": {\"type\": \"integer\", \"min\": 1},"
              "\"redact\": {\"type\": \"array\","
              " \"items\": {\"type\": \"string\", \"enum\": [\"email\", \"phone\", \"card\"]}}},"
              " \"one_of_required\":"
              " [\"allow_patterns\", \"deny_patterns\", \"max_prompt_chars\", \"redact\"]}",
    .init = init,
    .configure = configure,
    .unconfigure = unconfigure,
    .access = access_phase,
};

__attribute__((visibility("default"))) const sl_plugin_desc_t *SLUICE_PLUGIN_ENTRY(void)
{
    return &desc;
}
