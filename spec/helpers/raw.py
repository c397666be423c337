"""Raw-socket HTTP/1.1 client for the black-box specs.

http.client hides what the specs are about (it adds headers, merges
duplicates, tolerates bad framing), so requests are built byte by byte here and
responses are parsed strictly: a response cut short raises IncompleteResponse
instead of passing as complete.
"""

import json
import socket
import ssl
import time

from scale import scaled

DEFAULT_HOST = "sluice.test"


class Response:
    def __init__(self):
        self.version = None
        self.status = None
        self.reason = None
        self.headers = []       # [(name, value)] in order, duplicates kept
        # bytearrays: appending chunk after chunk of a multi-megabyte body
        # to bytes would copy it all each time.
        self.body = bytearray()
        self.chunks = None      # list of chunk payloads when chunked
        self.raw = bytearray()  # every byte of this response as received
        self.complete = False

    def header(self, name):
        """First value of a header (case-insensitive name), or None."""
        name = name.lower()
        for n, v in self.headers:
            if n.lower() == name:
                return v
        return None

    def headers_named(self, name):
        name = name.lower()
        return [v for n, v in self.headers if n.lower() == name]

    def has_header(self, name):
        return self.header(name) is not None

    def json(self):
        return json.loads(bytes(self.body))

    def __repr__(self):
        return "<Response %s %r headers=%r body=%r>" % (self.status, self.reason, self.headers, self.body[:200])


class IncompleteResponse(Exception):
    """The connection ended before the response was complete; .partial holds
    what arrived (status and headers if the head was complete)."""

    def __init__(self, why, partial):
        super().__init__("%s (partial: %r)" % (why, partial))
        self.why = why
        self.partial = partial


def build_request(method, target, headers=(), body=None, version="HTTP/1.1", host=DEFAULT_HOST):
    """Request bytes. Host comes first unless host is None; Content-Length is
    added for a body unless the headers already frame it."""
    if isinstance(headers, dict):
        headers = list(headers.items())
    lines = ["%s %s %s" % (method, target, version)]
    if host is not None:
        lines.append("Host: %s" % host)
    names = {n.lower() for n, _ in headers}
    for n, v in headers:
        lines.append("%s: %s" % (n, v))
    if isinstance(body, str):
        body = body.encode("latin-1")
    if body is not None and "content-length" not in names and "transfer-encoding" not in names:
        lines.append("Content-Length: %d" % len(body))
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


def chunked(*pieces):
    """A chunked body from the given pieces, with the last-chunk."""
    out = b""
    for p in pieces:
        if isinstance(p, str):
            p = p.encode("latin-1")
        if p:   # an empty piece would be read as the last-chunk
            out += b"%x\r\n%s\r\n" % (len(p), p)
    return out + b"0\r\n\r\n"


class Conn:
    """One client connection with a read buffer, so pipelined responses can be
    read one after the other."""

    def __init__(self, port, host="127.0.0.1", timeout=5.0, tls=None, server_hostname=None,
                 source_ip=None, rcvbuf=None):
        self.timeout = scaled(timeout)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if source_ip:
            sock.bind((source_ip, 0))
        sock.settimeout(self.timeout)
        sock.connect((host, port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls is not None:
            sock = tls.wrap_socket(sock, server_hostname=server_hostname)
        self.sock = sock
        self.buf = bytearray()
        self.eof = False

    # -- sending ---------------------------------------------------------------

    def send(self, data, splits=(), pause=0.02):
        """Sends data, cut at the given offsets with a pause between the
        pieces (each piece is its own write, so usually its own TCP segment)."""
        if isinstance(data, str):
            data = data.encode("latin-1")
        last = 0
        for off in sorted(splits):
            if 0 < off < len(data):
                self.sock.sendall(data[last:off])
                time.sleep(pause)
                last = off
        self.sock.sendall(data[last:])

    def send_slowly(self, data, delay):
        """One byte per `delay` seconds; stops quietly when the peer closes."""
        for i in range(len(data)):
            try:
                self.sock.sendall(data[i:i + 1])
            except OSError:
                return i
            time.sleep(delay)
        return len(data)

    def request(self, method, target, headers=(), body=None, version="HTTP/1.1", host=DEFAULT_HOST):
        self.send(build_request(method, target, headers, body, version, host))
        return self.read_response(method)

    # -- receiving -------------------------------------------------------------

    def _fill(self):
        if self.eof:
            return False
        try:
            data = self.sock.recv(65536)
        except (ConnectionResetError, ssl.SSLEOFError):
            data = b""
        except ssl.SSLError as e:
            if "UNEXPECTED_EOF" in str(e) or "EOF" in str(e):
                data = b""
            else:
                raise
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def _take(self, n):
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def read_line(self):
        """A line up to LF (inclusive); b'' at EOF with nothing buffered."""
        while b"\n" not in self.buf:
            if not self._fill():
                return self._take(len(self.buf))
        return self._take(self.buf.index(b"\n") + 1)

    def read_exact(self, n):
        while len(self.buf) < n:
            if not self._fill():
                break
        return self._take(min(n, len(self.buf)))

    def read_some(self):
        """Whatever is buffered or arrives next; b'' at EOF."""
        if not self.buf:
            self._fill()
        return self._take(len(self.buf))

    def read_head(self):
        """Reads a response head (skipping 1xx interim responses except 101);
        raises IncompleteResponse if the connection ends first."""
        while True:
            resp = Response()
            while b"\r\n\r\n" not in self.buf:
                if not self._fill():
                    resp.raw = bytearray(self._take(len(self.buf)))
                    raise IncompleteResponse("connection closed before the response head", resp)
            end = self.buf.index(b"\r\n\r\n") + 4
            raw = self._take(end)
            lines = raw[:-4].decode("latin-1").split("\r\n")
            version, _, rest = lines[0].partition(" ")
            status, _, reason = rest.partition(" ")
            resp.version, resp.status, resp.reason = version, int(status), reason
            for line in lines[1:]:
                name, _, value = line.partition(":")
                resp.headers.append((name, value.strip(" \t")))
            resp.raw = bytearray(raw)
            if 100 <= resp.status < 200 and resp.status != 101:
                continue
            return resp

    def read_chunk(self, resp):
        """Reads one chunk of a chunked body into resp; returns its payload,
        b'' for the last-chunk (and then marks resp complete)."""
        if resp.chunks is None:
            resp.chunks = []
        line = self.read_line()
        resp.raw += line
        if not line.endswith(b"\r\n"):
            raise IncompleteResponse("connection closed inside the chunked body", resp)
        size = int(line[:-2].split(b";")[0], 16)
        if size == 0:
            while True:
                trailer = self.read_line()
                resp.raw += trailer
                if not trailer.endswith(b"\n"):
                    raise IncompleteResponse("connection closed in the trailer section", resp)
                if trailer == b"\r\n":
                    resp.complete = True
                    return b""
        data = self.read_exact(size + 2)
        resp.raw += data
        if len(data) < size + 2:
            resp.body += data[:size]
            raise IncompleteResponse("connection closed inside a chunk", resp)
        if data[-2:] != b"\r\n":
            raise AssertionError("chunk data not followed by CRLF: %r" % data[-2:])
        resp.chunks.append(data[:-2])
        resp.body += data[:-2]
        return data[:-2]

    def read_body(self, resp, method="GET"):
        """Reads the body that belongs to resp according to its framing."""
        no_body = method == "HEAD" or resp.status in (204, 304) or 100 <= resp.status < 200
        te = resp.header("transfer-encoding")
        cl = resp.header("content-length")
        if no_body:
            resp.complete = True
        elif te is not None:
            if te.lower() != "chunked":
                raise AssertionError("unexpected Transfer-Encoding %r" % te)
            resp.chunks = []
            while self.read_chunk(resp):
                pass
        elif cl is not None:
            n = int(cl)
            data = self.read_exact(n)
            resp.raw += data
            resp.body = bytearray(data)
            if len(data) < n:
                raise IncompleteResponse("connection closed after %d of %d body bytes" % (len(data), n), resp)
            resp.complete = True
        else:
            data = self.read_until_close()
            resp.raw += data
            resp.body = bytearray(data)
            resp.complete = True
        return resp

    def read_response(self, method="GET"):
        resp = self.read_head()
        return self.read_body(resp, method)

    def read_until_close(self):
        """Everything until the peer closes (a reset counts as a close)."""
        while self._fill():
            pass
        return self._take(len(self.buf))

    def is_closed(self):
        """True if the peer has closed (EOF or reset) with no further bytes;
        waits up to the connection timeout. Raises if bytes arrive instead."""
        try:
            if self.buf or self._fill():
                raise AssertionError("expected the connection to close, got %r" % self.buf[:200])
        except socket.timeout:
            return False
        return True

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def request(port, method, target, headers=(), body=None, version="HTTP/1.1", host=DEFAULT_HOST, **conn_kw):
    """One request on a fresh connection; returns the Response."""
    with Conn(port, **conn_kw) as c:
        return c.request(method, target, headers, body, version, host)


def get(port, target, headers=(), **kw):
    return request(port, "GET", target, headers, **kw)


def expect_refused(port, host="127.0.0.1", timeout=1.0):
    """True if a TCP connect to port is refused."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect((host, port))
    except ConnectionRefusedError:
        return True
    except OSError:
        return False
    finally:
        s.close()
    return False
