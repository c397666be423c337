"""Response bodies: streamed as they arrive, intact, framed for the client."""

import time

import pytest

import expect
from configs import proxy
from mock_upstream import big_body, chunk_payload, sse_event

EIGHT_MB = 8 * 1024 * 1024


@pytest.mark.valgrind
def test_chunks_forwarded_as_they_arrive(gateway_factory, upstream):
    gw = gateway_factory(proxy(upstream))
    target = "/chunks?n=4&size=10&hold=first"
    with gw.conn() as c:
        c.send(b"GET %s HTTP/1.1\r\nHost: s.test\r\n\r\n" % target.encode())
        resp = c.read_head()
        assert resp.status == 200
        assert resp.header("Transfer-Encoding") == "chunked"
        resp.chunks = []
        # The upstream is holding chunks 2..4 until released: the first chunk
        # can only be here if the gateway forwarded it on its own.
        assert c.read_chunk(resp) == chunk_payload(0, 10)
        assert upstream.stream_progress[target] == 1
        upstream.release("first")
        while c.read_chunk(resp):
            pass
        assert resp.complete is True
        assert resp.body == b"".join(chunk_payload(i, 10) for i in range(4))
        # The connection is still good for another request.
        assert c.request("GET", "/echo").status == 200


def test_server_sent_events(gateway_factory, upstream):
    gw = gateway_factory(proxy(upstream))
    target = "/sse?n=3&delay_ms=50&hold=sse"
    with gw.conn() as c:
        c.send(b"GET %s HTTP/1.1\r\nHost: s.test\r\nAccept: text/event-stream\r\n\r\n" % target.encode())
        resp = c.read_head()
        assert resp.status == 200
        assert resp.header("Content-Type") == "text/event-stream"
        assert resp.header("Cache-Control") == "no-cache"
        resp.chunks = []
        assert c.read_chunk(resp) == sse_event(0)
        upstream.release("sse")
        while c.read_chunk(resp):
            pass
        assert resp.body == sse_event(0) + sse_event(1) + sse_event(2)


def test_content_length_body_keeps_content_length(gateway_factory, upstream):
    gw = gateway_factory(proxy(upstream))
    r = gw.get("/big?bytes=1000")
    assert r.header("Content-Length") == "1000"
    assert r.header("Transfer-Encoding") is None
    assert r.body == big_body(1000)


def test_close_delimited_body_goes_chunked_to_http11_client(gateway_factory, upstream):
    gw = gateway_factory(proxy(upstream))
    with gw.conn() as c:
        r = c.request("GET", "/close-delimited?bytes=5000")
        assert r.header("Transfer-Encoding") == "chunked"
        assert r.header("Content-Length") is None
        assert r.body == big_body(5000)
        assert c.request("GET", "/echo").status == 200


def test_http10_client_gets_close_delimited_body(gateway_factory, upstream):
    gw = gateway_factory(proxy(upstream))
    with gw.conn() as c:
        r = c.request("GET", "/chunks?n=3&size=5", version="HTTP/1.0", host=None)
        assert r.status == 200
        assert r.header("Transfer-Encoding") is None
        assert r.header("Content-Length") is None
        assert r.body == b"aaaaabbbbbccccc"
        assert c.eof is True


@pytest.mark.parametrize("chunked", [False, True], ids=["content_length", "chunked"])
def test_large_body_to_slow_reader(gateway_factory, upstream, chunked):
    gw = gateway_factory(proxy(upstream))
    target = "/big?bytes=%d%s" % (EIGHT_MB, "&chunked=1" if chunked else "")
    with gw.conn(rcvbuf=16384, timeout=30) as c:
        c.send(b"GET %s HTTP/1.1\r\nHost: s.test\r\n\r\n" % target.encode())
        # Not reading lets every buffer between upstream and client fill up:
        # the gateway has to stop reading the upstream, not grow without bound.
        time.sleep(1.0)
        resp = c.read_head()
        assert resp.status == 200
        pieces = []
        if chunked:
            resp.chunks = []
            while True:
                chunk = c.read_chunk(resp)
                if not chunk:
                    break
                if len(resp.chunks) % 64 == 0:
                    time.sleep(0.05)
            body = resp.body
        else:
            assert resp.header("Content-Length") == str(EIGHT_MB)
            got = 0
            while got < EIGHT_MB:
                piece = c.read_exact(min(16384, EIGHT_MB - got))
                assert piece, "connection closed after %d bytes" % got
                pieces.append(piece)
                got += len(piece)
                if len(pieces) % 64 == 0:
                    time.sleep(0.05)
            body = b"".join(pieces)
        assert len(body) == EIGHT_MB
        assert body == big_body(EIGHT_MB)
        assert c.request("GET", "/echo").status == 200


def test_head_response_has_no_body(gateway_factory, upstream):
    gw = gateway_factory(proxy(upstream))
    with gw.conn() as c:
        r = c.request("HEAD", "/big?bytes=100")
        assert (r.status, r.header("Content-Length"), r.body) == (200, "100", b"")
        e = expect.echo(c.request("GET", "/echo/next"))
        assert e["target"] == "/echo/next"


@pytest.mark.parametrize("status", [204, 304])
def test_bodiless_statuses_keep_the_connection_usable(gateway_factory, upstream, status):
    gw = gateway_factory(proxy(upstream))
    with gw.conn() as c:
        r = c.request("GET", "/status/%d" % status)
        assert (r.status, r.body, r.header("Transfer-Encoding")) == (status, b"", None)
        assert expect.echo(c.request("GET", "/echo/after"))["target"] == "/echo/after"
