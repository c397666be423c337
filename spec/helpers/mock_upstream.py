"""A scripted HTTP/1.1 upstream for the black-box specs.

Raw sockets on purpose: the specs must see exactly the bytes the gateway sent
(header order, case, framing), which http.server would normalise away. One
thread per connection keeps the code simple; a connection carries any number
of keep-alive or pipelined requests, answered strictly in order.

Behaviour is chosen by the request path (see _dispatch); anything unknown is
answered like /echo so routing specs can use arbitrary paths.
"""

import json
import socket
import ssl
import threading
import time
import urllib.parse

from scale import scaled

HEALTH_PATH = "/health"


def big_body(n):
    """The body /big?bytes=N sends: a 251-byte cycle, so a dropped, repeated or
    reordered block shows up as a mismatch at the right offset."""
    block = bytes(range(251))
    return (block * (n // len(block) + 1))[:n]


def chunk_payload(i, size):
    return bytes([ord("a") + i % 26]) * size


def sse_event(i):
    return b"id: %d\ndata: event %d\n\n" % (i, i)


class Request:
    """One request as the upstream received it."""

    def __init__(self, conn_id, method, target, version, headers, body, raw_head, raw_body):
        self.conn_id = conn_id
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers          # [(name, value)] exactly as received, in order
        self.body = body                # decoded body bytes
        self.raw_head = raw_head        # head bytes incl. the blank line
        self.raw = raw_head + raw_body  # head + body bytes as framed on the wire
        self.path, _, query = target.partition("?")
        self.query = urllib.parse.parse_qs(query, keep_blank_values=True)
        self.received_at = time.monotonic()

    def header(self, name):
        name = name.lower()
        for n, v in self.headers:
            if n.lower() == name:
                return v
        return None

    def headers_named(self, name):
        name = name.lower()
        return [v for n, v in self.headers if n.lower() == name]

    def qint(self, key, default):
        vals = self.query.get(key)
        return int(vals[0]) if vals else default

    def qstr(self, key, default=None):
        vals = self.query.get(key)
        return vals[0] if vals else default

    def __repr__(self):
        return "<Request %s %s conn=%d>" % (self.method, self.target, self.conn_id)


class _Closed(Exception):
    """The peer closed (or reset) the connection."""


class _BadRequest(Exception):
    pass


class _Reader:
    """Buffered reads from a socket; keeps bytes of pipelined requests."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def _fill(self):
        try:
            data = self.sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError, OSError) as e:
            raise _Closed() from e
        if not data:
            raise _Closed()
        self.buf += data

    def until(self, marker, limit=1 << 20):
        while True:
            i = self.buf.find(marker)
            if i >= 0:
                out, self.buf = self.buf[: i + len(marker)], self.buf[i + len(marker):]
                return out
            if len(self.buf) > limit:
                raise _BadRequest("head too large")
            self._fill()

    def exact(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out


def _parse_head(raw_head):
    text = raw_head.decode("latin-1")
    lines = text.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3:
        raise _BadRequest("bad request line %r" % lines[0])
    method, target, version = parts
    headers = []
    for line in lines[1:]:
        if line == "":
            continue
        name, sep, value = line.partition(":")
        if not sep or name != name.strip() or not name:
            raise _BadRequest("bad header line %r" % line)
        headers.append((name, value.strip(" \t")))
    return method, target, version, headers


def _read_chunked(reader):
    raw = b""
    body = b""
    while True:
        line = reader.until(b"\r\n")
        raw += line
        size_text = line[:-2].split(b";")[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise _BadRequest("bad chunk size %r" % size_text)
        if size == 0:
            while True:
                trailer = reader.until(b"\r\n")
                raw += trailer
                if trailer == b"\r\n":
                    return body, raw
        data = reader.exact(size + 2)
        raw += data
        if data[-2:] != b"\r\n":
            raise _BadRequest("chunk data not followed by CRLF")
        body += data[:-2]


class MockUpstream:
    """Start with MockUpstream(name); it listens on a free port at once.

    tls: an ssl.SSLContext (server side) or a (cert_file, key_file) pair.
    """

    def __init__(self, name="upstream", host="127.0.0.1", port=0, tls=None):
        self.name = name
        self.host = host
        self._lock = threading.Condition()
        self.requests = []          # every Request, in arrival order
        self.connections = 0        # connections accepted
        self.errors = []            # framing errors in what the gateway sent
        self.sni_names = []         # server_name of each TLS handshake (None when absent)
        self.tls_errors = []        # failed TLS handshakes (e.g. the gateway rejected our cert)
        self.stream_progress = {}   # path -> chunks sent so far by /chunks and /sse
        self._healthy = True
        self._forced_status = None
        self._delay_ms = 0
        self._gates = {}
        self._socks = set()
        self._threads = []
        self._stopping = False
        self._stop_event = threading.Event()   # wakes sleeping handlers on stop()
        self._tls_ctx = self._make_tls(tls)
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((host, port))
        self._listener.listen(128)
        self.port = self._listener.getsockname()[1]
        self._accept_thread = threading.Thread(target=self._accept_loop, name="mock-%s" % name, daemon=True)
        self._accept_thread.start()

    # -- public knobs ------------------------------------------------------

    @property
    def url(self):
        return "%s://%s:%d" % ("https" if self._tls_ctx else "http", self.host, self.port)

    @property
    def addr(self):
        return "%s:%d" % (self.host, self.port)

    def set_healthy(self, healthy):
        """/health answers 200 when healthy, else 503."""
        with self._lock:
            self._healthy = healthy

    def set_status(self, status):
        """Answer every non-health request with this status (None = normal behaviour)."""
        with self._lock:
            self._forced_status = status

    def set_delay(self, ms):
        """Wait this long before answering any non-health request."""
        with self._lock:
            self._delay_ms = ms

    def gate(self, key):
        with self._lock:
            return self._gates.setdefault(key, threading.Event())

    def release(self, key):
        """Lets requests held by /hold?key=K (or hold=K on a stream) go on."""
        self.gate(key).set()

    def app_requests(self, prefix=""):
        """Requests other than active health checks, optionally by path prefix."""
        with self._lock:
            return [r for r in self.requests if r.path != HEALTH_PATH and r.path.startswith(prefix)]

    def count(self, prefix=""):
        return len(self.app_requests(prefix))

    def health_checks(self):
        with self._lock:
            return [r for r in self.requests if r.path == HEALTH_PATH]

    def wait_for(self, predicate, timeout=5.0):
        """Waits until predicate(self) is true (re-checked on every request)."""
        deadline = time.monotonic() + scaled(timeout)
        with self._lock:
            while not predicate(self):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(min(left, 0.05))
        return True

    def wait_for_requests(self, n, prefix="", timeout=5.0):
        return self.wait_for(lambda m: m.count(prefix) >= n, timeout)

    def open_connections(self):
        with self._lock:
            return len(self._socks)

    def drop_connections(self):
        """Closes every open connection from the server side, as an upstream
        does when its keep-alive timeout expires."""
        with self._lock:
            socks = list(self._socks)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def reset(self):
        with self._lock:
            self.requests = []
            self.errors = []
            self.sni_names = []
            self.tls_errors = []

    def stop(self):
        self._stop_event.set()
        with self._lock:
            self._stopping = True
            socks = list(self._socks)
            gates = list(self._gates.values())
        for g in gates:
            g.set()
        try:
            # close() alone does not wake a thread blocked in accept().
            self._listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self._listener.close()
        except OSError:
            pass
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                s.close()
            except OSError:
                pass
        self._accept_thread.join(2)
        for t in list(self._threads):
            t.join(2)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    # -- internals -----------------------------------------------------------

    def _make_tls(self, tls):
        if tls is None or isinstance(tls, ssl.SSLContext):
            ctx = tls
        else:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(tls[0], tls[1])
        if ctx is not None:
            def on_sni(sslobj, server_name, _ctx):
                with self._lock:
                    self.sni_names.append(server_name)
            ctx.sni_callback = on_sni
        return ctx

    def _accept_loop(self):
        while True:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                if self._stopping:
                    sock.close()
                    return
                self.connections += 1
                conn_id = self.connections
                self._socks.add(sock)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            t = threading.Thread(target=self._serve, args=(sock, conn_id), daemon=True)
            self._threads.append(t)
            t.start()

    def _serve(self, sock, conn_id):
        try:
            if self._tls_ctx is not None:
                sock.settimeout(scaled(5))
                try:
                    tls_sock = self._tls_ctx.wrap_socket(sock, server_side=True)
                except (ssl.SSLError, OSError) as e:
                    with self._lock:
                        self.tls_errors.append(str(e))
                    return
                with self._lock:
                    self._socks.discard(sock)
                    self._socks.add(tls_sock)
                sock = tls_sock
                sock.settimeout(None)
            reader = _Reader(sock)
            while True:
                try:
                    raw_head = reader.until(b"\r\n\r\n")
                    method, target, version, headers = _parse_head(raw_head)
                    req = Request(conn_id, method, target, version, headers, b"", raw_head, b"")
                    if req.header("transfer-encoding") is not None:
                        body, raw_body = _read_chunked(reader)
                    else:
                        cl = req.header("content-length")
                        body = reader.exact(int(cl)) if cl else b""
                        raw_body = body
                    req = Request(conn_id, method, target, version, headers, body, raw_head, raw_body)
                except _Closed:
                    return
                except (_BadRequest, ValueError) as e:
                    with self._lock:
                        self.errors.append(str(e))
                    self._send(sock, b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    return
                with self._lock:
                    self.requests.append(req)
                    self._lock.notify_all()
                if not self._dispatch(sock, req):
                    return
        except (_Closed, OSError):
            return
        finally:
            with self._lock:
                self._socks.discard(sock)
                self._lock.notify_all()
            try:
                sock.close()
            except OSError:
                pass

    def _send(self, sock, data):
        try:
            sock.sendall(data)
            return True
        except OSError:
            return False

    def _keep_alive(self, req):
        conn = (req.header("connection") or "").lower()
        if req.version == "HTTP/1.0":
            return "keep-alive" in conn
        return "close" not in conn

    def _head(self, status, headers, keep_alive, reason=None):
        reason = reason or _REASONS.get(status, "Status")
        lines = ["HTTP/1.1 %d %s" % (status, reason), "X-Upstream: %s" % self.name]
        for n, v in headers:
            lines.append("%s: %s" % (n, v))
        if not keep_alive and not any(n.lower() == "connection" for n, _ in headers):
            lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def _respond(self, sock, req, status, body=b"", headers=(), content_type="application/json"):
        """A complete Content-Length response; returns whether to keep the connection."""
        keep = self._keep_alive(req)
        hdrs = list(headers)
        no_body = status in (204, 304) or 100 <= status < 200
        if not no_body:
            hdrs = [("Content-Type", content_type), ("Content-Length", str(len(body)))] + hdrs
        head = self._head(status, hdrs, keep)
        payload = head if (no_body or req.method == "HEAD") else head + body
        return self._send(sock, payload) and keep

    def _echo_body(self, req):
        return json.dumps({
            "method": req.method,
            "target": req.target,
            "version": req.version,
            "headers": [[n, v] for n, v in req.headers],
            "body": req.body.decode("latin-1"),
            "raw_head": req.raw_head.decode("latin-1"),
            "upstream": self.name,
            "conn_id": req.conn_id,
        }).encode()

    def _dispatch(self, sock, req):
        path = req.path
        if path == HEALTH_PATH:
            with self._lock:
                healthy = self._healthy
            status = 200 if healthy else 503
            return self._respond(sock, req, status, b'{"healthy":%s}' % (b"true" if healthy else b"false"))
        with self._lock:
            forced, delay = self._forced_status, self._delay_ms
        if delay:
            self._stop_event.wait(delay / 1000.0)
        if forced is not None:
            body = json.dumps({"status": forced, "upstream": self.name}).encode()
            return self._respond(sock, req, forced, body)
        if path.startswith("/status/"):
            status = int(path[len("/status/"):].split("/")[0])
            body = json.dumps({"status": status, "upstream": self.name}).encode()
            return self._respond(sock, req, status, body)
        if path.startswith("/delay/"):
            self._stop_event.wait(int(path[len("/delay/"):].split("/")[0]) / 1000.0)
            return self._respond(sock, req, 200, self._echo_body(req))
        if path == "/hold":
            self.gate(req.qstr("key", "default")).wait(scaled(30))
            return self._respond(sock, req, 200, self._echo_body(req))
        if path == "/close-before-head":
            return False
        if path == "/close-mid-body":
            head = self._head(200, [("Content-Type", "text/plain"), ("Content-Length", "100")], True)
            self._send(sock, head + b"0123456789")
            # The pause makes sure the gateway has forwarded the head before it
            # learns the body is cut short, so the spec sees the mid-body case.
            time.sleep(req.qint("pause_ms", 200) / 1000.0)
            return False
        if path == "/malformed":
            self._send(sock, b"HTTP/1.1 2x0 Broken\r\nContent-Length: 0\r\n\r\n")
            time.sleep(0.05)
            return False
        if path in ("/chunks", "/sse"):
            return self._stream(sock, req)
        if path == "/big":
            n = req.qint("bytes", 0)
            if req.qstr("chunked") == "1":
                return self._send_chunked(sock, req, [big_body(n)[i:i + 65536] for i in range(0, n, 65536)],
                                          "application/octet-stream")
            return self._respond(sock, req, 200, big_body(n), content_type="application/octet-stream")
        if path == "/close-delimited":
            head = self._head(200, [("Content-Type", "application/octet-stream")], False)
            self._send(sock, head + (b"" if req.method == "HEAD" else big_body(req.qint("bytes", 0))))
            return False
        if path == "/headers":
            # Each query parameter becomes a response header, in order, so specs
            # can make the upstream send hop-by-hop headers.
            extra = urllib.parse.parse_qsl(req.target.partition("?")[2], keep_blank_values=True)
            keep = self._keep_alive(req)
            conn_vals = [v for n, v in extra if n.lower() == "connection"]
            if any("close" in v.lower() for v in conn_vals):
                keep = False
            body = b"headers"
            hdrs = [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))] + extra
            head = self._head(200, hdrs, keep)
            return self._send(sock, head + (b"" if req.method == "HEAD" else body)) and keep
        return self._respond(sock, req, 200, self._echo_body(req))

    def _stream(self, sock, req):
        """/chunks?n=5&delay_ms=100&size=10 and /sse?n=3&delay_ms=50.

        hold=KEY: after the first chunk, wait for release(KEY) -- lets a spec
        prove the first chunk reached the client while the upstream still held
        the rest. abort_after=K: close after K chunks without the last-chunk.
        """
        n = req.qint("n", 5)
        delay = req.qint("delay_ms", 0) / 1000.0
        size = req.qint("size", 10)
        hold = req.qstr("hold")
        abort_after = req.qint("abort_after", -1)
        sse = req.path == "/sse"
        ctype = "text/event-stream" if sse else "text/plain"
        keep = self._keep_alive(req)
        hdrs = [("Content-Type", ctype), ("Transfer-Encoding", "chunked")]
        if sse:
            hdrs.append(("Cache-Control", "no-cache"))
        if not self._send(sock, self._head(200, hdrs, keep)):
            return False
        if req.method == "HEAD":
            return keep
        for i in range(n):
            if i == abort_after:
                time.sleep(0.1)
                return False
            if i > 0 and delay:
                time.sleep(delay)
            if i == 1 and hold:
                self.gate(hold).wait(scaled(30))
            data = sse_event(i) if sse else chunk_payload(i, size)
            # Counted before the send so that a client holding chunk i can
            # rely on progress >= i + 1.
            with self._lock:
                self.stream_progress[req.target] = i + 1
                self._lock.notify_all()
            if not self._send(sock, b"%x\r\n%s\r\n" % (len(data), data)):
                return False
        return self._send(sock, b"0\r\n\r\n") and keep

    def _send_chunked(self, sock, req, pieces, ctype):
        keep = self._keep_alive(req)
        head = self._head(200, [("Content-Type", ctype), ("Transfer-Encoding", "chunked")], keep)
        if req.method == "HEAD":
            return self._send(sock, head) and keep
        if not self._send(sock, head):
            return False
        for p in pieces:
            if not self._send(sock, b"%x\r\n%s\r\n" % (len(p), p)):
                return False
        return self._send(sock, b"0\r\n\r\n") and keep


_REASONS = {
    100: "Continue", 200: "OK", 201: "Created", 202: "Accepted", 204: "No Content",
    301: "Moved Permanently", 302: "Found", 304: "Not Modified", 400: "Bad Request",
    401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 409: "Conflict",
    429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
    503: "Service Unavailable", 504: "Gateway Timeout",
}
