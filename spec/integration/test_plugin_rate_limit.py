"""rate-limit (plugins/rate-limit) with the local policy: counters in the
shared dict, common to every worker of one sluice process.

Windows are long (1h and more) so that a test cannot run across a window
boundary: fixed and sliding windows start on multiples of their length since
the Unix epoch, and `away_from_window_end` waits (it asserts nothing) when a
boundary is near. Token-bucket (GCRA) headers depend only on the time between
requests, so their values are exact; fixed and sliding windows report the time
to the window's end, which is checked against the bounds the test's own clock
gives before and after the request. The Redis policy is in
test_rate_limit_cluster.py."""

import os
import subprocess
import textwrap
import threading
import time

import pytest

import expect
from configs import proxy, route
from rate_window import away_from_window_end
from scale import scaled

HOUR_MS = 3600 * 1000

CONSUMERS = [
    {"name": "alice", "credentials": {"key-auth": [{"key": "alice-key-1"}, {"key": "alice-key-2"}]}},
    {"name": "bob", "credentials": {"key-auth": [{"key": "bob-key"}]}},
]


def cfg(upstream, conf, before=(), **top):
    return proxy(upstream, route={"plugins": list(before) + [{"rate-limit": conf}]}, **top)


def ratelimit_headers(resp):
    return (resp.header("RateLimit-Limit"), resp.header("RateLimit-Remaining"),
            resp.header("RateLimit-Reset"))


def no_ratelimit_headers(resp):
    return all(resp.header(h) is None for h in
               ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "Retry-After"))


def limited(resp, message):
    """A 429 from the plugin; returns (Retry-After, RateLimit-* headers)."""
    err = expect.gateway_error(resp, 429, "rate_limited", "rate_limit_error")
    assert err["message"] == message
    assert len(resp.headers_named("Retry-After")) == 1
    return resp.header("Retry-After"), ratelimit_headers(resp)


def timed(call):
    before = int(time.time() * 1000)
    resp = call()
    after = int(time.time() * 1000)
    return resp, before, after


def seconds_to_window_end(window_ms, before_ms, after_ms, extra_ms=0):
    """The range of ceil((window end - now + extra) / 1s) over the request's time span."""
    end = before_ms - before_ms % window_ms + window_ms
    assert after_ms < end, "the request straddled a window boundary"
    return range(-(-(end - after_ms + extra_ms) // 1000), -(-(end - before_ms + extra_ms) // 1000) + 1)


def parallel(calls):
    """Runs the calls at once (one thread each); returns their results in order."""
    results = [None] * len(calls)

    def run(i):
        results[i] = calls[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(scaled(60))
    assert all(r is not None for r in results)
    return results


# ---- each algorithm: exact admitted counts and headers ------------------------------

@pytest.mark.valgrind
def test_token_bucket_admits_count_then_refuses_with_exact_headers(gateway_factory, upstream):
    gw = gateway_factory(cfg(upstream, {"limits": [{"count": 3, "window": "1h"}],
                                        "algorithm": "token_bucket", "key": ["ip"]}))
    # one token per 20 minutes: each admitted request pushes "full again" 1200 s further
    seen = [ratelimit_headers(expect_ok(gw.get("/echo/%d" % i))) for i in range(3)]
    assert seen == [("3", "2", "1200"), ("3", "1", "2400"), ("3", "0", "3600")]
    retry, headers = limited(gw.get("/echo/3"), "rate limit exceeded: 3 per 1h")
    assert (retry, headers) == ("1200", ("3", "0", "1200"))
    assert [r.path for r in upstream.requests] == ["/echo/0", "/echo/1", "/echo/2"]


def expect_ok(resp):
    assert resp.status == 200, resp
    return resp


def test_token_bucket_burst_is_what_may_come_at_once(gateway_factory, upstream):
    gw = gateway_factory(cfg(upstream, {"limits": [{"count": 4, "window": "1h", "burst": 2}],
                                        "algorithm": "token_bucket", "key": ["ip"]}))
    assert ratelimit_headers(expect_ok(gw.get("/echo"))) == ("4", "1", "900")
    assert ratelimit_headers(expect_ok(gw.get("/echo"))) == ("4", "0", "1800")
    retry, headers = limited(gw.get("/echo"), "rate limit exceeded: 4 per 1h")
    assert (retry, headers) == ("900", ("4", "0", "900"))


def test_fixed_window_admits_count_then_refuses_until_the_window_ends(gateway_factory, upstream):
    gw = gateway_factory(cfg(upstream, {"limits": [{"count": 3, "window": "1h"}],
                                        "algorithm": "fixed_window", "key": ["ip"]}))
    away_from_window_end(HOUR_MS)
    for remaining in ("2", "1", "0"):
        resp, before, after = timed(lambda: gw.get("/echo"))
        limit, left, reset = ratelimit_headers(expect_ok(resp))
        assert (limit, left) == ("3", remaining)
        assert int(reset) in seconds_to_window_end(HOUR_MS, before, after)
    resp, before, after = timed(lambda: gw.get("/echo"))
    retry, (limit, left, reset) = limited(resp, "rate limit exceeded: 3 per 1h")
    assert (limit, left, reset) == ("3", "0", retry)
    assert int(retry) in seconds_to_window_end(HOUR_MS, before, after)
    assert len(upstream.requests) == 3


def test_sliding_window_admits_count_then_refuses_until_the_count_has_slid_out(
        gateway_factory, upstream):
    gw = gateway_factory(cfg(upstream, {"limits": [{"count": 3, "window": "1h"}], "key": ["ip"]}))
    away_from_window_end(HOUR_MS)
    for remaining in ("2", "1", "0"):
        resp, before, after = timed(lambda: gw.get("/echo"))
        limit, left, reset = ratelimit_headers(expect_ok(resp))
        assert (limit, left) == ("3", remaining)
        assert int(reset) in seconds_to_window_end(HOUR_MS, before, after)
    # 3 in this window: in the next one they weigh 3 * (1 - elapsed), which
    # leaves room for one more request 20 minutes in
    resp, before, after = timed(lambda: gw.get("/echo"))
    retry, (limit, left, reset) = limited(resp, "rate limit exceeded: 3 per 1h")
    assert (limit, left, reset) == ("3", "0", retry)
    assert int(retry) in seconds_to_window_end(HOUR_MS, before, after, extra_ms=1200 * 1000)
    assert len(upstream.requests) == 3


@pytest.mark.parametrize("algorithm", ["fixed_window", "sliding_window", "token_bucket"])
def test_all_workers_share_the_counters_exactly(gateway_factory, upstream, algorithm):
    gw = gateway_factory(cfg(upstream, {"limits": [{"count": 10, "window": "1h"}],
                                        "algorithm": algorithm, "key": ["ip"]}, workers=4))
    away_from_window_end(HOUR_MS)
    statuses = parallel([lambda: gw.get("/echo").status for _ in range(40)])
    assert sorted(statuses) == [200] * 10 + [429] * 30
    assert len(upstream.requests) == 10


# ---- several limits ----------------------------------------------------------------

def test_several_limits_all_must_pass_and_the_tightest_is_shown(gateway_factory, upstream):
    gw = gateway_factory(cfg(upstream, {"limits": [{"count": 4, "window": "1h"},
                                                   {"count": 2, "window": "24h"}],
                                        "algorithm": "token_bucket", "key": ["ip"]}))
    # first request: 3 left of 4/h, 1 left of 2/day -> the daily limit is shown
    assert ratelimit_headers(expect_ok(gw.get("/echo"))) == ("2", "1", "43200")
    assert ratelimit_headers(expect_ok(gw.get("/echo"))) == ("2", "0", "86400")
    retry, headers = limited(gw.get("/echo"), "rate limit exceeded: 2 per 24h")
    assert (retry, headers) == ("43200", ("2", "0", "43200"))


def test_a_refused_request_uses_nothing_of_the_other_limits(gateway_factory, upstream):
    gw = gateway_factory(cfg(upstream, {"limits": [{"count": 3, "window": "1h"},
                                                   {"count": 1, "window": "200ms"}],
                                        "algorithm": "token_bucket", "key": ["ip"]}))
    for _ in range(2):
        expect_ok(gw.get("/echo"))
        limited(gw.get("/echo"), "rate limit exceeded: 1 per 200ms")
        time.sleep(0.3)   # the 200ms limit has room again
    # the hourly limit counted two requests, not four: one more fits
    expect_ok(gw.get("/echo"))
    time.sleep(0.3)
    limited(gw.get("/echo"), "rate limit exceeded: 3 per 1h")
    assert len(upstream.requests) == 3


# ---- keys ---------------------------------------------------------------------------

def key_auth_cfg(upstream, key):
    c = cfg(upstream, {"limits": [{"count": 1, "window": "1h"}], "algorithm": "token_bucket",
                       "key": key}, before=[{"key-auth": {}}])
    c["consumers"] = CONSUMERS
    return c


def test_consumer_key_gives_each_consumer_its_own_bucket(gateway_factory, upstream):
    gw = gateway_factory(key_auth_cfg(upstream, ["consumer"]))
    expect_ok(gw.get("/echo", [("X-Api-Key", "alice-key-1")]))
    message = "rate limit exceeded: 1 per 1h"
    limited(gw.get("/echo", [("X-Api-Key", "alice-key-1")]), message)
    limited(gw.get("/echo", [("X-Api-Key", "alice-key-2")]), message)   # same consumer
    expect_ok(gw.get("/echo", [("X-Api-Key", "bob-key")]))
    limited(gw.get("/echo", [("X-Api-Key", "bob-key")]), message)
    assert [r.header("X-Consumer-Name") for r in upstream.requests] == ["alice", "bob"]


def test_credential_key_gives_each_credential_its_own_bucket(gateway_factory, upstream):
    gw = gateway_factory(key_auth_cfg(upstream, ["credential"]))
    expect_ok(gw.get("/echo", [("X-Api-Key", "alice-key-1")]))
    limited(gw.get("/echo", [("X-Api-Key", "alice-key-1")]), "rate limit exceeded: 1 per 1h")
    expect_ok(gw.get("/echo", [("X-Api-Key", "alice-key-2")]))


def test_ip_key_separates_clients_by_address(gateway_factory, upstream):
    gw = gateway_factory(cfg(upstream, {"limits": [{"count": 1, "window": "1h"}],
                                        "algorithm": "token_bucket", "key": ["ip"]}))
    expect_ok(gw.get("/echo", source_ip="127.0.0.2"))
    limited(gw.get("/echo", source_ip="127.0.0.2"), "rate limit exceeded: 1 per 1h")
    expect_ok(gw.get("/echo", source_ip="127.0.0.3"))
    limited(gw.get("/echo", source_ip="127.0.0.3"), "rate limit exceeded: 1 per 1h")


def test_header_key_separates_values_and_an_absent_header_counts_as_dash(gateway_factory, upstream):
    gw = gateway_factory(cfg(upstream, {"limits": [{"count": 1, "window": "1h"}],
                                        "algorithm": "token_bucket", "key": ["header:X-User"]}))
    expect_ok(gw.get("/echo", [("X-User", "u1")]))
    limited(gw.get("/echo", [("x-user", "u1")]), "rate limit exceeded: 1 per 1h")
    expect_ok(gw.get("/echo", [("X-User", "u2")]))
    # every request without the header shares the "-" bucket
    expect_ok(gw.get("/echo"))
    limited(gw.get("/echo"), "rate limit exceeded: 1 per 1h")
    # values that look like key syntax are encoded, not confused with others
    expect_ok(gw.get("/echo", [("X-User", "u1|x}")]))
    expect_ok(gw.get("/echo", [("X-User", "u1%7Cx%7D")]))


def test_combined_key_needs_every_part_to_match(gateway_factory, upstream):
    gw = gateway_factory(cfg(upstream, {"limits": [{"count": 1, "window": "1h"}],
                                        "algorithm": "token_bucket",
                                        "key": ["ip", "header:X-User"]}))
    expect_ok(gw.get("/echo", [("X-User", "u1")], source_ip="127.0.0.2"))
    limited(gw.get("/echo", [("X-User", "u1")], source_ip="127.0.0.2"), "rate limit exceeded: 1 per 1h")
    expect_ok(gw.get("/echo", [("X-User", "u1")], source_ip="127.0.0.3"))
    expect_ok(gw.get("/echo", [("X-User", "u2")], source_ip="127.0.0.2"))


def test_global_key_is_one_bucket_for_every_client(gateway_factory, upstream):
    gw = gateway_factory(cfg(upstream, {"limits": [{"count": 2, "window": "1h"}],
                                        "algorithm": "token_bucket", "key": ["global"]}))
    expect_ok(gw.get("/echo", [("X-User", "u1")], source_ip="127.0.0.2"))
    expect_ok(gw.get("/echo", [("X-User", "u2")], source_ip="127.0.0.3"))
    limited(gw.get("/echo", source_ip="127.0.0.4"), "rate limit exceeded: 2 per 1h")


def test_routes_never_share_counters(gateway_factory, upstream):
    conf = {"limits": [{"count": 1, "window": "1h"}], "algorithm": "token_bucket"}
    a = route("a", upstream, paths=["/a/*"])
    a["plugins"] = [{"rate-limit": dict(conf, key=["route"])}]
    b = route("b", upstream, paths=["/b/*"])
    b["plugins"] = [{"rate-limit": dict(conf, key=["route"])}]
    # c and d get the same instance from the global list, keyed globally
    c = route("c", upstream, paths=["/c/*"])
    d = route("d", upstream, paths=["/d/*"])
    gw = gateway_factory({"routes": [a, b, c, d],
                          "plugins": [{"rate-limit": dict(conf, key=["global"])}]})
    for prefix in ("/a/", "/b/", "/c/", "/d/"):
        expect_ok(gw.get(prefix + "1"))
        limited(gw.get(prefix + "2"), "rate limit exceeded: 1 per 1h")


# ---- mode: delay ---------------------------------------------------------------------

@pytest.mark.valgrind
def test_delay_mode_holds_a_request_until_it_fits(gateway_factory, upstream):
    gw = gateway_factory(cfg(upstream, {"limits": [{"count": 1, "window": "300ms"}],
                                        "algorithm": "token_bucket", "key": ["ip"],
                                        "mode": "delay", "max_delay": "5s"}))
    expect_ok(gw.get("/echo/1"))
    resp = expect_ok(gw.get("/echo/2"))
    assert ratelimit_headers(resp) == ("1", "0", "1")
    assert [r.path for r in upstream.requests] == ["/echo/1", "/echo/2"]


def test_delay_mode_refuses_what_would_wait_longer_than_max_delay(gateway_factory, upstream):
    gw = gateway_factory(cfg(upstream, {"limits": [{"count": 1, "window": "1h"}],
                                        "algorithm": "token_bucket", "key": ["ip"],
                                        "mode": "delay", "max_delay": "10ms"}))
    expect_ok(gw.get("/echo/1"))
    retry, headers = limited(gw.get("/echo/2"), "rate limit exceeded: 1 per 1h")
    assert (retry, headers) == ("3600", ("1", "0", "3600"))
    assert [r.path for r in upstream.requests] == ["/echo/1"]


@pytest.mark.parametrize("algorithm", ["fixed_window", "sliding_window", "token_bucket"])
def test_delay_mode_two_waiting_for_one_slot(gateway_factory, upstream, algorithm):
    # One request per second: both wait for the next slot, one gets it, and
    # the other would have to wait past max_delay for the one after. Under a
    # sliding window the first request still weighs in the next window, so
    # the next slot is two windows away.
    max_delay = {"fixed_window": "1500ms", "sliding_window": "2500ms", "token_bucket": "1500ms"}
    gw = gateway_factory(cfg(upstream, {"limits": [{"count": 1, "window": "1s"}],
                                        "algorithm": algorithm, "key": ["ip"], "mode": "delay",
                                        "max_delay": max_delay[algorithm]}, workers=2))
    if algorithm == "token_bucket":
        expect_ok(gw.get("/echo/first"))
    else:
        # leave the window of the first request plenty of time before its end
        now_ms = int(time.time() * 1000)
        time.sleep((1000 - now_ms % 1000) / 1000 + 0.01)
        expect_ok(gw.get("/echo/first"))
    results = parallel([lambda: gw.get("/echo/waiting") for _ in range(2)])
    assert sorted(r.status for r in results) == [200, 429]
    for r in results:
        if r.status == 429:
            limited(r, "rate limit exceeded: 1 per 1s")


# ---- headers: false, non-2xx responses ------------------------------------------------

def test_headers_off_sends_only_retry_after(gateway_factory, upstream):
    gw = gateway_factory(cfg(upstream, {"limits": [{"count": 1, "window": "1h"}],
                                        "algorithm": "token_bucket", "key": ["ip"],
                                        "headers": False}))
    assert no_ratelimit_headers(expect_ok(gw.get("/echo")))
    resp = gw.get("/echo")
    retry, headers = limited(resp, "rate limit exceeded: 1 per 1h")
    assert (retry, headers) == ("3600", (None, None, None))


def test_headers_reach_the_client_on_any_upstream_status(gateway_factory, upstream):
    gw = gateway_factory(cfg(upstream, {"limits": [{"count": 5, "window": "1h"}],
                                        "algorithm": "token_bucket", "key": ["ip"]}))
    resp = gw.get("/status/503")
    assert resp.status == 503
    assert ratelimit_headers(resp) == ("5", "4", "720")
    resp = gw.get("/headers?X-From-Upstream=yes")
    assert resp.header("X-From-Upstream") == "yes"
    assert ratelimit_headers(resp) == ("5", "3", "1440")


# ---- dict --------------------------------------------------------------------------------

def test_dict_names_where_counters_live_and_they_outlive_a_reload(gateway_factory, upstream):
    def with_dict(name):
        return cfg(upstream, {"limits": [{"count": 1, "window": "1h"}], "algorithm": "token_bucket",
                              "key": ["ip"], "dict": name})

    gw = gateway_factory(with_dict("limits-a"))
    expect_ok(gw.get("/echo"))
    limited(gw.get("/echo"), "rate limit exceeded: 1 per 1h")
    gw.write_config(with_dict("limits-b"))
    assert gw.reload().ok
    expect_ok(gw.get("/echo"))     # fresh counters in another dict
    gw.write_config(with_dict("limits-a"))
    assert gw.reload().ok
    limited(gw.get("/echo"), "rate limit exceeded: 1 per 1h")   # still counted in limits-a


# ---- config errors -------------------------------------------------------------------------

def check(sluice_bin, tmp_path, plugin_yaml, before="", extra=""):
    path = tmp_path / "conf.yaml"
    path.write_text(textwrap.dedent("""\
        listen: 127.0.0.1:1
        %sroutes:
          - name: r
            upstream: http://127.0.0.1:9
            plugins:%s
              - rate-limit: %s
        """) % (extra, before, plugin_yaml))
    proc = subprocess.run([sluice_bin, "check", "-c", str(path)], capture_output=True, text=True,
                          timeout=scaled(30), stdin=subprocess.DEVNULL)
    return proc, str(path)


KEY_PATTERN = ".key[0]: must match ^(consumer|credential|ip|route|global|header:[-!#$%&'*+.^_`|~0-9A-Za-z]+)$"
ONE = "limits: [{count: 1, window: 1s}]"


@pytest.mark.parametrize("yaml,message", [
    ("{}", ".limits: missing required field"),
    ("{limits: []}", ".limits: must have at least 1 item"),
    ("{limits: [{count: 0, window: 1s}], key: [ip]}", ".limits[0].count: must be >= 1"),
    ("{limits: [{count: 1, window: soon}], key: [ip]}", '.limits[0].window: invalid duration "soon"'),
    ("{limits: [{count: 1}], key: [ip]}", ".limits[0].window: missing required field"),
    ("{limits: [{count: 1, window: 0}], key: [ip]}", ".limits[0].window: must be >= 1ms"),
    ("{limits: [{count: 1, window: 1s, size: 2}], key: [ip]}", ".limits[0].size: unknown field"),
    ("{%s, key: [ip], algorithm: leaky}" % ONE,
     '.algorithm: must be one of "fixed_window", "sliding_window", "token_bucket"'),
    ("{%s, key: [cookie]}" % ONE, KEY_PATTERN),
    ("{%s, key: [\"header:X User\"]}" % ONE, KEY_PATTERN),
    ("{%s, key: []}" % ONE, ".key: must have at least 1 item"),
    ("{%s, key: ip}" % ONE, ".key: expected array, got string"),
    ("{%s, key: [ip], policy: cluster}" % ONE, '.policy: must be one of "local", "redis"'),
    ("{%s, key: [ip], mode: queue}" % ONE, '.mode: must be one of "reject", "delay"'),
    ("{%s, key: [ip], on_redis_error: ignore}" % ONE,
     '.on_redis_error: must be one of "allow", "deny", "local"'),
    ("{%s, key: [ip], headers: \"yes\"}" % ONE, ".headers: expected boolean, got string"),
    ("{%s, key: [ip], max_delay: 11m}" % ONE, ".max_delay: must be <= 10m"),
    ("{%s, key: [ip], dict: \"\"}" % ONE, ".dict: must be at least 1 character"),
    ("{%s, key: [ip], color: red}" % ONE, ".color: unknown field"),
    ("{limits: [{count: 1, window: 1s, burst: 2}], key: [ip]}",
     ": limits[0].burst: only token_bucket uses burst"),
    ("{limits: [{count: 2000, window: 1ms}], key: [ip], algorithm: token_bucket}",
     ": limits[0]: token_bucket needs at most one request per microsecond"),
    ("{%s, key: [ip], policy: redis}" % ONE, ": policy: redis needs a top-level redis: section"),
    ("{%s}" % ONE, ': needs a plugin that provides "consumer" earlier in the chain '
                   '(for "consumer": an auth plugin such as key-auth)'),
    ("{%s, key: [ip, credential]}" % ONE, ': needs a plugin that provides "consumer" earlier in '
                                          'the chain (for "consumer": an auth plugin such as key-auth)'),
])
def test_bad_config_is_refused_by_check(sluice_bin, tmp_path, yaml, message):
    proc, path = check(sluice_bin, tmp_path, yaml)
    assert proc.returncode == 1
    assert proc.stderr == "%s:6: routes[0].plugins[0] (rate-limit)%s\n" % (path, message)


def test_consumer_key_behind_an_auth_plugin_passes_check(sluice_bin, tmp_path):
    proc, path = check(sluice_bin, tmp_path, "{%s}" % ONE,
                       before="\n      - key-auth: {}",
                       extra="consumers: [{name: a, credentials: {key-auth: [{key: k}]}}]\n")
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "%s: ok\n" % path, "")
