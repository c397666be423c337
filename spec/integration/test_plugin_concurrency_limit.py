"""concurrency-limit: requests in flight per route, consumer, upstream or globally,
the waiting queue and its timeout, slots given back however a request
ends (also when the client leaves), several workers, reloads, config
errors.

Requests are held in flight by the mock upstream's /hold?key=K endpoint
until the spec calls upstream.release(K). Nothing here depends on how fast
anything runs: every step waits for an observable event (the upstream saw
a request, a response arrived, an access-log line was written).
"""

import os
import socket
import subprocess
import time
import textwrap
import threading

import pytest

import expect
import raw
from configs import proxy
from plugin_harness import plugin_gateway
from scale import scaled

FULL = "too many requests in flight"
TIMED_OUT = "timed out waiting for a free slot: too many requests in flight"


class InFlight:
    """A request sent on its own thread; .wait() returns its response."""

    def __init__(self, gw, target, headers=(), host=raw.DEFAULT_HOST):
        self.resp = None
        self.error = None
        self._done = threading.Event()
        self._conn = gw.conn(timeout=60)
        self._thread = threading.Thread(target=self._run, args=(target, headers, host), daemon=True)
        self._thread.start()

    def _run(self, target, headers, host):
        try:
            with self._conn as c:
                self.resp = c.request("GET", target, headers, host=host)
        except Exception as e:   # reported by wait()
            self.error = e
        finally:
            self._done.set()

    def leave(self):
        """The client goes away without reading the answer."""
        try:
            self._conn.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def done(self, timeout=0):
        return self._done.wait(timeout)

    def wait(self, timeout=30):
        assert self._done.wait(scaled(timeout)), "no response"
        if self.error:
            raise self.error
        return self.resp


def refused(resp, message=FULL):
    err = expect.gateway_error(resp, 503, "concurrency_limit", "api_error")
    assert err["message"] == message
    assert resp.headers_named("Retry-After") == ["1"]


def first_refused(x, y, timeout=10):
    """Of two requests competing for one queue place, the one refused at
    once, and the one that got the place (still waiting)."""
    deadline = time.monotonic() + scaled(timeout)
    while not (x.done() or y.done()):
        assert time.monotonic() < deadline, "neither request was refused"
        x.done(0.01)
    early, late = (x, y) if x.done() else (y, x)
    refused(early.wait())
    assert not late.done()
    return early, late


def hold(gw, up, n, key="a", headers=(), host=raw.DEFAULT_HOST):
    """n requests held by the upstream; returns them once it has them all."""
    before = up.count("/hold")
    held = [InFlight(gw, "/hold?key=%s" % key, headers, host) for _ in range(n)]
    assert up.wait_for_requests(before + n, "/hold", timeout=10)
    return held


def test_the_request_over_max_is_refused_and_slots_come_back(tmp_path):
    with plugin_gateway(tmp_path, "concurrency-limit", {"max": 2}) as (gw, up):
        held = hold(gw, up, 2)
        refused(gw.get("/echo/over"))
        up.release("a")
        assert [h.wait().status for h in held] == [200, 200]
        # both slots are free again
        held = hold(gw, up, 2, key="b")
        up.release("b")
        assert [h.wait().status for h in held] == [200, 200]
        assert up.count("/echo") == 0


def test_a_queued_request_goes_on_when_a_slot_frees(tmp_path):
    with plugin_gateway(tmp_path, "concurrency-limit", {"max": 1, "queue": 1, "queue_timeout": "30s"}) as (gw, up):
        (first,) = hold(gw, up, 1)
        queued = InFlight(gw, "/echo/queued")
        assert not queued.done(scaled(0.3))          # it waits ...
        assert up.count("/echo") == 0                 # ... without reaching the upstream
        up.release("a")
        assert first.wait().status == 200
        assert queued.wait().status == 200
        assert [q.path for q in up.app_requests()] == ["/hold", "/echo/queued"]


def test_beyond_the_queue_requests_are_refused_at_once(tmp_path):
    with plugin_gateway(tmp_path, "concurrency-limit", {"max": 1, "queue": 1, "queue_timeout": "30s"}) as (gw, up):
        (first,) = hold(gw, up, 1)
        # one of them takes the queue's place, the other is refused while the first is still held
        _, queued = first_refused(InFlight(gw, "/hold?key=a"), InFlight(gw, "/hold?key=a"))
        assert up.count("/hold") == 1
        up.release("a")
        assert first.wait().status == 200
        assert queued.wait().status == 200
        assert up.count("/hold") == 2


@pytest.mark.valgrind
def test_queue_timeout(tmp_path):
    with plugin_gateway(tmp_path, "concurrency-limit", {"max": 1, "queue": 5, "queue_timeout": "200ms"}) as (gw, up):
        (first,) = hold(gw, up, 1)
        refused(gw.get("/echo/waited"), TIMED_OUT)
        assert up.count("/echo") == 0
        up.release("a")
        assert first.wait().status == 200
        assert gw.get("/echo/after").status == 200


def test_zero_queue_timeout_refuses_after_one_look(tmp_path):
    with plugin_gateway(tmp_path, "concurrency-limit", {"max": 1, "queue": 1, "queue_timeout": 0}) as (gw, up):
        (first,) = hold(gw, up, 1)
        refused(gw.get("/echo"), TIMED_OUT)
        up.release("a")
        assert first.wait().status == 200


@pytest.mark.valgrind
def test_a_client_leaving_while_queued_gives_its_place_back(tmp_path):
    with plugin_gateway(tmp_path, "concurrency-limit", {"max": 1, "queue": 1, "queue_timeout": "30s"}) as (gw, up):
        (first,) = hold(gw, up, 1)
        _, queued = first_refused(InFlight(gw, "/echo/b"), InFlight(gw, "/echo/c"))
        queued.leave()
        assert sorted(l["status"] for l in gw.access_log(min_lines=2)) == [499, 503]
        # Were the place still taken, both of these would be refused.
        _, queued = first_refused(InFlight(gw, "/echo/d"), InFlight(gw, "/echo/e"))
        up.release("a")
        assert first.wait().status == 200
        assert queued.wait().status == 200
        assert up.count("/echo") == 1


@pytest.mark.valgrind
def test_a_client_leaving_while_its_request_is_in_flight_gives_the_slot_back(tmp_path):
    with plugin_gateway(tmp_path, "concurrency-limit", {"max": 1}) as (gw, up):
        c = gw.conn()
        c.send(b"GET /hold?key=a HTTP/1.1\r\nHost: sluice.test\r\n\r\n")
        assert up.wait_for_requests(1, "/hold")
        refused(gw.get("/echo/full"))
        c.close()
        assert [l["status"] for l in gw.access_log(min_lines=2)][-1] == 499
        assert gw.get("/echo/free").status == 200
        up.release("a")


def test_errors_and_answers_of_later_plugins_give_the_slot_back(tmp_path):
    spec_plugins = os.environ.get("SLUICE_SPEC_PLUGIN_DIR", "")
    after = [{"probe-a": {"tag": "a", "answer_in": "access", "answer_status": 418}}]
    with plugin_gateway(tmp_path, "concurrency-limit", {"max": 1}, after=after,
                        plugin_dirs=[spec_plugins]) as (gw, up):
        for _ in range(3):
            assert gw.get("/echo").status == 418
    after = [{"probe-a": {"tag": "a", "fail_in": "access"}}]
    with plugin_gateway(tmp_path, "concurrency-limit", {"max": 1}, after=after,
                        plugin_dirs=[spec_plugins]) as (gw, up):
        for _ in range(3):
            expect.gateway_error(gw.get("/echo"), 500, "plugin_error", "api_error")


# ---- keys ---------------------------------------------------------------------------------

def two_routes(up, route_plugins=(), global_plugins=()):
    """Routes "one" and "two", told apart by the Host header."""
    cfg = proxy(up, route={"name": "one", "match": {"hosts": ["one.test"]}, "plugins": list(route_plugins)})
    cfg["routes"].append({"name": "two", "upstream": "backend", "match": {"hosts": ["two.test"]},
                          "plugins": list(route_plugins)})
    if global_plugins:
        cfg["plugins"] = list(global_plugins)
    return cfg


def test_key_route_counts_each_route_apart(gateway_factory, upstream):
    gw = gateway_factory(two_routes(upstream, [{"concurrency-limit": {"max": 1, "key": "route"}}]))
    (first,) = hold(gw, upstream, 1, host="one.test")
    refused(gw.get("/echo", host="one.test"))
    assert gw.get("/echo", host="two.test").status == 200
    upstream.release("a")
    assert first.wait().status == 200


def test_key_global_counts_every_route_together(gateway_factory, upstream):
    gw = gateway_factory(two_routes(upstream, global_plugins=[{"concurrency-limit": {"max": 1, "key": "global"}}]))
    (first,) = hold(gw, upstream, 1, host="one.test")
    refused(gw.get("/echo", host="two.test"))
    upstream.release("a")
    assert first.wait().status == 200
    assert gw.get("/echo", host="two.test").status == 200


def test_key_consumer_counts_each_consumer_apart(gateway_factory, upstream):
    cfg = proxy(upstream, route={"plugins": [{"key-auth": {}},
                                             {"concurrency-limit": {"max": 1, "key": "consumer"}}]})
    cfg["consumers"] = [{"name": "alice", "credentials": {"key-auth": [{"key": "alice-key"}]}},
                        {"name": "bob", "credentials": {"key-auth": [{"key": "bob-key"}]}}]
    gw = gateway_factory(cfg)
    (first,) = hold(gw, upstream, 1, headers=[("X-Api-Key", "alice-key")])
    refused(gw.get("/echo", headers=[("X-Api-Key", "alice-key")]))
    assert gw.get("/echo", headers=[("X-Api-Key", "bob-key")]).status == 200
    upstream.release("a")
    assert first.wait().status == 200
    assert gw.get("/echo", headers=[("X-Api-Key", "alice-key")]).status == 200


def with_inline_route(cfg, up, route_plugins):
    """Adds route "three" (Host three.test) to the same mock, written as an
    inline URL: its upstream is "route:three", not "backend"."""
    cfg["routes"].append({"name": "three", "upstream": up.url, "match": {"hosts": ["three.test"]},
                          "plugins": list(route_plugins)})
    return cfg


def exact_full_body(resp):
    """The whole 503 body, byte for byte (the request id is the one in X-Request-Id)."""
    rid = resp.header("X-Request-Id")
    return ('{"error":{"type":"api_error","code":"concurrency_limit","message":"%s","request_id":"%s"}}'
            % (FULL, rid)).encode()


def test_key_upstream_counts_routes_on_one_upstream_together(gateway_factory, upstream):
    plugins = [{"concurrency-limit": {"max": 1, "key": "upstream"}}]
    gw = gateway_factory(two_routes(upstream, plugins))   # "one" and "two" both on "backend"
    (first,) = hold(gw, upstream, 1, host="one.test")
    over = gw.get("/echo/two", host="two.test")
    refused(over)
    assert bytes(over.body) == exact_full_body(over)
    assert upstream.count("/echo") == 0
    upstream.release("a")
    assert first.wait().status == 200
    assert gw.get("/echo/two", host="two.test").status == 200


def test_key_upstream_counts_another_upstream_apart(gateway_factory, upstream):
    plugins = [{"concurrency-limit": {"max": 1, "key": "upstream"}}]
    gw = gateway_factory(with_inline_route(two_routes(upstream, plugins), upstream, plugins))
    (first,) = hold(gw, upstream, 1, host="one.test")
    refused(gw.get("/echo/two", host="two.test"))
    # same mock, but through the inline upstream "route:three": its own count
    (third,) = hold(gw, upstream, 1, key="c", host="three.test")
    refused(gw.get("/echo/three", host="three.test"))
    upstream.release("c")
    assert third.wait().status == 200
    refused(gw.get("/echo/two", host="two.test"))         # "backend" is still full
    upstream.release("a")
    assert first.wait().status == 200
    assert gw.get("/echo/two", host="two.test").status == 200
    assert gw.get("/echo/three", host="three.test").status == 200


def test_key_upstream_counts_routes_without_upstream_under_one_empty_name(gateway_factory, upstream):
    """Routes whose plugins answer have no upstream: they count together,
    apart from every named upstream."""
    limit = {"concurrency-limit": {"max": 1, "key": "upstream"}}
    cfg = two_routes(upstream, [limit])
    cfg["plugin_dirs"] = [os.environ.get("SLUICE_SPEC_PLUGIN_DIR", "")]
    # "slow" keeps its request in access for a minute; "quick" answers at once
    for name, probe in (("slow", {"yield_ms": 60000}), ("quick", {})):
        probe = dict(probe, tag=name, answer_in="access", answer_status=418)
        cfg["routes"].append({"name": name, "match": {"hosts": ["%s.test" % name]},
                              "plugins": [limit, {"probe-a": probe}]})
    gw = gateway_factory(cfg)
    (first,) = hold(gw, upstream, 1, host="one.test")
    assert gw.get("/x", host="quick.test").status == 418     # "backend" being full does not count here
    answered = 1
    slow = InFlight(gw, "/x", host="slow.test")
    deadline = time.monotonic() + scaled(10)
    while True:     # "quick" is refused once "slow" holds the slot of the name ""
        resp = gw.get("/x", host="quick.test")
        answered += 1
        if resp.status != 418:
            break
        assert time.monotonic() < deadline, "the slow request never took the slot"
    refused(resp)
    assert not slow.done()
    assert len(gw.access_log(min_lines=answered)) == answered
    slow.leave()     # its slot comes back
    assert [l["status"] for l in gw.access_log(min_lines=answered + 1)][answered:] == [499]
    assert gw.get("/x", host="quick.test").status == 418
    upstream.release("a")
    assert first.wait().status == 200


def test_every_worker_shares_the_count(tmp_path):
    with plugin_gateway(tmp_path, "concurrency-limit", {"max": 1}, workers=4) as (gw, up):
        (first,) = hold(gw, up, 1)
        # new connections land on any of the workers
        for _ in range(12):
            refused(gw.get("/echo"))
        up.release("a")
        assert first.wait().status == 200


def test_requests_in_flight_still_count_after_a_reload(tmp_path):
    with plugin_gateway(tmp_path, "concurrency-limit", {"max": 1}) as (gw, up):
        (first,) = hold(gw, up, 1)
        assert gw.reload().ok
        refused(gw.get("/echo/after-reload"))
        up.release("a")
        assert first.wait().status == 200
        assert gw.get("/echo/free").status == 200


# ---- config errors -------------------------------------------------------------------------------

def check(sluice_bin, tmp_path, plugin_yaml):
    path = tmp_path / "conf.yaml"
    path.write_text(textwrap.dedent("""\
        listen: 127.0.0.1:1
        routes:
          - name: r
            upstream: http://127.0.0.1:9
            plugins:
              - concurrency-limit: %s
        """) % plugin_yaml)
    proc = subprocess.run([sluice_bin, "check", "-c", str(path)], capture_output=True, text=True,
                          timeout=scaled(30), stdin=subprocess.DEVNULL)
    return proc, "%s:6: routes[0].plugins[0] (concurrency-limit)" % path


@pytest.mark.parametrize("yaml,message", [
    ("{}", ".max: missing required field"),
    ("{max: 0}", ".max: must be >= 1"),
    ("{max: many}", ".max: expected integer, got string"),
    ("{max: 1, key: target}", '.key: must be one of "route", "consumer", "upstream", "global"'),
    ("{max: 1, queue: -1}", ".queue: must be >= 0"),
    ("{max: 1, queue_timeout: forever}", '.queue_timeout: invalid duration "forever"'),
    ("{max: 1, queue_timeout: 2h}", ".queue_timeout: must be <= 1h"),
    ("{max: 1, key: consumer}",
     ': needs a plugin that provides "consumer" earlier in the chain '
     '(for "consumer": an auth plugin such as key-auth)'),
])
def test_bad_config(sluice_bin, tmp_path, yaml, message):
    proc, where = check(sluice_bin, tmp_path, yaml)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.splitlines() == [where + message]
