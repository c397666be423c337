/* One request's way through a model's targets.
 *
 * Every attempt is a streamed HTTP call (or, for the built-in mock, a timer
 * that plays the same three callbacks), so there is one code path for all
 * providers: head, body pieces, end. A first-token deadline runs beside it.
 * A failure decides between the same target again (the next api key after
 * a 429, or after the wait a provider asked for, up to retry_after_cap), the
 * next target, or an answer to the client.
 *
 * Streams: the translated output is held back until it carries real
 * content. Until then nothing has been sent, so any failure (no head, an
 * error status, a dropped connection, an error event, a deadline) moves on
 * to the next target and the client sees one clean stream. After it, a
 * failure ends the stream with an OpenAI error chunk and data: [DONE].
 *
 * Ownership rule for the handles: a callback's own handle is gone once the
 * callback runs, so each callback clears its pointer first; cancelling a
 * handle that already finished would otherwise hit whatever the host
 * allocated in its place. And finish() -- the host's resume() -- may free
 * the request and this state with it, so it is always the very last thing
 * a code path does; internal steps return false once the attempt is over so
 * their callers stop touching the state. */
#include "aip_exchange.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aip_buf.h"
#include "aip_health.h"
#include "aip_host.h"
#include "aip_mock.h"
#include "aip_retry.h"
#include "aip_select.h"
#include "translate.h"

#define BODY_LIMIT ((size_t)16 << 20)
#define ERROR_BODY_LIMIT ((size_t)64 << 10)
/* Before the first content only preamble events arrive; more than this
 * means the provider is not streaming anything useful. */
#define HELD_LIMIT ((size_t)1 << 20)
/* The first-token timer below is the deadline that counts; the HTTP call's
 * own head timeout only backs it up. */
#define HEAD_TIMEOUT_SLACK_MS 1000

typedef struct aip_ex {
    sl_req_t *r;
    const aip_conf_t *conf;
    const aip_model_t *model;
    aip_op_t op;
    json_t *req;                 /* NULL until a target needs it parsed (see serve in ai-proxy.c) */
    const char *raw;             /* the client's body (request memory) */
    size_t raw_len;
    ai_chat_scan_t scan;         /* valid when has_scan */
    bool has_scan;
    bool stream;
    char id[48];
    long created;

    int order[AIP_MAX_TARGETS];
    int n_order, next;
    int skipped_open;
    int started;                 /* attempts that reached a provider (or the mock) */
    char refused[320];           /* why the last target could not take the request */

    /* the current attempt */
    const aip_target_t *t;
    int key, keys_tried;
    bool waited;
    aip_upreq_t up;
    sl_call_t *call, *deadline, *pause;
    int64_t t0_ms, ttfb_ms;
    int status;                  /* of the head; 0 before it */
    int64_t hint_ms;             /* the wait the provider asked for, -1 none */
    aip_buf_t in;                /* a JSON body, or an error body */
    ai_stream_t *xl;
    aip_buf_t held;
    bool committed;

    /* the last failure, for the answer when no target is left */
    const aip_target_t *fail_target;
    int fail_status;             /* 0: no HTTP status (transport, deadline, broken stream) */
    bool fail_timeout;
    json_t *fail_body;           /* OpenAI-shaped error for fail_status */
    char fail_reason[160];

    bool in_access, answered_in_access;
} aip_ex_t;

static const sl_host_t *H(void) { return aip_host; }

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void cleanup(void *arg)
{
    aip_ex_t *x = arg;
    json_decref(x->req);
    json_decref(x->fail_body);
    aip_upreq_free(&x->up);
    ai_stream_free(x->xl);
    aip_buf_free(&x->in);
    aip_buf_free(&x->held);
}

/* ---- ending ------------------------------------------------------------------ */

static void stop_calls(aip_ex_t *x)
{
    if (x->call)
        H()->call_cancel(x->r, x->call);
    if (x->deadline)
        H()->call_cancel(x->r, x->deadline);
    if (x->pause)
        H()->call_cancel(x->r, x->pause);
    x->call = x->deadline = x->pause = NULL;
}

/* The last thing any path does (see the top of the file). */
static void finish(aip_ex_t *x)
{
    stop_calls(x);
    if (x->in_access)
        x->answered_in_access = true;
    else
        H()->resume(x->r, SL_DONE);
}

static void set_ctx_str(aip_ex_t *x, const char *key, const char *value)
{
    H()->ctx_set(x->r, key, value, strlen(value));
}

/* Decimal without printf: three of these per answered request. */
static void set_ctx_num(aip_ex_t *x, const char *key, long v)
{
    char buf[24], *w = buf + sizeof buf;
    unsigned long u = v < 0 ? 0UL - (unsigned long)v : (unsigned long)v;
    do {
        *--w = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--w = '-';
    H()->ctx_set(x->r, key, w, (size_t)(buf + sizeof buf - w));
}

/* Who answered: for the client's headers and for later plugins. */
static void mark_target(aip_ex_t *x, const aip_target_t *t)
{
    H()->resp_set_header(x->r, "X-Sluice-Provider", t->provider_name, strlen(t->provider_name));
    H()->resp_set_header(x->r, "X-Sluice-Model", t->model, strlen(t->model));
    set_ctx_str(x, "ai.provider", t->provider_name);
    set_ctx_str(x, "ai.model", t->model);
}

static void set_usage(aip_ex_t *x, const ai_usage_t *u)
{
    if (!u->present)
        return;
    set_ctx_num(x, "ai.usage.prompt_tokens", u->prompt);
    set_ctx_num(x, "ai.usage.completion_tokens", u->completion);
    set_ctx_num(x, "ai.usage.cached_tokens", u->cached);
}

/* Provider messages go to the client, so no configured key may appear in
 * them; and a 401/403 is about the gateway's own credentials, which the
 * client cannot act on, so its message (OpenAI echoes part of the key)
 * is replaced. */
static void scrub_error(json_t *body, const aip_target_t *t, int status)
{
    json_t *e = json_object_get(body, "error");
    const char *msg = json_string_value(json_object_get(e, "message"));
    if (!msg)
        return;
    if (status == 401 || status == 403) {
        char m[200];
        snprintf(m, sizeof m, "provider %s refused the gateway's credentials for model %s (HTTP %d)",
                 t->provider_name, t->model, status);
        json_object_set_new(e, "message", json_string(m));
        return;
    }
    for (int i = 0; i < t->n_keys; i++) {
        if (strstr(msg, t->keys[i])) {
            char m[200];
            snprintf(m, sizeof m, "provider %s returned HTTP %d", t->provider_name, status);
            json_object_set_new(e, "message", json_string(m));
            return;
        }
    }
}

static void answer_provider_error(aip_ex_t *x)
{
    const aip_target_t *t = x->fail_target;
    scrub_error(x->fail_body, t, x->fail_status);
    char *body = json_dumps(x->fail_body, JSON_COMPACT);
    mark_target(x, t);
    if (body) {
        H()->respond(x->r, aip_client_status(x->fail_status), "application/json", body, strlen(body));
        free(body);
    } else {
        H()->respond_error(x->r, 502, "provider_error", "the provider's error could not be relayed");
    }
    finish(x);
}

/* No target is left: answer with the last failure. */
static void give_up(aip_ex_t *x)
{
    char msg[512];
    if (x->started > 0 && x->fail_status > 0 && x->fail_body) {
        answer_provider_error(x);
        return;
    }
    if (x->started > 0) {
        snprintf(msg, sizeof msg, "no provider of model \"%s\" answered (last: %s)", x->model->alias,
                 x->fail_reason);
        H()->respond_error(x->r, x->fail_timeout ? 504 : 502, x->fail_timeout ? "provider_timeout"
                                                                             : "provider_unavailable", msg);
    } else if (x->skipped_open > 0) {
        snprintf(msg, sizeof msg, "every provider of model \"%s\" is failing; try again later", x->model->alias);
        H()->respond_error(x->r, 503, "no_available_provider", msg);
    } else {
        snprintf(msg, sizeof msg, "model \"%s\" cannot serve this request: %s", x->model->alias, x->refused);
        H()->respond_error(x->r, 400, "unsupported_request", msg);
    }
    finish(x);
}

/* ---- attempts ---------------------------------------------------------------- */

static void emit(void *arg, const char *data, size_t len);
static void on_head(sl_req_t *r, void *arg, int status, int n, const char *const *headers);
static void on_data(sl_req_t *r, void *arg, const char *data, size_t len);
static void on_end(sl_req_t *r, void *arg, const char *error);
static void on_deadline(sl_req_t *r, void *arg);
static void on_mock(sl_req_t *r, void *arg);
static void on_pause(sl_req_t *r, void *arg);
static bool start_attempt(aip_ex_t *x);
static void next_target(aip_ex_t *x);

static const sl_http_stream_handlers_t handlers = {on_head, on_data, on_end};

/* Frees what one attempt used; the failure record and the target stay. */
static void end_attempt(aip_ex_t *x)
{
    stop_calls(x);
    aip_upreq_free(&x->up);
    ai_stream_free(x->xl);
    x->xl = NULL;
    aip_buf_reset(&x->in);
    aip_buf_reset(&x->held);
}

/* A wait hint within the cap is honoured once per target and request; a
 * cap of 0 never waits. */
static bool may_wait(const aip_ex_t *x)
{
    return x->hint_ms >= 0 && x->hint_ms <= x->conf->retry_after_cap_ms && x->conf->retry_after_cap_ms > 0 &&
           !x->waited;
}

static const char *next_step_text(aip_ex_t *x, int status)
{
    const aip_target_t *t = x->t;
    if (status == 429 && t->n_keys > 1 && x->keys_tried < t->n_keys)
        return "retrying with the next key";
    if (may_wait(x))
        return "retrying after the wait it asked for";
    return x->next < x->n_order ? "trying the next target" : "no target left";
}

/* The attempt failed. status: the provider's HTTP status, 0 for anything
 * else; body: its error in OpenAI shape (stolen), NULL for status 0. */
static void fail(aip_ex_t *x, int status, json_t *body, bool retryable, bool timeout, const char *reason)
{
    const aip_target_t *t = x->t;
    /* reason may live in the attempt's translator, freed just below. */
    snprintf(x->fail_reason, sizeof x->fail_reason, "%s", reason);
    reason = x->fail_reason;
    end_attempt(x);
    json_decref(x->fail_body);
    x->fail_body = body;
    x->fail_target = t;
    x->fail_status = status;
    x->fail_timeout = timeout;
    if (!retryable) {
        /* Worth an operator's eye: a 401 here means a bad configured key. */
        H()->log(SL_LOG_LEVEL_WARN, "ai-proxy: model \"%s\": %s %s answered HTTP %d; not retried", x->model->alias,
                 t->provider_name, t->model, status);
        answer_provider_error(x);
        return;
    }
    H()->log(SL_LOG_LEVEL_WARN, "ai-proxy: model \"%s\": %s %s failed (%s); %s", x->model->alias,
             t->provider_name, t->model, reason, next_step_text(x, status));
    /* A rate limit says nothing about the target's health. */
    if (status != 429)
        aip_breaker_failure(x->conf, t);
    if (status == 429 && t->n_keys > 1 && x->keys_tried < t->n_keys) {
        aip_key_rotate(t, x->key);
        x->key = (x->key + 1) % t->n_keys;
        x->keys_tried++;
        if (!start_attempt(x))
            next_target(x);
        return;
    }
    if (may_wait(x)) {
        x->waited = true;
        x->pause = H()->timer(x->r, (uint64_t)x->hint_ms, on_pause, x);
        if (x->pause)
            return;
    }
    next_target(x);
}

static void next_target(aip_ex_t *x)
{
    while (x->next < x->n_order) {
        x->t = &x->model->targets[x->order[x->next++]];
        x->key = aip_key_current(x->t);
        x->keys_tried = 1;
        x->waited = false;
        if (start_attempt(x))
            return;
    }
    give_up(x);
}

/* false when the target could not even be called (the reason is recorded). */
static bool start_attempt(aip_ex_t *x)
{
    const aip_target_t *t = x->t;
    char err[200];
    end_attempt(x);
    x->status = 0;
    x->hint_ms = -1;
    x->ttfb_ms = -1;
    x->in.limit = BODY_LIMIT;
    x->held.limit = HELD_LIMIT;
    int built = aip_upreq_build(&x->up, x->conf, t, x->key, x->op, x->req, x->has_scan ? &x->scan : NULL,
                                x->raw, x->raw_len, x->stream, err, sizeof err);
    if (built == AIP_UPREQ_NEEDS_JSON) {
        /* Parsed only now: an OpenAI-format target never needs the tree. */
        x->req = json_loadb(x->raw, x->raw_len, 0, NULL);
        if (x->req)
            built = aip_upreq_build(&x->up, x->conf, t, x->key, x->op, x->req, x->has_scan ? &x->scan : NULL,
                                    x->raw, x->raw_len, x->stream, err, sizeof err);
        else
            snprintf(err, sizeof err, "the request body is not JSON this provider's translation can read");
    }
    if (built != 0) {
        snprintf(x->refused, sizeof x->refused, "%s %s: %s", t->provider_name, t->model, err);
        return false;
    }
    x->t0_ms = now_ms();
    int64_t deadline = x->conf->connect_ms + x->conf->first_token_ms;
    if (t->provider == AIP_MOCK) {
        x->call = H()->timer(x->r, (uint64_t)x->conf->mock_latency_ms, on_mock, x);
    } else {
        sl_http_request_spec_t spec = {
            .method = "POST", .url = x->up.url, .headers = x->up.headers, .body = x->up.body,
            .body_len = x->up.body_len, .timeout_ms = deadline + HEAD_TIMEOUT_SLACK_MS,
        };
        x->call = H()->http_stream(x->r, &spec, x->conf->idle_ms, &handlers, x);
    }
    if (!x->call) {
        x->started++;
        x->fail_target = t;
        x->fail_status = 0;
        x->fail_timeout = false;
        snprintf(x->fail_reason, sizeof x->fail_reason, "the call could not be started");
        aip_upreq_free(&x->up);
        return false;
    }
    x->started++;
    x->deadline = H()->timer(x->r, (uint64_t)deadline, on_deadline, x);
    return true;
}

/* ---- answers ------------------------------------------------------------------ */

static void record_success(aip_ex_t *x)
{
    aip_breaker_success(x->t);
    if (x->ttfb_ms >= 0)
        aip_latency_record(x->t, x->ttfb_ms);
}

static void commit_stream(aip_ex_t *x)
{
    if (x->deadline) {
        H()->call_cancel(x->r, x->deadline);
        x->deadline = NULL;
    }
    x->ttfb_ms = now_ms() - x->t0_ms;
    mark_target(x, x->t);
    H()->resp_set_header(x->r, "Content-Type", "text/event-stream", 17);
    H()->resp_set_header(x->r, "Cache-Control", "no-cache", 8);
    H()->stream_start(x->r, 200);
    x->committed = true;
    if (x->held.len)
        H()->stream_write(x->r, x->held.p, x->held.len);
    aip_buf_reset(&x->held);
}

static void stream_usage(aip_ex_t *x)
{
    ai_usage_t u;
    ai_stream_usage(x->xl, &u);
    set_usage(x, &u);
}

/* The stream cannot go on. Before content: the next target, unseen. After:
 * an error chunk and [DONE], never a torn event. */
static void stream_broken(aip_ex_t *x, const char *message, const char *type, bool timeout)
{
    if (!x->committed) {
        fail(x, 0, NULL, true, timeout, message);
        return;
    }
    if (x->call) {
        H()->call_cancel(x->r, x->call);
        x->call = NULL;
    }
    H()->log(SL_LOG_LEVEL_WARN, "ai-proxy: model \"%s\": %s %s stream broke after content (%s)", x->model->alias,
             x->t->provider_name, x->t->model, timeout ? "timeout" : "error");
    ai_stream_emit_error(x->xl, message, type);
    stream_usage(x);
    aip_breaker_failure(x->conf, x->t);
    finish(x);
}

static void emit(void *arg, const char *data, size_t len)
{
    aip_ex_t *x = arg;
    if (x->committed)
        H()->stream_write(x->r, data, len);
    else
        aip_buf_add(&x->held, data, len);
}

/* An OpenAI-format answer goes back byte for byte (fields this gateway
 * does not know about reach the client unchanged), so it is only checked
 * and read for usage in place: a jansson tree of it cost more than the rest
 * of the request. */
static void complete_openai(aip_ex_t *x)
{
    static const char *const usage_key[] = {"usage"};
    js_span_t body, usage;
    if (!js_validate_members(x->in.p, x->in.len, &body, usage_key, 1, &usage, NULL) || js_kind(body) != '{') {
        fail(x, 0, NULL, true, false, "the provider's response is not a JSON object");
        return;
    }
    ai_usage_t u = {0};
    ai_openai_usage_from_span(usage, &u);
    record_success(x);
    mark_target(x, x->t);
    set_usage(x, &u);
    H()->respond(x->r, 200, "application/json", x->in.p, x->in.len);
    finish(x);
}

/* A whole JSON body arrived with 200. */
static void complete_json(aip_ex_t *x)
{
    const aip_target_t *t = x->t;
    if (t->provider != AIP_ANTHROPIC && t->provider != AIP_GEMINI) {
        complete_openai(x);
        return;
    }
    json_t *body = json_loadb(x->in.p ? x->in.p : "", x->in.len, 0, NULL);
    if (!json_is_object(body)) {
        json_decref(body);
        fail(x, 0, NULL, true, false, "the provider's response is not a JSON object");
        return;
    }
    ai_usage_t u = {0};
    ai_usage_extract(t->wire, body, &u);
    json_t *out = NULL;
    if (x->op == AIP_OP_CHAT && t->provider == AIP_ANTHROPIC)
        out = ai_from_anthropic_response(body, x->model->alias, x->created);
    else if (x->op == AIP_OP_CHAT && t->provider == AIP_GEMINI)
        out = ai_from_gemini_response(body, x->model->alias, x->created, x->id);
    json_decref(body);
    char *text = NULL;
    if (out) {
        text = json_dumps(out, JSON_COMPACT);
        json_decref(out);
        if (!text) {
            fail(x, 0, NULL, true, false, "out of memory translating the response");
            return;
        }
    } else if (t->provider == AIP_ANTHROPIC || (t->provider == AIP_GEMINI && x->op == AIP_OP_CHAT)) {
        fail(x, 0, NULL, true, false, "the provider's response could not be translated");
        return;
    }
    record_success(x);
    mark_target(x, t);
    set_usage(x, &u);
    /* A Gemini embeddings answer is not translated: it goes back as it came. */
    if (text) {
        H()->respond(x->r, 200, "application/json", text, strlen(text));
        free(text);
    } else {
        H()->respond(x->r, 200, "application/json", x->in.p, x->in.len);
    }
    finish(x);
}

/* ---- callbacks ------------------------------------------------------------------ */

/* Each returns false once the attempt is over (failed over or answered). */

static bool head(aip_ex_t *x, int status, int n, const char *const *headers)
{
    /* Any 2xx is an answer; the client gets 200 like from OpenAI itself. */
    if (status >= 200 && status < 300)
        status = 200;
    x->status = status;
    x->hint_ms = aip_retry_hint_ms(n, headers, time(NULL));
    if (status == 200 && x->stream && x->op == AIP_OP_CHAT) {
        x->xl = ai_stream_new(x->t->wire, x->model->alias, x->id, x->created, x->up.client_wants_usage, emit, x);
        if (!x->xl) {
            fail(x, 0, NULL, true, false, "out of memory");
            return false;
        }
        return true;
    }
    /* Without a stream the head is the first token; an error body follows
     * at once. Either way the idle timeout covers the rest. */
    if (x->deadline) {
        H()->call_cancel(x->r, x->deadline);
        x->deadline = NULL;
    }
    if (status == 200)
        x->ttfb_ms = now_ms() - x->t0_ms;
    else
        x->in.limit = ERROR_BODY_LIMIT;
    return true;
}

static bool data(aip_ex_t *x, const char *bytes, size_t len)
{
    if (!x->xl) {
        if (aip_buf_add(&x->in, bytes, len) != 0 && x->status == 200) {
            fail(x, 0, NULL, true, false, "the provider's response is too large");
            return false;
        }
        /* An oversized error body is only cut: its head already said enough. */
        return true;
    }
    int rc = ai_stream_feed(x->xl, bytes, len);
    if (rc != 0 || x->held.over) {
        stream_broken(x, rc != 0 ? "the provider sent a malformed stream" : "the provider sent no content",
                      "server_error", false);
        return false;
    }
    if (ai_stream_error(x->xl)) {
        stream_broken(x, ai_stream_error(x->xl), ai_stream_error_type(x->xl), false);
        return false;
    }
    if (!x->committed && ai_stream_has_content(x->xl))
        commit_stream(x);
    return true;
}

static void end(aip_ex_t *x, const char *error)
{
    char reason[160];
    if (x->status == 0) {
        bool timeout = error && strcmp(error, "timeout") == 0;
        if (timeout)
            snprintf(reason, sizeof reason, "no first token within %lld ms",
                     (long long)(x->conf->connect_ms + x->conf->first_token_ms));
        else
            snprintf(reason, sizeof reason, "%s", error ? error : "no response");
        fail(x, 0, NULL, true, timeout, reason);
        return;
    }
    if (x->xl) {
        if (!error && ai_stream_finish(x->xl) == 0) {
            if (!x->committed)
                commit_stream(x);
            record_success(x);
            stream_usage(x);
            finish(x);
            return;
        }
        if (ai_stream_error(x->xl)) {
            stream_broken(x, ai_stream_error(x->xl), ai_stream_error_type(x->xl), false);
            return;
        }
        snprintf(reason, sizeof reason, "the provider's stream ended early (%s)", error ? error : "incomplete");
        stream_broken(x, reason, error && strcmp(error, "timeout") == 0 ? "timeout_error" : "server_error",
                      error && strcmp(error, "timeout") == 0);
        return;
    }
    if (x->status != 200) {
        json_t *body = x->in.len ? json_loadb(x->in.p, x->in.len, 0, NULL) : NULL;
        bool retryable = aip_status_retryable(x->status, body);
        json_t *err = ai_error_to_openai(x->t->wire, x->status, body);
        json_decref(body);
        snprintf(reason, sizeof reason, "HTTP %d", x->status);
        fail(x, x->status, err, retryable, false, reason);
        return;
    }
    if (error) {
        snprintf(reason, sizeof reason, "the response was cut short (%s)", error);
        fail(x, 0, NULL, true, strcmp(error, "timeout") == 0, reason);
        return;
    }
    complete_json(x);
}

static void on_head(sl_req_t *r, void *arg, int status, int n, const char *const *headers)
{
    (void)r;
    head(arg, status, n, headers);
}

static void on_data(sl_req_t *r, void *arg, const char *bytes, size_t len)
{
    (void)r;
    data(arg, bytes, len);
}

static void on_end(sl_req_t *r, void *arg, const char *error)
{
    (void)r;
    aip_ex_t *x = arg;
    x->call = NULL;
    end(x, error);
}

static void on_deadline(sl_req_t *r, void *arg)
{
    (void)r;
    aip_ex_t *x = arg;
    x->deadline = NULL;
    if (x->xl && x->committed)
        return;
    char reason[64];
    snprintf(reason, sizeof reason, "no first token within %lld ms",
             (long long)(x->conf->connect_ms + x->conf->first_token_ms));
    fail(x, 0, NULL, true, true, reason);
}

/* The mock provider: an OpenAI-format upstream played through the same
 * callbacks. */
static void play_mock(aip_ex_t *x)
{
    static const char *const json_head[] = {"Content-Type", "application/json", NULL};
    static const char *const sse_head[] = {"Content-Type", "text/event-stream", NULL};
    const aip_conf_t *c = x->conf;
    const json_t *req = x->up.json;
    const char *model = x->t->model;
    char *body = NULL;
    size_t len = 0;
    int status = 200;
    bool sse = false;
    if (x->op == AIP_OP_EMBED) {
        char err[200];
        json_t *out = aip_mock_embeddings(req, model, err, sizeof err);
        if (!out) {
            status = 400;
            out = json_pack("{s:{s:s,s:s,s:n,s:n}}", "error", "message", err, "type", "invalid_request_error",
                            "param", "code");
        }
        body = out ? json_dumps(out, JSON_COMPACT) : NULL;
        json_decref(out);
        len = body ? strlen(body) : 0;
    } else {
        char *reply = aip_mock_reply(req, c->mock_reply);
        if (reply && x->stream) {
            sse = true;
            body = aip_mock_stream(req, model, x->id, x->created, reply, c->mock_chunk_words, &len);
        } else if (reply) {
            json_t *out = aip_mock_completion(req, model, x->id, x->created, reply);
            body = out ? json_dumps(out, JSON_COMPACT) : NULL;
            json_decref(out);
            len = body ? strlen(body) : 0;
        }
        free(reply);
    }
    if (!body) {
        end(x, "out of memory");
        return;
    }
    if (head(x, status, 1, sse ? sse_head : json_head) && data(x, body, len))
        end(x, NULL);
    free(body);
}

static void on_mock(sl_req_t *r, void *arg)
{
    (void)r;
    aip_ex_t *x = arg;
    x->call = NULL;
    play_mock(x);
}

/* The wait a provider asked for is over: the same target again. */
static void on_pause(sl_req_t *r, void *arg)
{
    (void)r;
    aip_ex_t *x = arg;
    x->pause = NULL;
    if (!start_attempt(x))
        next_target(x);
}

/* ---- start ---------------------------------------------------------------------- */

sl_status_t aip_exchange_start(sl_req_t *r, const aip_conf_t *c, const aip_model_t *m, aip_op_t op, json_t *req,
                               const ai_chat_scan_t *scan, const char *raw, size_t raw_len, bool stream)
{
    aip_ex_t *x = H()->req_alloc(r, sizeof *x);
    if (!x || H()->req_cleanup(r, cleanup, x) != 0) {
        json_decref(req);
        return SL_ERROR;
    }
    x->r = r;
    x->conf = c;
    x->model = m;
    x->op = op;
    x->req = req;
    x->raw = raw;
    x->raw_len = raw_len;
    if (scan) {
        x->scan = *scan;
        x->has_scan = true;
    }
    x->stream = op == AIP_OP_CHAT && stream;
    const char *rid = H()->req_id(r);
    snprintf(x->id, sizeof x->id, "chatcmpl-%s", rid ? rid : "0");
    x->created = (long)time(NULL);
    H()->ctx_set(r, "ai.alias", m->alias, strlen(m->alias));
    x->n_order = aip_order(m, x->order, &x->skipped_open);
    x->in_access = true;
    next_target(x);
    x->in_access = false;
    return x->answered_in_access ? SL_DONE : SL_YIELD;
}
