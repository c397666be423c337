"""Self-tests of the spec helpers (no sluice binary needed): if these fail, the
other specs' verdicts mean nothing."""

import http.client
import json
import signal
import socket
import ssl
import stat
import textwrap
import threading
import time

import pytest

import gateway as gateway_mod
import mock_upstream
import raw
import redis as redis_helper
import tls
from ports import free_port
from yaml_emit import to_yaml


# -- mock upstream ------------------------------------------------------------------

def test_mock_echo_over_http_client(upstream):
    c = http.client.HTTPConnection("127.0.0.1", upstream.port, timeout=5)
    c.request("POST", "/echo/a?b=1", body=b"hello", headers={"X-Test": "one"})
    r = c.getresponse()
    body = json.loads(r.read())
    assert r.status == 200
    assert r.getheader("X-Upstream") == "up"
    assert r.getheader("Content-Type") == "application/json"
    assert body["method"] == "POST"
    assert body["target"] == "/echo/a?b=1"
    assert body["body"] == "hello"
    assert ["X-Test", "one"] in body["headers"]
    assert body["raw_head"].startswith("POST /echo/a?b=1 HTTP/1.1\r\n")
    assert body["raw_head"].endswith("\r\n\r\n")
    # Same connection again: keep-alive works.
    c.request("GET", "/status/418")
    r = c.getresponse()
    assert r.status == 418
    assert json.loads(r.read()) == {"status": 418, "upstream": "up"}
    c.close()
    assert upstream.connections == 1
    assert [r.target for r in upstream.requests] == ["/echo/a?b=1", "/status/418"]
    assert upstream.requests[0].raw == upstream.requests[0].raw_head + b"hello"


def test_mock_pipelined_and_chunked_request(upstream):
    req1 = raw.build_request("POST", "/echo/1", [("Transfer-Encoding", "chunked")], raw.chunked("ab", "cde"))
    req2 = raw.build_request("GET", "/echo/2")
    with raw.Conn(upstream.port) as c:
        c.send(req1 + req2)
        r1 = c.read_response()
        r2 = c.read_response()
    assert (r1.status, r1.json()["body"], r1.json()["target"]) == (200, "abcde", "/echo/1")
    assert (r2.status, r2.json()["target"]) == (200, "/echo/2")
    assert upstream.requests[0].body == b"abcde"
    assert upstream.requests[0].raw.endswith(b"2\r\nab\r\n3\r\ncde\r\n0\r\n\r\n")
    assert upstream.connections == 1


def test_mock_paths(upstream):
    r = raw.get(upstream.port, "/big?bytes=100000")
    assert r.status == 200
    assert r.body == mock_upstream.big_body(100000)
    r = raw.get(upstream.port, "/big?bytes=70000&chunked=1")
    assert r.header("Transfer-Encoding") == "chunked"
    assert r.body == mock_upstream.big_body(70000)
    assert [len(c) for c in r.chunks] == [65536, 70000 - 65536]
    r = raw.get(upstream.port, "/chunks?n=3&size=4")
    assert r.chunks == [b"aaaa", b"bbbb", b"cccc"]
    r = raw.get(upstream.port, "/sse?n=2")
    assert r.header("Content-Type") == "text/event-stream"
    assert r.body == b"id: 0\ndata: event 0\n\nid: 1\ndata: event 1\n\n"
    r = raw.get(upstream.port, "/close-delimited?bytes=300")
    assert (r.header("Content-Length"), r.header("Connection"), r.body) == (None, "close", mock_upstream.big_body(300))
    r = raw.get(upstream.port, "/headers?Keep-Alive=timeout%3D5&X-A=1&X-A=2")
    assert r.headers_named("X-A") == ["1", "2"]
    assert r.header("Keep-Alive") == "timeout=5"
    r = raw.request(upstream.port, "HEAD", "/big?bytes=10")
    assert (r.status, r.header("Content-Length"), r.body) == (200, "10", b"")
    r = raw.get(upstream.port, "/status/204")
    assert (r.status, r.body, r.header("Content-Length")) == (204, b"", None)


def test_mock_failure_paths(upstream):
    with pytest.raises(raw.IncompleteResponse) as e:
        raw.get(upstream.port, "/close-mid-body")
    assert (e.value.partial.status, e.value.partial.body) == (200, b"0123456789")
    with pytest.raises(raw.IncompleteResponse) as e:
        raw.get(upstream.port, "/close-before-head")
    assert e.value.partial.raw == b""
    with pytest.raises(raw.IncompleteResponse) as e:
        raw.get(upstream.port, "/chunks?n=5&size=2&abort_after=2")
    assert e.value.partial.chunks == [b"aa", b"bb"]
    with raw.Conn(upstream.port) as c:
        c.send(raw.build_request("GET", "/malformed"))
        assert c.read_until_close() == b"HTTP/1.1 2x0 Broken\r\nContent-Length: 0\r\n\r\n"


def test_mock_knobs(upstream):
    assert raw.get(upstream.port, "/health").status == 200
    upstream.set_healthy(False)
    assert raw.get(upstream.port, "/health").status == 503
    upstream.set_status(503)
    assert raw.get(upstream.port, "/echo").status == 503
    assert raw.get(upstream.port, "/health").status == 503
    upstream.set_status(None)
    upstream.set_delay(150)
    t = time.monotonic()
    assert raw.get(upstream.port, "/echo").status == 200
    assert time.monotonic() - t >= 0.15
    assert upstream.count("/echo") == 2
    assert len(upstream.health_checks()) == 3


def test_mock_hold_and_stream_gate(upstream):
    results = []
    t = threading.Thread(target=lambda: results.append(raw.get(upstream.port, "/hold?key=k1")))
    t.start()
    assert upstream.wait_for_requests(1, "/hold")
    time.sleep(0.05)
    assert results == []
    upstream.release("k1")
    t.join(5)
    assert results[0].status == 200

    with raw.Conn(upstream.port) as c:
        c.send(raw.build_request("GET", "/chunks?n=3&size=2&hold=g"))
        resp = c.read_head()
        resp.chunks = []
        assert c.read_chunk(resp) == b"aa"
        assert upstream.stream_progress["/chunks?n=3&size=2&hold=g"] == 1
        upstream.release("g")
        assert c.read_chunk(resp) == b"bb"
        assert c.read_chunk(resp) == b"cc"
        assert c.read_chunk(resp) == b""
        assert resp.complete is True


def test_mock_records_framing_errors(upstream):
    with raw.Conn(upstream.port) as c:
        c.send(b"GET /x HTTP/1.1\r\nBad Header\r\n\r\n")
        r = c.read_response()
    assert r.status == 400
    assert upstream.errors == ["bad header line 'Bad Header'"]


def test_mock_tls_records_sni(tmp_path):
    certs = tls.make_certs(tmp_path / "c")
    with mock_upstream.MockUpstream("secure", tls=(certs.cert, certs.key)) as m:
        ctx = certs.client_context()
        r = raw.get(m.port, "/echo", tls=ctx, server_hostname="upstream.test")
        assert r.status == 200
        assert m.sni_names == ["upstream.test"]
        assert m.url == "https://127.0.0.1:%d" % m.port
        other = tls.make_certs(tmp_path / "o", ca_name="other CA")
        with pytest.raises(ssl.SSLCertVerificationError):
            raw.get(m.port, "/echo", tls=other.client_context(), server_hostname="upstream.test")
        assert m.wait_for(lambda mm: len(mm.tls_errors) == 1)


def test_certs_cover_names_and_wrong_name(tmp_path):
    certs = tls.make_certs(tmp_path / "c", name="only.test", local=False)
    assert certs.names == ["DNS:only.test"]
    with mock_upstream.MockUpstream("x", tls=certs.server_context()) as m:
        with pytest.raises(ssl.SSLCertVerificationError):
            raw.get(m.port, "/echo", tls=certs.client_context(), server_hostname="localhost")
        assert raw.get(m.port, "/echo", tls=certs.client_context(), server_hostname="only.test").status == 200


# -- raw client ----------------------------------------------------------------------

def test_build_request_framing():
    assert raw.build_request("POST", "/p", [("X-A", "1")], b"xy") == \
        b"POST /p HTTP/1.1\r\nHost: sluice.test\r\nX-A: 1\r\nContent-Length: 2\r\n\r\nxy"
    assert raw.build_request("GET", "/", host=None, version="HTTP/1.0") == b"GET / HTTP/1.0\r\n\r\n"
    assert raw.chunked("abc", "") == b"3\r\nabc\r\n0\r\n\r\n"


def test_raw_split_sends_reach_peer_in_pieces():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    got = []

    def accept():
        s, _ = srv.accept()
        while True:
            d = s.recv(100)
            if not d:
                break
            got.append(d)
        s.close()

    t = threading.Thread(target=accept)
    t.start()
    c = raw.Conn(srv.getsockname()[1])
    c.send(b"abcdef", splits=[2, 4], pause=0.05)
    c.close()
    t.join(5)
    srv.close()
    assert got == [b"ab", b"cd", b"ef"]


def test_refused_detection():
    assert raw.expect_refused(free_port()) is True


# -- yaml emitter ------------------------------------------------------------------

def test_yaml_emitter_layout():
    cfg = {
        "listen": "127.0.0.1:1",
        "upstreams": {"b": {"targets": ["http://127.0.0.1:2", {"url": "http://127.0.0.1:3", "weight": 2}],
                            "retries": {"on_status": [502, 503], "budget": "100%"}}},
        "routes": [{"name": "r", "match": {"paths": ["/api/*", "~ ^/u/[0-9]+$"], "hosts": ["*.x.test"],
                                           "headers": {"X-Env": "prod"}}, "upstream": "b",
                    "plugins": []}],
        "server": {"server_timing": True, "x": None, "n": "5", "t": "true"},
    }
    assert to_yaml(cfg) == textwrap.dedent("""\
        listen: 127.0.0.1:1
        upstreams:
          b:
            targets:
              - http://127.0.0.1:2
              - url: http://127.0.0.1:3
                weight: 2
            retries:
              on_status:
                - 502
                - 503
              budget: 100%
        routes:
          - name: r
            match:
              paths:
                - "/api/*"
                - "~ ^/u/[0-9]+$"
              hosts:
                - "*.x.test"
              headers:
                X-Env: prod
            upstream: b
            plugins: []
        server:
          server_timing: true
          x: null
          "n": "5"
          t: "true"
        """)


# -- gateway helper, driven with a stand-in binary ------------------------------------

FAKE_SLUICE = r'''#!/usr/bin/python3
import signal, socket, sys, time
path = sys.argv[2]
port = int(open(path).read().split("listen: 127.0.0.1:")[1].split()[0])
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port)); s.listen(8)
def hup(*a):
    text = open(path).read()
    print("sluice: reload failed" if "bad" in text else "sluice: reloaded", file=sys.stderr, flush=True)
    if "bad" in text:
        print(path + ":1: x: bad", file=sys.stderr, flush=True)
def term(*a):
    sys.exit(3 if "exit3" in open(path).read() else 0)
signal.signal(signal.SIGHUP, hup); signal.signal(signal.SIGTERM, term)
print("sluice: ready", file=sys.stderr, flush=True)
with open(path.replace("sluice.yaml", "access.log"), "a") as f:
    f.write('{"status": 200}\n')
while True:
    time.sleep(0.05)
'''


@pytest.fixture
def fake_bin(tmp_path):
    p = tmp_path / "fake-sluice"
    p.write_text(FAKE_SLUICE)
    p.chmod(p.stat().st_mode | stat.S_IXUSR)
    return str(p)


def test_gateway_lifecycle_with_stand_in(tmp_path, fake_bin, monkeypatch):
    monkeypatch.delenv("SLUICE_VALGRIND", raising=False)
    gw = gateway_mod.Gateway({"routes": [{"name": "r", "upstream": "http://127.0.0.1:1"}]}, tmp_path,
                             binary=fake_bin)
    assert gw.url == "http://127.0.0.1:%d" % gw.port
    assert gw.config_text == ("listen: 127.0.0.1:%d\nworkers: 1\nlog:\n  access: \"%s/access.log\"\n"
                              "routes:\n  - name: r\n    upstream: http://127.0.0.1:1\n" % (gw.port, gw.dir))
    assert raw.expect_refused(gw.port) is False
    assert gw.access_log(min_lines=1) == [{"status": 200}]
    r = gw.reload()
    assert (r.ok, "sluice: reloaded" in r.output) == (True, True)
    gw.write_config("listen: 127.0.0.1:@PORT@\nbad: @PORT_ADMIN@\n")
    assert gw.ports["ADMIN"] != gw.port
    r = gw.reload()
    assert (r.ok, r.output) == (False, "sluice: reload failed\n%s:1: x: bad\n" % gw.config_path)
    assert gw.stop() == 0
    assert gw.finish() == []


def test_gateway_reports_bad_exit_and_crash(tmp_path, fake_bin, monkeypatch):
    monkeypatch.delenv("SLUICE_VALGRIND", raising=False)
    gw = gateway_mod.Gateway("listen: 127.0.0.1:@PORT@\n# exit3\n", tmp_path, binary=fake_bin)
    problems = gw.finish()
    assert problems[0] == "sluice exited with 3, expected 0"
    gw2 = gateway_mod.Gateway("listen: 127.0.0.1:@PORT@\n", tmp_path, binary=fake_bin)
    gw2.proc.send_signal(signal.SIGKILL)
    gw2.proc.wait()
    assert gw2.finish()[0] == "sluice died during the test (exit status -9)"


def test_gateway_retries_when_its_port_was_taken(tmp_path, fake_bin, monkeypatch):
    monkeypatch.delenv("SLUICE_VALGRIND", raising=False)
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    taken = holder.getsockname()[1]
    ports = iter([taken, free_port()])
    monkeypatch.setattr(gateway_mod, "free_port", lambda: next(ports))
    # The stand-in's bind fails with "Address already in use" on the taken port.
    try:
        gw = gateway_mod.Gateway({"routes": []}, tmp_path, binary=fake_bin)
    finally:
        holder.close()
    assert gw.port != taken
    assert gw.stop() == 0


def test_gateway_start_failure_is_reported(tmp_path):
    with pytest.raises(gateway_mod.GatewayError) as e:
        gateway_mod.Gateway("listen: x\n", tmp_path, binary="/bin/false")
    assert str(e.value).startswith("sluice exited with 1 before it was ready")


# -- redis helper ----------------------------------------------------------------------

def test_redis_server_stop_kill_restart(tmp_path):
    r = redis_helper.RedisServer(tmp_path)
    try:
        assert r.command("SET", "k", "v") == "OK"
        assert r.command("GET", "k") == b"v"
        assert r.command("INCRBY", "n", 5) == 5
        assert r.command("MGET", "k", "missing") == [b"v", None]
        with pytest.raises(redis_helper.RedisError):
            r.command("NOSUCHCOMMAND")
        port = r.port
        assert r.stop() == 0
        assert raw.expect_refused(port) is True
        r.start()
        assert r.port == port
        assert r.command("GET", "k") is None   # --save '': nothing survives a restart
        r.kill()
        assert r.running() is False
        assert raw.expect_refused(port) is True
        r.start()
        assert r.command("PING") == "PONG"
        assert r.url == "redis://127.0.0.1:%d/0" % port
    finally:
        r.stop()
