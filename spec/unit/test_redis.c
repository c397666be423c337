/* The async Redis client against a real redis-server (see redis_server.h). */
#include <event2/event.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "clock.h"
#include "redis.h"
#include "redis_server.h"

/* ---- capturing the module's log ----------------------------------------------- */

static char log_path[64];
static int saved_stderr = -1;

static void log_capture_start(void)
{
    snprintf(log_path, sizeof log_path, "/tmp/sluice-test-redis-%d.log", (int)getpid());
    int fd = open(log_path, O_CREAT | O_TRUNC | O_RDWR, 0600);
    if (fd < 0)
        return;
    printf("stderr of this test is captured in %s while it runs\n", log_path);
    fflush(stdout);
    saved_stderr = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    close(fd);
}

/* Whatever was not a log line of ours (sanitizer or valgrind reports) goes
 * back to the real stderr. */
static void log_capture_end(void)
{
    if (saved_stderr < 0)
        return;
    dup2(saved_stderr, STDERR_FILENO);
    close(saved_stderr);
    FILE *f = fopen(log_path, "r");
    if (f) {
        char line[4096];
        while (fgets(line, sizeof line, f))
            if (!(strlen(line) > 26 && line[4] == '-' && line[23] == 'Z' && line[25] == '['))
                fputs(line, stderr);
        fclose(f);
    }
    unlink(log_path);
}

static char *log_text(void)
{
    FILE *f = fopen(log_path, "r");
    if (!f)
        return strdup("");
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = calloc(1, (size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n)
        s[0] = '\0';
    fclose(f);
    return s;
}

static long log_mark(void)
{
    char *s = log_text();
    long n = (long)strlen(s);
    free(s);
    return n;
}

/* Occurrences of needle in the log written since mark. */
static int log_count(long mark, const char *needle)
{
    char *s = log_text();
    int n = 0;
    for (const char *p = s + mark; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    free(s);
    return n;
}

/* ---- driving the loop --------------------------------------------------------- */

static struct event_base *base;

static void tick_cb(evutil_socket_t fd, short what, void *arg) {}

/* Runs the loop until cond(arg) or ms pass; true when cond held. */
static bool run_until(bool (*cond)(void *), void *arg, int ms)
{
    struct event *tick = event_new(base, -1, EV_PERSIST, tick_cb, NULL);
    struct timeval tv = { 0, 2000 };
    event_add(tick, &tv);
    int64_t end = sl_now_ms() + ms;
    bool ok;
    while (!(ok = cond && cond(arg)) && sl_now_ms() < end)
        event_base_loop(base, EVLOOP_ONCE);
    event_free(tick);
    return ok;
}

static void run_for(int ms) { run_until(NULL, NULL, ms); }

static bool is_ready(void *r) { return sl_redis_ready(r); }

/* ---- collecting results --------------------------------------------------------- */

typedef struct result {
    int calls;
    int both_or_neither;       /* callbacks breaking "exactly one of reply, err" */
    char dump[1024];           /* the reply rendered, or "" */
    char err[64];              /* err, or "" */
    int64_t at_ms;
    sl_redis_t *free_me;       /* freed from inside the callback when set */
    sl_redis_req_t *self;      /* cancelled from inside the callback when set */
} result_t;

static void render(const sl_redis_reply_t *x, char *out, size_t cap)
{
    size_t n = strlen(out);
    if (n + 8 >= cap)
        return;
    switch (x->type) {
    case SL_REDIS_STRING:
        out[n++] = '"';
        for (size_t i = 0; i < x->len && n + 6 < cap; i++) {
            unsigned char c = (unsigned char)x->str[i];
            if (c >= 32 && c < 127 && c != '\\')
                out[n++] = (char)c;
            else
                n += (size_t)snprintf(out + n, cap - n, "\\x%02x", c);
        }
        out[n++] = '"';
        out[n] = '\0';
        break;
    case SL_REDIS_STATUS:
    case SL_REDIS_ERROR:
        snprintf(out + n, cap - n, "%c%.*s", x->type == SL_REDIS_STATUS ? '+' : '-', (int)x->len, x->str);
        break;
    case SL_REDIS_INTEGER:
        snprintf(out + n, cap - n, "%lld", x->integer);
        break;
    case SL_REDIS_NIL:
        snprintf(out + n, cap - n, "nil");
        break;
    case SL_REDIS_ARRAY:
        snprintf(out + n, cap - n, "[");
        for (size_t i = 0; i < x->elements; i++) {
            if (i)
                strncat(out, ",", cap - strlen(out) - 1);
            render(x->element[i], out, cap);
        }
        strncat(out, "]", cap - strlen(out) - 1);
        break;
    }
}

static void on_result(void *arg, const sl_redis_reply_t *reply, const char *err)
{
    result_t *res = arg;
    res->calls++;
    res->at_ms = sl_now_ms();
    if (!reply == !err)
        res->both_or_neither++;
    res->dump[0] = '\0';
    res->err[0] = '\0';
    if (reply)
        render(reply, res->dump, sizeof res->dump);
    else if (err)
        snprintf(res->err, sizeof res->err, "%s", err);
    if (res->self)
        sl_redis_cancel(res->self);
    if (res->free_me)
        sl_redis_free(res->free_me);
}

static bool got(void *arg) { return ((result_t *)arg)->calls > 0; }

/* Sends a command given as words; returns the handle. */
static sl_redis_req_t *cmd(sl_redis_t *r, result_t *res, ...)
{
    const char *argv[16];
    int argc = 0;
    va_list ap;
    va_start(ap, res);
    const char *a;
    while (argc < 16 && (a = va_arg(ap, const char *)))
        argv[argc++] = a;
    va_end(ap);
    memset(res, 0, sizeof *res);
    return sl_redis_command(r, argc, argv, NULL, on_result, res);
}

/* Sends, waits, and returns the rendered reply or "err:<err>". */
static const char *call(sl_redis_t *r, result_t *res, ...)
{
    const char *argv[16];
    int argc = 0;
    va_list ap;
    va_start(ap, res);
    const char *a;
    while (argc < 16 && (a = va_arg(ap, const char *)))
        argv[argc++] = a;
    va_end(ap);
    memset(res, 0, sizeof *res);
    if (!sl_redis_command(r, argc, argv, NULL, on_result, res))
        return "queue failed";
    if (!run_until(got, res, 3000))
        return "no callback";
    if (res->err[0]) {
        static char buf[96];
        snprintf(buf, sizeof buf, "err:%s", res->err);
        return buf;
    }
    return res->dump;
}

static sl_redis_opts_t opts_for(const char *host, int port)
{
    sl_redis_opts_t o;
    memset(&o, 0, sizeof o);
    o.enabled = true;
    o.host = (char *)host;
    o.port = port;
    o.connect_timeout_ms = 500;
    o.command_timeout_ms = 1000;
    return o;
}

static sl_redis_t *connect_ready(sl_redis_opts_t o)
{
    sl_redis_t *r = sl_redis_new(base, &o);
    if (r && !run_until(is_ready, r, 3000))
        printf("%s:%d: redis at port %d never became ready\n", __FILE__, __LINE__, o.port);
    return r;
}

static test_redis_t main_server;

/* ---- tests --------------------------------------------------------------------- */

static void test_bad_input(void)
{
    sl_redis_opts_t o = opts_for("127.0.0.1", main_server.port);
    CHECK_NULL(sl_redis_new(NULL, &o));
    CHECK_NULL(sl_redis_new(base, NULL));
    sl_redis_opts_t bad = o;
    bad.host = NULL;
    CHECK_NULL(sl_redis_new(base, &bad));
    bad.host = "";
    CHECK_NULL(sl_redis_new(base, &bad));
    bad = o;
    bad.port = 0;
    CHECK_NULL(sl_redis_new(base, &bad));
    bad.port = 65536;
    CHECK_NULL(sl_redis_new(base, &bad));
    bad = o;
    bad.db = -1;
    CHECK_NULL(sl_redis_new(base, &bad));

    sl_redis_free(NULL);
    sl_redis_cancel(NULL);
    sl_redis_script_free(NULL);
    CHECK_INT(0, sl_redis_ready(NULL));
    CHECK_NULL(sl_redis_script_new(NULL));
    CHECK_NULL(sl_redis_script_sha(NULL));

    sl_redis_t *r = connect_ready(o);
    CHECK_NOT_NULL(r);
    result_t res;
    memset(&res, 0, sizeof res);
    const char *ping[] = { "PING" };
    const char *holes[] = { "GET", NULL };
    CHECK_NULL(sl_redis_command(NULL, 1, ping, NULL, on_result, &res));
    CHECK_NULL(sl_redis_command(r, 0, ping, NULL, on_result, &res));
    CHECK_NULL(sl_redis_command(r, -1, ping, NULL, on_result, &res));
    CHECK_NULL(sl_redis_command(r, 1, NULL, NULL, on_result, &res));
    CHECK_NULL(sl_redis_command(r, 2, holes, NULL, on_result, &res));

    sl_redis_script_t *s = sl_redis_script_new("return 1");
    const char *args[] = { "k", "a" };
    CHECK_NULL(sl_redis_eval(NULL, s, 0, 0, NULL, NULL, on_result, &res));
    CHECK_NULL(sl_redis_eval(r, NULL, 0, 0, NULL, NULL, on_result, &res));
    CHECK_NULL(sl_redis_eval(r, s, 3, 2, args, NULL, on_result, &res));
    CHECK_NULL(sl_redis_eval(r, s, -1, 2, args, NULL, on_result, &res));
    CHECK_NULL(sl_redis_eval(r, s, 0, -1, args, NULL, on_result, &res));
    CHECK_NULL(sl_redis_eval(r, s, 0, 2, NULL, NULL, on_result, &res));
    CHECK_NULL(sl_redis_eval(r, s, 1, 2, holes, NULL, on_result, &res));
    run_for(20);
    CHECK_INT(0, res.calls);
    sl_redis_stats_t st;
    sl_redis_stats(r, &st);
    CHECK_INT(0, st.commands);
    CHECK_INT(0, st.errors);
    sl_redis_stats(NULL, &st);
    CHECK_INT(0, st.commands);
    sl_redis_stats(r, NULL);

    /* Commands that would change the shared connection are refused, later. */
    struct {
        int argc;
        const char *argv[6];
    } refused[] = {
        { 2, { "SUBSCRIBE", "ch" } },        { 2, { "psubscribe", "p*" } },
        { 2, { "SSUBSCRIBE", "ch" } },       { 1, { "unsubscribe" } },
        { 1, { "MONITOR" } },                { 1, { "pmonitor" } },
        { 2, { "PUNSUBSCRIBE", "p*" } },     { 2, { "HELLO", "3" } },
        { 1, { "Multi" } },                  { 2, { "SELECT", "1" } },
        { 2, { "AUTH", "x" } },              { 1, { "QUIT" } },
        { 1, { "RESET" } },                  { 3, { "client", "reply", "off" } },
        { 3, { "BLPOP", "q", "0" } },        { 3, { "WAIT", "1", "0" } },
        { 6, { "XREAD", "BLOCK", "0", "STREAMS", "s", "$" } },
    };
    int n_refused = (int)(sizeof refused / sizeof refused[0]);
    for (int i = 0; i < n_refused; i++) {
        memset(&res, 0, sizeof res);
        CHECK_NOT_NULL(sl_redis_command(r, refused[i].argc, refused[i].argv, NULL, on_result, &res));
        CHECK_INT(0, res.calls);   /* never from inside the call */
        run_until(got, &res, 1000);
        CHECK_INT(1, res.calls);
        CHECK_STR(SL_REDIS_E_REFUSED, res.err);
    }
    /* ...but a key that happens to be named "block" is just a key. */
    CHECK_STR("nil", call(r, &res, "XREAD", "COUNT", "1", "STREAMS", "block", "0", NULL));
    CHECK_STR("+OK", call(r, &res, "CLIENT", "SETNAME", "sluice-test", NULL));
    sl_redis_stats(r, &st);
    CHECK_INT(n_refused + 2, st.commands);
    CHECK_INT(n_refused, st.errors);
    sl_redis_script_free(s);
    sl_redis_free(r);
}

static void test_not_connected(void)
{
    int port = test_redis_free_port();
    sl_redis_opts_t o = opts_for("127.0.0.1", port);
    long mark = log_mark();
    sl_redis_t *r = sl_redis_new(base, &o);
    CHECK_NOT_NULL(r);
    CHECK_INT(0, sl_redis_ready(r));
    result_t res;
    CHECK_NOT_NULL(cmd(r, &res, "PING", NULL));
    CHECK_INT(0, res.calls);
    run_until(got, &res, 1000);
    CHECK_INT(1, res.calls);
    CHECK_STR(SL_REDIS_E_NOT_CONNECTED, res.err);
    CHECK_INT(0, res.both_or_neither);
    /* Several attempts fail, but the log says so once. */
    run_for(400);
    char line[128];
    snprintf(line, sizeof line, "redis 127.0.0.1:%d: unreachable: Connection refused; retrying", port);
    CHECK_INT(1, log_count(mark, line));
    CHECK_INT(1, log_count(mark, "unreachable"));
    sl_redis_stats_t st;
    sl_redis_stats(r, &st);
    CHECK_INT(1, st.commands);
    CHECK_INT(1, st.errors);
    CHECK_INT(0, st.timeouts);
    CHECK_INT(0, st.reconnects);
    /* Cancelled while waiting to fail: never called. */
    result_t kept, dropped;
    CHECK_NOT_NULL(cmd(r, &kept, "PING", NULL));
    sl_redis_cancel(cmd(r, &dropped, "PING", NULL));
    run_for(30);
    CHECK_INT(1, kept.calls);
    CHECK_INT(0, dropped.calls);
    sl_redis_free(r);
}

static void test_commands(void)
{
    sl_redis_opts_t o = opts_for("127.0.0.1", main_server.port);
    long mark = log_mark();
    sl_redis_t *r = connect_ready(o);
    char line[128];
    snprintf(line, sizeof line, "redis 127.0.0.1:%d: connected", main_server.port);
    CHECK_INT(1, log_count(mark, line));
    result_t res;
    CHECK_STR("+OK", call(r, &res, "SET", "greeting", "hello", NULL));
    CHECK_STR("\"hello\"", call(r, &res, "GET", "greeting", NULL));
    CHECK_STR("nil", call(r, &res, "GET", "no-such-key", NULL));
    CHECK_STR("1", call(r, &res, "INCR", "counter", NULL));
    CHECK_STR("2", call(r, &res, "INCR", "counter", NULL));
    CHECK_STR("-9", call(r, &res, "DECRBY", "counter", "11", NULL));
    CHECK_STR("\"\"", call(r, &res, "ECHO", "", NULL));
    CHECK_STR("3", call(r, &res, "RPUSH", "list", "a", "b", "c", NULL));
    CHECK_STR("[\"a\",\"b\",\"c\"]", call(r, &res, "LRANGE", "list", "0", "-1", NULL));
    CHECK_STR("[]", call(r, &res, "LRANGE", "nothing", "0", "-1", NULL));
    CHECK_STR("[\"hello\",nil,\"-9\"]", call(r, &res, "MGET", "greeting", "nope", "counter", NULL));
    CHECK_STR("+PONG", call(r, &res, "PING", NULL));
    CHECK_STR("-ERR value is not an integer or out of range", call(r, &res, "INCR", "greeting", NULL));
    CHECK_STR("-ERR unknown command 'NOSUCHCMD', with args beginning with: 'x' ",
              call(r, &res, "NOSUCHCMD", "x", NULL));
    CHECK_STR("-WRONGTYPE Operation against a key holding the wrong kind of value",
              call(r, &res, "GET", "list", NULL));
    CHECK_STR("-ERR unknown command '', with args beginning with: ", call(r, &res, "", NULL));
    CHECK_STR("-ERR unknown command 'p', with args beginning with: ", call(r, &res, "p", NULL));
    CHECK_INT(0, res.both_or_neither);

    /* Binary-safe both ways. */
    const char *set[] = { "SET", "bin\0key", "a\0b\r\n" };
    size_t set_lens[] = { 3, 7, 5 };
    memset(&res, 0, sizeof res);
    CHECK_NOT_NULL(sl_redis_command(r, 3, set, set_lens, on_result, &res));
    run_until(got, &res, 2000);
    CHECK_STR("+OK", res.dump);
    const char *get[] = { "GET", "bin\0key" };
    size_t get_lens[] = { 3, 7 };
    memset(&res, 0, sizeof res);
    CHECK_NOT_NULL(sl_redis_command(r, 2, get, get_lens, on_result, &res));
    run_until(got, &res, 2000);
    CHECK_STR("\"a\\x00b\\x0d\\x0a\"", res.dump);

    /* Fire and forget. */
    const char *ff[] = { "SET", "ff", "1" };
    CHECK_NOT_NULL(sl_redis_command(r, 3, ff, NULL, NULL, NULL));
    CHECK_STR("\"1\"", call(r, &res, "GET", "ff", NULL));

    sl_redis_stats_t st;
    sl_redis_stats(r, &st);
    CHECK_INT(21, st.commands);
    CHECK_INT(5, st.errors);
    CHECK_INT(0, st.timeouts);
    CHECK_INT(0, st.reconnects);
    sl_redis_free(r);
}

/* Replies are built in a per-connection arena: nested shapes, replies far
 * bigger than its first block, and small ones again after those. */
typedef struct big_reply {
    int calls;
    sl_redis_type_t type;
    size_t len, elements;
    bool content_ok, nul_ended;
} big_reply_t;

static void on_big(void *arg, const sl_redis_reply_t *reply, const char *err)
{
    big_reply_t *b = arg;
    b->calls++;
    if (!reply)
        return;
    b->type = reply->type;
    b->len = reply->len;
    b->elements = reply->elements;
    b->content_ok = true;
    if (reply->type == SL_REDIS_STRING) {
        b->nul_ended = reply->str[reply->len] == '\0';
        for (size_t i = 0; i < reply->len; i++)
            if (reply->str[i] != (char)('a' + i % 26))
                b->content_ok = false;
    }
    for (size_t i = 0; i < reply->elements; i++) {
        const sl_redis_reply_t *e = reply->element[i];
        if (e->type != SL_REDIS_INTEGER || e->integer != (long long)i + 1)
            b->content_ok = false;
    }
}

static bool big_got(void *arg) { return ((big_reply_t *)arg)->calls > 0; }

static void test_reply_shapes(void)
{
    sl_redis_t *r = connect_ready(opts_for("127.0.0.1", main_server.port));
    result_t res;
    CHECK_STR("[1,[2,[3,\"x\",[]]],nil,[],-4]",
              call(r, &res, "EVAL", "return {1, {2, {3, 'x', {}}}, false, {}, -4}", "0", NULL));
    CHECK_STR("[\"a\",[\"b\",[\"c\",[\"d\",[\"e\",[\"f\"]]]]]]",
              call(r, &res, "EVAL",
                   "return {'a', {'b', {'c', {'d', {'e', {'f'}}}}}}", "0", NULL));
    CHECK_STR("+fine", call(r, &res, "EVAL", "return {ok = 'fine'}", "0", NULL));
    CHECK_STR("-ERR my own", call(r, &res, "EVAL", "return {err = 'ERR my own'}", "0", NULL));

    /* A 100000-byte string: bigger than any block the arena keeps. */
    static char text[100001];
    for (size_t i = 0; i < 100000; i++)
        text[i] = (char)('a' + i % 26);
    CHECK_STR("+OK", call(r, &res, "SET", "big", text, NULL));
    big_reply_t b;
    memset(&b, 0, sizeof b);
    const char *get[] = { "GET", "big" };
    CHECK_NOT_NULL(sl_redis_command(r, 2, get, NULL, on_big, &b));
    run_until(big_got, &b, 3000);
    CHECK_INT(1, b.calls);
    CHECK_INT(SL_REDIS_STRING, b.type);
    CHECK_INT(100000, b.len);
    CHECK_INT(1, b.content_ok);
    CHECK_INT(1, b.nul_ended);

    /* 3000 elements, which need several blocks of the arena. */
    memset(&b, 0, sizeof b);
    const char *seq[] = { "EVAL", "local t = {} for i = 1, 3000 do t[i] = i end return t", "0" };
    CHECK_NOT_NULL(sl_redis_command(r, 3, seq, NULL, on_big, &b));
    run_until(big_got, &b, 3000);
    CHECK_INT(1, b.calls);
    CHECK_INT(SL_REDIS_ARRAY, b.type);
    CHECK_INT(3000, b.elements);
    CHECK_INT(1, b.content_ok);

    /* Small again, after the arena was reset. */
    CHECK_STR("[1,2]", call(r, &res, "EVAL", "return {1, 2}", "0", NULL));
    CHECK_STR("1", call(r, &res, "DEL", "big", NULL));
    sl_redis_free(r);
}

typedef struct pipeline {
    int calls, out_of_order, last;
} pipeline_t;

static void on_incr(void *arg, const sl_redis_reply_t *reply, const char *err)
{
    pipeline_t *p = arg;
    p->calls++;
    if (!reply || reply->type != SL_REDIS_INTEGER || reply->integer != p->calls)
        p->out_of_order++;
    if (reply)
        p->last = (int)reply->integer;
}

static bool pipeline_done(void *arg) { return ((pipeline_t *)arg)->calls == 1000; }

static void test_pipelining(void)
{
    sl_redis_t *r = connect_ready(opts_for("127.0.0.1", main_server.port));
    result_t res;
    CHECK_STR("0", call(r, &res, "DEL", "pipe", NULL));
    pipeline_t p = { 0, 0, 0 };
    const char *incr[] = { "INCR", "pipe" };
    int queued = 0;
    for (int i = 0; i < 1000; i++)
        queued += sl_redis_command(r, 2, incr, NULL, on_incr, &p) != NULL;
    CHECK_INT(1000, queued);
    CHECK_INT(0, p.calls);
    run_until(pipeline_done, &p, 5000);
    CHECK_INT(1000, p.calls);
    CHECK_INT(0, p.out_of_order);
    CHECK_INT(1000, p.last);
    sl_redis_free(r);
}

static void test_timeout(void)
{
    sl_redis_opts_t o = opts_for("127.0.0.1", main_server.port);
    o.command_timeout_ms = 100;
    sl_redis_t *r = connect_ready(o);
    result_t slow, behind, after;
    int64_t start = sl_now_ms();
    CHECK_NOT_NULL(cmd(r, &slow, "DEBUG", "SLEEP", "0.5", NULL));
    CHECK_NOT_NULL(cmd(r, &behind, "PING", NULL));
    run_until(got, &behind, 2000);
    CHECK_INT(1, slow.calls);
    CHECK_STR(SL_REDIS_E_TIMEOUT, slow.err);
    CHECK_RANGE(95, 350, slow.at_ms - start);
    CHECK_INT(1, behind.calls);
    CHECK_STR(SL_REDIS_E_TIMEOUT, behind.err);
    /* The late replies arrive and are dropped; the connection carries on. */
    run_for((int)(650 - (sl_now_ms() - start)));
    CHECK_INT(1, slow.calls);
    CHECK_INT(1, behind.calls);
    CHECK_INT(1, sl_redis_ready(r));
    CHECK_STR("+PONG", call(r, &after, "PING", NULL));
    CHECK_STR("+OK", call(r, &after, "SET", "after-timeout", "yes", NULL));
    CHECK_STR("\"yes\"", call(r, &after, "GET", "after-timeout", NULL));
    sl_redis_stats_t st;
    sl_redis_stats(r, &st);
    CHECK_INT(5, st.commands);
    CHECK_INT(2, st.timeouts);
    CHECK_INT(0, st.errors);
    CHECK_INT(0, st.reconnects);
    sl_redis_free(r);
}

static void test_scripts(void)
{
    sl_redis_t *r = connect_ready(opts_for("127.0.0.1", main_server.port));
    sl_redis_script_t *one = sl_redis_script_new("return 1");
    CHECK_STR("e0e1f9fabfc9d4800c877a703b823ac0578ff8db", sl_redis_script_sha(one));
    result_t res;
    memset(&res, 0, sizeof res);
    CHECK_NOT_NULL(sl_redis_eval(r, one, 0, 0, NULL, NULL, on_result, &res));
    run_until(got, &res, 2000);
    CHECK_STR("1", res.dump);

    sl_redis_script_t *s =
        sl_redis_script_new("return {KEYS[1], ARGV[1], {tonumber(ARGV[2]) + 1, 'x'}}");
    const char *args[] = { "k1", "a1", "41" };
    CHECK_STR("+OK", call(r, &res, "SCRIPT", "FLUSH", NULL));
    CHECK_STR("[0]", call(r, &res, "SCRIPT", "EXISTS", sl_redis_script_sha(s), NULL));
    memset(&res, 0, sizeof res);
    CHECK_NOT_NULL(sl_redis_eval(r, s, 1, 3, args, NULL, on_result, &res));
    run_until(got, &res, 2000);
    CHECK_STR("[\"k1\",\"a1\",[42,\"x\"]]", res.dump);
    CHECK_STR("[1]", call(r, &res, "SCRIPT", "EXISTS", sl_redis_script_sha(s), NULL));
    /* Cached now: EVALSHA alone answers. */
    memset(&res, 0, sizeof res);
    CHECK_NOT_NULL(sl_redis_eval(r, s, 1, 3, args, NULL, on_result, &res));
    run_until(got, &res, 2000);
    CHECK_STR("[\"k1\",\"a1\",[42,\"x\"]]", res.dump);

    /* Flushed again, and the script object freed before the eval runs: the
     * pending eval keeps what it needs for the EVAL fallback. */
    CHECK_STR("+OK", call(r, &res, "SCRIPT", "FLUSH", NULL));
    const char *bin_args[] = { "k\0\x01", "v\r\n" };
    size_t bin_lens[] = { 3, 3 };
    sl_redis_script_t *echo = sl_redis_script_new("return {KEYS[1], ARGV[1]}");
    memset(&res, 0, sizeof res);
    CHECK_NOT_NULL(sl_redis_eval(r, echo, 1, 2, bin_args, bin_lens, on_result, &res));
    sl_redis_script_free(echo);
    run_until(got, &res, 2000);
    CHECK_STR("[\"k\\x00\\x01\",\"v\\x0d\\x0a\"]", res.dump);

    /* Errors raised by the script come back as error replies. */
    sl_redis_script_t *bad = sl_redis_script_new("return redis.call('incr', KEYS[1])");
    const char *key[] = { "greeting-for-script" };
    CHECK_STR("+OK", call(r, &res, "SET", "greeting-for-script", "hi", NULL));
    memset(&res, 0, sizeof res);
    CHECK_NOT_NULL(sl_redis_eval(r, bad, 1, 1, key, NULL, on_result, &res));
    run_until(got, &res, 2000);
    char expected[256];
    snprintf(expected, sizeof expected,
             "-ERR value is not an integer or out of range script: %s, on @user_script:1.",
             sl_redis_script_sha(bad));
    CHECK_STR(expected, res.dump);
    /* A syntax error fails the EVAL too, and is not retried forever. */
    sl_redis_script_t *broken = sl_redis_script_new("return (");
    memset(&res, 0, sizeof res);
    CHECK_NOT_NULL(sl_redis_eval(r, broken, 0, 0, NULL, NULL, on_result, &res));
    run_until(got, &res, 2000);
    CHECK_INT(1, res.calls);
    CHECK_INT(0, strncmp(res.dump, "-ERR Error compiling script", 27));

    sl_redis_stats_t st;
    sl_redis_stats(r, &st);
    CHECK_INT(11, st.commands);
    CHECK_INT(2, st.errors);
    sl_redis_script_free(one);
    sl_redis_script_free(s);
    sl_redis_script_free(bad);
    sl_redis_script_free(broken);
    sl_redis_free(r);
}

static void test_cancel(void)
{
    sl_redis_t *r = connect_ready(opts_for("127.0.0.1", main_server.port));
    result_t res[10], fence;
    sl_redis_req_t *q[10];
    for (int i = 0; i < 10; i++)
        q[i] = cmd(r, &res[i], "INCR", "cancel-counter", NULL);
    sl_redis_cancel(q[0]);
    sl_redis_cancel(q[4]);
    sl_redis_cancel(q[9]);
    sl_redis_cancel(q[9]);  /* still safe: its callback has not run */
    call(r, &fence, "PING", NULL);
    int called = 0;
    for (int i = 0; i < 10; i++)
        called += res[i].calls;
    CHECK_INT(7, called);
    CHECK_INT(0, res[0].calls);
    CHECK_INT(0, res[4].calls);
    CHECK_INT(0, res[9].calls);
    CHECK_STR("2", res[1].dump);   /* the cancelled ones still ran on the server */
    CHECK_STR("9", res[8].dump);
    CHECK_STR("\"10\"", call(r, &fence, "GET", "cancel-counter", NULL));

    /* Cancelling from inside its own callback does nothing. */
    result_t self;
    sl_redis_req_t *me = cmd(r, &self, "PING", NULL);
    self.self = me;
    run_until(got, &self, 2000);
    CHECK_INT(1, self.calls);
    CHECK_STR("+PONG", self.dump);
    sl_redis_free(r);
}

static void test_free_inside_callback(void)
{
    /* From a reply callback, with more replies owed. */
    sl_redis_t *r = connect_ready(opts_for("127.0.0.1", main_server.port));
    result_t a, b, c;
    cmd(r, &a, "PING", NULL);
    a.free_me = r;
    cmd(r, &b, "PING", NULL);
    cmd(r, &c, "DEBUG", "SLEEP", "0", NULL);
    run_until(got, &a, 2000);
    run_for(50);
    CHECK_INT(1, a.calls);
    CHECK_STR("+PONG", a.dump);
    CHECK_INT(0, b.calls);
    CHECK_INT(0, c.calls);

    /* From a failure delivered by the zero-delay timer. */
    r = sl_redis_new(base, &(sl_redis_opts_t){ .host = "127.0.0.1", .port = test_redis_free_port() });
    cmd(r, &a, "PING", NULL);
    a.free_me = r;
    cmd(r, &b, "PING", NULL);
    run_until(got, &a, 2000);
    run_for(50);
    CHECK_INT(1, a.calls);
    CHECK_STR(SL_REDIS_E_NOT_CONNECTED, a.err);
    CHECK_INT(0, b.calls);

    /* From a timeout, with another timeout due in the same pass. */
    sl_redis_opts_t o = opts_for("127.0.0.1", main_server.port);
    o.command_timeout_ms = 50;
    r = connect_ready(o);
    cmd(r, &a, "DEBUG", "SLEEP", "0.2", NULL);
    a.free_me = r;
    cmd(r, &b, "PING", NULL);
    run_until(got, &a, 2000);
    run_for(250);
    CHECK_INT(1, a.calls);
    CHECK_STR(SL_REDIS_E_TIMEOUT, a.err);
    CHECK_INT(0, b.calls);
}

typedef struct chain {
    sl_redis_t *r;
    test_redis_t *server;
    int replies, lost, other, kill_after;
} chain_t;

static void on_chain(void *arg, const sl_redis_reply_t *reply, const char *err)
{
    chain_t *c = arg;
    if (reply) {
        c->replies++;
        if (c->replies == c->kill_after)
            test_redis_kill(c->server);
        const char *incr[] = { "INCR", "chain" };
        sl_redis_command(c->r, 2, incr, NULL, on_chain, c);
    } else if (strcmp(err, SL_REDIS_E_LOST) == 0) {
        c->lost++;
    } else {
        c->other++;
    }
}

static bool chain_ended(void *arg)
{
    chain_t *c = arg;
    return c->lost + c->other > 0;
}

typedef struct burst {
    int calls, lost, other;
} burst_t;

static void on_burst(void *arg, const sl_redis_reply_t *reply, const char *err)
{
    burst_t *b = arg;
    b->calls++;
    if (err && strcmp(err, SL_REDIS_E_LOST) == 0)
        b->lost++;
    else
        b->other++;
}

static bool burst_done(void *arg) { return ((burst_t *)arg)->calls == 200; }

static void test_kill_and_restart(void)
{
    test_redis_t srv;
    if (test_redis_start(&srv, NULL) != 0) {
        CHECK_FAIL("cannot start redis-server");
        return;
    }
    sl_redis_opts_t o = opts_for("127.0.0.1", srv.port);
    sl_redis_t *r = connect_ready(o);
    long mark = log_mark();

    /* Mid-traffic: each reply sends the next command; the server dies after
     * the 50th reply, so exactly one command is in flight. */
    chain_t c = { r, &srv, 0, 0, 0, 50 };
    const char *incr[] = { "INCR", "chain" };
    sl_redis_command(r, 2, incr, NULL, on_chain, &c);
    run_until(chain_ended, &c, 3000);
    CHECK_INT(50, c.replies);
    CHECK_INT(1, c.lost);
    CHECK_INT(0, c.other);
    CHECK_INT(0, sl_redis_ready(r));
    char line[128];
    snprintf(line, sizeof line, "redis 127.0.0.1:%d: connection lost: ", srv.port);
    CHECK_INT(1, log_count(mark, line));

    result_t res;
    CHECK_STR("err:not connected", call(r, &res, "PING", NULL));

    /* Restarted on the same port: ready again within about a second. */
    run_for(300);
    CHECK_INT(0, test_redis_restart(&srv));
    int64_t restarted = sl_now_ms();
    CHECK_INT(1, run_until(is_ready, r, 3000));
    CHECK_RANGE(0, 1200, sl_now_ms() - restarted);
    CHECK_STR("1", call(r, &res, "INCR", "chain", NULL));   /* nothing persisted */

    /* Many commands in flight when it dies: each is told exactly once. */
    burst_t b = { 0, 0, 0 };
    for (int i = 0; i < 200; i++)
        sl_redis_command(r, 2, incr, NULL, on_burst, &b);
    test_redis_kill(&srv);
    run_until(burst_done, &b, 3000);
    run_for(50);
    CHECK_INT(200, b.calls);
    CHECK_INT(200, b.lost);
    CHECK_INT(0, b.other);

    CHECK_INT(0, test_redis_restart(&srv));
    CHECK_INT(1, run_until(is_ready, r, 3000));
    CHECK_STR("+PONG", call(r, &res, "PING", NULL));
    sl_redis_stats_t st;
    sl_redis_stats(r, &st);
    CHECK_INT(2, st.reconnects);
    CHECK_INT(0, st.timeouts);
    CHECK_INT(202, st.errors);   /* 1 + 200 lost, 1 not connected */
    snprintf(line, sizeof line, "redis 127.0.0.1:%d: connected", srv.port);
    CHECK_INT(2, log_count(mark, line));
    sl_redis_free(r);
    test_redis_stop(&srv);
}

static void test_auth(void)
{
    const char *extra[] = { "--requirepass", "s3cret", NULL };
    test_redis_t srv;
    if (test_redis_start(&srv, extra) != 0) {
        CHECK_FAIL("cannot start redis-server");
        return;
    }
    long mark = log_mark();
    result_t res;

    sl_redis_opts_t o = opts_for("127.0.0.1", srv.port);
    o.password = "s3cret";
    sl_redis_t *r = connect_ready(o);
    CHECK_INT(1, sl_redis_ready(r));
    CHECK_STR("+OK", call(r, &res, "SET", "authed", "yes", NULL));
    CHECK_STR("\"yes\"", call(r, &res, "GET", "authed", NULL));
    sl_redis_free(r);

    o.username = "default";
    r = connect_ready(o);
    CHECK_INT(1, sl_redis_ready(r));
    CHECK_STR("\"yes\"", call(r, &res, "GET", "authed", NULL));
    sl_redis_free(r);

    /* Wrong password: logged clearly, once, and retried. */
    o.username = NULL;
    o.password = "nope-wrong";
    o.connect_timeout_ms = 200;
    r = sl_redis_new(base, &o);
    run_for(500);
    CHECK_INT(0, sl_redis_ready(r));
    CHECK_STR("err:not connected", call(r, &res, "GET", "authed", NULL));
    char line[200];
    snprintf(line, sizeof line,
             "redis 127.0.0.1:%d: AUTH failed: WRONGPASS invalid username-password pair or user is "
             "disabled.; retrying",
             srv.port);
    CHECK_INT(1, log_count(mark, line));
    CHECK_INT(1, log_count(mark, "AUTH failed"));
    /* Once the server takes that password, a retry gets through. */
    o.password = "s3cret";
    o.connect_timeout_ms = 500;
    sl_redis_t *admin = connect_ready(o);
    CHECK_STR("+OK", call(admin, &res, "CONFIG", "SET", "requirepass", "nope-wrong", NULL));
    CHECK_INT(1, run_until(is_ready, r, 3000));
    CHECK_STR("\"yes\"", call(r, &res, "GET", "authed", NULL));
    CHECK_STR("+OK", call(r, &res, "CONFIG", "SET", "requirepass", "s3cret", NULL));
    sl_redis_free(admin);
    sl_redis_free(r);

    /* No password at all: the PING says why. */
    o.password = NULL;
    r = sl_redis_new(base, &o);
    run_for(300);
    CHECK_INT(0, sl_redis_ready(r));
    snprintf(line, sizeof line,
             "redis 127.0.0.1:%d: unreachable: PING failed: NOAUTH Authentication required.; retrying",
             srv.port);
    CHECK_INT(1, log_count(mark, line));
    sl_redis_free(r);

    CHECK_INT(0, log_count(mark, "s3cret"));
    CHECK_INT(0, log_count(mark, "nope-wrong"));
    test_redis_stop(&srv);
}

static void test_select(void)
{
    sl_redis_opts_t o = opts_for("127.0.0.1", main_server.port);
    result_t res;
    o.db = 5;
    sl_redis_t *r5 = connect_ready(o);
    CHECK_STR("+OK", call(r5, &res, "SET", "in-db-5", "five", NULL));
    o.db = 0;
    sl_redis_t *r0 = connect_ready(o);
    CHECK_STR("nil", call(r0, &res, "GET", "in-db-5", NULL));
    sl_redis_free(r0);
    o.db = 5;
    sl_redis_t *again = connect_ready(o);
    CHECK_STR("\"five\"", call(again, &res, "GET", "in-db-5", NULL));
    sl_redis_free(again);
    sl_redis_free(r5);

    long mark = log_mark();
    o.db = 999;
    sl_redis_t *bad = sl_redis_new(base, &o);
    run_for(200);
    CHECK_INT(0, sl_redis_ready(bad));
    char line[200];
    snprintf(line, sizeof line,
             "redis 127.0.0.1:%d: unreachable: SELECT failed: ERR DB index is out of range; retrying",
             main_server.port);
    CHECK_INT(1, log_count(mark, line));
    sl_redis_free(bad);
}

static void test_connect_timeout(void)
{
    /* Accepts TCP (the kernel does) but never answers the PING. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    bind(fd, (struct sockaddr *)&a, sizeof a);
    listen(fd, 16);
    getsockname(fd, (struct sockaddr *)&a, &len);
    int port = ntohs(a.sin_port);

    long mark = log_mark();
    sl_redis_opts_t o = opts_for("127.0.0.1", port);
    o.connect_timeout_ms = 100;
    sl_redis_t *r = sl_redis_new(base, &o);
    result_t res;
    int64_t start = sl_now_ms();
    run_for(50);
    CHECK_STR("err:not connected", call(r, &res, "PING", NULL));
    run_for((int)(600 - (sl_now_ms() - start)));
    CHECK_INT(0, sl_redis_ready(r));
    char line[160];
    snprintf(line, sizeof line, "redis 127.0.0.1:%d: unreachable: connect timeout after 100 ms; retrying",
             port);
    CHECK_INT(1, log_count(mark, line));
    sl_redis_free(r);
    close(fd);
}

typedef struct pinger {
    sl_redis_t *r;
    result_t res[40];
    int sent;
    struct event *ev;
} pinger_t;

static void ping_tick(evutil_socket_t fd, short what, void *arg)
{
    pinger_t *p = arg;
    if (p->sent < 40) {
        const char *ping[] = { "PING" };
        memset(&p->res[p->sent], 0, sizeof p->res[0]);
        sl_redis_command(p->r, 1, ping, NULL, on_result, &p->res[p->sent]);
        p->sent++;
    }
}

static void test_unresponsive(void)
{
    /* A server that stops answering without closing is given up on after
     * max(10 command timeouts, 1 s) of silence, then reconnected. */
    sl_redis_opts_t o = opts_for("127.0.0.1", main_server.port);
    o.command_timeout_ms = 50;
    o.connect_timeout_ms = 200;
    sl_redis_t *r = connect_ready(o);
    long mark = log_mark();
    result_t sleeper;
    cmd(r, &sleeper, "DEBUG", "SLEEP", "1.6", NULL);
    pinger_t p;
    memset(&p, 0, sizeof p);
    p.r = r;
    p.ev = event_new(base, -1, EV_PERSIST, ping_tick, &p);
    struct timeval tv = { 0, 100000 };
    event_add(p.ev, &tv);
    run_for(1300);
    event_free(p.ev);
    char line[160];
    snprintf(line, sizeof line,
             "redis 127.0.0.1:%d: connection lost: no reply for 1000 ms; reconnecting",
             main_server.port);
    CHECK_INT(1, log_count(mark, line));
    CHECK_STR(SL_REDIS_E_TIMEOUT, sleeper.err);
    CHECK_INT(1, run_until(is_ready, r, 3000));
    result_t res;
    CHECK_STR("+PONG", call(r, &res, "PING", NULL));
    int answered = 0;
    for (int i = 0; i < p.sent; i++)
        answered += p.res[i].calls;
    CHECK_INT(p.sent, answered);
    sl_redis_stats_t st;
    sl_redis_stats(r, &st);
    CHECK_INT(1, st.reconnects);
    sl_redis_free(r);
}

static void test_host_names(void)
{
    result_t res;
    sl_redis_t *r = connect_ready(opts_for("localhost", main_server.port));
    CHECK_INT(1, sl_redis_ready(r));
    CHECK_STR("+PONG", call(r, &res, "PING", NULL));
    sl_redis_free(r);

    /* A name that cannot resolve: not ready, and freeing it mid-lookup is clean. */
    sl_redis_opts_t o = opts_for("no-such-host.invalid", main_server.port);
    o.connect_timeout_ms = 100;
    r = sl_redis_new(base, &o);
    run_for(250);
    CHECK_INT(0, sl_redis_ready(r));
    CHECK_STR("err:not connected", call(r, &res, "PING", NULL));
    sl_redis_free(r);
    r = sl_redis_new(base, &o);
    sl_redis_free(r);
    run_for(50);   /* let cancelled lookups report back and release */
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    /* stderr is the module's log while the tests run (see log_capture_start). */
    check_output = stdout;
    base = event_base_new();
    log_capture_start();
    if (test_redis_start(&main_server, NULL) != 0) {
        log_capture_end();
        CHECK_FAIL("cannot start redis-server (is it installed?)");
        event_base_free(base);
        return check_summary();
    }
    test_bad_input();
    test_not_connected();
    test_commands();
    test_pipelining();
    test_reply_shapes();
    test_timeout();
    test_scripts();
    test_cancel();
    test_free_inside_callback();
    test_kill_and_restart();
    test_auth();
    test_select();
    test_connect_timeout();
    test_unresponsive();
    test_host_names();
    run_for(20);
    test_redis_stop(&main_server);
    event_base_free(base);
    libevent_global_shutdown();
    log_capture_end();
    return check_summary();
}
