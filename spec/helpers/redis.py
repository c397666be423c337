"""A throwaway redis-server on a free port, for specs of Redis-backed policies.

stop()/kill() followed by start() reuses the same port, so a spec can take
Redis away under a running gateway and bring it back where the gateway's
config still points.
"""

import atexit
import signal
import socket
import subprocess
import time
import weakref
from pathlib import Path

from ports import free_port
from scale import scaled

_running = weakref.WeakSet()


@atexit.register
def _kill_leftovers():
    # A run cut short (Ctrl-C) may skip the fixtures' stop(); no redis-server
    # may outlive pytest, keeping its port.
    for r in list(_running):
        r.kill()


class RedisError(Exception):
    pass


def _encode(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        if isinstance(a, int):
            a = str(a)
        if isinstance(a, str):
            a = a.encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


class _RespReader:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def _line(self):
        while b"\r\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("redis closed the connection")
            self.buf += data
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("redis closed the connection")
            self.buf += data
        out, self.buf = self.buf[:n], self.buf[n + 2:]
        return out

    def reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RedisError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n)
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.reply() for _ in range(n)]
        raise RedisError("unexpected reply %r" % line)


class RedisServer:
    def __init__(self, tmp_path, port=None, start=True):
        self.dir = Path(tmp_path) / "redis"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.proc = None
        self.log_path = self.dir / "redis.log"
        if start:
            self.start()

    @property
    def url(self):
        return "redis://%s:%d/0" % (self.host, self.port)

    def start(self, timeout=10.0):
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError("redis-server already running")
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", self.host, "--save", "",
             "--appendonly", "no", "--dir", str(self.dir), "--daemonize", "no"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        _running.add(self)
        deadline = time.monotonic() + scaled(timeout)
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("redis-server exited with %s: %s" % (self.proc.returncode, self.log()))
            try:
                if self.command("PING") == "PONG":
                    return self
            except OSError:
                pass
            time.sleep(0.02)
        self.kill()
        raise RuntimeError("redis-server did not answer PING on port %d: %s" % (self.port, self.log()))

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def command(self, *args, timeout=2.0):
        """One command on a fresh connection; returns the decoded reply."""
        with socket.create_connection((self.host, self.port), timeout=scaled(timeout)) as s:
            s.sendall(_encode(*args))
            return _RespReader(s).reply()

    def stop(self, timeout=10.0):
        """Graceful shutdown (SIGTERM); returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(scaled(timeout))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def kill(self):
        """Abrupt death (SIGKILL), as when a Redis node crashes."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
