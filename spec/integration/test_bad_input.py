"""Every error a client can cause, answered with the gateway's JSON error.

None of these requests may reach the upstream. Where the contract says the
connection is closed afterwards, the spec reads until EOF.
"""

import threading

import pytest

import expect
import raw
from configs import proxy
from gateway import Gateway

SERVER = {"max_uri_size": "1kb", "max_header_size": "4kb", "max_body_size": "2kb",
          "client_header_timeout": "1s", "client_body_timeout": "1s"}


def config(up):
    cfg = proxy(up, server=SERVER)
    cfg["routes"].insert(0, {"name": "small", "match": {"paths": ["/small/*"]}, "upstream": "backend",
                             "max_body_size": "1kb"})
    return cfg


@pytest.fixture(scope="module")
def shared(sluice_bin, tmp_path_factory):
    """One gateway for the table-driven cases (cheap under valgrind too)."""
    from mock_upstream import MockUpstream
    up = MockUpstream("up")
    gw = Gateway(config(up), tmp_path_factory.mktemp("bad_input"), binary=sluice_bin)
    yield gw, up
    problems = gw.finish()
    up.stop()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def H(extra=b"", method=b"GET", target=b"/echo", version=b"HTTP/1.1"):
    return method + b" " + target + b" " + version + b"\r\nHost: bad.test\r\n" + extra + b"\r\n"


BAD_REQUESTS = {
    "no_version": b"GET /echo\r\nHost: bad.test\r\n\r\n",
    "double_space": b"GET  /echo HTTP/1.1\r\nHost: bad.test\r\n\r\n",
    "relative_target": b"GET echo HTTP/1.1\r\nHost: bad.test\r\n\r\n",
    "control_char_in_target": H(target=b"/ec\x01ho"),
    "space_before_colon": H(b"X-A : 1\r\n"),
    "space_in_header_name": H(b"X A: 1\r\n"),
    "header_without_colon": H(b"X-A\r\n"),
    "empty_header_name": H(b": v\r\n"),
    "bare_cr_in_value": H(b"X-A: a\rb\r\n"),
    "bare_cr_line_end": H(b"X-A: a\rX-B: b\r\n"),
    "nul_in_value": H(b"X-A: a\x00b\r\n"),
    "obs_fold": H(b"X-A: a\r\n  folded\r\n"),
    "missing_host": b"GET /echo HTTP/1.1\r\nX-A: 1\r\n\r\n",
    "duplicate_host": H(b"Host: other.test\r\n"),
    "content_length_and_chunked": H(b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", b"POST")
    + b"5\r\nhello\r\n0\r\n\r\n",
    "differing_content_lengths": H(b"Content-Length: 5\r\nContent-Length: 6\r\n", b"POST") + b"hello!",
    "differing_content_length_list": H(b"Content-Length: 5, 6\r\n", b"POST") + b"hello!",
    "non_numeric_content_length": H(b"Content-Length: abc\r\n", b"POST"),
    "negative_content_length": H(b"Content-Length: -1\r\n", b"POST"),
    "bad_chunk_size": H(b"Transfer-Encoding: chunked\r\n", b"POST") + b"zz\r\nhello\r\n0\r\n\r\n",
    "chunk_size_with_junk": H(b"Transfer-Encoding: chunked\r\n", b"POST") + b"5 x\r\nhello\r\n0\r\n\r\n",
    "chunk_data_without_crlf": H(b"Transfer-Encoding: chunked\r\n", b"POST") + b"5\r\nhelloXX0\r\n\r\n",
    "chunk_size_overflow": H(b"Transfer-Encoding: chunked\r\n", b"POST") + b"fffffffffffffffff1\r\nx\r\n",
    "dot_dot_above_root": H(target=b"/../x"),
    "encoded_dot_dot_above_root": H(target=b"/%2e%2e/x"),
    "encoded_nul_in_path": H(target=b"/ec%00ho"),
    "bad_percent_escape": H(target=b"/ec%zzho"),
}


@pytest.mark.valgrind
@pytest.mark.parametrize("case", sorted(BAD_REQUESTS))
def test_bad_request_400_and_close(shared, case):
    gw, up = shared
    before = up.count()
    with gw.conn() as c:
        c.send(BAD_REQUESTS[case])
        r = c.read_response()
        expect.gateway_error(r, 400, "bad_request", "invalid_request_error", close=True)
        assert c.is_closed() is True
    assert up.count() == before


@pytest.mark.valgrind
@pytest.mark.parametrize("case,request_bytes,status,code", [
    ("transfer_coding_gzip", H(b"Transfer-Encoding: gzip\r\n", b"POST"), 501, "not_implemented"),
    ("transfer_coding_gzip_chunked", H(b"Transfer-Encoding: gzip, chunked\r\n", b"POST"), 501, "not_implemented"),
    ("http_2_0", H(version=b"HTTP/2.0"), 505, "version_not_supported"),
    ("http_1_2", H(version=b"HTTP/1.2"), 505, "version_not_supported"),
])
def test_unsupported(shared, case, request_bytes, status, code):
    gw, up = shared
    before = up.count()
    with gw.conn() as c:
        c.send(request_bytes)
        expect.gateway_error(c.read_response(), status, code, "invalid_request_error")
    assert up.count() == before


def test_http10_without_host_is_fine(shared):
    gw, _ = shared
    with gw.conn() as c:
        c.send(b"GET /echo/10 HTTP/1.0\r\n\r\n")
        assert expect.echo(c.read_response())["target"] == "/echo/10"


@pytest.mark.valgrind
@pytest.mark.parametrize("target,length,status", [
    ("/small/x", 1024, 200),
    ("/small/x", 1025, 413),
    ("/other", 2048, 200),
    ("/other", 2049, 413),
])
def test_body_limit_by_content_length(shared, target, length, status):
    gw, up = shared
    before = up.count(target)
    with gw.conn() as c:
        if status == 200:
            c.send(raw.build_request("POST", target, body=b"x" * length))
            e = expect.echo(c.read_response("POST"))
            assert len(e["body"]) == length
            assert up.count(target) == before + 1
        else:
            # Only the head: the 413 must come without the body being read.
            c.send(raw.build_request("POST", target, [("Content-Length", str(length))]))
            expect.gateway_error(c.read_response("POST"), 413, "body_too_large", "invalid_request_error",
                                 close=True)
            assert c.is_closed() is True
            assert up.count(target) == before


@pytest.mark.valgrind
def test_body_limit_by_chunked_growth(shared):
    gw, up = shared
    before = up.count()
    with gw.conn() as c:
        c.send(raw.build_request("POST", "/small/x", [("Transfer-Encoding", "chunked")],
                                 b"258\r\n" + b"y" * 600 + b"\r\n258\r\n" + b"y" * 600 + b"\r\n"))
        expect.gateway_error(c.read_response("POST"), 413, "body_too_large", "invalid_request_error", close=True)
        assert c.is_closed() is True
    with gw.conn() as c:
        r = c.request("POST", "/small/x", [("Transfer-Encoding", "chunked")], raw.chunked("z" * 500, "z" * 500))
        assert len(expect.echo(r)["body"]) == 1000
    assert up.count() == before + 1


@pytest.mark.valgrind
def test_uri_too_long(shared):
    gw, up = shared
    before = up.count()
    with gw.conn() as c:
        c.send(raw.build_request("GET", "/echo/" + "a" * 2000))
        expect.gateway_error(c.read_response(), 414, "uri_too_long", "invalid_request_error", close=True)
        assert c.is_closed() is True
    assert up.count() == before
    assert expect.echo(gw.get("/echo/" + "a" * 500))["target"] == "/echo/" + "a" * 500


@pytest.mark.valgrind
@pytest.mark.parametrize("headers", [
    [("X-Big", "b" * 5000)],
    [("X-H-%03d" % i, "v" * 50) for i in range(100)],
], ids=["one_big_header", "many_headers"])
def test_headers_too_large(shared, headers):
    gw, up = shared
    before = up.count()
    with gw.conn() as c:
        c.send(raw.build_request("GET", "/echo", headers))
        expect.gateway_error(c.read_response(), 431, "headers_too_large", "invalid_request_error", close=True)
        assert c.is_closed() is True
    assert up.count() == before
    assert gw.get("/echo", [("X-Big", "b" * 2000)]).status == 200


@pytest.mark.valgrind
def test_slowloris_head_gets_408_and_close(shared):
    gw, up = shared
    before = up.count()
    req = raw.build_request("GET", "/echo/slow", [("X-Padding", "p" * 30)])
    answered = threading.Event()
    with gw.conn(timeout=10) as c:
        def dribble():
            for i in range(len(req)):
                if answered.is_set():
                    return
                try:
                    c.sock.sendall(req[i:i + 1])
                except OSError:
                    return
                answered.wait(0.2)
        t = threading.Thread(target=dribble, daemon=True)
        t.start()
        try:
            r = c.read_response()
        finally:
            answered.set()
        expect.gateway_error(r, 408, "request_timeout", "invalid_request_error")
        assert c.is_closed() is True
        t.join(5)
    assert up.count() == before


def test_stalled_body_gets_408_and_close(shared):
    gw, up = shared
    before = up.count()
    with gw.conn(timeout=10) as c:
        c.send(raw.build_request("POST", "/echo/stall", [("Content-Length", "100")]) + b"0123456789")
        r = c.read_response("POST")
        expect.gateway_error(r, 408, "request_timeout", "invalid_request_error")
        assert c.is_closed() is True
    assert up.count() == before


def test_idle_keep_alive_connection_closed_silently(gateway_factory, upstream):
    gw = gateway_factory(proxy(upstream, server={"keepalive_timeout": "300ms"}))
    with gw.conn(timeout=10) as c:
        assert c.request("GET", "/echo").status == 200
        assert c.is_closed() is True
