"""rate-limit with policy: redis — one counter for every node.

Two sluice processes share one redis-server (the RedisServer helper). A
window check INCRs the counter first (GET of the previous window too, for a
sliding window) and takes a refused request back with a DECR nothing waits
for; a token-bucket check is one Lua script with Redis' clock. Either way
concurrent load on both nodes admits exactly the configured count. A
counter is read where the specs need its final value only once it has
settled (settled() below): the take-back of the last refused request may
still be on its way when the client has its 429. When Redis goes away
(SIGKILL, under load) on_redis_error decides: allow lets everything through,
deny answers 503 rate_limit_unavailable, local counts in each node's shared
dict (so each node admits the count on its own). After Redis comes back on the
same port, counting resumes there: the specs poll until a request is counted
in Redis again, which is a bounded wait, not a timing assertion.

"sluice: ready" does not wait for Redis (start-up never does): each worker
connects on its own loop afterwards, and a request it takes before its
connection is up follows on_redis_error like any other Redis failure (counted
locally, let through, or 503). So every spec with Redis up first waits for
each worker's "redis <host:port>: connected" line (node() below).

Windows are one hour (see away_from_window_end in helpers/rate_window.py);
counters are read straight from Redis under their documented names,
rl:{<route>|<key parts>}:<limit index>:<window start ms> (":tat" for the token
bucket)."""

import threading
import time

import pytest

import expect
from configs import proxy
from rate_window import away_from_window_end
from redis import RedisServer
from scale import scaled

from test_plugin_rate_limit import expect_ok, limited, parallel, ratelimit_headers

HOUR_MS = 3600 * 1000
N = 6


def cfg(upstream, redis, conf, workers=1):
    c = proxy(upstream, route={"plugins": [{"rate-limit": dict({"policy": "redis"}, **conf)}]},
              workers=workers)
    c["redis"] = {"url": redis.url, "command_timeout": "200ms", "connect_timeout": "200ms"}
    return c


def redis_now_ms(redis):
    secs, micros = redis.command("TIME")
    return int(secs) * 1000 + int(micros) // 1000


def window_key(redis, identity, index=0, window_ms=HOUR_MS):
    now = redis_now_ms(redis)
    return "rl:{%s}:%d:%d" % (identity, index, now - now % window_ms)


def counter(redis, key):
    v = redis.command("GET", key)
    return None if v is None else int(v)


def settled(redis, key, expected):
    """Waits (bounded) for the counter to read expected: refused requests'
    take-backs are not waited for by the gateway. A counter that never gets
    there (a take-back lost, a request counted twice) fails the spec."""
    try:
        wait_for(lambda: counter(redis, key) == expected, "%s to read %r" % (key, expected))
    except AssertionError:
        raise AssertionError("%s reads %r, not %r" % (key, counter(redis, key), expected))


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


def node(gateway_factory, upstream, redis, conf, workers=1):
    """A started gateway whose every worker has its Redis connection up (each
    worker says so once, when its first connection is ready)."""
    gw = gateway_factory(cfg(upstream, redis, conf, workers))
    line = "redis %s:%d: connected" % (redis.host, redis.port)
    wait_for(lambda: gw.stderr().count(line) >= workers, "each worker to connect to Redis")
    return gw


def two_nodes(gateway_factory, upstream, redis, conf, workers=1):
    return [node(gateway_factory, upstream, redis, conf, workers) for _ in range(2)]


# ---- one counter for all nodes ------------------------------------------------------------

@pytest.mark.parametrize("algorithm", ["fixed_window", "sliding_window", "token_bucket"])
def test_two_nodes_under_concurrent_load_admit_exactly_the_count(
        gateway_factory, upstream, redis, algorithm):
    away_from_window_end(HOUR_MS)
    gws = two_nodes(gateway_factory, upstream, redis,
                    {"limits": [{"count": N, "window": "1h"}], "algorithm": algorithm,
                     "key": ["global"]}, workers=2)
    calls = [(lambda gw=gw: gw.get("/echo").status) for gw in gws for _ in range(12)]
    statuses = parallel(calls)
    assert sorted(statuses) == [200] * N + [429] * (24 - N)
    assert len(upstream.requests) == N
    if algorithm == "token_bucket":
        assert redis.command("EXISTS", "rl:{main|*}:0:tat") == 1
    else:
        settled(redis, window_key(redis, "main|*"), N)


@pytest.mark.valgrind
def test_redis_headers_and_counters_have_their_documented_shape(gateway_factory, upstream, redis):
    a, b = two_nodes(gateway_factory, upstream, redis,
                     {"limits": [{"count": 3, "window": "1h"}], "algorithm": "token_bucket",
                      "key": ["ip", "header:X-User"]})
    # Each node's first script run loads it into Redis; done here, on another
    # key, the requests below follow each other closely (the Reset values
    # assume less than a second between them).
    for gw in (a, b):
        expect_ok(gw.get("/echo", [("X-User", "warm-up")]))
    assert ratelimit_headers(expect_ok(a.get("/echo", [("X-User", "u|1")]))) == ("3", "2", "1200")
    assert ratelimit_headers(expect_ok(b.get("/echo", [("X-User", "u|1")]))) == ("3", "1", "2400")
    assert ratelimit_headers(expect_ok(a.get("/echo", [("X-User", "u|1")]))) == ("3", "0", "3600")
    retry, headers = limited(b.get("/echo", [("X-User", "u|1")]), "rate limit exceeded: 3 per 1h")
    assert (retry, headers) == ("1200", ("3", "0", "1200"))
    assert sorted(redis.command("KEYS", "rl:*")) == [b"rl:{main|127.0.0.1|u%7C1}:0:tat",
                                                     b"rl:{main|127.0.0.1|warm-up}:0:tat"]
    tat = int(redis.command("GET", "rl:{main|127.0.0.1|u%7C1}:0:tat"))
    # three intervals of 20 minutes past the first request, in microseconds of Redis' clock
    assert 0 < tat - redis_now_ms(redis) * 1000 <= 3600 * 1000 * 1000


def test_refused_requests_count_in_no_limit(gateway_factory, upstream, redis):
    away_from_window_end(HOUR_MS)
    gw = node(gateway_factory, upstream, redis, {"limits": [{"count": 1, "window": "1h"},
                                                            {"count": 5, "window": "1h"}],
                                                 "algorithm": "fixed_window", "key": ["ip"]})
    expect_ok(gw.get("/echo"))
    for _ in range(3):
        limited(gw.get("/echo"), "rate limit exceeded: 1 per 1h")
    settled(redis, window_key(redis, "main|127.0.0.1", 0), 1)
    settled(redis, window_key(redis, "main|127.0.0.1", 1), 1)


@pytest.mark.parametrize("algorithm", ["fixed_window", "sliding_window"])
def test_window_counters_expire_a_second_after_they_stop_mattering(gateway_factory, upstream,
                                                                   redis, algorithm):
    away_from_window_end(HOUR_MS)
    gw = node(gateway_factory, upstream, redis, {"limits": [{"count": 2, "window": "1h"}],
                                                 "algorithm": algorithm, "key": ["ip"]})
    before = redis_now_ms(redis)
    expect_ok(gw.get("/echo"))
    expect_ok(gw.get("/echo"))
    limited(gw.get("/echo"), "rate limit exceeded: 2 per 1h")
    key = window_key(redis, "main|127.0.0.1")
    settled(redis, key, 2)
    # the current window's end plus a second; a sliding window's counter is
    # read as the previous window for one more window
    end = before - before % HOUR_MS + HOUR_MS + 1000 + (HOUR_MS if algorithm == "sliding_window" else 0)
    ttl = redis.command("PTTL", key)
    assert 0 < ttl <= end - before
    assert sorted(redis.command("KEYS", "rl:*")) == [key.encode()]


def test_sliding_window_reads_the_previous_window_from_redis(gateway_factory, upstream, redis):
    away_from_window_end(HOUR_MS)
    gw = node(gateway_factory, upstream, redis, {"limits": [{"count": 4, "window": "1h"}],
                                                 "key": ["ip"]})
    before = redis_now_ms(redis)
    start = before - before % HOUR_MS
    # As if 1000 requests had come in the previous hour: weighted by what is
    # left of this hour they are over the limit. One more fits once their
    # weight is down to 3, at 3600 s * (1 - 3/1000) = 3589.2 s into the hour.
    redis.command("SET", "rl:{main|127.0.0.1}:0:%d" % (start - HOUR_MS), "1000", "PX", "7200000")
    resp = gw.get("/echo")
    after = redis_now_ms(redis)
    retry, headers = limited(resp, "rate limit exceeded: 4 per 1h")
    fits_at = start + 3589200
    assert -(-(fits_at - after) // 1000) <= int(retry) <= -(-(fits_at - before) // 1000)
    assert headers == ("4", "0", retry)
    assert upstream.requests == []


def test_a_node_started_while_redis_is_down_follows_on_redis_error(gateway_factory, upstream,
                                                                   tmp_path):
    redis = RedisServer(tmp_path, start=False)
    conf = {"limits": [{"count": 1, "window": "1h"}], "key": ["ip"], "on_redis_error": "deny"}
    gw = gateway_factory(cfg(upstream, redis, conf))
    resp = gw.get("/echo")
    err = expect.gateway_error(resp, 503, "rate_limit_unavailable", "api_error")
    assert err["message"] == "rate limiting is unavailable"
    assert upstream.requests == []
    assert "rate-limit: redis unavailable" in gw.stderr()


# ---- Redis killed under load, then restarted ----------------------------------------------

class Load:
    """Threads sending requests to one gateway until stopped; each result is
    (monotonic start time, response)."""

    def __init__(self, gw, threads=2):
        self.gw = gw
        self.results = []
        self.error = None
        self.lock = threading.Lock()
        self.stop_event = threading.Event()
        self.threads = [threading.Thread(target=self._run) for _ in range(threads)]
        for t in self.threads:
            t.start()

    def _run(self):
        try:
            while not self.stop_event.is_set():
                started = time.monotonic()
                resp = self.gw.get("/echo")
                with self.lock:
                    self.results.append((started, resp))
        except Exception as e:
            # Kept for the test to raise: a thread that died quietly would
            # leave the spec waiting out its whole wait_for for results.
            with self.lock:
                self.error = e

    def count_since(self, t):
        with self.lock:
            if self.error is not None:
                raise self.error
            return sum(1 for started, _ in self.results if started > t)

    def stop(self):
        self.stop_event.set()
        for t in self.threads:
            t.join(scaled(30))
        if self.error is not None:
            raise self.error
        return self.results


def exhaust_in_redis(gws, key, redis):
    """Concurrent load from both nodes until the count is used up in Redis."""
    statuses = parallel([(lambda gw=gw: gw.get("/echo").status) for gw in gws for _ in range(N)])
    assert sorted(statuses) == [200] * N + [429] * N
    settled(redis, key, N)


def kill_under_load(gws, redis, after_kill=N + 3):
    """Kills Redis while both nodes are under load; returns each node's results
    and the time the kill was done."""
    loads = [Load(gw) for gw in gws]
    try:
        wait_for(lambda: all(l.count_since(float("-inf")) >= 3 for l in loads), "load before the kill")
        redis.kill()
        killed = time.monotonic()
        wait_for(lambda: all(l.count_since(killed) >= after_kill for l in loads), "load after the kill")
    finally:
        # On a failure too: threads still sending would keep the gateways
        # busy through their shutdown at teardown.
        for l in loads:
            l.stop_event.set()
    return [l.stop() for l in loads], killed


def resume_in_redis(gw, redis, key):
    """Sends requests through gw until one is counted in Redis again."""
    def counted():
        before = counter(redis, key) or 0
        gw.get("/echo")
        return (counter(redis, key) or 0) == before + 1
    wait_for(counted, "counting to resume in Redis")


@pytest.mark.valgrind
@pytest.mark.parametrize("on_error", ["allow", "deny", "local"])
def test_redis_killed_under_load_then_restarted(gateway_factory, upstream, redis, on_error):
    away_from_window_end(HOUR_MS, margin_s=60)
    gws = two_nodes(gateway_factory, upstream, redis,
                    {"limits": [{"count": N, "window": "1h"}], "algorithm": "fixed_window",
                     "key": ["global"], "on_redis_error": on_error})
    key = window_key(redis, "main|*")
    exhaust_in_redis(gws, key, redis)

    per_node, killed = kill_under_load(gws, redis)
    for results in per_node:
        # before the kill Redis refused everything (the count was used up)
        after = [resp for started, resp in results if started > killed]
        if on_error == "allow":
            assert {r.status for _, r in results} <= {200, 429}
            assert {r.status for r in after} == {200}
            assert all(ratelimit_headers(r) == (None, None, None) for r in after)
        elif on_error == "deny":
            assert {r.status for _, r in results} <= {429, 503}
            assert {r.status for r in after} == {503}
            for r in after:
                expect.gateway_error(r, 503, "rate_limit_unavailable", "api_error")
        else:
            # every 200 came from this node's own counters: exactly N each
            statuses = [r.status for _, r in results]
            assert set(statuses) <= {200, 429}
            assert statuses.count(200) == N
    for gw in gws:
        assert gw.running()
        assert gw.stderr().count("rate-limit: redis unavailable") == 1

    redis.start()   # same port, empty
    for gw in gws:
        resume_in_redis(gw, redis, key)
        assert "rate-limit: redis answers again" in gw.stderr()
    # from here on Redis counts for both nodes again, up to N in all
    used = counter(redis, key)
    statuses = parallel([(lambda gw=gw: gw.get("/echo").status) for gw in gws for _ in range(N)])
    assert sorted(statuses) == [200] * (N - used) + [429] * (N + used)
    settled(redis, key, N)
