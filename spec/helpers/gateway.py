"""Starts the sluice binary under test with a generated config.

    gw = Gateway({"routes": [...], "upstreams": {...}}, tmp_path)
    resp = gw.get("/echo")
    gw.stop()           # SIGTERM, returns the exit code

A dict config gets defaults (listen on a free port, one worker, an access log
file in the gateway's directory); text is written as is. In both, "@PORT@" is
the listen port, "@PORT_<NAME>@" another free port (same NAME, same port;
see .ports) and "@DIR@" the gateway's directory.

finish() (called by the gateway_factory fixture at teardown) stops the process
and fails the test if it died during the test, did not exit 0 on SIGTERM, or
left sanitizer/valgrind reports.
"""

import atexit
import copy
import itertools
import json
import os
import re
import signal
import subprocess
import time
import weakref
from pathlib import Path

import raw
from ports import free_port
from scale import scaled, under_valgrind, sanitized
from yaml_emit import to_yaml

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer")
VALGRIND_ERROR_RC = 99
VALGRIND_ARGS = ["valgrind", "--leak-check=full", "--errors-for-leak-kinds=definite",
                 "--error-exitcode=%d" % VALGRIND_ERROR_RC, "--track-origins=no"]

_running = weakref.WeakSet()
_seq = itertools.count(1)


@atexit.register
def _kill_leftovers():
    # A crashed or interrupted test must not leave gateways listening.
    for gw in list(_running):
        gw.kill()


class GatewayError(Exception):
    pass


def repo_root():
    env = os.environ.get("SLUICE_SOURCE_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[2]


def sluice_bin():
    """Path of the binary under test, or None if there is none."""
    env = os.environ.get("SLUICE_BIN")
    if env:
        return env
    build = os.environ.get("SLUICE_BUILD_DIR")
    for cand in ([Path(build) / "sluice"] if build else []) + [repo_root() / "build" / "sluice"]:
        if cand.is_file():
            return str(cand)
    return None


class ReloadResult:
    def __init__(self, ok, output):
        self.ok = ok            # True: "reloaded"; False: "reload failed"
        self.output = output    # stderr written since the SIGHUP

    def __repr__(self):
        return "<ReloadResult ok=%s output=%r>" % (self.ok, self.output)


class Gateway:
    def __init__(self, config, tmp_path, *, start=True, env=None, binary=None, scheme=None,
                 client_tls=None, server_hostname=None, ready_timeout=None):
        self.dir = Path(tmp_path) / ("gw%d" % next(_seq))
        self.dir.mkdir(parents=True, exist_ok=True)
        self.binary = binary or sluice_bin()
        if not self.binary:
            raise GatewayError("no sluice binary: set SLUICE_BIN")
        self.port = free_port()
        self.ports = {}
        self.host = "127.0.0.1"
        self.config_path = self.dir / "sluice.yaml"
        self.stderr_path = self.dir / "stderr.log"
        self.stdout_path = self.dir / "stdout.log"
        self.valgrind_log = self.dir / "valgrind.log"
        self.access_path = self.dir / "access.log"
        self.access_target = "file"
        self.scheme = scheme
        self.client_tls = client_tls
        self.server_hostname = server_hostname
        self.env = dict(os.environ, **(env or {}))
        self.ready_timeout = ready_timeout
        self.expected_rc = 0
        self.proc = None
        self.rc = None
        self._stop_requested = False
        self.write_config(config)
        if start:
            self.start()

    # -- config ----------------------------------------------------------------

    def render(self, config):
        if isinstance(config, dict):
            # Defaults first so the generated file reads like a hand-written one.
            config = dict({"listen": "127.0.0.1:@PORT@", "workers": 1, "log": {}}, **copy.deepcopy(config))
            if self.scheme is None:
                self.scheme = "https" if _has_tls_listener(config) else "http"
            log = config["log"]
            log.setdefault("access", "@DIR@/access.log")
            self._note_access(log["access"])
            text = to_yaml(config)
        else:
            if self.scheme is None:
                self.scheme = "http"
            text = config
            m = re.search(r"\baccess:\s*([^\s,}]+)", text)
            self._note_access(m.group(1).strip("\"'") if m else "stdout")
        text = re.sub(r"@PORT_([A-Z0-9_]+)@", lambda m: str(self._named_port(m.group(1))), text)
        return text.replace("@PORT@", str(self.port)).replace("@DIR@", str(self.dir))

    def _named_port(self, name):
        if name not in self.ports:
            self.ports[name] = free_port()
        return self.ports[name]

    def _note_access(self, access):
        if access in ("stdout", "off"):
            self.access_target = access
        else:
            self.access_target = "file"
            self.access_path = Path(access.replace("@DIR@", str(self.dir)))

    def write_config(self, config):
        """Writes (or rewrites, before reload()) the config file."""
        self.config = config
        self.config_text = self.render(config)
        tmp = self.config_path.with_suffix(".tmp")
        tmp.write_text(self.config_text)
        os.replace(tmp, self.config_path)   # a reload never sees half a file

    # -- process ---------------------------------------------------------------

    @property
    def url(self):
        return "%s://%s:%d" % (self.scheme, self.host, self.port)

    def command(self):
        cmd = [self.binary, "-c", str(self.config_path)]
        if under_valgrind():
            cmd = VALGRIND_ARGS + ["--log-file=%s" % self.valgrind_log] + cmd
        return cmd

    def start(self):
        # The free port may be taken (e.g. as another test's ephemeral client
        # port) before sluice binds it: then try again with a new one.
        for attempt in range(3):
            try:
                return self._start_once()
            except GatewayError as e:
                if "in use" not in str(e) or "@PORT@" not in _text_of(self.config) or attempt == 2:
                    raise
                self.port = free_port()
                self.write_config(self.config)

    def _start_once(self):
        if self.proc is not None and self.proc.poll() is None:
            raise GatewayError("already running")
        self._stderr_offset = self.stderr_path.stat().st_size if self.stderr_path.exists() else 0
        with open(self.stdout_path, "ab") as out, open(self.stderr_path, "ab") as err:
            self.proc = subprocess.Popen(self.command(), stdout=out, stderr=err,
                                         stdin=subprocess.DEVNULL, env=self.env, cwd=self.dir)
        self.rc = None
        self._stop_requested = False
        _running.add(self)
        self.wait_ready()
        return self

    def _default_ready_timeout(self):
        if self.ready_timeout is not None:
            return self.ready_timeout
        if under_valgrind():
            return 60.0
        return 20.0 if sanitized() else 10.0

    def wait_ready(self):
        deadline = time.monotonic() + self._default_ready_timeout()
        while time.monotonic() < deadline:
            if "sluice: ready" in self.stderr_since(self._stderr_offset):
                return
            if self.proc.poll() is not None:
                self.rc = self.proc.returncode
                _running.discard(self)
                raise GatewayError("sluice exited with %s before it was ready; stderr:\n%s"
                                   % (self.rc, self.stderr_since(self._stderr_offset)))
            time.sleep(0.01)
        self.kill()
        raise GatewayError("sluice did not print 'sluice: ready' in %.0fs; stderr:\n%s"
                           % (self._default_ready_timeout(), self.stderr()))

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        self.proc.send_signal(sig)

    def reload(self, timeout=10.0):
        """SIGHUP, then waits for a 'reloaded' or 'reload failed' line."""
        offset = self.stderr_path.stat().st_size
        self.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + scaled(timeout)
        while time.monotonic() < deadline:
            text = self.stderr_since(offset)
            failed = "reload failed" in text
            if failed or "reloaded" in text:
                # The error lines may follow the summary line: let stderr settle.
                time.sleep(scaled(0.05))
                return ReloadResult(not failed, self.stderr_since(offset))
            if self.proc.poll() is not None:
                raise GatewayError("sluice exited with %s during reload; stderr:\n%s"
                                   % (self.proc.returncode, self.stderr()))
            time.sleep(0.01)
        raise GatewayError("no 'reloaded' or 'reload failed' line within %ss; stderr since SIGHUP:\n%s"
                           % (timeout, self.stderr_since(offset)))

    def stop(self, timeout=15.0):
        """SIGTERM, waits for the exit, returns the exit code."""
        if self.proc is None:
            return None
        self._stop_requested = True
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def terminate(self):
        """SIGTERM without waiting (for specs that watch the drain)."""
        self._stop_requested = True
        self.proc.send_signal(signal.SIGTERM)

    def wait(self, timeout=15.0):
        try:
            self.rc = self.proc.wait(scaled(timeout))
        except subprocess.TimeoutExpired:
            self.kill()
            raise GatewayError("sluice did not exit within %ss after SIGTERM; stderr:\n%s"
                               % (timeout, self.stderr()))
        _running.discard(self)
        return self.rc

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
            self.rc = self.proc.returncode
        _running.discard(self)

    def finish(self):
        """Stops the gateway and returns a list of problems (empty = clean)."""
        problems = []
        if self.proc is None:
            return problems
        if self.proc.poll() is not None and not self._stop_requested:
            problems.append("sluice died during the test (exit status %s)" % self.proc.returncode)
            self.rc = self.proc.returncode
            _running.discard(self)
        else:
            try:
                self.stop()
            except GatewayError as e:
                problems.append(str(e))
        vlog = self.valgrind_log.read_text(errors="replace") if self.valgrind_log.exists() else ""
        if under_valgrind() and (self.rc == VALGRIND_ERROR_RC or re.search(r"ERROR SUMMARY: [1-9]", vlog)):
            problems.append("valgrind reported errors:\n" + vlog[-20000:])
        elif self.rc != self.expected_rc and not problems:
            problems.append("sluice exited with %s, expected %s" % (self.rc, self.expected_rc))
        err = self.stderr()
        for marker in SANITIZER_MARKERS:
            if marker in err:
                problems.append("sluice's stderr contains %r" % marker)
        if problems:
            problems.append("stderr (tail):\n" + err[-8000:])
        return problems

    # -- output ----------------------------------------------------------------

    def stderr(self):
        return self.stderr_since(0)

    def stderr_since(self, offset):
        try:
            with open(self.stderr_path, "rb") as f:
                f.seek(offset)
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def stdout(self):
        try:
            return self.stdout_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def _access_lines(self):
        if self.access_target == "off":
            return []
        if self.access_target == "stdout":
            text = self.stdout()
        else:
            try:
                text = self.access_path.read_text()
            except FileNotFoundError:
                return []
        # Only whole lines: the gateway may be mid-write.
        return [l for l in text.split("\n")[:-1] if l.startswith("{")]

    def access_log(self, min_lines=0, timeout=5.0):
        """Parsed access-log lines; waits until at least min_lines exist."""
        deadline = time.monotonic() + scaled(timeout)
        lines = self._access_lines()
        while len(lines) < min_lines and time.monotonic() < deadline:
            time.sleep(0.01)
            lines = self._access_lines()
        return [json.loads(l) for l in lines]

    # -- client shortcuts --------------------------------------------------------

    def conn(self, **kw):
        kw.setdefault("tls", self.client_tls)
        kw.setdefault("server_hostname", self.server_hostname)
        return raw.Conn(self.port, **kw)

    def request(self, method, target, headers=(), body=None, version="HTTP/1.1", host=raw.DEFAULT_HOST, **kw):
        with self.conn(**kw) as c:
            return c.request(method, target, headers, body, version, host)

    def get(self, target, headers=(), **kw):
        return self.request("GET", target, headers, **kw)

    def post(self, target, body, headers=(), **kw):
        return self.request("POST", target, headers, body, **kw)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        problems = self.finish()
        if problems and exc[0] is None:
            raise AssertionError("\n".join(problems))


def _text_of(config):
    if isinstance(config, dict):
        return json.dumps(config) + "@PORT@" * ("listen" not in config)
    return config


def _has_tls_listener(config):
    listen = config.get("listen")
    items = listen if isinstance(listen, list) else [listen]
    return any(isinstance(i, dict) and i.get("tls") for i in items)
