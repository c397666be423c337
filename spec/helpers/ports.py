"""Free TCP ports for processes the specs start.

The kernel picks a port for a socket bound to port 0; the socket is closed and
the number handed to the process under test. Another process could grab it in
between, which is rare enough on a test machine; handing the same number out
twice within one pytest run is ruled out by remembering what was given.
"""

import socket
import threading

_given = set()
_lock = threading.Lock()


def free_port(host="127.0.0.1"):
    with _lock:
        for _ in range(100):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.bind((host, 0))
                port = s.getsockname()[1]
            finally:
                s.close()
            if port not in _given:
                _given.add(port)
                return port
    raise RuntimeError("no free port found")


def dead_port(host="127.0.0.1"):
    """A port nothing listens on (connections to it are refused)."""
    return free_port(host)


class StuckListener:
    """A port whose connects hang: it listens, but its accept queue is full and
    never drained, so the kernel drops further SYNs. For connect timeouts."""

    def __init__(self, host="127.0.0.1", fill=3):
        import time
        self._srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._srv.bind((host, 0))
        self._srv.listen(0)
        self.port = self._srv.getsockname()[1]
        self.url = "http://%s:%d" % (host, self.port)
        self._fillers = []
        for _ in range(fill):
            c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            c.setblocking(False)
            try:
                c.connect((host, self.port))
            except BlockingIOError:
                pass
            self._fillers.append(c)
        time.sleep(0.05)    # let the handshakes of the fillers complete

    def close(self):
        for c in self._fillers:
            c.close()
        self._srv.close()
