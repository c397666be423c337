"""Reload (SIGHUP) and graceful shutdown (SIGTERM)."""

import threading
import time

import pytest

import expect
import raw
from configs import route
from scale import scaled


def routes_config(*routes, **top):
    cfg = {"routes": list(routes)}
    cfg.update(top)
    return cfg


def test_reload_swaps_routes_and_upstreams(gateway_factory, upstream_factory):
    a, b = upstream_factory("a"), upstream_factory("b")
    gw = gateway_factory(routes_config(route("old", a, ["/old/*"])))
    assert gw.get("/old/x").header("X-Upstream") == "a"
    expect.gateway_error(gw.get("/new/x"), 404, "route_not_found", "not_found_error")
    gw.write_config(routes_config(route("new", b, ["/new/*"])))
    r = gw.reload()
    assert r.ok is True, r
    assert gw.get("/new/x").header("X-Upstream") == "b"
    expect.gateway_error(gw.get("/old/x"), 404, "route_not_found", "not_found_error")


def test_bad_reload_keeps_the_old_config(gateway_factory, upstream):
    gw = gateway_factory(routes_config(route("api", upstream, ["/api/*"])))
    gw.write_config("listen: 127.0.0.1:@PORT@\nworkers: 1\nroutes:\n  - name: api\n    upstream: nosuch\n")
    r = gw.reload()
    assert r.ok is False, r
    assert "%s:5: routes[0].upstream: " % gw.config_path in r.output
    assert gw.get("/api/x").header("X-Upstream") == "up"
    assert gw.running() is True
    # A later good reload still works.
    gw.write_config(routes_config(route("api2", upstream, ["/v2/*"])))
    assert gw.reload().ok is True
    assert gw.get("/v2/x").status == 200


def test_reload_under_load_fails_no_request(gateway_factory, upstream):
    configs = [routes_config(route("load", upstream, ["/load/*"])),
               routes_config(route("other", upstream, ["/other/*"]), route("load", upstream, ["/load/*"]),
                             server={"server_timing": True})]
    gw = gateway_factory(configs[0])
    stop = threading.Event()
    failures = []
    done = [0, 0]

    def keep_alive_client():
        c = gw.conn()
        i = 0
        while not stop.is_set():
            try:
                r = c.request("GET", "/load/ka%d" % i)
                if r.status != 200:
                    failures.append(("ka", i, r.status))
            except Exception as e:     # any failure counts; the spec wants none
                failures.append(("ka", i, repr(e)))
                c.close()
                c = gw.conn()
            done[0] += 1
            i += 1
        c.close()

    def new_connection_client():
        i = 0
        while not stop.is_set():
            try:
                r = gw.get("/load/new%d" % i)
                if r.status != 200:
                    failures.append(("new", i, r.status))
            except Exception as e:
                failures.append(("new", i, repr(e)))
            done[1] += 1
            i += 1

    threads = [threading.Thread(target=keep_alive_client), threading.Thread(target=new_connection_client)]
    for t in threads:
        t.start()
    try:
        for n in range(5):
            target = sum(done) + 60
            deadline = time.monotonic() + scaled(10)
            while sum(done) < target and time.monotonic() < deadline:
                time.sleep(0.005)
            gw.write_config(configs[(n + 1) % 2])
            assert gw.reload().ok is True
        deadline = time.monotonic() + scaled(30)
        while sum(done) < 500 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        stop.set()
        for t in threads:
            t.join(scaled(10))
    assert failures == []
    assert sum(done) >= 500
    assert min(done) > 0


@pytest.mark.valgrind
def test_sigterm_finishes_in_flight_request_and_refuses_new_ones(gateway_factory, upstream):
    gw = gateway_factory(routes_config(route("api", upstream), server={"drain_timeout": "30s"}))
    result = []
    t = threading.Thread(target=lambda: result.append(gw.get("/hold?key=drain", timeout=30)))
    t.start()
    try:
        assert upstream.wait_for_requests(1, "/hold")
        gw.terminate()
        # The upstream holds the request until released, so whatever happens
        # here happens while it is in flight.
        refused = False
        deadline = time.monotonic() + scaled(5)
        while time.monotonic() < deadline:
            if raw.expect_refused(gw.port):
                refused = True
                break
            time.sleep(0.01)
        assert refused is True
        assert result == []
        assert gw.running() is True
    finally:
        upstream.release("drain")
        t.join(scaled(15))
    assert expect.echo(result[0])["target"] == "/hold?key=drain"
    assert gw.wait(15) == 0


def test_sigterm_does_not_wait_for_idle_keep_alive_connections(gateway_factory, upstream):
    gw = gateway_factory(routes_config(route("api", upstream), server={"drain_timeout": "30s"}))
    with gw.conn(timeout=10) as c:
        assert c.request("GET", "/echo").status == 200
        gw.terminate()
        assert gw.wait(10) == 0
        assert c.is_closed() is True


def test_drain_timeout_bounds_shutdown(gateway_factory, upstream):
    gw = gateway_factory(routes_config(route("api", upstream), server={"drain_timeout": "300ms"}))
    result = []

    def slow():
        try:
            result.append(gw.get("/delay/5000", timeout=15))
        except raw.IncompleteResponse as e:
            result.append(e)
    t = threading.Thread(target=slow)
    t.start()
    assert upstream.wait_for_requests(1, "/delay")
    gw.terminate()
    assert gw.wait(10) == 0
    t.join(scaled(15))
    got = result[0]
    # Cut off: either no response at all or a gateway error, never the 200.
    if isinstance(got, raw.IncompleteResponse):
        assert got.partial.status is None
    else:
        assert got.status >= 500
