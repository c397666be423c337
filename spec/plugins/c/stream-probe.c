/* A test plugin that answers by streaming another HTTP server's response
 * through host->http_stream / stream_start / stream_write, optionally
 * cancelling it part-way or on a deadline timer. Used by test_plugins_c.py. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/host.h"
#include "sluice/plugin.h"

static const sl_host_t *host;

typedef struct conf {
    char url[256];
    long long cancel_after_bytes;   /* 0 = never */
    long long deadline_ms;          /* 0 = none: cancel the stream when it fires */
} conf_t;

typedef struct call_state {
    conf_t *conf;
    sl_call_t *stream;
    sl_call_t *deadline;
    long long seen;
    int started;
} call_state_t;

static int init(const sl_host_t *h)
{
    host = h;
    return 0;
}

static void *configure(const sl_json_t *conf, char *err, size_t errlen)
{
    conf_t *c = calloc(1, sizeof *c);
    size_t n = 0;
    const char *url = host->json_string(host->json_get(conf, "url"), &n);
    if (!c || !url || n >= sizeof c->url) {
        snprintf(err, errlen, "url is required");
        free(c);
        return NULL;
    }
    memcpy(c->url, url, n);
    const sl_json_t *v = host->json_get(conf, "cancel_after_bytes");
    c->cancel_after_bytes = v ? host->json_integer(v) : 0;
    v = host->json_get(conf, "deadline_ms");
    c->deadline_ms = v ? host->json_integer(v) : 0;
    return c;
}

static void unconfigure(void *instance) { free(instance); }

static void finish(sl_req_t *r, call_state_t *st, const char *tail)
{
    if (st->deadline) {
        host->call_cancel(r, st->deadline);
        st->deadline = NULL;
    }
    if (!st->started) {
        host->respond_error(r, 502, "stream_failed", tail);
        host->resume(r, SL_DONE);
        return;
    }
    host->stream_write(r, tail, strlen(tail));
    host->resume(r, SL_DONE);
}

static void on_head(sl_req_t *r, void *arg, int status, int n, const char *const *headers)
{
    (void)n;
    (void)headers;
    call_state_t *st = arg;
    char v[16];
    int len = snprintf(v, sizeof v, "%d", status);
    host->resp_set_header(r, "X-Upstream-Status", v, (size_t)len);
    host->resp_set_header(r, "Content-Type", "text/plain", 10);
    host->stream_start(r, 200);
    st->started = 1;
}

static void on_data(sl_req_t *r, void *arg, const char *data, size_t len)
{
    call_state_t *st = arg;
    host->stream_write(r, data, len);
    st->seen += (long long)len;
    if (st->conf->cancel_after_bytes && st->seen >= st->conf->cancel_after_bytes) {
        host->call_cancel(r, st->stream);
        st->stream = NULL;
        finish(r, st, "[cancelled]");
    }
}

static void on_end(sl_req_t *r, void *arg, const char *error)
{
    call_state_t *st = arg;
    st->stream = NULL;
    char tail[128];
    snprintf(tail, sizeof tail, "[end: %s]", error ? error : "ok");
    finish(r, st, tail);
}

static void on_deadline(sl_req_t *r, void *arg)
{
    call_state_t *st = arg;
    st->deadline = NULL;
    if (st->stream) {
        host->call_cancel(r, st->stream);
        st->stream = NULL;
    }
    finish(r, st, "[deadline]");
}

static const sl_http_stream_handlers_t handlers = { on_head, on_data, on_end };

static sl_status_t access_phase(void *instance, sl_req_t *r)
{
    call_state_t *st = host->req_alloc(r, sizeof *st);
    st->conf = instance;
    sl_http_request_spec_t spec = { .method = "GET", .url = st->conf->url, .timeout_ms = 2000 };
    st->stream = host->http_stream(r, &spec, 2000, &handlers, st);
    if (!st->stream)
        return SL_ERROR;
    if (st->conf->deadline_ms > 0)
        st->deadline = host->timer(r, (uint64_t)st->conf->deadline_ms, on_deadline, st);
    return SL_YIELD;
}

static const sl_plugin_desc_t desc = {
    .abi_major = SLUICE_ABI_MAJOR,
    .abi_minor = SLUICE_ABI_MINOR,
    .name = "stream-probe",
    .version = "0.0.1",
    .phases = SL_PHASE_ACCESS,
    .schema = "{\"fields\": {\"url\": {\"type\": \"string\", \"required\": true},"
              "\"cancel_after_bytes\": {\"type\": \"integer\", \"min\": 0},"
              "\"deadline_ms\": {\"type\": \"integer\", \"min\": 0}}}",
    .init = init,
    .configure = configure,
    .unconfigure = unconfigure,
    .access = access_phase,
};

__attribute__((visibility("default"))) const sl_plugin_desc_t *SLUICE_PLUGIN_ENTRY(void)
{
    return &desc;
}
