"""Framing on the wire: requests cut at any byte, pipelining, keep-alive.

The split specs guard against libevhtp 1.2.18's request-line over-read (a read
ending inside the URI made the parser append a stray byte to the path): every
request, cut at every offset, must reach the upstream unchanged.
"""

import pytest

import expect
import raw
from configs import proxy

SPLIT_HEADERS = [("User-Agent", "wire-spec/1"), ("Accept", "*/*"), ("X-Trace", "a b  c")]
SPLIT_TARGET = "/echo/split/path?q=1&r=%20x"


def _check_echo(resp, method, target, headers, body=""):
    e = expect.echo(resp)
    assert (e["method"], e["target"], e["body"]) == (method, target, body)
    assert e["raw_head"].startswith("%s %s HTTP/1.1\r\n" % (method, target))
    assert expect.forwarded(e) == headers
    assert expect.values(e, "Host") == ["split.test"]


def test_request_split_at_every_offset(gateway_factory, upstream):
    gw = gateway_factory(proxy(upstream))
    req = raw.build_request("GET", SPLIT_TARGET, SPLIT_HEADERS, host="split.test")
    for off in range(1, len(req)):
        with gw.conn() as c:
            c.send(req, splits=[off], pause=0.02)
            _check_echo(c.read_response(), "GET", SPLIT_TARGET, SPLIT_HEADERS)
    assert upstream.count() == len(req) - 1


def test_request_with_body_split_at_every_offset(gateway_factory, upstream):
    gw = gateway_factory(proxy(upstream))
    body = "name=value&other=%20thing"
    req = raw.build_request("POST", "/echo/body", [("X-A", "1")], body, host="split.test")
    for off in range(1, len(req)):
        with gw.conn() as c:
            c.send(req, splits=[off], pause=0.02)
            _check_echo(c.read_response("POST"), "POST", "/echo/body", [("X-A", "1")], body)


def test_second_request_on_a_connection_split_at_every_offset(gateway_factory, upstream):
    # Between requests is where the parser state carries over.
    gw = gateway_factory(proxy(upstream))
    req = raw.build_request("GET", SPLIT_TARGET, SPLIT_HEADERS, host="split.test")
    with gw.conn() as c:
        for off in range(1, len(req)):
            c.send(req, splits=[off], pause=0.02)
            _check_echo(c.read_response(), "GET", SPLIT_TARGET, SPLIT_HEADERS)


def test_pipelined_requests_answered_in_order(gateway_factory, upstream):
    gw = gateway_factory(proxy(upstream))
    reqs = []
    for i in range(10):
        if i % 3 == 1:
            reqs.append(raw.build_request("POST", "/echo/p%d" % i, [("X-Seq", str(i))], "body-%d" % i,
                                          host="split.test"))
        else:
            reqs.append(raw.build_request("GET", "/echo/p%d" % i, [("X-Seq", str(i))], host="split.test"))
    with gw.conn() as c:
        c.send(b"".join(reqs))
        for i in range(10):
            method = "POST" if i % 3 == 1 else "GET"
            body = "body-%d" % i if method == "POST" else ""
            _check_echo(c.read_response(method), method, "/echo/p%d" % i, [("X-Seq", str(i))], body)
    got = sorted((r.target, r.header("X-Seq"), r.body) for r in upstream.app_requests("/echo/p"))
    assert got == sorted(("/echo/p%d" % i, str(i), (b"body-%d" % i) if i % 3 == 1 else b"")
                         for i in range(10))


def test_a_long_pipeline_past_the_read_ahead_limit_is_answered_in_order(gateway_factory, upstream):
    # While a request runs, the gateway buffers at most max_header_size +
    # 16 KiB of what follows (48 KiB by default), then stops reading until
    # the request ends: 600 requests of ~230 bytes sent at once, three times
    # that, make it stop and start again, and every one must be answered.
    gw = gateway_factory(proxy(upstream))
    pad = [("X-Pad", "p" * 150)]
    reqs = [raw.build_request("GET", "/echo/long%d" % i, pad + [("X-Seq", str(i))], host="split.test")
            for i in range(600)]
    assert sum(len(r) for r in reqs) > 2 * (32768 + 16384)
    with gw.conn(timeout=60) as c:
        c.send(b"".join(reqs))
        for i in range(600):
            e = expect.echo(c.read_response())
            assert (e["target"], expect.values(e, "X-Seq")) == ("/echo/long%d" % i, [str(i)])
    assert upstream.count("/echo/long") == 600


def test_pipelined_requests_with_a_404_in_the_middle(gateway_factory, upstream):
    gw = gateway_factory(proxy(upstream, paths=["/echo/*"]))
    batch = (raw.build_request("GET", "/echo/1") + raw.build_request("GET", "/nowhere")
             + raw.build_request("GET", "/echo/3"))
    with gw.conn() as c:
        c.send(batch)
        assert expect.echo(c.read_response())["target"] == "/echo/1"
        expect.gateway_error(c.read_response(), 404, "route_not_found", "not_found_error")
        assert expect.echo(c.read_response())["target"] == "/echo/3"


@pytest.mark.valgrind
def test_keep_alive_reuses_upstream_connections(gateway_factory, upstream):
    gw = gateway_factory(proxy(upstream))
    with gw.conn() as c:
        for i in range(100):
            r = c.request("GET", "/echo/ka%d" % i)
            assert expect.echo(r)["target"] == "/echo/ka%d" % i
            assert r.header("Connection") in (None, "keep-alive")
    assert upstream.count("/echo/ka") == 100
    assert upstream.connections <= 2


def test_upstream_pool_shared_across_client_connections(gateway_factory, upstream):
    gw = gateway_factory(proxy(upstream))
    for i in range(20):
        assert gw.get("/echo/c%d" % i).status == 200
    assert upstream.connections <= 2


def test_stale_pooled_connection_is_not_used(gateway_factory, upstream):
    gw = gateway_factory(proxy(upstream))
    assert gw.get("/echo/1").status == 200
    upstream.drop_connections()
    assert upstream.wait_for(lambda m: m.open_connections() == 0)
    r = gw.get("/echo/2")
    assert expect.echo(r)["target"] == "/echo/2"


def test_client_connection_close_is_honoured(gateway_factory, upstream):
    gw = gateway_factory(proxy(upstream))
    with gw.conn() as c:
        r = c.request("GET", "/echo", [("Connection", "close")])
        assert r.status == 200
        assert r.header("Connection") == "close"
        assert c.is_closed() is True


def test_http10_client_is_closed_after_response(gateway_factory, upstream):
    gw = gateway_factory(proxy(upstream))
    with gw.conn() as c:
        r = c.request("GET", "/echo/old", version="HTTP/1.0", host=None)
        e = expect.echo(r)
        assert e["version"] == "HTTP/1.1"
        assert c.is_closed() is True


def test_duplicate_identical_content_length_accepted(gateway_factory, upstream):
    gw = gateway_factory(proxy(upstream))
    req = (b"POST /echo HTTP/1.1\r\nHost: split.test\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello")
    with gw.conn() as c:
        c.send(req)
        e = expect.echo(c.read_response("POST"))
    assert e["body"] == "hello"
    assert expect.values(e, "Content-Length") == ["5"]


def test_bare_lf_line_endings_accepted(gateway_factory, upstream):
    gw = gateway_factory(proxy(upstream))
    with gw.conn() as c:
        c.send(b"GET /echo/lf HTTP/1.1\nHost: split.test\nX-A: 1\n\n")
        e = expect.echo(c.read_response())
    assert e["target"] == "/echo/lf"
    assert expect.forwarded(e) == [("X-A", "1")]
