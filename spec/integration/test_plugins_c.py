"""C plugins through the SDK: chain order, short-circuits, suspension,
context, request and response rewriting, streaming body filters, config
errors and ABI checks. The probe plugins are built from
spec/plugins/c/probe.c under several names (probe-a, probe-b, probe-c)."""

import hashlib
import hmac
import json
import os
import subprocess
import textwrap
import threading

import pytest

import expect
import raw
from configs import proxy
from scale import scaled

SPEC_PLUGINS = os.environ.get("SLUICE_SPEC_PLUGIN_DIR", "")


def cfg(upstream, route_plugins, global_plugins=(), **kw):
    c = proxy(upstream, route={"plugins": list(route_plugins)}, **kw)
    c["plugin_dirs"] = [SPEC_PLUGINS]
    if global_plugins:
        c["plugins"] = list(global_plugins)
    return c


@pytest.fixture(autouse=True)
def spec_plugins_built():
    assert SPEC_PLUGINS and os.path.isfile(os.path.join(SPEC_PLUGINS, "probe-a.so")), \
        "SLUICE_SPEC_PLUGIN_DIR must point at the built spec plugins"


def chain_seen(resp):
    return expect.values(expect.echo(resp), "X-Chain")


@pytest.mark.valgrind
def test_global_then_route_in_declared_order(gateway_factory, upstream):
    gw = gateway_factory(cfg(upstream, [{"probe-b": {"tag": "r1"}}, {"probe-c": {"tag": "r2"}}],
                             [{"probe-a": {"tag": "g"}}]))
    assert chain_seen(gw.get("/echo")) == [
        "g:rewrite,r1:rewrite,r2:rewrite,g:access,r1:access,r2:access"]


def test_plugin_both_global_and_on_route_runs_once_with_route_config(gateway_factory, upstream):
    gw = gateway_factory(cfg(upstream, [{"probe-b": {"tag": "r"}}, {"probe-a": {"tag": "route-a"}}],
                             [{"probe-a": {"tag": "global-a"}}]))
    assert chain_seen(gw.get("/echo")) == ["r:rewrite,route-a:rewrite,r:access,route-a:access"]


@pytest.mark.parametrize("phase", ["rewrite", "access"])
def test_short_circuit_skips_the_rest_and_upstream_but_filters_and_logs_run(
        gateway_factory, upstream, tmp_path, phase):
    log = str(tmp_path / "plugin-log.txt")
    gw = gateway_factory(cfg(upstream, [
        {"probe-a": {"tag": "a", "mark_response": True, "log_file": log}},
        {"probe-b": {"tag": "b", "mark_response": True, "log_file": log,
                     "answer_in": phase, "answer_status": 403}},
        {"probe-c": {"tag": "c", "mark_response": True, "log_file": log}},
    ]))
    r = gw.get("/echo")
    assert r.status == 403
    assert r.body == ("answered by b in %s" % phase).encode()
    assert r.header("Content-Type") == "text/plain"
    # the probes have body filters, which may change the length: chunked
    assert r.header("Content-Length") is None
    assert r.header("Transfer-Encoding") == "chunked"
    assert r.header("X-Probe-a") == "status=403"
    assert r.header("X-Probe-b") == "status=403"
    # "the plugins that ran": probe-c ran its rewrite before b answered in access
    assert r.header("X-Probe-c") == (None if phase == "rewrite" else "status=403")
    assert upstream.requests == []
    gw.access_log(min_lines=1)
    with open(log) as f:
        assert sorted(f.read().splitlines()) == ["a 403", "b 403", "c 403"]


def test_header_filter_sees_upstream_status_and_sets_headers(gateway_factory, upstream):
    gw = gateway_factory(cfg(upstream, [{"probe-a": {"tag": "a", "mark_response": True}}]))
    r = gw.get("/status/201")
    assert r.status == 201
    assert r.header("X-Probe-a") == "status=201"


def test_header_writes_with_crlf_or_a_bad_name_are_refused(gateway_factory, upstream):
    """A plugin cannot smuggle a header through a value or a name: the host
    refuses the write (probe-a's tag goes into X-Chain upstream and into the
    X-Probe-<tag> response header name)."""
    gw = gateway_factory(cfg(upstream, [
        {"probe-a": {"tag": "evil\r\nX-Injected: 1", "mark_response": True}},
        {"probe-b": {"tag": "b", "mark_response": True}},
    ]))
    r = gw.get("/echo")
    assert r.status == 200
    assert r.header("X-Injected") is None
    assert r.header("X-Probe-b") == "status=200"
    assert [name for name, _ in r.headers if name.lower().startswith("x-probe-evil")] == []
    seen = expect.echo(r)
    assert expect.values(seen, "X-Injected") == []
    # probe-a's write was refused; probe-b's value (which repeats the chain
    # so far, probe-a's tag included) was refused too: nothing reached the upstream.
    assert expect.values(seen, "X-Chain") == []


@pytest.mark.valgrind
def test_plugin_error_is_a_500_with_the_request_id(gateway_factory, upstream, tmp_path):
    log = str(tmp_path / "plugin-log.txt")
    gw = gateway_factory(cfg(upstream, [
        {"probe-a": {"tag": "a", "fail_in": "access", "log_file": log}},
        {"probe-b": {"tag": "b", "log_file": log}},
    ]))
    r = gw.get("/echo", headers=[("X-Request-Id", "plugin-err-1")])
    err = expect.gateway_error(r, 500, "plugin_error", "api_error")
    assert err["request_id"] == "plugin-err-1"
    assert upstream.requests == []
    assert "plugin probe-a: returned an error" in gw.stderr()
    gw.access_log(min_lines=1)
    with open(log) as f:
        assert sorted(f.read().splitlines()) == ["a 500", "b 500"]
    assert gw.get("/echo").status == 500   # the worker lives on


def test_context_passes_between_plugins(gateway_factory, upstream):
    gw = gateway_factory(cfg(upstream, [
        {"probe-a": {"tag": "a", "set_ctx": True}},
        {"probe-b": {"tag": "b", "read_ctx": "from-a"}},
        {"probe-c": {"tag": "c", "read_ctx": "from-nobody"}},
    ]))
    echo = expect.echo(gw.get("/echo"))
    # the last writer of an upstream header wins: probe-c ran after probe-b
    assert expect.values(echo, "X-Ctx") == ["(none)"]
    gw2 = gateway_factory(cfg(upstream, [
        {"probe-a": {"tag": "a", "set_ctx": True}},
        {"probe-b": {"tag": "b", "read_ctx": "from-a"}},
    ]))
    assert expect.values(expect.echo(gw2.get("/echo")), "X-Ctx") == ["a"]


def test_rewrite_changes_upstream_target_and_body(gateway_factory, upstream):
    gw = gateway_factory(cfg(upstream, [
        {"probe-a": {"tag": "a", "set_target": "/echo/rewritten?x=1", "set_body": "hello"}}]))
    r = gw.post("/echo/original", b"original body")
    echo = expect.echo(r)
    assert echo["target"] == "/echo/rewritten?x=1"
    assert echo["body"] == "hello"
    assert expect.values(echo, "Content-Length") == ["5"]


@pytest.mark.valgrind
def test_suspended_plugins_resume_many_at_once(gateway_factory, upstream):
    gw = gateway_factory(cfg(upstream, [{"probe-a": {"tag": "a", "yield_ms": 50}},
                                        {"probe-b": {"tag": "b"}}]))
    results = []

    def one(i):
        r = gw.get("/echo/%d" % i)
        results.append((r.status, chain_seen(r)))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(scaled(30))
    assert len(results) == 20
    for status, chain in results:
        assert status == 200
        assert chain == ["a:rewrite,b:rewrite,a:access,a:slept,b:access"]


@pytest.mark.valgrind
def test_client_leaving_while_a_plugin_waits(gateway_factory, upstream):
    gw = gateway_factory(cfg(upstream, [{"probe-a": {"tag": "a", "yield_ms": 300}}]))
    for _ in range(5):
        c = gw.conn()
        c.send(raw.build_request("GET", "/echo/left"))
        c.close()
    r = gw.get("/echo/after")
    assert r.status == 200
    lines = gw.access_log(min_lines=6)
    statuses = sorted(l["status"] for l in lines)
    assert statuses == [200, 499, 499, 499, 499, 499]
    assert [q.path for q in upstream.requests] == ["/echo/after"]


def test_body_filter_rewrites_a_chunked_stream(gateway_factory, upstream):
    gw = gateway_factory(cfg(upstream, [
        {"probe-a": {"tag": "a", "upper_body": True}},
        {"probe-b": {"tag": "b", "append_body": "!END"}},
    ]))
    r = gw.get("/chunks?n=3&size=4&delay_ms=20")
    assert r.status == 200
    assert r.header("Transfer-Encoding") == "chunked"
    assert r.body == b"AAAABBBBCCCC!END"


def test_body_filter_drops_content_length(gateway_factory, upstream):
    gw = gateway_factory(cfg(upstream, [{"probe-a": {"tag": "a", "append_body": "+tail"}}]))
    r = gw.get("/big?bytes=10")
    assert r.status == 200
    assert r.header("Content-Length") is None
    assert r.header("Transfer-Encoding") == "chunked"
    assert r.body == bytes(range(10)) + b"+tail"


def test_body_filter_streams_sse_piece_by_piece(gateway_factory, upstream):
    gw = gateway_factory(cfg(upstream, [{"probe-a": {"tag": "a", "upper_body": True}}]))
    c = gw.conn()
    c.send(raw.build_request("GET", "/sse?n=3&delay_ms=10&hold=sse1"))
    head = c.read_head()
    assert head.status == 200
    first = c.read_chunk(head)       # arrives while the upstream is held after event 0
    assert first == b"ID: 0\nDATA: EVENT 0\n\n"
    upstream.release("sse1")
    rest = b""
    while True:
        piece = c.read_chunk(head)
        if piece == b"":
            break
        rest += piece
    assert rest == b"ID: 1\nDATA: EVENT 1\n\nID: 2\nDATA: EVENT 2\n\n"


def test_example_request_signer(gateway_factory, upstream):
    secret = "0123456789abcdef-secret"
    c = proxy(upstream, route={"plugins": [{"request-signer": {"secret": secret}}]})
    gw = gateway_factory(c)
    r = gw.post("/echo/signed?a=1", b'{"x":1}')
    echo = expect.echo(r)
    (ts,) = expect.values(echo, "X-Signature-Timestamp")
    (sig,) = expect.values(echo, "X-Signature")
    msg = "POST\n/echo/signed?a=1\n%s\n%s" % (ts, hashlib.sha256(b'{"x":1}').hexdigest())
    assert sig == hmac.new(secret.encode(), msg.encode(), hashlib.sha256).hexdigest()


# ---- config errors -------------------------------------------------------------

def check(sluice_bin, tmp_path, text):
    path = tmp_path / "conf.yaml"
    path.write_text(textwrap.dedent(text).replace("@SPEC@", SPEC_PLUGINS))
    proc = subprocess.run([sluice_bin, "check", "-c", str(path)], capture_output=True, text=True,
                          timeout=scaled(30), stdin=subprocess.DEVNULL)
    return proc, str(path)


BASE = """\
listen: 127.0.0.1:1
plugin_dirs: ["@SPEC@"]
routes:
  - name: r
    upstream: http://127.0.0.1:9
    plugins:
"""


def test_schema_errors_name_file_line_plugin_and_field(sluice_bin, tmp_path):
    proc, path = check(sluice_bin, tmp_path, BASE + """\
      - probe-a: {answer_in: later, yield_ms: -1, colour: red}
      - probe-b: {}
""")
    assert proc.returncode == 1
    where_a = "%s:7: routes[0].plugins[0] (probe-a)" % path
    where_b = "%s:8: routes[0].plugins[1] (probe-b)" % path
    lines = proc.stderr.splitlines()
    assert any(l.startswith(where_a + ".answer_in: must be one of") for l in lines), lines
    assert any(l.startswith(where_a + ".yield_ms: must be >= 0") for l in lines), lines
    assert any(l.startswith(where_a + ".colour: unknown field") for l in lines), lines
    assert any(l.startswith(where_a + ".tag: missing required field") for l in lines), lines
    assert any(l.startswith(where_b + ".tag: missing required field") for l in lines), lines


def test_configure_can_refuse(sluice_bin, tmp_path):
    proc, path = check(sluice_bin, tmp_path, BASE + "      - probe-a: {tag: reject-me}\n")
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        '%s:7: routes[0].plugins[0] (probe-a): tag "reject-me" is refused by configure()' % path]


def test_missing_capability_is_refused_and_provided_one_accepted(sluice_bin, tmp_path):
    proc, path = check(sluice_bin, tmp_path, BASE + "      - needs-consumer: {}\n")
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        '%s:7: routes[0].plugins[0] (needs-consumer): needs a plugin that provides "consumer" '
        'earlier in the chain (for "consumer": an auth plugin such as key-auth)' % path]


def test_abi_mismatch_is_refused(sluice_bin, tmp_path):
    proc, path = check(sluice_bin, tmp_path, BASE + "      - abi-future: {tag: x}\n")
    assert proc.returncode == 1
    so = os.path.join(SPEC_PLUGINS, "abi-future.so")
    assert proc.stderr.splitlines() == [
        "%s:7: routes[0].plugins[0] (abi-future): %s was built for plugin ABI 99.1 but this "
        "gateway speaks ABI 1.1; rebuild it against this gateway's SDK" % (path, so)]


def test_unknown_plugin(sluice_bin, tmp_path):
    proc, path = check(sluice_bin, tmp_path, BASE + "      - no-such-plugin: {}\n")
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        '%s:7: routes[0].plugins[0] (no-such-plugin): unknown plugin "no-such-plugin" (looked in '
        'plugin_dirs, $SLUICE_PLUGIN_PATH and the built-in plugin directories)' % path]


# ---- streamed answers (host->http_stream, stream_start/stream_write, timers) ----

def stream_cfg(upstream, url, **opts):
    c = proxy(upstream, route={"plugins": [{"stream-probe": dict(url=url, **opts)}]})
    c["plugin_dirs"] = [SPEC_PLUGINS]
    return c


@pytest.mark.valgrind
def test_plugin_streams_another_response_piece_by_piece(gateway_factory, upstream, upstream_factory):
    other = upstream_factory("other")
    gw = gateway_factory(stream_cfg(upstream, other.url + "/sse?n=3&delay_ms=10&hold=ps1"))
    c = gw.conn()
    c.send(raw.build_request("GET", "/echo/stream"))
    head = c.read_head()
    assert head.status == 200
    assert head.header("X-Upstream-Status") == "200"
    assert head.header("Transfer-Encoding") == "chunked"
    assert c.read_chunk(head) == b"id: 0\ndata: event 0\n\n"   # before the other server goes on
    other.release("ps1")
    rest = b""
    while True:
        piece = c.read_chunk(head)
        if piece == b"":
            break
        rest += piece
    assert rest == b"id: 1\ndata: event 1\n\nid: 2\ndata: event 2\n\n[end: ok]"
    assert upstream.requests == []


def test_plugin_cancels_a_stream_part_way(gateway_factory, upstream, upstream_factory):
    other = upstream_factory("other")
    gw = gateway_factory(stream_cfg(upstream, other.url + "/big?bytes=100000", cancel_after_bytes=1))
    r = gw.get("/echo")
    assert r.status == 200
    assert r.body.endswith(b"[cancelled]")
    assert 1 + len(b"[cancelled]") <= len(r.body) < 100000
    assert gw.get("/echo").status == 200     # the worker is fine afterwards


def test_timer_cancels_a_stalled_stream(gateway_factory, upstream, upstream_factory):
    other = upstream_factory("other")
    gw = gateway_factory(stream_cfg(upstream, other.url + "/sse?n=2&hold=never", deadline_ms=200))
    r = gw.get("/echo")
    assert r.status == 200
    assert r.body == b"id: 0\ndata: event 0\n\n[deadline]"


def test_stream_errors_before_the_head_reach_the_plugin(gateway_factory, upstream):
    from ports import free_port
    gw = gateway_factory(stream_cfg(upstream, "http://127.0.0.1:%d/x" % free_port()))
    r = gw.get("/echo")
    err = expect.gateway_error(r, 502, "stream_failed", "api_error")
    assert err["message"].startswith("[end: connect failed")
