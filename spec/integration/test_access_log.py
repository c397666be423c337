"""The access log: one JSON object per request, after the response.

Readings of the contract used here: bytes_in/bytes_out count every byte of the
request/response on the client connection (head and body); path is the request
path as received, without the query; upstream_ms is null when no upstream was
contacted.
"""

import datetime
import re
import time

import pytest

import raw
from configs import proxy
from ports import dead_port

FIELDS = ["bytes_in", "bytes_out", "client_ip", "method", "path", "request_id", "retries", "route", "status",
          "time", "total_ms", "upstream", "upstream_ms"]
TIME = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$")


def exchange(gw, method, target, headers=(), body=None):
    req = raw.build_request(method, target, headers, body)
    with gw.conn() as c:
        c.send(req)
        resp = c.read_response(method)
    return req, resp


def check_time(value):
    assert TIME.match(value), value
    t = datetime.datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
    now = datetime.datetime.now(datetime.timezone.utc)
    assert abs((now - t).total_seconds()) < 60


@pytest.fixture
def dead():
    return dead_port()


@pytest.fixture
def gw(gateway_factory, upstream, dead):
    cfg = proxy(upstream, paths=["/echo/*", "/delay/*"])
    cfg["upstreams"]["deadend"] = {"targets": ["http://127.0.0.1:%d" % dead],
                                   "retries": {"attempts": 2, "backoff": "1ms", "max_backoff": "2ms",
                                               "budget": "100%"}}
    cfg["routes"].append({"name": "broken", "match": {"paths": ["/broken"]}, "upstream": "deadend"})
    return gateway_factory(cfg)


def test_proxied_request_line(gw, upstream):
    req, resp = exchange(gw, "POST", "/echo/a", [("X-Request-Id", "log-spec-1")], b"hello")
    assert resp.status == 200
    (line,) = gw.access_log(min_lines=1)
    assert sorted(line) == FIELDS
    check_time(line["time"])
    assert {k: line[k] for k in ("request_id", "route", "method", "path", "status", "upstream", "retries",
                                 "client_ip", "bytes_in", "bytes_out")} == {
        "request_id": "log-spec-1", "route": "main", "method": "POST", "path": "/echo/a", "status": 200,
        "upstream": "127.0.0.1:%d" % upstream.port, "retries": 0, "client_ip": "127.0.0.1",
        "bytes_in": len(req), "bytes_out": len(resp.raw)}
    assert isinstance(line["upstream_ms"], (int, float)) and line["upstream_ms"] >= 0
    assert isinstance(line["total_ms"], (int, float)) and line["total_ms"] >= line["upstream_ms"]


def test_timings_reflect_a_slow_upstream(gw):
    _, resp = exchange(gw, "GET", "/delay/200")
    assert resp.status == 200
    (line,) = gw.access_log(min_lines=1)
    assert line["upstream_ms"] >= 200
    assert line["total_ms"] >= line["upstream_ms"]


def test_unrouted_request_line(gw):
    req, resp = exchange(gw, "GET", "/nowhere")
    assert resp.status == 404
    (line,) = gw.access_log(min_lines=1)
    assert {k: line[k] for k in FIELDS if k not in ("time", "total_ms")} == {
        "request_id": resp.header("X-Request-Id"), "route": None, "method": "GET", "path": "/nowhere",
        "status": 404, "upstream": None, "upstream_ms": None, "retries": 0, "client_ip": "127.0.0.1",
        "bytes_in": len(req), "bytes_out": len(resp.raw)}


def test_failed_upstream_line_counts_retries(gw, dead):
    req, resp = exchange(gw, "GET", "/broken")
    assert resp.status == 502
    (line,) = gw.access_log(min_lines=1)
    assert {k: line[k] for k in ("route", "status", "upstream", "retries", "request_id")} == {
        "route": "broken", "status": 502, "upstream": "127.0.0.1:%d" % dead, "retries": 2,
        "request_id": resp.header("X-Request-Id")}


def test_path_excludes_query(gw):
    exchange(gw, "GET", "/echo/q?secret=1&x=2")
    (line,) = gw.access_log(min_lines=1)
    assert line["path"] == "/echo/q"


def test_one_line_per_request_in_order(gw):
    ids = []
    with gw.conn() as c:
        for i in range(5):
            r = c.request("GET", "/echo/%d" % i)
            ids.append(r.header("X-Request-Id"))
    lines = gw.access_log(min_lines=5)
    time.sleep(0.2)     # nothing more may follow
    lines = gw.access_log()
    assert [l["request_id"] for l in lines] == ids
    assert [l["path"] for l in lines] == ["/echo/%d" % i for i in range(5)]


def test_access_log_to_stdout(gateway_factory, upstream):
    gw = gateway_factory(proxy(upstream, log={"access": "stdout"}))
    r = gw.get("/echo/out")
    (line,) = gw.access_log(min_lines=1)
    assert (line["path"], line["request_id"]) == ("/echo/out", r.header("X-Request-Id"))


def test_access_log_off(gateway_factory, upstream):
    gw = gateway_factory(proxy(upstream, log={"access": "off"}))
    assert gw.get("/echo/quiet").status == 200
    assert gw.stop() == 0
    assert [l for l in gw.stdout().splitlines() if l.startswith("{")] == []
