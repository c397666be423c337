"""What the gateway adds, keeps and strips between client and upstream."""

import re

import pytest

import expect
import raw
from configs import proxy

SERVER_TIMING = re.compile(r"^upstream;dur=([0-9]+(?:\.[0-9]+)?), gateway;dur=([0-9]+(?:\.[0-9]+)?)$")


@pytest.mark.valgrind
def test_client_headers_forwarded_in_order_with_forwarding_headers(gateway_factory, upstream):
    gw = gateway_factory(proxy(upstream))
    sent = [("User-Agent", "spec/1"), ("X-MiXeD-Case", "Value  with  inner  spaces"),
            ("X-Dup", "one"), ("Accept", "*/*"), ("X-Dup", "two"), ("X-Empty", "")]
    r = gw.request("POST", "/echo/fwd?a=1&b=%20", sent, b"hello", host="shop.test:8080")
    e = expect.echo(r)
    assert (e["method"], e["target"], e["version"], e["body"]) == ("POST", "/echo/fwd?a=1&b=%20", "HTTP/1.1", "hello")
    assert expect.forwarded(e) == sent
    assert expect.values(e, "Host") == ["shop.test:8080"]
    assert expect.values(e, "X-Forwarded-For") == ["127.0.0.1"]
    assert expect.values(e, "X-Forwarded-Proto") == ["http"]
    assert expect.values(e, "X-Forwarded-Host") == ["shop.test:8080"]
    assert expect.values(e, "Content-Length") == ["5"]
    assert expect.values(e, "Transfer-Encoding") == []
    rid = expect.values(e, "X-Request-Id")
    assert len(rid) == 1 and expect.REQUEST_ID.match(rid[0])
    assert r.headers_named("X-Request-Id") == rid
    assert r.header("X-Upstream") == "up"


def test_existing_x_forwarded_for_gets_client_appended(gateway_factory, upstream):
    gw = gateway_factory(proxy(upstream))
    e = expect.echo(gw.get("/echo", [("X-Forwarded-For", "10.0.0.1, 10.0.0.2")]))
    assert expect.values(e, "X-Forwarded-For") == ["10.0.0.1, 10.0.0.2, 127.0.0.1"]


def test_client_cannot_spoof_forwarded_proto_or_host(gateway_factory, upstream):
    gw = gateway_factory(proxy(upstream))
    e = expect.echo(gw.get("/echo", [("X-Forwarded-Proto", "https"), ("X-Forwarded-Host", "evil.test")],
                           host="real.test"))
    assert expect.values(e, "X-Forwarded-Proto") == ["http"]
    assert expect.values(e, "X-Forwarded-Host") == ["real.test"]


@pytest.mark.parametrize("sent,kept", [
    ("abc-123", True),
    ("a" * 200, True),
    ("!~{}[]:/@", True),
    ("a" * 201, False),
    ("has space", False),
    ("", False),
    ("caf\xe9", False),
])
def test_request_id_kept_only_when_valid(gateway_factory, upstream, sent, kept):
    gw = gateway_factory(proxy(upstream))
    r = gw.get("/echo", [("X-Request-Id", sent)])
    e = expect.echo(r)
    got = expect.values(e, "X-Request-Id")
    assert len(got) == 1
    if kept:
        assert got == [sent]
    else:
        assert expect.REQUEST_ID.match(got[0]), got
    assert r.headers_named("X-Request-Id") == got


def test_generated_request_ids_differ(gateway_factory, upstream):
    gw = gateway_factory(proxy(upstream))
    ids = {gw.get("/echo").header("X-Request-Id") for _ in range(20)}
    assert len(ids) == 20
    assert all(expect.REQUEST_ID.match(i) for i in ids)


def test_hop_by_hop_request_headers_removed(gateway_factory, upstream):
    gw = gateway_factory(proxy(upstream))
    sent = [("Connection", "keep-alive, X-Secret, x-other"), ("X-Secret", "s"), ("X-Other", "o"),
            ("Keep-Alive", "timeout=5"), ("TE", "trailers"), ("Trailer", "X-T"), ("Upgrade", "websocket"),
            ("Proxy-Authorization", "Basic Zm9vOmJhcg=="), ("Proxy-Connection", "keep-alive"),
            ("X-Kept", "yes")]
    e = expect.echo(gw.get("/echo", sent))
    assert expect.forwarded(e) == [("X-Kept", "yes")]
    conn = expect.values(e, "Connection")
    assert conn in ([], ["keep-alive"]), conn


def test_chunked_client_body_arrives_with_content_length(gateway_factory, upstream):
    gw = gateway_factory(proxy(upstream))
    r = gw.request("POST", "/echo", [("Transfer-Encoding", "chunked"), ("X-After", "1")],
                   raw.chunked("hello ", "chunked ", "world"))
    e = expect.echo(r)
    assert e["body"] == "hello chunked world"
    assert expect.values(e, "Content-Length") == ["19"]
    assert expect.values(e, "Transfer-Encoding") == []
    assert expect.forwarded(e) == [("X-After", "1")]


@pytest.mark.parametrize("host_header,expected", [
    ("preserve", "client.test:9000"),
    ("target", None),
    ("fixed.example", "fixed.example"),
])
def test_host_header_policy(gateway_factory, upstream, host_header, expected):
    gw = gateway_factory(proxy(upstream, up={"host_header": host_header}))
    e = expect.echo(gw.get("/echo", host="client.test:9000"))
    if expected is None:
        expected = "127.0.0.1:%d" % upstream.port
    assert expect.values(e, "Host") == [expected]
    assert expect.values(e, "X-Forwarded-Host") == ["client.test:9000"]


def test_hop_by_hop_response_headers_removed(gateway_factory, upstream):
    gw = gateway_factory(proxy(upstream))
    target = ("/headers?Connection=X-Hop&X-Hop=1&Keep-Alive=timeout%3D5&Proxy-Connection=keep-alive"
              "&Upgrade=h2c&Trailer=X-T&X-Kept=yes&Set-Cookie=a%3D1&Set-Cookie=b%3D2")
    r = gw.get(target)
    assert (r.status, r.body) == (200, b"headers")
    for name in ("X-Hop", "Keep-Alive", "Proxy-Connection", "Upgrade", "Trailer"):
        assert r.header(name) is None, (name, r.headers)
    assert r.header("Connection") in (None, "keep-alive"), r.headers
    assert r.header("X-Kept") == "yes"
    assert r.headers_named("Set-Cookie") == ["a=1", "b=2"]
    assert r.header("Content-Length") == "7"
    assert r.header("X-Upstream") == "up"
    assert r.header("Server-Timing") is None


def test_server_timing(gateway_factory, upstream):
    gw = gateway_factory(proxy(upstream, server={"server_timing": True}))
    r = gw.get("/delay/300")
    assert r.status == 200
    m = SERVER_TIMING.match(r.header("Server-Timing") or "")
    assert m, r.headers
    # The upstream slept 300 ms before answering: a lower bound is all a
    # clock can promise.
    assert float(m.group(1)) >= 300
    assert float(m.group(2)) >= 0
    assert len(r.headers_named("Server-Timing")) == 1
