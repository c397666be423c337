/* A test plugin whose behaviour in each phase is chosen by its config, built
 * several times under different names (PROBE_NAME) so one chain can hold
 * several of them. Used by spec/integration/test_plugins_c.py. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/host.h"
#include "sluice/plugin.h"

#ifndef PROBE_NAME
#define PROBE_NAME "probe"
#endif
#ifndef PROBE_ABI_MAJOR
#define PROBE_ABI_MAJOR SLUICE_ABI_MAJOR
#endif

static const sl_host_t *host;

typedef struct probe {
    char tag[32];
    char answer_in[16];     /* rewrite | access | "" */
    int answer_status;
    char fail_in[16];       /* rewrite | access | "" */
    long long yield_ms;     /* sleep in access first */
    int mark_response;      /* header_filter adds X-Probe-<tag> */
    int upper_body;         /* body_filter uppercases */
    char append_body[64];   /* body_filter appends at the end */
    char log_file[256];     /* log phase appends "<tag> <status>\n" */
    int set_ctx;            /* rewrite: ctx "from-<tag>" = tag */
    char read_ctx[32];      /* access: copy ctx key to upstream header X-Ctx */
    char set_target[128];   /* rewrite: new upstream target */
    char set_body[128];     /* rewrite: new upstream body */
} probe_t;

static int init(const sl_host_t *h)
{
    host = h;
    return 0;
}

static void str_field(const sl_json_t *conf, const char *key, char *out, size_t cap)
{
    size_t n = 0;
    const char *v = host->json_string(host->json_get(conf, key), &n);
    if (v && n < cap) {
        memcpy(out, v, n);
        out[n] = '\0';
    }
}

static long long int_field(const sl_json_t *conf, const char *key)
{
    const sl_json_t *v = host->json_get(conf, key);
    if (!v)
        return 0;
    if (host->json_type(v) == SL_JSON_BOOL)
        return host->json_bool(v);
    return host->json_integer(v);
}

static void *configure(const sl_json_t *conf, char *err, size_t errlen)
{
    probe_t *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    str_field(conf, "tag", p->tag, sizeof p->tag);
    str_field(conf, "answer_in", p->answer_in, sizeof p->answer_in);
    p->answer_status = (int)int_field(conf, "answer_status");
    str_field(conf, "fail_in", p->fail_in, sizeof p->fail_in);
    p->yield_ms = int_field(conf, "yield_ms");
    p->mark_response = (int)int_field(conf, "mark_response");
    p->upper_body = (int)int_field(conf, "upper_body");
    str_field(conf, "append_body", p->append_body, sizeof p->append_body);
    str_field(conf, "log_file", p->log_file, sizeof p->log_file);
    p->set_ctx = (int)int_field(conf, "set_ctx");
    str_field(conf, "read_ctx", p->read_ctx, sizeof p->read_ctx);
    str_field(conf, "set_target", p->set_target, sizeof p->set_target);
    str_field(conf, "set_body", p->set_body, sizeof p->set_body);
    if (strcmp(p->tag, "reject-me") == 0) {
        snprintf(err, errlen, "tag \"reject-me\" is refused by configure()");
        free(p);
        return NULL;
    }
    return p;
}

static void unconfigure(void *instance) { free(instance); }

/* Appends this probe's tag to the X-Chain header the upstream gets. */
static void record_order(probe_t *p, sl_req_t *r, const char *phase)
{
    size_t n = 0;
    const char *prev = host->ctx_get(r, "chain", &n);
    char buf[512];
    int len = snprintf(buf, sizeof buf, "%.*s%s%s:%s", (int)n, prev ? prev : "", prev ? "," : "",
                       p->tag, phase);
    host->ctx_set(r, "chain", buf, (size_t)len);
    host->upstream_set_header(r, "X-Chain", buf, (size_t)len);
}

static sl_status_t maybe_answer(probe_t *p, sl_req_t *r, const char *phase)
{
    if (strcmp(p->fail_in, phase) == 0)
        return SL_ERROR;
    if (strcmp(p->answer_in, phase) == 0) {
        char body[128];
        int n = snprintf(body, sizeof body, "answered by %s in %s", p->tag, phase);
        host->respond(r, p->answer_status ? p->answer_status : 200, "text/plain", body, (size_t)n);
        return SL_DONE;
    }
    return SL_OK;
}

static sl_status_t rewrite(void *instance, sl_req_t *r)
{
    probe_t *p = instance;
    record_order(p, r, "rewrite");
    if (p->set_ctx) {
        char key[64];
        snprintf(key, sizeof key, "from-%s", p->tag);
        host->ctx_set(r, key, p->tag, strlen(p->tag));
    }
    if (p->set_target[0])
        host->upstream_set_target(r, p->set_target, strlen(p->set_target));
    if (p->set_body[0])
        host->upstream_set_body(r, p->set_body, strlen(p->set_body));
    return maybe_answer(p, r, "rewrite");
}

static void after_sleep(sl_req_t *r, void *arg)
{
    probe_t *p = arg;
    record_order(p, r, "slept");
    host->resume(r, maybe_answer(p, r, "access"));
}

static sl_status_t access_phase(void *instance, sl_req_t *r)
{
    probe_t *p = instance;
    record_order(p, r, "access");
    if (p->read_ctx[0]) {
        size_t n = 0;
        const char *v = host->ctx_get(r, p->read_ctx, &n);
        host->upstream_set_header(r, "X-Ctx", v ? v : "(none)", v ? n : 6);
    }
    if (p->yield_ms > 0) {
        if (host->sleep(r, (uint64_t)p->yield_ms, after_sleep, p) != 0)
            return SL_ERROR;
        return SL_YIELD;
    }
    return maybe_answer(p, r, "access");
}

static sl_status_t header_filter(void *instance, sl_req_t *r)
{
    probe_t *p = instance;
    if (p->mark_response) {
        char name[64];
        snprintf(name, sizeof name, "X-Probe-%s", p->tag);
        char value[32];
        int n = snprintf(value, sizeof value, "status=%d", host->resp_status(r));
        host->resp_set_header(r, name, value, (size_t)n);
    }
    return SL_OK;
}

static sl_status_t body_filter(void *instance, sl_req_t *r, sl_body_chunk_t *chunk)
{
    probe_t *p = instance;
    if (p->upper_body && chunk->len > 0) {
        char *up = host->req_alloc(r, chunk->len);
        for (size_t i = 0; i < chunk->len; i++) {
            char c = chunk->data[i];
            up[i] = (c >= 'a' && c <= 'z') ? (char)(c - 32) : c;
        }
        host->body_replace(r, chunk, up, chunk->len);
    }
    if (p->append_body[0] && chunk->last) {
        size_t n = strlen(p->append_body);
        char *joined = host->req_alloc(r, chunk->len + n);
        memcpy(joined, chunk->data, chunk->len);
        memcpy(joined + chunk->len, p->append_body, n);
        host->body_replace(r, chunk, joined, chunk->len + n);
    }
    return SL_OK;
}

static void log_phase(void *instance, sl_req_t *r)
{
    probe_t *p = instance;
    if (!p->log_file[0])
        return;
    FILE *f = fopen(p->log_file, "a");
    if (f) {
        fprintf(f, "%s %d\n", p->tag, host->resp_status(r));
        fclose(f);
    }
}

static const sl_plugin_desc_t desc = {
    .abi_major = PROBE_ABI_MAJOR,
    .abi_minor = SLUICE_ABI_MINOR,
    .name = PROBE_NAME,
    .version = "0.0.1",
    .phases = SL_PHASE_REWRITE | SL_PHASE_ACCESS | SL_PHASE_HEADER_FILTER | SL_PHASE_BODY_FILTER |
              SL_PHASE_LOG,
    .schema = "{\"fields\": {"
              "\"tag\": {\"type\": \"string\", \"required\": true},"
              "\"answer_in\": {\"type\": \"string\", \"enum\": [\"rewrite\", \"access\"]},"
              "\"answer_status\": {\"type\": \"integer\", \"min\": 200, \"max\": 599},"
              "\"fail_in\": {\"type\": \"string\", \"enum\": [\"rewrite\", \"access\"]},"
              "\"yield_ms\": {\"type\": \"integer\", \"min\": 0},"
              "\"mark_response\": {\"type\": \"boolean\"},"
              "\"upper_body\": {\"type\": \"boolean\"},"
              "\"append_body\": {\"type\": \"string\"},"
              "\"log_file\": {\"type\": \"string\"},"
              "\"set_ctx\": {\"type\": \"boolean\"},"
              "\"read_ctx\": {\"type\": \"string\"},"
              "\"set_target\": {\"type\": \"string\"},"
              "\"set_body\": {\"type\": \"string\"}}}",
    .provides = "probe-ctx",
    .init = init,
    .configure = configure,
    .unconfigure = unconfigure,
    .rewrite = rewrite,
    .access = access_phase,
    .header_filter = header_filter,
    .body_filter = body_filter,
    .log = log_phase,
};

__attribute__((visibility("default"))) const sl_plugin_desc_t *SLUICE_PLUGIN_ENTRY(void)
{
    return &desc;
}
