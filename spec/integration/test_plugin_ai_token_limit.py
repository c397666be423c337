"""ai-token-limit: a token budget per consumer / tenant / route, reserved
before ai-proxy calls the provider and corrected once the usage is known.

Every spec uses ai-proxy's built-in mock provider, whose usage is
deterministic: prompt tokens = words of all messages, completion tokens =
words of "mock reply to: <last user message>". With the message "hi there":

    estimate  = ceil(len("hi there") / 4) + max_tokens = 2 + max_tokens
    actual    = 2 (prompt) + 5 (completion: "mock reply to: hi there") = 7

A request is admitted when counted + estimate <= tokens; the log phase then
adds actual - estimate (or takes the whole estimate back when ai-proxy set
no usage). The log phase of a request runs before the gateway reads the next
request of the same connection, so a sequence on one connection sees every
correction; across connections and nodes the specs poll Redis instead.

Windows are one hour (or a minute, see away_from_window_end) so a sequence
never straddles a window boundary."""

import json
import math
import textwrap
import subprocess
import threading
import time

import pytest

import expect
from rate_window import away_from_window_end
from redis import RedisServer
from scale import scaled

CHAT = "/v1/chat/completions"
HOUR_MS = 3600 * 1000
TEXT = "hi there"           # estimate 2 + max_tokens, actual 7

CONSUMERS = [
    {"name": "alice", "tenant": "acme", "credentials": {"key-auth": [{"key": "alice-key"}]}},
    {"name": "bob", "tenant": "acme", "credentials": {"key-auth": [{"key": "bob-key"}]}},
    {"name": "carol", "tenant": "other", "credentials": {"key-auth": [{"key": "carol-key"}]}},
]

MOCK = {"ai-proxy": {"models": {"chat": {"targets": [{"provider": "mock", "model": "mock-1"}]}}}}


def route(name, paths, limit_conf, auth=True):
    chain = ([{"key-auth": {}}] if auth else []) + [{"ai-token-limit": limit_conf}, MOCK]
    return {"name": name, "match": {"paths": paths}, "plugins": chain}


def config(limit_conf, auth=True, redis=None, routes=None, workers=1):
    c = {"consumers": CONSUMERS, "workers": workers,
         "routes": routes or [route("llm", ["/v1/*"], limit_conf, auth)]}
    if redis is not None:
        c["redis"] = {"url": redis.url, "command_timeout": "200ms", "connect_timeout": "200ms"}
    return c


def body(text=TEXT, **kw):
    return json.dumps(dict({"model": "chat", "messages": [{"role": "user", "content": text}]}, **kw))


def chat(conn, key="alice-key", path=CHAT, **kw):
    headers = [("Content-Type", "application/json")]
    if key:
        headers.append(("X-Api-Key", key))
    return conn.request("POST", path, headers, body(**kw))


def tl(resp):
    """(X-TokenLimit-Limit, X-TokenLimit-Remaining) as integers, None when absent."""
    limit, remaining = resp.header("X-TokenLimit-Limit"), resp.header("X-TokenLimit-Remaining")
    return None if limit is None and remaining is None else (int(limit), int(remaining))


def ok(resp, limit, remaining):
    assert resp.status == 200, resp
    assert json.loads(resp.body)["choices"][0]["message"]["content"] == "mock reply to: " + TEXT
    assert json.loads(resp.body)["usage"]["total_tokens"] == 7
    assert tl(resp) == (limit, remaining), resp


def seconds_to_window_end(t_ms, window_ms):
    return max(1, math.ceil((window_ms - t_ms % window_ms) / 1000))


def refused(resp, limit, remaining, message, window_ms=HOUR_MS, t0=None, t1=None):
    err = expect.gateway_error(resp, 429, "token_limit_exceeded", "rate_limit_error")
    assert err["message"] == message
    assert tl(resp) == (limit, remaining), resp
    retry = int(resp.header("Retry-After"))
    if t0 is not None:
        assert seconds_to_window_end(t1, window_ms) <= retry <= seconds_to_window_end(t0, window_ms)


def now_ms():
    return int(time.time() * 1000)


HOURLY_30 = {"limits": [{"tokens": 30, "window": "hour"}]}


# ---- reserve, then correct -----------------------------------------------------------------

@pytest.mark.valgrind
def test_admitted_requests_follow_reserve_then_correct(gateway_factory):
    """limit 30/h; each request reserves 2 + 10 = 12 and is corrected to 7."""
    away_from_window_end(HOUR_MS)
    gw = gateway_factory(config(HOURLY_30))
    with gw.conn() as c:
        ok(chat(c, max_tokens=10), 30, 18)    # 0 + 12 = 12   -> corrected to 7
        ok(chat(c, max_tokens=10), 30, 11)    # 7 + 12 = 19   -> 14
        ok(chat(c, max_tokens=10), 30, 4)     # 14 + 12 = 26  -> 21
        t0 = now_ms()
        r = chat(c, max_tokens=10)            # 21 + 12 = 33 > 30: refused, nothing kept
        t1 = now_ms()
        refused(r, 30, 9, "token limit exceeded: 30 tokens per 1h", t0=t0, t1=t1)
        ok(chat(c, max_tokens=1), 30, 6)      # 21 + 3 = 24   -> 28
        ok(chat(c, max_tokens=0), 30, 0)      # 28 + 2 = 30 (== the limit is allowed) -> 35
        refused(chat(c, max_tokens=0), 30, 0,  # 35 + 2 > 30: the usage may overshoot the budget
                "token limit exceeded: 30 tokens per 1h")


def test_estimate_uses_the_default_without_max_tokens(gateway_factory):
    away_from_window_end(HOUR_MS)
    gw = gateway_factory(config({"limits": [{"tokens": 100, "window": "hour"}],
                                 "estimate_max_tokens_default": 20}))
    with gw.conn() as c:
        ok(chat(c), 100, 78)                              # 2 + 20 = 22 -> 7
        ok(chat(c), 100, 71)                              # 7 + 22 = 29 -> 14
        ok(chat(c, max_tokens=3), 100, 81)                # 14 + 5 = 19 -> 21
        ok(chat(c, max_completion_tokens=1, max_tokens=50), 100, 76)   # max_completion_tokens wins: 21 + 3
        ok(chat(c, max_tokens=-5), 100, 50)               # not a count: the default, 28 + 22


def test_estimate_is_rounded_up_quarter_of_the_characters_of_every_message(gateway_factory):
    away_from_window_end(HOUR_MS)
    gw = gateway_factory(config({"limits": [{"tokens": 1000, "window": "hour"}]}))
    messages = [{"role": "system", "content": "abcde"},                               # 5 characters
                {"role": "user", "content": [{"type": "text", "text": "héllo"}]},     # 5 (not 6 bytes)
                {"role": "user", "content": TEXT}]                                   # 8
    with gw.conn() as c:
        r = c.request("POST", CHAT, [("X-Api-Key", "alice-key")],
                      json.dumps({"model": "chat", "messages": messages, "max_tokens": 0}))
        assert r.status == 200, r
        assert tl(r) == (1000, 1000 - 5)                  # ceil(18 / 4) = 5
        # actual: 1 + 1 + 2 prompt words + 5 completion words = 9
        assert json.loads(r.body)["usage"]["total_tokens"] == 9
        ok(chat(c, max_tokens=0), 1000, 1000 - 9 - 2)


@pytest.mark.valgrind
def test_streamed_requests_are_corrected_when_the_stream_ends(gateway_factory):
    away_from_window_end(HOUR_MS)
    gw = gateway_factory(config(HOURLY_30))
    with gw.conn() as c:
        for remaining in (18, 11, 4):
            r = chat(c, max_tokens=10, stream=True)
            assert r.status == 200, r
            assert r.header("Content-Type") == "text/event-stream"
            assert bytes(r.body).endswith(b"data: [DONE]\n\n")
            assert tl(r) == (30, remaining)
        refused(chat(c, max_tokens=10, stream=True), 30, 9, "token limit exceeded: 30 tokens per 1h")


@pytest.mark.valgrind
def test_a_failed_request_gives_the_whole_estimate_back(gateway_factory):
    away_from_window_end(HOUR_MS)
    gw = gateway_factory(config(HOURLY_30))
    with gw.conn() as c:
        r = chat(c, max_tokens=10, model="no-such-model")  # ai-proxy answers 404: no usage
        expect.gateway_error(r, 404, "model_not_found", "not_found_error")
        assert tl(r) == (30, 18)                           # 12 were reserved while it ran ...
        r = c.request("POST", CHAT, [("X-Api-Key", "alice-key")], "not json")   # 0 + 1024 > 30
        refused(r, 30, 30, "token limit exceeded: 30 tokens per 1h")
        ok(chat(c, max_tokens=10), 30, 18)                 # ... and given back afterwards


# ---- keys ----------------------------------------------------------------------------------

def test_key_consumer_gives_each_consumer_a_budget(gateway_factory):
    away_from_window_end(HOUR_MS)
    gw = gateway_factory(config({"limits": [{"tokens": 12, "window": "hour"}], "key": ["consumer"]}))
    with gw.conn() as c:
        ok(chat(c, "alice-key", max_tokens=10), 12, 0)
        refused(chat(c, "alice-key", max_tokens=10), 12, 5, "token limit exceeded: 12 tokens per 1h")
        ok(chat(c, "bob-key", max_tokens=10), 12, 0)


def test_key_tenant_shares_a_budget_between_its_consumers(gateway_factory):
    away_from_window_end(HOUR_MS)
    gw = gateway_factory(config({"limits": [{"tokens": 20, "window": "hour"}], "key": ["tenant"]}))
    with gw.conn() as c:
        ok(chat(c, "alice-key", max_tokens=10), 20, 8)     # acme: 12 -> 7
        refused(chat(c, "bob-key", max_tokens=12), 20, 13,  # acme: 7 + 14 > 20
                "token limit exceeded: 20 tokens per 1h")
        ok(chat(c, "bob-key", max_tokens=10), 20, 1)       # acme: 7 + 12 = 19
        ok(chat(c, "carol-key", max_tokens=10), 20, 8)     # other: its own budget


def test_key_route_without_auth_and_consumer_budget_across_routes(gateway_factory):
    away_from_window_end(HOUR_MS)
    per_route = {"limits": [{"tokens": 12, "window": "hour"}], "key": ["route"]}
    gw = gateway_factory(config(None, routes=[route("a", ["/a/*"], per_route, auth=False),
                                              route("b", ["/b/*"], per_route, auth=False)]))
    with gw.conn() as c:
        ok(chat(c, None, path="/a/v1/chat/completions", max_tokens=10), 12, 0)
        refused(chat(c, None, path="/a/v1/chat/completions", max_tokens=10), 12, 5,
                "token limit exceeded: 12 tokens per 1h")
        ok(chat(c, None, path="/b/v1/chat/completions", max_tokens=10), 12, 0)

    # Without route in the key, a consumer's budget spans every route.
    shared = {"limits": [{"tokens": 12, "window": "hour"}]}
    gw2 = gateway_factory(config(None, routes=[route("a", ["/a/*"], shared), route("b", ["/b/*"], shared)]))
    with gw2.conn() as c:
        ok(chat(c, path="/a/v1/chat/completions", max_tokens=10), 12, 0)
        refused(chat(c, path="/b/v1/chat/completions", max_tokens=10), 12, 5,
                "token limit exceeded: 12 tokens per 1h")


def test_key_consumer_and_route_combined(gateway_factory):
    away_from_window_end(HOUR_MS)
    conf = {"limits": [{"tokens": 12, "window": "hour"}], "key": ["consumer", "route"]}
    gw = gateway_factory(config(None, routes=[route("a", ["/a/*"], conf), route("b", ["/b/*"], conf)]))
    with gw.conn() as c:
        ok(chat(c, path="/a/v1/chat/completions", max_tokens=10), 12, 0)
        ok(chat(c, path="/b/v1/chat/completions", max_tokens=10), 12, 0)
        ok(chat(c, "bob-key", path="/a/v1/chat/completions", max_tokens=10), 12, 0)
        refused(chat(c, path="/a/v1/chat/completions", max_tokens=10), 12, 5,
                "token limit exceeded: 12 tokens per 1h")


# ---- several limits and window forms -------------------------------------------------------

def test_every_limit_must_admit_and_headers_show_the_tightest(gateway_factory):
    away_from_window_end(60 * 1000)
    gw = gateway_factory(config({"limits": [{"tokens": 1000, "window": "hour"},
                                            {"tokens": 20, "window": "minute"}]}))
    with gw.conn() as c:
        ok(chat(c, max_tokens=10), 20, 8)                  # hour 12, minute 12 -> both 7
        t0 = now_ms()
        r = chat(c, max_tokens=12)                          # minute: 7 + 14 > 20
        t1 = now_ms()
        refused(r, 20, 13, "token limit exceeded: 20 tokens per 1m", window_ms=60000, t0=t0, t1=t1)
        ok(chat(c, max_tokens=10), 20, 1)                   # the refusal was not kept in the hour either
    with gw.conn() as c:
        # hour: 14 + 2 = 16 -> remaining 984; minute: 14 + 2 > 20? no: 16 -> 4
        ok(chat(c, max_tokens=0), 20, 4)


@pytest.mark.parametrize("window,window_ms,shown", [
    ("hour", HOUR_MS, "1h"), ("minute", 60000, "1m"), ("90s", 90000, "90s"), ("2h", 2 * HOUR_MS, "2h"),
    (HOUR_MS, HOUR_MS, "1h"), ("1d", 24 * HOUR_MS, "24h"),
])
def test_window_forms(gateway_factory, window, window_ms, shown):
    away_from_window_end(window_ms)
    gw = gateway_factory(config({"limits": [{"tokens": 12, "window": window}]}))
    with gw.conn() as c:
        ok(chat(c, max_tokens=10), 12, 0)
        t0 = now_ms()
        r = chat(c, max_tokens=10)
        t1 = now_ms()
        refused(r, 12, 5, "token limit exceeded: 12 tokens per %s" % shown, window_ms=window_ms, t0=t0, t1=t1)


# ---- config errors -------------------------------------------------------------------------

def check(sluice_bin, tmp_path, plugin_yaml, before="", extra=""):
    path = tmp_path / "conf.yaml"
    path.write_text(textwrap.dedent("""\
        listen: 127.0.0.1:1
        %sroutes:
          - name: r
            upstream: http://127.0.0.1:9
            plugins:%s
              - ai-token-limit: %s
        """) % (extra, before, plugin_yaml))
    proc = subprocess.run([sluice_bin, "check", "-c", str(path)], capture_output=True, text=True,
                          timeout=scaled(30), stdin=subprocess.DEVNULL)
    return proc, str(path)


ONE = "limits: [{tokens: 10, window: hour}]"
WINDOW_MSG = ": limits[0].window: must be minute, hour or a duration from 1s to 8784h (e.g. 30s, 5m, 1h, 1d)"
NEEDS_CONSUMER = (': needs a plugin that provides "consumer" earlier in the chain '
                  '(for "consumer": an auth plugin such as key-auth)')


@pytest.mark.parametrize("yaml,message", [
    ("{}", ".limits: missing required field"),
    ("{limits: []}", ".limits: must have at least 1 item"),
    ("{limits: [{tokens: 0, window: hour}], key: [route]}", ".limits[0].tokens: must be >= 1"),
    ("{limits: [{tokens: x, window: hour}], key: [route]}", ".limits[0].tokens: expected integer, got string"),
    ("{limits: [{tokens: 1}], key: [route]}", ".limits[0].window: missing required field"),
    ("{limits: [{tokens: 1, window: day}], key: [route]}", WINDOW_MSG),
    ("{limits: [{tokens: 1, window: 500ms}], key: [route]}", WINDOW_MSG),
    ("{limits: [{tokens: 1, window: 999}], key: [route]}", WINDOW_MSG),
    ("{limits: [{tokens: 1, window: 8785h}], key: [route]}", WINDOW_MSG),
    ("{limits: [{tokens: 1, window: -1s}], key: [route]}", WINDOW_MSG),
    ("{limits: [{tokens: 1, window: [1]}], key: [route]}", WINDOW_MSG),
    ("{limits: [{tokens: 1, window: hour}, {tokens: 2, window: 60m}], key: [route]}",
     ": limits[1].window: limits[0] has the same window"),
    ("{limits: [{tokens: 1, window: hour, burst: 2}], key: [route]}", ".limits[0].burst: unknown field"),
    ("{%s, key: [ip]}" % ONE, '.key[0]: must be one of "consumer", "tenant", "route"'),
    ("{%s, key: []}" % ONE, ".key: must have at least 1 item"),
    ("{%s, key: [route, route]}" % ONE, ": key[1]: route is listed twice"),
    ("{%s, key: route}" % ONE, ".key: expected array, got string"),
    ("{%s, key: [route], policy: cluster}" % ONE, '.policy: must be one of "local", "redis"'),
    ("{%s, key: [route], policy: redis}" % ONE, ": policy: redis needs a top-level redis: section"),
    ("{%s, key: [route], on_redis_error: retry}" % ONE, '.on_redis_error: must be one of "allow", "deny", "local"'),
    ("{%s, key: [route], estimate_max_tokens_default: -1}" % ONE, ".estimate_max_tokens_default: must be >= 0"),
    ("{%s, key: [route], estimate_max_tokens_default: 1.5}" % ONE,
     ".estimate_max_tokens_default: expected integer, got number"),
    ("{%s, key: [route], size: 1}" % ONE, ".size: unknown field"),
    ("{%s}" % ONE, NEEDS_CONSUMER),
    ("{%s, key: [tenant]}" % ONE, NEEDS_CONSUMER),
])
def test_bad_config_is_refused_by_check(sluice_bin, tmp_path, yaml, message):
    proc, path = check(sluice_bin, tmp_path, yaml)
    assert proc.returncode == 1
    assert proc.stderr == "%s:6: routes[0].plugins[0] (ai-token-limit)%s\n" % (path, message)


UNREACHABLE = ("warning: redis 127.0.0.1:1 is configured but unreachable (cannot connect: Connection refused); "
               "policies will follow their on_redis_error setting\n")


@pytest.mark.parametrize("yaml,before,extra,stderr", [
    ("{%s}" % ONE, "\n      - key-auth: {}", "consumers: [{name: a, credentials: {key-auth: [{key: k}]}}]\n", ""),
    ("{%s, key: [route]}" % ONE, "", "", ""),
    ("{limits: [{tokens: 5, window: 90s}, {tokens: 9, window: 3600000}], key: [route], policy: redis, "
     "on_redis_error: local, estimate_max_tokens_default: 0}", "", "redis: {url: \"redis://127.0.0.1:1\"}\n",
     UNREACHABLE),
])
def test_good_configs_pass_check(sluice_bin, tmp_path, yaml, before, extra, stderr):
    proc, path = check(sluice_bin, tmp_path, yaml, before=before, extra=extra)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "%s: ok\n" % path, stderr)


# ---- policy redis --------------------------------------------------------------------------

@pytest.fixture
def redis(tmp_path):
    with RedisServer(tmp_path) as r:
        yield r


def wait_for(predicate, what, timeout=30.0):
    deadline = time.monotonic() + scaled(timeout)
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("timed out waiting for " + what)


def node(gateway_factory, redis, conf, workers=1):
    """A gateway whose every worker has its Redis connection up."""
    gw = gateway_factory(config(dict({"policy": "redis"}, **conf), redis=redis, workers=workers))
    line = "redis %s:%d: connected" % (redis.host, redis.port)
    wait_for(lambda: gw.stderr().count(line) >= workers, "each worker to connect to Redis")
    return gw


def counter_key(redis, identity, window_ms=HOUR_MS):
    secs, micros = redis.command("TIME")
    t = int(secs) * 1000 + int(micros) // 1000
    return "atl:{%s}:%d:%d" % (identity, window_ms, t - t % window_ms)


def counter(redis, key):
    v = redis.command("GET", key)
    return None if v is None else int(v)


@pytest.mark.valgrind
def test_redis_counts_under_the_documented_key(gateway_factory, redis):
    away_from_window_end(HOUR_MS)
    gw = node(gateway_factory, redis, HOURLY_30)
    key = counter_key(redis, "alice")
    with gw.conn() as c:
        ok(chat(c, max_tokens=10), 30, 18)
        wait_for(lambda: counter(redis, key) == 7, "the correction to reach Redis")
        ok(chat(c, max_tokens=10), 30, 11)
        ok(chat(c, max_tokens=10), 30, 4)
        wait_for(lambda: counter(redis, key) == 21, "the corrections to reach Redis")
        refused(chat(c, max_tokens=10), 30, 9, "token limit exceeded: 30 tokens per 1h")
        assert counter(redis, key) == 21                  # a refusal writes nothing
    ttl = int(redis.command("PTTL", key))
    assert 0 < ttl <= HOUR_MS + 1000


def test_redis_streams_are_corrected_at_their_end(gateway_factory, redis):
    away_from_window_end(HOUR_MS)
    gw = node(gateway_factory, redis, HOURLY_30)
    key = counter_key(redis, "alice")
    with gw.conn() as c:
        for done, remaining in ((7, 18), (14, 11)):
            r = chat(c, max_tokens=10, stream=True)
            assert (r.status, tl(r)) == (200, (30, remaining)), r
            wait_for(lambda: counter(redis, key) == done, "the correction to reach Redis")


def test_two_nodes_in_turn_admit_exactly_what_the_budget_allows(gateway_factory, redis):
    """limit 100, estimate 12, actual 7: admitted while 7 * done + 12 <= 100,
    so 13 requests (7 * 12 + 12 = 96; a 14th would need 103)."""
    away_from_window_end(HOUR_MS)
    conf = {"limits": [{"tokens": 100, "window": "hour"}]}
    nodes = [node(gateway_factory, redis, conf) for _ in range(2)]
    key = counter_key(redis, "alice")
    statuses = []
    for i in range(16):
        with nodes[i % 2].conn() as c:
            statuses.append(chat(c, max_tokens=10).status)
        done = 7 * statuses.count(200)
        wait_for(lambda: counter(redis, key) == done, "the correction to reach Redis")
    assert statuses == [200] * 13 + [429] * 3
    assert counter(redis, key) == 91


def test_two_nodes_under_concurrent_load_never_exceed_the_budget(gateway_factory, redis):
    """Concurrent requests may each hold a reservation of 12 while others are
    corrected to 7, so fewer than 13 may be admitted -- never more. A request
    is only refused while more than 88 tokens are counted, which needs at
    least 8 admitted requests."""
    away_from_window_end(HOUR_MS)
    conf = {"limits": [{"tokens": 100, "window": "hour"}]}
    nodes = [node(gateway_factory, redis, conf, workers=2) for _ in range(2)]
    key = counter_key(redis, "alice")
    statuses, lock = [], threading.Lock()

    def client(gw, n):
        for _ in range(n):
            with gw.conn() as c:
                r = chat(c, max_tokens=10)
            with lock:
                statuses.append(r.status)

    threads = [threading.Thread(target=client, args=(nodes[i % 2], 5)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    admitted = statuses.count(200)
    assert statuses.count(429) == 30 - admitted
    assert 8 <= admitted <= 13, statuses
    wait_for(lambda: counter(redis, key) == 7 * admitted, "every correction to reach Redis")


def test_on_redis_error_allow_lets_requests_through_without_headers(gateway_factory, redis):
    gw = node(gateway_factory, redis, dict(HOURLY_30, on_redis_error="allow"))
    redis.kill()
    with gw.conn() as c:
        for _ in range(4):                                  # 4 * 12 would exceed 30
            r = chat(c, max_tokens=10)
            assert (r.status, tl(r)) == (200, None), r
    assert gw.stderr().count("ai-token-limit: redis unavailable") == 1


def test_on_redis_error_deny_answers_503(gateway_factory, redis):
    gw = node(gateway_factory, redis, dict(HOURLY_30, on_redis_error="deny"))
    redis.kill()
    with gw.conn() as c:
        r = chat(c, max_tokens=10)
    err = expect.gateway_error(r, 503, "token_limit_unavailable", "api_error")
    assert err["message"] == "token limiting is unavailable"
    assert tl(r) is None


@pytest.mark.valgrind
def test_on_redis_error_local_counts_in_the_node_and_redis_resumes(gateway_factory, redis):
    away_from_window_end(HOUR_MS)
    gw = node(gateway_factory, redis, dict(HOURLY_30, on_redis_error="local"))
    key = counter_key(redis, "alice")
    with gw.conn() as c:
        ok(chat(c, max_tokens=10), 30, 18)                 # in Redis
    wait_for(lambda: counter(redis, key) == 7, "the correction to reach Redis")
    redis.kill()
    with gw.conn() as c:
        ok(chat(c, max_tokens=10), 30, 18)                 # locally: 0 + 12 -> 7
        ok(chat(c, max_tokens=10), 30, 11)                 # locally: 7 + 12 -> 14
    redis.start()
    def counted_in_redis_again():
        with gw.conn() as c:
            r = chat(c, max_tokens=0)
        return r.status == 200 and tl(r) == (30, 30 - 7 - 2)   # Redis was restarted empty: 0 + 2
    wait_for(counted_in_redis_again, "Redis to count again")
    assert "ai-token-limit: redis answers again" in gw.stderr()
